"""LAPACK primitives on CUDA tensors (``ad/cuda/solver.py``): cuSOLVER through CuPy where CuPy imports on a GPU,
the recorded host round trip otherwise.

Without a GPU, CuPy is absent: the fallback is checked as it runs here, and the device dispatch with a fake
``cupy`` (its ``linalg`` computes with numpy on host copies and records its calls) that the solver takes for
CuPy: inverse and solve then never take the host round trip, their arguments reach "CuPy" as device arrays,
and values, gradients (first and second order) and forward-mode tangents equal the CPU's.
"""

import types

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.autograd.function as function
from ad.cuda import solver

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)


class _FakeCupy:
    """What ``solver.lapack`` uses of CuPy: ``asarray`` of a device array, ``linalg.inv`` / ``linalg.solve``
    returning an object with ``__cuda_array_interface__`` (here a numba device array)."""

    def __init__(self):
        self.calls = []
        self.linalg = types.SimpleNamespace(
            inv=self._call("inv", np.linalg.inv), solve=self._call("solve", np.linalg.solve)
        )

    def asarray(self, a):  # as CuPy: a zero-copy view of what the interface describes
        from ad.cuda.arrays import as_device_array

        assert hasattr(a, "__cuda_array_interface__"), "a device array"
        return as_device_array(a)

    def _call(self, name, fn):
        def run(*arrays):
            from numba import cuda

            self.calls.append((name, all(hasattr(a, "copy_to_host") for a in arrays)))
            return cuda.to_device(fn(*(a.copy_to_host() for a in arrays)))

        return run


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = _FakeCupy()
    monkeypatch.setattr(solver, "backend", lambda: fake)

    def refuse(*args, **kwargs):
        raise AssertionError("the host round trip was taken")

    monkeypatch.setattr(function, "_host_round_trip", refuse)
    return fake


def _inv_solve(dev):
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal((3, 3)) + 3.0 * np.eye(3)
    b0 = rng.standard_normal((3, 2))
    A = ad.tensor(a0, device=dev, requires_grad=True)
    B = ad.tensor(b0, device=dev, requires_grad=True)
    out = ad.linalg.inv(A).sum(0) @ ad.linalg.solve(A, B)
    grads = ad.autograd.grad(out.sum(), (A, B), create_graph=True)
    second = ad.autograd.grad(sum((g * g).sum() for g in grads), (A, B))
    with fwAD.dual_level():
        dual = fwAD.make_dual(A.detach(), ad.tensor(np.ones((3, 3)), device=dev))
        tangent = fwAD.unpack_dual(ad.linalg.solve(dual, B.detach())).tangent
    return [t.detach().cpu().numpy() for t in (out, *grads, *second, tangent)]


def test_inverse_and_solve_run_through_cupy_linalg_when_it_is_there(fake_cupy):
    on_cuda = _inv_solve("cuda")
    assert {name for name, _ in fake_cupy.calls} == {"inv", "solve"}
    assert all(on_device for _, on_device in fake_cupy.calls)  # zero-copy: device arrays, never host ones
    for a, b in zip(_inv_solve("cpu"), on_cuda):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_singular_matrix_through_cupy_raises_torchs_error(fake_cupy):
    A = ad.tensor(np.ones((2, 2)), device="cuda")
    with pytest.raises(ad.linalg.LinAlgError, match="singular"):
        ad.linalg.inv(A)
    with pytest.raises(ad.linalg.LinAlgError, match="The solver failed because the input matrix is singular"):
        ad.linalg.solve(A, ad.tensor(np.ones((2, 1)), device="cuda"))


@pytest.mark.skipif(not solver.available(), reason="CuPy on a GPU only (the simulator never uses CuPy)")
def test_cusolver_through_real_cupy_equals_the_cpu():  # pragma: no cover - runs on a GPU with CuPy
    for a, b in zip(_inv_solve("cpu"), _inv_solve("cuda")):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)


def test_without_cupy_the_primitives_take_the_host_round_trip(monkeypatch):
    monkeypatch.setattr(solver, "backend", lambda: None)  # (as under the simulator, or CuPy absent)
    assert not solver.available()
    taken = []
    round_trip = function._host_round_trip
    monkeypatch.setattr(function, "_host_round_trip", lambda cls, *a: taken.append(cls.__name__) or round_trip(cls, *a))
    A = ad.tensor(np.eye(2) * 2.0, device="cuda", requires_grad=True)
    X = ad.linalg.inv(A)
    assert X.is_cuda and taken == ["_Inv"]
    np.testing.assert_allclose(X.detach().cpu().numpy(), np.eye(2) * 0.5)


def test_batched_solve_with_a_broadcast_right_hand_side_reaches_cupy_with_its_strides(fake_cupy):
    """Found on the first real GPU run: solve(A of (2, 3, 3), B of (3, 2)) expands B to a stride-0 view; numba's
    interface called it contiguous, so cuSOLVER read the second batch past B's memory. Values and gradients
    through the (fake) CuPy path equal the CPU's."""
    rng = np.random.default_rng(1)
    a0, b0 = rng.standard_normal((2, 3, 3)) + 3.0 * np.eye(3), rng.standard_normal((3, 2))

    def run(dev):
        A = ad.tensor(a0, device=dev, requires_grad=True)
        B = ad.tensor(b0, device=dev, requires_grad=True)
        X = ad.linalg.solve(A, B)
        grads = ad.autograd.grad((X * X).sum(), (A, B))
        return [t.detach().cpu().numpy() for t in (X, *grads)]

    on_cuda = run("cuda")
    assert ("solve", True) in fake_cupy.calls
    for a, b in zip(run("cpu"), on_cuda):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_interface_of_a_broadcast_view_keeps_its_zero_strides():
    """numba's ``__cuda_array_interface__`` says ``strides: None`` (C-contiguous) for a view whose only
    non-contiguous dimensions are broadcast; ``kernels.cuda.launch.interface`` gives the strides. numba's real
    device arrays over a fake allocation (a subprocess without the simulator; no GPU needed)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = """
import numpy as np
from numba.cuda.cudadrv import driver
from numba.cuda.cudadrv.devicearray import DeviceNDArray
from kernels.cuda.launch import interface
keep = {}
mem = driver.AutoFreePointer(None, 4096, 48, finalizer=keep.clear)
keep[0] = mem
f8 = np.dtype(np.float64)
expanded = DeviceNDArray((2, 3, 2), (0, 16, 8), f8, gpu_data=mem.own())
dense = DeviceNDArray((3, 2), (16, 8), f8, gpu_data=mem.own())
print(expanded.__cuda_array_interface__["strides"], interface(expanded)["strides"], interface(dense)["strides"])
"""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=path)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[0] == "None (0, 16, 8) None"  # numba's, ours (expanded), ours (dense)
