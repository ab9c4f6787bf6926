"""asv suite for the first-call cost: a fresh interpreter, from `import lib` to its first finished backward.

`workloads.first_call` runs the program; these `track_*` benchmarks report its in-process times, in seconds.
With a warm numba cache (setup runs the program once first) and a cold one (NUMBA_CACHE_DIR pointed at a new,
empty directory, so that every kernel compiles); torch has no such cache, so its "cold" variant is skipped.
"""

from .asv_support import LIBS, W


class FirstCall:
    params = (LIBS, ["warm", "cold"])
    param_names = ("lib", "numba_cache")
    unit = "seconds"
    timeout = 600.0

    def setup(self, lib, numba_cache):
        if lib == "torch" and numba_cache == "cold":
            raise NotImplementedError("torch has no numba cache to empty")
        W.load_backend(lib)  # Unavailable (a NotImplementedError) skips it
        if numba_cache == "warm":
            W.first_call(lib)  # fills the cache; fails (skips) if the program cannot run

    def track_first_backward(self, lib, numba_cache):
        """From `import lib` to the end of the first backward."""
        return W.first_call(lib, cold=numba_cache == "cold")["total"]

    def track_import(self, lib, numba_cache):
        """The import alone."""
        return W.first_call(lib, cold=numba_cache == "cold")["import"]
