#!/usr/bin/env bash
# Plots benches/results/emit-latency.tsv (written by the compare harness) as
# benches/results/emit-ccdf.png, with matplotlib from a virtual environment
# made under the cargo target directory on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CARGO_TARGET_DIR:-$PWD/target}/plotvenv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check matplotlib
fi
exec "$VENV/bin/python" benches/plot_ccdf.py "$@"
