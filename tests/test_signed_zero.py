"""The scalar forms of + - * / keep IEEE's (and torch's) sign of zero, NaN and infinity on every path.

``x + c``, ``c + x``, ``x - c``, ``c - x``, ``x * c`` and ``x / c`` with a Python number ``c`` are recorded as one
affine row ``a * x + b``. Its kernels skip the addition for a multiplication, which records ``b = -0.0``
(``x * a + (-0.0)`` is ``x * a`` for every x); a ``+0.0`` shift is added, so ``x + 0.0`` at ``x = -0.0`` is
``+0.0`` and ``0.0 - x`` at ``x = 0.0`` is ``+0.0``, as numpy's ufuncs (IEEE arithmetic) and torch give.

Each form's expected value is the numpy ufunc of the op it stands for, compared bit for bit (sign of zero
included, NaN where NaN): eagerly (no grad, a leaf, a recorded result, float32, a big vectorized row), under
``ad.compile`` (small rows, big rows, and a fused run of big rows), and in forward mode. The derivative is the
constant ``a`` at every point (zeros, infinities and NaN too), by reverse and forward mode. With torch
installed, the table is checked against torch too. CUDA: tests/cuda/test_cuda_signed_zero.py.

``POINTS``: other ops at zeros, infinities and NaN where a formula once lost a sign or swallowed a NaN
(values and derivatives stated analytically, as torch gives them), eagerly and under ``ad.compile``.
"""

import math

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F
from ad.parallel import PARALLEL_MIN
from ad.tape import BIG_ROW

# x * 0.0 at infinity and NaN operands: numpy's invalid-value warnings are expected here
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

SPECIAL = np.array([0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan])

# (id, fn(x) for ad and torch tensors, the same on a numpy array by the op it stands for, derivative)
FORMS = [
    ("x+0.0", lambda x: x + 0.0, lambda v: np.add(v, 0.0), 1.0),
    ("0.0+x", lambda x: 0.0 + x, lambda v: np.add(0.0, v), 1.0),
    ("x+(-0.0)", lambda x: x + (-0.0), lambda v: np.add(v, -0.0), 1.0),
    ("x-0.0", lambda x: x - 0.0, lambda v: np.subtract(v, 0.0), 1.0),
    ("x-(-0.0)", lambda x: x - (-0.0), lambda v: np.subtract(v, -0.0), 1.0),
    ("0.0-x", lambda x: 0.0 - x, lambda v: np.subtract(0.0, v), -1.0),
    ("-0.0-x", lambda x: -0.0 - x, lambda v: np.subtract(-0.0, v), -1.0),
    ("0-x", lambda x: 0 - x, lambda v: np.subtract(0.0, v), -1.0),
    ("1.0-x", lambda x: 1.0 - x, lambda v: np.subtract(1.0, v), -1.0),
    ("-x", lambda x: -x, np.negative, -1.0),
    ("x*1.0", lambda x: x * 1.0, lambda v: np.multiply(v, 1.0), 1.0),
    ("x*-1.0", lambda x: x * -1.0, lambda v: np.multiply(v, -1.0), -1.0),
    ("x*0.0", lambda x: x * 0.0, lambda v: np.multiply(v, 0.0), 0.0),
    ("x/1.0", lambda x: x / 1.0, lambda v: np.divide(v, 1.0), 1.0),
    ("x/-2.0", lambda x: x / -2.0, lambda v: np.divide(v, -2.0), -0.5),
    # x / c is x * (1 / c) only where 1 / c is a normal number; else a division (0 / 1e-310 is 0, not 0 * inf)
    ("x/1e-310", lambda x: x / 1e-310, lambda v: np.divide(v, 1e-310), math.inf),
    ("x/1.7e308", lambda x: x / 1.7e308, lambda v: np.divide(v, 1.7e308), 1.0 / 1.7e308),
    ("x/inf", lambda x: x / math.inf, lambda v: np.divide(v, math.inf), 0.0),
    ("x*2.0+0.0", lambda x: x * 2.0 + 0.0, lambda v: np.add(np.multiply(v, 2.0), 0.0), 2.0),
    ("x.add(0.0)", lambda x: x.add(0.0), lambda v: np.add(v, 0.0), 1.0),
    ("x.sub(0.0,alpha=-1)", lambda x: x.sub(0.0, alpha=-1), lambda v: np.subtract(v, -0.0), 1.0),
    ("rsub(x,0.0)", lambda x: x.__rsub__(0.0), lambda v: np.subtract(0.0, v), -1.0),
]
IDS = [f[0] for f in FORMS]
BY_ID = {f[0]: f for f in FORMS}


