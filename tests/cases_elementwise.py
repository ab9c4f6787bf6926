"""Op-table cases of issue 13's elementwise ops, reductions and scans (see tests/test_op_table.py).

Inputs stay away from the non-differentiable points (``domain``); those points are checked against torch's
values in tests/test_elementwise.py.
"""

import numpy as np

import ad


def _ramp(like, *shape):
    n = int(np.prod(shape))
    return ad.tensor(np.arange(n, dtype=like.dtype).reshape(shape))


CASES = {
    # unary primitives (named as their entries in ad.ops.OPS)
    "atan": (lambda x: x.atan(), [(5,)]),
    "asin": (lambda x: x.asin(), [(5,)]),
    "acos": (lambda x: x.acos(), [(5,)]),
    "sinh": (lambda x: x.sinh(), [(2, 3)]),
    "cosh": (lambda x: x.cosh(), [(5,)]),
    "asinh": (lambda x: x.asinh(), [(5,)]),
    "acosh": (lambda x: x.acosh(), [(5,)]),
    "atanh": (lambda x: x.atanh(), [(5,)]),
    "log2": (lambda x: x.log2(), [(5,)]),
    "log10": (lambda x: x.log10(), [(5,)]),
    "exp2": (lambda x: x.exp2(), [(5,)]),
    "erfc": (lambda x: x.erfc(), [(5,)]),
    "erfinv": (lambda x: x.erfinv(), [(5,)]),
    "logit": (lambda x: x.logit() + ad.logit(x, eps=0.05) * x, [(6,)]),
    "sinc": (lambda x: x.sinc() + (-x).sinc(), [(5,)]),
    # piecewise constant: zero gradient, but connected (multiplied by x so the case has a gradient to check)
    "floor": (lambda x: (x * 3.0).floor() * x + x, [(5,)], {"domain": (0.05, 0.3)}),
    "ceil": (lambda x: (x * 3.0).ceil() * x, [(5,)], {"domain": (0.05, 0.3)}),
    "trunc": (lambda x: (x * 3.0).trunc() * x, [(5,)], {"domain": (0.05, 0.3)}),
    "round": (lambda x: x.round() * x + ad.round(x * 10.0, decimals=-1) * x, [(5,)], {"domain": (0.05, 0.3)}),
    "sign": (lambda x: x.sign() * x + (-x).sign() * x * x, [(5,)]),
    # binary primitives
    "atan2": (lambda x, y: ad.atan2(x, y), [(2, 3), (3,)]),
    "hypot": (lambda x, y: ad.hypot(x, y), [(4,), (4,)]),
    "fmod": (lambda x, y: ad.fmod(x * 3.0, y) + ad.fmod(-x * 3.0, y), [(4,), (4,)], {"domain": (0.55, 0.95)}),
    "remainder": (lambda x, y: (x * 3.0) % y + ad.remainder(-x * 3.0, y), [(4,), (4,)], {"domain": (0.55, 0.95)}),
    "copysign": (lambda x, y: ad.copysign(x, y) + ad.copysign(x, -y) * x, [(5,), (5,)]),
    "logaddexp": (lambda x, y: ad.logaddexp(x, y * 3.0), [(2, 2), (2, 2)]),
    "xlogy": (lambda x, y: ad.xlogy(x, y) * x, [(4,), (4,)]),
    # composites
    "frac": (lambda x: (x * 3.0).frac(), [(4,)], {"domain": (0.05, 0.3)}),
    "deg2rad_rad2deg": (lambda x: x.deg2rad() * x.rad2deg(), [(4,)]),
    "nan_to_num": (lambda x: ad.nan_to_num(x.log(), nan=0.5), [(5,)], {"domain": (0.2, 2.0)}),
    "fmax_fmin": (lambda x, y: ad.fmax(x, y) * ad.fmin(x, y * 2.0), [(6,), (6,)]),
    "lerp": (lambda x, y, w: ad.lerp(x, y, w) + ad.lerp(x, y, 0.75) * x, [(5,), (5,), (5,)], {"domain": (0.0, 1.0)}),
    "addcmul_addcdiv": (
        lambda x, a, b: ad.addcmul(x, a, b, value=0.5) * ad.addcdiv(x, a, b + 3.0, value=-2.0),
        [(3,), (3,), (3,)],
    ),
}

