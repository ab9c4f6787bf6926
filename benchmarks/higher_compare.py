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

`--libs` picks the columns (default `ad,torch`): `ad.compile` runs the whole computation of `hvp-db`, `w7`
(forward, `grad(create_graph=True)`, the second `grad`), `hvp-fwd` (the dual level, `grad` inside it, `unpack_dual`)
and `jac` (`functional.jacobian`) as one function under `ad.compile` (its two recording calls and first replay are
warm-up), and says so if that function ran eagerly; `jax.jit` the same computation under `jax.jit` (`jax.grad` of
`jax.grad`; `jax.jvp` of `jax.grad`; `jax.jacrev`).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CASES = ("hessian", "hessian-vec", "hvp-db", "hvp-fwd", "w7", "jac", "jac-fwd", "bgrad64", "grad1x8")
LIBS = ("ad", "ad.compile", "torch", "jax.jit")
COMPILED_CASES = ("hvp-db", "hvp-fwd", "w7", "jac")  # the cases measured under ad.compile and jax.jit

_CHILD = r"""
import gc, json, sys, time
import numpy as np
from benchmarks import bench_higher as b
from benchmarks import workloads as W

lib, case, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
gc.enable()
compiled = lib in ("ad.compile", "jax.jit")
backend = W.load_backend("jax" if lib == "jax.jit" else "ad" if compiled else lib)
if compiled and case in ("hvp-db", "w7"):
    wl = W.hvp(backend, "double-backward", 256) if case == "hvp-db" else W.scalar_second_derivative(backend, 200)
    f, v, ns = wl.f, wl.v, backend.ns
    if lib == "ad.compile":
        def step(x):
            y = f(ns, x)
            (g,) = ns.autograd.grad(y, x, create_graph=True)
            (h,) = ns.autograd.grad(g if v is None else (g * v).sum(), x)
            return y, g, h
        run = ns.compile(step)
    else:
        jax = backend.jax
        df = jax.grad(lambda x: f(ns, x))
        def step(x):
            h = jax.grad(df)(x) if v is None else jax.grad(lambda x: (df(x) * v).sum())(x)
            return f(ns, x), df(x), h
        run = jax.jit(step)
    wl.steps = wl.timed = ("total",)
    wl.total = lambda: backend.sync(*run(wl.x))
elif compiled and case == "hvp-fwd":
    wl = W.hvp(backend, "fwd-over-rev", 256)
    f, v, ns = wl.f, wl.v, backend.ns
    if lib == "ad.compile":
        fwd = ns.autograd.forward_ad
        def step(x):
            with fwd.dual_level():
                xd = fwd.make_dual(x, v)
                (g,) = ns.autograd.grad(f(ns, xd), xd)
                return fwd.unpack_dual(g)
        run = ns.compile(step)
    else:
        jax = backend.jax
        run = jax.jit(lambda x: jax.jvp(jax.grad(lambda x: f(ns, x)), (x,), (v,)))
    wl.steps = wl.timed = ("total",)
    wl.total = lambda: backend.sync(*run(wl.x))
elif compiled and case == "jac":
    wl = b._MLPJacobian(W.load_backend("ad"), True)
    if lib == "ad.compile":
        jac_f = wl.f
        run = backend.ns.compile(lambda x: backend.ns.autograd.functional.jacobian(jac_f, x, vectorize=True))
        x = wl.x
    else:
        jax, jnp = backend.jax, backend.jax.numpy
        p = [jnp.asarray(t.numpy()) for t in wl.params]
        def mlp(x):
            h = jnp.tanh(p[0] @ x + p[1])
            h = jnp.tanh(p[2] @ h + p[3])
            return p[4] @ h + p[5]
        run = jax.jit(jax.jacrev(mlp))
        x = jnp.asarray(wl.x.numpy())
    wl.backend = backend
    wl.total = lambda: backend.sync(run(x))
elif compiled:
    raise SystemExit(f"{lib}: only {', '.join(('hvp-db', 'hvp-fwd', 'w7', 'jac'))} are measured compiled")
elif case in ("hessian", "hessian-vec"):
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
if lib == "ad.compile":  # two recording calls, then the first replay
    wl.repetition()
    wl.repetition()
    eager = [e.eager for e in run.cache.values() if e.eager is not None]
    if eager or not any(e.template is not None for e in run.cache.values()):
        raise SystemExit("ad.compile ran it eagerly: " + (eager[0] if eager else "no template"))
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
    parser.add_argument("--libs", default="ad,torch", help=f"comma-separated columns, of {', '.join(LIBS)}")
    args = parser.parse_args(argv)
    if args.threads:
        from .compare import THREAD_VARS

        os.environ.update({v: str(args.threads) for v in THREAD_VARS})
    libs = args.libs.split(",")
    for lib in libs:
        if lib not in LIBS:
            parser.error(f"unknown library {lib!r}; expected some of {', '.join(LIBS)}")
    fmt = lambda v: f"{v:10.3f} ms" if isinstance(v, float) else v  # noqa: E731
    for case in args.cases:
        res = {
            lib: measure(lib, case, args.seconds)
            for lib in libs
            if case in COMPILED_CASES or lib not in ("ad.compile", "jax.jit")
        }
        load = os.getloadavg()[0]
        if libs == ["ad", "torch"]:  # (the original two-column line)
            (a, a_cpu), (t, t_cpu) = res["ad"], res["torch"]
            ratio = f"{t / a:6.2f}" if isinstance(a, float) and isinstance(t, float) else "   n/a"
            both = isinstance(a_cpu, float) and isinstance(t_cpu, float)
            cpu = f"cpu ad {a_cpu:.3f} ms, torch {t_cpu:.3f} ms" if both else ""
            print(f"{case:12s} ad {fmt(a)}   torch {fmt(t)}   torch/ad {ratio}   {cpu}   (load {load:.1f})", flush=True)
            continue
        torch_ms = res.get("torch", (None,))[0]
        cells = []
        for lib, (ms, cpu_ms) in res.items():
            cell = f"{lib} {fmt(ms)}"
            if isinstance(ms, float):
                cell += f" (cpu {cpu_ms:.3f} ms"
                cell += f", torch/{lib} {torch_ms / ms:.2f})" if isinstance(torch_ms, float) and lib != "torch" else ")"
            cells.append(cell)
        print(f"{case:12s} " + "   ".join(cells) + f"   (load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
