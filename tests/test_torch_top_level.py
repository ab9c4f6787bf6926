"""torch's remaining top-level names, ``ad.testing`` and the small module gaps, against torch 2.13: values,
gradients (finite differences in float64 and torch's), errors and warnings."""

import warnings

import numpy as np
import pytest

import ad
from ad.autograd import gradcheck

torch = pytest.importorskip("torch")


def _t(a, requires_grad=False):
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


def _a(a, requires_grad=False):
    return ad.tensor(np.asarray(a), requires_grad=requires_grad)


def _same_error(fn_ad, fn_torch, match_text=True):
    with pytest.raises(Exception) as theirs:
        fn_torch()
    with pytest.raises(Exception) as ours:
        fn_ad()
    assert type(ours.value) is type(theirs.value)
    if match_text:
        assert str(ours.value) == str(theirs.value)
    return ours.value


# --- ad.testing -------------------------------------------------------------------------------------------------------


def _f32(L, data):
    """A tensor of ``data`` in library ``L``: float32 for float data (torch's default dtype, not ad's)."""
    return L.tensor(data, dtype=L.float32) if isinstance(np.asarray(data).flat[0].item(), float) else L.tensor(data)


@pytest.mark.parametrize(
    "make",
    [
        lambda L: (_f32(L, [1.0, 2.0, 3.0]), _f32(L, [1.0, 2.5, 3.1])),
        lambda L: (_f32(L, [1.0, 2.0, 3.0]), L.tensor([1.0, 2.5, 3.1], dtype=L.float64)),
        lambda L: (_f32(L, [1, 2, 3]), _f32(L, [1, 2, 4])),
        lambda L: (_f32(L, [[1.0, 2], [3, 4]]), _f32(L, [[1.0, 2], [3, 5]])),
        lambda L: (_f32(L, [True]), _f32(L, [False])),
        lambda L: (_f32(L, [float("nan")]), _f32(L, [float("nan")])),
        lambda L: (_f32(L, [float("inf")]), _f32(L, [1.0])),
        lambda L: (_f32(L, 1.0), _f32(L, 1.5)),
        lambda L: (1.0, 1.1),
        lambda L: (1, 2),
        lambda L: (1, 1.0),
        lambda L: (None, 1),
        lambda L: ([_f32(L, 1.0)], [_f32(L, 2.0)]),
        lambda L: ({"a": _f32(L, 1.0)}, {"a": _f32(L, 2.0)}),
        lambda L: ([1, 2], [1, 2, 3]),
        lambda L: ({"a": 1}, {"b": 1}),
        lambda L: (_f32(L, [1.0, 2]), _f32(L, [1.0, 2, 3])),
        lambda L: (_f32(L, 1.0), 1.0),
        lambda L: ("a", "a"),
        lambda L: (np.array([1.0]), np.array([2.0])),
    ],
)
def test_assert_close_messages_match_torch(make):
    """The same failures with torch's exception class and message (attribute names print ad's spelling)."""
    with pytest.raises(Exception) as theirs:
        torch.testing.assert_close(*make(torch))
    with pytest.raises(Exception) as ours:
        ad.testing.assert_close(*make(ad))
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value).replace("ad.tensor.Tensor", "torch.Tensor").replace("ad.", "torch.") == str(theirs.value)


def test_assert_close_passes_and_options():
    ad.testing.assert_close(ad.tensor([1.0, 2.0]), ad.tensor([1.0, 2.0 + 1e-9]))
    ad.testing.assert_close(ad.tensor([1.0], dtype=ad.float32), ad.tensor([1.000001], dtype=ad.float32))
    ad.testing.assert_close(ad.tensor([float("nan")]), ad.tensor([float("nan")]), equal_nan=True)
    ad.testing.assert_close(ad.tensor([1.0, 2.0]), ad.tensor([1.0, 2.0], dtype=ad.float32), check_dtype=False)
    ad.testing.assert_close(ad.tensor([1.0]), ad.tensor([1.1]), rtol=0.2, atol=0)
    ad.testing.assert_close([ad.tensor(1.0), {"x": 2}], (ad.tensor(1.0), {"x": 2}))
    x = ad.arange(6.0).reshape(2, 3)
    ad.testing.assert_close(x.t(), x.t().contiguous())  # strides are not compared by default
    with pytest.raises(AssertionError, match="stride"):
        ad.testing.assert_close(x.t(), x.t().contiguous(), check_stride=True)
    with pytest.raises(AssertionError, match="^custom$"):
        ad.testing.assert_close(ad.tensor([1.0]), ad.tensor([2.0]), msg="custom")
    with pytest.raises(AssertionError, match=r"allowed\) X$"):
        ad.testing.assert_close(ad.tensor([1.0]), ad.tensor([2.0]), msg=lambda m: m + " X")
    _same_error(lambda: ad.testing.assert_close(ad.ones(2), ad.ones(2), rtol=1),
                lambda: torch.testing.assert_close(torch.ones(2), torch.ones(2), rtol=1))


