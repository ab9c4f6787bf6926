"""Side-by-side comparison of `ad` against PyTorch (and jax, when it is importable).

Run from the repository root:

    python -m benchmarks.compare                  # every workload, about 4 minutes on 2 cores
    python -m benchmarks.compare --quick          # fewer repetitions, about a minute
    python -m benchmarks.compare --only W1,W6     # selected workloads (W2: W2-f32 and W2-f64; FC: first call)
    python -m benchmarks.compare --json out.json --plot per_op.png
    python -m benchmarks.compare --threads 1      # single-threaded torch, BLAS and numba (shared machines)

For every workload of `workloads.py` and every library: build the same inputs, run one repetition and check
that the results (losses, gradients, tangents) agree with torch's (np.allclose, tolerances by dtype), warm
up, then time repetitions interleaved across the libraries (ad, torch, ad, torch, ...), with the garbage
collector disabled during each repetition (its automatic collections run between them, as in a training
loop). The number of repetitions adapts to a time budget per workload. With more than one thread the
libraries take turns in blocks of ten repetitions, each block after a 0.2 s pause and one untimed
repetition: a library's worker threads (torch's OpenMP, numpy's OpenBLAS) keep spinning for a while after its
work, and on a 2-core machine they took the cores from the other library's next repetition (torch's float64
MLP step took 3.7 ms alone and 11.8 ms when interleaved one by one with ad's).

`--cold` runs a full `gc.collect()` before every repetition instead (the setting of the first versions of
this tool): a full collection walks every Python object (hundreds of thousands with torch imported) and
leaves the caches cold, which adds a few hundred microseconds to each small workload, more to the library
that touches more Python objects per step, so the small workloads' ratios differ between the two modes.

The report is a markdown table of medians with their interquartile range, and the ratio torch/ad (above 1:
ad is faster).

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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    build: Callable[[W.Backend], W.Workload]
    dtype: str = "float64"


# The 4M-element workloads run last: freeing their 32 MB buffers raises glibc's mmap threshold, after which
# medium-sized allocations come from the heap and are cleared by memset instead of arriving as fresh zero
# pages, which slowed the small workloads measured after them (the W4 Hessian: 39 ms alone, 50 to 65 ms
# after W3).
CASES = [
    Case("W1", "chain-small: 2,000 elementwise ops, 16 float64", W.chain_small),
    Case("W2-f32", "mlp-step: 64x784-512-512-10, tanh, cross-entropy, float32",
         lambda b: W.mlp_step(b, "float32"), "float32"),
    Case("W2-f64", "mlp-step: 64x784-512-512-10, tanh, cross-entropy, float64",
         lambda b: W.mlp_step(b, "float64")),
    Case("W4-dbl", "hvp, sum(tanh(A x)), A 256x256: double backward", lambda b: W.hvp(b, "double-backward")),
    Case("W4-fwd", "hvp, sum(tanh(A x)), A 256x256: fwd over rev", lambda b: W.hvp(b, "fwd-over-rev")),
    Case("W4-hess", "full Hessian of sum(tanh(A x)), 256x256", lambda b: W.hvp(b, "hessian")),
    Case("W5-small", "jvp (forward mode) through W1's chain", W.jvp_chain),
    Case("W6", "many-leaves: backward into 2,000 leaves of 8 float64", W.many_leaves),
    Case("W7", "2nd derivative of a 200-step scalar iteration", W.scalar_second_derivative),
    Case("W8-f32", "conv-step: conv2d 32x3x32x32 -> 16 -> 32 channels, 3x3, tanh, float32",
         lambda b: W.conv_step(b, "float32"), "float32"),
    Case("W8-f64", "conv-step: conv2d 32x3x32x32 -> 16 -> 32 channels, 3x3, tanh, float64",
         lambda b: W.conv_step(b, "float64")),
    Case("W3", "big-elementwise: 8 ops, 4M float64", W.big_elementwise),
    Case("W5-big", "jvp (forward mode) through W3's chain",
         lambda b: W.jvp_chain(b, n_ops=8, size=4_000_000)),
]
FIRST_CALL_KEY = "FC"
PHASE_ORDER = ("forward", "backward", "grad", "grad2", "import", "first_backward", "process", "total")


@dataclass
class Settings:
    budget: float  # seconds of timed repetitions per workload, all libraries together
    min_reps: int
    max_reps: int
    warmup: int
    first_call_warm: int
    first_call_cold: int
    sweep_budget: float
    sweep_max_reps: int
    cold: bool = False  # a full gc.collect() before every repetition (--cold)
    block: int = 10  # with several threads: repetitions of one library in a row (see interleave)

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(budget=2.0, min_reps=3, max_reps=20, warmup=1, first_call_warm=2, first_call_cold=1,
                       sweep_budget=0.5, sweep_max_reps=5)
        return cls(budget=12.0, min_reps=5, max_reps=200, warmup=2, first_call_warm=5, first_call_cold=3,
                   sweep_budget=3.0, sweep_max_reps=30)


@dataclass
class Result:
    key: str
    title: str
    libs: list[str]
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # lib -> phase -> seconds
    skipped: dict[str, str] = field(default_factory=dict)  # lib -> reason
    check: dict[str, str] = field(default_factory=dict)  # lib -> "ok" / "reference" / "MISMATCH: ..."

    def stats(self, lib: str, phase: str) -> dict | None:
        xs = self.samples.get(lib, {}).get(phase)
        if not xs:
            return None
        q1, med, q3 = np.percentile(xs, [25, 50, 75])
        return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
                "min": float(min(xs)), "n": len(xs)}

    def phases(self) -> list[str]:
        seen = {p for per_lib in self.samples.values() for p in per_lib}
        return [p for p in PHASE_ORDER if p in seen] + sorted(seen.difference(PHASE_ORDER))

    def ratio(self, phase: str) -> float | None:
        ad, torch = self.stats("ad", phase), self.stats("torch", phase)
        if ad is None or torch is None or ad["median"] <= 0:
            return None
        return torch["median"] / ad["median"]

    def to_json(self) -> dict:
        return {
            "key": self.key, "title": self.title, "skipped": self.skipped, "check": self.check,
            "libs": {lib: {p: {**self.stats(lib, p), "samples": xs} for p, xs in per_lib.items()}
                     for lib, per_lib in self.samples.items()},
            "ratio_torch_over_ad": {p: self.ratio(p) for p in self.phases()},
        }


def log(msg: str) -> None:
    print(msg, flush=True)


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# ------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------

def one_repetition(wl: W.Workload, cold: bool = False) -> dict[str, float]:
    if cold:
        gc.collect()
    gc.disable()
    try:
        return wl.repetition()
    finally:
        gc.enable()


def n_reps(round_seconds: float, settings: Settings, budget: float | None = None,
           max_reps: int | None = None) -> int:
    budget = settings.budget if budget is None else budget
    max_reps = settings.max_reps if max_reps is None else max_reps
    if round_seconds <= 0:
        return max_reps
    return int(min(max_reps, max(settings.min_reps, budget / round_seconds)))


def interleave(workloads: dict, result: Result, settings: Settings, budget=None, max_reps=None) -> None:
    """Warm up, then time repetitions of every library's workload in turn; failures skip that library."""
    def rep(lib, record):
        try:
            seconds = one_repetition(workloads[lib], settings.cold)
        except Exception as exc:
            result.skipped[lib] = f"failed while timing: {describe(exc)}"
            log(f"  {lib}: skipped, {result.skipped[lib]}")
            del workloads[lib]
            result.samples.pop(lib, None)
            return 0.0
        if record:
            for phase, s in seconds.items():
                result.samples.setdefault(lib, {}).setdefault(phase, []).append(s)
        return sum(v for k, v in seconds.items() if k != "total")

    round_seconds = 0.0
    for _ in range(settings.warmup):
        start = time.perf_counter()
        for lib in list(workloads):
            rep(lib, record=False)
        round_seconds = time.perf_counter() - start
    reps = n_reps(round_seconds, settings, budget, max_reps)
    gc.collect()  # the warm-up's garbage: not to be collected during the timed series
    block = settings.block if multithreaded() else 1
    done = 0
    while done < reps:
        for lib in list(workloads):
            if block > 1:
                # the other library's worker threads (OpenMP, OpenBLAS) spin for a while after its turn and
                # would take the cores from this one: let them go idle, then one untimed repetition
                time.sleep(SETTLE_SECONDS)
                rep(lib, record=False)
            for _ in range(min(block, reps - done)):
                rep(lib, record=True)
        done += block


