#!/usr/bin/env bash
# `leadflow connect --all-pages` once, with one fresh user token that reaches PAGES Pages
# (default 1000), against the Graph fake (its own process) at LATENCY ms a request (default
# 50) and a throwaway Postgres, in release mode. Prints the seconds, Pages/s, and the ratio
# to issue 15's target (1,000 Pages in under 60 s, scaled to PAGES).
# Usage: bash scripts/bench-connect.sh [pages] [latency-ms]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
pages=${1:-1000}
latency=${2:-50}
now=2026-12-01T00:00:00Z
work=$(mktemp -d /tmp/leadflow-bench-connect.XXXXXX)
chmod 755 "$work"
cleanup() { exec 3>&- 2>/dev/null || true; stop_postgres; rm -rf "$work"; }
trap cleanup EXIT
start_postgres -c fsync=off
for product in leadflow graph-fake LeadFlowBench; do swift build -c release --product "$product" >/dev/null; done
bin=.build/release

psql "$LEADFLOW_TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE bench_connect"
url="postgresql://$PG_USER@127.0.0.1:$PG_PORT/bench_connect"
"$bin/LeadFlowBench" connect-scenario "$pages" "$now" > "$work/scenario.json"
mkfifo "$work/fake-in"
"$bin/graph-fake" "$work/scenario.json" --now "$now" --latency-ms "$latency" --exit-on-stdin-eof \
    < "$work/fake-in" > "$work/fake-out" &
exec 3> "$work/fake-in"   # the fake lives while this stays open
for _ in $(seq 1 1200); do grep -q listening "$work/fake-out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/fake-out" || { echo "the Graph fake did not start" >&2; exit 1; }
export DATABASE_URL="$url" LEADFLOW_HOME="$work/home" LEADFLOW_NOW="$now"
export LEADFLOW_GRAPH_URL=$(awk '{print $3}' "$work/fake-out") LEADFLOW_APP_ID=1234567890 LEADFLOW_APP_SECRET=fake-app-secret
# The schema first, so the figure is connect's own and not the first migration's.
"$bin/leadflow" migrate >/dev/null 2>&1

start=$(date +%s.%N)
echo "EAAB-bench-user" | "$bin/leadflow" connect --instance bench --all-pages \
    --pipeline pipelines/facebook-leads.yml 2> "$work/connect.log" || { tail -n 20 "$work/connect.log" >&2; exit 1; }
end=$(date +%s.%N)
exec 3>&-

connected=$(psql "$url" -qAt -c "SELECT count(*) FROM connections")
[ "$connected" -eq "$pages" ] || { echo "connected $connected Pages, expected $pages" >&2; exit 1; }
awk -v n="$pages" -v l="$latency" -v s="$start" -v e="$end" 'BEGIN {
    t = e - s; target = 60 * n / 1000;
    printf "%-6s %10s %8s %9s %18s\n", "pages", "latency ms", "seconds", "pages/s", "of the 60 s target"
    printf "%-6d %10d %8.2f %9.1f %17.0f%%\n", n, l, t, n / t, 100 * t / target }'