def test_assert_allclose_deprecated():
    with pytest.warns(FutureWarning, match="assert_allclose\\(\\)` is deprecated"):
        ad.testing.assert_allclose(ad.tensor([1.0, float("nan")]), [1.0 + 1e-6, float("nan")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError) as ours:
            ad.testing.assert_allclose(ad.tensor([1.0, 2.0], dtype=ad.float32), [1.0, 2.1])
        with pytest.raises(AssertionError) as theirs:
            torch.testing.assert_allclose(torch.tensor([1.0, 2.0]), [1.0, 2.1])
    assert str(ours.value) == str(theirs.value)


def test_make_tensor():
    ad.manual_seed(0)
    t = ad.testing.make_tensor(3, 4, dtype=ad.float32, device="cpu", low=-1, high=1, requires_grad=True)
    assert t.shape == (3, 4) and t.dtype == ad.float32 and t.requires_grad and t.is_leaf
    assert (t.detach().numpy() >= -1).all() and (t.detach().numpy() < 1).all()
    i = ad.testing.make_tensor((50,), dtype=ad.int64, device="cpu")
    assert i.dtype == ad.int64 and i.numpy().min() >= -9 and i.numpy().max() < 10
    u = ad.testing.make_tensor(50, dtype=ad.uint8, device="cpu", exclude_zero=True)
    assert u.numpy().min() >= 1 and u.numpy().max() < 10
    b = ad.testing.make_tensor(5, dtype=ad.bool, device="cpu")
    assert b.dtype == ad.bool
    n = ad.testing.make_tensor(2, 3, dtype=ad.float64, device="cpu", noncontiguous=True)
    assert n.shape == (2, 3) and not n.is_contiguous()
    z = ad.testing.make_tensor(200, dtype=ad.float64, device="cpu", low=0, high=0.001, exclude_zero=True)
    assert (z.numpy() != 0).all()
    for kw in (dict(dtype=ad.int64, requires_grad=True), dict(dtype=ad.float64, low=2, high=1),
               dict(dtype=ad.float64, low=float("nan")), dict(dtype=ad.uint8, low=-5, high=-1)):
        tkw = {k: (getattr(torch, str(v)) if k == "dtype" else v) for k, v in kw.items()}
        _same_error(lambda kw=kw: ad.testing.make_tensor(3, device="cpu", **kw),
                    lambda tkw=tkw: torch.testing.make_tensor(3, device="cpu", **tkw), match_text=False)


# --- finfo / iinfo / default device ---------------------------------------------------------------------------------


def test_finfo_iinfo():
    for name in ("float16", "float32", "float64"):
        ours, theirs = ad.finfo(getattr(ad, name)), torch.finfo(getattr(torch, name))
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
            assert getattr(ours, attr) == getattr(theirs, attr), (name, attr)
        assert repr(ours) == repr(theirs)
    assert ad.finfo().dtype == np.dtype(ad.get_default_dtype()).name
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        ours, theirs = ad.iinfo(getattr(ad, name)), torch.iinfo(getattr(torch, name))
        assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
        assert repr(ours) == repr(theirs)
    _same_error(lambda: ad.finfo(ad.int32), lambda: torch.finfo(torch.int32))
    _same_error(lambda: ad.iinfo(ad.float32), lambda: torch.iinfo(torch.float32))
    _same_error(lambda: ad.iinfo(ad.bool), lambda: torch.iinfo(torch.bool))
    _same_error(lambda: ad.finfo("float32"), lambda: torch.finfo("float32"))


def test_default_device():
    from ad import creation

    assert ad.get_default_device() == ad.device("cpu")
    try:
        ad.set_default_device("cuda")
        assert ad.get_default_device() == ad.device("cuda", 0)
        assert creation._cuda_target(None) == ad.device("cuda")  # what the factories resolve device=None to
        assert creation._cuda_target("cpu") is None
        assert creation.or_default_device(None) == ad.device("cuda")  # randperm, normal, tril_indices, ...
        assert creation.or_default_device("cpu") == "cpu"
        ad.set_default_device("cpu")
        assert ad.zeros(2).device == ad.device("cpu")
    finally:
        ad.set_default_device(None)
    assert creation._cuda_target(None) is None and ad.get_default_device() == ad.device("cpu")


# --- copies of views ----------------------------------------------------------------------------------------------

_COPIES = [
    ("alias_copy", ()), ("detach_copy", ()), ("diagonal_copy", (1, 0, 1)), ("expand_copy", ((2, 3, 4),)),
    ("permute_copy", ((1, 0),)), ("select_copy", (1, 2)), ("slice_copy", (1, 1, None, 2)), ("split_copy", (1, 0)),
    ("split_with_sizes_copy", ([1, 3], 1)), ("squeeze_copy", ()), ("t_copy", ()), ("transpose_copy", (0, 1)),
    ("unbind_copy", (1,)), ("unfold_copy", (1, 2, 1)), ("unsqueeze_copy", (1,)), ("view_copy", ((4, 3),)),
    ("as_strided_copy", ((3, 3), (2, 1), 1)),
]


@pytest.mark.parametrize("name,args", _COPIES)
def test_view_copies(name, args):
    a = np.random.default_rng(1).standard_normal((3, 4))
    x, tx = _a(a, True), _t(a, True)
    ours, theirs = getattr(ad, name)(x, *args), getattr(torch, name)(tx, *args)
    outs, touts = (ours, theirs) if isinstance(theirs, tuple) else ((ours,), (theirs,))
    assert len(outs) == len(touts)
    for o, t in zip(outs, touts):
        np.testing.assert_array_equal(o.detach().numpy(), t.detach().numpy())
        assert o.is_contiguous() and not np.shares_memory(o.detach().numpy(), a)
    if name == "detach_copy":
        assert not ours.requires_grad
        return
    weights = [np.arange(o.numel(), dtype=float).reshape(o.shape) for o in outs]
    sum(((o * _a(w)).sum() for o, w in zip(outs, weights)), ad.tensor(0.0)).backward()
    sum(((t * _t(w)).sum() for t, w in zip(touts, weights)), torch.tensor(0.0, dtype=torch.float64)).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_as_strided_copy_reads_torchs_storage_of_views():
    """Through a transpose, a slice (default offset: the view's), and positions outside the view (values from the
    storage, no gradient), as torch; torch's errors."""
    cases = [
        (lambda b: b.t(), ((2, 2), (1, 2))),
        (lambda b: b[1:], ((2, 2), (1, 2))),
        (lambda b: b[1:], ((3, 2), (2, 1), 2)),  # starts before the view
        (lambda b: b[1:], ((2, 2), (1, 2), 0)),  # entirely outside the view
        (lambda b: b[:, 1:3], ((2, 3), (4, 1), 1)),
    ]
    for view, args in cases:
        a, ta = ad.arange(12.0, dtype=ad.float64, requires_grad=True), torch.arange(12.0, dtype=torch.float64,
                                                                                      requires_grad=True)
        ours, theirs = ad.as_strided_copy(view(a.reshape(3, 4)), *args), torch.as_strided_copy(view(ta.reshape(3, 4)),
                                                                                                *args)
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
        w = np.arange(ours.numel(), dtype=float).reshape(ours.shape) + 1
        (ours * _a(w)).sum().backward()
        (theirs * _t(w)).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    x = ad.arange(6.0)
    for args, match in [
        (((2, 2), (1, 3), 2), "setStorage: sizes \\[2, 2\\], strides \\[1, 3\\], storage offset 2"),
        (((2, 2), (1,)), "mismatch in length of strides and shape"),
        (((2, 2), (-1, 1)), "Negative strides are not supported"),
        (((2, 2), (1, 2), -1), "invalid storage offset -1"),
    ]:
        with pytest.raises(RuntimeError, match=match):
            ad.as_strided_copy(x, *args)
        with pytest.raises(RuntimeError, match=match):
            torch.as_strided_copy(torch.arange(6.0), *args)
    assert ad.as_strided_copy(x, (0, 3), (1, 2), 10).shape == (0, 3)


def test_view_copy_out():
    x = ad.arange(6.0).reshape(2, 3)
    out = ad.empty(3, 2)
    assert ad.t_copy(x, out=out) is out
    np.testing.assert_array_equal(out.numpy(), x.numpy().T)


# --- windows --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "bartlett", "kaiser"])
def test_windows(name):
    for n in (0, 1, 2, 7, 8):
        for periodic in (True, False):
            ours = getattr(ad, f"{name}_window")(n, periodic)
            theirs = getattr(torch, f"{name}_window")(n, periodic, dtype=torch.float64)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-14)
            assert ours.dtype == ad.get_default_dtype()
    f32 = getattr(ad, f"{name}_window")(9, dtype=ad.float32)
    np.testing.assert_allclose(f32.numpy(), getattr(torch, f"{name}_window")(9).numpy(), rtol=2e-6, atol=2e-7)
    assert ad.hamming_window(6, False, 0.5, 0.5).numpy() == pytest.approx(ad.hann_window(6, False).numpy())
    assert ad.kaiser_window(5, False, 3.0).numpy() == pytest.approx(torch.kaiser_window(5, False, 3.0).numpy())


