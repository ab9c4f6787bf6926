#!/usr/bin/env bash
# GPU check (issue 10): on a machine with an NVIDIA GPU, run the CUDA tests on the device and print the CUDA
# benchmark table. Works offline: installs nothing from a registry, uses the numba, numba-cuda, CuPy and torch
# that the machine has (`pip install --no-deps --no-build-isolation -e .`, or PYTHONPATH=. if that fails).
# Usage: bash scripts/gpu_check.sh            (from anywhere; PYTHON=python3.12 picks the interpreter)
# One call, 9 minutes at most (measured on an H200 in session 14: tests 195 s, bench 62 s; tests/cuda has grown
# by ~170 tests since, about 30-60 s more): every step has its own timeout
# (seconds; override with the variables below), a step that runs out is reported and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
T_INSTALL="${T_INSTALL:-30}" T_TESTS="${T_TESTS:-275}" T_BENCH="${T_BENCH:-80}" T_COMPARE="${T_COMPARE:-75}"
T_TRAFFIC="${T_TRAFFIC:-50}" T_AUDIT="${T_AUDIT:-25}"
# Logs go to $LOGS (default $OUT, the device tool's return folder, else a temporary folder): tests.log with every
# failure's short traceback, junit.xml, compare_cuda.json.
LOGS="${LOGS:-${OUT:-$(mktemp -d)}}"
mkdir -p "$LOGS"
export NUMBA_ENABLE_CUDASIM=0
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1

if ! timeout "$T_INSTALL" "$PY" -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null; then
    echo "gpu_check: pip install -e . failed (offline?); using PYTHONPATH=."
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# numba-cuda 0.30.4 (in maintenance, NVIDIA/numba-cuda#907) registers an overload of np.row_stack, which numpy
# 2.5 removed, so with numpy 2.5 its first kernel compile raises AttributeError. The extras pin numpy<2.5; a
# machine whose image has numpy 2.5 and nothing to install from gets the alias back (numpy's own, removed) for
# this check only, through a sitecustomize that then runs the one it shadows.
if ! "$PY" -c "import numpy; numpy.row_stack" 2>/dev/null; then
    SHIM="$(mktemp -d)"
    cat > "$SHIM/sitecustomize.py" <<'SHIMPY'
import importlib.machinery, importlib.util, os, sys
import numpy
if not hasattr(numpy, "row_stack"):
    numpy.row_stack = numpy.vstack
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here])
if _spec is not None:
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
SHIMPY
    export PYTHONPATH="$SHIM:$PYTHONPATH"
    echo "gpu_check: numpy has no row_stack (numpy >= 2.5): numba-cuda gets the alias back for this check"
fi

"$PY" - <<'PY' || exit 1
from numba import cuda
if not cuda.is_available():
    raise SystemExit("gpu_check: numba-cuda sees no GPU (driver or CUDA runtime missing)")
dev = cuda.get_current_device()
import numba, numpy
try:
    from importlib.metadata import version
    nc = version("numba-cuda")
except Exception:
    nc = "?"
print(f"gpu_check: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}, "
      f"compute capability {dev.compute_capability}; numba {numba.__version__}, numba-cuda {nc}, "
      f"numpy {numpy.__version__}")
try:
    import cupy
    print(f"gpu_check: CuPy {cupy.__version__} (cuBLAS matmul)")
except Exception as exc:
    print(f"gpu_check: no CuPy ({type(exc).__name__}): matmul uses the tiled kernel")
PY

status=0
step() {  # step NAME SECONDS COMMAND...: run with a timeout, say how it ended
    local name="$1" limit="$2"
    shift 2
    echo "== $name (timeout ${limit} s) =="
    local start=$SECONDS
    local log="$LOGS/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_' | cut -c1-40).log"
    timeout "$limit" "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    if [ $rc -eq 124 ]; then
        echo "gpu_check: $name ran out of time after ${limit} s"
    fi
    echo "gpu_check: $name: exit $rc in $((SECONDS - start)) s"
    [ $rc -eq 0 ] || status=1
}

# -o addopts: the repository's `-n auto` would start one worker per core; numba-cuda's compiler is CPU-bound, so
# up to 8 workers share the one GPU when pytest-xdist is there (each its own context), else one process. No -x:
# a first run on a new GPU should list every failure.
WORKERS=()
if "$PY" -c "import xdist" 2>/dev/null; then WORKERS=(-n "${GPU_TEST_WORKERS:-8}"); fi
step "CUDA tests on the device" "$T_TESTS" "$PY" -m pytest tests/cuda "${WORKERS[@]}" -q -rfE --tb=short \
    -p no:cacheprovider -o addopts="" --junitxml="$LOGS/junit.xml"
step "CUDA kernel and ad benchmarks" "$T_BENCH" "$PY" -m kernels.cuda.bench
# what the host does around the kernels (launches and their grids, copies in bytes, allocations, waits) in one
# backward of the bench's chain at two sizes (the copies must not grow with n) and one bench-sized MLP step
step "host traffic of ad's CUDA backward" "$T_TRAFFIC" "$PY" -m scripts.cuda_host_traffic --n 1048576 16777216 \
    --mlp 1024 4096 10
# the device-to-host copies of one training step of each model (MLP, conv net, LSTM, transformer layer, embedding
# bag, losses and norms), by call chain: scripts/cuda_step_audit.py; unbuffered, so a timeout keeps what it printed
step "device-to-host copies per training step" "$T_AUDIT" "$PY" -u -m scripts.cuda_step_audit --depth 3 \
    mlp conv lstm cross_entropy embedding_bag transformer losses_norms
# the README's GPU table: each library in its own process, medians of the whole step; --stop-after starts no
# workload after 55 s, so the table is printed inside the step's limit even when start-up is slow
step "benchmarks.compare --device cuda" "$T_COMPARE" "$PY" -m benchmarks.compare --device cuda --quick \
    --stop-after 55 --json "$LOGS/compare_cuda.json"
exit $status
