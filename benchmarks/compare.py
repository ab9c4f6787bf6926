"""Side-by-side comparison of `ad` against PyTorch (and jax, when it is importable).

Run from the repository root:

    python -m benchmarks.compare                  # every workload, about 8 minutes on 2 cores
    python -m benchmarks.compare --quick          # one round, fewer repetitions, about 2 minutes
    python -m benchmarks.compare --only W1,W6     # selected workloads (W2: W2-f32 and W2-f64; FC: first call)
    python -m benchmarks.compare --libs ad,torch  # selected libraries (default: ad, torch, and jax if installed)
    python -m benchmarks.compare --json out.json --plot per_op.png
    python -m benchmarks.compare --threads 1      # single-threaded torch, BLAS and numba (shared machines)
    python -m benchmarks.compare --device cuda --quick  # the GPU table: W2, W3 and W8 on the GPU
    python -m benchmarks.compare --stop-after 60  # start no workload after 60 s (a GPU session's time is short)

On a GPU (`--device cuda`, with numba-cuda and a CUDA build of torch; jax when its default backend is a GPU):
every input, parameter and constant lives on the GPU, every timed phase ends with the library's device
synchronization (`ad.cuda.synchronize()`, `torch.cuda.synchronize()`, jax's `block_until_ready`), and the
results handed back for the check are copied to the host after checking that they were computed on the GPU.
The GPU table has the whole-step workloads: W2-f32 and W2-f64 (MLP step), W8-f32 and W8-f64 (conv step; `ad`'s
conv2d runs on the host with CUDA operands, copies included) and W3 (4M-element chain); the others, the first
call and --plot are CPU measurements, left out with a line that says why. A library that sees no GPU (a CPU
build of torch, jax on its CPU backend) is skipped with a message, never measured on the CPU; so is
`ad.compile`, which runs CUDA tensors eagerly (its column would repeat ad's). The header names the GPU as the
libraries report it (numba.cuda, torch.cuda). Without a GPU, `NUMBA_ENABLE_CUDASIM=1 python -m
benchmarks.compare --device cuda --tiny --libs ad` runs ad's workers end to end in numba-cuda's simulator on
tiny shapes (tests/cuda/test_compare_cuda.py checks them against the CPU); its times mean nothing.

Each library runs in its own process. For every workload and library a fresh interpreter (this module's
`worker`) imports that library alone, builds the inputs of `workloads.py`, runs one repetition whose results
(losses, gradients, tangents) it hands back to be checked against torch's (np.allclose, tolerances by dtype),
warms up, and times repetitions for its share of the time budget. Why: a library's worker threads (torch's
OpenMP pool, numpy's OpenBLAS) keep spinning for a while after its work; in one process, on a 2-core machine,
they took the cores from the other library (torch's float64 MLP step took 3.7 ms alone and 11.8 ms when
interleaved with ad's), and whichever library ran second paid for the first one's threads.

The workers of all libraries take turns, `rounds` times (3, or 1 with --quick; the order rotates), and the
samples of all rounds are pooled: a burst of load from elsewhere on a shared machine then falls on every
library rather than on one. Threads are each library's defaults (torch.get_num_threads(), OpenBLAS and numba
on every core) unless --threads or --torch-threads say otherwise. The garbage collector stays on during the
repetitions, as in a training loop (its automatic collections are part of what a step costs); `--cold` adds
a full gc.collect() before every repetition.

The report: per workload, the median [interquartile range] of the whole step (forward + backward: the sum of
the timed phases) for each library and the ratio torch/ad (above 1: ad is faster) as the headline, and the
phases' medians and ratios beside it, with "cpu": the worker process's CPU time (user + system, every thread,
spinning ones included) per repetition, which on a loaded machine shows what a step costs when wall times
mostly measure waiting for a core. The header names the machine (cores, load average) and the command.

A library that cannot be imported, or that fails on a workload (say an op `ad` does not have yet), is
skipped for that workload with a message; the others still run.

`--plot PATH` also sweeps a 200-op elementwise chain over sizes 1 to 1,000,000 and plots the cost per op
(forward, and forward + backward) of ad and torch against the size (needs matplotlib).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

try:
    from . import workloads as W
except ImportError:  # run as a script: python benchmarks/compare.py
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    import workloads as W  # type: ignore[no-redef]


@dataclass
class Case:
    key: str
    title: str
    build: Callable[..., W.Workload]  # build(backend, **shape): the workload; `tiny` holds small shapes
    dtype: str = "float64"
    compiled: bool = False  # also measured with the compiled libraries (W.COMPILED: ad.compile, jax.jit)
    cuda: bool = False  # measured with --device cuda (CUDA_LEFT_OUT says why the others are not)
    tiny: dict | None = None  # the builder's shape arguments under --tiny (None: not run under --tiny)
    cuda_note: str = ""  # what a reader of the GPU table should know about ad's run


# --tiny: shapes small enough for numba-cuda's simulator (each simulated GPU thread costs ~80 us)
TINY_MLP = {"batch": 4, "sizes": (12, 8, 8, 3)}
TINY_CONV = {"batch": 2, "channels": (3, 4, 5), "size": 6}
TINY_BIG = {"size": 64}
CONV_CUDA_NOTE = "ad's conv2d runs on the host on CUDA operands (two copies per call, ad/autograd/function.py)"

# The 4M-element workloads come last, so that a quick look at the small ones does not wait for them.
CASES = [
    Case("W1", "chain-small: 2,000 elementwise ops, 16 float64", W.chain_small, compiled=True),
    Case(
        "W2-f32",
        "mlp-step: 64x784-512-512-10, tanh, cross-entropy, float32",
        lambda b, **kw: W.mlp_step(b, "float32", **kw),
        "float32",
        compiled=True,
        cuda=True,
        tiny=TINY_MLP,
    ),
    Case(
        "W2-f64",
        "mlp-step: 64x784-512-512-10, tanh, cross-entropy, float64",
        lambda b, **kw: W.mlp_step(b, "float64", **kw),
        compiled=True,
        cuda=True,
        tiny=TINY_MLP,
    ),
    Case("W4-dbl", "hvp, sum(tanh(A x)), A 256x256: double backward", lambda b: W.hvp(b, "double-backward")),
    Case("W4-fwd", "hvp, sum(tanh(A x)), A 256x256: fwd over rev", lambda b: W.hvp(b, "fwd-over-rev")),
    Case("W4-hess", "full Hessian of sum(tanh(A x)), 256x256", lambda b: W.hvp(b, "hessian")),
    Case("W5-small", "jvp (forward mode) through W1's chain", W.jvp_chain),
    Case(
        "W6",
        "many-leaves: 2,000 leaves of 8 float64, forward + backward",
        lambda b: W.many_leaves(b, timed=("forward", "backward")),
        compiled=True,
    ),
    Case("W7", "2nd derivative of a 200-step scalar iteration", W.scalar_second_derivative),
    Case(
        "W8-f32",
        "conv-step: conv2d 32x3x32x32 -> 16 -> 32 channels, 3x3, tanh, float32",
        lambda b, **kw: W.conv_step(b, "float32", **kw),
        "float32",
        cuda=True,
        tiny=TINY_CONV,
        cuda_note=CONV_CUDA_NOTE,
    ),
    Case(
        "W8-f64",
        "conv-step: conv2d 32x3x32x32 -> 16 -> 32 channels, 3x3, tanh, float64",
        lambda b, **kw: W.conv_step(b, "float64", **kw),
        cuda=True,
        tiny=TINY_CONV,
        cuda_note=CONV_CUDA_NOTE,
    ),
    Case("W3", "big-elementwise: 8 ops, 4M float64", W.big_elementwise, compiled=True, cuda=True, tiny=TINY_BIG),
    Case("W5-big", "jvp (forward mode) through W3's chain", lambda b: W.jvp_chain(b, n_ops=8, size=4_000_000)),
]
# Why a workload is not in the GPU table (by key prefix)
CUDA_LEFT_OUT = {
    "W1": "a latency workload (2,000 ops on 16 elements): on a GPU it measures kernel launches, not the GPU",
    "W6": "a latency workload (2,000 leaves of 8 elements): on a GPU it measures kernel launches, not the GPU",
    "W4": "higher-order derivatives are not in the GPU table",
    "W5": "forward mode is not in the GPU table",
    "W7": "a 0-dim scalar iteration: nothing for a GPU to do",
}
FIRST_CALL_KEY = "FC"
STEP = "total"  # the phase that is the whole step: the sum of the timed phases, or the only one
CPU = "cpu"  # the worker process's CPU time (user + system, every thread) during a repetition
PHASE_ORDER = ("forward", "backward", "grad", "grad2", "import", "first_backward", "process", STEP, CPU)

# --plot: the per-op cost of a chain against its size
SWEEP_SIZES = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
SWEEP_OPS = 200
SWEEP_PREFIX = "sweep-"


def case_for(key: str) -> Case:
    """The case of `key`: one of CASES, or "sweep-SIZE" (a SWEEP_OPS-op chain of SIZE elements)."""
    if key.startswith(SWEEP_PREFIX):
        size = int(key[len(SWEEP_PREFIX) :])
        return Case(key, f"{SWEEP_OPS} ops, size {size}", lambda b: W.chain_small(b, n_ops=SWEEP_OPS, size=size))
    for case in CASES:
        if case.key == key:
            return case
    raise KeyError(f"unknown workload {key!r}")


@dataclass
class Settings:
    budget: float  # seconds of timed repetitions per workload, all libraries and rounds together
    min_reps: int  # per worker
    max_reps: int  # per worker
    warmup: int
    rounds: int  # turns of every library's worker per workload; samples pooled
    first_call_warm: int
    first_call_cold: int
    sweep_budget: float
    sweep_max_reps: int
    cold: bool = False  # a full gc.collect() before every repetition (--cold)

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(
                budget=2.0,
                min_reps=3,
                max_reps=20,
                warmup=1,
                rounds=1,
                first_call_warm=2,
                first_call_cold=1,
                sweep_budget=0.5,
                sweep_max_reps=5,
            )
        return cls(
            budget=12.0,
            min_reps=5,
            max_reps=200,
            warmup=2,
            rounds=3,
            first_call_warm=5,
            first_call_cold=3,
            sweep_budget=3.0,
            sweep_max_reps=30,
        )


@dataclass
class Result:
    key: str
    title: str
    libs: list[str]
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # lib -> phase -> seconds
    skipped: dict[str, str] = field(default_factory=dict)  # lib -> reason
    check: dict[str, str] = field(default_factory=dict)  # lib -> "ok" / "reference" / "MISMATCH: ..."
    load: dict[str, list[float]] = field(default_factory=dict)  # lib -> 1-minute load average at each worker start

    def stats(self, lib: str, phase: str) -> dict | None:
        xs = self.samples.get(lib, {}).get(phase)
        if not xs:
            return None
        q1, med, q3 = np.percentile(xs, [25, 50, 75])
        return {
            "median": float(med),
            "q1": float(q1),
            "q3": float(q3),
            "iqr": float(q3 - q1),
            "min": float(min(xs)),
            "n": len(xs),
        }

    def phases(self) -> list[str]:
        seen = {p for per_lib in self.samples.values() for p in per_lib}
        return [p for p in PHASE_ORDER if p in seen] + sorted(seen.difference(PHASE_ORDER))

    def step_phase(self) -> str | None:
        """The whole step: "total" where the workload times several phases, else its only phase."""
        phases = [p for p in self.phases() if p != CPU]
        return STEP if STEP in phases else (phases[0] if phases else None)

    def ratio(self, phase: str | None, lib: str = "ad") -> float | None:
        mine, torch = self.stats(lib, phase), self.stats("torch", phase)
        if mine is None or torch is None or mine["median"] <= 0:
            return None
        return torch["median"] / mine["median"]

    def add(self, lib: str, samples: dict[str, list[float]]) -> None:
        for phase, xs in samples.items():
            self.samples.setdefault(lib, {}).setdefault(phase, []).extend(xs)

    def to_json(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "skipped": self.skipped,
            "check": self.check,
            "load": self.load,
            "step_phase": self.step_phase(),
            "libs": {
                lib: {p: {**self.stats(lib, p), "samples": xs} for p, xs in per_lib.items()}
                for lib, per_lib in self.samples.items()
            },
            "ratio_torch_over_ad": {p: self.ratio(p) for p in self.phases()},
        }


def log(msg: str) -> None:
    print(msg, flush=True)


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


# ------------------------------------------------------------------------------------------------------------
# The worker: one library, one workload, in its own process
# ------------------------------------------------------------------------------------------------------------


def process_cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads (spinning worker threads included), with
    the resolution of CLOCK_PROCESS_CPUTIME_ID (``os.times`` counts 10 ms ticks)."""
    return time.process_time()