# --- switches and predicates --------------------------------------------------------------------------------------


def test_switches():
    from ad import runtime_flags

    assert ad.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
    ad.set_float32_matmul_precision("medium")
    assert ad.get_float32_matmul_precision() == "medium"
    with pytest.warns(UserWarning, match="is not one of 'highest'"):
        ad.set_float32_matmul_precision("foo")
    assert ad.get_float32_matmul_precision() == "medium"
    ad.set_float32_matmul_precision("highest")
    assert not ad.is_warn_always_enabled()
    ad.set_warn_always(True)
    assert ad.is_warn_always_enabled()
    ad.set_warn_always(False)
    assert ad.get_deterministic_debug_mode() == 0
    try:
        ad.set_deterministic_debug_mode("warn")
        assert ad.get_deterministic_debug_mode() == 1 and ad.is_deterministic_algorithms_warn_only_enabled()
        ad.set_deterministic_debug_mode(2)
        assert ad.get_deterministic_debug_mode() == 2 and ad.are_deterministic_algorithms_enabled()
    finally:
        ad.set_deterministic_debug_mode(0)
    for bad in ("x", 5, 1.5):
        _same_error(lambda b=bad: ad.set_deterministic_debug_mode(b),
                    lambda b=bad: torch.set_deterministic_debug_mode(b))
    assert ad.get_num_interop_threads() >= 1
    _same_error(lambda: ad.set_num_interop_threads(0), lambda: torch.set_num_interop_threads(0))
    saved = dict(runtime_flags._state)
    try:
        ad.set_num_interop_threads(3)
        assert ad.get_num_interop_threads() == 3
        with pytest.raises(RuntimeError, match="cannot set number of interop threads"):
            ad.set_num_interop_threads(2)
    finally:
        runtime_flags._state.update(saved)
    x = ad.ones(2)
    assert ad.get_device(x) == torch.get_device(torch.ones(2)) == -1
    assert ad.is_conj(x) is ad.is_neg(x) is ad.is_inference(x) is False
    _same_error(lambda: ad.get_device(3), lambda: torch.get_device(3))
    _same_error(lambda: ad.is_conj(3), lambda: torch.is_conj(3))


# --- small functions ----------------------------------------------------------------------------------------------


def test_range_concat_ger_fill_inplace():
    with pytest.warns(UserWarning, match="torch.range is deprecated"):
        r = ad.range(0, 1, 0.25)
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(r.numpy(), torch.range(0, 1, 0.25, dtype=torch.float64).numpy())
        np.testing.assert_array_equal(ad.range(3, 0, -1).numpy(), torch.range(3, 0, -1).numpy())
        assert ad.range(0, 3, dtype=ad.int64).dtype == ad.int64
        for args in ((0, 1, 0), (0, 1, -1)):
            _same_error(lambda a=args: ad.range(*a), lambda a=args: torch.range(*a))
    a, b = np.arange(3.0), np.arange(4.0) + 1
    np.testing.assert_array_equal(ad.ger(_a(a), _a(b)).numpy(), torch.ger(_t(a), _t(b)).numpy())
    np.testing.assert_array_equal(ad.concat([_a(a), _a(b)]).numpy(), np.concatenate([a, b]))
    x = _a(a, True)
    v = ad.tensor(5.0, requires_grad=True)
    y = ad.fill(x, v)
    np.testing.assert_array_equal(y.detach().numpy(), [5.0, 5.0, 5.0])
    y.sum().backward()
    assert v.grad.item() == 3.0 and (x.grad.numpy() == 0).all()
    assert ad.fill(ad.arange(3), 2.7).dtype == ad.int64
    _same_error(lambda: ad.fill(ad.ones(2), ad.ones(2)), lambda: torch.fill(torch.ones(2), torch.ones(2)))
    z = ad.tensor([-2.0, 0.5, 3.0])
    assert ad.clip_(z, -1, 1) is z and z.tolist() == [-1.0, 0.5, 1.0]
    ad.clamp_min_(z, 0)
    ad.clamp_max_(z, 0.7)
    assert z.tolist() == [0.0, 0.5, 0.7]
    assert ad.vmap is ad.func.vmap


