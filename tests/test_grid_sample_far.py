"""``grid_sample`` bicubic at far grid coordinates (1e10 to 1e308, both signs) against torch, values and the
gradients of the input and of the grid: each tap's coordinate is computed in floating point as torch's (beyond
2 ** 53 ``floor - 1 + k`` rounds, and the reflection of the rounded tap is what torch samples), a padded tap is
rounded to the nearest pixel, ties to even, as torch's (beyond 2 ** 52 a reflection can be a half-integer), and a
tap outside the input is selected away rather than multiplied by 0 (its clipped pixel's cotangent times the NaN
weight of a non-finite coordinate reached the input as NaN).

Known gap: reflection of unnormalized coordinates beyond 2 ** 53 (where taps round together): about 4% of sampled
points pick another pixel than torch's, whose reflection arithmetic there we could not reproduce (its remainder
seems computed as ``x - trunc(x / span) * span``, which matches more of them, but not all); the band scanned below
stops at 2 ** 53 for reflection."""

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
    top = 2.0**51 if padding_mode == "reflection" else 2.0**58  # (the grid's value; unnormalized, 2.5 times it)
    close = CLOSE_TO_2_52[:1] if padding_mode == "reflection" else CLOSE_TO_2_52  # (below 2 ** 53 unnormalized)
    values = FAR + close + list(np.geomspace(2.0**44, top, 12) * np.resize([1, -1], 12))
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