COMPILED_RECORDING_CALLS = 2  # ad.compile's calls per signature before the first replay (ad/compile.py)


def n_reps(seconds_per_rep: float, budget: float, min_reps: int, max_reps: int) -> int:
    if seconds_per_rep <= 0:
        return max_reps
    return int(min(max_reps, max(min_reps, budget / seconds_per_rep)))


def library_info(backend: W.Backend) -> dict:
    info = {"version": backend.version()}
    if backend.device != "cpu":
        info["gpu"] = backend.device_name()
    if backend.name == "torch":
        info["threads"] = backend.ns.get_num_threads()
    if backend.name == "ad":
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    return info


def worker(spec: dict) -> dict:
    """Run `spec["key"]` with library `spec["lib"]` on `spec["device"]` (default "cpu"), with the shapes of
    `--tiny` if `spec["tiny"]`: check run, warm-up, timed repetitions (gc on).

    Returns {"samples": phase -> seconds, "info": ..., "load": ...} or {"error": why}; writes the
    first repetition's outputs (copied to the host) to `spec["outputs"]` (.npz) when given.
    """
    result = {"load": load_average()}
    try:
        backend = W.load_backend(spec["lib"], spec.get("device", "cpu"))
        result["info"] = library_info(backend)
        if spec["key"] == "probe":
            return result
        case = case_for(spec["key"])
        if spec.get("tiny") and case.tiny is None:
            raise W.Unavailable(f"{case.key} has no --tiny shapes")
        wl = case.build(backend, **(case.tiny if spec.get("tiny") else {}))
        wl.repetition()  # the first call: compiles kernels, and gives the results to check
        if spec.get("outputs"):
            np.savez(spec["outputs"], **wl.outputs())
        seconds_per_rep = 0.0
        # ad.compile records on its first two calls and replays from the third, whose first replay loads the
        # replay kernels (0.1-1 s): warm up past it, so that neither a timed repetition nor the estimate of a
        # repetition's cost (which sizes the number of repetitions: the last warm-up) is a recording or a load
        extra = COMPILED_RECORDING_CALLS if backend.compiled and not backend.functional else 0
        for _ in range(spec["warmup"] + extra):
            start = time.perf_counter()
            wl.repetition()
            seconds_per_rep = time.perf_counter() - start
        samples: dict[str, list[float]] = {}
        for _ in range(n_reps(seconds_per_rep, spec["budget"], spec["min_reps"], spec["max_reps"])):
            if spec.get("cold"):
                gc.collect()
            cpu = process_cpu_seconds()
            for phase, s in wl.repetition().items():
                samples.setdefault(phase, []).append(s)
            samples.setdefault(CPU, []).append(process_cpu_seconds() - cpu)
        result["samples"] = samples
    except Exception as exc:
        result["error"] = describe(exc)
    return result


