"""numpy's BLAS on one thread for a region: for work that ``ad.parallel`` already splits across cores; and the
GEMMs of dense rows split that way (``matmul``).

A convolution splits its batch over Python threads (``ad.parallel.run_parts``), each calling numpy's GEMM
on its own samples. OpenBLAS's threaded GEMM does not mix with that: calls from two threads at once
serialize on its level-3 lock and its workers spin while they wait for each other (a W8 conv step took 30x
the CPU time at 2 threads, measured), and even a serial loop of small per-sample GEMMs pays a thread
wake-up per call. ``single_threaded()`` sets OpenBLAS to one thread for the duration of such a region and
puts back the previous count after it. OpenBLAS has no per-thread setting outside its OpenMP builds, so this
is the library-wide count (``threadpoolctl`` does the same): a BLAS call from another thread of the program
in the meantime runs on one thread too (correct, only slower).

``matmul(a, b, out)`` is the GEMM of the matmul and linear rows (eager forward, compiled replay, backward
sweep): the output's columns (or rows) split into one block per core, each block one single-threaded GEMM
on its own thread. Why not OpenBLAS's threads: at a dense layer's shapes (a batch of 64 rows against a
512-wide layer) its threaded sgemm gained little over one thread (2 cores: 0.94 ms against 1.0 ms for
64x784 @ 784x512 in one measurement, 1.2x to 1.7x in others) while its workers spun for the whole step:
a W2 float32 step cost 2 to 3 times its wall time in CPU time, and on a loaded machine its median went from
3 ms to tens of ms, each GEMM waiting for a worker that had no core. Blocks of whole columns synchronize
once per GEMM (OpenBLAS: once per panel), and each block's GEMM runs at one core's full rate.

The control is found once, lazily, through ctypes: each OpenBLAS library loaded in the process (numpy's
wheels ship ``scipy_openblas64_``, whose symbols carry a ``scipy_`` prefix and a ``64_`` suffix; a system
OpenBLAS has plain names). ``available()`` is False where none is found (numpy on MKL or Accelerate): callers
then keep their serial path, which leaves the BLAS to thread itself.
"""

import ctypes
import glob
import os
import threading

import numpy as np

from . import parallel

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


# OpenBLAS threads a GEMM of at least this many multiply-adds (its SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD):
# from there on ``matmul`` holds it to the calling thread, so that its workers never wake (and then spin).
THREADED_MIN_MACS = 65536 * 4
# ``matmul`` splits a GEMM of at least this many multiply-adds across threads: about 25 us of one core's sgemm
# (50 us of dgemm) on the machine measured, against about 10 to 30 us to start and join the other thread.
SPLIT_MIN_MACS = 1 << 21
SPLIT_MIN_SPAN = 32  # output columns (or rows) per block at least: narrower blocks run BLAS's edge kernels


def matmul(a, b, out, accumulate=False):
    """``out = a @ b`` (``out += a @ b`` with ``accumulate``) for 2-D float arrays of one dtype (others: numpy's
    ``matmul`` as is), with ``out`` C-contiguous or a view whose rows are.

    A big product is split into one block of ``out``'s columns (its rows, when it has more rows than columns)
    per thread of ``ad.parallel``, each one single-threaded BLAS call; a smaller one runs on the calling thread
    (where OpenBLAS would thread it). Each element of ``out`` is the same dot product of one row and one column
    however the blocks fall, so the result is the serial call's up to the summation order BLAS picks for a
    block's shape; the eager op, the compiled replay and the sweep all come here and agree bit for bit.

    Example:
        >>> a, b = np.ones((64, 784), np.float32), np.ones((784, 512), np.float32)
        >>> out = np.empty((64, 512), np.float32)
        >>> matmul(a, b, out)
        >>> float(out[0, 0])
        784.0
    """
    m, k = a.shape
    n = b.shape[1]
    macs = m * n * k
    if macs < THREADED_MIN_MACS or a.dtype != b.dtype or a.dtype.kind != "f" or not available():
        _product(a, b, out, accumulate)
        return
    by_rows = m > n
    span = m if by_rows else n
    count = min(parallel.parts(span), span // SPLIT_MIN_SPAN) if macs >= SPLIT_MIN_MACS else 1
    with _SINGLE:
        if count < 2:
            _product(a, b, out, accumulate)
        elif by_rows:
            parallel.run_parts(count, m, lambda _, lo, hi: _product(a[lo:hi], b, out[lo:hi], accumulate))
        else:
            parallel.run_parts(count, n, lambda _, lo, hi: _product(a, b[:, lo:hi], out[:, lo:hi], accumulate))


def _product(a, b, out, accumulate):
    if accumulate:
        out += a @ b
    else:
        np.matmul(a, b, out=out)
