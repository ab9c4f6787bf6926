"""Issue 13's elementwise ops: unary and binary primitives, their composites, and the non-differentiable
predicates (comparisons, isnan, ...).

Primitives are declared as in ``elementwise_table.py``: an opcode, a forward ufunc, and a partial taken from
``kernels/pointwise.py`` (the kernels' formula, run on tensors), so each derivative is written once. The
piecewise-constant ops (floor, ceil, round, trunc, sign) share one opcode, ``STEP_FN``, whose partial is 0:
torch connects them to the graph with a zero gradient. Composites (frac, deg2rad, nan_to_num, fmax, lerp,
addcmul, ...) are built from primitives and need no rules.

Dtypes follow torch where it keeps integers (floor of an integer tensor is that tensor, comparisons and
isnan/isinf/isfinite/signbit are bool) and numpy where a float op meets integers (float64 results).
"""

import math

import numpy as np
import scipy.special

from kernels import opcodes as K

from .. import cuda as _cuda
from .. import ops as _ops
from ..saved import guard, saves_as
from ..tensor import Tensor, wrap_array
from . import as_tensor_operand
from .elementwise import _is_scalar
from .elementwise_recording import _binary, _unary, _unary_fn
from .elementwise_table import TENSOR_NAMES, elementwise, formula_binary
from .out import with_out

# torch's public names (re-exported by ad/__init__.py and ad/ops/__init__.py)
__all__ = [
    "acos",
    "acosh",
    "addcdiv",
    "addcmul",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "ceil",
    "copysign",
    "cosh",
    "deg2rad",
    "eq",
    "erfc",
    "erfinv",
    "exp2",
    "fix",
    "floor",
    "floor_divide",
    "fmax",
    "fmin",
    "fmod",
    "frac",
    "ge",
    "greater",
    "greater_equal",
    "gt",
    "hypot",
    "isfinite",
    "isinf",
    "isnan",
    "isneginf",
    "isposinf",
    "le",
    "lerp",
    "less",
    "less_equal",
    "log2",
    "log10",
    "logaddexp",
    "logit",
    "lt",
    "nan_to_num",
    "ne",
    "not_equal",
    "rad2deg",
    "remainder",
    "round",
    "signbit",
    "sinc",
    "sinh",
    "trunc",
    "xlogy",
]

# --- unary primitives -------------------------------------------------------------------------------------


def _logit_np(x, eps, _, out=None):
    if not math.isnan(eps):
        x = np.clip(x, eps, 1.0 - eps)
    return scipy.special.logit(x, out=out) if out is not None else scipy.special.logit(x)


def _sinc_np(x, out=None):
    r = np.sinc(x)
    if out is None:
        return np.asarray(r)
    np.copyto(out, r)
    return out


def _step_np(fn):
    """``fn(x, a0, a1, out)`` of a piecewise-constant op (the row's attributes: round's decimals in a0)."""

    def np_fn(x, a0, a1, out=None):
        return fn(x, out=out) if out is not None else fn(x)

    return np_fn


def _sign_np(x, out=None):
    r = np.sign(x, out=out) if out is not None else np.asarray(np.sign(x))  # (a 0-d x gives a numpy scalar)
    r[np.isnan(x)] = 0.0  # torch: sign(NaN) = 0
    return r


def _round_np(x, decimals, _, out=None):
    d = int(decimals)
    if d == 0:
        return np.rint(x, out=out) if out is not None else np.rint(x)
    r = np.round(x, d)
    if out is None:
        return np.asarray(r)
    np.copyto(out, r)
    return out


def _erfinv_np(x, out=None):
    """scipy's erfinv with the sign of a zero kept (scipy's erfinv(-0.0) is +0.0; torch's, an odd function's, -0.0)."""
    r = scipy.special.erfinv(x, out=out) if out is not None else np.asarray(scipy.special.erfinv(x))
    return np.copysign(r, x, out=r)


