"""Convolutions' fast paths against torch and against the differentiable (composite) form, and the memory
of a graph with Python-swept rows (custom Functions) freed by reference counting, without the collector."""

import gc
import weakref

import numpy as np
import pytest

import ad


class _Double(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_function_graph_freed_without_gc():
    """A custom Function's record and its outputs form no reference cycle: dropping the loss frees the graph
    (and its arena) at once, as torch's, so a training loop reuses its buffers instead of mapping new ones."""
    x = ad.randn(64, requires_grad=True)
    gc.disable()
    try:
        y = _Double.apply(x)
        loss = ad.tanh(y).sum()
        record = weakref.ref(y._ctx)
        arena = weakref.ref(y._tape)
        del y
        loss.backward()
        assert record() is not None  # kept by the loss's graph until the loss goes
        del loss
        assert record() is None and arena() is None
    finally:
        gc.enable()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh(2 * x.detach().numpy()) ** 2))


def test_function_dropped_output_gets_zero_cotangent():
    """An output dropped by the user (held weakly by the record) reaches backward as zeros, as torch's."""

    class _Split(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3, x * 5

        @staticmethod
        def backward(ctx, g0, g1):
            return 3 * g0 + 5 * g1

    x = ad.randn(5, requires_grad=True)
    a, b = _Split.apply(x)
    del b
    gc.collect()
    a.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(5, 3.0))


if __name__ == "__main__":
    pytest.main([__file__])


torch = pytest.importorskip("torch")

_POOLS = [
    ("max_pool2d_ties_nan", lambda F, x: F.max_pool2d(x, 3, 1, 1), True),
    ("max_pool2d_ceil_dilated", lambda F, x: F.max_pool2d(x, 2, 2, 1, dilation=2, ceil_mode=True), True),
    ("max_pool1d", lambda F, x: F.max_pool1d(x.flatten(2), 4, 3, 2), True),
    ("avg_pool2d_ceil_nopad", lambda F, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), False),
    ("avg_pool2d_divisor", lambda F, x: F.avg_pool2d(x, (2, 3), (1, 2), (1, 0), divisor_override=5), False),
    ("avg_pool3d", lambda F, x: F.avg_pool3d(x.reshape(2, 3, 2, 5, 7), (2, 2, 3), (1, 2, 2), (1, 1, 0)), False),
    ("adaptive_avg_pool2d", lambda F, x: F.adaptive_avg_pool2d(x, (3, 4)), False),
    ("adaptive_avg_pool1d", lambda F, x: F.adaptive_avg_pool1d(x.flatten(2), 9), False),
    ("adaptive_max_pool2d", lambda F, x: F.adaptive_max_pool2d(x, (4, 3)), True),
]


@pytest.mark.parametrize("name,fn,with_ties", _POOLS, ids=[p[0] for p in _POOLS])
def test_pooling_values_and_gradients_match_torch(name, fn, with_ties):
    """The window-matrix average pools and the argmax kernel of max pools against torch (values, gradients),
    with ties and a NaN in the max pools' windows (the first maximum and the first NaN win, as torch's)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 10, 7))
    if with_ties:
        x = np.round(x, 0)  # many equal values in a window
        x[0, 1, 4, 3] = np.nan
    g = rng.standard_normal(fn(torch.nn.functional, torch.tensor(x)).shape)
    xa, xt = ad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_a, out_t = fn(ad.nn.functional, xa), fn(torch.nn.functional, xt)
    np.testing.assert_allclose(out_a.detach().numpy(), out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    out_a.backward(ad.tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(xa.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


_NORMS = [
    ("layer_norm", lambda F, x, w, b: F.layer_norm(x, (5, 4), w[:20].reshape(5, 4), b[:20].reshape(5, 4))),
    ("group_norm", lambda F, x, w, b: F.group_norm(x, 2, w[:6], b[:6])),
    ("batch_norm", lambda F, x, w, b: F.batch_norm(x, None, None, w[:6], b[:6], training=True)),
    ("instance_norm_no_affine", lambda F, x, w, b: F.instance_norm(x)),
]


@pytest.mark.parametrize("name,fn", _NORMS, ids=[n[0] for n in _NORMS])
def test_normalization_row_matches_torch_first_and_second_order(name, fn):
    """_Normalize's numpy backward, its create_graph backward (a Hessian-vector product) and its jvp against
    torch in float64."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((3, 6, 5, 4)), rng.standard_normal(20), rng.standard_normal(20)
    g, v = rng.standard_normal((3, 6, 5, 4)), rng.standard_normal((3, 6, 5, 4))
    res = {}
    for lib in (ad, torch):
        xs, ws, bs = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
        out = fn(lib.nn.functional, xs, ws, bs)
        (gx,) = lib.autograd.grad((out * lib.tensor(g)).sum(), xs, create_graph=True)
        (hv,) = lib.autograd.grad((gx * lib.tensor(v)).sum(), xs)
        fa = lib.autograd.forward_ad
        with fa.dual_level():
            tangent = fa.unpack_dual(
                fn(lib.nn.functional, fa.make_dual(lib.tensor(x), lib.tensor(v)), ws.detach(), bs.detach())
            ).tangent
        res[lib] = [t.detach().numpy() for t in (out, gx, hv, tangent)]
    for a, t in zip(res[ad], res[torch]):
        np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name,fn", _NORMS, ids=[n[0] for n in _NORMS])
def test_normalization_forward_over_reverse_equals_double_backward(name, fn):
    """The tangent of the gradient (forward over reverse) through the normalization row is the Hessian-vector
    product that double backward gives."""
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 6, 5, 4)), rng.standard_normal(20), rng.standard_normal(20)
    g, v = rng.standard_normal((3, 6, 5, 4)), rng.standard_normal((3, 6, 5, 4))
    F, fa = ad.nn.functional, ad.autograd.forward_ad
    ws, bs = ad.tensor(w), ad.tensor(b)
    xs = ad.tensor(x, requires_grad=True)
    (gx,) = ad.autograd.grad((fn(F, xs, ws, bs) * ad.tensor(g)).sum(), xs, create_graph=True)
    (hv,) = ad.autograd.grad((gx * ad.tensor(v)).sum(), xs)
    with fa.dual_level():
        xd = fa.make_dual(ad.tensor(x), ad.tensor(v)).requires_grad_()
        (gd,) = ad.autograd.grad((fn(F, xd, ws, bs) * ad.tensor(g)).sum(), xd)
        tangent = fa.unpack_dual(gd).tangent
    np.testing.assert_allclose(tangent.numpy(), hv.numpy(), rtol=1e-9, atol=1e-10)
