"""numpy's BLAS on one thread for a region: for work that ``ad.parallel`` already splits across cores; and the
GEMM of dense rows (``matmul``), which backs off to one thread while the cores are contended.

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

``matmul(a, b, out)`` is the GEMM of matmul and linear rows (eager forward, compiled replay, backward sweep).
OpenBLAS's threaded GEMM synchronizes its threads several times per call (per panel) and waits for them by
spinning; when another process holds the core a worker needs, each wait lasts up to a scheduler time slice.
Measured on the 2-core machine with two other busy processes: W2's float32 step (five GEMMs of a 64-row batch)
took a median of 10 to 100 ms and as much CPU time, against 1.8 ms idle and 3.4 ms with OpenBLAS on one thread
under the same load. So ``matmul`` times each threaded call against the fastest one seen for its shapes; one
``CONTENDED_RATIO`` times slower (and ``CONTENDED_MIN_S`` more), or slower than ``CONTENDED_RATE``, is a strike;
``CONTENDED_STRIKES`` more strikes than normal calls run the next ``CONTENDED_HOLD_S`` seconds of such GEMMs on
the calling thread (``single_threaded``), then it tries the threads again (as MKL's dynamic threads use fewer
threads on a busy machine). The two can round differently (OpenBLAS splits K differently by thread count): a
result's last bits may depend on the load, as they already depend on the thread count set; not under
``ad.use_deterministic_algorithms(True)`` (``backoff`` False).

Independent products side by side (``matmuls``): OpenBLAS's threaded GEMM splits each product across its
threads and synchronizes them per panel, which costs a dense layer's backward much of the second core: the
input's and the weight's cotangents ``g @ w`` and ``g.T @ x`` (W2's 64 x 512 x 512 each, float32) took 433
us one after the other on two threads, against 350 for either on one. ``matmuls`` hands them to OpenBLAS's
grouped batch GEMM (``cblas_?gemm_batch``), which runs each whole on one of its threads (equal in multiply-adds:
the two share their three dimensions): 364 us apart, 394-406 in W2's replayed step with the Python around the
call (10-20 us: addresses, the argument arrays), against 422-433 (``big_rows._matmul_row``; whole step 25-45
us less). In the processes where W2's GEMMs run slow (a fresh process now and then, for its whole life;
products with a short inner dimension take twice as long, ``g.T @ x`` 300 -> 620-660 us, ``w @ x.T`` 20%
longer: perhaps the two threads' synchronization and shared packed panels between distant host cores) the two
took 426-437 us against 813-852 (whole step 2.2 against 2.7 ms). Only where BLAS has as many threads as
products or fewer. Cutting a lone product into one part per thread instead did not pay: W2's first-layer
weight gradient (512 x 64 x 784) took 261 against 281 us alone but 336-344 against 295-300 in the step. Every
product of a batch has more than ``BATCH_ITEM_MIN_MACS`` multiply-adds: OpenBLAS 0.3.31's batch crashes the
process (SIGSEGV, seen for float32 and float64) on an item of at most 100 x 100 x 100; smaller products take
numpy's calls one after the other.

``transpose(src, out)``: ``out = src.T`` for 2-D C-contiguous float arrays through OpenBLAS's out-of-place
transpose (``cblas_somatcopy`` / ``cblas_domatcopy``, a blocked SIMD kernel): the float32 linear forward copies
its ``w @ x.T`` product out transposed (``ops/dense.linear_product``), and numpy's strided copy of a (512, 64)
float32 product took 20 us where this takes 8 (2.5x; W2 runs two a step). OpenBLAS scales by alpha = 1 as it
copies, which keeps every value's bits except a signaling NaN's, which comes out quiet; a GEMM's result (what
``linear_product`` transposes) holds no signaling NaN, so there the bits are numpy's copy's, which runs where no
OpenBLAS with these symbols is found.
"""

import ctypes
import glob
import os
import threading
import time

import numpy as np

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


# (symbol, 64-bit integers) of the out-of-place transposes by dtype char, most specific first (numpy's wheels:
# ``scipy_openblas64_``, an ILP64 build whose cblas symbols end in ``64_``)
_TRANSPOSE_SYMBOLS = {
    "f": (("scipy_cblas_somatcopy64_", True), ("cblas_somatcopy64_", True), ("cblas_somatcopy", False)),
    "d": (("scipy_cblas_domatcopy64_", True), ("cblas_domatcopy64_", True), ("cblas_domatcopy", False)),
}
_CBLAS_ROW_MAJOR, _CBLAS_TRANS = 101, 112
# Below this many elements numpy's strided copy is the faster one: the ctypes call alone costs about 3 us (float32,
# measured: (10, 64) 0.8 us in numpy against 3.6 us; (128, 64) 3.1 against 4.5; (256, 64) 10.3 against 5.4)
TRANSPOSE_MIN = 8192
_transposes = None  # dtype char -> the cblas ?omatcopy function (absent: none found); found on first use


