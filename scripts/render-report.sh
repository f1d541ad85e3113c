#!/usr/bin/env bash
# Renders a gap report's HTML to a PNG with headless Chromium (Debian's
# chromium-headless-shell, installed when missing), to look at it and for the README.
# Usage: bash scripts/render-report.sh [report.html] [out.png] [height]
#   default: the demo's report (.leadflow/demo/gap-report.html) → docs/gap-report.png,
#   1920 px tall: the whole of the demo's report (headlines, totals, four timelines).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
LEADFLOW_APT_PACKAGES=(chromium-headless-shell)
ensure_packages

html=$(realpath "${1:-.leadflow/demo/gap-report.html}")
png=${2:-docs/gap-report.png}
height=${3:-1920}
mkdir -p "$(dirname "$png")"
[ -f "$html" ] || { say "no report at $html: run bash scripts/demo.sh first"; exit 1; }
# --no-sandbox: Chromium's sandbox refuses to start as root.
chromium-headless-shell --no-sandbox --disable-gpu --hide-scrollbars --window-size="1040,$height" \
    --screenshot="$(realpath -m "$png")" "file://$html" 2>/dev/null
say "wrote $png"
