"""What ``ad``'s CUDA work does on the host: kernel launches (with their grids), host-to-device and device-to-host
copies (bytes), device-to-device copies, device allocations, memsets, explicit synchronizations, numpy arrays
handed to kernels (numba copies them in and back) and cuBLAS calls, counted by patching numba-cuda's entry
points. Works on a GPU and under the simulator (``NUMBA_ENABLE_CUDASIM=1``), where it is how the host side of
the device code is checked without one (``tests/cuda/test_host_traffic.py``).

Run from the repository root::

    NUMBA_ENABLE_CUDASIM=1 python -m scripts.cuda_host_traffic          # n = 2**15 and 2**17, a small MLP
    python -m scripts.cuda_host_traffic --n 67108864 --mlp 1024 4096 10  # on a GPU: kernels.cuda.bench's sizes

It records one ``loss.backward(retain_graph=True)`` of ``kernels.cuda.bench``'s 8-op chain per ``--n`` and one
MLP step (forward and backward, the bench's ``mlp_step``), after a warm-up call of each (compiles, pools), and
prints each event kind by call site, then the launches by kernel. A launch of one block over ``BIG`` or more
work items, more than its threads, is flagged (work: the elements of its largest array operand; for the sweep's
kernels, their rows' ``row_work``): on a GPU it runs on one of ~132 multiprocessors. Under the simulator every
flat grid has one block (``kernels/cuda/launch.py``: ``MAX_BLOCKS``), so there only the sweep's block kernel is
judged.

As a library::

    with HostTraffic() as traffic:
        loss.backward(retain_graph=True)
    traffic.total("d2h"), traffic.count("launch"), traffic.one_block_over_big()
"""

import argparse
import collections
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np

BIG = 16384  # kernels/cuda/sweep.py's BIG_THRESHOLD: a row this big gets full-grid launches
# single-thread kernels of the sweep's control flow: O(1) work whatever their array operands' sizes
CONTROL_KERNELS = frozenset(("_big_begin", "_big_end"))
KINDS = ("launch", "host_arg", "h2d", "d2h", "d2d", "alloc", "memset", "sync", "library")
# kernels whose work is the size of one operand (the offsets they walk), not of their largest (an arena)
WORK_OPERAND = {"_set_flags": 1}
# the sweep's kernels: their work is their rows' (``sweep.row_work``), at these argument indices of
# (rows, aux, highest row, lowest row)
ROW_KERNELS = {"_sweep_block": (0, 2, 10, 11), "_big_body": (2, 4, 1, 1), "_big_clear": (0, 1, 5, 5)}
_HERE = os.path.abspath(__file__)
_SKIP = (os.path.join("ad", "cuda", "arrays.py"),)  # thin wrappers: name their caller instead


@dataclass
class Event:
    kind: str  # one of KINDS
    nbytes: int  # bytes moved or allocated (0 for launches and syncs)
    site: str  # "path:line function" of the innermost frame of the repository that caused it
    kernel: str = ""  # launches: the kernel's Python name
    blocks: int = 0
    threads: int = 0
    work: int = 0  # launches: work items (see the module docstring)


