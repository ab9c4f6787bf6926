"""Parity table of the elementwise family (ad/ops/elementwise.py, pointwise_ops.py) and the reductions
(ad/reductions.py) for tests/test_torch_parity.py.

Each entry maps to the same torch function. Inputs are composed into the op's domain (``x * x + 1`` for logs,
``x.tanh() * 0.9`` for inverse trigonometry) and moved off kinks and jumps by an irrational-looking offset
(leaves are multiples of 0.001). Reductions keep their dimension, so the result broadcasts with every other
value of a program (shapes stay among those that broadcast to (2, 3)).
"""

from test_torch_parity import OpSpec

_OFF = 0.000371  # moves a multiple of 0.001 off an integer / a kink


def _pos(x):
    return x * x + 0.5


def _apart(y):
    """``y`` moved off ``x`` when both are the same value (ties are kinks; torch 2.13's fmax/fmin even give a
    forward-mode tangent from ``other`` and a reverse gradient to ``self`` at a tie)."""
    return y * 1.0001 + _OFF


def _spread(L, x):
    """``x`` with its last dimension made distinct (ties of max, sort and friends are kinks: the index each library
    picks, hence the gradient, is not specified)."""
    return x + L.tensor([0.0, 0.000371, 0.000742], dtype=L.float64)


def _unit(x):
    return x.tanh() * 0.9


def _ramp(L, x):
    """0, 0.5, 1, ... in ``x``'s shape (a constant)."""
    return 0.5 * L.arange(x.numel(), dtype=L.float64).reshape(x.shape)