def _find_transposes():
    found = {}
    for path in _library_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for char, candidates in _TRANSPOSE_SYMBOLS.items():
            if char in found:
                continue
            for name, wide in candidates:
                fn = getattr(lib, name, None)
                if fn is None:
                    continue
                index = ctypes.c_int64 if wide else ctypes.c_int
                scalar = ctypes.c_float if char == "f" else ctypes.c_double
                fn.argtypes = [ctypes.c_int, ctypes.c_int, index, index, scalar, ctypes.c_void_p, index]
                fn.argtypes += [ctypes.c_void_p, index]
                fn.restype = None
                found[char] = fn
                break
    return found


def transpose(src, out):
    """``out[...] = src.T`` for a 2-D ``src`` and an ``out`` of the transposed shape, both C-contiguous and of one
    float dtype: OpenBLAS's blocked transpose where found (module docstring) for ``TRANSPOSE_MIN`` elements or more,
    else numpy's copy.

    Example:
        >>> src = np.arange(6, dtype=np.float32).reshape(2, 3)
        >>> out = np.empty((3, 2), np.float32)
        >>> transpose(src, out)
        >>> out.tolist()
        [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    global _transposes
    if _transposes is None:
        with _lock:
            if _transposes is None:
                _transposes = _find_transposes()
    rows, cols = src.shape
    fn = _transposes.get(src.dtype.char)
    if (
        fn is None
        or rows * cols < TRANSPOSE_MIN
        or out.dtype != src.dtype
        or out.shape != (cols, rows)
        or not src.flags.c_contiguous
        or not out.flags.c_contiguous
        or rows == 0
        or cols == 0
    ):
        np.copyto(out, src.T)
        return
    fn(_CBLAS_ROW_MAJOR, _CBLAS_TRANS, rows, cols, 1.0, src.ctypes.data, cols, out.ctypes.data, rows)


# (symbol, 64-bit integers) of the grouped batch GEMMs by dtype char, most specific first (the library numpy's
# own calls use: its wheels' ``scipy_openblas64_``), and the thread-count getters of their libraries
_BATCH_SYMBOLS = {
    "f": (("scipy_cblas_sgemm_batch64_", True), ("cblas_sgemm_batch64_", True), ("cblas_sgemm_batch", False)),
    "d": (("scipy_cblas_dgemm_batch64_", True), ("cblas_dgemm_batch64_", True), ("cblas_dgemm_batch", False)),
}
_NO_TRANS = 111
# Every part of a batch has more multiply-adds than this (module docstring: OpenBLAS 0.3.31's batch crashes on
# items of at most 1e6; four times that leaves a margin for a kernel whose small-matrix bound is larger)
BATCH_ITEM_MIN_MACS = 1 << 22
_batches = None  # dtype char -> (cblas ?gemm_batch, 64-bit integers, thread-count getter); found on first use
_BATCH_CONSTS = {}  # (dtype char, transposes, betas) -> the batch's flag and scalar arrays, with their addresses


def _find_batches():
    found = {}
    libs = []
    for path in _library_paths():
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    for char, candidates in _BATCH_SYMBOLS.items():
        for name, wide in candidates:
            lib = next((lib for lib in libs if getattr(lib, name, None) is not None), None)
            if lib is None:
                continue
            getter = next((getattr(lib, g) for _, g in _SYMBOLS if getattr(lib, g, None) is not None), None)
            if getter is None:
                break  # (no thread count to split by)
            getter.argtypes, getter.restype = [], ctypes.c_int
            fn = getattr(lib, name)
            index = ctypes.c_int64 if wide else ctypes.c_int
            fn.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 13 + [index, ctypes.c_void_p]
            fn.restype = None
            found[char] = (fn, wide, getter)
            break
    return found


def _layout(x):
    """``(transposed, leading dimension)`` of a 2-D operand for a row-major BLAS call, None where BLAS cannot
    read it in place (no unit stride, a broadcast or reversed axis, a misaligned view)."""
    item = x.itemsize
    s0, s1 = x.strides
    if s1 == item and s0 % item == 0 and s0 // item >= max(1, x.shape[1]):
        return False, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(1, x.shape[0]):
        return True, s1 // item
    return None


def _batched(products):
    """``out = a @ b`` (``+=`` with ``accumulate``) for each of ``products`` in one call of OpenBLAS's batch GEMM,
    each product whole on one BLAS thread; False, with nothing done, where that does not apply: no batch GEMM,
    one thread or more threads than products, shapes or layouts BLAS cannot take in place, an output overlapping an
    operand or another output (numpy copies those; products on two threads would race), a product too small
    (``BATCH_ITEM_MIN_MACS``). Addresses and extents are worked out here, once per operand (numpy's ``.ctypes``
    costs about a microsecond each)."""
    global _batches
    if _batches is None:
        with _lock:
            if _batches is None:
                _batches = _find_batches()
    dtype = products[0][0].dtype
    found = _batches.get(dtype.char)
    if found is None:
        return False
    fn, wide, getter = found
    threads = getter()
    if threads < 2 or threads > len(products):
        return False  # (one thread; or more threads than products, which OpenBLAS's own split keeps busy)
    item = dtype.itemsize
    parts = []  # (M, N, K, lda, ldb, ldc, A, B, C, trans a, trans b, beta) of each batch item
    spans = []  # (low, high) byte addresses of the outputs, then of the other operands
    reads = []
    for a, b, out, accumulate in products:
        if a.ndim != 2 or b.ndim != 2 or out.ndim != 2 or not (a.dtype == b.dtype == out.dtype == dtype):
            return False
        if not (a.flags.aligned and b.flags.aligned and out.flags.aligned):
            return False
        la, lb, lc = _layout(a), _layout(b), _layout(out)
        if la is None or lb is None or lc is None or lc[0]:
            return False
        m, k = a.shape
        n = b.shape[1]
        if b.shape[0] != k or out.shape != (m, n):
            return False  # (numpy's call raises)
        if m * n * k <= BATCH_ITEM_MIN_MACS:
            return False
        pa, pb, pc = a.ctypes.data, b.ctypes.data, out.ctypes.data
        spans.append((pc, pc + out.strides[0] * (m - 1) + item * n))
        reads.append((pa, pa + a.strides[0] * (m - 1) + a.strides[1] * (k - 1) + item))
        reads.append((pb, pb + b.strides[0] * (k - 1) + b.strides[1] * (n - 1) + item))
        ta = _CBLAS_TRANS if la[0] else _NO_TRANS
        tb = _CBLAS_TRANS if lb[0] else _NO_TRANS
        parts.append((m, n, k, la[1], lb[1], lc[1], pa, pb, pc, ta, tb, 1.0 if accumulate else 0.0))
    outs = len(spans)
    spans += reads
    for j in range(outs):
        lo, hi = spans[j]
        for i, (lo2, hi2) in enumerate(spans):
            if i != j and lo < hi2 and lo2 < hi:
                return False
    ms, ns, ks, ldas, ldbs, ldcs, As, Bs, Cs, ta, tb, betas = zip(*parts)
    total = len(parts)
    key = (dtype.char, ta, tb, betas)
    consts = _BATCH_CONSTS.get(key)
    if consts is None:  # (read-only, so shared by every call and thread with these flags)
        trans = np.array(ta + tb, np.int32)  # (C enums)
        scalars = np.array((1.0,) * total + betas, dtype)  # alphas, betas
        consts = _BATCH_CONSTS[key] = (trans, scalars, trans.ctypes.data, scalars.ctypes.data)
    _, _, t, sc = consts
    if wide:  # sizes and addresses in one array
        words = np.array(ms + ns + ks + ldas + ldbs + ldcs + (1,) * total + As + Bs + Cs, np.int64)
        i0 = words.ctypes.data
        p = i0 + 56 * total
    else:
        words = np.array(ms + ns + ks + ldas + ldbs + ldcs + (1,) * total, np.int32)
        pointers = np.array(As + Bs + Cs, np.uintp)
        i0, p = words.ctypes.data, pointers.ctypes.data
    di, dp, ds = words.itemsize * total, (8 if wide else pointers.itemsize) * total, item * total
    m_, n_, k_, lda, ldb, ldc, groups = (i0 + j * di for j in range(7))  # (group sizes: one item each)
    fn(_CBLAS_ROW_MAJOR, t, t + 4 * total, m_, n_, k_, sc, p, lda, p + dp, ldb, sc + ds, p + 2 * dp, ldc, total, groups)
    return True


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


# OpenBLAS threads a GEMM of at least this many multiply-adds (its SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD);
# smaller ones run on the calling thread anyway, and ``matmul`` does not time them
THREADED_MIN_MACS = 65536 * 4
# A threaded GEMM this many times slower than its shapes' fastest and this much slower counts as contended; that
# many contended calls more than normal ones since the last hold (CONTENDED_STRIKES) send the GEMMs of the next
# CONTENDED_HOLD_S to one thread. A contended W2 GEMM took 10 to 60 ms where it takes 0.2 to 0.4 ms idle, call after
# call; on an idle machine the slowest of 300 W2 steps took 2.7 to 4 ms in all; under a moderate load a lone call
# waits for a time slice now and then, while the threads still win on the whole (W2 float64: 3.6-4.0 ms threaded,
# 5.8 ms on one thread): a lone slow call (one strike) must not send the next half second to one thread.
CONTENDED_RATIO = 8.0
CONTENDED_MIN_S = 2e-3
CONTENDED_STRIKES = 3
CONTENDED_HOLD_S = 0.5
# As does one slower than this many multiply-adds a second (and CONTENDED_MIN_S), however fast the fastest seen:
# under a load that lasts from the first calls on, no fast call sets the baseline (W2's GEMMs then took 10-13 ms
# each, 1.3-2.6e9 a second: a floor of 1e9 let them through). One core here, at W2's shapes: 20-24e9 in dgemm,
# 35-45e9 in sgemm
CONTENDED_RATE = 4e9
_FASTEST_MAX = 512  # shapes remembered at most (the table is cleared past it)
_fastest = {}  # (a's shape, b's shape, dtype char) -> the fastest threaded call seen, in seconds
_hold_until = 0.0  # time.perf_counter() until which ``matmul`` keeps OpenBLAS to the calling thread
_strikes = 0  # contended threaded calls less normal ones (not below 0) since the last hold
backoff = True  # False under ``ad.use_deterministic_algorithms(True)``: BLAS's thread count whatever the load


def matmul(a, b, out, accumulate=False):
    """``out = a @ b`` (``out += a @ b`` with ``accumulate``) for 2-D ``a`` and ``b``: numpy's BLAS, on its own
    threads unless the cores were found contended within the last ``CONTENDED_HOLD_S`` (module docstring).

    Example:
        >>> a, b = np.ones((64, 784), np.float32), np.ones((784, 512), np.float32)
        >>> out = np.empty((64, 512), np.float32)
        >>> matmul(a, b, out)
        >>> float(out[0, 0])
        784.0
    """
    _run(((a, b, out, accumulate),), (a.shape, b.shape, a.dtype.char), a.shape[0] * a.shape[1] * b.shape[1])


def matmuls(products):
    """``matmul`` of each ``(a, b, out, accumulate)`` of ``products``, independent products into outputs that do
    not overlap: side by side, one per BLAS thread, in one batch call where they are big enough (module
    docstring), else one after the other.

    Example:
        >>> g, w, x = np.ones((64, 512)), np.ones((512, 512)), np.ones((64, 512))
        >>> gx, gw = np.empty((64, 512)), np.empty((512, 512))
        >>> matmuls([(g, w, gx, False), (g.T, x, gw, False)])
        >>> float(gx[0, 0]), float(gw[0, 0])
        (512.0, 64.0)
    """
    if len(products) == 1:
        matmul(*products[0])
        return
    key = tuple([(a.shape, b.shape, a.dtype.char) for a, b, _, _ in products])
    _run(products, key, sum([a.shape[0] * a.shape[1] * b.shape[1] for a, b, _, _ in products]))


def _run(products, key, macs):
    """Compute ``products`` (``_compute``), timing threaded calls against the fastest seen for ``key`` (their
    shapes): the contention back-off of the module docstring."""
    global _hold_until, _strikes
    if macs < THREADED_MIN_MACS or not backoff or not (_controls if _controls is not None else _get_controls()):
        _compute(products)
        return
    start = time.perf_counter()
    if start < _hold_until:
        with _SINGLE:
            _compute(products)
        return
    _compute(products)
    took = time.perf_counter() - start
    fastest = _fastest.get(key)
    if fastest is None:  # (a shape's first call also starts BLAS's threads, or faults in pages: not judged)
        if len(_fastest) >= _FASTEST_MAX:
            _fastest.clear()
        _fastest[key] = took
    elif took < fastest:
        _fastest[key] = took
    elif took > CONTENDED_RATIO * fastest + CONTENDED_MIN_S or (
        took > CONTENDED_MIN_S and macs < took * CONTENDED_RATE
    ):
        _strikes += 1
        if _strikes >= CONTENDED_STRIKES:
            _strikes = 0
            _hold_until = start + took + CONTENDED_HOLD_S
        return
    if _strikes:
        _strikes -= 1


def _compute(products):
    if len(products) == 1:
        _product(*products[0])
    elif not _batched(products):
        for a, b, out, accumulate in products:
            _product(a, b, out, accumulate)


def _product(a, b, out, accumulate):
    if accumulate:
        out += a @ b
    elif a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous and out.dtype == a.dtype == b.dtype:
        np.dot(a, b, out=out)  # (matmul for these, at a third of np.matmul's call overhead: small eager matmuls)
    else:
        np.matmul(a, b, out=out)  # (np.dot with a transposed operand timed up to 2x slower: W2's g.T @ x)
