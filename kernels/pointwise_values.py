"""The forward value of each elementwise opcode of ``opcodes.py``: ``unary_value(code, x, a0, a1)`` and
``binary_value(code, x, y)``, scalar and ``math``-based, written once for the compiled forward kernels (the CUDA
elementwise kernels, ``kernels/replay.py``'s fused replay; the eager CPU forward runs numpy's ufuncs on whole
arrays). Their derivatives are ``pointwise.py``'s; the helpers both use (``sign``, ``log``, ``sigmoid_value``,
the constants) live there. ``kernels/cuda/device.py`` re-makes both modules' functions over IEEE functions for
the simulator.
"""

import math

from numba.extending import register_jitable

from . import opcodes as K
from .pointwise import (
    GELU_CUBIC,
    LN2,
    PI,
    SQRT1_2,
    SQRT_2_OVER_PI,
    erfinv,
    floor,
    log,
    sigmoid_value,
    sign,
    softplus,
    trunc,
    xlogy,
)

# The value of each elementwise opcode, written once for the compiled forward kernels (kernels/cuda: the
# CPU forward runs numpy's ufuncs on whole arrays). They follow numpy's values at the edges (NaN propagation,
# log of 0 and below, maximum's NaN, rint's ties to even), so a CUDA forward matches the CPU one.
# STEP_FN is five ops under one opcode (their partial is 0 for all): its forward reads which one from a1.

STEP_FLOOR = 0.0
STEP_CEIL = 1.0
STEP_TRUNC = 2.0
STEP_ROUND = 3.0  # a0: decimals
STEP_SIGN = 4.0


@register_jitable
def rint(v):
    """Round half to even (``np.rint``), as a float; keeps the sign of a zero result."""
    r = floor(v)
    diff = v - r
    if diff > 0.5 or (diff == 0.5 and r - 2.0 * floor(0.5 * r) != 0.0):
        r += 1.0
    if r == 0.0:
        return math.copysign(0.0, v)
    return r


@register_jitable
def round_decimals(v, decimals):
    """``np.round(v, decimals)``: scaled by a power of ten, rounded half to even, scaled back."""
    if decimals == 0.0:
        return rint(v)
    if decimals > 0.0:
        f = 10.0**decimals
        return rint(v * f) / f
    f = 10.0 ** (-decimals)
    return rint(v / f) * f


@register_jitable
def maximum_value(x, y):
    """``np.maximum``: NaN if either is NaN."""
    if x > y or x != x:
        return x
    return y


@register_jitable
def minimum_value(x, y):
    """``np.minimum``: NaN if either is NaN."""
    if x < y or x != x:
        return x
    return y


@register_jitable
def log_base(v, which):
    """log2 (``which`` 2) or log10 (10) with numpy's values at 0 and below."""
    if v > 0.0:
        return math.log2(v) if which == 2 else math.log10(v)
    if v == 0.0:
        return -math.inf
    return math.nan


@register_jitable
def step_value(x, decimals, which):
    """The STEP_FN ops: floor, ceil, trunc, round (to ``decimals``), sign, chosen by ``which`` (STEP_*)."""
    if which == STEP_FLOOR:
        return floor(x)
    if which == STEP_CEIL:
        return -floor(-x)
    if which == STEP_TRUNC:
        return trunc(x)
    if which == STEP_ROUND:
        return round_decimals(x, decimals)
    return sign(x)


@register_jitable
def silu_value(x):
    """``x / (1 + exp(-x))``, as torch (NaN at -inf; in float32 -0.0 from x = -89 on, where exp(-x) overflows)."""
    if x < -700.0:  # (Python floats: math.exp raises on overflow; x / inf is a signed zero)
        return x * 0.0 if x == x and x != -math.inf else math.nan
    return x / (1.0 + math.exp(-x))


@register_jitable
def gelu_value(x, approximate):
    """``x Phi(x)`` (``approximate`` 0) or torch's tanh approximation (1)."""
    if approximate == 0.0:
        return x * 0.5 * (1.0 + math.erf(x * SQRT1_2))
    return 0.5 * x * (1.0 + math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * (x * x * x))))


@register_jitable
def elu_value(x, alpha, scale, input_scale):
    """``scale x`` for ``x > 0``, else ``scale alpha expm1(input_scale x)`` (elu, selu, celu)."""
    if x > 0.0:
        return scale * x
    return (scale * alpha) * math.expm1(x * input_scale)


@register_jitable
def scale_only(b):
    """An affine row's shift ``b`` that says "a multiplication only": -0.0, which the scalar forms of * and /
    record. ``x * a + (-0.0)`` is exactly ``x * a`` for every x (-0.0 included: -0.0 + -0.0 is -0.0; NaN and
    inf pass through), so skipping the addition is exact, while a +0.0 shift must be added: ``x + 0.0`` at
    x = -0.0 is +0.0 in IEEE arithmetic (and torch), which ``x * 1.0`` would leave at -0.0."""
    return b == 0.0 and math.copysign(1.0, b) < 0.0


@register_jitable
def affine_value(x, a, b):
    """``a * x + b`` rounded as the op it stands for (x * c, x + c, c - x), as ad's CPU forward."""
    if scale_only(b):
        return x * a
    if a == 1.0:
        return x + b
    if a == -1.0:
        return b - x
    return x * a + b


@register_jitable
def logit_value(x, eps):
    """``log(p / (1 - p))``, ``p`` clamped to ``[eps, 1 - eps]`` unless ``eps`` is NaN."""
    if not math.isnan(eps):
        x = maximum_value(x, eps)
        x = minimum_value(x, 1.0 - eps)
    return log(x / (1.0 - x))


