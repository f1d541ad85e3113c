#!/usr/bin/env bash
# COPY throughput: the Postgres adapter (release build) against psql's \copy of the same
# rows, on one throwaway cluster, in one run. Usage: bash scripts/bench-copy.sh [rows] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
trap stop_postgres EXIT
start_postgres
swift build -c release --product LeadFlowBench
DATABASE_URL="$LEADFLOW_TEST_DATABASE_URL" .build/release/LeadFlowBench copy "${1:-500000}" "${2:-3}"
