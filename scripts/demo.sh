#!/usr/bin/env bash
# The README's first command: installs what is missing (apt), builds LeadFlow, and runs
# `leadflow demo`: its own Postgres, the Graph fake, ~180 days of runs in under a minute.
# Safe to run again. Usage: bash scripts/demo.sh [leadflow demo options, e.g. --keep]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages
command -v swift >/dev/null || { say "Swift 6 is required (https://www.swift.org/install/linux/)"; exit 1; }

say "building (the first build takes a few minutes)"
swift build --product leadflow 2>&1 | grep -E "error|warning: |Compiling|Build complete" | grep -v "^\[" || true
test -x .build/debug/leadflow || { say "the build failed: run swift build to see why"; exit 1; }
# The demo's folder stays in the checkout (.leadflow/demo, as the README shows), not in the
# default LEADFLOW_HOME (/var/lib/leadflow for root, ~/.local/state/leadflow otherwise).
export LEADFLOW_HOME="${LEADFLOW_HOME:-$PWD/.leadflow}"
exec .build/debug/leadflow demo "$@"
