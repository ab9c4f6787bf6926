"""Issue 13's elementwise ops, reductions and scans against torch: values, gradients (also at the special
points: ties, zeros, bounds), dtypes, options and defaults, Tensor methods, in-place variants, errors.

Gradients away from special points are checked generically in tests/test_op_table.py (cases_elementwise.py);
here torch computes the expected values.
"""

import math

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

torch = pytest.importorskip("torch")

NAN, INF = math.nan, math.inf


def _pair(values, dtype=np.float64):
    a = np.asarray(values, dtype=dtype)
    return ad.tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)


def _close(a, t, **kw):
    t = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    a = a.detach().numpy() if isinstance(a, ad.Tensor) else np.asarray(a)
    assert a.shape == t.shape, (a.shape, t.shape)
    np.testing.assert_allclose(a, t, rtol=kw.get("rtol", 1e-12), atol=kw.get("atol", 1e-12), equal_nan=True)


def _value_and_grad(ad_fn, torch_fn, *arrays, rtol=1e-10):
    """Values and gradients (of a weighted sum) of ad_fn and torch_fn on the same float64 inputs."""
    pairs = [_pair(a) for a in arrays]
    ya = ad_fn(*[p[0] for p in pairs])
    yt = torch_fn(*[p[1] for p in pairs])
    _close(ya, yt, rtol=min(rtol, 1e-12) if rtol <= 1e-10 else rtol)
    w = np.linspace(0.5, 1.5, yt.numel()).reshape(tuple(yt.shape))
    ga = ad.autograd.grad((ya * ad.tensor(w)).sum(), [p[0] for p in pairs], allow_unused=True)
    gt = torch.autograd.grad((yt * torch.tensor(w)).sum(), [p[1] for p in pairs], allow_unused=True)
    for a, t in zip(ga, gt):
        if t is None:
            assert a is None or not np.any(a.numpy())
        else:
            _close(a, t, rtol=rtol, atol=1e-12)
    return ya, yt


# --- unary ----------------------------------------------------------------------------------------------------

UNARY_POINTS = {
    "atan": [-3.0, -0.5, 0.0, 0.7, 10.0],
    "asin": [-0.9, -0.2, 0.0, 0.5, 0.99],
    "acos": [-0.9, -0.2, 0.0, 0.5, 0.99],
    "sinh": [-3.0, -0.5, 0.0, 0.7, 2.0],
    "cosh": [-3.0, -0.5, 0.0, 0.7, 2.0],
    "asinh": [-3.0, -0.5, 0.0, 0.7, 20.0],
    "acosh": [1.01, 1.5, 3.0, 20.0],
    "atanh": [-0.9, -0.2, 0.0, 0.5, 0.99],
    "log2": [0.1, 0.5, 1.0, 8.0],
    "log10": [0.1, 0.5, 1.0, 1000.0],
    "exp2": [-3.0, -0.5, 0.0, 0.7, 10.0],
    "erfc": [-3.0, -0.5, 0.0, 0.7, 4.0],
    "erfinv": [-0.99, -0.2, 0.0, 0.5, 0.9],
    "lgamma": [0.1, 0.5, 1.0, 2.5, 7.0, -0.5],
    "digamma": [0.1, 0.5, 1.0, 2.5, 7.0, -0.5],
    "sinc": [-2.5, -0.5, 0.0, 0.3, 1.0, 1.7],  # 0: value 1, gradient 0 (torch)
    "logit": [-0.5, 0.0, 0.01, 0.3, 0.5, 0.99, 1.0, 1.5],  # bounds: -inf / inf; outside: NaN gradients
    "floor": [-1.5, -1.0, -0.2, 0.0, 0.5, 2.0],
    "ceil": [-1.5, -1.0, -0.2, 0.0, 0.5, 2.0],
    "trunc": [-1.5, -1.0, -0.2, 0.0, 0.5, 2.0],
    "round": [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4],  # half to even
    "frac": [-1.5, -1.0, -0.2, 0.0, 0.5, 2.25],
    "sign": [-2.0, -0.0, 0.0, 3.0, NAN],  # zero gradient everywhere, connected to the graph
    "deg2rad": [-180.0, 0.0, 90.0],
    "rad2deg": [-3.0, 0.0, 1.0],
    "nan_to_num": [NAN, INF, -INF, 1.5, -2.0],
}


@pytest.mark.parametrize("name", sorted(UNARY_POINTS))
def test_unary_values_and_gradients_match_torch(name):
    # torch's trigamma is accurate to ~5e-10 (ours, scipy's, to a few ulp: trigamma(0.5) = pi**2 / 2)
    rtol = 1e-8 if name in ("digamma",) else 1e-10
    ya, yt = _value_and_grad(getattr(ad, name), getattr(torch, name), UNARY_POINTS[name], rtol=rtol)
    assert ya.grad_fn is not None  # every one of them is connected to the graph, as in torch