def test_empty_permuted_nonzero_static():
    e = ad.empty_permuted((2, 3, 4), (0, 2, 1))
    assert e.shape == (2, 3, 4) and e.stride() == torch.empty_permuted((2, 3, 4), (0, 2, 1)).stride()
    g = ad.empty_permuted((2, 3), (1, 0), requires_grad=True)
    assert g.requires_grad and g.is_leaf
    for data, kw in (([0, 1, 0, 2], dict(size=3)), ([[0, 1], [1, 2]], dict(size=1, fill_value=-5)),
                     ([[0, 1], [1, 2]], dict(size=5))):
        np.testing.assert_array_equal(ad.nonzero_static(ad.tensor(data), **kw).numpy(),
                                      torch.nonzero_static(torch.tensor(data), **kw).numpy())
    assert ad.nonzero_static(ad.tensor([1, 0]), size=2).dtype == ad.int64


def test_norms():
    a = np.random.default_rng(2).standard_normal((3, 4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dim in ((0, 1), (2,), ()):
            np.testing.assert_allclose(ad.frobenius_norm(_a(a), dim).numpy(), torch.frobenius_norm(_t(a), dim).numpy())
        np.testing.assert_allclose(ad.nuclear_norm(_a(a[0])).numpy(), torch.nuclear_norm(_t(a[0])).numpy())
        np.testing.assert_allclose(ad.nuclear_norm(_a(a), (0, 2), True).numpy(),
                                   torch.nuclear_norm(_t(a), (0, 2), True).numpy())
    with pytest.warns(UserWarning, match="frobenius_norm is deprecated"):
        ad.frobenius_norm(_a(a), (0,))
    for p, dim in ((2, 0), (2, 1), (3, 2), (2, -1), (1, 0)):
        np.testing.assert_allclose(ad.norm_except_dim(_a(a), p, dim).numpy(),
                                   torch.norm_except_dim(_t(a), p, dim).numpy())
    assert gradcheck(lambda v: ad.norm_except_dim(v, 2, 1), (_a(a, True),))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert gradcheck(lambda v: ad.frobenius_norm(v, (0, 2)), (_a(a, True),))


def test_gradient():
    x = np.random.default_rng(3).standard_normal((4, 5))
    coords = [np.array([0.0, 1.0, 3.0, 3.5]), np.array([0.0, 0.5, 2.0, 2.2, 4.0])]
    cases = [dict(), dict(spacing=2.0), dict(spacing=(2.0,), dim=1), dict(dim=(0,), edge_order=2),
             dict(spacing=[0.5, 3.0], edge_order=2), dict(spacing="coords"), dict(spacing="coords", edge_order=2)]
    for kw in cases:
        kt, ka = dict(kw), dict(kw)
        if kw.get("spacing") == "coords":
            kt["spacing"], ka["spacing"] = [_t(c) for c in coords], [_a(c) for c in coords]
        ours, theirs = ad.gradient(_a(x), **ka), torch.gradient(_t(x), **kt)
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)
        assert gradcheck(lambda v, ka=ka: ad.gradient(v, **ka), (_a(x, True),))
    _same_error(lambda: ad.gradient(ad.ones(1, 3)), lambda: torch.gradient(torch.ones(1, 3)))
    _same_error(lambda: ad.gradient(ad.ones(3), edge_order=3), lambda: torch.gradient(torch.ones(3), edge_order=3))


def test_histogramdd_binomial():
    pts = np.random.default_rng(4).random((20, 2))
    w = np.random.default_rng(5).random(20)
    for kw in (dict(bins=3), dict(bins=[2, 4], range=[0.0, 1.0, 0.0, 1.0], density=True)):
        ours, theirs = ad.histogramdd(_a(pts), **kw), torch.histogramdd(_t(pts), **kw)
        np.testing.assert_allclose(ours.hist.numpy(), theirs.hist.numpy())
        for o, t in zip(ours.bin_edges, theirs.bin_edges):
            np.testing.assert_allclose(o.numpy(), t.numpy())
    ours = ad.histogramdd(_a(pts), 2, None, _a(w))
    np.testing.assert_allclose(ours.hist.numpy(), torch.histogramdd(_t(pts), 2, None, _t(w)).hist.numpy())
    ad.manual_seed(0)
    draws = ad.binomial(ad.full((2000,), 10.0), ad.full((2000,), 0.3))
    assert draws.dtype == ad.float64 and abs(draws.numpy().mean() - 3.0) < 0.2
    assert set(np.unique(draws.numpy())) <= set(range(11))
    _same_error(lambda: ad.binomial(ad.tensor([5, 6]), ad.tensor([0.5, 0.2])),
                lambda: torch.binomial(torch.tensor([5, 6]), torch.tensor([0.5, 0.2])))


def test_constant_pad_nd_convolution():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5))
    np.testing.assert_allclose(ad.constant_pad_nd(_a(x), (1, 2), 0.5).numpy(),
                               torch.constant_pad_nd(_t(x), (1, 2), 0.5).numpy())
    np.testing.assert_allclose(ad.constant_pad_nd(_a(x), (-1, 1, 1, 0)).numpy(),
                               torch.constant_pad_nd(_t(x), (-1, 1, 1, 0)).numpy())
    for transposed, wshape in ((False, (4, 3, 2)), (True, (3, 4, 2))):
        w, b = rng.standard_normal(wshape), rng.standard_normal(4)
        args = ([2], [1], [1], transposed, [1 if transposed else 0], 1)
        xa, wa, ba = _a(x, True), _a(w, True), _a(b, True)
        xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
        ours, theirs = ad.convolution(xa, wa, ba, *args), torch.convolution(xt, wt, bt, *args)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
        ours.sum().backward()
        theirs.sum().backward()
        for o, t in ((xa, xt), (wa, wt), (ba, bt)):
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_top_level_losses():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    p = rng.random((4, 3))
    y = np.sign(rng.standard_normal(4))
    cases = [
        ("binary_cross_entropy_with_logits", lambda L, A: (A(a, True), L(p)), dict(pos_weight=None)),
        ("cosine_embedding_loss", lambda L, A: (A(a, True), A(b), L(y)), {}),
        ("hinge_embedding_loss", lambda L, A: (A(a, True), L(np.sign(b))), {}),
        ("kl_div", lambda L, A: (A(a, True), L(p)), {}),
        ("margin_ranking_loss", lambda L, A: (A(a[:, 0], True), A(b[:, 0]), L(y)), {}),
        ("triplet_margin_loss", lambda L, A: (A(a, True), A(b), L(p)), {}),
    ]
    for name, make, kw in cases:
        for reduction in (0, 1, 2):
            ours_in, theirs_in = make(_a, lambda v, g=False: _a(v, g)), make(_t, lambda v, g=False: _t(v, g))
            ours = getattr(ad, name)(*ours_in, reduction=reduction, **kw)
            theirs = getattr(torch, name)(*theirs_in, reduction=reduction, **kw)
            np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
            ours.sum().backward()
            theirs.sum().backward()
            np.testing.assert_allclose(ours_in[0].grad.numpy(), theirs_in[0].grad.numpy(), rtol=1e-12, atol=1e-14)
    ours = ad.poisson_nll_loss(_a(a), _a(p), True, True, 1e-8, 2)
    np.testing.assert_allclose(ours.numpy(), torch.poisson_nll_loss(_t(a), _t(p), True, True, 1e-8, 2).numpy())
    _same_error(lambda: ad.kl_div(_a(a), _a(p), "mean"), lambda: torch.kl_div(_t(a), _t(p), "mean"), False)


