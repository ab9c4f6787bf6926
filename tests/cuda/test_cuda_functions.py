"""Custom ``autograd.Function``s and device scans on CUDA tensors (issue 10), against the CPU.

- A user's Function on CUDA tensors records its outputs on the device tape (``function._record``: a K.PYTHON
  row each): its backward re-enters Python as on the CPU; first order, double backward and forward mode equal
  the CPU's, ``mark_dirty`` included. Outputs on two devices raise.
- ``cumsum`` runs on the device (``kernels/cuda/scan.py``, a block-level scan), never through the host round
  trip that ad's other numpy-forward primitives take (``function._host_round_trip``): checked by making that
  round trip raise.
"""

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.autograd.function as function

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)


class Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale, (x * 2.0).detach()

    @staticmethod
    def backward(ctx, g, g_aux):
        (x,) = ctx.saved_tensors
        return g * 3.0 * ctx.scale * x * x, None

    @staticmethod
    def jvp(ctx, t, _):
        (x,) = ctx.saved_tensors
        return t * 3.0 * ctx.scale * x * x, None


def _host(t):
    return t.detach().cpu().numpy()


@pytest.fixture
def device_only(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("took the host round trip")

    monkeypatch.setattr(function, "_host_round_trip", refuse)


def _program(dev):
    x = ad.tensor([[0.5, 1.0, 2.0], [1.5, -1.0, 0.25]], device=dev, requires_grad=True)
    y, aux = Cube.apply(x, 0.5)
    z = y.cumsum(1) + ad.cumsum(y, 0) * aux
    g = ad.autograd.grad((z * z).sum(), x, create_graph=True)[0]
    gg = ad.autograd.grad((g * g).sum(), x)[0]
    with fwAD.dual_level():
        dual = fwAD.make_dual(x.detach(), ad.tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), device=dev))
        out, _ = Cube.apply(dual, 0.5)
        tangent = fwAD.unpack_dual(out.cumsum(0)).tangent
    return z, g, gg, tangent


