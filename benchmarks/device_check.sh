#!/usr/bin/env bash
# The prepared device check (benchmarks/device_check.py): the GPU-only paths first, then
# throughput, probe time and as much of Figure 4 as fits the budget.
#   benchmarks/device_check.sh [--tiny] [--budget-s 480]      figures under $OUT (default: ./device-check)
# Works offline: a missing dependency that travels as a wheel in .whl/ (dit and its pure-Python
# needs; benchmarks/README.md says how to fetch them) is installed from there; otherwise the
# check stops at once, naming what is missing. If pip cannot install the package, the
# repository is imported in place.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
log="$OUT/install.log"
: >"$log"
if ! "$PY" -c "import dit" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    site="$(mktemp -d)"
    # one by one: a wheel for another Python (wrapt's) must not stop the pure-Python ones
    for w in .whl/*.whl; do
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$w" >>"$log" 2>&1 \
            || echo "skipped $w" >>"$log"
    done
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
missing=$("$PY" - <<'PY'
import importlib.util
need = ["torch", "torchvision", "numpy", "sklearn", "dit", "seaborn", "typer", "rich", "markdown", "threadpoolctl"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
    echo "error: the device check needs $missing, which this machine lacks and cannot download;" \
         "put their wheels in .whl/ (benchmarks/README.md)" | tee -a "$log" >&2
    exit 2
fi
if ! (cd /tmp && "$PY" -c "import comm_diag.cli" 2>/dev/null); then
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . >>"$log" 2>&1 || true
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
    echo "comm-diag imported in place from $PWD (not installed)" >>"$log"
fi
exec "$PY" benchmarks/device_check.py --out "$OUT" "$@"
