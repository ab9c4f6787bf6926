"""Selection ops' derivatives on CUDA tensors select as torch's (tests/test_selection_grads.py's table): the
device sweep's elementwise rows and its big-row and eager elementwise kernels apply ``pointwise.times``, the
forward kernels ``pointwise.extreme_tangent`` for maximum / minimum. Reverse mode with cotangents of ones, inf
and NaN (kernel sweep and rules), forward mode with tangents of ones and inf; under numba's simulator in CI (a
few elementwise ops of 12 elements: about 75 us per simulated thread)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

_spec = importlib.util.spec_from_file_location(
    "_selection_grads_for_cuda", Path(__file__).resolve().parent.parent / "test_selection_grads.py"
)
_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_table)

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

# the primitives whose rows the device kernels sweep (the composites are where / clamp rows of these)
NAMES = ["relu", "clamp", "clamp_max", "sign", "maximum", "minimum", "relu_of_max"]


def _inputs(name, requires_grad):
    return [ad.tensor(a, device="cuda", requires_grad=requires_grad) for a in _table._arrays(name)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("create_graph", [False, True], ids=["sweep", "rules"])
def test_cuda_reverse_selects_as_torch(name, create_graph):
    fn = _table.BY_ID[name][1]
    for k, c in enumerate(_table.COTANGENTS):
        xs = _inputs(name, True)
        out = fn(ad, *xs)
        gs = ad.autograd.grad(out, xs, ad.full(out.shape, c, device="cuda"), create_graph=create_graph)
        for j, g in enumerate(gs):
            want = _table._expected_reverse(name, k)[j]
            _table._same(g.detach().cpu().numpy(), want, f"{name} cuda, cotangent {c}, input {j}")


@pytest.mark.parametrize("name", NAMES)
def test_cuda_forward_as_torch(name):
    fn = _table.BY_ID[name][1]
    for j in range(len(_table.BY_ID[name][2])):
        for k, c in enumerate(_table.TANGENTS):
            xs = _inputs(name, False)
            with fwAD.dual_level():
                xs[j] = fwAD.make_dual(xs[j], ad.full(xs[j].shape, c, device="cuda"))
                t = fwAD.unpack_dual(fn(ad, *xs)).tangent.cpu().numpy()
            _table._same(t, _table._expected_forward(name, k)[j], f"{name} cuda, tangent {c}, input {j}")


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_cuda_extreme_selects(name):
    """amax / amin on CUDA tensors (tests/test_selection_grads.py's rows): the sweep and the rules give torch's
    gradients (the mask times the share: NaN to a NaN group, and to the members that are not the extreme under an
    inf or NaN cotangent); the forward rule ignores their inf tangents; max() over all elements (torch's
    MaxBackward1) gives a NaN result's cotangent to its NaN."""
    x, t, share, want = _table._extreme_expected(name, 1)
    for create_graph in (False, True):
        for c in _table.COTANGENTS:
            xa = ad.tensor(x, device="cuda", requires_grad=True)
            seed = ad.full((3,), c, device="cuda")
            (g,) = ad.autograd.grad(getattr(xa, name)(1), xa, seed, create_graph=create_graph)
            _table._same(g.detach().cpu().numpy(), _table._times(share, c), f"{name} cuda, cotangent {c}")
        xa = ad.tensor(x, device="cuda", requires_grad=True)
        whole = xa.max() if name == "amax" else xa.min()
        (g,) = ad.autograd.grad(whole, xa, ad.full((), 2.0, device="cuda"), create_graph=create_graph)
        _table._same(g.detach().cpu().numpy(), np.isnan(x) * 2.0, f"{name} cuda, max() / min() of a NaN")
    with fwAD.dual_level():
        d = fwAD.make_dual(ad.tensor(x, device="cuda"), ad.tensor(t, device="cuda"))
        _table._same(fwAD.unpack_dual(getattr(d, name)(1)).tangent.cpu().numpy(), want, f"{name} cuda tangent")
