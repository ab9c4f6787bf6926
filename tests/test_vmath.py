"""The vectorized sin, cos, exp and tanh of kernels/vmath.py against libm (numpy), in ulps, and their special
values.

Every big float64 sin/cos in ``ad`` (forward values, JVPs, big-row VJPs) goes through these loops, so they are
checked directly, over ordinary, large, tiny and adversarial arguments (near multiples of pi/2, where the
range reduction cancels), and through the ops that use them.
"""

import numpy as np
import pytest
from numba import njit

import ad
from ad.autograd import forward_ad as fwAD
from kernels import cpu, vmath
from kernels import opcodes as K
from kernels.vmath import TRIG_LIMIT

FUNCS = {"sin": (K.SIN, np.sin, np.cos), "cos": (K.COS, np.cos, lambda x: -np.sin(x))}


def _ulps(actual, expected):
    """Distance in units of the last place of ``expected``."""
    return np.abs(actual - expected) / np.spacing(np.abs(expected))


def _arguments():
    rng = np.random.default_rng(7)
    k = np.arange(1, 100_001, dtype=np.float64)
    return {
        "unit": rng.uniform(-np.pi, np.pi, 200_000),
        "moderate": rng.uniform(-100.0, 100.0, 200_000),
        "large": rng.uniform(-TRIG_LIMIT, TRIG_LIMIT, 200_000),
        "tiny": rng.standard_normal(10_000) * 1e-9,
        "near multiples of pi/2": np.concatenate([k * (np.pi / 2), np.nextafter(k * (np.pi / 2), 0.0)]),
        "subnormal": np.array([5e-324, -5e-324, 1e-310, -2.2e-308]),
    }


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("kind", list(_arguments()))
def test_within_two_ulps_of_libm(name, kind):
    code, ref, _ = FUNCS[name]
    x = _arguments()[kind]
    out = np.empty_like(x)
    cpu.trig_forward(code, x, out)
    expected = ref(x)
    assert _ulps(out, expected).max() <= 2.0
    assert np.array_equal(np.signbit(out[expected != 0]), np.signbit(expected[expected != 0]))


@pytest.mark.parametrize("name", FUNCS)
def test_special_and_out_of_range_values_equal_libm(name):
    """Zeros keep their sign; inf, NaN and |x| beyond the reduction's range take libm's value exactly."""
    code, ref, _ = FUNCS[name]
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, TRIG_LIMIT * 1.5, -1e22, 3e300, 1.0, -2.0])
    out = np.empty_like(x)
    cpu.trig_forward(code, x, out)
    with np.errstate(invalid="ignore"):
        expected = ref(x)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    finite = ~np.isnan(expected)
    assert np.array_equal(np.signbit(out[finite]), np.signbit(expected[finite]))
    exact = finite & (np.abs(x) > TRIG_LIMIT)
    np.testing.assert_array_equal(out[exact], expected[exact])


@pytest.mark.parametrize("name", FUNCS)
def test_in_place_with_out_of_range_elements(name):
    """``out`` may be ``x``: the second pass finds the elements to redo from what the first left in ``out``."""
    code, ref, _ = FUNCS[name]
    x = np.array([0.5, 1e7, -3.0, np.nan, 2e6, 0.25] * 100)
    expected = ref(x)
    cpu.trig_forward(code, x, x)
    np.testing.assert_array_equal(np.isnan(x), np.isnan(expected))
    ok = ~np.isnan(expected)
    assert _ulps(x[ok], expected[ok]).max() <= 2.0