SETTLE_SECONDS = 0.2


def multithreaded() -> bool:
    """Whether the libraries may use more than one thread (``--threads 1`` sets every variable to 1)."""
    return W.cpu_count() > 1 and not all(os.environ.get(v) == "1" for v in THREAD_VARS)


def run_case(case: Case, backends: dict[str, W.Backend], settings: Settings) -> Result:
    log(f"\n## {case.key}: {case.title}")
    started = time.perf_counter()
    result = Result(case.key, case.title, list(backends))
    workloads, outputs = {}, {}
    for lib, backend in backends.items():
        try:
            wl = case.build(backend)
            wl.repetition()  # the first call: compiles kernels, and gives the results to check
            outputs[lib] = wl.outputs()
            workloads[lib] = wl
        except Exception as exc:
            result.skipped[lib] = describe(exc)
            log(f"  {lib}: skipped, {result.skipped[lib]}")
    ref = "torch" if "torch" in outputs else next(iter(outputs), None)
    for lib in outputs:
        if lib == ref:
            result.check[lib] = "reference" if len(outputs) > 1 else "no other library to compare with"
            continue
        problems = W.compare_outputs(outputs[lib], outputs[ref], case.dtype)
        result.check[lib] = f"MISMATCH with {ref}: " + "; ".join(problems) if problems else "ok"
        log(f"  {lib}: check against {ref}: {result.check[lib]}")
    if workloads:
        interleave(workloads, result, settings)
    for lib in result.samples:
        total = result.stats(lib, "total" if "total" in result.samples[lib] else result.phases()[0])
        log(f"  {lib}: {total['n']} repetitions, median {fmt_time(total['median'])}")
    log(f"  ({time.perf_counter() - started:.0f} s)")
    return result


