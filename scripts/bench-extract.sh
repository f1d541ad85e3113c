#!/usr/bin/env bash
# Extraction alone against the Graph fake (release build): leads/s and requests/s at 0 and
# 50 ms latency, concurrency 1 and 8, and peak memory. Usage: bash scripts/bench-extract.sh [leads]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
swift build -c release --product LeadFlowBench
swift build -c release --product graph-fake
.build/release/LeadFlowBench extract "${1:-100000}"
