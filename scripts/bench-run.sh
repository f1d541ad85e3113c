#!/usr/bin/env bash
# The run's benchmark (issue #16), release build, against the Graph fake (its own process)
# and a throwaway Postgres, every baseline measured in the same run:
#   - `leadflow run` end to end on default settings (10 Pages × 5 forms, fake at 0 ms):
#     leads/s, peak memory, and a second run that finds nothing new;
#   - a hand-written Python pipeline doing the same job (scripts/baseline_pipeline.py:
#     requests + json + psycopg COPY + tarfile, 4 threads) on the same fake and Postgres;
#   - psql's COPY of the same rows into a copy of the same `leads` table;
#   - the load stage alone (LeadFlowBench load: the spooled rows into an empty table);
#   - 1,000 Pages at 50 ms latency, nothing new, one worker, default settings: seconds
#     and Graph requests per connection.
# Usage: bash scripts/bench-run.sh [leads ...]   (default 100000 1000000)
#        BENCH_SKIP_PAGES=1 leaves out the 1,000-Page run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
LEADFLOW_APT_PACKAGES+=(python3-venv)
ensure_packages
work=$(mktemp -d /tmp/leadflow-bench-run.XXXXXX)
chmod 755 "$work"
fake_pid=
stop_fake() { [ -n "$fake_pid" ] && { exec 3>&-; wait "$fake_pid" 2>/dev/null || true; fake_pid=; }; return 0; }
cleanup() { stop_fake; stop_postgres; rm -rf "$work"; }
trap cleanup EXIT
start_postgres -c max_connections=200
for product in leadflow graph-fake LeadFlowBench; do
    swift build -c release --product "$product" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
done
bin=.build/release
venv=.build/venv-bench
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import requests, psycopg' 2>/dev/null ||
    "$venv/bin/pip" install --quiet --disable-pip-version-check "requests==2.32.3" "psycopg[binary]==3.2.3"