def run_first_call(libs: list[str], settings: Settings) -> list[Result]:
    """Fresh interpreters, from the import to the first finished backward; warm and cold numba caches."""
    libs = [lib for lib in libs if lib != "jax"]
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
                    seconds = W.first_call(lib, cold=cold_cache)
                except Exception as exc:
                    result.skipped[lib] = describe(exc)
                    log(f"  {lib}: skipped, {describe(exc)}")
                    continue
                for phase, s in seconds.items():
                    result.samples.setdefault(lib, {}).setdefault(phase, []).append(s)
        for lib in result.samples:
            log(f"  {result.key} {lib}: median total {fmt_time(result.stats(lib, 'total')['median'])}")
    return [warm, cold]


# ------------------------------------------------------------------------------------------------------------
# Per-op cost against size (--plot)
# ------------------------------------------------------------------------------------------------------------

SWEEP_SIZES = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
SWEEP_OPS = 200


def run_sweep(backends: dict[str, W.Backend], settings: Settings, path: str) -> dict | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("\n--plot: matplotlib is not installed; skipping the per-op cost plot (pip install matplotlib)")
        return None
    libs = [lib for lib in ("ad", "torch") if lib in backends]
    log(f"\n## per-op cost of a {SWEEP_OPS}-op elementwise chain against size ({', '.join(libs)})")
    sweep = {lib: {"size": [], "forward": [], "total": []} for lib in libs}
    for size in SWEEP_SIZES:
        result = Result(f"sweep-{size}", f"{SWEEP_OPS} ops, size {size}", libs)
        workloads = {}
        for lib in libs:
            try:
                wl = W.chain_small(backends[lib], n_ops=SWEEP_OPS, size=size)
                wl.repetition()
                workloads[lib] = wl
            except Exception as exc:
                log(f"  {lib}: size {size} skipped, {describe(exc)}")
        interleave(workloads, result, settings, settings.sweep_budget, settings.sweep_max_reps)
        for lib in result.samples:
            sweep[lib]["size"].append(size)
            for phase in ("forward", "total"):
                sweep[lib][phase].append(result.stats(lib, phase)["median"] / SWEEP_OPS)
        per_op = [f"{lib} {fmt_time(result.stats(lib, 'total')['median'] / SWEEP_OPS)}/op"
                  for lib in result.samples]
        log(f"  size {size:>9,}: " + ", ".join(per_op))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"ad": "tab:blue", "torch": "tab:orange"}
    for lib, data in sweep.items():
        if not data["size"]:
            continue
        ax.loglog(data["size"], np.array(data["total"]) * 1e6, "o-", color=colors[lib],
                  label=f"{lib}: forward + backward")
        ax.loglog(data["size"], np.array(data["forward"]) * 1e6, "s--", color=colors[lib], alpha=0.6,
                  label=f"{lib}: forward")
    ax.set_xlabel("elements per tensor")
    ax.set_ylabel("time per op (us)")
    single = all(os.environ.get(v) == "1" for v in THREAD_VARS)
    ax.set_title(f"{SWEEP_OPS}-op elementwise chain (mul, add, sin, tanh, exp), float64, "
                 + ("1 thread" if single else f"{W.cpu_count()} cores"))
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