@pytest.mark.parametrize("name", FUNCS)
def test_partial_loops(name):
    """The JVP (``t * f'(x)``) and big-row VJP (``gx += g * f'(x)``) loops, out-of-range elements included."""
    code, _, deriv = FUNCS[name]
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-20, 20, 5000), [1e7, -5e6, np.inf, np.nan, 0.0]])
    g = rng.standard_normal(x.size)
    with np.errstate(invalid="ignore"):
        expected = g * deriv(x)
    res = np.empty_like(x)
    cpu.jvp_unary(code, x, x, g, res, 0.0, 0.0)
    np.testing.assert_allclose(res, expected, rtol=1e-15, atol=1e-15)
    gx = np.ones_like(x)
    cpu.unary_backward_chunk(code, x, x, g, gx, 0.0, 0.0, True)
    np.testing.assert_allclose(gx, 1.0 + expected, rtol=1e-15, atol=1e-15)
    gx = np.full_like(x, np.nan)  # a region without a cotangent yet may hold anything: it is stored into
    cpu.unary_backward_chunk(code, x, x, g, gx, 0.0, 0.0, False)
    np.testing.assert_allclose(gx, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_use_them_at_every_size_and_layout(dtype):
    """ad.sin / ad.cos forward, backward and JVP agree with numpy for small, big, strided and 2-D tensors."""
    rng = np.random.default_rng(5)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    for shape in [(), (7,), (3, 5), (300_000,)]:
        base = rng.uniform(-30, 30, shape).astype(dtype)
        for fn, ref, deriv in ((ad.sin, np.sin, np.cos), (ad.cos, np.cos, lambda v: -np.sin(v))):
            x = ad.tensor(base, requires_grad=True)
            y = fn(x)
            np.testing.assert_allclose(y.detach().numpy(), ref(base), rtol=tol, atol=tol)
            y.sum().backward()
            np.testing.assert_allclose(x.grad.numpy(), deriv(base), rtol=tol, atol=tol)
            assert y.dtype == x.grad.dtype == ad.tensor(base).dtype
            with fwAD.dual_level():
                t = rng.standard_normal(shape).astype(dtype)
                jv = fwAD.unpack_dual(fn(fwAD.make_dual(ad.tensor(base), ad.tensor(t)))).tangent
            np.testing.assert_allclose(jv.numpy(), t * deriv(base), rtol=tol * 10, atol=tol * 10)
    strided = ad.tensor(rng.uniform(-5, 5, (40, 6)))[:, ::2]
    np.testing.assert_allclose(ad.sin(strided).numpy(), np.sin(strided.numpy()), rtol=1e-15, atol=1e-15)


# --- exp and tanh: against long double references (numpy's float64 exp and tanh are themselves ~1 ulp) ----


@njit(cache=False, error_model="numpy")
def _exp_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = vmath.exp(x[i])


@njit(cache=False, error_model="numpy")
def _tanh_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = vmath.tanh(x[i])


def _exp_tanh_arguments():
    rng = np.random.default_rng(11)
    return {
        "unit": rng.uniform(-2.0, 2.0, 100_000),
        "wide": rng.uniform(-700.0, 700.0, 100_000),
        "near overflow": rng.uniform(700.0, 709.78, 10_000),
        "subnormal results": rng.uniform(-745.13, -708.0, 10_000),
        "tiny": rng.standard_normal(10_000) * 1e-9,
        "tanh's switch": np.concatenate([np.linspace(0.6, 0.65, 5000), -np.linspace(0.6, 0.65, 5000)]),
    }


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 60, reason="needs an extended-precision long double")
@pytest.mark.parametrize("kind", list(_exp_tanh_arguments()))
def test_exp_and_tanh_within_one_ulp(kind):
    x = _exp_tanh_arguments()[kind]
    out = np.empty_like(x)
    with np.errstate(over="ignore"):
        _exp_loop(x, out)
        expected = np.exp(x.astype(np.longdouble))
        normal = np.abs(expected) >= np.finfo(np.float64).tiny
        assert _ulps(out[normal], expected[normal].astype(np.float64)).max() <= 1.0
        # subnormal results: within one subnormal step of the correctly rounded one (rounded twice, see vmath)
        assert np.abs(out[~normal] - expected[~normal].astype(np.float64)).max(initial=0.0) <= 5e-324
    _tanh_loop(x, out)
    expected = np.tanh(x.astype(np.longdouble)).astype(np.float64)
    nonzero = expected != 0
    assert _ulps(out[nonzero], expected[nonzero]).max() <= 2.0
    assert np.array_equal(np.signbit(out), np.signbit(expected))


def test_exp_and_tanh_special_values_equal_libm():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 709.78, 709.79, -745.13, -745.14, 1e-320, -1e-320,
                  19.5, -19.5, 20.5, 1e300, -1e300])
    for loop, ref in ((_exp_loop, np.exp), (_tanh_loop, np.tanh)):
        out = np.empty_like(x)
        loop(x, out)
        with np.errstate(over="ignore"):
            expected = ref(x)
        np.testing.assert_array_equal(out, expected)  # (NaN where NaN)
        assert np.array_equal(np.signbit(out), np.signbit(expected))
