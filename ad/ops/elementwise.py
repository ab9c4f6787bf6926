"""Elementwise ops, the public functions: add, sub, rsub, mul, div, rdiv, reciprocal, pow, maximum, minimum,
clamp (clip), the unary functions (neg, abs, exp, log, ..., square), tanh_backward, clone and cast.

Each is a thin front over a recording path of ``elementwise_recording.py`` applied to an op entry of
``elementwise_table.py`` (where the ops are declared and the family's layout is explained): Python numbers turn
into ``affine`` rows (``a * x + b``, one row with two float attributes), tensors into binary rows, and the
unary functions are their op's fast path itself (``_unary_fn``). The fast paths of add, sub, mul and of the
scalar forms of + - * / are built once here as module globals (``_add_fast``, ..., ``_affine_fast``): the
eager forward's hottest calls pay one global lookup for them, and ``_add_fast``, ``_sub_fast`` and ``_mul_fast``
are Tensor's operators themselves (``methods.bind``).

Start reading at ``add`` and ``mul``.
"""

import math
import numbers
import sys

import numpy as np

from kernels import opcodes as K

from ..grad_mode import _grad_state
from ..tensor import Tensor, wrap_array
from . import Op, _broadcast_shape, _result, _tape_for, as_tensor_operand, linear_op
from .elementwise_recording import _SUB_BOOL, _binary, _fast_affine, _fast_binary, _unary, _unary_fn
from .elementwise_table import (
    ABS,
    ADD,
    AFFINE,
    CLAMP,
    COPY,
    COS,
    DIV,
    ERF,
    EXP,
    EXPM1,
    LOG,
    LOG1P,
    MAXIMUM,
    MINIMUM,
    MUL,
    NEG,
    POW,
    POW_SCALAR,
    RDIV_SCALAR,
    RELU,
    RPOW_SCALAR,
    RSQRT,
    SIGMOID,
    SIN,
    SQRT,
    SQUARE,
    SUB,
    TAN,
    TANH,
    TANH_BACKWARD,
    TENSOR_NAMES,
    _cuda_ops,
)
from .out import write_result

_NORMAL_MIN = sys.float_info.min  # the smallest normal float64: x / c is x * (1 / c) where 1 / c is normal
_affine_fast = _fast_affine()  # the scalar forms of + - * / (see ``affine``)
_scale_fast = _fast_affine(scale_only=True)  # x * c for a Python float c


def affine(x, a, b, kind="mul"):
    """``a * x + b`` for Python scalars ``a``, ``b`` (the scalar forms of + - * /). A multiplication passes
    ``b = -0.0``, which adds nothing to any x (-0.0 included), so its rows multiply only; ``b = +0.0`` is added
    (``x + 0.0`` is +0.0 at x = -0.0, as in IEEE arithmetic and torch)."""
    if x._data.dtype.kind in "biu" and isinstance(a if kind == "mul" else b, numbers.Integral):
        # an integer tensor with an integer: integer arithmetic in the tensor's dtype (torch's and numpy's rule),
        # not a float result
        d = x._data
        if x._dev is not None:  # CUDA: the same, by the device's binary kernel with a 0-d integer operand
            s = wrap_array(np.asarray(a if kind == "mul" else b, d.dtype if d.dtype.kind in "iu" else np.int64))
            return _binary(MUL, x, s) if kind == "mul" else _binary(SUB, s, x) if kind == "rsub" else _binary(ADD, x, s)
        return wrap_array(np.asarray(d * a if kind == "mul" else b - d if kind == "rsub" else d + b))
    a = float(a)
    b = float(b)
    return _affine_fast(x, a, b, (a, b, kind))


def _is_scalar(v):
    """A Python number (numpy scalars are arrays here, as numpy's own promotion treats them)."""
    tv = type(v)
    if tv is float or tv is int:
        return True
    if tv is Tensor or isinstance(v, (Tensor, np.generic, np.ndarray)):
        return False
    return isinstance(v, numbers.Real)