CASES.update(
    {
        # special functions and scans: Python-swept primitives (autograd.Function), backward written with ad ops
        "lgamma": (lambda x: x.lgamma(), [(5,)], {"domain": (0.5, 3.0)}),
        "digamma": (lambda x: x.digamma(), [(5,)], {"domain": (0.5, 3.0)}),
        "polygamma": (lambda x: ad.polygamma(1, x) + x.polygamma(2), [(4,)], {"domain": (0.5, 3.0)}),
        # torch.special's (ad/special_functions.py): Python-swept Functions and composites
        "special_i0_i1": (
            lambda x: x.i0() * ad.special.i1(x) + ad.special.i0e(x) * ad.special.i1e(x),
            [(5,)],
            {"domain": (0.2, 3.0)},
        ),
        "special_ndtr": (lambda x: ad.special.ndtr(x) * ad.special.log_ndtr(x) + ad.special.erfcx(x), [(5,)]),
        "special_ndtri_entr": (lambda x: ad.special.ndtri(x) * ad.special.entr(x), [(5,)], {"domain": (0.1, 0.9)}),
        "special_xlog1py": (lambda x, y: ad.special.xlog1py(x, y) * x, [(4,), (4,)], {"domain": (0.2, 2.0)}),
        "special_zeta_igamma": (
            lambda q: (
                ad.special.zeta(2.5, q)
                + ad.igamma(ad.full((4,), 1.5, dtype=q.dtype), q) * ad.igammac(ad.full((4,), 2.5, dtype=q.dtype), q)
            ),
            [(4,)],
            {"domain": (0.5, 3.0)},
        ),
        "index_reduce": (
            lambda x, s: (
                x.index_reduce(0, ad.tensor([2, 0, 2]), s, "prod")
                + x.index_reduce(0, ad.tensor([1, 1, 0]), s, "mean", include_self=False)
            ),
            [(3, 2), (3, 2)],
            {"domain": (0.5, 2.0)},
        ),
        "cumsum": (lambda x: x.cumsum(1) * _ramp(x, 2, 3) + ad.cumsum(x, 0), [(2, 3)]),
        "cumprod": (lambda x: x.cumprod(1) + ad.cumprod(x, 0), [(3, 4)]),
        "cumprod_with_zero": (
            lambda x: ad.cumprod(x * ad.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=x.dtype) + x * 0.0, 0) * x,
            [(5,)],
        ),
        "cummax_cummin": (lambda x: x.cummax(1).values * x.cummin(0)[0], [(3, 4)]),
        "logcumsumexp": (lambda x: x.logcumsumexp(1) * _ramp(x, 2, 4), [(2, 4)]),
        # reductions
        "median": (lambda x: x.median() * x + x.median(1).values.sum() + x.median(0, keepdim=True)[0].sum(), [(3, 5)]),
        "nanmedian": (lambda x: ad.nanmedian(x, 1).values, [(3, 5)]),
        "nansum_nanmean": (lambda x: x.nansum(1) * x.nanmean() + ad.nansum(x.log()), [(2, 3)]),
        "aminmax": (lambda x: ad.aminmax(x, dim=1).min * ad.aminmax(x).max, [(3, 4)]),
        "norm_p": (
            lambda x: (
                ad.norm(x, 3)
                + x.norm(1, dim=1).sum()
                + x.norm(float("inf")) * x.norm(float("-inf"), 1).sum()
                + x.norm("fro", dim=(0, 1))
                + x.norm(0.5, dim=0, keepdim=True).sum()
                + x.norm(0) * x.sum()
            ),
            [(3, 4)],
        ),
        "dist": (lambda x, y: ad.dist(x, y) + ad.dist(x, y, 1) * ad.dist(x, y, float("inf")), [(2, 3), (3,)]),
    }
)
