#!/usr/bin/env bash
# How much disk LeadFlow takes as it works (issue #17, "keep tidy"), measured, not guessed:
#   - per 1,000 leads loaded: archive bytes under LEADFLOW_HOME, and Postgres bytes (the
#     leads table with its indexes and TOAST, and the whole database);
#   - per run that finds nothing new, per connection: rows and bytes the run tables gain
#     (runs, run_passes, run_forms, form_snapshots, work queue), and archive files (none);
#   - what `runs prune` and `archive prune` take back.
# Throwaway Postgres, the Graph fake in its own process (LeadFlowBench's scenario: 10 Pages
# × 5 forms, leads with name, e-mail, phone, company, job title and custom answers).
# Usage: bash scripts/measure-disk.sh [leads] [idle-runs]   (default 100000 50)
#        MEASURE_BUILD=release for a release build (the figures do not depend on it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
leads=${1:-100000}
idle=${2:-50}
config=${MEASURE_BUILD:-debug}
work=$(mktemp -d /tmp/leadflow-measure-disk.XXXXXX)
chmod 755 "$work"
fake_pid=
stop_fake() { [ -n "$fake_pid" ] && { exec 3>&-; wait "$fake_pid" 2>/dev/null || true; fake_pid=; }; return 0; }
cleanup() { stop_fake; stop_postgres; rm -rf "$work"; }
trap cleanup EXIT
start_postgres
for product in leadflow graph-fake LeadFlowBench; do
    swift build -c "$config" --product "$product" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
done
bin=.build/$config

psql "$LEADFLOW_TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE measure"
url="postgresql://$PG_USER@127.0.0.1:$PG_PORT/measure"
sql() { psql "$url" -v ON_ERROR_STOP=1 -qAt -c "$1"; }

"$bin/LeadFlowBench" scenario "$leads" > "$work/scenario.json"
now=2026-12-01T00:00:00Z
mkfifo "$work/fake-in"
"$bin/graph-fake" "$work/scenario.json" --now "$now" --exit-on-stdin-eof < "$work/fake-in" > "$work/fake-out" &
fake_pid=$!
exec 3> "$work/fake-in"
for _ in $(seq 1 1200); do grep -q listening "$work/fake-out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/fake-out" || { echo "the Graph fake did not start" >&2; exit 1; }

export DATABASE_URL="$url" LEADFLOW_HOME="$work/home" LEADFLOW_NOW="$now" LEADFLOW_GRAPH_URL=$(awk '{print $3}' "$work/fake-out")
export LEADFLOW_APP_ID=1234567890 LEADFLOW_APP_SECRET=fake-app-secret
pages=10
for page in $(seq 1001 $((1000 + pages))); do
    echo "EAAB-bench-$page" | "$bin/leadflow" connect --quiet --instance bench --page "$page" --name "bench-$page"
done

# Sizes after VACUUM, so dead tuples of the load's own upserts do not count.
tables="leads lead_rejections archives runs run_passes run_forms form_snapshots forms watermarks work_rounds work_items metric_totals"
sizes() {
    sql "VACUUM ANALYZE" >/dev/null
    for table in $tables; do printf '%s %s %s\n' "$table" "$(sql "SELECT count(*) FROM $table")" "$(sql "SELECT pg_total_relation_size('$table')")"; done
    printf 'database - %s\n' "$(sql "SELECT pg_database_size(current_database())")"
    printf 'archives-on-disk %s %s\n' "$(find "$LEADFLOW_HOME/archives" -type f 2>/dev/null | wc -l)" \
        "$(du -sb "$LEADFLOW_HOME/archives" 2>/dev/null | awk '{print $1}' || echo 0)"
}
at() { date -u -d "$now + $1 minutes" +%Y-%m-%dT%H:%M:%SZ; }

sizes > "$work/empty"
"$bin/leadflow" run --quiet
loaded=$(sql "SELECT count(*) FROM leads")
[ "$loaded" -eq "$leads" ] || { echo "loaded $loaded leads, expected $leads" >&2; exit 1; }
sizes > "$work/loaded"
# The raw pages' own size (what zstd compressed): the fake's generated leads repeat their
# names and answers, so they compress better than real ones; this is the ceiling.
raw=0
for archive in $(find "$LEADFLOW_HOME/archives" -type f); do
    raw=$((raw + $(bsdtar -tvf "$archive" | awk '{ s += $5 } END { print s + 0 }')))
done
for i in $(seq 1 "$idle"); do LEADFLOW_NOW=$(at $((10 * i))) "$bin/leadflow" run --quiet; done
sizes > "$work/idle"
# Two days later, prune what is older than a day: every run above.
LEADFLOW_NOW=$(at 2880) "$bin/leadflow" runs prune --quiet --older-than 1
LEADFLOW_NOW=$(at 2880) "$bin/leadflow" archive prune --quiet --older-than 1
sizes > "$work/pruned"

value() { awk -v t="$2" -v c="$3" '$1 == t { print $c }' "$work/$1"; }
delta() { echo $(( $(value "$2" "$3" "$4") - $(value "$1" "$3" "$4") )); }
per1000() { awk -v b="$1" -v n="$leads" 'BEGIN { printf "%.0f", b * 1000 / n }'; }

echo "LeadFlow disk use, $leads leads over $pages Pages x 5 forms, then $idle runs that find nothing new ($config build)"
echo
echo "per 1,000 leads loaded:"
printf '  archives (tar.zst, LEADFLOW_HOME)          %8s bytes  (%s files for the first run)\n' \
    "$(per1000 "$(delta empty loaded archives-on-disk 3)")" "$(value loaded archives-on-disk 2)"
printf '  the same pages uncompressed (the ceiling)  %8s bytes\n' "$(per1000 "$raw")"
printf '  leads table, indexes and TOAST             %8s bytes\n' "$(per1000 "$(delta empty loaded leads 3)")"
printf '  the whole database                         %8s bytes\n' "$(per1000 "$(delta empty loaded database 3)")"
echo
echo "per run that finds nothing new, per connection ($idle runs x $pages connections):"
runs_passes=$((idle * pages))
for table in runs run_passes run_forms form_snapshots work_rounds work_items; do
    awk -v t="$table" -v r="$(delta loaded idle "$table" 2)" -v b="$(delta loaded idle "$table" 3)" -v n="$runs_passes" \
        'BEGIN { printf "  %-16s %6.2f rows  %7.0f bytes\n", t, r / n, b / n }'
done
awk -v b="$(delta loaded idle database 3)" -v n="$runs_passes" 'BEGIN { printf "  %-16s %21.0f bytes\n", "whole database", b / n }'
printf '  %-16s %6s files\n' "archives" "$(delta loaded idle archives-on-disk 2)"
echo
echo "runs prune --older-than 1 and archive prune --older-than 1, two days later:"
for table in runs run_passes run_forms form_snapshots work_rounds work_items; do
    printf '  %-16s %8s rows left of %s\n' "$table" "$(value pruned "$table" 2)" "$(value idle "$table" 2)"
done
printf '  %-16s %8s files left of %s (%s bytes freed)\n' "archives" "$(value pruned archives-on-disk 2)" "$(value idle archives-on-disk 2)" \
    "$(delta pruned idle archives-on-disk 3)"
echo "(Work rounds are dated by the server's clock, which LEADFLOW_NOW does not move: here they are minutes old and stay."
echo " Postgres reuses the freed rows' space for new ones; its files shrink only after VACUUM FULL.)"