def add(input, other, *, alpha=1, out=None):
    if out is not None:
        return write_result("add", add(input, other, alpha=alpha), out)
    if type(other) is float and type(input) is Tensor and alpha == 1:
        return _affine_fast(input, 1.0, other, (1.0, other, "add"))
    if type(other) is Tensor and type(input) is Tensor and alpha == 1:
        return _add_fast(input, other)
    if alpha != 1:
        if isinstance(alpha, float) and all(isinstance(v, Tensor) and v.dtype.kind in "iub" for v in (input, other)):
            raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
        other = other * alpha if _is_scalar(other) else mul(other, alpha)
    if not isinstance(input, Tensor):
        input, other = other, input
    if _is_scalar(other):
        return affine(input, 1.0, other, "add")
    return _binary(ADD, input, as_tensor_operand(other, input, fn="add"))


def sub(input, other, *, alpha=1, out=None):
    if out is not None:
        return write_result("sub", sub(input, other, alpha=alpha), out)
    if type(other) is Tensor and type(input) is Tensor and alpha == 1:
        return _sub_fast(input, other)
    if alpha != 1:
        if _is_scalar(other):
            _check_sub_bool(input, other)  # (before alpha makes a bool a number)
            other = other * alpha
        else:
            other = mul(other, alpha)
    if _is_scalar(other):
        _check_sub_bool(input, other)
        return affine(input, 1.0, -other, "sub")
    return _binary(SUB, input, as_tensor_operand(other, input, fn="sub"))


def _check_sub_bool(t, number):
    """torch refuses subtraction with a bool on either side, a Python bool included."""
    if isinstance(number, (bool, np.bool_)) or (isinstance(t, Tensor) and t._data.dtype.kind == "b"):
        raise RuntimeError(_SUB_BOOL)


def rsub(input, other, *, alpha=1):  # noqa: A002
    """``other - alpha * input`` (torch.rsub; ``Tensor.__rsub__``)."""
    x = input if alpha == 1 else mul(input, alpha)
    if _is_scalar(other):
        _check_sub_bool(x, other)
        return affine(x, -1.0, other, "rsub")
    return _binary(SUB, as_tensor_operand(other, x), x)


def mul(input, other, *, out=None):
    if out is not None:
        return write_result("mul", mul(input, other), out)
    ty = type(other)
    if ty is Tensor and type(input) is Tensor:
        return _mul_fast(input, other)
    if ty is float and type(input) is Tensor:
        return _scale_fast(input, other, -0.0, (other, -0.0, "mul"))
    if not isinstance(input, Tensor):
        input, other = other, input
    if _is_scalar(other):
        return affine(input, other, -0.0, "mul")
    return _binary(MUL, input, as_tensor_operand(other, input, fn="mul"))


# The fast paths of add, sub and mul, which are also the Tensor operators (``methods.bind``: ``x * y`` runs the
# fast path with no call frame before it), falling back to the functions above for other operands
_add_fast = _fast_binary(ADD, add, "add")
_sub_fast = _fast_binary(SUB, sub)
_mul_fast = _fast_binary(MUL, mul, "mul")


def div(input, other, *, rounding_mode=None, out=None):
    if out is not None:
        return write_result("div", div(input, other, rounding_mode=rounding_mode), out)
    if rounding_mode is not None:
        from .pointwise_ops import rounded_div

        return rounded_div(input, other, rounding_mode)
    if _is_scalar(other):
        scale = 1.0 / other if other != 0 else 0.0
        if _NORMAL_MIN <= math.fabs(scale) < math.inf:
            return _unary(AFFINE, input, scale, -0.0, (scale, -0.0, "div"))
        # x / 0, and a divisor whose reciprocal is not a normal number: a subnormal one's overflows (0 / 1e-310
        # would be 0 * inf = NaN), a huge one's is subnormal (digits lost), an infinite one's is 0 (inf / inf
        # would be 0, not NaN): divide
        dtype = input._data.dtype if isinstance(input, Tensor) else None
        if dtype is not None and dtype.kind == "f":  # (a float32 tensor's quotient stays float32, as torch's)
            with np.errstate(over="ignore"):
                other = wrap_array(np.asarray(float(other), dtype))
    return _binary(DIV, input, as_tensor_operand(float(other) if _is_scalar(other) else other, input, fn="div"))


def rdiv(x, y):
    """``y / x``: for a number ``y``, ``reciprocal(x) * y`` as torch's ``__rtruediv__`` (same values; the
    reciprocal's saved result is internal, so writing into ``x`` or into the quotient afterwards is allowed)."""
    if _is_scalar(y):
        return mul(reciprocal(x), float(y))
    return _binary(DIV, as_tensor_operand(y, x), x)


