#!/usr/bin/env bash
# The scale-out benchmark suite (issue #8), release build, against the Graph fake (its own
# process) and a throwaway Postgres. For each number of Pages (5 forms each), number of
# leads in all, Graph latency and number of workers (`leadflow run` processes sharing the
# database): leads/s end to end, Graph requests per lead, peak RSS per worker, the load
# stage's rate per lane, and the time of a second run that finds nothing new. psql's COPY
# of the same rows, measured in the same run, is the load stage's ceiling.
# Prints a table and writes it as JSON to bench-results/suite-<UTC time>.json.
#
#   bash scripts/bench-suite.sh                 # the whole matrix (about 40 minutes here)
#   BENCH_PAGES="1000" BENCH_LEADS="100000" BENCH_LATENCIES="50" BENCH_WORKERS="1 2" bash scripts/bench-suite.sh
#
# BENCH_CONNECTIONS_AT_ONCE (default 16) is each worker's --connections-at-once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
pages_list=${BENCH_PAGES:-"10 100 1000"}
leads_list=${BENCH_LEADS:-"100000 1000000"}
latencies=${BENCH_LATENCIES:-"0 50"}
worker_counts=${BENCH_WORKERS:-"1 2 4"}
lanes=${BENCH_CONNECTIONS_AT_ONCE:-16}
work=$(mktemp -d /tmp/leadflow-bench-suite.XXXXXX)
chmod 755 "$work"
fake_pid=
stop_fake() { [ -n "$fake_pid" ] && { exec 3>&-; wait "$fake_pid" 2>/dev/null || true; fake_pid=; }; return 0; }
cleanup() { stop_fake; stop_postgres; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
start_postgres -c max_connections=200
for product in leadflow graph-fake LeadFlowBench; do swift build -c release --product "$product" >/dev/null; done
bin=.build/release
mkdir -p bench-results
results="bench-results/suite-$(date -u +%Y%m%dT%H%M%SZ).json"
now=2026-12-01T00:00:00Z

# The fake, on the scenario, with a fresh request log. Its latency changes while it runs
# (set_latency): the Page tokens `connect` stored are its own and die with it.
start_fake() {
    stop_fake
    rm -f "$work/fake-in" "$work/requests.jsonl" && mkfifo "$work/fake-in"
    "$bin/graph-fake" "$work/scenario.json" --now $now --request-log "$work/requests.jsonl" \
        --exit-on-stdin-eof < "$work/fake-in" > "$work/fake-out" &
    fake_pid=$!
    exec 3> "$work/fake-in"   # the fake lives while this stays open
    for _ in $(seq 1 1200); do grep -q listening "$work/fake-out" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$work/fake-out" || { echo "the Graph fake did not start" >&2; exit 1; }
    export LEADFLOW_GRAPH_URL=$(awk '{print $3}' "$work/fake-out")
}
set_latency() { curl -fsS -X POST --data "$1" "$LEADFLOW_GRAPH_URL/__fake/latency" >/dev/null; }
graph_requests() { grep -vc __fake "$work/requests.jsonl" || true; }

# N workers at once; sets elapsed, peak (max of the workers' peak RSS), load_s (summed).
run_workers() {
    local n=$1 start end k
    start=$(date +%s.%N)
    for k in $(seq 1 "$n"); do
        "$bin/leadflow" run --pipeline pipelines/facebook-leads.yml --worker-id "w$k" --connections-at-once "$lanes" \
            2> "$work/worker-$k.log" &
    done
    local failed=0
    for k in $(seq 1 "$n"); do wait -n || { s=$?; [ $s -eq 2 ] || failed=$s; }; done
    end=$(date +%s.%N)
    [ "$failed" -eq 0 ] || { tail -20 "$work"/worker-*.log >&2; echo "a worker failed (exit $failed)" >&2; exit 1; }
    elapsed=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
    peak=$(sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' "$work"/worker-*.log | sort -n | tail -1)
    load_s=$(sed -n 's/.*load \([0-9.]*\) s;.*/\1/p' "$work"/worker-*.log | awk '{ s += $1 } END { printf "%.3f", s }')
}

psql_admin() { psql "$LEADFLOW_TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }
printf '%6s %8s %5s %3s %9s %9s %8s %9s %9s %7s %9s %9s\n' pages leads ms wk "run s" "leads/s" "req/lead" "peak MB" \
    "load/s" ratio "psql/s" "idle s"
echo "[" > "$results"
first=1
for pages in $pages_list; do
    for leads in $leads_list; do
        db="suite_${pages}_${leads}"
        psql_admin -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
        url="postgresql://$PG_USER@127.0.0.1:$PG_PORT/$db"
        "$bin/LeadFlowBench" scenario "$leads" "$pages" > "$work/scenario.json"
        export DATABASE_URL="$url" LEADFLOW_HOME="$work/home" LEADFLOW_NOW=$now
        export LEADFLOW_APP_ID=1234567890 LEADFLOW_APP_SECRET=fake-app-secret
        rm -rf "$LEADFLOW_HOME"
        start_fake
        "$bin/leadflow" migrate >/dev/null 2>&1
        seq 1001 $((1000 + pages)) | xargs -P 4 -I{} sh -c \
            'echo "EAAB-bench-{}" | "$0" connect --instance bench --page {} --name "bench-{}" >/dev/null 2>&1 || exit 255' "$bin/leadflow"
        copy_rate=
        for latency in $latencies; do
            for workers in $worker_counts; do
                psql "$url" -v ON_ERROR_STOP=1 -qAt -c "SET client_min_messages = warning" -c "TRUNCATE runs, work_rounds, graph_app_usage CASCADE" \
                    -c "DROP TABLE IF EXISTS leads_copy"
                rm -rf "$LEADFLOW_HOME/archives" "$LEADFLOW_HOME/spool"
                set_latency "$latency"
                before=$(graph_requests)
                run_workers "$workers"
                loaded=$(psql "$url" -qAt -c "SELECT count(*) FROM leads")
                [ "$loaded" -eq "$leads" ] || { echo "loaded $loaded leads, expected $leads" >&2; exit 1; }
                requests=$(( $(graph_requests) - before ))
                run_s=$elapsed run_peak=$peak run_load=$load_s
                if [ -z "$copy_rate" ]; then
                    # The ceiling: psql's COPY of the same rows, as CSV, into an empty copy of the table.
                    psql "$url" -v ON_ERROR_STOP=1 -qAt -c "\\copy (SELECT * FROM leads) TO '$work/leads.csv' CSV" \
                        -c "CREATE TABLE leads_copy (LIKE leads INCLUDING ALL)"
                    cs=$(date +%s.%N)
                    psql "$url" -v ON_ERROR_STOP=1 -qAt -c "\\copy leads_copy FROM '$work/leads.csv' CSV"
                    ce=$(date +%s.%N)
                    copy_rate=$(awk -v n="$leads" -v s="$cs" -v e="$ce" 'BEGIN { printf "%.0f", n / (e - s) }')
                fi
                # Steady state: the same workers again, nothing new.
                run_workers "$workers"
                idle_s=$elapsed
                line=$(awk -v p="$pages" -v n="$leads" -v ms="$latency" -v w="$workers" -v r="$run_s" -v q="$requests" \
                    -v pk="$run_peak" -v l="$run_load" -v c="$copy_rate" -v i="$idle_s" 'BEGIN {
                    lr = (l > 0 ? n / l : 0);
                    printf "%6d %8d %5d %3d %9.2f %9.0f %8.4f %9.1f %9.0f %7.2f %9.0f %9.2f\n", p, n, ms, w, r, n / r, q / n, pk, lr, lr / c, c, i }')
                echo "$line"
                read -r _ _ _ _ _ rate per_lead _ load_rate ratio _ _ <<< "$line"
                [ $first -eq 1 ] || echo "," >> "$results"
                first=0
                printf '  {"pages": %d, "forms_per_page": 5, "leads": %d, "latency_ms": %d, "workers": %d, "connections_at_once": %d, "run_seconds": %s, "leads_per_second": %s, "graph_requests": %d, "requests_per_lead": %s, "peak_rss_mb_per_worker": %s, "load_leads_per_second_per_lane": %s, "load_to_psql_copy": %s, "psql_copy_rows_per_second": %s, "nothing_new_run_seconds": %s}' \
                    "$pages" "$leads" "$latency" "$workers" "$lanes" "$run_s" "$rate" "$requests" "$per_lead" "$run_peak" "$load_rate" "$ratio" "$copy_rate" "$idle_s" >> "$results"
            done
        done
        psql_admin -c "DROP DATABASE $db"
    done
done
echo "]" >> "$results"
echo "written: $results"