def test_deprecated_linalg():
    A = np.eye(3) + 0.1
    for name, args in (("solve", (A, A)), ("lstsq", (A, A)), ("eig", (A,)), ("matrix_rank", (A,)), ("symeig", (A,))):
        _same_error(lambda n=name, a=args: getattr(ad, n)(*map(_a, a)),
                    lambda n=name, a=args: getattr(torch, n)(*map(_t, a)))
    rng = np.random.default_rng(8)
    U = np.triu(rng.standard_normal((3, 3))) + 3 * np.eye(3)
    B = rng.standard_normal((3, 2))
    for kw in (dict(), dict(upper=False), dict(transpose=True), dict(upper=False, transpose=True, unitriangular=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = ad.triangular_solve(_a(B, True), _a(U, True), **kw)
            theirs = torch.triangular_solve(_t(B, True), _t(U, True), **kw)
        np.testing.assert_allclose(ours.solution.detach().numpy(), theirs.solution.detach().numpy(), rtol=1e-12)
        np.testing.assert_array_equal(ours.cloned_coefficient.detach().numpy(), U)
    with pytest.warns(UserWarning, match="triangular_solve is deprecated"):
        ad.triangular_solve(_a(B), _a(U))


def test_cond_while_loop():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    y = ad.cond(x.sum() > 0, lambda v: v * 2, lambda v: v * 3, (x,))
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    assert ad.cond(False, lambda v: v * 2, lambda v: v * 3, (ad.tensor(1.0),)).item() == 3.0
    # (torch.cond / torch.while_loop give the same results; calling them imports torch's compiler: seconds)
    i, s = ad.while_loop(lambda i, s: i < 5, lambda i, s: (i + 1, s + i), (ad.tensor(0), ad.tensor(0)))
    assert (i.item(), s.item()) == (5, 10)
    with pytest.raises(RuntimeError):
        ad.cond(ad.tensor([True, False]), lambda: 1, lambda: 2)


# --- Householder form, low-rank factorizations ------------------------------------------------------------------


def test_geqrf_ormqr():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((2, 5, 3))
    ours, theirs = ad.geqrf(_a(a)), torch.geqrf(_t(a))
    np.testing.assert_allclose(ours.a.numpy(), theirs.a.numpy(), atol=1e-13)
    np.testing.assert_allclose(ours.tau.numpy(), theirs.tau.numpy(), atol=1e-13)
    x = _a(a, True)
    with pytest.raises(RuntimeError):
        ad.geqrf(x).a.sum().backward()  # not differentiable, as torch's
    for left, transpose, shape in ((True, False, (2, 5, 4)), (True, True, (2, 5, 4)), (False, False, (2, 4, 5)),
                                   (False, True, (2, 4, 5))):
        c = rng.standard_normal(shape)
        qa, ta, ca = _a(ours.a.numpy(), True), _a(ours.tau.numpy(), True), _a(c, True)
        qt, tt, ct = _t(theirs.a.numpy(), True), _t(theirs.tau.numpy(), True), _t(c, True)
        o, t = ad.ormqr(qa, ta, ca, left, transpose), torch.ormqr(qt, tt, ct, left, transpose)
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), atol=1e-13)
        o.sum().backward()
        t.sum().backward()
        for p, q in ((qa, qt), (ta, tt), (ca, ct)):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-12)


def test_svd_pca_lowrank():
    rng = np.random.default_rng(10)
    A = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 12))
    ad.manual_seed(0)
    for mat in (A, A.T):
        U, S, V = ad.svd_lowrank(_a(mat), q=4)
        assert U.shape == (mat.shape[0], 4) and S.shape == (4,) and V.shape == (mat.shape[1], 4)
        np.testing.assert_allclose(S.numpy()[:3], np.linalg.svd(mat, compute_uv=False)[:3], rtol=1e-10)
        np.testing.assert_allclose((U * S) @ V.mT, mat, atol=1e-10)
    M = rng.standard_normal((1, 12))
    U, S, V = ad.svd_lowrank(_a(A + M), q=4, M=_a(M))
    np.testing.assert_allclose(S.numpy()[:3], torch.svd_lowrank(_t(A + M), q=4, M=_t(M))[1].numpy()[:3], rtol=1e-10)
    U, S, V = ad.pca_lowrank(_a(A), q=3)
    np.testing.assert_allclose(S.numpy(), torch.pca_lowrank(_t(A), q=3)[1].numpy(), rtol=1e-10)
    _same_error(lambda: ad.pca_lowrank(_a(A), q=20), lambda: torch.pca_lowrank(_t(A), q=20))
    _same_error(lambda: ad.pca_lowrank(_a(A), niter=-1), lambda: torch.pca_lowrank(_t(A), niter=-1))
    x = _a(A, True)  # the singular values of a well-separated spectrum differentiate: d sum(S) / dA = U V^T
    U, S, V = ad.svd_lowrank(x, q=3, niter=4)
    S.sum().backward()
    u, _, vh = np.linalg.svd(A, full_matrices=False)
    np.testing.assert_allclose(x.grad.numpy(), u[:, :3] @ vh[:3], atol=1e-8)