ATAN = elementwise("atan", K.ATAN, np.arctan)
ASIN = elementwise("asin", K.ASIN, np.arcsin, sample=(-0.9, 0.9))
ACOS = elementwise("acos", K.ACOS, np.arccos, sample=(-0.9, 0.9))
SINH = elementwise("sinh", K.SINH, np.sinh)
COSH = elementwise("cosh", K.COSH, np.cosh)
ASINH = elementwise("asinh", K.ASINH, np.arcsinh)
ACOSH = elementwise("acosh", K.ACOSH, np.arccosh, sample=(1.1, 3.0))
ATANH = elementwise("atanh", K.ATANH, np.arctanh, sample=(-0.9, 0.9))
LOG2 = elementwise("log2", K.LOG2, np.log2, sample=(0.2, 3.0))
LOG10 = elementwise("log10", K.LOG10, np.log10, sample=(0.2, 3.0))
EXP2 = elementwise("exp2", K.EXP2, np.exp2)
ERFC = elementwise("erfc", K.ERFC, scipy.special.erfc)
ERFINV = elementwise("erfinv", K.ERFINV, _erfinv_np, sample=(-0.9, 0.9))
LOGIT = elementwise("logit", K.LOGIT, _logit_np, sample=(0.1, 0.9))
SINC = elementwise("sinc", K.SINC, _sinc_np, sample=(0.2, 2.0))
FLOOR = elementwise("floor", K.STEP_FN, _step_np(np.floor), sample=(0.1, 0.9))
CEIL = elementwise("ceil", K.STEP_FN, _step_np(np.ceil), sample=(0.1, 0.9))
TRUNC = elementwise("trunc", K.STEP_FN, _step_np(np.trunc), sample=(0.1, 0.9))
ROUND = elementwise("round", K.STEP_FN, _round_np, None, "RoundBackward1", sample=(0.1, 0.4))
SIGN = elementwise("sign", K.STEP_FN, _step_np(_sign_np), sample=(0.1, 2.0))