WORKER_PROGRAM = (
    "import json, sys; sys.path.append({root!r}); from benchmarks.compare import worker; "
    "print(json.dumps(worker(json.loads(sys.argv[1]))))"
)


def run_worker(spec: dict, timeout: float = 900.0) -> dict:
    """`worker(spec)` in a fresh interpreter (the current directory first on its path, as for `-m`)."""
    program = WORKER_PROGRAM.format(root=str(W.REPO_ROOT))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", program, json.dumps(spec)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the worker ran past {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"the worker exited with status {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


# ------------------------------------------------------------------------------------------------------------
# The parent: workers in turn, samples pooled
# ------------------------------------------------------------------------------------------------------------


def run_case(
    case: Case,
    libs: list[str],
    settings: Settings,
    scratch: str,
    budget: float | None = None,
    max_reps: int | None = None,
    check: bool = True,
    device: str = "cpu",
    tiny: bool = False,
) -> Result:
    started = time.perf_counter()
    libs = [lib for lib in libs if case.compiled or lib not in W.COMPILED]
    result = Result(case.key, case.title, list(libs))
    budget = settings.budget if budget is None else budget
    share = budget / max(1, len(libs) * settings.rounds)
    outputs = {}
    for turn in range(settings.rounds):
        order = libs[turn % len(libs) :] + libs[: turn % len(libs)]  # who goes first rotates
        for lib in order:
            if lib in result.skipped:
                continue
            path = os.path.join(scratch, f"{case.key}-{lib}.npz") if check and lib not in outputs else None
            spec = {
                "key": case.key,
                "lib": lib,
                "budget": share,
                "min_reps": settings.min_reps,
                "max_reps": settings.max_reps if max_reps is None else max_reps,
                "warmup": settings.warmup,
                "cold": settings.cold,
                "outputs": path,
                "device": device,
                "tiny": tiny,
            }
            report = run_worker(spec)
            if "error" in report:
                result.skipped[lib] = report["error"]
                result.samples.pop(lib, None)
                log(f"  {lib}: skipped, {report['error']}")
                continue
            result.load.setdefault(lib, []).append(report["load"])
            result.add(lib, report["samples"])
            if path:
                with np.load(path) as npz:
                    outputs[lib] = {k: npz[k] for k in npz.files}
    if check:
        check_outputs(result, outputs, case.dtype)
    step = result.step_phase()
    for lib in result.samples:
        stats = result.stats(lib, step)
        log(f"  {lib}: {stats['n']} repetitions, median step {fmt_time(stats['median'])}")
    log(f"  ({time.perf_counter() - started:.0f} s)")
    return result


def check_outputs(result: Result, outputs: dict, dtype: str) -> None:
    ref = "torch" if "torch" in outputs else next(iter(outputs), None)
    for lib in outputs:
        if lib == ref:
            result.check[lib] = "reference" if len(outputs) > 1 else "no other library to compare with"
            continue
        problems = W.compare_outputs(outputs[lib], outputs[ref], dtype)
        result.check[lib] = f"MISMATCH with {ref}: " + "; ".join(problems) if problems else "ok"
        log(f"  {lib}: check against {ref}: {result.check[lib]}")


def run_first_call(libs: list[str], settings: Settings) -> list[Result]:
    """Fresh interpreters, from the import to the first finished backward; warm and cold numba caches."""
    libs = [lib for lib in libs if lib != "jax" and lib not in W.COMPILED]
    log("\n## FC: first call, from `import lib` to the first finished backward, in a fresh interpreter")
    warm = Result(f"{FIRST_CALL_KEY}-warm", "first call, warm numba cache", libs)
    cold = Result(f"{FIRST_CALL_KEY}-cold", "first call, empty numba cache (new NUMBA_CACHE_DIR)", libs)
    ok = []
    for lib in libs:
        try:
            W.first_call(lib)  # fills the numba cache, and checks that the program runs
            ok.append(lib)
        except Exception as exc:
            warm.skipped[lib] = cold.skipped[lib] = describe(exc)
            log(f"  {lib}: skipped, {describe(exc)}")
    plan = ((warm, False, settings.first_call_warm), (cold, True, settings.first_call_cold))
    for result, cold_cache, reps in plan:
        for _ in range(reps):
            for lib in ok:
                if lib in result.skipped:
                    continue
                try:
                    result.add(lib, {k: [v] for k, v in W.first_call(lib, cold=cold_cache).items()})
                except Exception as exc:
                    result.skipped[lib] = describe(exc)
                    log(f"  {lib}: skipped, {describe(exc)}")
        for lib in result.samples:
            log(f"  {result.key} {lib}: median total {fmt_time(result.stats(lib, STEP)['median'])}")
    return [warm, cold]


def run_sweep(libs: list[str], settings: Settings, scratch: str, path: str) -> dict | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("\n--plot: matplotlib is not installed; skipping the per-op cost plot (pip install matplotlib)")
        return None
    libs = [lib for lib in ("ad", "torch") if lib in libs]
    log(f"\n## per-op cost of a {SWEEP_OPS}-op elementwise chain against size ({', '.join(libs)})")
    sweep = {lib: {"size": [], "forward": [], "total": []} for lib in libs}
    for size in SWEEP_SIZES:
        result = run_case(
            case_for(f"{SWEEP_PREFIX}{size}"),
            libs,
            settings,
            scratch,
            settings.sweep_budget,
            settings.sweep_max_reps,
            check=False,
        )
        for lib in result.samples:
            sweep[lib]["size"].append(size)
            for phase in ("forward", "total"):
                sweep[lib][phase].append(result.stats(lib, phase)["median"] / SWEEP_OPS)
        per_op = [f"{lib} {fmt_time(result.stats(lib, STEP)['median'] / SWEEP_OPS)}/op" for lib in result.samples]
        log(f"  size {size:>9,}: " + ", ".join(per_op))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"ad": "tab:blue", "torch": "tab:orange"}
    for lib, data in sweep.items():
        if not data["size"]:
            continue
        ax.loglog(
            data["size"], np.array(data["total"]) * 1e6, "o-", color=colors[lib], label=f"{lib}: forward + backward"
        )
        ax.loglog(
            data["size"], np.array(data["forward"]) * 1e6, "s--", color=colors[lib], alpha=0.6, label=f"{lib}: forward"
        )
    ax.set_xlabel("elements per tensor")
    ax.set_ylabel("time per op (us)")
    ax.set_title(
        f"{SWEEP_OPS}-op elementwise chain (mul, add, sin, tanh, exp), float64, "
        + ("1 thread" if single_threaded() else f"{W.cpu_count()} cores")
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"  wrote {path}")
    return {"ops": SWEEP_OPS, "seconds_per_op": sweep, "png": path}