# --- interop, autocast ----------------------------------------------------------------------------------------------


def test_dlpack_frombuffer():
    a = np.arange(4.0)
    t = ad.from_dlpack(a)
    t[0] = 9.0
    assert a[0] == 9.0  # shares memory
    tt = torch.arange(3.0)
    u = ad.from_dlpack(tt)
    u[1] = 7.0
    assert tt.tolist() == [0.0, 7.0, 2.0]
    back = torch.from_dlpack(u)
    back[2] = 5.0
    assert u.tolist() == [0.0, 7.0, 5.0]
    np.testing.assert_array_equal(ad.from_dlpack(ad.to_dlpack(ad.ones(2))).numpy(), [1.0, 1.0])
    assert ad.from_dlpack(a, copy=True).numpy() is not a
    with pytest.raises(RuntimeError, match="require gradient"):
        ad.to_dlpack(ad.ones(2, requires_grad=True))
    buf = bytearray(np.arange(4, dtype=np.int32).tobytes())
    f = ad.frombuffer(buf, dtype=ad.int32, count=2, offset=4)
    assert f.tolist() == torch.frombuffer(bytearray(buf), dtype=torch.int32, count=2, offset=4).tolist()
    f[0] = 42
    assert np.frombuffer(buf, np.int32)[1] == 42
    for kw in (dict(count=5), dict(offset=20), dict(count=0), dict(offset=3)):
        _same_error(lambda kw=kw: ad.frombuffer(bytearray(16), dtype=ad.int32, **kw),
                    lambda kw=kw: torch.frombuffer(bytearray(16), dtype=torch.int32, **kw))
    with pytest.warns(UserWarning, match="not writable"):
        ad.frombuffer(bytes(8), dtype=ad.float32)


def test_autocast():
    with ad.autocast("cpu", enabled=False):
        assert not ad.is_autocast_enabled("cpu")
        y = ad.ones(2) @ ad.ones(2)
    assert y.item() == 2.0

    @ad.autocast("cpu", enabled=False)
    def f(x):
        return x * 2

    assert f(ad.ones(1)).item() == 2.0
    with pytest.warns(UserWarning, match="target dtype is not supported"):
        with ad.autocast("cpu", dtype=ad.float32):
            assert not ad.is_autocast_enabled("cpu")
    for kw in (dict(), dict(dtype=ad.float16)):
        with pytest.raises(NotImplementedError, match="float16" if kw else "bfloat16"):
            ad.autocast("cpu", **kw)
    _same_error(lambda: ad.autocast("foo"), lambda: torch.autocast("foo"))
    _same_error(lambda: ad.autocast(3), lambda: torch.autocast(3))


# --- module gaps: autograd, random, nn.init, nn.utils -----------------------------------------------------------------


def test_autograd_variable_and_flags():
    t = ad.ones(2)
    v = ad.autograd.Variable(t, requires_grad=True)
    tv = torch.autograd.Variable(torch.ones(2), requires_grad=True)
    assert (v is t) is False and v.requires_grad and v.is_leaf and tv.is_leaf
    v[0].detach()  # shares memory with t, as torch's
    assert np.shares_memory(v.detach().numpy(), t.numpy())
    assert isinstance(t, ad.autograd.Variable)
    r = ad.ones(2, requires_grad=True) * 2
    assert ad.autograd.Variable(r).grad_fn is None and not ad.autograd.Variable(r).requires_grad
    assert ad.autograd.inference_mode is ad.inference_mode
    assert ad.autograd.is_multithreading_enabled() is torch.autograd.is_multithreading_enabled() is True
    with ad.autograd.set_multithreading_enabled(False):
        assert not ad.autograd.is_multithreading_enabled()
    assert ad.autograd.is_multithreading_enabled()


def test_random_fork_rng():
    ad.random.manual_seed(3)
    expected = ad.randn(3).tolist()
    ad.random.manual_seed(3)
    with ad.random.fork_rng():
        ad.randn(5)
        ad.manual_seed(9)
    assert ad.randn(3).tolist() == expected and ad.initial_seed() == 3
    with ad.random.fork_rng(enabled=False):
        ad.randn(1)
    assert ad.randn(3).tolist() != expected


def test_nn_init_deprecated_aliases():
    for name in ("eye", "dirac", "sparse", "uniform", "normal", "constant", "xavier_uniform", "orthogonal"):
        assert callable(getattr(ad.nn.init, name))
    w = ad.empty(3, 3)
    with pytest.warns(FutureWarning, match=r"`nn.init.eye` is now deprecated in favor of `nn.init.eye_`."):
        ad.nn.init.eye(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(3))
    d = ad.empty(2, 2, 3)
    with pytest.warns(FutureWarning, match="nn.init.dirac"):
        ad.nn.init.dirac(d)
    with torch.no_grad():
        td = torch.nn.init.dirac_(torch.empty(2, 2, 3))
    np.testing.assert_array_equal(d.numpy(), td.numpy())


def _copy_params(ours, theirs):
    for (name, p), (tname, tp) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert name == tname
        with ad.no_grad():
            p.copy_(ad.tensor(tp.detach().numpy().astype(np.float64)))


