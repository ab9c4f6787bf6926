"""Forward mode on the compiled path, checked independently of reverse mode (issue 16, item 2).

The compiled JVP kernels (``kernels.cpu.jvp_unary`` / ``jvp_binary``) read the same per-element partials from
``kernels/pointwise.py`` as the reverse sweep, so comparing forward with reverse cannot see a wrong formula.
These tests compare forward mode with what does not share that source:

- ``test_compiled_forward_matches_finite_differences``: every op-table case, its inputs plain (not requiring
  grad, so that elementwise ops take the compiled path), one random tangent per input, against central
  differences of the primal function along the tangents;
- ``test_elementwise_jvp_is_compiled_and_analytic``: each elementwise op against its derivative written here
  in numpy (``ANALYTIC``), checking that the compiled kernel computed it (a spy on the kernel entry points).
"""

import numpy as np
import pytest
import scipy.special
from test_op_table import ALL_CASES, _case, _domain

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F
from ad.ops import OPS
from kernels import cpu

EPS = 1e-6


def _plain_inputs(name, shapes, seed):
    lo, hi = _domain(name)
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi, size=s) for s in shapes]


def _primal(fn, arrays):
    with ad.no_grad():
        return np.asarray(fn(*[ad.tensor(a) for a in arrays]).numpy(), np.float64)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_compiled_forward_matches_finite_differences(name):
    fn, shapes, tol = _case(name)
    xs = _plain_inputs(name, shapes, seed=11)
    rng = np.random.default_rng(12)
    vs = [rng.standard_normal(x.shape) for x in xs]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(ad.tensor(x), ad.tensor(v)) for x, v in zip(xs, vs)]
        out = fwAD.unpack_dual(fn(*duals))
        tangent = out.tangent.numpy()
    eps = tol["eps"]
    plus = _primal(fn, [x + eps * v for x, v in zip(xs, vs)])
    minus = _primal(fn, [x - eps * v for x, v in zip(xs, vs)])
    np.testing.assert_allclose(out.primal.numpy(), _primal(fn, xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tangent, (plus - minus) / (2 * eps), rtol=10 * tol["rtol"], atol=10 * tol["atol"])


def _sigmoid(x):
    return scipy.special.expit(x)


# op -> (function of the ad input tensors, shapes, d out / d input per input, written in numpy)
ANALYTIC = {
    "copy": (lambda x: x.clone(), 1, lambda x: (np.ones_like(x),)),
    "neg": (lambda x: -x, 1, lambda x: (-np.ones_like(x),)),
    "abs": (lambda x: x.abs(), 1, lambda x: (np.sign(x),)),
    "exp": (lambda x: x.exp(), 1, lambda x: (np.exp(x),)),
    "log": (lambda x: x.log(), 1, lambda x: (1 / x,)),
    "log1p": (lambda x: x.log1p(), 1, lambda x: (1 / (1 + x),)),
    "expm1": (lambda x: x.expm1(), 1, lambda x: (np.exp(x),)),
    "sqrt": (lambda x: x.sqrt(), 1, lambda x: (0.5 / np.sqrt(x),)),
    "rsqrt": (lambda x: x.rsqrt(), 1, lambda x: (-0.5 * x**-1.5,)),
    "sin": (lambda x: x.sin(), 1, lambda x: (np.cos(x),)),
    "cos": (lambda x: x.cos(), 1, lambda x: (-np.sin(x),)),
    "tan": (lambda x: x.tan(), 1, lambda x: (1 / np.cos(x) ** 2,)),
    "tanh": (lambda x: x.tanh(), 1, lambda x: (1 / np.cosh(x) ** 2,)),
    "sigmoid": (lambda x: x.sigmoid(), 1, lambda x: (_sigmoid(x) * _sigmoid(-x),)),
    "relu": (lambda x: x.relu(), 1, lambda x: ((x > 0).astype(float),)),
    "erf": (lambda x: x.erf(), 1, lambda x: (2 / np.sqrt(np.pi) * np.exp(-(x**2)),)),
    "square": (lambda x: x.square(), 1, lambda x: (2 * x,)),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), 1, lambda x: (((x > -0.5) & (x < 0.7)).astype(float),)),
    "affine": (lambda x: 2.5 * x + 1.0, 1, lambda x: (np.full_like(x, 2.5),)),
    "pow_scalar": (lambda x: x**3.0 + x**0.5 + x**-1.5, 1, lambda x: (3 * x**2 + 0.5 * x**-0.5 - 1.5 * x**-2.5,)),
    "rpow_scalar": (lambda x: 2.0**x, 1, lambda x: (2.0**x * np.log(2.0),)),
    "rdiv_scalar": (lambda x: 3.0 / x, 1, lambda x: (-3.0 / x**2,)),
    "add": (lambda x, y: x + y, 2, lambda x, y: (np.ones_like(x), np.ones_like(y))),
    "sub": (lambda x, y: x - y, 2, lambda x, y: (np.ones_like(x), -np.ones_like(y))),
    "mul": (lambda x, y: x * y, 2, lambda x, y: (y, x)),
    "div": (lambda x, y: x / y, 2, lambda x, y: (1 / y, -x / y**2)),
    "pow": (lambda x, y: x**y, 2, lambda x, y: (y * x ** (y - 1), x**y * np.log(x))),
    "maximum": (lambda x, y: ad.maximum(x, y), 2, lambda x, y: ((x > y).astype(float), (y > x).astype(float))),
    "minimum": (lambda x, y: ad.minimum(x, y), 2, lambda x, y: ((x < y).astype(float), (y < x).astype(float))),
    "tanh_backward": (lambda g, y: ad.ops.tanh_backward(g, y), 2, lambda g, y: (1 - y**2, -2 * g * y)),
    # issue 13's elementwise ops: the derivatives from calculus, written out independently of kernels/pointwise.py
    "atan": (lambda x: x.atan(), 1, lambda x: (1 / (1 + x**2),)),
    "asin": (lambda x: x.asin(), 1, lambda x: (1 / np.sqrt(1 - x**2),)),
    "acos": (lambda x: x.acos(), 1, lambda x: (-1 / np.sqrt(1 - x**2),)),
    "sinh": (lambda x: x.sinh(), 1, lambda x: (np.cosh(x),)),
    "cosh": (lambda x: x.cosh(), 1, lambda x: (np.sinh(x),)),
    "asinh": (lambda x: x.asinh(), 1, lambda x: (1 / np.sqrt(x**2 + 1),)),
    "acosh": (lambda x: x.acosh(), 1, lambda x: (1 / np.sqrt(x**2 - 1),)),
    "atanh": (lambda x: x.atanh(), 1, lambda x: (1 / (1 - x**2),)),
    "log2": (lambda x: x.log2(), 1, lambda x: (1 / (x * np.log(2.0)),)),
    "log10": (lambda x: x.log10(), 1, lambda x: (1 / (x * np.log(10.0)),)),
    "exp2": (lambda x: x.exp2(), 1, lambda x: (2.0**x * np.log(2.0),)),
    "erfc": (lambda x: x.erfc(), 1, lambda x: (-2 / np.sqrt(np.pi) * np.exp(-(x**2)),)),
    "erfinv": (lambda x: x.erfinv(), 1, lambda x: (np.sqrt(np.pi) / 2 * np.exp(scipy.special.erfinv(x) ** 2),)),
    "logit": (lambda x: x.logit(), 1, lambda x: (1 / (x * (1 - x)),)),
    "sinc": (
        lambda x: x.sinc(),
        1,
        lambda x: ((np.pi * x * np.cos(np.pi * x) - np.sin(np.pi * x)) / (np.pi * x**2),),
    ),
    "floor": (lambda x: x.floor(), 1, lambda x: (np.zeros_like(x),)),
    "ceil": (lambda x: x.ceil(), 1, lambda x: (np.zeros_like(x),)),
    "round": (lambda x: x.round(), 1, lambda x: (np.zeros_like(x),)),
    "trunc": (lambda x: x.trunc(), 1, lambda x: (np.zeros_like(x),)),
    "sign": (lambda x: x.sign(), 1, lambda x: (np.zeros_like(x),)),
    "atan2": (lambda x, y: ad.atan2(x, y), 2, lambda x, y: (y / (x**2 + y**2), -x / (x**2 + y**2))),
    "hypot": (lambda x, y: ad.hypot(x, y), 2, lambda x, y: (x / np.hypot(x, y), y / np.hypot(x, y))),
    "fmod": (lambda x, y: ad.fmod(x, y), 2, lambda x, y: (np.ones_like(x), -np.trunc(x / y))),
    "remainder": (lambda x, y: ad.remainder(x, y), 2, lambda x, y: (np.ones_like(x), -np.floor(x / y))),
    "copysign": (
        lambda x, y: ad.copysign(x, y),
        2,
        lambda x, y: (np.sign(x) * np.copysign(1.0, y), np.zeros_like(y)),
    ),
    "logaddexp": (
        lambda x, y: ad.logaddexp(x, y),
        2,
        lambda x, y: (np.exp(x) / (np.exp(x) + np.exp(y)), np.exp(y) / (np.exp(x) + np.exp(y))),
    ),
    "xlogy": (lambda x, y: ad.xlogy(x, y), 2, lambda x, y: (np.log(y), x / y)),
    "binary_cross_entropy_with_logits": (
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
        2,
        lambda x, y: (_sigmoid(x) - y, -x),
    ),
    # the activations recorded as one row each (ad/ops/activation_ops.py)
    "silu": (lambda x: F.silu(x), 1, lambda x: (_sigmoid(x) * (1 + x * _sigmoid(-x)),)),
    "gelu": (lambda x: F.gelu(x), 1, lambda x: (scipy.special.ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi),)),
    "mish": (
        lambda x: F.mish(x),
        1,
        lambda x: (np.tanh(np.logaddexp(0, x)) + x * _sigmoid(x) / np.cosh(np.logaddexp(0, x)) ** 2,),
    ),
    "elu": (lambda x: F.elu(x, alpha=1.5), 1, lambda x: (np.where(x > 0, 1.0, 1.5 * np.exp(x)),)),
    "celu": (lambda x: F.celu(x, alpha=2.0), 1, lambda x: (np.where(x > 0, 1.0, np.exp(x / 2.0)),)),
}


