"""The scalar forms of + - * / on CUDA tensors keep IEEE's sign of zero, NaN and infinity, as on the CPU
(tests/test_signed_zero.py's table): the device kernels share ``pointwise_values.affine_value``, whose multiply-only
shortcut is taken for a multiplication's ``b = -0.0`` only. Values, reverse-mode derivatives and forward-mode
tangents, under numba's simulator in CI (tiny sizes: about 75 us per simulated thread)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

_spec = importlib.util.spec_from_file_location(
    "_signed_zero_for_cuda", Path(__file__).resolve().parent.parent / "test_signed_zero.py"
)
_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_table)
FORMS, SPECIAL, _check, _expected = _table.FORMS, _table.SPECIAL, _table._check, _table._expected

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.mark.parametrize("name, fn, d", [(f[0], f[1], f[3]) for f in FORMS], ids=[f[0] for f in FORMS])
def test_cuda_affine_forms(name, fn, d):
    want = _expected(name, SPECIAL)
    _check(fn(ad.tensor(SPECIAL, device="cuda")).cpu().numpy(), want, "no grad")
    x = ad.tensor(SPECIAL, device="cuda", requires_grad=True)
    y = fn(x.clone())
    (g,) = ad.autograd.grad(y, x, ad.ones_like(y))
    _check(y.detach().cpu().numpy(), want, "recorded")
    _check(g.cpu().numpy(), np.full(SPECIAL.shape, d), "derivative")
    with fwAD.dual_level():
        xd = fwAD.make_dual(ad.tensor(SPECIAL, device="cuda"), ad.ones(SPECIAL.shape, device="cuda"))
        primal, tangent = fwAD.unpack_dual(fn(xd))
        _check(primal.cpu().numpy(), want, "forward primal")
        _check(tangent.cpu().numpy(), np.full(SPECIAL.shape, d), "tangent")


@pytest.mark.parametrize("create_graph", [False, True])
def test_cuda_amax_of_a_nan_group_gives_its_members_nan(create_graph):
    """The device sweeps' amax/amin (kernels/cuda/sweep.py's group rows, reduce.py's eager backward, the
    differentiable rule) as the CPU and torch: the cotangent is shared by the members equal to the result, so a
    group whose result is NaN gives every member NaN (torch's AmaxBackward0), the other groups their ties' shares;
    the tangent of a NaN group's result is NaN."""
    x_np = np.array([[1.0, np.nan, 2.0, np.nan], [0.0, 3.0, 3.0, -1.0], [np.nan, -2.0, -1.0, -3.0]])
    nan_row = np.full(4, np.nan)
    want = {"amax": [nan_row, [0.0, 0.5, 0.5, 0.0], nan_row], "amin": [nan_row, [0.0, 0.0, 0.0, 1.0], nan_row]}
    for reduce in ("amax", "amin"):
        grads = []
        for device in ("cpu", "cuda"):
            x = ad.tensor(x_np, device=device, requires_grad=True)
            (g,) = ad.autograd.grad(getattr(x, reduce)(1).sum(), x, create_graph=create_graph)
            assert g.device.type == device
            grads.append(g.detach().cpu().numpy())
        np.testing.assert_array_equal(grads[1], grads[0], err_msg=reduce)
        np.testing.assert_array_equal(grads[0], np.array(want[reduce]), err_msg=reduce)
        x = ad.tensor(x_np, device="cuda", requires_grad=True)
        (g,) = ad.autograd.grad(getattr(x, reduce)(), x, create_graph=create_graph)  # (the whole: NaN, so all NaN)
        assert np.isnan(g.detach().cpu().numpy()).all()
    with fwAD.dual_level():
        d = fwAD.make_dual(ad.tensor(x_np, device="cuda"), ad.tensor(np.arange(12.0).reshape(3, 4), device="cuda"))
        tangent = fwAD.unpack_dual(d.amax(1)).tangent.cpu().numpy()
    np.testing.assert_array_equal(tangent, [np.nan, 5.5, np.nan])