def markdown_table(results: list[Result], libs: list[str]) -> str:
    header = ["workload", "phase", *[f"{lib} median [IQR]" for lib in libs], "torch/ad", "check"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for res in results:
        phases = res.phases() or ["—"]
        checks = [f"{lib}: {c}" for lib, c in res.check.items() if c != "reference"]
        check = "; ".join(checks) or "—"
        for phase in phases:
            ratio = res.ratio(phase)
            cells = [res.key, phase, *[fmt_cell(res.stats(lib, phase)) for lib in libs],
                     "—" if ratio is None else f"{ratio:.2f}x", check]
            lines.append("| " + " | ".join(cells) + " |")
            check = ""
    return "\n".join(lines)


def skipped_summary(results: list[Result]) -> str:
    lines = [f"- {res.key} {lib}: {why}" for res in results for lib, why in res.skipped.items()]
    return "\n".join(lines)


def machine_info(backends: dict[str, W.Backend]) -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    info = {"cpu": model, "cores": W.cpu_count(), "os_cpu_count": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else [0.0, 0.0, 0.0],
            "thread_variables": {v: os.environ[v] for v in THREAD_VARS if v in os.environ}}
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        info["numba"] = "not installed"
    for lib, backend in backends.items():
        info[lib] = backend.version()
    if "torch" in backends:
        info["torch_threads"] = backends["torch"].ns.get_num_threads()
    return info


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


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "AD_BENCH_TORCH_THREADS")