def _elementwise_ops():
    """The table's elementwise ops: unary ones declare a partial, binary ones the shared binary VJP."""
    return {name for name, op in OPS.items() if op.partial is not None or op.vjp is ad.ops._binary_vjp}


def test_every_elementwise_op_has_an_analytic_derivative():
    missing = sorted(_elementwise_ops() - set(ANALYTIC))
    assert not missing, f"elementwise ops without an entry in ANALYTIC: {missing}"


@pytest.mark.parametrize("name", sorted(ANALYTIC))
def test_elementwise_jvp_is_compiled_and_analytic(name, monkeypatch):
    fn, arity, derivative = ANALYTIC[name]
    lo, hi = OPS[name].sample or (-2.0, 2.0)
    rng = np.random.default_rng(21)
    xs = [rng.uniform(lo, hi, size=(3, 4)) for _ in range(arity)]
    called = []
    for kernel in ("jvp_unary", "jvp_binary"):
        real = getattr(cpu, kernel)
        monkeypatch.setattr(cpu, kernel, lambda code, *a, _real=real: (called.append(code), _real(code, *a))[1])
    expected = derivative(*xs)
    for j in range(arity):
        with fwAD.dual_level():
            duals = [ad.tensor(x) for x in xs]
            duals[j] = fwAD.make_dual(duals[j], ad.tensor(np.ones_like(xs[j])))
            tangent = fwAD.unpack_dual(fn(*duals)).tangent.numpy()
        np.testing.assert_allclose(tangent, expected[j], rtol=1e-12, atol=1e-12, err_msg=f"{name}: d/d input {j}")
    assert OPS[name].code in called, f"{name}: the compiled JVP kernel did not compute the tangent"
