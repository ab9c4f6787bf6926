"""Property tests of the index-map ops against torch: random shapes, dims and indices (with repeats).

Each example draws an input of 1 to 3 dims, a dim, and an index tensor that fits; values are distinct
(a random permutation plus noise), so amax / amin / sort never tie and every gradient is torch's exactly.
Values and the gradients of a weighted sum are compared with torch's.
"""

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
given, settings = hypothesis.given, hypothesis.settings


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return (rng.permutation(n) + rng.uniform(0.1, 0.9, n)).reshape(shape) / n - 0.5


@st.composite
def _scatter_problem(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    dim = draw(st.integers(-ndim, ndim - 1))
    d = dim % ndim
    index_shape = tuple(draw(st.integers(1, 4)) if k == d else draw(st.integers(1, shape[k])) for k in range(ndim))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, dim, index_shape, seed


def _compare(fn, arrays):
    outs, grads = [], []
    for L in (ad, torch):
        ts = [L.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
        out = fn(L, *ts)
        w = np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape))
        wrt = [t for t in ts if t.requires_grad]
        g = L.autograd.grad((out * L.tensor(w)).sum(), wrt, allow_unused=True, materialize_grads=True)
        outs.append(out.detach().numpy())
        grads.append([x.detach().numpy() for x in g])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, t in zip(*grads):
        np.testing.assert_allclose(a, t, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(_scatter_problem(), st.sampled_from(["sum", "prod", "mean", "amax", "amin"]), st.booleans())
def test_scatter_reduce_matches_torch(problem, reduce, include_self):
    shape, dim, index_shape, seed = problem
    rng = np.random.default_rng(seed)
    x = _distinct(rng, shape)
    src = _distinct(rng, index_shape) + 2.0  # never equal to an element of x
    index = rng.integers(0, shape[dim], index_shape)
    _compare(lambda L, x, s: x.scatter_reduce(dim, L.tensor(index), s, reduce, include_self=include_self), [x, src])


@settings(max_examples=40, deadline=None)
@given(_scatter_problem())
def test_scatter_add_and_index_add_match_torch(problem):
    shape, dim, index_shape, seed = problem
    rng = np.random.default_rng(seed)
    x = _distinct(rng, shape)
    src = _distinct(rng, index_shape)
    index = rng.integers(0, shape[dim], index_shape)
    _compare(lambda L, x, s: x.scatter_add(dim, L.tensor(index), s), [x, src])
    d = dim % len(shape)
    vec = rng.integers(0, shape[d], index_shape[d])
    source_shape = tuple(index_shape[d] if k == d else shape[k] for k in range(len(shape)))
    _compare(lambda L, x, s: x.index_add(dim, L.tensor(vec), s, alpha=1.5), [x, _distinct(rng, source_shape)])


@settings(max_examples=40, deadline=None)
@given(_scatter_problem(), st.integers(-5, 5), st.booleans())
def test_gathers_match_torch(problem, shift, descending):
    shape, dim, index_shape, seed = problem
    rng = np.random.default_rng(seed)
    x = _distinct(rng, shape)
    d = dim % len(shape)
    index = rng.integers(0, shape[d], index_shape)
    k = int(rng.integers(0, shape[d] + 1))
    along = index[tuple(slice(None) if k == d else slice(0, 1) for k in range(len(shape)))]  # broadcasts
    _compare(lambda L, x: L.take_along_dim(x, L.tensor(along), dim), [x])
    _compare(lambda L, x: L.roll(x, shift, dim) * L.flip(x, [dim]), [x])
    _compare(lambda L, x: L.sort(x, dim, descending=descending)[0], [x])
    _compare(lambda L, x: L.topk(x, k, dim, largest=not descending)[0], [x])
    _compare(lambda L, x: x.masked_fill(x > 0, 0.5) + L.take(x, L.tensor(index.reshape(-1) % x.numel())).sum(), [x])
    reps = rng.integers(0, 3, shape[d])
    _compare(lambda L, x: x.repeat_interleave(L.tensor(reps), dim), [x])
