#!/usr/bin/env bash
# Fuzzes the Graph page parser and the pipeline-file parser (release build), SECONDS each
# (default 600), from SEED (default: the time). A crash leaves its input in
# fuzz-current-<parser>.bin: make it a regression test. Usage: bash scripts/fuzz.sh [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
seed=${2:-$(date +%s)}
swift build -c release --product LeadFlowFuzz 2>&1 | grep -E "error|Compiling|Build complete" | grep -v "^\[" || true
echo "seed $seed"
.build/release/LeadFlowFuzz graph "$seconds" "$seed"
.build/release/LeadFlowFuzz pipeline "$seconds" "$seed"