def _float_input(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    return x


atan = _unary_fn(ATAN)
asin = _unary_fn(ASIN)
acos = _unary_fn(ACOS)
sinh = _unary_fn(SINH)
cosh = _unary_fn(COSH)
asinh = _unary_fn(ASINH)
acosh = _unary_fn(ACOSH)
atanh = _unary_fn(ATANH)
log2 = _unary_fn(LOG2)
log10 = _unary_fn(LOG10)
exp2 = _unary_fn(EXP2)
erfc = _unary_fn(ERFC)
erfinv = _unary_fn(ERFINV)
sinc = _unary_fn(SINC)
arctan, arcsin, arccos, arcsinh, arccosh, arctanh = atan, asin, acos, asinh, acosh, atanh  # torch's aliases


def logit(input, eps=None):  # noqa: A002 - torch's name
    """``log(p / (1 - p))``; with ``eps``, ``p`` is first clamped to ``[eps, 1 - eps]`` (gradient 0 outside)."""
    _float_input(input, "logit")
    return _unary(LOGIT, input, math.nan if eps is None else float(eps), 0.0)


def _no_bool(x, kernel):
    """torch's refusal of a bool tensor where its kernel has no bool loop."""
    if x._data.dtype.kind == "b":
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")


def _step_fn(op, int_fn):
    def fn(input):  # noqa: A002
        _float_input(input, op.name)
        if op is not SIGN:
            _no_bool(input, f"{op.name}_vml_cpu")
        if input._data.dtype.kind in "iub" and input._dev is not None:  # (the device kernel keeps the dtype)
            from ..cuda import ops as cuda_ops

            return cuda_ops.unary(op, input, 0.0, 0.0, None)
        if input._data.dtype.kind in "iub":  # integers stay integers (a copy), as torch
            return wrap_array(np.asarray(int_fn(input._data)))
        return _unary(op, input)

    fn.__name__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``: piecewise constant, connected to the graph with a zero gradient."
    return fn


floor = _step_fn(FLOOR, np.copy)
ceil = _step_fn(CEIL, np.copy)
trunc = _step_fn(TRUNC, np.copy)
fix = trunc


def _sign_int(d):
    return d.copy() if d.dtype == np.bool_ else np.sign(d)


sign = _step_fn(SIGN, _sign_int)


def round(input, *, decimals=0):  # noqa: A001 - torch's name
    """Round half to even, to ``decimals`` decimal places (torch.round)."""
    _float_input(input, "round")
    _no_bool(input, "round_vml_cpu")
    if input._data.dtype.kind in "iub" and input._dev is not None and int(decimals) >= 0:
        return input.clone()  # (an integer rounded to whole numbers or finer is itself)
    if input._data.dtype.kind in "iub":  # (CUDA, to tens or coarser: rounded on a host copy, put back)
        return _cuda.index_tensor(np.asarray(np.round(_cuda.host_copy(input._data), int(decimals))), input)
    return _unary(ROUND, input, float(int(decimals)), 0.0)


def frac(input):  # noqa: A002
    """``input - trunc(input)`` (gradient 1)."""
    _float_input(input, "frac")
    if input._data.dtype.kind in "iub":
        raise NotImplementedError(f"\"frac_cpu\" not implemented for '{_ops._torch_dtype(input.dtype).capitalize()}'")
    return input - trunc(input)


def deg2rad(input):  # noqa: A002
    _float_input(input, "deg2rad")
    return input * (math.pi / 180.0)


def rad2deg(input):  # noqa: A002
    _float_input(input, "rad2deg")
    return input * (180.0 / math.pi)


def nan_to_num(input, nan=None, posinf=None, neginf=None):  # noqa: A002
    """NaN, +inf, -inf replaced by ``nan`` (default 0), ``posinf`` (default: the dtype's largest value),
    ``neginf``; the gradient passes where the input is finite, as torch."""
    nan = 0.0 if nan is None else nan
    _float_input(input, "nan_to_num")
    if input._data.dtype.kind != "f":
        if input._dev is not None:
            from ..cuda.ops import const

            return const(input, input._data.dtype)
        return wrap_array(input._data.copy())
    d = _cuda.host_copy(input._data)  # (the finite mask: on the host)
    filled = np.nan_to_num(d, nan=nan, posinf=posinf, neginf=neginf)
    finite = np.isfinite(d)
    if finite.all():
        out = _ops.clone(input)
    else:
        out = _ops.where(_cuda.index_tensor(finite, input), input, _cuda.index_tensor(filled, input))
    return guard(out, "NanToNumBackward0", input)


def _predicate(name, np_fn, on_device):
    """A bool predicate: numpy's ufunc on the host; on a CUDA tensor ``on_device(values)``, comparisons that
    run as device kernels (no host copy: torch's CUDA predicates do not synchronize either)."""

    def fn(input):  # noqa: A002
        _float_input(input, name)
        if input._dev is not None:
            from ..grad_mode import no_grad

            with no_grad():
                return on_device(input.detach())
        return wrap_array(np.asarray(np_fn(input._data)))

    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (bool, not differentiable)."
    return fn


# the device forms: NaN is the one value unequal to itself; x - x is 0 exactly for finite x (inf - inf and NaN
# give NaN); copysign carries the sign bit of -0.0 and of a negative NaN, which ``x < 0`` misses
isnan = _predicate("isnan", np.isnan, lambda x: x != x)
isinf = _predicate("isinf", np.isinf, lambda x: (x == math.inf) | (x == -math.inf))
isfinite = _predicate("isfinite", np.isfinite, lambda x: (x - x) == 0 if x._data.dtype.kind == "f" else x == x)
signbit = _predicate(
    "signbit", np.signbit, lambda x: copysign(_ops.ones_like(x), x) < 0 if x._data.dtype.kind == "f" else x < 0
)
isposinf = _predicate("isposinf", np.isposinf, lambda x: x == math.inf)
isneginf = _predicate("isneginf", np.isneginf, lambda x: x == -math.inf)


# --- binary primitives ------------------------------------------------------------------------------------


ATAN2 = formula_binary("atan2", K.ATAN2, np.arctan2, "Atan2Backward0")
HYPOT = formula_binary("hypot", K.HYPOT, np.hypot, "HypotBackward0")
FMOD = formula_binary("fmod", K.FMOD, np.fmod, "FmodBackward1", sample=(0.5, 3.0))
REMAINDER = formula_binary("remainder", K.REMAINDER, np.remainder, "RemainderBackward1", sample=(0.5, 3.0))
COPYSIGN = formula_binary("copysign", K.COPYSIGN, np.copysign, "CopysignBackward0")
LOGADDEXP = formula_binary("logaddexp", K.LOGADDEXP, np.logaddexp, "LogaddexpBackward0")
XLOGY = formula_binary("xlogy", K.XLOGY, scipy.special.xlogy, "XlogyBackward0", sample=(0.3, 2.0))


def _bce_logits_np(x, t, out=None):
    """``(1 - t) x - log sigmoid(x)``, ``log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))``: torch's form, to the bit
    (NaN at x = +-inf, where it forms ``0 * inf`` or ``inf - inf``, as torch's)."""
    with np.errstate(invalid="ignore"):
        neg_log_sigmoid = np.abs(x)
        np.negative(neg_log_sigmoid, out=neg_log_sigmoid)
        np.exp(neg_log_sigmoid, out=neg_log_sigmoid)
        np.log1p(neg_log_sigmoid, out=neg_log_sigmoid)
        neg_log_sigmoid -= np.minimum(x, 0.0)
        r = np.subtract(1.0, t, out=out)
        r *= x
        r += neg_log_sigmoid
        return r


# binary_cross_entropy_with_logits' elementwise loss as one row (ad.nn.functional's, with its weights)
BCE_LOGITS = formula_binary(
    "binary_cross_entropy_with_logits", K.BCE_LOGITS, _bce_logits_np, "BinaryCrossEntropyWithLogitsBackward0"
)


def _operands(x, y, fn, scalars=True):
    """Tensor operands of a binary op; a Python number takes the tensor's dtype (torch's scalar rule)."""
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    if not scalars and not (isinstance(x, Tensor) and isinstance(y, Tensor)):
        bad, pos, what = (x, 1, "input") if not isinstance(x, Tensor) else (y, 2, "other")
        raise TypeError(f"{fn}(): argument '{what}' (position {pos}) must be Tensor, not {type(bad).__name__}")
    x = _scalar_operand(x, y, fn)
    y = _scalar_operand(y, x, fn)
    if x.shape != y.shape:
        _ops._broadcast_shape(x.shape, y.shape)  # torch's RuntimeError (numpy's would be a ValueError)
    return x, y


def _scalar_operand(v, like, fn):
    if isinstance(v, Tensor):
        return v
    if _is_scalar(v) and not isinstance(v, bool):
        kind = like._data.dtype.kind
        dt = like._data.dtype if kind == "f" or (kind in "iu" and isinstance(v, int)) else np.float64
        return wrap_array(np.asarray(v, dtype=dt))
    return as_tensor_operand(v, like, fn=fn)


def _binary_fn(op, scalars=True):
    def fn(input, other):  # noqa: A002
        x, y = _operands(input, other, op.name, scalars)
        return _binary(op, x, y)

    fn.__name__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}`` with broadcasting, differentiable in both operands."
    return fn


