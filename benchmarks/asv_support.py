"""Shared machinery of the asv suites (`bench_*.py`).

Every asv class derives from `Suite`: its `build(backend, *params)` makes a workload of `workloads.py`, and
its `setup(lib, *params)` prepares one timed call. The first parameter of every suite is the library, `ad`
or `torch` (torch as the reference, on the same machine and commit); a library that cannot be imported, and
an `ad` that fails on a workload (an op it does not have yet, say), make setup raise `NotImplementedError`,
which asv reports as a skipped benchmark (the reason goes to stderr: `asv run --show-stderr`).

With `number = 1` and `warmup_time = 0`, asv runs setup before every timed call (asv_runner 0.3 re-runs it
per call whenever a class has a setup, older versions once per sample, that is per call here), so a
backward can be timed alone after a forward that setup runs untimed (`before`). Building a workload, and its
first, compiling, repetition (`warm`), happen once per process: the workload is cached between setups.

Peak-memory benchmarks (`peakmem_*`) report the process's maximum resident set, which includes the
library's import; their classes set `warm = False` so that setup does not reach the peak before the
measured call.
"""

from __future__ import annotations

import sys

from . import workloads as W

LIBS = ["ad", "torch"]

_cache: dict = {}  # (class name, lib, params) -> the workload, one entry at a time


class Suite:
    """Base of the asv classes (no benchmarks of its own)."""

    number = 1  # one call per sample, after a fresh setup
    warmup_time = 0.0  # no untimed calls between setups (the build runs one warming repetition instead)
    timeout = 300.0
    before: tuple[str, ...] = ()  # steps of the workload that setup runs (untimed) before the timed call
    warm = True  # build with one untimed repetition (compiles numba kernels, fills caches)

    def build(self, backend: W.Backend, *params) -> W.Workload:
        raise NotImplementedError

    def setup(self, lib, *params):
        key = (type(self).__name__, lib, params)
        wl = _cache.get(key)
        if wl is None:
            _cache.clear()
            backend = W.load_backend(lib)  # Unavailable (a NotImplementedError) skips the benchmark
            try:
                wl = self.build(backend, *params)
                if self.warm:
                    wl.repetition()
            except Exception as exc:
                if lib != "ad" or isinstance(exc, NotImplementedError):
                    raise
                name = type(self).__name__
                print(f"ad: {name}{params}: skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
                raise W.Unavailable(f"ad fails on this workload: {type(exc).__name__}: {exc}") from exc
            _cache[key] = wl
        self.wl = wl
        wl.prepare()
        wl.run_steps(self.before)

    def teardown(self, lib, *params):
        if getattr(self, "wl", None) is not None:
            self.wl.prepare()  # release the graph and the results of the timed call