def test_weight_norm_hooks():
    for make, dim, x in ((lambda L: L.nn.Linear(3, 4), 0, (2, 3)), (lambda L: L.nn.Conv1d(2, 3, 2), 1, (1, 2, 5)),
                         (lambda L: L.nn.Linear(3, 4), None, (2, 3))):
        with pytest.warns(FutureWarning, match="weight_norm` is deprecated"):
            ours = ad.nn.utils.weight_norm(make(ad).double(), dim=dim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.nn.utils.weight_norm(make(torch).double(), dim=dim)
        assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight_g", "weight_v"]
        np.testing.assert_allclose(ours.weight_g.detach().numpy().shape, theirs.weight_g.shape)
        _copy_params(ours, theirs)
        xs = np.random.default_rng(11).standard_normal(x)
        out, tout = ours(_a(xs)), theirs(_t(xs))
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
        out.pow(2).sum().backward()
        tout.pow(2).sum().backward()
        for name in ("weight_g", "weight_v", "bias"):
            np.testing.assert_allclose(getattr(ours, name).grad.numpy(), getattr(theirs, name).grad.numpy(),
                                       rtol=1e-10, atol=1e-12)
        with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"), pytest.warns(FutureWarning):
            ad.nn.utils.weight_norm(ours, dim=dim)
        ad.nn.utils.remove_weight_norm(ours)
        torch.nn.utils.remove_weight_norm(theirs)
        np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
        assert isinstance(ours.weight, ad.nn.Parameter)
    _same_error(lambda: ad.nn.utils.remove_weight_norm(ad.nn.Linear(2, 2)),
                lambda: torch.nn.utils.remove_weight_norm(torch.nn.Linear(2, 2)))


def test_spectral_norm_hooks():
    ours = ad.nn.utils.spectral_norm(ad.nn.Linear(5, 4).double())
    theirs = torch.nn.utils.spectral_norm(torch.nn.Linear(5, 4).double())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    _copy_params(ours, theirs)
    xs = np.random.default_rng(12).standard_normal((3, 5))
    for _ in range(3):  # training forwards: one power iteration each, buffers updated in place
        out, tout = ours(_a(xs)), theirs(_t(xs))
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.weight_u.numpy(), theirs.weight_u.numpy(), rtol=1e-10)
        out.sum().backward()
        tout.sum().backward()
    np.testing.assert_allclose(ours.weight_orig.grad.numpy(), theirs.weight_orig.grad.numpy(), rtol=1e-9, atol=1e-12)
    ours.eval()
    theirs.eval()
    u_before = ours.weight_u.numpy().copy()
    np.testing.assert_allclose(ours(_a(xs)).detach().numpy(), theirs(_t(xs)).detach().numpy(), rtol=1e-10)
    np.testing.assert_array_equal(ours.weight_u.numpy(), u_before)  # eval: no power iteration
    ad.nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-10)
    assert list(ours.state_dict()) == ["weight", "bias"] or list(ours.state_dict()) == ["bias", "weight"]
    ct = ad.nn.utils.spectral_norm(ad.nn.ConvTranspose1d(2, 3, 2))
    assert ct.weight_u.shape == (3,)  # dim 1 for transposed convolutions
    _same_error(lambda: ad.nn.utils.spectral_norm(ad.nn.Linear(2, 2), n_power_iterations=0),
                lambda: torch.nn.utils.spectral_norm(torch.nn.Linear(2, 2), n_power_iterations=0))
    _same_error(lambda: ad.nn.utils.remove_spectral_norm(ad.nn.Linear(2, 2)),
                lambda: torch.nn.utils.remove_spectral_norm(torch.nn.Linear(2, 2)))


def test_fusion_skip_init_clip():
    rng = np.random.default_rng(13)
    for L in (ad, torch):
        L.manual_seed(0)
    pairs = []
    for L in (ad, torch):
        conv, bn = L.nn.Conv2d(2, 3, 2).double(), L.nn.BatchNorm2d(3).double()
        lin, bn1 = L.nn.Linear(4, 3).double(), L.nn.BatchNorm1d(3).double()
        pairs.append((conv, bn, lin, bn1))
    for ours, theirs in zip(pairs[0], pairs[1]):
        _copy_params(ours, theirs)
        with ad.no_grad():
            for name in ("running_mean", "running_var"):
                if hasattr(ours, name):
                    value = rng.random(3) + 0.5
                    getattr(ours, name).copy_(ad.tensor(value))
                    getattr(theirs, name).copy_(torch.tensor(value))
        ours.eval()
        theirs.eval()
    (conv, bn, lin, bn1), (tconv, tbn, tlin, tbn1) = pairs
    x, x1 = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((5, 4))
    fused, tfused = ad.nn.utils.fuse_conv_bn_eval(conv, bn), torch.nn.utils.fuse_conv_bn_eval(tconv, tbn)
    np.testing.assert_allclose(fused(_a(x)).detach().numpy(), tfused(_t(x)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fused(_a(x)).detach().numpy(), bn(conv(_a(x))).detach().numpy(), rtol=1e-10)
    fused1 = ad.nn.utils.fuse_linear_bn_eval(lin, bn1)
    tfused1 = torch.nn.utils.fuse_linear_bn_eval(tlin, tbn1)
    np.testing.assert_allclose(fused1(_a(x1)).detach().numpy(), tfused1(_t(x1)).detach().numpy(), rtol=1e-12)
    assert isinstance(fused1.weight, ad.nn.Parameter) and fused1.weight.requires_grad
    conv.train()
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        ad.nn.utils.fuse_conv_bn_eval(conv, bn)
    m = ad.nn.utils.skip_init(ad.nn.Linear, 3, 4)
    assert m.weight.shape == (4, 3) and isinstance(m.weight, ad.nn.Parameter)
    _same_error(lambda: ad.nn.utils.skip_init(ad.nn.ReLU), lambda: torch.nn.utils.skip_init(torch.nn.ReLU))
    p, tp = ad.nn.Parameter(ad.ones(3)), torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    p.grad, tp.grad = ad.full((3,), 3.0), torch.full((3,), 3.0, dtype=torch.float64)
    with pytest.warns(FutureWarning, match="clip_grad_norm` is now deprecated"):
        norm = ad.nn.utils.clip_grad_norm([p], 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tnorm = torch.nn.utils.clip_grad_norm([tp], 1.0)
    assert norm.item() == pytest.approx(tnorm.item())
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy())
    p.grad, tp.grad = ad.full((3,), 3.0), torch.full((3,), 3.0, dtype=torch.float64)
    ad.nn.utils.clip_grads_with_norm_([p], 2.0, ad.nn.utils.get_total_norm([p.grad]))
    torch.nn.utils.clip_grads_with_norm_([tp], 2.0, torch.nn.utils.get_total_norm([tp.grad]))
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy())