class HostTraffic:
    """Context manager recording the events of the code it wraps (one at a time; not reentrant)."""

    def __init__(self):
        self.events = []
        self._local = threading.local()
        self._undo = []

    # --- queries -------------------------------------------------------------------------------------------

    def of(self, kind):
        return [e for e in self.events if e.kind == kind]

    def count(self, kind):
        return len(self.of(kind))

    def total(self, kind):
        return sum(e.nbytes for e in self.of(kind))

    def syncs(self):
        """Host waits on the device: explicit synchronizations, device-to-host copies and copies of host memory
        (numba's are from pageable memory: the driver waits for the stream first)."""
        return sum(self.count(k) for k in ("sync", "d2h", "h2d", "host_arg"))

    def one_block_over_big(self, threshold=BIG, simulated=None):
        """Launches of one block over ``threshold`` or more work items, more than its threads (each walks several:
        a bigger grid would have run them side by side); under the simulator, the sweep's block kernel's only
        (see the module docstring)."""
        if simulated is None:
            simulated = _simulated()
        return [
            e
            for e in self.of("launch")
            if e.blocks == 1
            and e.work >= threshold
            and e.work > e.threads
            and e.kernel not in CONTROL_KERNELS
            and (not simulated or e.kernel == "_sweep_block")
        ]

    def summary(self):
        """Lines: per kind the count and bytes, then by call site; the launches by kernel."""
        lines = []
        for kind in KINDS:
            events = self.of(kind)
            if not events:
                continue
            lines.append(f"{kind:9s} {len(events):5d} events {_size(sum(e.nbytes for e in events)):>10s}")
            if kind == "launch":
                by_kernel = collections.defaultdict(list)
                for e in events:
                    by_kernel[e.kernel].append(e)
                for name, es in sorted(by_kernel.items(), key=lambda kv: -len(kv[1])):
                    blocks = sorted({e.blocks for e in es})
                    shown = ",".join(map(str, blocks[:4])) + (",..." if len(blocks) > 4 else "")
                    lines.append(
                        f"    {len(es):5d} x {name:32s} blocks {shown:20s} threads {es[0].threads:4d} "
                        f"max work {max(e.work for e in es):,}"
                    )
                continue
            by_site = collections.defaultdict(list)
            for e in events:
                by_site[e.site].append(e.nbytes)
            for site, sizes in sorted(by_site.items(), key=lambda kv: -sum(kv[1])):
                lines.append(f"    {len(sizes):5d} x {_size(sum(sizes)):>10s}  {site}")
        flagged = self.one_block_over_big()
        for e in flagged:
            lines.append(f"ONE BLOCK OVER {e.work:,} ITEMS: {e.kernel} at {e.site}")
        return lines

    # --- recording -----------------------------------------------------------------------------------------

    def _record(self, kind, nbytes=0, **launch):
        self.events.append(Event(kind, int(nbytes), _site(), **launch))

    def _busy(self):
        return getattr(self._local, "depth", 0) > 0

    def _wrap(self, owner, name, before):
        """Replace ``owner.name`` by a wrapper that calls ``before(*args, **kwargs)`` (which records) on the
        outermost call only (numba's own entry points call each other)."""
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)

        def wrapper(*args, **kwargs):
            if self._busy():
                return original(*args, **kwargs)
            self._local.depth = 1
            try:
                before(*args, **kwargs)
                return original(*args, **kwargs)
            finally:
                self._local.depth = 0

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, original))

    def uncounted(self):
        """A context in which nothing is recorded (the tool's own copies)."""
        traffic = self

        class _Quiet:
            def __enter__(self):
                traffic._local.depth = getattr(traffic._local, "depth", 0) + 1

            def __exit__(self, *exc):
                traffic._local.depth -= 1

        return _Quiet()

    def __enter__(self):
        from numba import cuda

        simulated = _simulated()
        self._wrap(cuda, "to_device", self._on_to_device)
        self._wrap(cuda, "device_array", lambda shape, dtype=np.float64, *a, **k: self._on_alloc(shape, dtype))
        self._wrap(cuda, "device_array_like", lambda ary, *a, **k: self._on_alloc(ary.shape, ary.dtype))
        self._wrap(cuda, "synchronize", lambda *a, **k: self._record("sync"))
        if simulated:
            from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
            from numba.cuda.simulator.kernel import FakeCUDAKernel

            from ad.cuda.arrays import _sim_array_type

            arrays = [FakeCUDAArray, _sim_array_type()]
            self._wrap(FakeCUDAKernel, "__call__", self._on_sim_launch)
        else:
            from numba.cuda.cudadrv import driver
            from numba.cuda.cudadrv.devicearray import DeviceNDArrayBase
            from numba.cuda.dispatcher import CUDADispatcher

            arrays = [DeviceNDArrayBase]
            self._wrap(CUDADispatcher, "call", self._on_launch)
            self._wrap(driver, "device_memset", lambda dst, val, size, *a, **k: self._record("memset", size))
            from kernels.cuda import matmul

            if matmul.cupy_module() is not None:
                self._wrap(matmul, "_matmul_cupy", lambda *a, **k: self._record("library"))
        for cls in arrays:
            if "copy_to_host" in cls.__dict__:
                self._wrap(cls, "copy_to_host", lambda arr, *a, **k: self._record("d2h", arr.nbytes))
            if "copy_to_device" in cls.__dict__:
                self._wrap(cls, "copy_to_device", self._on_copy_to_device)
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def _on_to_device(self, obj, *args, **kwargs):
        if _on_device(obj):
            return
        host = np.asarray(obj)
        self._record("alloc", host.nbytes)
        self._record("h2d", host.nbytes)

    def _on_alloc(self, shape, dtype):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self._record("alloc", int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)

    def _on_copy_to_device(self, dst, src, *args, **kwargs):
        self._record("d2d" if _on_device(src) else "h2d", dst.nbytes)

    def _on_sim_launch(self, kernel, *args):
        from numba.cuda.simulator.kernel import _kernel_context

        if kernel._device or _kernel_context:  # a device function, or a call from inside a kernel
            return
        self._launch(kernel.fn.__name__, kernel.grid_dim, kernel.block_dim, args)

    def _on_launch(self, dispatcher, args, config):
        self._launch(dispatcher.py_func.__name__, config.griddim, config.blockdim, args)

    def _launch(self, name, grid, block, args):
        blocks = int(np.prod(grid))
        threads = int(np.prod(block))
        for a in args:
            if isinstance(a, np.ndarray) and a.ndim > 0:  # numba copies it to the device and back
                self._record("host_arg", 2 * a.nbytes)
        if name in CONTROL_KERNELS:
            work = 1
        elif name in ROW_KERNELS:
            work = self._rows_work(args, *ROW_KERNELS[name])
        elif name in WORK_OPERAND:
            work = args[WORK_OPERAND[name]].size
        else:
            work = max((a.size for a in args if hasattr(a, "shape") and hasattr(a, "size")), default=0)
        self._record("launch", kernel=name, blocks=blocks, threads=threads, work=work)

    def _rows_work(self, args, rows_at, aux_at, hi_at, lo_at):
        """The largest ``row_work`` of the rows ``args[lo_at] .. args[hi_at]`` that a sweep kernel walks (its
        ``rows`` and ``aux`` at ``args[rows_at]``, ``args[aux_at]``)."""
        from kernels.cuda.sweep import row_work

        rows, aux, hi, lo = args[rows_at], args[aux_at], int(args[hi_at]), int(args[lo_at])
        with self.uncounted():
            rows_h = rows._ary if hasattr(rows, "_ary") else rows.copy_to_host()
            aux_h = aux._ary if hasattr(aux, "_ary") else aux.copy_to_host()
        work = row_work(np.ascontiguousarray(rows_h), np.ascontiguousarray(aux_h), hi, lo)
        return int(work.max()) if work.size else 0


