"""``grid_sample`` bicubic at far grid coordinates (1e10 to 1e308, both signs) against torch, values and the
gradients of the input and of the grid: each tap's coordinate is computed in floating point as torch's (beyond
2 ** 53 ``floor - 1 + k`` rounds, and the reflection of the rounded tap is what torch samples), a padded tap is
rounded to the nearest pixel, ties to even, as torch's (beyond 2 ** 52 a reflection can be a half-integer), and a
tap outside the input is selected away rather than multiplied by 0 (its clipped pixel's cotangent times the NaN
weight of a non-finite coordinate reached the input as NaN).

Beyond 2 ** 53 (float32: 2 ** 24), where the arithmetic rounds, torch's two CPU kernels differ and ad follows each
(``ad/nn/functional/sampling.py``, learned by sampling ramps): 4-D input unnormalizes with a fused multiply-add
and reflects over twice the span (remainder by a fused multiply-add, then the nearer side), bicubic taps are
``floor + (k - 1)`` in one addition, truncated to a pixel in float32; 5-D input counts reflection flips in a
32-bit int and clips NaN to the far border. ``test_far_coordinates_match_torch_in_both_kernels`` scans every
mode, padding and dtype up to 2 ** 1000 (float32: 2 ** 120).

Known difference: torch's float32 5-D backward gives zero gradients (input and grid) at a point whose coordinate
overflows to inf or NaN, whose forward value it takes from the border pixel; ad gives the derivative of that
value (the border pixel's weight)."""

import numpy as np
import pytest

import ad
import ad.nn.functional as AF

torch = pytest.importorskip("torch")

FAR = [1e300, -1e300, 1e10, -1e10, 1e17, 1e19, -2.5e16, 1e308, -1.7e308, 5e307]
CLOSE_TO_2_52 = [3e15, 9.1e15, 1e16]


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bicubic_far_coordinates_match_torch(padding_mode, align_corners):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, (1, 2, 4, 5))
    values = FAR + CLOSE_TO_2_52 + list(np.geomspace(2.0**44, 2.0**58, 12) * np.resize([1, -1], 12))
    g = rng.uniform(-1.1, 1.1, (1, len(values), 2, 2))
    for i, v in enumerate(values):
        g[0, i, 0, 0] = v  # a far x coordinate
        g[0, i, 1, 1] = v  # a far y coordinate
    results = []
    for L, F in ((torch, torch.nn.functional), (ad, AF)):
        xi, gi = L.tensor(x, requires_grad=True), L.tensor(g, requires_grad=True)
        out = F.grid_sample(xi, gi, mode="bicubic", padding_mode=padding_mode, align_corners=align_corners)
        out.backward(L.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape))))
        results.append((out.detach().numpy(), xi.grad.numpy(), gi.grad.numpy()))
    for theirs, ours in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_an_outside_tap_of_an_infinite_pixel_is_zero():
    # zeros padding: the taps left of the image read its clipped first column, here inf; torch's sample is finite
    x = np.ones((1, 1, 3, 3))
    x[0, 0, :, 0] = np.inf
    g = np.array([[[[-1.5, 0.0]]]])
    for mode in ("bicubic", "bilinear"):
        theirs = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(g), mode=mode, align_corners=True)
        ours = AF.grid_sample(ad.tensor(x), ad.tensor(g), mode=mode, align_corners=True)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("nd", [2, 3])
def test_far_coordinates_match_torch_in_both_kernels(dtype, nd):
    rng = np.random.default_rng(nd)
    top = 1000 if dtype == "float64" else 120
    low = 44 if dtype == "float64" else 20
    spatial = (3, 5) if nd == 2 else (2, 3, 5)
    n = 60
    tol = 1e-10 if dtype == "float64" else 2e-5
    for mode in ("bilinear", "nearest", "bicubic") if nd == 2 else ("bilinear",):  # (torch's 5-D nearest backward
        for padding_mode in ("reflection", "border", "zeros"):  # crashes on far coordinates)
            for align_corners in (False, True):
                x = rng.uniform(0.5, 1.0, (1, 2, *spatial)).astype(dtype)
                g = rng.uniform(-1.2, 1.2, (1, n, *(1,) * (nd - 1), nd))
                far = rng.uniform(1, 2, (n, nd)) * 2.0 ** rng.integers(low, top, (n, nd)) * rng.choice([-1, 1], (n, nd))
                pick = rng.random((n, nd)) < 0.6
                g.reshape(n, nd)[pick] = far[pick]
                g = g.astype(dtype)
                results = []
                for L, F in ((torch, torch.nn.functional), (ad, AF)):
                    xi, gi = L.tensor(x, requires_grad=True), L.tensor(g, requires_grad=True)
                    out = F.grid_sample(xi, gi, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
                    out.backward(L.tensor(np.linspace(0.5, 1.5, out.numel()).astype(dtype).reshape(tuple(out.shape))))
                    results.append((out.detach().numpy(), xi.grad.numpy(), gi.grad.numpy()))
                for theirs, ours in zip(*results):
                    np.testing.assert_allclose(
                        ours,
                        theirs,
                        rtol=tol,
                        atol=tol,
                        equal_nan=True,
                        err_msg=f"{mode} {padding_mode} {align_corners}",
                    )


def test_fma_emulation_is_correctly_rounded():
    from fractions import Fraction

    from ad.nn.functional.sampling import _fma

    rng = np.random.default_rng(0)
    for dtype, span in ((np.float64, 60), (np.float32, 30)):
        a = (rng.uniform(-1, 1, 3000) * 2.0 ** rng.integers(-span, span, 3000)).astype(dtype)
        a[:5] = np.array([np.finfo(dtype).max, -np.finfo(dtype).max / 2, np.inf, np.nan, 0], dtype)
        c = (rng.uniform(-1, 1, 3000) * 2.0 ** rng.integers(-span, span, 3000)).astype(dtype)
        for b in (2.5, 64.0, 1024.5, 3.0):
            out = _fma(a, b, c)
            for ai, ci, oi in zip(a[5:400], c[5:400], out[5:400]):
                exact = Fraction(float(ai)) * Fraction(b) + Fraction(float(ci))
                nearest = abs(Fraction(float(oi)) - exact)
                for other in (np.nextafter(oi, dtype(np.inf)), np.nextafter(oi, dtype(-np.inf))):
                    assert nearest <= abs(Fraction(float(other)) - exact)
            assert np.isnan(out[3]) and np.isinf(out[2])
            assert out[0] == (np.inf if b > 1 else out[0])
