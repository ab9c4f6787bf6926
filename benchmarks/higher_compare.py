"""Issue 12's figures, each library in its own process: `python -m benchmarks.higher_compare [case ...]`.

Each (library, case) runs in a fresh `python -c` process with gc on: one warming repetition, then repetitions
for `--seconds` (at least 5); the median is printed in ms, with torch's time over ad's. `--threads N` runs
both libraries on N threads (as `benchmarks.compare --threads`: on a shared machine, 1); the median CPU time
of a repetition (all threads) and the load average are printed beside each line. Cases:

- `hessian`: W4's `functional.hessian` (A 256x256 float64, f(x) = sum(tanh(A x))), default arguments;
  `hessian-vec`: the same with `vectorize=True` (torch's fastest Hessian);
- `hvp-db`, `hvp-fwd`: W4's Hessian-vector product by double backward and by forward over reverse;
- `w7`: W7, the second derivative of a 200-step scalar iteration;
- `jac`: `functional.jacobian` of the 64 -> 128 -> 128 -> 64 tanh MLP, `vectorize=True`; `jac-fwd`: the same
  with `strategy="forward-mode"` (one forward pass with batched tangents);
- `bgrad64`: `grad(..., is_grads_batched=True)` with 64 cotangents through the W1 chain; `grad1x8`: 8 single
  `grad` calls on the same graph (the issue asks for `bgrad64` < `grad1x8`).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CASES = ("hessian", "hessian-vec", "hvp-db", "hvp-fwd", "w7", "jac", "jac-fwd", "bgrad64", "grad1x8")

_CHILD = r"""
import gc, json, sys, time
import numpy as np
from benchmarks import bench_higher as b
from benchmarks import workloads as W

lib, case, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
gc.enable()
backend = W.load_backend(lib)
if case in ("hessian", "hessian-vec"):
    wl = W.hvp(backend, "hessian", 256)
    if case == "hessian-vec":
        wl.total = lambda: setattr(wl, "h", wl.lib.autograd.functional.hessian(
            lambda x: wl.f(wl.lib, x), wl.x, vectorize=True))
elif case == "hvp-db":
    wl = W.hvp(backend, "double-backward", 256)
elif case == "hvp-fwd":
    wl = W.hvp(backend, "fwd-over-rev", 256)
elif case == "w7":
    wl = W.scalar_second_derivative(backend, 200)
elif case == "jac":
    wl = b._MLPJacobian(backend, True)
elif case == "jac-fwd":
    wl = b._MLPJacobian(backend, True, strategy="forward-mode")
elif case == "bgrad64":
    wl = b._BatchedGrad(backend, 64)
elif case == "grad1x8":
    wl = b._BatchedGrad(backend, 1)
    g1 = wl.g[0]

    def eight():
        for _ in range(8):
            wl.lib.autograd.grad(wl.out, wl.x, g1, retain_graph=True)

    wl.total = eight
wl.repetition()
times, cpu = [], []
end = time.perf_counter() + seconds
while time.perf_counter() < end or len(times) < 5:
    c0 = time.process_time()
    rep = wl.repetition()
    cpu.append(time.process_time() - c0)
    times.append(rep.get("total", sum(rep.values())))
print(json.dumps({"median_ms": float(np.median(times)) * 1e3, "cpu_ms": float(np.median(cpu)) * 1e3, "n": len(times)}))
"""


def measure(lib, case, seconds):
    """Median ms of ``case`` for ``lib`` in a fresh process (wall, and the process's CPU time over all its
    threads, whose excess over wall is worker threads spinning), or the error's last line."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, lib, case, str(seconds)], capture_output=True, text=True, cwd=root
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = "error: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
        return err, err
    result = json.loads(lines[-1])
    return result["median_ms"], result["cpu_ms"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), help=f"any of {', '.join(CASES)}")
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent repeating each case")
    parser.add_argument("--threads", type=int, default=0, help="N threads for torch, BLAS, OpenMP and numba")
    args = parser.parse_args(argv)
    if args.threads:
        from .compare import THREAD_VARS

        os.environ.update({v: str(args.threads) for v in THREAD_VARS})
    for case in args.cases:
        (a, a_cpu), (t, t_cpu) = measure("ad", case, args.seconds), measure("torch", case, args.seconds)
        fmt = lambda v: f"{v:10.3f} ms" if isinstance(v, float) else v  # noqa: E731
        ratio = f"{t / a:6.2f}" if isinstance(a, float) and isinstance(t, float) else "   n/a"
        both = isinstance(a_cpu, float) and isinstance(t_cpu, float)
        cpu = f"cpu ad {a_cpu:.3f} ms, torch {t_cpu:.3f} ms" if both else ""
        load = os.getloadavg()[0]
        print(f"{case:12s} ad {fmt(a)}   torch {fmt(t)}   torch/ad {ratio}   {cpu}   (load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