def reciprocal(x):
    """``1 / x``, one node that saves its result (torch's ReciprocalBackward0)."""
    return _unary(RDIV_SCALAR, x, 1.0, 0.0)


def _integral_operand(v):
    if isinstance(v, Tensor):
        return v._data if v._dev is None and v._data.dtype.kind in "iub" else None
    return v if isinstance(v, numbers.Integral) else None


def _integer_pow(input, exponent):  # noqa: A002
    """torch's ``pow`` of integers (an integer result; None if an operand is not an integer): a negative Python
    exponent raises, a negative exponent element gives ``1 / base`` truncated (1, -1 or 0)."""
    b, e = _integral_operand(input), _integral_operand(exponent)
    if b is None or e is None:
        return None
    if not isinstance(exponent, Tensor):
        if e < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return wrap_array(np.asarray(np.power(b, e)))
    if np.ndim(b) and np.shape(b) != e.shape:
        _broadcast_shape(np.shape(b), e.shape)
    negative = e < 0
    result = np.power(b, np.where(negative, 0, e) if e.dtype.kind != "b" else e)
    if np.any(negative):
        odd = (np.abs(e) % 2) == 1
        result = np.where(negative, np.where(b == 1, 1, np.where(b == -1, np.where(odd, -1, 1), 0)), result)
    return wrap_array(np.asarray(result).astype(np.result_type(b, e)))


def pow(input, exponent, *, out=None):
    if out is not None:
        return write_result("pow", pow(input, exponent), out)
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        raise TypeError(
            f"pow() received an invalid combination of arguments - got ({type(input).__name__}, "
            f"{type(exponent).__name__}): one of input and exponent must be a Tensor"
        )
    if (type(input) is not Tensor or input._data.dtype.kind != "f") and (
        type(exponent) is not Tensor or exponent._data.dtype.kind != "f"
    ):
        result = _integer_pow(input, exponent)
        if result is not None:
            return result
    if isinstance(input, Tensor) and _is_scalar(exponent):
        if exponent == 2 and (input._data.dtype.kind == "f" or isinstance(exponent, numbers.Integral)):
            return _unary(SQUARE, input)  # (an integer tensor ** 2.0 is floating point, as torch's)
        return _unary(POW_SCALAR, input, float(exponent), 0.0)
    if not isinstance(input, Tensor) and _is_scalar(input):
        if input <= 0:
            # (the base in the exponent's float dtype: a number takes the tensor's dtype, as torch's and as
            # RPOW_SCALAR's; a 0-d float64 array would make a float32 exponent's result float64)
            kind_f = isinstance(exponent, Tensor) and exponent._data.dtype.kind == "f"
            base = np.asarray(float(input), exponent._data.dtype if kind_f else np.float64)
            return _binary(POW, as_tensor_operand(base, exponent), exponent)
        return _unary(RPOW_SCALAR, exponent, float(input), 0.0)
    input = as_tensor_operand(input, exponent if isinstance(exponent, Tensor) else None, "input", "pow")
    return _binary(POW, input, as_tensor_operand(exponent, input, fn="pow"))


def _tensor_arg(value, fn, what):
    if not isinstance(value, Tensor):
        position = {"input": 1, "other": 2}.get(what)
        where = f" (position {position})" if position else ""
        raise TypeError(f"{fn}(): argument '{what}'{where} must be Tensor, not {type(value).__name__}")
    return value


def tanh_backward(g, y):
    """``g * (1 - y**2)`` for tensors ``g`` and ``y`` (``y`` the output of tanh), as torch's tanh_backward."""
    return _binary(TANH_BACKWARD, g, y)


def maximum(input, other, *, out=None):
    if out is not None:
        return write_result("maximum", maximum(input, other), out)
    return _binary(MAXIMUM, _tensor_arg(input, "maximum", "input"), _tensor_arg(other, "maximum", "other"))


def minimum(input, other, *, out=None):
    if out is not None:
        return write_result("minimum", minimum(input, other), out)
    return _binary(MINIMUM, _tensor_arg(input, "minimum", "input"), _tensor_arg(other, "minimum", "other"))


neg = _unary_fn(NEG)
abs = _unary_fn(ABS)  # noqa: A001 - torch's name
exp = _unary_fn(EXP)
log = _unary_fn(LOG)
log1p = _unary_fn(LOG1P)
expm1 = _unary_fn(EXPM1)
sqrt = _unary_fn(SQRT)
rsqrt = _unary_fn(RSQRT)
sin = _unary_fn(SIN)
cos = _unary_fn(COS)
tan = _unary_fn(TAN)
tanh = _unary_fn(TANH)
sigmoid = _unary_fn(SIGMOID)
relu = _unary_fn(RELU)
erf = _unary_fn(ERF)
square = _unary_fn(SQUARE)


