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


def _im2col_reference(x, kernel, stride, padding, dilation):
    """torch's unfold written out: one gather per kernel tap from the zero-padded image."""
    n, c, *sp = x.shape
    nd = len(sp)
    out = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, st, p, d in zip(sp, kernel, stride, padding, dilation)]
    xp = np.pad(
        x,
        [(0, 0), (0, 0)] + [(p, p + d * k + st * o) for p, d, k, st, o in zip(padding, dilation, kernel, stride, out)],
    )
    taps = []
    for tap in np.ndindex(*kernel):
        index = tuple(slice(t * d, t * d + o * st, st) for t, d, o, st in zip(tap, dilation, out, stride))
        taps.append(xp[(slice(None), slice(None)) + index].reshape(n, c, -1))
    return np.stack(taps, 2).reshape(n, c * len(taps), -1), nd


# (spatial, kernel, stride, padding, dilation): "same" padding at unit stride takes the kernels' run path;
# the others (strides, uneven padding, a window reaching past the image's end) the per-row one
_GEOMETRIES = [
    ((7, 6), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((6, 5), (3, 5), (1, 1), (2, 4), (2, 2)),
    ((5, 4), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((4, 5), (3, 2), (2, 1), (1, 2), (1, 2)),
    ((6,), (3,), (1,), (0,), (1,)),
    ((1,), (3,), (1,), (2,), (2,)),
    ((3, 4, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ((3, 4, 5), (2, 3, 1), (2, 1, 2), (1, 0, 1), (1, 2, 1)),
]


@pytest.mark.parametrize("geometry", _GEOMETRIES, ids=[str(g[0]) + str(g[1]) for g in _GEOMETRIES])
@pytest.mark.parametrize("batch_inner", [False, True])
def test_im2col_col2im_kernels_against_a_reference(geometry, batch_inner):
    """im2col equals unfold written out with numpy, in both column layouts and dtypes (every element written,
    padding included: the output starts as garbage), and col2im is its adjoint: <im2col(x), c> = <x, col2im(c)>."""
    from ad.nn.functional.conv import _as5d, _geometry
    from kernels import conv as kconv

    spatial, kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(7)
    geom = _geometry(spatial, kernel, stride, padding, dilation)[0]
    for dtype in (np.float64, np.float32):
        x = rng.standard_normal((2, 3) + spatial).astype(dtype)
        ref, _ = _im2col_reference(x, kernel, stride, padding, dilation)
        cols = np.full((ref.shape[1], 2, ref.shape[2]) if batch_inner else ref.shape, np.nan, dtype)
        kconv.im2col(x.reshape(_as5d(x.shape)), geom, cols, batch_inner)
        np.testing.assert_array_equal(cols.transpose(1, 0, 2) if batch_inner else cols, ref)
        c = rng.standard_normal(cols.shape).astype(dtype)
        image = np.zeros(_as5d(x.shape), dtype)
        kconv.col2im(c, geom, image, batch_inner)
        c_nr = c.transpose(1, 0, 2) if batch_inner else c
        np.testing.assert_allclose((image.reshape(x.shape) * x).sum(), (ref * c_nr).sum(), rtol=1e-4)


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


# (conv, input shape, weight shape, keyword arguments): the run path (unit stride, "same" padding, with
# dilation and groups) and the per-row one (strides, padding that is not "same")
_CONVS_F32 = [
    ("conv2d", (3, 4, 9, 8), (6, 4, 3, 3), dict(padding=1)),
    ("conv2d", (2, 4, 9, 8), (6, 2, 3, 3), dict(padding=2, dilation=2, groups=2)),
    ("conv2d", (2, 3, 9, 8), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 2))),
    ("conv1d", (2, 3, 11), (5, 3, 5), dict(padding=2)),
    ("conv3d", (2, 2, 4, 5, 6), (3, 2, 3, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("conv,x_shape,w_shape,kwargs", _CONVS_F32, ids=[f"{c[0]}-{c[3]}" for c in _CONVS_F32])
def test_float32_convolution_matches_torch(conv, x_shape, w_shape, kwargs):
    """The float32 fast path (sgemm, float32 columns) against torch at float32 tolerances, forward and
    backward into the input, the weight and the bias; everything stays float32."""
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    res = {}
    for lib in (ad, torch):
        xs, ws, bs = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
        out = getattr(lib.nn.functional, conv)(xs, ws, bs, **kwargs)
        g = lib.tensor(np.cos(np.arange(out.numel(), dtype=np.float32)).reshape(tuple(out.shape)))
        out.backward(g)
        res[lib] = [t.detach().numpy() for t in (out, xs.grad, ws.grad, bs.grad)]
    for a, t in zip(res[ad], res[torch]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, t, rtol=2e-4, atol=2e-4 * np.abs(t).max())


# (conv, input shape, weight shape, keyword arguments) for the batch split across threads: a batch that the
# parts do not divide, a batch of one, and the geometries of the per-row and run paths
_CONVS_SPLIT = [
    ("conv2d", (5, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
    ("conv2d", (3, 3, 6, 6), (4, 3, 3, 3), dict(padding="same")),
    ("conv2d", (1, 3, 6, 6), (4, 3, 3, 3), dict(padding=1)),
    ("conv1d", (4, 3, 9), (5, 3, 4), dict(padding="same", dilation=2)),
    ("conv3d", (3, 2, 3, 4, 5), (3, 2, 2, 3, 3), dict(padding=1, stride=(1, 2, 1))),
]


def _conv_value_and_grads(conv, x, w, b, kwargs, with_input_grad=True):
    xs = ad.tensor(x, requires_grad=with_input_grad)
    ws, bs = ad.tensor(w, requires_grad=True), ad.tensor(b, requires_grad=True)
    out = getattr(ad.nn.functional, conv)(xs, ws, bs, **kwargs)
    out.backward(ad.tensor(np.cos(np.arange(out.numel())).reshape(out.shape).astype(x.dtype)))
    return [out.detach().numpy().copy()] + [t.grad.numpy().copy() for t in (xs, ws, bs) if t.requires_grad]


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("conv,x_shape,w_shape,kwargs", _CONVS_SPLIT, ids=[f"{c[0]}-{c[1]}" for c in _CONVS_SPLIT])
def test_convolution_batch_split_across_threads_matches_the_serial_loop(
    monkeypatch, workers, conv, x_shape, w_shape, kwargs
):
    """A convolution's samples split over 2 or 3 threads (numpy's BLAS on one thread meanwhile) give the serial
    loop's values and gradients (float64: the weight and bias gradients are summed per part, then added), with
    and without the input's gradient; BLAS's thread count is put back after."""
    from ad import blas_threads
    from ad.nn.functional import conv as conv_module

    rng = np.random.default_rng(13)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    monkeypatch.setattr(conv_module, "SPLIT_MIN_MACS", 1 << 60)
    serial = [_conv_value_and_grads(conv, x, w, b, kwargs, need_x) for need_x in (True, False)]
    counts = [getter() for _, getter in blas_threads._get_controls()]
    monkeypatch.setattr(conv_module, "SPLIT_MIN_MACS", 0)
    monkeypatch.setattr(ad.parallel, "_WORKERS", workers)
    parts = []
    run_parts = ad.parallel.run_parts

    def counted(count, n, fn):
        parts.append(count)
        return run_parts(count, n, fn)

    monkeypatch.setattr(ad.parallel, "run_parts", counted)
    split = [_conv_value_and_grads(conv, x, w, b, kwargs, need_x) for need_x in (True, False)]
    assert parts == ([min(workers, x_shape[0])] * 4 if x_shape[0] > 1 and blas_threads.available() else [])
    assert [getter() for _, getter in blas_threads._get_controls()] == counts
    for ref, got in zip(serial, split):
        for a, e in zip(got, ref):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_blas_single_threaded_region_nests_and_restores_the_thread_count():
    from ad import blas_threads

    if not blas_threads.available():
        pytest.skip("no OpenBLAS thread control found for numpy's BLAS")
    controls = blas_threads._get_controls()
    before = [getter() for _, getter in controls]
    with blas_threads.single_threaded():
        with blas_threads.single_threaded():
            assert [getter() for _, getter in controls] == [1] * len(controls)
        assert [getter() for _, getter in controls] == [1] * len(controls)
    assert [getter() for _, getter in controls] == before
    with pytest.raises(ZeroDivisionError), blas_threads.single_threaded():
        raise ZeroDivisionError
    assert [getter() for _, getter in controls] == before