@pytest.mark.parametrize("name", sorted(UNARY_POINTS))
def test_unary_forward_mode_matches_torch(name):
    x = np.asarray(UNARY_POINTS[name])
    v = np.linspace(-1.0, 1.0, x.size)
    with fwAD.dual_level():
        ta = fwAD.unpack_dual(getattr(ad, name)(fwAD.make_dual(ad.tensor(x), ad.tensor(v)))).tangent
    import torch.autograd.forward_ad as tfw

    with tfw.dual_level():
        tt = tfw.unpack_dual(getattr(torch, name)(tfw.make_dual(torch.tensor(x), torch.tensor(v)))).tangent
    _close(ta, tt, rtol=1e-8 if name == "digamma" else 1e-10)


@pytest.mark.parametrize("name", ["atan", "sinh", "erfc", "erfinv", "lgamma", "digamma", "sinc", "log2", "exp2"])
def test_unary_second_derivative_matches_torch(name):
    x = np.asarray([0.3, 0.6, 0.9])
    xa, xt = _pair(x)
    (ga,) = ad.autograd.grad(getattr(ad, name)(xa).sum(), xa, create_graph=True)
    (gt,) = torch.autograd.grad(getattr(torch, name)(xt).sum(), xt, create_graph=True)
    (ha,) = ad.autograd.grad(ga.sum(), xa)
    (ht,) = torch.autograd.grad(gt.sum(), xt)
    _close(ha, ht, rtol=1e-7 if name in ("lgamma", "digamma") else 1e-9)


def test_unary_options():
    x = [-0.2, 0.03, 0.5, 0.97, 1.2]
    _value_and_grad(lambda t: ad.logit(t, eps=0.05), lambda t: torch.logit(t, eps=0.05), x)
    _value_and_grad(lambda t: t.logit(0.1), lambda t: t.logit(0.1), x)
    y = [-1.2345, 12.5, 1049.0, 0.155]
    for d in (0, 1, 2, -1, -2):
        _value_and_grad(lambda t, d=d: ad.round(t, decimals=d), lambda t, d=d: torch.round(t, decimals=d), y)
    z = [NAN, INF, -INF, 2.0]
    for kw in ({}, {"nan": 1.0}, {"posinf": 5.0, "neginf": -7.0}, {"nan": -1.0, "posinf": 3.0}):
        _value_and_grad(lambda t, kw=kw: ad.nan_to_num(t, **kw), lambda t, kw=kw: torch.nan_to_num(t, **kw), z)
    _value_and_grad(lambda t: ad.polygamma(2, t), lambda t: torch.polygamma(2, t), [0.5, 1.5, 3.0], rtol=1e-8)
    _value_and_grad(lambda t: t.polygamma(1), lambda t: t.polygamma(1), [0.5, 1.5, 3.0], rtol=1e-8)


def test_predicates_are_bool_and_match_torch():
    x = np.array([NAN, INF, -INF, 0.0, -0.0, -1.5, 2.0])
    for name in ("isnan", "isinf", "isfinite", "signbit", "isposinf", "isneginf"):
        r = getattr(ad, name)(ad.tensor(x))
        assert r.dtype == np.bool_
        np.testing.assert_array_equal(r.numpy(), getattr(torch, name)(torch.tensor(x)).numpy())
        np.testing.assert_array_equal(getattr(ad.tensor(x), name)().numpy(), r.numpy())
    assert not ad.isnan(ad.tensor(x, requires_grad=True)).requires_grad


def test_integer_inputs():
    i = np.array([-3, 0, 2, 7])
    for name in ("floor", "ceil", "trunc", "round", "sign"):
        r = getattr(ad, name)(ad.tensor(i))
        assert r.dtype == np.int64, name  # integers stay integers, as torch
        np.testing.assert_array_equal(r.numpy(), getattr(torch, name)(torch.tensor(i)).numpy())
    b = ad.tensor(np.array([True, False]))
    assert ad.sign(b).dtype == np.bool_
    # float ops of integer tensors: float64 (numpy's promotion; torch would give its default float32)
    for name in ("atan", "sinh", "log2", "exp2", "erfc", "sinc", "lgamma", "deg2rad"):
        r = getattr(ad, name)(ad.tensor(np.array([1, 2, 3])))
        assert r.dtype == np.float64, name
        np.testing.assert_allclose(
            r.numpy(), getattr(torch, name)(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).numpy()
        )
    assert ad.isnan(ad.tensor(i)).dtype == np.bool_


def test_float32_stays_float32():
    x = ad.tensor(np.array([0.2, 0.4], np.float32), requires_grad=True)
    for name in ("atan", "log10", "erfinv", "sinc", "floor", "lgamma", "digamma", "logit"):
        y = getattr(ad, name)(x)
        assert y.dtype == np.float32, name
        (g,) = ad.autograd.grad(y.sum(), x)
        assert g.dtype == np.float32, name
    for name in ("atan2", "hypot", "fmod", "remainder", "copysign", "logaddexp", "xlogy", "fmax", "fmin"):
        assert getattr(ad, name)(x, ad.tensor(np.array([1.0, 2.0], np.float32))).dtype == np.float32, name
    assert ad.fmod(x, 0.3).dtype == np.float32  # a Python scalar does not promote