atan2 = _binary_fn(ATAN2, scalars=False)


def arctan2(input, other, *, out=None):  # noqa: A002
    """``atan2`` under numpy's name (torch's alias; its errors in this name)."""
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(f"arctan2(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    return atan2(input, other, out=out)


hypot = _binary_fn(HYPOT, scalars=False)


def _integer_checked(fn):
    """``fn`` that raises torch's error for an integer division by zero (numpy gives 0)."""

    def checked(input, other):  # noqa: A002
        if isinstance(input, Tensor) and input._data.dtype.kind in "iub":
            _check_integer_divisor(input._data, np.asarray(_data_of(other)))
        return fn(input, other)

    checked.__name__ = fn.__name__
    checked.__doc__ = fn.__doc__
    return checked


def _data_of(v):
    return v.detach().cpu()._data if isinstance(v, Tensor) else v


fmod = _integer_checked(_binary_fn(FMOD))
remainder = _integer_checked(_binary_fn(REMAINDER))
copysign = _binary_fn(COPYSIGN)
logaddexp = _binary_fn(LOGADDEXP, scalars=False)
xlogy = _binary_fn(XLOGY)
bce_logits = _binary_fn(BCE_LOGITS, scalars=False)


def floor_divide(input, other):  # noqa: A002
    """``floor(input / other)`` (numpy's floor_divide; not differentiable, as torch's has no derivative)."""
    x, y = _operands(input, other, "floor_divide")
    if (x._dev is not None or y._dev is not None) and "f" in (x._data.dtype.kind, y._data.dtype.kind):
        # floats on CUDA: the same fmod-based floor as numpy's, from device ops
        return rounded_div(x.detach(), y.detach(), "floor")
    return _integer_quotient(x, y, np.floor_divide)


def _integer_quotient(x, y, fn):
    """``fn`` of the values of ``x`` and ``y`` after torch's ZeroDivisionError check for integer operands.
    CUDA operands are divided on host copies (the divisor's check reads it anyway) and the quotient is put back
    on their device."""
    xd, yd = _cuda.host_copy(x._data), _cuda.host_copy(y._data)
    _check_integer_divisor(xd, yd)
    return _cuda.index_tensor(np.asarray(fn(xd, yd)), x if x._dev is not None else y)


def _check_integer_divisor(xd, yd):
    if xd.dtype.kind in "iub" and yd.dtype.kind in "iub" and np.any(yd == 0):
        raise RuntimeError("ZeroDivisionError")


def rounded_div(input, other, rounding_mode):  # noqa: A002
    """``div(input, other, rounding_mode=...)``: torch's values (``"floor"`` on floats by its fmod formula:
    ``1.0 // 0.1`` is 9, where ``floor(1.0 / 0.1)`` is 10), connected to the graph with a zero gradient."""
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError(
            f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'"
        )
    x, y = _operands(input, other, "div")
    xd, yd = x._data, y._data
    if xd.dtype.kind in "iub" and yd.dtype.kind in "iub":  # (integers: never part of a graph)
        if rounding_mode == "floor":
            return _integer_quotient(x, y, np.floor_divide)
        return _integer_quotient(x, y, lambda a, b: np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b)))
    # a zero divisor gives x / 0 (no gradient: its rule would multiply the zero gradient by inf)
    where = _ops.where
    zero = y == 0
    by_zero = _ops.div(x.detach(), y.detach())
    y = where(zero, 1.0, y)
    if rounding_mode == "trunc":
        return where(zero, by_zero, trunc(_ops.div(x, y)))
    mod = fmod(x, y)
    q = (x - mod) / y
    q = where((mod != 0) & ((y < 0) != (mod < 0)), q - 1.0, q)
    f = floor(q)
    return where(zero, by_zero, where(q - f > 0.5, f + 1.0, f))