PARITY_OPS = [
    # ---- unary elementwise (in-place twins where the method is safe on any value)
    OpSpec("abs", 1, lambda L, x: (x + _OFF).abs()),
    OpSpec("acos", 1, lambda L, x: _unit(x).acos()),
    OpSpec("asin", 1, lambda L, x: _unit(x).asin()),
    OpSpec("atan", 1, lambda L, x: x.atan(), inplace="atan_"),
    OpSpec("atanh", 1, lambda L, x: _unit(x).atanh()),
    OpSpec("acosh", 1, lambda L, x: (x * x + 1.5).acosh()),
    OpSpec("asinh", 1, lambda L, x: x.asinh()),  # (torch 2.13: asinh_ has no forward-mode formula)
    OpSpec("sinh", 1, lambda L, x: x.tanh().sinh(), inplace="sin_"),
    OpSpec("cosh", 1, lambda L, x: x.tanh().cosh()),
    OpSpec("tan", 1, lambda L, x: x.tanh().tan(), inplace="tanh_"),
    OpSpec("erf", 1, lambda L, x: x.erf(), inplace="erf_"),
    OpSpec("erfc", 1, lambda L, x: x.erfc()),
    OpSpec("erfinv", 1, lambda L, x: _unit(x).erfinv()),
    OpSpec("exp2", 1, lambda L, x: x.tanh().exp2()),
    OpSpec("expm1", 1, lambda L, x: x.tanh().expm1()),
    OpSpec("log1p", 1, lambda L, x: (x * x).log1p()),
    OpSpec("log2", 1, lambda L, x: _pos(x).log2()),
    OpSpec("log10", 1, lambda L, x: _pos(x).log10()),
    OpSpec("logit", 1, lambda L, x: (x.sigmoid() * 0.8 + 0.1).logit()),
    OpSpec("rsqrt", 1, lambda L, x: _pos(x).rsqrt()),
    OpSpec("reciprocal", 1, lambda L, x: _pos(x).reciprocal()),
    OpSpec("sinc", 1, lambda L, x: (x * x + 0.3).sinc()),  # (near 0 its higher derivatives cancel badly)
    OpSpec("sigmoid_", 1, lambda L, x: x.sigmoid(), inplace="sigmoid_"),
    OpSpec("neg_", 1, lambda L, x: x.neg(), inplace="neg_"),
    OpSpec("square_fn", 1, lambda L, x: L.square(x), inplace="square_"),
    OpSpec("floor", 1, lambda L, x: (x * 1.3 + _OFF).floor() * x),
    OpSpec("ceil", 1, lambda L, x: (x * 1.3 + _OFF).ceil() * x),
    OpSpec("trunc", 1, lambda L, x: (x * 1.3 + _OFF).trunc() * x),
    OpSpec("round", 1, lambda L, x: (x * 1.3 + _OFF).round() * x),
    OpSpec("frac", 1, lambda L, x: (x * 1.3 + _OFF).frac()),
    OpSpec("sign", 1, lambda L, x: (x + _OFF).sign() * x),
    OpSpec("deg2rad", 1, lambda L, x: x.deg2rad(), inplace="deg2rad_"),
    OpSpec("rad2deg", 1, lambda L, x: x.rad2deg() * 0.01),
    OpSpec("clamp", 1, lambda L, x: (x * 1.3 + _OFF).clamp(-0.5, 0.7)),
    OpSpec("clamp_min", 1, lambda L, x: (x * 1.3 + _OFF).clamp(min=-0.2)),
    OpSpec("lgamma", 1, lambda L, x: _pos(x).lgamma()),
    OpSpec("digamma", 1, lambda L, x: _pos(x).digamma()),
    OpSpec("polygamma", 1, lambda L, x: L.polygamma(1, _pos(x))),
    OpSpec("nan_to_num", 1, lambda L, x: x.nan_to_num()),
    # ---- torch.special (ad/special_functions.py); i0e and i1e have a kink at 0 (their rules read sgn(x))
    OpSpec("i0", 1, lambda L, x: x.i0(), inplace="i0_"),
    OpSpec("special_i0e", 1, lambda L, x: L.special.i0e(x + _OFF)),
    OpSpec("special_i1", 1, lambda L, x: L.special.i1(x)),
    OpSpec("special_i1e", 1, lambda L, x: L.special.i1e(x + _OFF)),
    OpSpec("special_ndtr", 1, lambda L, x: L.special.ndtr(x)),
    OpSpec("special_ndtri", 1, lambda L, x: L.special.ndtri(x.sigmoid() * 0.8 + 0.1)),
    OpSpec("special_log_ndtr", 1, lambda L, x: L.special.log_ndtr(x)),
    OpSpec("special_erfcx", 1, lambda L, x: L.special.erfcx(x)),
    OpSpec("special_entr", 1, lambda L, x: L.special.entr(_pos(x))),
    OpSpec("special_multigammaln", 1, lambda L, x: L.special.multigammaln(_pos(x) + 1.0, 2)),
    OpSpec("angle", 1, lambda L, x: (x + _OFF).angle() * x),
    # (zeta, igamma, igammac: differentiable in `other` only, and torch 2.13 has no forward-mode formula at all)
    OpSpec("special_zeta", 1, lambda L, x: L.special.zeta(2.5, _pos(x)), forward_ad=False),
    OpSpec("igamma", 1, lambda L, x: L.igamma(L.ones_like(x) * 1.5, _pos(x)), forward_ad=False),
    OpSpec("igammac", 1, lambda L, x: L.igammac(L.ones_like(x) * 1.5, _pos(x)), forward_ad=False),
    OpSpec("pow_scalar", 1, lambda L, x: x**3),
    OpSpec("rpow_scalar", 1, lambda L, x: 2.0 ** x.tanh()),
    OpSpec("rdiv_scalar", 1, lambda L, x: 1.0 / _pos(x)),
    OpSpec("affine", 1, lambda L, x: 0.5 - x * 3.0),
    # ---- binary elementwise
    OpSpec("atan2", 2, lambda L, x, y: L.atan2(x, y * y + 1)),  # (atan2_ would take y raw: a pole at 0, 0)
    OpSpec("hypot", 2, lambda L, x, y: L.hypot(x, y * y + 0.1)),
    OpSpec("copysign", 2, lambda L, x, y: L.copysign(_pos(x) - 1.0, y + _OFF)),  # (x = 0 is a kink: torch NaN)
    OpSpec("fmod", 2, lambda L, x, y: L.fmod(x * 1.3 + _OFF, y * y + 1.5)),
    OpSpec("remainder", 2, lambda L, x, y: L.remainder(x * 1.3 + _OFF, y * y + 1.5)),
    OpSpec("logaddexp", 2, lambda L, x, y: L.logaddexp(x, y)),
    OpSpec("xlogy", 2, lambda L, x, y: L.xlogy(x, _pos(y))),
    OpSpec("special_xlog1py", 2, lambda L, x, y: L.special.xlog1py(x, y * y)),
    OpSpec("maximum", 2, lambda L, x, y: L.maximum(x, _apart(y))),
    OpSpec("minimum", 2, lambda L, x, y: L.minimum(x, _apart(y))),
    OpSpec("fmax", 2, lambda L, x, y: L.fmax(x, _apart(y))),
    OpSpec("fmin", 2, lambda L, x, y: L.fmin(x, _apart(y))),
    OpSpec("lerp", 2, lambda L, x, y: L.lerp(x, y, 0.3), inplace=None),
    OpSpec("addcmul", 2, lambda L, x, y: L.addcmul(x, x, y, value=0.5)),
    OpSpec("addcdiv", 2, lambda L, x, y: L.addcdiv(x, x, _pos(y), value=0.5)),
    OpSpec("div_floor_free", 2, lambda L, x, y: L.div(x, _pos(y))),
    OpSpec("true_divide", 2, lambda L, x, y: x.div(_pos(y), rounding_mode=None)),
    # ---- reductions (keepdim: the result broadcasts back)
    OpSpec("sum_dim", 1, lambda L, x: x.sum(-1, keepdim=True)),
    OpSpec("mean_dim", 1, lambda L, x: x.mean(dim=-1, keepdim=True)),
    OpSpec("mean_all", 1, lambda L, x: x.mean()),
    OpSpec("var", 1, lambda L, x: x.var(dim=-1, keepdim=True, correction=0)),
    # (distinct values along dim 0: std at zero variance is a kink whose computed tangent is rounding noise,
    # -1e-16 against torch's -1.09 for three equal leaves; seed 1461224659)
    OpSpec("std", 1, lambda L, x: (x * x + x + _ramp(L, x)).std(dim=0, keepdim=True, correction=0)),
    OpSpec("var_all", 1, lambda L, x: L.var(x, correction=0)),
    OpSpec("prod", 1, lambda L, x: x.prod(-1, keepdim=True)),
    OpSpec("prod_all", 1, lambda L, x: x.tanh().prod()),
    OpSpec("amax", 1, lambda L, x: _spread(L, x).amax(-1, keepdim=True)),
    OpSpec("amin", 1, lambda L, x: _spread(L, x).amin(dim=0, keepdim=True)),
    OpSpec("max_dim", 1, lambda L, x: _spread(L, x).max(dim=-1, keepdim=True).values),
    OpSpec("min_dim", 1, lambda L, x: _spread(L, x).min(dim=0, keepdim=True)[0]),
    OpSpec("max_all", 1, lambda L, x: _spread(L, x).max()),
    OpSpec("logsumexp", 1, lambda L, x: x.logsumexp(-1, keepdim=True)),
    OpSpec("norm", 1, lambda L, x: (x * x + 0.1).norm(dim=-1, keepdim=True)),
    OpSpec("cumsum", 1, lambda L, x: x.cumsum(-1)),
    OpSpec("cumprod", 1, lambda L, x: x.tanh().cumprod(0)),
    OpSpec("logcumsumexp", 1, lambda L, x: x.logcumsumexp(-1)),
    OpSpec("cummax", 1, lambda L, x: _spread(L, x).cummax(-1).values),
    OpSpec("cummin", 1, lambda L, x: _spread(L, x).cummin(0)[0]),
    OpSpec("nansum", 1, lambda L, x: x.nansum(-1, keepdim=True)),
    OpSpec("nanmean", 1, lambda L, x: x.nanmean(-1, keepdim=True)),
    OpSpec("median", 1, lambda L, x: _spread(L, x).median(dim=-1, keepdim=True).values),
    OpSpec("aminmax", 1, lambda L, x: L.aminmax(_spread(L, x), dim=-1, keepdim=True).max),
    OpSpec("dist", 2, lambda L, x, y: L.dist(x, y * 0.5 + 0.3)),
    # ---- added for issue 17 (the rest of the op table; in-place twins given as functions)
    OpSpec("nanmedian", 1, lambda L, x: _spread(L, x).nanmedian(dim=-1, keepdim=True).values),
    OpSpec("norm_p", 1, lambda L, x: (x * x + 0.1).norm(p=3, dim=-1, keepdim=True)),
    OpSpec("sum_all", 1, lambda L, x: L.sum(x) * 0.5),
    OpSpec("mean_tuple_dims", 1, lambda L, x: x.mean(dim=(0, -1), keepdim=True) if x.ndim == 2 else x.mean()),
    OpSpec("tanh_backward_like", 2, lambda L, x, y: y * (1 - x.tanh() ** 2)),
    OpSpec("cast_f32", 1, lambda L, x: x.to(L.float32).to(L.float64) * x),
    OpSpec("clone_fn", 1, lambda L, x: L.clone(x), inplace="copy_"),
    OpSpec("cos_", 1, lambda L, x: x.cos(), inplace="cos_"),
    OpSpec("abs_", 1, lambda L, x: (x + _OFF).abs(), inplace=lambda L, x, y: x.add_(_OFF).abs_()),
    OpSpec(
        "clamp_", 1, lambda L, x: (x + _OFF).clamp(-0.5, 0.7), inplace=lambda L, x, y: x.add_(_OFF).clamp_(-0.5, 0.7)
    ),
    OpSpec("div_", 2, lambda L, x, y: x / _pos(y), inplace=lambda L, x, y: x.div_(_pos(y))),
    OpSpec("mul_scalar_", 1, lambda L, x: x * -1.5, inplace=lambda L, x, y: x.mul_(-1.5)),
    OpSpec("lerp_", 2, lambda L, x, y: L.lerp(x, y, 0.3), inplace=lambda L, x, y: x.lerp_(y, 0.3)),
    OpSpec(
        "addcmul_", 2, lambda L, x, y: x.addcmul(y, y, value=0.5), inplace=lambda L, x, y: x.addcmul_(y, y, value=0.5)
    ),
    OpSpec("zero_", 1, lambda L, x: x * 0, inplace=lambda L, x, y: x.zero_()),
    OpSpec("fill_", 1, lambda L, x: x * 0 + 0.25, inplace=lambda L, x, y: x.fill_(0.25)),
    OpSpec(
        "masked_fill_",
        1,
        lambda L, x: x.masked_fill(x > 0.123, 0.25),
        inplace=lambda L, x, y: x.masked_fill_(x.detach() > 0.123, 0.25),
    ),
]
