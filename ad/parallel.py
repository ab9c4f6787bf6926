"""Big elementwise numpy work split across cores.

numpy releases the GIL inside ufunc loops, so running the chunks of one elementwise operation in a few
threads scales with the cores (torch does the same with its intra-op thread pool). Only arrays of at least
``PARALLEL_MIN`` elements are split; below that the threads cost more than they save. Work submitted from a
worker runs serially, so nested calls cannot exhaust the pool.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

PARALLEL_MIN = 1 << 18


def _workers():
    """Threads for big elementwise work: ``AD_NUM_THREADS``, else ``OMP_NUM_THREADS`` (as torch), else cores."""
    for var in ("AD_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


_WORKERS = _workers()
_pool = None
_pool_lock = threading.Lock()
_local = threading.local()


def _get_pool():
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=_WORKERS - 1, thread_name_prefix="ad-parallel")
    return _pool


def _in_worker(fn, lo, hi):
    _local.worker = True
    try:
        return fn(lo, hi)
    finally:
        _local.worker = False


def run(n, fn):
    """Call ``fn(lo, hi)`` over ``[0, n)``, split into one chunk per core when ``n`` is large."""
    if n < PARALLEL_MIN or _WORKERS == 1 or getattr(_local, "worker", False):
        fn(0, n)
        return
    step = -(-n // _WORKERS)
    bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    pool = _get_pool()
    futures = [pool.submit(_in_worker, fn, lo, hi) for lo, hi in bounds[1:]]
    try:
        fn(*bounds[0])
    finally:
        for f in futures:
            f.result()


def set_workers(n):
    """Use ``n`` threads from now on (``ad.set_num_threads``): the pool is rebuilt at its next use."""
    global _WORKERS, _pool
    with _pool_lock:
        old, _pool = _pool, None
        _WORKERS = max(1, int(n))
    if old is not None:
        old.shutdown(wait=True)
def parts(n):
    """How many parts ``run_parts`` splits ``n`` items into here: one per worker thread, at most ``n``."""
    return 1 if getattr(_local, "worker", False) else max(1, min(_WORKERS, n))


def run_parts(count, n, fn):
    """Call ``fn(part, lo, hi)`` for ``count`` contiguous parts of ``[0, n)`` (``count <= parts(n)``), one per
    thread, and return their results in part order. For items that are each large work (a convolution's
    samples), whatever ``n``: the caller judges that the work is worth the threads (tens of microseconds)."""
    bounds = [(n * k // count, n * (k + 1) // count) for k in range(count)]
    if count == 1:
        return [fn(0, 0, n)]
    pool = _get_pool()
    futures = [
        pool.submit(_in_worker, lambda lo, hi, k=k: fn(k, lo, hi), lo, hi) for k, (lo, hi) in enumerate(bounds) if k
    ]
    first = None
    try:
        first = fn(0, *bounds[0])
    finally:
        rest = [f.result() for f in futures]
    return [first] + rest