def rfloordiv(x, y):
    """``y // x``."""
    return floor_divide(y, x)


def rremainder(x, y):
    """``y % x``."""
    return remainder(y, x)


def fmax(input, other):  # noqa: A002
    """Elementwise maximum ignoring NaN; the gradient goes to ``input`` where ``input >= other`` (or other is
    NaN), else to ``other``, as torch."""
    x, y = _operands(input, other, "fmax", scalars=False)
    xd, yd = _cuda.host_copy(x._data), _cuda.host_copy(y._data)  # (the mask: on the host)
    return guard(_ops.where(_cuda.index_tensor((xd >= yd) | np.isnan(yd), x), x, y), "FmaxBackward0", x, y)


def fmin(input, other):  # noqa: A002
    x, y = _operands(input, other, "fmin", scalars=False)
    xd, yd = _cuda.host_copy(x._data), _cuda.host_copy(y._data)  # (the mask: on the host)
    return guard(_ops.where(_cuda.index_tensor((xd <= yd) | np.isnan(yd), x), x, y), "FminBackward0", x, y)


def lerp(input, end, weight):  # noqa: A002
    """``input + weight * (end - input)``, computed as torch does (from ``end`` where ``weight >= 0.5``)."""
    x, y = _operands(input, end, "lerp", scalars=False)
    w = _scalar_operand(weight, x, "lerp")
    diff = y - x
    lo = x + w * diff
    hi = y - diff * (1.0 - w)
    return _ops.where(_cuda.index_tensor(np.abs(_cuda.host_copy(w._data)) < 0.5, w), lo, hi)