def test_custom_function_and_cumsum_on_cuda_equal_the_cpu(device_only):
    on_cuda = _program("cuda")
    assert on_cuda[0].grad_fn.name() == "AddBackward0"
    for a, b in zip(_program("cpu"), on_cuda):
        assert b.is_cuda
        np.testing.assert_allclose(_host(b), _host(a), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, dim", [((40,), 0), ((3, 33), 1), ((2, 3, 2), 1), ((), 0)])
def test_cumsum_scan_on_the_device(shape, dim, device_only):
    x = np.random.default_rng(0).standard_normal(shape)
    t = ad.tensor(x, device="cuda", requires_grad=True)
    out = ad.cumsum(t, dim)
    assert out.is_cuda and out.grad_fn.name() == "CumsumBackward0"
    np.testing.assert_allclose(_host(out), np.cumsum(x.reshape(shape or (1,)), axis=dim).reshape(shape), rtol=1e-13)
    out.sum().backward()
    expected = np.flip(np.cumsum(np.flip(np.ones(shape or (1,)), dim), dim), dim).reshape(shape)
    np.testing.assert_allclose(_host(t.grad), expected, rtol=1e-13)


def test_cummax_cummin_index_scan_on_the_device(monkeypatch):
    """The running extreme's index by the device scan (``kernels/cuda/scan.py``; never the host scan): ties
    (a later equal value takes over), NaN (each new NaN takes over), lines longer than a chunk (the carry),
    a middle dim; indices and values equal the CPU's."""
    from ad import reductions

    x = np.round(np.random.default_rng(1).standard_normal((1, 40)), 1)
    x[0, [10, 33]] = 9.0  # (a tie across the chunks of 32: the later takes over)
    x[0, 36] = np.nan
    y = np.random.default_rng(2).integers(0, 3, (3, 2, 2)).astype(np.float32)
    for data, dim in ((x, 1), (y, 0)):
        for fn in (ad.cummax, ad.cummin):
            on_cpu = fn(ad.tensor(data), dim)
            with monkeypatch.context() as patch:
                patch.setattr(reductions, "_cum_extreme", None)  # (the host scan: not run for float CUDA data)
                on_cuda = fn(ad.tensor(data, device="cuda"), dim)
            assert on_cuda.indices.is_cuda and on_cuda.indices.dtype == np.int64
            np.testing.assert_array_equal(on_cuda.indices.cpu().numpy(), on_cpu.indices.numpy())
            np.testing.assert_array_equal(on_cuda.values.cpu().numpy(), on_cpu.values.numpy())
    assert ad.cummax(ad.tensor(x, device="cuda"), 1).indices.cpu().numpy()[0, 32:37].tolist() == [10, 33, 33, 33, 36]


def test_cumsum_of_integers_on_cuda_is_int64():
    out = ad.cumsum(ad.tensor([1, 2, 3], device="cuda"), 0)
    assert out.is_cuda and out.dtype == np.int64
    np.testing.assert_array_equal(out.cpu().numpy(), [1, 3, 6])


class _TwoDevices(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0, (x * 3.0).cpu()

    @staticmethod
    def backward(ctx, g, g_host):
        return g * 2.0


class _Dirty(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.mark_dirty(x)  # (declared before the write: a refused leaf is left unchanged)
        x.mul_(2.0)
        return x

    @staticmethod
    def backward(ctx, g):
        return g * 2.0

    @staticmethod
    def jvp(ctx, t):
        return t * 2.0


def test_custom_function_outputs_on_two_devices_raise():
    x = ad.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="differentiable outputs on different devices"):
        _TwoDevices.apply(x)


def _dirty_run(dev):
    x = ad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    h = x * 3.0
    version = h._version
    assert _Dirty.apply(h) is h and h.grad_fn.name() == "_DirtyBackward" and h._version == version + 1
    (g,) = ad.autograd.grad((h * h).sum(), x, create_graph=True)
    (gg,) = ad.autograd.grad(g.sum(), x)
    with fwAD.dual_level():
        dual = fwAD.make_dual(ad.tensor([1.0, 2.0], device=dev), ad.tensor([1.0, -1.0], device=dev)) * 1.0
        tangent = fwAD.unpack_dual(_Dirty.apply(dual)).tangent
    saved = x * 1.0
    stale = saved * saved  # saves ``saved``, which the Function then modifies in place
    _Dirty.apply(saved)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        stale.sum().backward()
    leaf = ad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        _Dirty.apply(leaf)
    assert leaf._version == 0
    return [t.detach().cpu().numpy() for t in (h, g, gg, tangent, leaf)]


def test_mark_dirty_on_cuda_as_on_the_cpu():
    """The input modified in place becomes the output (same object, version bumped) on the device tape; first
    and second order, forward mode, the saved-value version check and the leaf error equal the CPU's; the
    refused leaf keeps its value."""
    on_cpu, on_cuda = _dirty_run("cpu"), _dirty_run("cuda")
    np.testing.assert_allclose(on_cuda[1], [72.0, 144.0])
    np.testing.assert_allclose(on_cuda[4], [1.0, 2.0])
    for a, b in zip(on_cpu, on_cuda):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_graph_sweep_retires_device_tapes_and_the_arena_pool_does_not_grow():
    """A backward through ``graph_sweep`` (``create_graph``) without ``retain_graph`` retires the device
    tapes it swept, as the CPU's: the next forward records a new tape, and the retired one's arena goes back to
    the device pool and is reused, so a loop of steps cycles through the pooled arenas (not a new one per step)."""
    import gc

    from ad.cuda import tape as device_tape

    w = ad.tensor(np.ones(3), device="cuda", requires_grad=True)
    tapes, arenas = set(), set()
    for _ in range(4):
        x = ad.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
        y = (ad.sin(x) * w).sum()
        tapes.add(y._tape.id)
        arenas.add(id(y._tape.values))
        (g,) = ad.autograd.grad(y, x, create_graph=True, retain_graph=False)
        assert not device_tape._current.tapes  # retired: nothing records on the swept tapes any more
        (gg,) = ad.autograd.grad(g.sum(), x)  # (the new graph's own backward)
        np.testing.assert_allclose(gg.cpu().numpy(), -np.sin([1.0, 2.0, 3.0]), rtol=1e-12)
        del x, y, g, gg
        gc.collect()
    assert len(tapes) == 4 and len(arenas) <= 2  # a new tape per step, its arena taken back from the pool


_CYCLIC_TAPE_SCRIPT = """
import gc
import numpy as np
from numba.cuda.cudadrv import driver
from ad.cuda import tape as T

class Arena:  # a device array as the pool sees one: numba-owned memory behind an OwnedPointer
    def __init__(self, n):
        allocations = {}  # numba's context keeps the pointer alive until its last OwnedPointer dies
        mem = driver.AutoFreePointer(None, 4096, 8 * n, finalizer=allocations.clear)
        allocations[0] = mem
        self.gpu_data = mem.own()
        self.dtype, self.shape, self.nbytes = np.dtype(np.float64), (n,), 8 * n

pool = T._DevicePool()
live = Arena(100)
assert T._refs(live) == 1
pool.give(live, 1)  # a live arena is pooled and taken back
assert pool.take(np.dtype(np.float64), 100) is live

class CyclicTape:
    def __init__(self):
        self.values = Arena(100)
        self.idle = T._refs(self.values)
        self.me = self

    def __del__(self):
        pool.give(self.values, self.idle)

CyclicTape()
gc.collect()
assert pool.buffers == [], pool.buffers
assert pool.take(np.dtype(np.float64), 100) is None
print("refused")
"""


def test_arena_freed_before_its_tape_del_is_never_pooled():
    """Found on the first real GPU run: a device tape collected in a reference cycle hands its arena to the pool
    from __del__, but the collector has already run numba's finalizer of that memory (weakref callbacks come
    before __del__), so the memory is freed; the pool must refuse it (it raised ReferenceError at the next
    tape, and could have handed freed memory out). numba-cuda's real pointer classes (no GPU needed, but not
    the simulator: a subprocess)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("numba.cuda")
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=path)
    script = [sys.executable, "-c", _CYCLIC_TAPE_SCRIPT]
    run = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "refused", run.stdout + run.stderr
