#!/usr/bin/env bash
# Holds the Graph fake to Meta's own Python SDK (facebook-business 25.0.1): plays
# fixtures/scenarios/conformance.json and runs Tests/GraphConformance/conformance.py,
# one check per documented Graph behaviour. Safe to run again: the SDK lives in a
# virtualenv at .build/venv-conformance, installed from PyPI once.
# The fake: $GRAPH_FAKE if set (used as is), else .build/debug/graph-fake, built first
# (`swift build --product graph-fake`, a no-op when up to date) so the source is what runs.
# Usage: bash scripts/graph-conformance.sh        Exit: 0 all checks pass, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SDK="facebook-business==25.0.1"
VENV=.build/venv-conformance
PYTHON="$VENV/bin/python"

fail() { say "$*"; exit 1; }

command -v python3 >/dev/null || fail "python3 is required for the Graph conformance suite (apt-get install python3 python3-venv)"

# A venv that runs and has pip is kept; anything else (a half-made one) is made again.
venv_ok() { [ -x "$PYTHON" ] && "$PYTHON" -m pip --version >/dev/null 2>&1; }

make_venv() {
    rm -rf "$VENV"
    mkdir -p .build
    python3 -m venv "$VENV" >"$VENV.log" 2>&1
}

if ! venv_ok; then
    if ! make_venv; then
        # Debian's python3 makes venvs only with python3-venv (ensurepip lives there).
        if command -v dpkg-query >/dev/null; then
            LEADFLOW_APT_PACKAGES=(python3-venv)
            ensure_packages || fail "cannot create a virtualenv: python3 -m venv failed and python3-venv could not be installed (run as root, or apt-get install python3-venv)"
        fi
        make_venv || fail "cannot create a virtualenv: python3 -m venv failed (see $VENV.log; on Debian apt-get install python3-venv)"
    fi
    venv_ok || fail "the virtualenv at $VENV has no working pip (see $VENV.log)"
fi

installed=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("facebook-business"))' 2>/dev/null || true)
if [ "$installed" != "${SDK#*==}" ]; then
    say "installing $SDK into $VENV"
    "$PYTHON" -m pip install --disable-pip-version-check --no-input --quiet --timeout 20 --retries 2 "$SDK" \
        >"$VENV/pip.log" 2>&1 ||
        fail "cannot install $SDK from PyPI (no network or no index?): $(grep -E 'ERROR|Error' "$VENV/pip.log" | tail -n 1)"
fi

if [ -n "${GRAPH_FAKE:-}" ]; then
    [ -x "$GRAPH_FAKE" ] || fail "GRAPH_FAKE=$GRAPH_FAKE is not an executable"
else
    GRAPH_FAKE=.build/debug/graph-fake
    if command -v swift >/dev/null; then
        swift build --product graph-fake >"$VENV/swift-build.log" 2>&1 ||
            fail "swift build --product graph-fake failed (see $VENV/swift-build.log)"
    fi
    [ -x "$GRAPH_FAKE" ] || fail "no $GRAPH_FAKE: build it (swift build --product graph-fake) or set GRAPH_FAKE"
fi
export GRAPH_FAKE

exec "$PYTHON" Tests/GraphConformance/conformance.py