@saves_as("AddcmulBackward0")
def addcmul(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """``input + value * tensor1 * tensor2``."""
    return input + (tensor1 * tensor2) * value if value != 1 else input + tensor1 * tensor2


@saves_as("AddcdivBackward0")
def addcdiv(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """``input + value * tensor1 / tensor2``."""
    if all(isinstance(t, Tensor) and t._data.dtype.kind in "iub" for t in (tensor1, tensor2)):
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future  release addcdiv will perform "
            "a true division of tensor1 and tensor2. The historic addcdiv behavior can be implemented as "
            "(input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as "
            "(input + value * tensor1 / tensor2) for float inputs. The future addcdiv behavior is just the latter "
            "implementation: (input + value * tensor1 / tensor2), for all dtypes."
        )
    return input + (tensor1 / tensor2) * value if value != 1 else input + tensor1 / tensor2


# --- comparisons (bool, not differentiable) ---------------------------------------------------------------


def _comparison(name, np_fn):
    def fn(input, other):  # noqa: A002
        x = _float_input(input, name)
        if x._dev is not None or (isinstance(other, Tensor) and other._dev is not None):
            from ..cuda import ops as cuda_ops

            return cuda_ops.compare(name, x, other)
        y = other._data if isinstance(other, Tensor) else other
        if isinstance(other, Tensor) and x._data.shape != other._data.shape:
            _ops._broadcast_shape(x._data.shape, other._data.shape)  # torch's message for bad shapes
        return wrap_array(np.asarray(np_fn(x._data, y)))

    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (bool, not differentiable)."
    return fn


gt = greater = _comparison("gt", np.greater)
ge = greater_equal = _comparison("ge", np.greater_equal)
lt = less = _comparison("lt", np.less)
le = less_equal = _comparison("le", np.less_equal)
eq = _comparison("eq", np.equal)
ne = not_equal = _comparison("ne", np.not_equal)


# --- out= ---------------------------------------------------------------------------------------------------


_OUT = (
    "atan asin acos sinh cosh asinh acosh atanh arctan arcsin arccos arcsinh arccosh arctanh log2 log10 exp2 erfc "
    "erfinv sinc logit floor ceil trunc fix round frac deg2rad rad2deg nan_to_num sign signbit atan2 arctan2 hypot "
    "fmod remainder copysign logaddexp xlogy floor_divide fmax fmin lerp addcmul addcdiv gt ge lt le eq ne greater "
    "greater_equal less less_equal not_equal"
).split()
for _name in _OUT:
    globals()[_name] = with_out(globals()[_name])

# the bare names of kernels/pointwise.py's formulas that are ops of this module (see elementwise_table.on_tensors)
TENSOR_NAMES.update(cosh=cosh, sinh=sinh, floor=floor, trunc=trunc, xlogy=xlogy, erfinv=erfinv)
