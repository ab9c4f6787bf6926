"""``F.grid_sample``'s derivatives against torch in float64, beyond the first-order comparisons of
test_nn_functional_more: the grid's gradient in ``nearest`` mode (zeros, not None), second order (the gradients
differentiated again, to the input and the grid), forward mode (torch has none for grid_sampler: checked against
the reverse mode, <J v, w> = <v, J^T w>), and samples of non-finite grids (``border`` / ``reflection`` send NaN to
the edge, as torch)."""

import warnings

import numpy as np
import pytest

import ad
from ad.autograd import forward_ad as fwd

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(5)
INPUT_2D, GRID_2D = RNG.uniform(-2, 2, (2, 2, 4, 5)), RNG.uniform(-1.4, 1.4, (2, 3, 2, 2))
INPUT_3D, GRID_3D = RNG.uniform(-2, 2, (1, 2, 3, 4, 3)), RNG.uniform(-1.4, 1.4, (1, 2, 2, 3, 3))

SETTINGS = [
    (nd, mode, padding, align)
    for nd in (2, 3)
    for mode in ("bilinear", "nearest", "bicubic")
    for padding in ("zeros", "border", "reflection")
    for align in (False, True)
    if not (nd == 3 and mode == "bicubic")
]


def _ids(setting):
    return "{}d_{}_{}_{}".format(*setting)


def _data(nd):
    return (INPUT_2D, GRID_2D) if nd == 2 else (INPUT_3D, GRID_3D)


def _weights(shape, lo=0.5, hi=1.5):
    return np.linspace(lo, hi, int(np.prod(shape))).reshape(shape)


def _first_and_second_order(lib, setting):
    """(grad input, grad grid) of sum(out * w), and the gradient of sum(gx * u) + sum(gg * v) to both."""
    nd, mode, padding, align = setting
    x0, g0 = _data(nd)
    tensor = torch.tensor if lib is torch else ad.tensor
    x, g = tensor(x0, requires_grad=True), tensor(g0, requires_grad=True)
    out = lib.nn.functional.grid_sample(x, g, mode, padding, align)
    gx, gg = lib.autograd.grad((out * tensor(_weights(tuple(out.shape)))).sum(), [x, g], create_graph=True)
    second = (gx * tensor(_weights(x0.shape, -1, 1))).sum() + (gg * tensor(_weights(g0.shape, -1, 1))).sum()
    hx, hg = lib.autograd.grad(second, [x, g], allow_unused=True)
    return [t if t is None else t.detach().numpy() for t in (gx, gg, hx, hg)]


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids)
def test_first_and_second_order_as_torch(setting):
    ad_results = _first_and_second_order(ad, setting)
    torch_results = _first_and_second_order(torch, setting)
    for name, a, t in zip(("grad input", "grad grid", "second to input", "second to grid"), ad_results, torch_results):
        if t is None:
            # torch leaves the input unconnected to nearest's second order; ad's is zeros (same value)
            assert setting[1] == "nearest" and name == "second to input"
            assert not a.any()
            continue
        assert a is not None, name
        np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-10, err_msg=name)
    if setting[1] == "nearest":  # the grid's gradients are zeros, and present
        assert ad_results[1].shape == _data(setting[0])[1].shape and not ad_results[1].any()
        assert not ad_results[3].any()


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids)
def test_forward_mode_agrees_with_reverse(setting):
    """torch has no forward AD for grid_sampler; ad's tangent, for tangents on the input and on the grid, is the
    reverse mode's transpose: <J (u, v), w> == <u, J^T w>_input + <v, J^T w>_grid."""
    nd, mode, padding, align = setting
    x0, g0 = _data(nd)
    u, v = _weights(x0.shape, -1, 1), _weights(g0.shape, 1, -1)
    x, g = ad.tensor(x0, requires_grad=True), ad.tensor(g0, requires_grad=True)
    out = ad.nn.functional.grid_sample(x, g, mode, padding, align)
    w = _weights(tuple(out.shape))
    gx, gg = ad.autograd.grad((out * ad.tensor(w)).sum(), [x, g])
    for tangents, expected in (
        ((u, None), np.sum(gx.numpy() * u)),
        ((None, v), np.sum(gg.numpy() * v)),
        ((u, v), np.sum(gx.numpy() * u) + np.sum(gg.numpy() * v)),
    ):
        with fwd.dual_level():
            duals = [
                ad.tensor(p) if t is None else fwd.make_dual(ad.tensor(p), ad.tensor(t))
                for p, t in zip((x0, g0), tangents)
            ]
            tangent = fwd.unpack_dual(ad.nn.functional.grid_sample(*duals, mode, padding, align)).tangent
        assert tangent is not None and tangent.shape == out.shape
        np.testing.assert_allclose(np.sum(tangent.numpy() * w), expected, rtol=1e-10, atol=1e-10)
        if mode == "nearest" and tangents[0] is None:
            assert not tangent.numpy().any()


NON_FINITE_GRID = np.array([[[[np.nan, 0.2], [np.inf, 0.1], [0.3, -np.inf], [0.5, 0.5], [2.5, -3.0], [-1.7, 0.4]]]])


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_non_finite_grid_samples_as_torch(mode, padding, align):
    """Samples (and, for nearest, gradients: torch's bilinear backward crashes on a NaN grid with border padding)
    of a grid holding NaN and infinities, without numpy warnings."""
    x0 = np.arange(12.0).reshape(1, 1, 3, 4)
    xt, gt = torch.tensor(x0, requires_grad=True), torch.tensor(NON_FINITE_GRID, requires_grad=True)
    xa, ga = ad.tensor(x0, requires_grad=True), ad.tensor(NON_FINITE_GRID, requires_grad=True)
    expected = torch.nn.functional.grid_sample(xt, gt, mode, padding, align)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ad.nn.functional.grid_sample(xa, ga, mode, padding, align)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12, equal_nan=True)
    if mode == "nearest":
        grads_t = torch.autograd.grad(expected.sum(), [xt, gt])
        grads_a = ad.autograd.grad(out.sum(), [xa, ga])
        for a, t in zip(grads_a, grads_t):
            np.testing.assert_array_equal(a.numpy(), t.numpy())
    if padding != "zeros" and mode != "bicubic":  # the edge-clipped NaN and inf entries: finite samples
        assert np.isfinite(out.detach().numpy()).all()