def _same_bits(got, want):
    """Equal values, NaN where NaN, and the same sign of every zero."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    number = ~np.isnan(want)  # (a NaN's sign bit is not specified)
    return (
        got.shape == want.shape
        and np.array_equal(got, want, equal_nan=True)
        and np.array_equal(np.signbit(got[number]), np.signbit(want[number]))
    )


def _check(got, want, what):
    assert _same_bits(got, want), f"{what}: got {np.asarray(got)}, want {np.asarray(want)}"


def _expected(name, x):
    with np.errstate(all="ignore"):
        return BY_ID[name][2](x)


@pytest.mark.parametrize("name", IDS)
def test_eager_values_and_derivatives(name):
    fn, d = BY_ID[name][1], BY_ID[name][3]
    want = _expected(name, SPECIAL)
    _check(fn(ad.tensor(SPECIAL)).numpy(), want, "no grad")
    _check(fn(ad.tensor(SPECIAL.astype(np.float32))).numpy(), _expected(name, SPECIAL.astype(np.float32)), "f32")
    x = ad.tensor(SPECIAL, requires_grad=True)
    for what, y in (("leaf", fn(x)), ("recorded result", fn(x.clone()))):
        _check(y.detach().numpy(), want, what)
        (g,) = ad.autograd.grad(y, x, ad.ones_like(y))
        _check(g.numpy(), np.full(SPECIAL.shape, d), f"{what}: derivative")
    x32 = ad.tensor(SPECIAL.astype(np.float32), requires_grad=True)
    _check(fn(x32.clone()).detach().numpy(), _expected(name, SPECIAL.astype(np.float32)), "f32 recorded")
    big = np.resize(SPECIAL, BIG_ROW + 3)  # a row swept with numpy's vectorized loops
    _check(fn(ad.tensor(big, requires_grad=True).clone()).detach().numpy(), _expected(name, big), "big row")


@pytest.mark.parametrize("name", IDS)
def test_forward_mode(name):
    fn, d = BY_ID[name][1], BY_ID[name][3]
    want = _expected(name, SPECIAL)
    for requires_grad in (False, True):  # the compiled JVP path, and the rule path
        with fwAD.dual_level():
            x = fwAD.make_dual(ad.tensor(SPECIAL, requires_grad=requires_grad), ad.ones(SPECIAL.shape))
            primal, tangent = fwAD.unpack_dual(fn(x))
            _check(primal.detach().numpy(), want, f"primal (requires_grad={requires_grad})")
            _check(tangent.detach().numpy(), np.full(SPECIAL.shape, d), f"tangent (requires_grad={requires_grad})")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", IDS)
def test_compiled(name):
    """Replayed rows: small (the row-by-row kernel), big (numpy blocks), and a run of big rows (chain_forward)."""
    fn, d = BY_ID[name][1], BY_ID[name][3]
    once = ad.compile(lambda x: fn(x.clone()))
    twice = ad.compile(lambda x: fn(fn(x * 1.0)))  # a run of big rows is fused (ad/chain_forward.py)
    for values, step, want in (
        (SPECIAL, once, _expected(name, SPECIAL)),
        (np.resize(SPECIAL, BIG_ROW + 3), once, None),
        (np.resize(SPECIAL, PARALLEL_MIN + 3), twice, None),
    ):
        if want is None:
            want = _expected(name, values) if step is once else _expected(name, _expected(name, values))
        for _ in range(3):  # record, then replay
            x = ad.tensor(values, requires_grad=True)
            y = step(x)
            (g,) = ad.autograd.grad(y, x, ad.ones_like(y))
            _check(y.detach().numpy(), want, f"compiled, {values.size} elements")
            slope = d if step is once else d * d
            _check(g.numpy(), np.full(values.shape, slope), f"compiled derivative, {values.size} elements")


def test_multiplication_records_a_negative_zero_shift():
    """The exactness the multiply-only shortcut relies on: x * a + (-0.0) == x * a bit for bit, for every x and a
    (the shortcut skips the addition only for b = -0.0; a +0.0 shift changes -0.0 to +0.0 and is added)."""
    xs = np.concatenate([SPECIAL, [5e-324, -5e-324, 1e308, -1e308, 2.2250738585072014e-308]])
    x, a = np.meshgrid(xs, xs)
    with np.errstate(all="ignore"):
        _check(x * a + (-0.0), x * a, "x * a + (-0.0)")
        assert not _same_bits(np.float64(-0.0) * 1.0 + 0.0, np.float64(-0.0) * 1.0)


def test_table_is_torch():
    torch = pytest.importorskip("torch")
    for name, fn, _, d in FORMS:
        x = torch.tensor(SPECIAL, requires_grad=True)
        y = fn(x)
        y.backward(torch.ones_like(y))
        _check(_expected(name, SPECIAL), y.detach().numpy(), f"{name}: numpy's table vs torch")
        _check(np.full(SPECIAL.shape, d), x.grad.numpy(), f"{name}: derivative vs torch")


NAN, INF = math.nan, math.inf
# (id, fn(M, F, x) for M = ad or torch, x, value, derivative of fn(x).sum())
POINTS = [
    # erfinv is odd: erfinv(-0.0) is -0.0 (scipy's is +0.0)
    ("erfinv", lambda M, F, x: M.erfinv(x), [-0.0, 0.0, NAN], [-0.0, 0.0, NAN], [0.5 * math.sqrt(math.pi)] * 2 + [NAN]),
    # NaN is outside [-lambd, lambd]: it passes through with slope 1, never becomes 0
    ("hardshrink", lambda M, F, x: F.hardshrink(x), [NAN, 0.5, -0.5, 1.0], [NAN, 0.0, 0.0, 1.0], [1.0, 0, 0, 1]),
    # ... and softshrink's 0 between has the sign of x
    ("softshrink", lambda M, F, x: F.softshrink(x), [NAN, 0.5, -0.5, 1.0], [NAN, 0.0, -0.0, 0.5], [1.0, 0, 0, 1]),
    # hardswish is 0 up to -3 and x from 3: slopes 0 and 1 at -inf and inf (not NaN from the masked quadratic);
    # torch's value at -inf is NaN (-inf * 0), ad's 0 (README: deliberate differences)
    ("hardswish", lambda M, F, x: F.hardswish(x), [INF, -INF, 0.0], [INF, 0.0, 0.0], [1.0, 0.0, 0.5]),
    ("logsigmoid", lambda M, F, x: F.logsigmoid(x), [INF, -INF], [0.0, -INF], [0.0, 1.0]),
]
POINT_IDS = [p[0] for p in POINTS]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", POINT_IDS)
def test_points(name):
    _, fn, x0, value, slope = next(p for p in POINTS if p[0] == name)
    x0 = np.array(x0)
    step = ad.compile(lambda x: fn(ad, F, x))
    for _ in range(3):  # eager, then recorded and replayed
        for run in (lambda x: fn(ad, F, x), step):
            x = ad.tensor(x0, requires_grad=True)
            y = run(x)
            (g,) = ad.autograd.grad(y.sum(), x)
            _check(y.detach().numpy(), np.array(value), f"{name} value")
            np.testing.assert_allclose(g.numpy(), slope, rtol=1e-15, err_msg=f"{name} derivative")


@pytest.mark.parametrize("name", POINT_IDS)
def test_points_are_torch(name):
    torch = pytest.importorskip("torch")
    _, fn, x0, value, slope = next(p for p in POINTS if p[0] == name)
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    y = fn(torch, torch.nn.functional, x)
    y.sum().backward()
    value = np.array(value)
    if name == "hardswish":
        value[1] = NAN  # torch's hardswish(-inf) is -inf * 0 (the one value here where ad is deliberately not torch)
    _check(y.detach().numpy(), value, f"{name}: torch's value")
    np.testing.assert_allclose(x.grad.numpy(), slope, rtol=1e-15, err_msg=f"{name}: torch's derivative")