# ------------------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_cell(stats: dict | None) -> str:
    if stats is None:
        return "—"
    return f"{fmt_time(stats['median'])} [{fmt_time(stats['iqr'])}]"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def phases_cell(res: Result, libs: list[str]) -> str:
    """The timed phases of a multi-phase step, and the CPU time: the libraries' medians and torch/ad."""
    timed = [p for p in res.phases() if p not in (STEP, CPU)]
    shown = (timed if len(timed) > 1 else []) + [p for p in res.phases() if p == CPU]
    parts = []
    for phase in shown:
        times = ", ".join(f"{lib} {fmt_time(res.stats(lib, phase)['median'])}" for lib in libs if res.stats(lib, phase))
        parts.append(f"{phase}: {times} ({fmt_ratio(res.ratio(phase))})")
    return "; ".join(parts) or "—"


def compiled_ratio(res: Result, phase: str | None, other: str) -> float | None:
    """``other``'s median over ad.compile's (above 1: ad.compile is faster)."""
    mine, theirs = res.stats("ad.compile", phase), res.stats(other, phase)
    if mine is None or theirs is None or mine["median"] <= 0:
        return None
    return theirs["median"] / mine["median"]


def markdown_table(results: list[Result], libs: list[str]) -> str:
    compiled = all(lib in libs for lib in W.COMPILED)
    header = ["workload", *[f"{lib} step [IQR]" for lib in libs], "torch/ad step"]
    header += ["jax.jit/ad.compile step", "torch/ad.compile step"] if compiled else []
    header += ["phases (torch/ad)", "check"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for res in results:
        step = res.step_phase()
        checks = [f"{lib}: {c}" for lib, c in res.check.items() if c != "reference"]
        cells = [
            res.key,
            *[fmt_cell(res.stats(lib, step)) for lib in libs],
            fmt_ratio(res.ratio(step)),
            *(
                [fmt_ratio(compiled_ratio(res, step, "jax.jit")), fmt_ratio(res.ratio(step, "ad.compile"))]
                if compiled
                else []
            ),
            phases_cell(res, libs),
            "; ".join(checks) or "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def skipped_summary(results: list[Result]) -> str:
    lines = [f"- {res.key} {lib}: {why}" for res in results for lib, why in res.skipped.items()]
    return "\n".join(lines)


def machine_info() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    return {
        "cpu": model,
        "cores": W.cpu_count(),
        "os_cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else [0.0, 0.0, 0.0],
        "thread_variables": {v: os.environ[v] for v in THREAD_VARS if v in os.environ},
        "command": command_line(),
    }


def gpu_names(info: dict, libs: list[str]) -> str:
    """The GPU as the libraries name it: "NVIDIA H200", or "A (ad); B (torch)" if they name it differently;
    "" if none reported one."""
    seen: dict[str, list[str]] = {}
    for lib in libs:
        name = info.get(lib, {}).get("gpu")
        if name:
            seen.setdefault(name, []).append(lib)
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"{name} ({', '.join(names)})" for name, names in seen.items())


def command_line() -> str:
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    return shlex.join(["python", *argv[1:]])


# ------------------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------------------


def select(only: str | None) -> tuple[list[Case], bool]:
    """The cases named by --only (a key, or its prefix before "-": W2 selects W2-f32 and W2-f64), and whether
    the first-call measurement is selected."""
    if not only:
        return list(CASES), True
    tokens = {t.strip().upper() for t in only.split(",") if t.strip()}
    known = {c.key.upper() for c in CASES} | {c.key.split("-")[0].upper() for c in CASES}
    known |= {FIRST_CALL_KEY, "FIRST-CALL"}
    unknown = tokens - known
    if unknown:
        raise SystemExit(f"--only: unknown workload(s) {sorted(unknown)}; known: {sorted(known)}")
    cases = [c for c in CASES if c.key.upper() in tokens or c.key.split("-")[0].upper() in tokens]
    return cases, bool(tokens & {FIRST_CALL_KEY, "FIRST-CALL"})


def plan(cases: list[Case], with_first_call: bool, device: str, tiny: bool) -> tuple[list[Case], bool, list[str]]:
    """The selected cases that run on `device` (with --tiny shapes if `tiny`), whether the first call is
    measured, and a line for each selected measurement left out, saying why."""
    left_out = []
    if device != "cpu":
        left_out += [f"{c.key}: {CUDA_LEFT_OUT[c.key.split('-')[0]]}" for c in cases if not c.cuda]
        cases = [c for c in cases if c.cuda]
        if with_first_call:
            left_out.append(f"{FIRST_CALL_KEY}: the first call (import to first backward) is measured on the CPU only")
            with_first_call = False
    if tiny:
        left_out += [f"{c.key}: no --tiny shapes" for c in cases if c.tiny is None]
        cases = [c for c in cases if c.tiny is not None]
        if with_first_call:
            left_out.append(f"{FIRST_CALL_KEY}: not run with --tiny")
            with_first_call = False
    return cases, with_first_call, left_out


THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "AD_BENCH_TORCH_THREADS",
)


