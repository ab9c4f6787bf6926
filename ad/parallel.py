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
        fn(lo, hi)
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
