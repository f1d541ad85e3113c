#!/usr/bin/env bash
# The whole test suite, with the real parts: installs what is missing (apt), starts a
# throwaway PostgreSQL as an unprivileged user and an SMTP server on loopback, runs `swift
# test`, and removes both whatever happens. Safe to run again. Usage: bash scripts/test.sh [swift test args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# The deploy files' tests measure the systemd unit with systemd-analyze (nothing is started).
LEADFLOW_APT_PACKAGES+=(systemd)
ensure_packages
command -v swift >/dev/null || { say "Swift 6 is required (https://www.swift.org/install/linux/)"; exit 1; }

trap 'stop_smtp; stop_postgres' EXIT
# fsync off: the cluster is thrown away, and the tests assert LeadFlow's own durability.
start_postgres -c fsync=off -c full_page_writes=off -c max_connections=200
# The notification tests' mail server.
start_smtp

# Build first so the CLI tests find .build/debug/leadflow.
swift build --build-tests
# The Graph fake held to Meta's own SDK first: every later test stands on the fake.
GRAPH_FAKE=.build/debug/graph-fake bash scripts/graph-conformance.sh
swift test --skip-build --disable-xctest "$@"