psql_admin() { psql "$LEADFLOW_TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }
now=2026-12-01T00:00:00Z

# The fake on a scenario, with a request log; it lives while fd 3 stays open.
start_fake() {
    stop_fake
    rm -f "$work/fake-in" "$work/requests.jsonl" && mkfifo "$work/fake-in"
    "$bin/graph-fake" "$1" --now "$now" --request-log "$work/requests.jsonl" --exit-on-stdin-eof < "$work/fake-in" > "$work/fake-out" &
    fake_pid=$!
    exec 3> "$work/fake-in"
    for _ in $(seq 1 1200); do grep -q listening "$work/fake-out" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$work/fake-out" || { echo "the Graph fake did not start" >&2; exit 1; }
    fake_url=$(awk '{print $3}' "$work/fake-out")
}
elapsed() { local start=$(date +%s.%N); "$@"; local end=$(date +%s.%N); awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }'; }
use_database() {
    psql_admin -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    url="postgresql://$PG_USER@127.0.0.1:$PG_PORT/$1"
}

printf '%-8s %8s %8s %8s %8s %8s %8s %8s %7s %7s %7s %8s %8s\n' leads "run s" "run/s" "py/s" "copy/s" "load/s" \
    "run/py" "run/cp" "load/cp" "peak MB" "py MB" "new s" "new/s"
for leads in "${@:-100000 1000000}"; do
    use_database "bench_$leads"
    "$bin/LeadFlowBench" scenario "$leads" > "$work/scenario.json"
    start_fake "$work/scenario.json"
    export DATABASE_URL="$url" LEADFLOW_HOME="$work/home-$leads" LEADFLOW_NOW="$now" LEADFLOW_GRAPH_URL="$fake_url"
    export LEADFLOW_APP_ID=1234567890 LEADFLOW_APP_SECRET=fake-app-secret
    for page in $(seq 1001 1010); do
        echo "EAAB-bench-$page" | "$bin/leadflow" connect --instance bench --page "$page" --name "bench-$page" 2>/dev/null
    done
    run_s=$(elapsed "$bin/leadflow" run 2> "$work/run.log") || { cat "$work/run.log" >&2; exit 1; }
    loaded=$(psql "$url" -qAt -c "SELECT count(*) FROM leads")
    [ "$loaded" -eq "$leads" ] || { echo "loaded $loaded leads, expected $leads" >&2; exit 1; }
    peak=$(sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' "$work/run.log")
    export LEADFLOW_NOW=2026-12-01T00:05:00Z
    new_s=$(elapsed "$bin/leadflow" run 2> "$work/rerun.log") || { cat "$work/rerun.log" >&2; exit 1; }

    # The Python pipeline: same fake, same Postgres, a copy of the same table.
    psql "$url" -qAt -c "CREATE TABLE leads_py (LIKE leads INCLUDING ALL)"
    mkdir -p "$work/py-archives"
    py=$("$venv/bin/python" scripts/baseline_pipeline.py "$fake_url" fake-app-secret "$url" leads_py "$work/py-archives" \
        $(for page in $(seq 1001 1010); do echo "EAAB-bench-$page"; done))
    py_rate=$(awk '{print $6}' <<< "$py"); py_peak=$(awk '{print $8}' <<< "$py")
    [ "$(awk '{print $2}' <<< "$py")" -eq "$leads" ] || { echo "the Python pipeline loaded $py" >&2; exit 1; }
    stop_fake

    # psql's COPY of LeadFlow's own rows into an empty copy of the table.
    psql "$url" -v ON_ERROR_STOP=1 -qAt -c "\\copy (SELECT * FROM leads) TO '$work/leads.csv' CSV" \
        -c "CREATE TABLE leads_copy (LIKE leads INCLUDING ALL)"
    copy_s=$(elapsed psql "$url" -v ON_ERROR_STOP=1 -qAt -c "\\copy leads_copy FROM '$work/leads.csv' CSV")

    # The load stage alone, on a fresh database.
    use_database "bench_load_$leads"
    load=$(DATABASE_URL="$url" "$bin/LeadFlowBench" load "$leads")
    load_rate=$(awk '{print $7}' <<< "$load")

    awk -v n="$leads" -v run="$run_s" -v py="$py_rate" -v cs="$copy_s" -v lr="$load_rate" -v p="$peak" -v pp="$py_peak" -v ns="$new_s" 'BEGIN {
        rr = n / run; cr = n / cs;
        printf "%-8d %8.2f %8.0f %8.0f %8.0f %8.0f %8.2f %8.2f %7.2f %7.1f %7.1f %8.2f %8s\n",
               n, run, rr, py, cr, lr, rr / py, rr / cr, lr / cr, p, pp, ns, "10 Pages" }'
done

[ -n "${BENCH_SKIP_PAGES:-}" ] && exit 0
# 1,000 Pages (one Connector Authenticator), 20 leads each; the first run loads them at
# 0 ms; then Graph answers in 50 ms and a run finds nothing new.
use_database bench_pages
"$bin/LeadFlowBench" scenario-one-user 100000 1000 > "$work/pages.json"
start_fake "$work/pages.json"
export DATABASE_URL="$url" LEADFLOW_HOME="$work/home-pages" LEADFLOW_NOW="$now" LEADFLOW_GRAPH_URL="$fake_url"
connect_s=$(elapsed bash -c "echo EAAB-bench-user | '$bin/leadflow' connect --instance bench --all-pages 2> '$work/connect.log'") ||
    { cat "$work/connect.log" >&2; exit 1; }
"$bin/leadflow" run 2> "$work/pages-first.log" || { cat "$work/pages-first.log" >&2; exit 1; }
curl -s -X POST --data 50 "$fake_url/__fake/latency" > /dev/null
before=$(wc -l < "$work/requests.jsonl")
export LEADFLOW_NOW=2026-12-01T00:10:00Z
# BENCH_PAGES_RUN_ARGS (e.g. "--connections-at-once 8") tries other settings than the default.
pages_s=$(elapsed "$bin/leadflow" run ${BENCH_PAGES_RUN_ARGS:-} 2> "$work/pages-again.log") || { cat "$work/pages-again.log" >&2; exit 1; }
after=$(wc -l < "$work/requests.jsonl")
awk -v s="$pages_s" -v r="$((after - before))" -v c="$connect_s" 'BEGIN {
    printf "1,000 Pages at 50 ms, nothing new, one worker, default settings: %.1f s (target < 20 s), %.2f Graph requests per connection\n", s, r / 1000;
    printf "(connect --all-pages of those 1,000 Pages at 0 ms: %.1f s)\n", c }'
stop_fake