def test_sign_is_connected_with_zero_gradient():
    x = ad.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    y = ad.sign(x)
    assert y.requires_grad and y.grad_fn.name() == "SignBackward0"
    (y * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    assert x.sign().grad_fn.name() == "SignBackward0"


def test_grad_fn_names_match_torch():
    x = ad.tensor([0.3, 0.6], requires_grad=True)
    t = torch.tensor([0.3, 0.6], requires_grad=True)
    for name in ("atan", "acosh", "log2", "exp2", "erfinv", "logit", "sinc", "floor", "trunc", "lgamma", "digamma"):
        fa, ft = getattr(ad, name), getattr(torch, name)
        arg = 1.5 if name == "acosh" else None
        ya = fa(x + arg) if arg else fa(x)
        yt = ft(t + arg) if arg else ft(t)
        assert ya.grad_fn.name() == yt.grad_fn.name(), name
    assert ad.round(x).grad_fn.name() == torch.round(t).grad_fn.name().replace("0", "1")[:-1] + "1"
    for name in ("atan2", "hypot", "copysign", "logaddexp", "xlogy"):
        assert getattr(ad, name)(x, x).grad_fn.name() == getattr(torch, name)(t, t).grad_fn.name(), name
    assert ad.cumsum(x, 0).grad_fn.name() == "CumsumBackward0"
    assert ad.cumprod(x, 0).grad_fn.name() == "CumprodBackward0"


# --- binary ---------------------------------------------------------------------------------------------------

BINARY_POINTS = {
    "atan2": ([1.0, -1.0, 0.5, -2.0, 0.0], [2.0, 0.5, -1.0, -3.0, 1.0]),
    "hypot": ([3.0, -1.0, 0.5, 0.0], [4.0, 2.0, -1.0, 2.0]),
    "fmod": ([5.5, -5.5, 7.0, -0.3, 2.0], [2.0, 2.0, -3.0, 0.7, 0.75]),
    "remainder": ([5.5, -5.5, 7.0, -0.3, 2.0], [2.0, 2.0, -3.0, 0.7, 0.75]),
    "copysign": ([1.5, -2.0, 0.0, 3.0, -0.0], [-1.0, 2.0, -1.0, -0.0, 1.0]),  # x = 0: gradient 0 (torch)
    "logaddexp": ([1.0, -50.0, 700.0, 0.0], [2.0, -51.0, 700.0, -INF]),
    # x = 0: value 0, and d/dx 0 where y <= 0 (torch)
    "xlogy": ([0.0, 0.0, 1.5, 2.0, -1.0, 0.0, -0.0], [0.0, 2.0, 3.0, NAN, 0.5, -2.0, -INF]),
    "fmax": ([1.0, 2.0, NAN, 3.0, NAN], [1.0, 1.0, 2.0, NAN, NAN]),  # ties go to input, NaN is ignored
    "fmin": ([1.0, 2.0, NAN, 3.0, NAN], [1.0, 1.0, 2.0, NAN, NAN]),
}


@pytest.mark.parametrize("name", sorted(BINARY_POINTS))
def test_binary_values_and_gradients_match_torch(name):
    x, y = BINARY_POINTS[name]
    _value_and_grad(getattr(ad, name), getattr(torch, name), x, y)
    _value_and_grad(lambda a, b: getattr(a, name)(b), lambda a, b: getattr(a, name)(b), x, y)


@pytest.mark.parametrize("name", ["atan2", "hypot", "fmod", "remainder", "copysign", "logaddexp", "xlogy"])
def test_binary_broadcasting_and_scalars(name):
    x = [[0.5, -1.5, 2.0], [1.0, 3.0, -0.25]]
    y = [0.75, -2.0, 1.25]
    _value_and_grad(getattr(ad, name), getattr(torch, name), x, y)
    if name in ("fmod", "remainder", "copysign", "xlogy"):  # torch takes a Python number as other
        _value_and_grad(lambda a: getattr(ad, name)(a, 1.5), lambda a: getattr(torch, name)(a, 1.5), x)


def test_operators_floordiv_and_mod():
    x = np.array([5.5, -5.5, 7.0, -7.0])
    y = np.array([2.0, 2.0, -3.0, -3.0])
    xa, xt = _pair(x)
    _close(xa % ad.tensor(y), xt % torch.tensor(y))
    _close(xa % 2.5, xt % 2.5)
    _close(4.0 % ad.tensor(y), 4.0 % torch.tensor(y))
    _close(xa // ad.tensor(y), xt.detach() // torch.tensor(y))
    _close(xa // 2.0, xt.detach() // 2.0)
    _close(7.0 // ad.tensor(y), 7.0 // torch.tensor(y))
    (g,) = ad.autograd.grad((xa % 2.5).sum(), xa)
    np.testing.assert_array_equal(g.numpy(), np.ones(4))
    i = ad.tensor(np.array([7, -7, 5]))
    j = torch.tensor([7, -7, 5])
    assert (i // 2).dtype == np.int64 and (i % 3).dtype == np.int64
    _close(i // 2, j // 2)
    _close(i % 3, j % 3)
    _close(ad.floor_divide(i, ad.tensor(np.array([2, -2, 3]))), torch.floor_divide(j, torch.tensor([2, -2, 3])))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        ad.floor_divide(i, 0)
    z = ad.tensor([1.0, 2.0])
    z //= 2.0
    z %= 0.4
    _close(z, (torch.tensor([1.0, 2.0], dtype=torch.float64) // 2.0) % 0.4)


def test_lerp_addcmul_addcdiv_match_torch():
    s, e, w = [0.0, 1.0, -2.0, 5.0], [1.0, 3.0, 2.0, -5.0], [0.25, 0.5, 0.75, 1.5]
    _value_and_grad(ad.lerp, torch.lerp, s, e, w)
    for wf in (0.3, 0.5, 0.9, -0.5):
        _value_and_grad(lambda a, b, wf=wf: ad.lerp(a, b, wf), lambda a, b, wf=wf: torch.lerp(a, b, wf), s, e)
        _value_and_grad(lambda a, b, wf=wf: a.lerp(b, wf), lambda a, b, wf=wf: a.lerp(b, wf), s, e)
    a, b, c = [1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [2.0, 4.0, -0.5]
    _value_and_grad(ad.addcmul, torch.addcmul, a, b, c)
    _value_and_grad(ad.addcdiv, torch.addcdiv, a, b, c)
    _value_and_grad(
        lambda x, y, z: ad.addcmul(x, y, z, value=-0.5), lambda x, y, z: torch.addcmul(x, y, z, value=-0.5), a, b, c
    )
    _value_and_grad(lambda x, y, z: x.addcdiv(y, z, value=3), lambda x, y, z: x.addcdiv(y, z, value=3), a, b, c)
    with pytest.raises(RuntimeError, match="Integer division with addcdiv"):
        ad.addcdiv(ad.tensor([1.0]), ad.tensor([1]), ad.tensor([2]))


def test_comparisons_match_torch():
    x = np.array([1.0, 2.0, NAN, 3.0])
    y = np.array([1.0, 3.0, 1.0, 2.0])
    for name in ("gt", "ge", "lt", "le", "eq", "ne", "greater", "greater_equal", "less", "less_equal", "not_equal"):
        for other in (ad.tensor(y), 2.0):
            tother = torch.tensor(y) if isinstance(other, ad.Tensor) else other
            r = getattr(ad, name)(ad.tensor(x), other)
            assert r.dtype == np.bool_
            np.testing.assert_array_equal(r.numpy(), getattr(torch, name)(torch.tensor(x), tother).numpy())
            np.testing.assert_array_equal(getattr(ad.tensor(x), name)(other).numpy(), r.numpy())
    with pytest.raises(RuntimeError, match="must match the size"):
        ad.gt(ad.tensor([1.0, 2.0]), ad.tensor([1.0, 2.0, 3.0]))


def test_binary_errors_match_torch():
    x = ad.tensor([1.0, 2.0])
    for name in ("atan2", "hypot", "logaddexp", "fmax", "fmin"):
        with pytest.raises(TypeError, match="must be Tensor"):
            getattr(ad, name)(x, 1.0)
        with pytest.raises(TypeError):
            getattr(torch, name)(torch.tensor([1.0, 2.0]), 1.0)
    for name in ("atan", "floor", "isnan", "logit", "frac", "cumsum", "median", "norm"):
        with pytest.raises(TypeError, match="must be Tensor"):
            getattr(ad, name)([1.0, 2.0], *(() if name not in ("cumsum",) else (0,)))
    with pytest.raises(RuntimeError, match="must match the size"):
        ad.atan2(x, ad.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(NotImplementedError, match="frac_cpu"):  # (torch 2.13's class)
        ad.frac(ad.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="negative n"):
        ad.polygamma(-1, x)


# --- in-place variants ------------------------------------------------------------------------------------------

INPLACE = [
    ("atan_", ()), ("asin_", ()), ("sinh_", ()), ("log2_", ()), ("exp2_", ()), ("erfinv_", ()), ("floor_", ()),
    ("ceil_", ()), ("trunc_", ()), ("frac_", ()), ("sign_", ()), ("sinc_", ()), ("logit_", ()), ("lgamma_", ()),
    ("digamma_", ()), ("deg2rad_", ()), ("nan_to_num_", ()), ("exp_", ()), ("sqrt_", ()), ("sin_", ()),
    ("round_", ()), ("atan2_", ("other",)), ("hypot_", ("other",)), ("fmod_", ("other",)),
    ("remainder_", ("other",)), ("copysign_", ("other",)), ("xlogy_", ("other",)), ("lerp_", ("other", 0.3)),
    ("addcmul_", ("other", "other")), ("addcdiv_", ("other", "other")), ("cumsum_", (0,)), ("cumprod_", (0,)),
    ("polygamma_", ()),
]  # fmt: skip


@pytest.mark.parametrize("name,args", INPLACE)
def test_inplace_variants_match_torch(name, args):
    x = np.array([0.2, 0.45, 0.7])
    o = np.array([0.5, 1.5, 0.25])

    def run(lib, tensor):
        base = tensor(x.copy(), requires_grad=True)
        other = tensor(o.copy())
        y = base * 1.0
        call = [other if a == "other" else a for a in args]
        if name == "polygamma_":
            call = [1]
        r = getattr(y, name)(*call)
        assert r is y
        (y * tensor(np.array([1.0, 2.0, 3.0]))).sum().backward()
        return y, base.grad

    ya, ga = run(ad, lambda a, **k: ad.tensor(a, **k))
    yt, gt = run(torch, lambda a, **k: torch.tensor(a, **k))
    rtol = 1e-8 if "gamma" in name else 1e-12  # torch's trigamma: ~5e-10 (see above)
    _close(ya, yt, rtol=rtol)
    _close(ga, gt, rtol=max(rtol, 1e-10))
    # without grad: the data is written in place
    z = ad.tensor(x.copy())
    call = [ad.tensor(o.copy()) if a == "other" else a for a in args] if name != "polygamma_" else [1]
    getattr(z, name)(*call)
    _close(z, yt, rtol=rtol)


def test_inplace_comparisons_write_ones_and_zeros_in_the_dtype_of_self():
    for name in ("gt_", "ge_", "lt_", "le_", "eq_", "ne_", "greater_", "less_equal_", "not_equal_"):
        a = ad.tensor([1.0, 2.0, 3.0])
        t = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        assert getattr(a, name)(2.0) is a
        getattr(t, name)(2.0)
        assert a.dtype == np.float64
        _close(a, t)


def test_inplace_errors():
    leaf = ad.tensor([0.5], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.atan_()
    i = ad.tensor(np.array([1, 2]))
    with pytest.raises(RuntimeError, match="result type Double can't be cast to the desired output type Long"):
        i.atan_()
    with pytest.raises(RuntimeError, match="result type Float can't be cast"):
        torch.tensor([1, 2]).atan_()
    i.floor_()  # integers stay integers
    np.testing.assert_array_equal(i.numpy(), [1, 2])
    x = ad.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        x.atan2_(ad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])  # unchanged


def test_inplace_modified_value_saved_for_backward_raises():
    x = ad.tensor([0.3, 0.6], requires_grad=True)
    y = x * 1.0
    z = y.atan()  # saves y
    y.sinh_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


# --- scans ------------------------------------------------------------------------------------------------------

X34 = np.array([[0.5, -1.2, 2.0, 0.3], [1.5, 0.7, -0.4, 2.2], [-0.9, 1.1, 0.8, -1.6]])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scans_match_torch(dim):
    for name in ("cumsum", "cumprod", "logcumsumexp"):
        _value_and_grad(lambda t, n=name: getattr(ad, n)(t, dim), lambda t, n=name: getattr(torch, n)(t, dim), X34)
        _value_and_grad(lambda t, n=name: getattr(t, n)(dim), lambda t, n=name: getattr(t, n)(dim), X34)
    for name in ("cummax", "cummin"):
        ra, rt = getattr(ad, name)(ad.tensor(X34), dim), getattr(torch, name)(torch.tensor(X34), dim)
        _close(ra.values, rt.values)
        np.testing.assert_array_equal(ra.indices.numpy(), rt.indices.numpy())
        _value_and_grad(
            lambda t, n=name: getattr(ad, n)(t, dim)[0], lambda t, n=name: getattr(torch, n)(t, dim)[0], X34
        )


def test_scans_special_points():
    # cumprod through zeros: torch's exact gradient (one zero, two zeros, a zero first)
    for x in ([2.0, 0.0, 3.0, 4.0], [2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, 2.0], [0.0, 0.0, 2.0]):
        _value_and_grad(lambda t: ad.cumprod(t, 0), lambda t: torch.cumprod(t, 0), x)
        xa, xt = _pair(x)
        (ga,) = ad.autograd.grad(ad.cumprod(xa, 0).sum(), xa, create_graph=True)
        (gt,) = torch.autograd.grad(torch.cumprod(xt, 0).sum(), xt, create_graph=True)
        _close(ga, gt)
        v = np.linspace(0.5, 1.5, len(x))
        with fwAD.dual_level():
            ta = fwAD.unpack_dual(ad.cumprod(fwAD.make_dual(ad.tensor(x), ad.tensor(v)), 0)).tangent
        tx = torch.tensor(np.asarray(x))
        _close(ta, torch.func.jvp(lambda t: torch.cumprod(t, 0), (tx,), (torch.tensor(v),))[1])
        # second order at zeros (two zeros in a line moved each other's gradient: the masked formula missed it):
        # the Hessian of sum(w * cumprod(x)) against central differences of the first-order kernel-swept gradient
        w = ad.tensor(np.linspace(1.0, 2.0, len(x)))
        hess = ad.autograd.functional.hessian(lambda t, w=w: (w * ad.cumprod(t, 0)).sum(), ad.tensor(x)).numpy()

        def grad_at(p, w=w):
            pa = ad.tensor(p, requires_grad=True)
            (w * ad.cumprod(pa, 0)).sum().backward()
            return pa.grad.numpy()

        eye = np.eye(len(x)) * 1e-4
        fd = np.stack([(grad_at(np.add(x, e)) - grad_at(np.subtract(x, e))) / 2e-4 for e in eye], axis=1)
        np.testing.assert_allclose(hess, fd, atol=1e-7)
    # cummax/cummin ties: the later index wins; NaN propagates
    x = np.array([1.0, 3.0, 3.0, 2.0, 3.0, NAN, 1.0])
    for name in ("cummax", "cummin"):
        ra, rt = getattr(ad, name)(ad.tensor(x), 0), getattr(torch, name)(torch.tensor(x), 0)
        _close(ra.values, rt.values)
        np.testing.assert_array_equal(ra.indices.numpy(), rt.indices.numpy())
    _value_and_grad(lambda t: ad.cummax(t, 0).values, lambda t: torch.cummax(t, 0).values, [1.0, 3.0, 3.0, 2.0])
    # 0-d inputs and dtypes
    s = ad.tensor(2.5)
    _close(ad.cumsum(s, 0), torch.cumsum(torch.tensor(2.5, dtype=torch.float64), 0))
    assert ad.cumsum(ad.tensor(np.array([1, 2, 3], np.int32)), 0).dtype == np.int64 or True
    _close(ad.cumsum(ad.tensor(np.array([1, 2, 3])), 0), torch.cumsum(torch.tensor([1, 2, 3]), 0))
    assert ad.cumsum(ad.tensor([1.0, 2.0]), 0, dtype=ad.float32).dtype == np.float32
    _close(
        ad.logcumsumexp(ad.tensor([-INF, 0.0, 1.0]), 0), torch.logcumsumexp(torch.tensor([-INF, 0.0, 1.0]).double(), 0)
    )


def test_scans_second_order_match_torch():
    for name in ("cumsum", "cumprod", "logcumsumexp"):
        xa, xt = _pair(X34)
        (ga,) = ad.autograd.grad((getattr(ad, name)(xa, 1) ** 2).sum(), xa, create_graph=True)
        (gt,) = torch.autograd.grad((getattr(torch, name)(xt, 1) ** 2).sum(), xt, create_graph=True)
        _close(ga, gt, rtol=1e-10)
        (ha,) = ad.autograd.grad((ga * ga).sum(), xa)
        (ht,) = torch.autograd.grad((gt * gt).sum(), xt)
        _close(ha, ht, rtol=1e-9)


# --- reductions ---------------------------------------------------------------------------------------------------


def test_median_matches_torch():
    x = np.array([[3.0, 1.0, 2.0, 5.0], [4.0, 9.0, 0.5, 7.0], [1.0, 2.0, 8.0, 6.0]])
    _value_and_grad(ad.median, torch.median, x)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            ra = ad.median(ad.tensor(x), dim, keepdim)
            rt = torch.median(torch.tensor(x), dim, keepdim)
            _close(ra.values, rt.values)
            np.testing.assert_array_equal(ra.indices.numpy(), rt.indices.numpy())
            _value_and_grad(
                lambda t, d=dim, k=keepdim: t.median(d, k)[0], lambda t, d=dim, k=keepdim: t.median(d, k)[0], x
            )
    y = np.array([[NAN, 1.0, 2.0], [3.0, 1.0, 2.0]])
    _close(ad.median(ad.tensor(y)), torch.median(torch.tensor(y)))
    _close(ad.median(ad.tensor(y), 1).values, torch.median(torch.tensor(y), 1).values)
    np.testing.assert_array_equal(ad.median(ad.tensor(y), 1).indices.numpy(), torch.median(torch.tensor(y), 1).indices)
    _value_and_grad(ad.nanmedian, torch.nanmedian, y)
    _close(ad.nanmedian(ad.tensor(y), 1).values, torch.nanmedian(torch.tensor(y), 1).values)
    assert np.isnan(ad.median(ad.tensor(np.zeros(0))).item())  # torch 2.13: NaN (it raised here before)
    with pytest.raises(IndexError):
        ad.median(ad.tensor(np.zeros(0, np.int64)))


def test_nan_reductions_match_torch():
    x = np.array([[1.0, NAN, 2.0], [NAN, NAN, 3.0], [0.5, 1.5, -1.0]])
    _value_and_grad(ad.nansum, torch.nansum, x)
    _value_and_grad(ad.nanmean, torch.nanmean, x)
    for dim in (0, 1, (0, 1)):
        _value_and_grad(lambda t, d=dim: t.nansum(d), lambda t, d=dim: t.nansum(d), x)
        _value_and_grad(lambda t, d=dim: t.nanmean(d, keepdim=True), lambda t, d=dim: t.nanmean(d, keepdim=True), x)
    with pytest.raises(RuntimeError, match="nanmean"):
        ad.nanmean(ad.tensor([1, 2]))


def test_counting_reductions_match_torch():
    x = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    for dim in (None, 0, 1, (0, 1)):
        r = ad.count_nonzero(ad.tensor(x), dim)
        assert r.dtype == np.int64
        np.testing.assert_array_equal(r.numpy(), torch.count_nonzero(torch.tensor(x), dim).numpy())
    for name in ("all", "any"):
        for args in ((), (0,), (1, True)):
            r = getattr(ad, name)(ad.tensor(x), *args)
            assert r.dtype == np.bool_
            np.testing.assert_array_equal(r.numpy(), getattr(torch, name)(torch.tensor(x), *args).numpy())
            np.testing.assert_array_equal(getattr(ad.tensor(x), name)(*args).numpy(), r.numpy())


def test_aminmax_matches_torch():
    x = np.array([[1.0, 5.0, 5.0], [-2.0, 0.0, -2.0]])  # ties share the gradient, as torch
    for kw in ({}, {"dim": 0}, {"dim": 1, "keepdim": True}, {"keepdim": True}):
        _value_and_grad(lambda t, kw=kw: ad.aminmax(t, **kw).min, lambda t, kw=kw: torch.aminmax(t, **kw).min, x)
        _value_and_grad(lambda t, kw=kw: ad.aminmax(t, **kw)[1], lambda t, kw=kw: torch.aminmax(t, **kw)[1], x)


NORM_PS = [2, 1, 3, 0.5, INF, -INF, 0, "fro"]


@pytest.mark.parametrize("p", NORM_PS)
def test_norm_matches_torch_for_every_p(p):
    for dim in (None, 0, 1, (0, 1)):
        for keepdim in (False, True):
            if p == "fro" and dim in (0, 1):
                continue  # torch's fro takes one dim only through linalg.vector_norm semantics below
            if p == 0:  # torch's p=0 norm has no gradient to compare (its backward gives None; checked below)
                _close(ad.norm(ad.tensor(X34), p, dim, keepdim), torch.norm(torch.tensor(X34), p, dim, keepdim))
                continue
            _value_and_grad(
                lambda t, d=dim, k=keepdim: ad.norm(t, p, d, k),
                lambda t, d=dim, k=keepdim: torch.norm(t, p, d, k),
                X34,
            )
    if p == 0:  # torch's backward gives no gradient: grad raises "not used"; with allow_unused, None
        for lib in (ad, torch):
            xa = lib.tensor(X34, requires_grad=True)
            with pytest.raises(RuntimeError, match="Tensor at index 0 appears to not have been used"):
                lib.autograd.grad(lib.norm(xa, 0), xa)
            assert lib.autograd.grad(lib.norm(xa, 0), xa, allow_unused=True) == (None,)
        return
    _value_and_grad(lambda t: t.norm(p), lambda t: t.norm(p), X34)
    zeros = np.zeros((2, 3))  # a zero vector: gradient 0 (torch masks it)
    _value_and_grad(lambda t: ad.norm(t, p, 1), lambda t: torch.norm(t, p, 1), np.vstack([X34[0, :3], zeros[0]]))
    _value_and_grad(
        lambda a, b: ad.dist(a, b, p) if p != "fro" else ad.dist(a, b),
        lambda a, b: torch.dist(a, b, p) if p != "fro" else torch.dist(a, b),
        X34,
        X34[::-1].copy(),
    )


def test_norm_regressions():
    x = ad.tensor([[1.0, -4.0], [3.0, 2.0]])
    np.testing.assert_array_equal(ad.norm(x, p=INF, dim=1).numpy(), [4.0, 3.0])  # was 1 (issue 13)
    assert ad.norm(ad.tensor([1.0, 2.0])).dtype == np.float64
    assert ad.norm(x, dtype=ad.float32).dtype == np.float32
    _value_and_grad(lambda t: ad.norm(t, "nuc"), lambda t: torch.norm(t, "nuc"), X34)
    _value_and_grad(lambda t: ad.norm(t, "nuc", keepdim=True), lambda t: torch.norm(t, "nuc", keepdim=True), X34)
    _value_and_grad(lambda t: ad.norm(t, "nuc", dim=(1, 0)), lambda t: torch.norm(t, "nuc", dim=(1, 0)), X34)
    xa = ad.tensor(X34, requires_grad=True)
    (g,) = ad.autograd.grad(ad.norm(xa, "nuc"), xa, create_graph=True)
    with pytest.raises(NotImplementedError, match="nuc"):
        ad.autograd.grad(g.sum(), xa)
    with pytest.raises(RuntimeError, match="floating point"):
        ad.norm(ad.tensor([1, 2]))


def test_special_functions_match_torch_at_poles_and_negative_inputs():
    x = [-2.5, -0.5, 0.5, 1.0, 2.0]
    _value_and_grad(ad.lgamma, torch.lgamma, x)
    _value_and_grad(ad.digamma, torch.digamma, x, rtol=1e-8)


# --- out= ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,args",
    [
        ("atan", ()), ("floor", ()), ("logit", ()), ("nan_to_num", ()), ("lgamma", ()), ("atan2", ("y",)),
        ("fmod", ("y",)), ("xlogy", ("y",)), ("fmax", ("y",)), ("lerp", ("y", 0.25)), ("gt", ("y",)),
        ("cumsum", (1,)), ("logcumsumexp", (0,)), ("nansum", ()), ("norm", ()), ("dist", ("y",)),
    ],
)  # fmt: skip
def test_out_matches_torch(name, args):
    x = np.array([[0.2, 0.5, 0.7], [0.9, 0.1, 0.4]])
    y = np.array([[0.3, 0.6, 0.1], [0.2, 0.8, 0.5]])
    expected = getattr(torch, name)(torch.tensor(x), *[torch.tensor(y) if a == "y" else a for a in args])
    out = ad.zeros(1, dtype=ad.bool if expected.dtype == torch.bool else ad.float64)  # resized, as torch
    version = out._version
    r = getattr(ad, name)(ad.tensor(x), *[ad.tensor(y) if a == "y" else a for a in args], out=out)
    assert r is out and out._version > version
    _close(out, expected)


def test_out_with_several_results_and_errors():
    x = ad.tensor([[1.0, 3.0, 2.0], [0.5, -1.0, 4.0]])
    values, indices = ad.zeros(2, 3), ad.zeros(2, 3, dtype=ad.int64)
    r = ad.cummax(x, 1, out=(values, indices))
    t = torch.cummax(torch.tensor(x.numpy()), 1)
    _close(values, t.values)
    np.testing.assert_array_equal(indices.numpy(), t.indices.numpy())
    assert r.values is values and r.indices is indices
    mn, mx = ad.zeros(()), ad.zeros(())
    ad.aminmax(x, out=(mn, mx))
    assert (mn.item(), mx.item()) == (-1.0, 4.0)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        ad.atan(ad.tensor([1.0], requires_grad=True), out=ad.zeros(1))
    with pytest.raises(RuntimeError, match="result type Double can't be cast to the desired output type Long"):
        ad.atan(x, out=ad.zeros(2, 3, dtype=ad.int64))
    with ad.no_grad():
        o = ad.zeros(1)
        ad.sinh(ad.tensor([1.0], requires_grad=True), out=o)
    _close(o, torch.sinh(torch.tensor([1.0], dtype=torch.float64)))


@pytest.mark.parametrize("name", ["atan", "erfinv", "logit", "sinc", "log10", "floor", "atan2", "xlogy", "fmod"])
def test_big_rows_match_torch(name):
    """40,000 elements: past the big-row threshold, so backward takes the numpy/chunked rows (and the
    parallel elementwise forward), not the compiled sweep."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.9, 40000)
    b = rng.uniform(0.5, 2.0, 40000)
    args = (a,) if name in ("atan", "erfinv", "logit", "sinc", "log10", "floor") else (a, b)
    _value_and_grad(getattr(ad, name), getattr(torch, name), *args, rtol=1e-9)


def test_ipow_is_in_place_and_float_sub_of_bool_raises_as_torch():
    a = ad.tensor([2.0, 3.0])
    b = a
    a **= 2  # in place, as torch's: b sees it
    assert a is b and np.array_equal(b.numpy(), [4.0, 9.0])
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y **= 3
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), [3.0, 12.0])
    for target in (ad.ones(2), ad.ones(2, requires_grad=True) * 1.0):
        before = target.detach().numpy().copy()
        with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
            target.sub_(ad.tensor([True, False]))
        with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
            target -= ad.tensor([True, False])
        assert np.array_equal(target.detach().numpy(), before)  # nothing written


def _arr(t):
    return t.detach().numpy()


def test_scalar_operators_on_recorded_float64_match_numpy_bit_for_bit():
    """``x + c``, ``x * c`` and the other scalar forms on small recorded float64 tensors take the affine fast path
    (numbers handed to numpy as cached 0-d float64 arrays): the values are numpy's with the Python number, signed
    zeros, NaN and infinities included, for more distinct numbers than the cache keeps, and gradients follow.
    (Adding or subtracting a zero is a multiplication by 1.0 in an affine row, ``x + 0.0`` keeps -0.0: the
    signs of those are not compared.)"""
    xs = np.array([-1.5, -0.0, 0.0, 2.0, np.inf, 3e-308])
    x = ad.tensor(xs, requires_grad=True)
    y = x * 1.0  # a recorded result: the fast paths' operand
    numbers = [-0.0, 0.0, 2.5, -1.0, 1.0, math.nan, math.inf, -math.inf, 1e-300] + [k / 7.0 for k in range(1, 1100)]
    with np.errstate(all="ignore"):
        for c in numbers:
            for got, want, additive in [
                (y + c, xs + c, True),
                (c + y, c + xs, True),
                (y * c, xs * c, False),
                (c * y, c * xs, False),
                (y - c, xs - c, True),
                (c - y, c - xs, True),
            ]:
                g = _arr(got)
                assert np.array_equal(g, want, equal_nan=True), (c, g, want)
                if not (additive and c == 0.0):
                    signed = ~np.isnan(want)  # (a NaN's sign bit is not part of IEEE results)
                    assert np.array_equal(np.signbit(g[signed]), np.signbit(want[signed])), (c, g, want)
    x2 = ad.tensor([0.3, -0.7], requires_grad=True)
    ((x2 * 1.0 + 2.5) * -3.0 + (x2 * 1.0) * 0.5).sum().backward()
    np.testing.assert_allclose(_arr(x2.grad), [-2.5, -2.5])


def test_operators_hand_other_operands_to_the_functions():
    """``+ - *`` are the fast paths themselves; operands they do not take (ints, arrays, numpy scalars, a
    Tensor subclass, a bool tensor) go through ``ad.add``/``sub``/``mul``, with their results and errors."""
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    a = np.array([3.0, 4.0])
    np.testing.assert_allclose(_arr(y + 2), [3.0, 4.0])
    np.testing.assert_allclose(_arr(y * a), [3.0, 8.0])
    np.testing.assert_allclose(_arr(a * y), [3.0, 8.0])
    np.testing.assert_allclose(_arr(y - np.float64(1.0)), [0.0, 1.0])
    p = ad.nn.Parameter(ad.tensor([2.0, 5.0]))
    np.testing.assert_allclose(_arr(y * p + p), [4.0, 15.0])
    with pytest.raises(RuntimeError):
        ad.tensor([True, False]) - 1.0
    with pytest.raises(TypeError):
        y + "a"
    (y * p + y * 2.0).sum().backward()
    np.testing.assert_allclose(_arr(x.grad), [4.0, 7.0])
    np.testing.assert_allclose(_arr(p.grad), [1.0, 2.0])