def clamp(input, min=None, max=None):  # noqa: A002 - torch's names
    _tensor_arg(input, "clamp", "input")
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor_bounds(input, min, max)
    if any(isinstance(b, float) and math.isnan(b) for b in (min, max)):
        return _clamp_tensor_bounds(input, min, max)  # a NaN bound gives NaN (the kernel reads NaN as "none")
    if input._data.dtype.kind != "f":  # an integer stays one with integer bounds (torch's promotion)
        bounds = [b for b in (min, max) if b is not None]
        data = input.detach().cpu()._data
        result = np.clip(data.astype(np.result_type(data, *bounds)), min, max)
        return wrap_array(result).to(input.device)
    lo = math.nan if min is None else float(min)
    hi = math.nan if max is None else float(max)
    return _unary(CLAMP, input, lo, hi)


clip = clamp


def _isnan(bound):
    return bound != bound if isinstance(bound, Tensor) else bool(math.isnan(bound))


def _clamp_tensor_bounds(input, min, max):  # noqa: A002 - torch's names
    """``clamp`` with a tensor (or NaN) bound, as torch's ``clamp_backward_min_max``: ``input`` gets the gradient
    where ``min <= input <= max``, ``min`` where ``input < min < max``, ``max`` where ``input > max`` or
    ``max < min``; nothing gets it where no branch holds (a NaN anywhere, ``input < min == max``): there the
    result is a constant."""
    from .structural import where

    lo = min.detach() if isinstance(min, Tensor) else min
    hi = max.detach() if isinstance(max, Tensor) else max
    value = input.detach()  # torch's forward value: NaN propagates from the input and from either bound
    if lo is not None:
        value = where((value < lo) | _isnan(lo), lo, value)
    if hi is not None:
        value = where((value > hi) | _isnan(hi), hi, value)
    if min is not None and max is not None:
        branches = [((input >= min) & (input <= max), input), ((input < min) & (min < max), min)]
        if isinstance(max, Tensor):  # the value is NaN where ``min`` is NaN: the gradient still goes to ``max``
            branches.append(((input > max) | (max < min), max + where(value != value, value, 0.0)))
    elif min is not None:
        branches = [(input >= min, input), (input < min, min)]
    else:
        branches = [(input <= max, input), (input > max, max)]
    out = value
    for taken, source in reversed(branches):  # exclusive branches; a number bound has no gradient to take
        if isinstance(source, Tensor):
            out = where(taken, source, out)
    return out


def clone(x):
    return _unary(COPY, x, 0.0, 0.0, (0.0, 0.0, None))


@linear_op
def cast(x, dtype):
    """Differentiable dtype conversion (the cotangent is cast back)."""
    dtype = np.dtype(dtype)
    if x._dev is not None:
        return _cuda_ops().cast(x, dtype)
    if not (_grad_state.enabled and x._rg):
        return wrap_array(x._data.astype(dtype))
    if dtype.kind != "f":
        return wrap_array(x._data.astype(dtype))
    n = x._data.size
    tape = _tape_for(dtype, 2 * n + 2, x)
    off = tape.alloc(n)
    view = tape.view(off, x.shape, n)
    view[...] = x._data
    xoff, xrow = tape.import_tensor(x, True)  # another dtype: always another tape
    row = tape.record(K.COPY | K.XRG, off, xoff, -1, n, 0, xrow)
    return _result(view, tape, off, row, CAST, (x,), (0.0, 0.0))


CAST = Op("cast", K.COPY, "ToCopyBackward0", lambda g, out, inputs, ctx: (cast(g, inputs[0].dtype),))
# a copy to another device (Tensor.to / .cuda / .cpu): the cotangent goes back to the operand's device
TO_COPY = Op(
    "to_copy", K.COPY, "ToCopyBackward0", lambda g, out, inputs, ctx: (g.to(inputs[0].device),), register=False
)


# the formulas' bare names that are ops of this module (the rest: ad/ops/pointwise_ops.py)
TENSOR_NAMES.update(cos=cos, sin=sin, exp=exp, sqrt=sqrt, log=log)
