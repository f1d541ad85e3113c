#!/usr/bin/env bash
# The whole run, end to end, against the Graph fake (its own process) and a throwaway
# Postgres, in release mode: leads/s end to end and of the load stage, peak memory, and
# psql's COPY of the same rows (CSV, into a copy of the leads table) measured in the same
# run as the baseline. Usage: bash scripts/bench-run.sh [leads ...]   (default 100000 1000000)
# BENCH_CONNECTIONS_AT_ONCE (default 1): the run's lanes. With one, the load stage's time is
# its own; with more, lanes share the 2 cores and each lane's load time includes the others'.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
work=$(mktemp -d /tmp/leadflow-bench-run.XXXXXX)
chmod 755 "$work"
cleanup() { exec 3>&- 2>/dev/null || true; stop_postgres; rm -rf "$work"; }
trap cleanup EXIT
start_postgres
for product in leadflow graph-fake LeadFlowBench; do swift build -c release --product "$product" >/dev/null; done
bin=.build/release
psql_admin() { psql "$LEADFLOW_TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }

printf '%-9s %9s %10s %9s %10s %9s %10s %7s %8s\n' leads "run s" "run/s" "load s" "load/s" "psql s" "psql/s" ratio "peak MB"
for leads in "${@:-100000 1000000}"; do
    db="bench_$leads"
    psql_admin -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    url="postgresql://$PG_USER@127.0.0.1:$PG_PORT/$db"
    "$bin/LeadFlowBench" scenario "$leads" > "$work/scenario.json"
    rm -f "$work/fake-in" && mkfifo "$work/fake-in"
    "$bin/graph-fake" "$work/scenario.json" --now 2026-12-01T00:00:00Z --exit-on-stdin-eof < "$work/fake-in" > "$work/fake-out" &
    exec 3> "$work/fake-in"   # the fake lives while this stays open
    for _ in $(seq 1 1200); do grep -q listening "$work/fake-out" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$work/fake-out" || { echo "the Graph fake did not start" >&2; exit 1; }
    export DATABASE_URL="$url" LEADFLOW_HOME="$work/home-$leads" LEADFLOW_NOW=2026-12-01T00:00:00Z
    export LEADFLOW_GRAPH_URL=$(awk '{print $3}' "$work/fake-out") LEADFLOW_APP_ID=1234567890 LEADFLOW_APP_SECRET=fake-app-secret
    for page in $(seq 1001 1010); do
        echo "EAAB-bench-$page" | "$bin/leadflow" connect --instance bench --page "$page" --name "bench-$page" 2>/dev/null
    done
    start=$(date +%s.%N)
    "$bin/leadflow" run --pipeline pipelines/facebook-leads.yml --connections-at-once "${BENCH_CONNECTIONS_AT_ONCE:-1}" 2> "$work/run.log" || { cat "$work/run.log" >&2; exit 1; }
    end=$(date +%s.%N)
    exec 3>&-
    loaded=$(psql "$url" -qAt -c "SELECT count(*) FROM leads")
    [ "$loaded" -eq "$leads" ] || { echo "loaded $loaded leads, expected $leads" >&2; exit 1; }
    load_s=$(sed -n 's/.*load \([0-9.]*\) s;.*/\1/p' "$work/run.log")
    peak=$(sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' "$work/run.log")
    # Baseline: psql's COPY of the same rows, as CSV, into an empty copy of the table.
    psql "$url" -v ON_ERROR_STOP=1 -qAt -c "\\copy (SELECT * FROM leads) TO '$work/leads.csv' CSV" \
        -c "CREATE TABLE leads_copy (LIKE leads INCLUDING ALL)"
    copy_start=$(date +%s.%N)
    psql "$url" -v ON_ERROR_STOP=1 -qAt -c "\\copy leads_copy FROM '$work/leads.csv' CSV"
    copy_end=$(date +%s.%N)
    awk -v n="$leads" -v s="$start" -v e="$end" -v l="$load_s" -v cs="$copy_start" -v ce="$copy_end" -v p="$peak" 'BEGIN {
        run = e - s; copy = ce - cs;
        printf "%-9d %9.2f %10.0f %9.2f %10.0f %9.2f %10.0f %7.2f %8.1f\n", n, run, n / run, l, n / l, copy, n / copy, (n / l) / (n / copy), p }'
done
