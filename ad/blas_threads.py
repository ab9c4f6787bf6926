"""numpy's BLAS on one thread for a region: for work that ``ad.parallel`` already splits across cores.

A convolution splits its batch over Python threads (``ad.parallel.run_parts``), each calling numpy's GEMM
on its own samples. OpenBLAS's threaded GEMM does not mix with that: calls from two threads at once
serialize on its level-3 lock and its workers spin while they wait for each other (a W8 conv step took 30x
the CPU time at 2 threads, measured), and even a serial loop of small per-sample GEMMs pays a thread
wake-up per call. ``single_threaded()`` sets OpenBLAS to one thread for the duration of such a region and
puts back the previous count after it. OpenBLAS has no per-thread setting outside its OpenMP builds, so this
is the library-wide count (``threadpoolctl`` does the same): a BLAS call from another thread of the program
in the meantime runs on one thread too (correct, only slower).

The control is found once, lazily, through ctypes: each OpenBLAS library loaded in the process (numpy's
wheels ship ``scipy_openblas64_``, whose symbols carry a ``scipy_`` prefix and a ``64_`` suffix; a system
OpenBLAS has plain names). ``available()`` is False where none is found (numpy on MKL or Accelerate): callers
then keep their serial path, which leaves the BLAS to thread itself.
"""

import ctypes
import glob
import os
import threading

# (set, get) symbol pairs, most specific first
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)

_controls = None  # [(set, get)] of every OpenBLAS found; found on first use
_lock = threading.Lock()
_depth = 0  # regions open now (from any thread): the count is put back when the last one closes
_saved = []


def _library_paths():
    """Loaded libraries whose name says OpenBLAS: from the process's map (Linux), else numpy's bundled ones."""
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    if not paths:
        import numpy

        root = os.path.dirname(os.path.dirname(numpy.__file__))
        for pattern in ("numpy.libs/*openblas*", "numpy/.libs/*openblas*", "numpy/.dylibs/*openblas*"):
            paths += sorted(glob.glob(os.path.join(root, pattern)))
    return paths


def _find_controls():
    controls = []
    for path in _library_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                controls.append((setter, getter))
                break
    return controls


def _get_controls():
    global _controls
    if _controls is None:
        with _lock:
            if _controls is None:
                _controls = _find_controls()
    return _controls


def available():
    """Whether numpy's BLAS thread count can be set (an OpenBLAS was found)."""
    return bool(_get_controls())


class _SingleThreaded:
    """The region of ``single_threaded()``: a plain class, not a generator-based context manager (entered on
    every batched sweep that runs a GEMM in its kernel, where the generator's frame was a third of the cost)."""

    __slots__ = ()

    def __enter__(self):
        global _depth, _saved
        controls = _controls if _controls is not None else _get_controls()
        with _lock:
            if _depth == 0:
                _saved = [getter() for _, getter in controls]
                for setter, _ in controls:
                    setter(1)
            _depth += 1
        return None

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (setter, _), count in zip(_controls, _saved):
                    setter(count)
        return False


_SINGLE = _SingleThreaded()


def single_threaded():
    """numpy's BLAS runs each call on the calling thread while the region is open (nests, any thread)."""
    return _SINGLE