@register_jitable
def logaddexp_value(x, y):
    """``log(exp(x) + exp(y))`` as numpy computes it (exact ``x + log 2`` at ties, so infinities work)."""
    if x == y:
        return x + LN2
    d = x - y
    if d > 0.0:
        return x + math.log1p(math.exp(-d))
    if d <= 0.0:
        return y + math.log1p(math.exp(d))
    return d  # NaN


@register_jitable
def bce_logits_value(x, t):
    """``(1 - t) x - log sigmoid(x)``, ``log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))``: torch's form (NaN at
    x = +-inf, as torch's)."""
    return (1.0 - t) * x + (math.log1p(math.exp(-abs(x))) - min(x, 0.0))


@register_jitable
def fmod_value(x, y):
    """C's fmod (``np.fmod``): NaN for ``y == 0`` or infinite ``x``."""
    if y == 0.0 or math.isinf(x) or x != x or y != y:
        return math.nan
    if math.isinf(y):
        return x
    return math.fmod(x, y)


@register_jitable
def remainder_value(x, y):
    """Python's / numpy's remainder: the sign of ``y``."""
    r = fmod_value(x, y)
    if r != 0.0 and (r < 0.0) != (y < 0.0):
        r += y
    return r


def unary_value(code, x, a0, a1):
    """The value of elementwise unary opcode ``code`` at ``x`` with the row's attributes ``a0``, ``a1``."""
    if code == K.COPY:
        return x
    if code == K.AFFINE:
        return affine_value(x, a0, a1)
    if code == K.NEG:
        return -x
    if code == K.EXP:
        return math.exp(x)
    if code == K.LOG:
        return log(x)
    if code == K.SIN:
        return math.sin(x)
    if code == K.COS:
        return math.cos(x)
    if code == K.TANH:
        return math.tanh(x)
    if code == K.SIGMOID:
        return sigmoid_value(x)
    if code == K.RELU:
        return x if (x > 0.0 or x != x) else 0.0
    if code == K.SQUARE:
        return x * x
    if code == K.ABS:
        return abs(x)
    if code == K.LOG1P:
        return math.log1p(x) if x > -1.0 else log(x + 1.0)
    if code == K.EXPM1:
        return math.expm1(x)
    if code == K.SQRT:
        return math.sqrt(x) if x >= 0.0 else math.nan
    if code == K.RSQRT:
        return 1.0 / math.sqrt(x) if x > 0.0 else (math.inf if x == 0.0 else math.nan)
    if code == K.TAN:
        return math.tan(x)
    if code == K.ERF:
        return math.erf(x)
    if code == K.CLAMP:
        r = x
        if not math.isnan(a0):
            r = maximum_value(r, a0)
        if not math.isnan(a1):
            r = minimum_value(r, a1)
        return r
    if code == K.POW_SCALAR:
        return x**a0
    if code == K.RPOW_SCALAR:
        return a0**x
    if code == K.RDIV_SCALAR:
        return a0 / x
    if code == K.ATAN:
        return math.atan(x)
    if code == K.ASIN:
        return math.asin(x) if abs(x) <= 1.0 else math.nan
    if code == K.ACOS:
        return math.acos(x) if abs(x) <= 1.0 else math.nan
    if code == K.SINH:
        return math.sinh(x)
    if code == K.COSH:
        return math.cosh(x)
    if code == K.ASINH:
        return math.asinh(x)
    if code == K.ACOSH:
        return math.acosh(x) if x >= 1.0 else math.nan
    if code == K.ATANH:
        if abs(x) < 1.0:
            return math.atanh(x)
        return math.copysign(math.inf, x) if abs(x) == 1.0 else math.nan
    if code == K.LOG2:
        return log_base(x, 2)
    if code == K.LOG10:
        return log_base(x, 10)
    if code == K.EXP2:
        return 2.0**x
    if code == K.ERFC:
        return math.erfc(x)
    if code == K.ERFINV:
        return erfinv(x)
    if code == K.LOGIT:
        return logit_value(x, a0)
    if code == K.SINC:
        if x == 0.0:
            return 1.0
        px = PI * x
        return math.sin(px) / px
    if code == K.STEP_FN:
        return step_value(x, a0, a1)
    if code == K.SILU:
        return silu_value(x)
    if code == K.GELU:
        return gelu_value(x, a0)
    if code == K.MISH:
        return x * math.tanh(softplus(x))
    if code == K.ELU:
        return elu_value(x, a0, a1, 1.0)
    if code == K.CELU:
        return elu_value(x, a0, 1.0, 1.0 / a0)
    return math.nan  # unknown opcode: poison the result rather than return a wrong number


def binary_value(code, x, y):
    """The value of same-shape elementwise binary opcode ``code`` at ``(x, y)``."""
    if code == K.ADD:
        return x + y
    if code == K.SUB:
        return x - y
    if code == K.MUL:
        return x * y
    if code == K.DIV:
        return x / y
    if code == K.POW:
        return x**y
    if code == K.MAXIMUM:
        return maximum_value(x, y)
    if code == K.MINIMUM:
        return minimum_value(x, y)
    if code == K.TANH_BACKWARD:
        return x * (1.0 - y * y)
    if code == K.ATAN2:
        return math.atan2(x, y)
    if code == K.HYPOT:
        return math.hypot(x, y)
    if code == K.FMOD:
        return fmod_value(x, y)
    if code == K.REMAINDER:
        return remainder_value(x, y)
    if code == K.COPYSIGN:
        return math.copysign(x, y)
    if code == K.LOGADDEXP:
        return logaddexp_value(x, y)
    if code == K.XLOGY:
        return xlogy(x, y)
    if code == K.BCE_LOGITS:
        return bce_logits_value(x, y)
    return math.nan
