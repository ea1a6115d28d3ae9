#!/usr/bin/env bash
# The prepared device check (benchmarks/device_check.py): installs comm-diag if it is not
# importable, then measures throughput, probe time and as much of Figure 4 as fits.
#   benchmarks/device_check.sh [--tiny] [--budget-s 480]      figures under $OUT (default: ./device-check)
# Works offline: if pip cannot reach an index, the repository is imported in place.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
if ! (cd /tmp && "$PY" -c "import comm_diag.cli" 2>/dev/null); then
    "$PY" -m pip install -q -e . >"$OUT/install.log" 2>&1 \
        || "$PY" -m pip install -q --no-deps --no-build-isolation -e . >>"$OUT/install.log" 2>&1 \
        || true
fi
if ! (cd /tmp && "$PY" -c "import comm_diag.cli" 2>/dev/null); then
    # no install possible (offline, missing build backend): import the repository as comm_diag
    SHIM="$(mktemp -d)"
    ln -s "$PWD" "$SHIM/comm_diag"
    export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
    mkdir -p "$SHIM/bin"
    printf '#!/bin/sh\nexec %s -m comm_diag.cli "$@"\n' "$PY" >"$SHIM/bin/comm-diag"
    chmod +x "$SHIM/bin/comm-diag"
    export PATH="$SHIM/bin:$PATH"
    echo "comm-diag imported in place from $PWD (not installed)" >>"$OUT/install.log"
fi
exec "$PY" benchmarks/device_check.py --out "$OUT" "$@"