def single_threaded() -> bool:
    return all(os.environ.get(v) == "1" for v in THREAD_VARS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, fewer repetitions (about 2 minutes)")
    parser.add_argument(
        "--device",
        choices=W.DEVICES,
        default="cpu",
        help="where the tensors live (%(default)s); cuda: W2, W3 and W8 on the GPU, synchronized after every phase",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="tiny shapes, to check the workers end to end (e.g. --device cuda under NUMBA_ENABLE_CUDASIM=1); "
        "the times mean nothing",
    )
    parser.add_argument("--only", metavar="KEYS", help="comma-separated workloads: W1, ..., W8, W2-f32, FC")
    parser.add_argument("--libs", default=",".join(W.LIBRARIES), help="libraries to try (%(default)s)")
    parser.add_argument("--json", metavar="PATH", help="write all results, with the samples, to PATH")
    parser.add_argument("--plot", metavar="PATH", help="also plot the per-op cost against size to PATH (PNG)")
    parser.add_argument("--budget", type=float, help="seconds of timed repetitions per workload (all libraries)")
    parser.add_argument("--rounds", type=int, help="turns of every library's worker per workload (3; quick: 1)")
    parser.add_argument("--cold", action="store_true", help="a full gc.collect() before every repetition")
    parser.add_argument(
        "--stop-after",
        type=float,
        metavar="SECONDS",
        help="start no workload later than SECONDS after the start (the table shows those that finished and names "
        "the others): for a GPU session's limited time",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        metavar="N",
        help="torch.set_num_threads(N) in torch's workers (default: $AD_BENCH_TORCH_THREADS, else torch's own default)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="run everything on N threads: torch, BLAS, OpenMP and numba (sets "
        + ", ".join(f"{v}=N" for v in THREAD_VARS)
        + " for the workers)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        os.environ.update({v: str(args.threads) for v in THREAD_VARS})
    if args.torch_threads:
        os.environ["AD_BENCH_TORCH_THREADS"] = str(args.torch_threads)
    settings = Settings.make(args.quick)
    settings.cold = args.cold
    if args.budget is not None:
        settings.budget = args.budget
    if args.rounds is not None:
        settings.rounds = max(1, args.rounds)
    cases, with_first_call, left_out = plan(*select(args.only), args.device, args.tiny)
    started = time.perf_counter()

    info = machine_info()
    log(f"command: {info['command']}")
    log(
        f"machine: {info['cpu']}, {info['cores']} cores (os.cpu_count {info['os_cpu_count']}), "
        f"Python {info['python']}, numpy {info['numpy']}, {info['platform']}"
    )
    load = info["load_average"]
    log(f"load average: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min), {load[2]:.2f} (15 min)")
    if load[0] > 0.5 * info["cores"]:
        log(
            "WARNING: the machine is busy; timings will be noisy, multithreaded ones (torch, BLAS, parallel "
            "kernels) most: other runnable processes deschedule the threads a parallel region waits for"
        )
    log(
        "thread variables: "
        + (
            ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ)
            or "none set (each library's default: every core)"
        )
    )
    libs = []
    with tempfile.TemporaryDirectory(prefix="ad-bench-") as scratch:
        for lib in (s.strip() for s in args.libs.split(",") if s.strip()):
            probe = run_worker({"key": "probe", "lib": lib, "device": args.device})
            if "error" in probe:
                log(
                    f"{lib}: not available{' on ' + args.device if args.device != 'cpu' else ''}, skipped "
                    f"({probe['error']})"
                )
                continue
            libs.append(lib)
            info[lib] = probe["info"]
            log(f"{lib}: " + ", ".join(f"{k} {v}" for k, v in probe["info"].items()))
        info["device"] = args.device
        if args.device != "cpu":
            info["gpu"] = gpu_names(info, libs)
            log(f"device: {args.device}, GPU {info['gpu'] or '(no library sees one)'}")
        log(
            f"settings: {'quick' if args.quick else 'full'}, each library in its own process, {settings.rounds} "
            f"round(s) per workload, {settings.budget:g} s of repetitions per workload, {settings.min_reps} to "
            f"{settings.max_reps} repetitions per process after {settings.warmup} warm-up, gc on"
            + (", gc.collect() before every repetition (--cold)" if settings.cold else "")
            + (", the device synchronized at the end of every phase" if args.device != "cpu" else "")
            + (", --tiny shapes (the times mean nothing)" if args.tiny else "")
        )
        for line in left_out:
            log(f"not measured on {args.device}{' with --tiny' if args.tiny else ''}: {line}")
        results = []
        for case in cases if libs else []:
            if args.stop_after is not None and time.perf_counter() - started > args.stop_after:
                left_out.append(f"{case.key}: not started, {args.stop_after:g} s had passed (--stop-after)")
                log(f"\n## {case.key}: not started, {args.stop_after:g} s had passed (--stop-after)")
                continue
            log(f"\n## {case.key}: {case.title}")
            if args.device != "cpu" and case.cuda_note:
                log(f"  ({case.cuda_note})")
            results.append(run_case(case, libs, settings, scratch, device=args.device, tiny=args.tiny))
        if with_first_call and args.stop_after is not None and time.perf_counter() - started > args.stop_after:
            left_out.append(f"{FIRST_CALL_KEY}: not started, {args.stop_after:g} s had passed (--stop-after)")
        elif with_first_call:
            results.extend(run_first_call([s.strip() for s in args.libs.split(",") if s.strip()], settings))
        if args.plot and args.device != "cpu":
            log("\n--plot: the per-op cost sweep runs on the CPU only; skipped")
        sweep = run_sweep(libs, settings, scratch, args.plot) if args.plot and libs and args.device == "cpu" else None

    shown = [lib for lib in W.LIBRARIES if lib in libs or any(lib in r.skipped or lib in r.samples for r in results)]
    end_load = list(os.getloadavg()) if hasattr(os, "getloadavg") else [0.0, 0.0, 0.0]
    where = f"{info['cores']} cores" if args.device == "cpu" else f"GPU {info['gpu']}, {info['cores']} CPU cores"
    log(
        f"\n## Results: whole step (forward + backward) medians [IQR], each library in its own process; torch/ad > 1 "
        f"means ad is faster. {where}, load average {load[0]:.2f} at start, {end_load[0]:.2f} at "
        f"end; {time.perf_counter() - started:.0f} s in all. Command: {info['command']}\n"
    )
    log(markdown_table(results, shown))
    skipped = skipped_summary(results)
    if skipped:
        log("\nSkipped:\n" + skipped)
    if left_out:
        log(f"\nNot measured on {args.device}:\n" + "\n".join(f"- {line}" for line in left_out))
    if args.json:
        payload = {
            "machine": info,
            "settings": asdict(settings),
            "quick": args.quick,
            "device": args.device,
            "tiny": args.tiny,
            "left_out": left_out,
            "results": [r.to_json() for r in results],
            "sweep": sweep,
            "wall_seconds": time.perf_counter() - started,
            "load_average_at_end": end_load,
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1)
        log(f"\nwrote {args.json}")
    mismatches = [f"{r.key} {lib}" for r in results for lib, c in r.check.items() if c.startswith("MISMATCH")]
    if mismatches:
        log("\nMISMATCH (results differ from the reference): " + ", ".join(mismatches))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