def reexec_with_threads(n: int) -> None:
    """Start this command again with the thread-count variables set to n (they are read at import)."""
    if all(os.environ.get(v) == str(n) for v in THREAD_VARS):
        return
    env = {**os.environ, **{v: str(n) for v in THREAD_VARS}}
    log("re-executing with " + " ".join(f"{v}={n}" for v in THREAD_VARS))
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute in all)")
    parser.add_argument("--only", metavar="KEYS", help="comma-separated workloads: W1, ..., W8, W2-f32, FC")
    parser.add_argument("--libs", default=",".join(W.LIBRARIES), help="libraries to try (%(default)s)")
    parser.add_argument("--json", metavar="PATH", help="write all results, with the samples, to PATH")
    parser.add_argument("--plot", metavar="PATH", help="also plot the per-op cost against size to PATH (PNG)")
    parser.add_argument("--budget", type=float, help="seconds of timed repetitions per workload")
    parser.add_argument("--cold", action="store_true",
                        help="a full gc.collect() before every repetition (cold caches; see above)")
    parser.add_argument("--torch-threads", type=int, metavar="N",
                        help="torch.set_num_threads(N) (default: $AD_BENCH_TORCH_THREADS, else the cores)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="run everything on N threads: torch, BLAS, OpenMP and numba (re-executes with "
                             + ", ".join(f"{v}=N" for v in THREAD_VARS) + ")")
    args = parser.parse_args(argv)
    if args.threads and argv is None:
        reexec_with_threads(args.threads)
    settings = Settings.make(args.quick)
    settings.cold = args.cold
    if args.budget is not None:
        settings.budget = args.budget
    cases, with_first_call = select(args.only)
    started = time.perf_counter()

    requested = [s.strip() for s in args.libs.split(",") if s.strip()]
    backends = {}
    for lib in requested:
        try:
            backends[lib] = W.load_backend(lib)
        except W.Unavailable as exc:
            log(f"{lib}: not available, skipped ({exc})")
    if "torch" in backends and args.torch_threads:
        backends["torch"].ns.set_num_threads(args.torch_threads)
    info = machine_info(backends)
    log(f"machine: {info['cpu']}, {info['cores']} cores (os.cpu_count {info['os_cpu_count']}), "
        f"Python {info['python']}, {info['platform']}")
    log("versions: " + ", ".join(f"{k} {info[k]}" for k in ("numpy", "numba", *backends) if k in info))
    if "torch" in backends:
        log(f"torch threads: set with torch.set_num_threads ({W.cpu_count()} cores); "
            f"torch.get_num_threads() = {info['torch_threads']}")
    if "numba_threads" in info:
        log(f"numba threads: {info['numba_threads']}")
    log("thread variables: " + (", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ)
                                or "none set (BLAS and OpenMP use every core)"))
    load = info["load_average"]
    log(f"load average: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    if load[0] > 0.5 * info["cores"]:
        single = all(os.environ.get(v) == "1" for v in THREAD_VARS)
        log("WARNING: the machine is busy; timings will be noisy" + ("" if single else (
            ", and multithreaded ones (torch, BLAS, parallel kernels) much slower: other runnable processes "
            "deschedule the threads that a parallel region waits for (--threads 1 is steadier)")))
    log(f"settings: {'quick' if args.quick else 'full'}, {settings.budget:g} s of repetitions per workload, "
        f"{settings.min_reps} to {settings.max_reps} repetitions, {settings.warmup} warm-up, "
        + ("gc.collect() before every repetition (--cold)" if settings.cold else "gc off during repetitions"))

    results = []
    if backends:
        for case in cases:
            results.append(run_case(case, backends, settings))
    if with_first_call:
        results.extend(run_first_call(requested, settings))
    sweep = run_sweep(backends, settings, args.plot) if args.plot and backends else None

    libs = [lib for lib in W.LIBRARIES
            if lib in backends or any(lib in r.skipped or lib in r.samples for r in results)]
    log(f"\n## Results (median [IQR] of the repetitions; torch/ad > 1 means ad is faster; "
        f"{time.perf_counter() - started:.0f} s in all)\n")
    log(markdown_table(results, libs))
    skipped = skipped_summary(results)
    if skipped:
        log("\nSkipped:\n" + skipped)
    if args.json:
        payload = {"machine": info, "settings": vars(settings), "quick": args.quick,
                   "results": [r.to_json() for r in results], "sweep": sweep,
                   "wall_seconds": time.perf_counter() - started,
                   "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
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