def test_vander_and_inplace_spellings():
    x = np.array([0.0, 1.5, -2.0])
    for N, increasing in ((None, False), (4, True), (1, False), (0, False)):
        np.testing.assert_array_equal(ad.vander(_a(x), N, increasing).numpy(),
                                      torch.vander(_t(x), N, increasing).numpy())
    # torch 2.13's own vander backward raises (an in-place cumprod), so its gradient is checked against finite
    # differences, at x = 0 too
    assert gradcheck(lambda v: ad.vander(v, 4), (_a(x, True),))
    assert ad.vander(ad.tensor([1, 2]), 3).dtype == ad.int64
    _same_error(lambda: ad.vander(ad.ones(2, 2)), lambda: torch.vander(torch.ones(2, 2)))
    y = ad.tensor([1.0, 2.0])
    assert ad.negative_(y) is y and y.tolist() == [-1.0, -2.0]
    ad.reciprocal_(y)
    assert y.tolist() == [-1.0, -0.5]


def test_lobpcg():
    rng = np.random.default_rng(14)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    A = Q @ np.diag(np.arange(1.0, 13.0)) @ Q.T
    X0 = rng.standard_normal((12, 2))
    for method in ("ortho", "basic"):
        for largest in (True, False):
            E, X = ad.lobpcg(_a(A), k=2, X=_a(X0), method=method, largest=largest)
            tE, tX = torch.lobpcg(_t(A), k=2, X=_t(X0), method=method, largest=largest)
            np.testing.assert_allclose(E.numpy(), tE.numpy(), rtol=1e-10)
            np.testing.assert_allclose(np.abs(X.numpy()), np.abs(tX.numpy()), atol=1e-8)
    Bm = np.eye(12) + 0.1 * np.ones((12, 12))
    E, _ = ad.lobpcg(_a(A), k=2, B=_a(Bm), X=_a(X0))
    np.testing.assert_allclose(E.numpy(), torch.lobpcg(_t(A), k=2, B=_t(Bm), X=_t(X0))[0].numpy(), rtol=1e-10)
    batch = np.stack([A, 2 * A])
    E, X = ad.lobpcg(_a(batch), k=1, X=_a(np.stack([X0[:, :1]] * 2)))
    assert E.shape == (2, 1) and X.shape == (2, 12, 1)
    np.testing.assert_allclose(E.numpy().ravel(), [12.0, 24.0], rtol=1e-10)
    W = rng.standard_normal((12, 2))
    for largest in (True, False):
        a, ta = _a(A, True), _t(A, True)
        E, X = ad.lobpcg(a, k=2, X=_a(X0), largest=largest)
        tE, tX = torch.lobpcg(ta, k=2, X=_t(X0), largest=largest)
        s, ts = np.sign((X.detach().numpy() * W).sum(0)), np.sign((tX.detach().numpy() * W).sum(0))
        ((X * _a(W * s)).sum() + E.sum()).backward()  # the same function of A whatever sign each library picks
        ((tX * _t(W * ts)).sum() + tE.sum()).backward()
        # torch's backward and ad's agree to the eigenvectors' convergence tolerance (sqrt(eps))
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), atol=1e-7)
    # against the exact derivative from the full spectrum, at a tight tolerance
    a = _a(A, True)
    E, X = ad.lobpcg(a, k=2, X=_a(X0), tol=1e-14)
    ((X * _a(W)).sum() + E.sum()).backward()
    lam, U = np.linalg.eigh(A)
    lam, U = lam[::-1], U[:, ::-1]
    G = np.zeros((12, 12))
    for i in range(2):
        u = U[:, i] * np.sign(U[:, i] @ X.detach().numpy()[:, i])
        G += np.outer(u, u)
        for j in range(12):
            if j != i:
                G += np.outer(U[:, j], u) * (U[:, j] @ W[:, i]) / (lam[i] - lam[j])
    np.testing.assert_allclose(a.grad.numpy(), (G + G.T) / 2, atol=1e-12)
    E, _ = ad.lobpcg(_a(A, True), k=2, B=_a(Bm), X=_a(X0))
    with pytest.raises(ValueError, match="does not support backward with B != I"):
        E.sum().backward()
    _same_error(lambda: ad.lobpcg(_a(A), k=5), lambda: torch.lobpcg(_t(A), k=5))


def test_tensor_methods():
    x = ad.tensor([0, 3, 0, 4])
    np.testing.assert_array_equal(x.nonzero_static(size=3).numpy(),
                                  torch.tensor([0, 3, 0, 4]).nonzero_static(size=3).numpy())
    assert x.is_inference() is False
    a = np.random.default_rng(15).standard_normal((4, 3))
    g, tg = _a(a).geqrf(), _t(a).geqrf()
    np.testing.assert_allclose(g.a.ormqr(g.tau, ad.eye(4, dtype=ad.float64)).numpy(),
                               tg.a.ormqr(tg.tau, torch.eye(4, dtype=torch.float64)).numpy(), atol=1e-13)
    U = np.triu(a[:3]) + 3 * np.eye(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(_a(a.T).triangular_solve(_a(U)).solution.numpy(),
                                   _t(a.T).triangular_solve(_t(U)).solution.numpy(), rtol=1e-12)
