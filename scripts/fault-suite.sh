#!/usr/bin/env bash
# The fault suite at full counts (CI runs the same tests with fewer kills): SIGKILL of
# `leadflow run` in each stage and at 100 random instants (seeded: a failure prints
# LEADFLOW_TEST_SEED=<seed>, set it to replay the instants), the database faults, a full disk, the secret
# scan, erasure, orphans of killed runs, a killed key rotation, late leads, frozen and stuck
# workers, file modes, the embedded cluster's environment, hostile archives and Graph's
# throttling (issue 18's tests), and the property-based fuzzers for SECONDS each (default 600).
# Usage: bash scripts/fault-suite.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
LEADFLOW_KILL_ROUNDS=100 bash scripts/test.sh \
    --filter 'killedInEachStage|killedAtRandomInstants|aKilledBackfill|DatabaseFault|anArchiveThatCannot|SecretScan|EraseCommand|OrphanTests|KeyCommandTests|clockSkew|GraphJSON|LateLeadsTests|WorkerTests|EdgeTests|EmbeddedClusterTests|ArchiveExtract'
bash scripts/fuzz.sh "${1:-600}"