def _simulated():
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def _on_device(obj):
    return hasattr(obj, "copy_to_host") or hasattr(obj, "__cuda_array_interface__")


def _site():
    """The innermost frame of the repository's code outside this file (and the thin wrappers of ``_SKIP``)."""
    import kernels  # (the checkout whose code runs: another one's when PYTHONPATH says so)

    root = os.path.dirname(os.path.dirname(os.path.abspath(kernels.__file__)))
    f = sys._getframe(2)
    while f is not None:
        path = os.path.abspath(f.f_code.co_filename)
        if path != _HERE and path.startswith(root) and not path.endswith(_SKIP):
            return f"{os.path.relpath(path, root)}:{f.f_lineno} {f.f_code.co_name}"
        f = f.f_back
    return "?"


def _size(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""


# --- the bench's workloads ------------------------------------------------------------------------------------


def chain_loss(n, dtype=np.float32, seed=0):
    """``kernels.cuda.bench``'s 8-op chain on ``n`` elements, on tapes of its own: (leaf x, loss)."""
    import ad
    from ad.cuda import tape

    tape.reset_current()  # (a tape that an earlier graph left room on would hold its rows too)

    rng = np.random.default_rng(seed)
    x = ad.tensor(rng.uniform(-1, 1, n).astype(dtype), device="cuda", requires_grad=True)
    y = x
    for op in ("tanh", "sin", "exp", "sigmoid", "cos", "tanh", "sin", "exp"):
        y = getattr(y, op)()
    return x, y.sum()


def mlp_step(batch, width, classes, dtype=np.float32, seed=0):
    """``kernels.cuda.bench``'s MLP step (linear, relu, linear, relu, linear, cross entropy; forward and
    backward, ``.grad`` reset) as a function, and its parameters."""
    import ad
    from ad.cuda import tape

    tape.reset_current()  # (its first step would record on a tape an earlier graph left room on)

    rng = np.random.default_rng(seed)
    shapes = [(width, width), (width, width), (classes, width)]
    ps = [rng.normal(scale=width**-0.5, size=s).astype(dtype) for s in shapes]
    ps = [ad.tensor(p, device="cuda", requires_grad=True) for p in ps]
    xb = ad.tensor(rng.normal(size=(batch, width)).astype(dtype), device="cuda")
    tb = ad.tensor(rng.integers(0, classes, batch))

    from kernels.cuda.bench import mlp_step as bench_step  # (the traffic of what the bench times)

    return bench_step(ad, ps, xb, tb), ps


def measure(fn, warmup=1):
    """The events of one call of ``fn``, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    with HostTraffic() as traffic:
        fn()
    return traffic


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scripts.cuda_host_traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[2**15, 2**17], help="chain sizes (elements)")
    parser.add_argument("--mlp", type=int, nargs=3, default=None, metavar=("BATCH", "WIDTH", "CLASSES"))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)
    mlp = args.mlp or ((16, 32, 10) if _simulated() else (1024, 4096, 10))
    dt = np.dtype(args.dtype)
    print(f"{'simulator' if _simulated() else 'GPU'}; {dt}")
    for n in args.n:
        _, loss = chain_loss(n, dt)
        traffic = measure(lambda loss=loss: loss.backward(retain_graph=True))
        print(f"\n== one backward of the 8-op chain, n = {n:,} ({traffic.syncs()} host waits)")
        print("\n".join(traffic.summary()))
    step, _ = mlp_step(*mlp, dtype=dt)
    traffic = measure(step)
    print(f"\n== one MLP step, batch {mlp[0]}, width {mlp[1]}, {mlp[2]} classes ({traffic.syncs()} host waits)")
    print("\n".join(traffic.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
