"""The CUDA average pooling's window sums (``pooling._shifted_means``: a reshaped ``sum`` for windows that do not
overlap, shifted strided slices for those that do) against the gathered taps (``_gathered_means``), on the CPU
so that many geometries run fast: strides below, at and above the kernel, padding, ceil mode, adaptive windows
of one width evenly spaced and uneven ones (interleaved sets), input with NaN and inf.
tests/cuda/test_cuda_avg_pool.py runs the path on CUDA."""

import numpy as np

import ad
from ad.nn.functional import pooling as P


def _x(shape, rng):
    x = rng.standard_normal(shape)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(3, flat.size), replace=False)
    flat[picks] = [np.inf, -np.inf, np.nan][: picks.size]
    return x


def _check(x, geometry):
    coords, masks, weights = zip(*geometry)
    classes = P._window_classes(coords, masks, x.shape[2:])
    assert classes is not None
    t = ad.tensor(x, requires_grad=True)
    ours = P._shifted_means(t, classes, weights)
    g = np.random.default_rng(1).standard_normal(tuple(ours.shape))
    (grad,) = ad.autograd.grad(ours, t, ad.tensor(g))
    t2 = ad.tensor(x, requires_grad=True)
    expected = P._gathered_means(t2, coords, masks, weights)
    (expected_grad,) = ad.autograd.grad(expected, t2, ad.tensor(g))
    np.testing.assert_allclose(ours.detach().numpy(), expected.detach().numpy(), rtol=1e-13, atol=1e-14, equal_nan=True)
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=1e-13, atol=1e-14)


def test_pooling_windows():
    rng = np.random.default_rng(0)
    for _ in range(150):
        nd = int(rng.integers(1, 3))
        spatial = tuple(int(v) for v in rng.integers(1, 9, nd))
        geometry = []
        for size in spatial:
            k = int(rng.integers(1, min(size, 4) + 1))
            s = int(rng.integers(1, 5))
            p = int(rng.integers(0, k // 2 + 1))
            o = P._pool_out(size, k, s, p, 1, bool(rng.integers(2)))
            coord, valid = P._windows(size, k, s, p, 1, o)
            geometry.append((coord, valid, rng.uniform(0.1, 1.0, o)))
        _check(_x((2, 2) + spatial, rng), geometry)


def test_adaptive_windows_of_one_width_evenly_spaced():
    rng = np.random.default_rng(2)
    for size, out in [(6, 3), (6, 1), (5, 5), (8, 2), (1, 1), (7, 3)]:  # (7 -> 3: width 3, step 2)
        coord, valid = P._adaptive_windows(size, out)
        assert len(P._window_classes([coord], [valid], (size,))[0]) == 1  # (one regular set)
        _check(_x((1, 3, size), rng), [(coord, valid, 1.0 / valid.sum(-1))])


def test_uneven_adaptive_windows_as_interleaved_regular_sets():
    """Adaptive windows of varying width or spacing (5 -> 3: widths 2, 3, 2) repeat every O / gcd(S, O) outputs:
    that many interleaved regular sets (CUDA's path without a host check), against the gathered taps, every
    pair of sizes up to 12 and in 2-d."""
    rng = np.random.default_rng(3)
    periods = {}
    for size in range(1, 13):
        for out in range(1, 13):
            coord, valid = P._adaptive_windows(size, out)
            classes = P._window_classes([coord], [valid], (size,))
            periods[size, out] = len(classes[0])
            _check(_x((1, 2, size), rng), [(coord, valid, 1.0 / valid.sum(-1))])
    assert periods[5, 3] == 3 and periods[10, 4] == 2 and periods[7, 3] == 1 and periods[3, 5] == 5
    geometry = [(c, v, 1.0 / v.sum(-1)) for c, v in (P._adaptive_windows(5, 3), P._adaptive_windows(10, 4))]
    _check(_x((2, 2, 5, 10), rng), geometry)
