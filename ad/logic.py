"""torch's logical, bitwise and number-theory functions, the closeness tests, and small elementwise functions that
are compositions of existing ops (``clamp_min``, ``float_power``, ``ldexp``, ``logaddexp2``, ``sgn``).

The logical and bitwise functions compute on the data (torch has no derivative for them) and return bool or
integer tensors; their in-place forms write through ``copy_`` in the tensor's own dtype (``x.logical_and_(y)``
on a float tensor writes 1.0 / 0.0), so versions, views and the leaf rule behave as for any write. The operators
``& | ^ ~ << >>`` are bitwise on integer tensors and logical on bool tensors, as torch's.
"""

import collections
import math

import numpy as np

from . import ops
from .ops.out import write_result
from .tensor import Tensor, wrap_array

__all__ = [
    "allclose",
    "bitwise_and",
    "bitwise_left_shift",
    "bitwise_not",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "clamp_max",
    "clamp_min",
    "equal",
    "float_power",
    "frexp",
    "gcd",
    "heaviside",
    "isclose",
    "isin",
    "lcm",
    "ldexp",
    "logaddexp2",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "nextafter",
    "positive",
    "sgn",
]

Frexp = collections.namedtuple("frexp", ["mantissa", "exponent"])


def _data(x):
    return x.detach().cpu()._data if isinstance(x, Tensor) else np.asarray(x)


def _torch_name(dtype):
    from .ops.linalg import torch_dtype_name

    return torch_dtype_name(dtype)


def _on(device, arr):
    t = wrap_array(np.asarray(arr))
    return t.to(device) if device is not None and str(device) != "cpu" else t


def _device_of(*xs):
    for x in xs:
        if isinstance(x, Tensor):
            return x.device
    return None


def _check_tensor(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def _integral_only(kernel, *xs, bool_ok=True):
    """torch's bitwise and number-theory kernels exist for bool (not all) and integer tensors only; the operands
    must broadcast (torch's RuntimeError, not numpy's ValueError)."""
    for x in xs:
        d = _data(x)
        if d.dtype.kind == "f" or (d.dtype.kind == "b" and not bool_ok):
            raise NotImplementedError(f"\"{kernel}_cpu\" not implemented for '{_torch_name(d.dtype)}'")
    _broadcastable(*xs)


def _broadcastable(*xs):
    shapes = [np.shape(_data(x)) for x in xs]
    for shape in shapes[1:]:
        ops._broadcast_shape(tuple(shapes[0]), tuple(shape))


def _logical(name, np_fn):
    def fn(input, other, *, out=None):
        _check_tensor(input, name)
        if not isinstance(other, Tensor):
            raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
        _broadcastable(input, other)
        return write_result(name, _on(_device_of(input, other), np_fn(_data(input), _data(other))), out)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` of the truth values (non-zero is true): a bool tensor."
    return fn


logical_and = _logical("logical_and", np.logical_and)
logical_or = _logical("logical_or", np.logical_or)
logical_xor = _logical("logical_xor", np.logical_xor)


def logical_not(input, *, out=None):
    """Elementwise ``not`` of the truth values: a bool tensor."""
    _check_tensor(input, "logical_not")
    return write_result("logical_not", _on(input.device, np.logical_not(_data(input))), out)


def _bitwise(name, np_fn, kernel=None):
    def fn(input, other, *, out=None):
        if not isinstance(input, Tensor):  # torch's bitwise_*(Scalar, Tensor)
            input, other = other, input
        _integral_only(kernel or name, input, other, bool_ok=kernel is None)
        a, b = _data(input), _data(other)
        if not isinstance(other, Tensor):
            b = np.asarray(b).astype(a.dtype) if np.ndim(b) == 0 and a.dtype.kind in "iu" else b
        return write_result(name, _on(_device_of(input, other), np_fn(a, b)), out)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` of bool or integer tensors (logical for bool)."
    return fn


bitwise_and = _bitwise("bitwise_and", np.bitwise_and)
bitwise_or = _bitwise("bitwise_or", np.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor", np.bitwise_xor)
bitwise_left_shift = _bitwise("bitwise_left_shift", np.left_shift, "lshift")
bitwise_right_shift = _bitwise("bitwise_right_shift", np.right_shift, "rshift")


def bitwise_not(input, *, out=None):
    """Elementwise bitwise ``not`` of a bool or integer tensor (logical ``not`` for bool)."""
    _check_tensor(input, "bitwise_not")
    _integral_only("bitwise_not", input)
    return write_result("bitwise_not", _on(input.device, np.invert(_data(input))), out, same_dtype=True)


def gcd(input, other, *, out=None):
    """Elementwise greatest common divisor of integer tensors."""
    _check_tensor(input, "gcd")
    _integral_only("gcd", input, other, bool_ok=False)
    return write_result("gcd", _on(input.device, np.gcd(_data(input), _data(other))), out)


def lcm(input, other, *, out=None):
    """Elementwise least common multiple of integer tensors."""
    _check_tensor(input, "lcm")
    _integral_only("lcm", input, other, bool_ok=False)
    return write_result("lcm", _on(input.device, np.lcm(_data(input), _data(other))), out)


def heaviside(input, values, *, out=None):
    """0 where ``input < 0``, ``values`` where it is 0, 1 where it is positive (same dtypes, as torch)."""
    _check_tensor(input, "heaviside")
    if not isinstance(values, Tensor):
        raise TypeError(f"heaviside(): argument 'values' (position 2) must be Tensor, not {type(values).__name__}")
    _broadcastable(input, values)
    a, v = _data(input), _data(values)
    if a.dtype != v.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    # torch's kernel: values where input == 0, else (input > 0), so NaN gives 0 (numpy's heaviside: NaN)
    result = np.where(a == 0, v, a > 0).astype(a.dtype)
    return write_result("heaviside", _on(input.device, result), out, same_dtype=True)


def nextafter(input, other, *, out=None):
    """The next representable float after ``input`` towards ``other``."""
    _check_tensor(input, "nextafter")
    if not isinstance(other, Tensor):
        raise TypeError(f"nextafter(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    result_type = np.result_type(input.dtype, other.dtype)
    if result_type.kind != "f":
        raise NotImplementedError(f'"nextafter_cpu" not implemented for \'{_torch_name(result_type)}\'')
    a = _data(input)
    ops._broadcast_shape(a.shape, _data(other).shape)
    value = np.nextafter(a, _data(other))
    result = _on(input.device, value)
    if value.dtype.kind == "f":  # torch's gradient (and tangent): 1 from input where it differs from other
        finite = np.isfinite(a) & np.isfinite(value) & (a != _data(other))
        step = _on(input.device, np.where(finite, value - a, 0.0).astype(value.dtype))
        result = ops.where(_on(input.device, finite), input + step, result)
    return write_result("nextafter", result, out)


def frexp(input, *, out=None):
    """``(mantissa, exponent)`` with ``input = mantissa * 2 ** exponent``, mantissa in [0.5, 1); exponent int32."""
    _check_tensor(input, "frexp")
    d = _data(input)
    if d.dtype.kind != "f":
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    m, e = np.frexp(d)
    result = Frexp(_on(input.device, m), _on(input.device, e.astype(np.int32)))
    return write_result("frexp", result, out, same_dtype=True)


def _same_dtype_check(a, b):
    if a.dtype != b.dtype and not (a.dtype.kind == b.dtype.kind == "f"):
        raise RuntimeError(f"{_torch_name(b.dtype)} did not match {_torch_name(a.dtype)}")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (inf equals inf of the same sign): a bool tensor."""
    _check_tensor(input, "isclose")
    a, b = _data(input), _data(other)
    _same_dtype_check(a, b)
    _broadcastable(a, b)
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")
    return _on(input.device, np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether every element is ``isclose``: a Python bool."""
    return bool(_data(isclose(input, other, rtol, atol, equal_nan)).all())


def equal(input, other):
    """Whether the tensors have the same shape and the same values: a Python bool."""
    _check_tensor(input, "equal")
    a, b = _data(input), _data(other)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def isin(elements, test_elements, *, assume_unique=False, invert=False, out=None):
    """Whether each of ``elements`` is in ``test_elements`` (tensors or numbers): a bool tensor."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin() received an invalid combination of arguments: one of the arguments must be a Tensor")
    for v in (elements, test_elements):
        if isinstance(v, Tensor) and v.dtype == np.bool_:
            raise RuntimeError("Unsupported input type encountered for isin(): Bool")
    result = np.isin(_data(elements), _data(test_elements), assume_unique=assume_unique, invert=invert)
    return write_result("isin", _on(_device_of(elements, test_elements), result), out, same_dtype=True)


# ---------------------------------------------------------------------------------------------------------
# compositions of differentiable ops


def clamp_min(input, min, *, out=None):  # noqa: A002 - torch's name
    """``clamp(input, min=min)``."""
    return write_result("clamp_min", ops.clamp(input, min=min), out, same_dtype=True)


def clamp_max(input, max, *, out=None):  # noqa: A002 - torch's name
    """``clamp(input, max=max)``."""
    return write_result("clamp_max", ops.clamp(input, max=max), out, same_dtype=True)


def float_power(input, exponent, *, out=None):
    """``input ** exponent`` in float64 (torch's double-precision power), differentiable."""
    x = input.to(np.float64) if isinstance(input, Tensor) else input
    e = exponent.to(np.float64) if isinstance(exponent, Tensor) else exponent
    return write_result("float_power", ops.pow(x, e), out, same_dtype=True)


def ldexp(input, other, *, out=None):
    """``input * 2 ** other``, differentiable in ``input``."""
    other = other if isinstance(other, Tensor) else wrap_array(np.asarray(other))
    a, e = _data(input), _data(other)
    _broadcastable(a, e)
    # the result's dtype: a float input's, else float64 (ad's default), promoted with a float exponent's
    dtype = np.result_type(a.dtype if a.dtype.kind == "f" else np.float64, *([e.dtype] if e.dtype.kind == "f" else []))
    if e.dtype.kind == "f":  # a float exponent is differentiable too (torch: input * 2 ** other)
        return write_result("ldexp", ops.mul(input, ops.pow(2.0, other.to(dtype))), out, same_dtype=True)
    scale = wrap_array(np.exp2(e.astype(np.float64)).astype(dtype))
    return write_result("ldexp", ops.mul(input, scale.to(input.device)), out, same_dtype=True)


def logaddexp2(input, other, *, out=None):
    """``log2(2 ** input + 2 ** other)`` without overflow, differentiable."""
    for k, (what, value) in enumerate((("input", input), ("other", other))):
        if not isinstance(value, Tensor):  # (in logaddexp2's name, before the scaling makes it a number)
            raise TypeError(
                f"logaddexp2(): argument '{what}' (position {k + 1}) must be Tensor, not {type(value).__name__}"
            )
    return write_result("logaddexp2", ops.logaddexp(input * math.log(2.0), other * math.log(2.0)) / math.log(2.0), out)


def sgn(input, *, out=None):
    """The sign of a real tensor (torch's ``sgn`` extends ``sign`` to complex numbers, which ad has not)."""
    return write_result("sgn", ops.sign(input), out, same_dtype=True)


def positive(input):
    """``input`` itself (torch's unary plus)."""
    _check_tensor(input, "positive")
    if input.dtype == np.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


# ---------------------------------------------------------------------------------------------------------
# Tensor methods, in-place forms and operators


def _inplace_from(fn):
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs).to(self.dtype))

    method.__name__ = fn.__name__ + "_"
    return method


def _reflected(fn):
    return lambda self, other: fn(other, self) if isinstance(other, Tensor) else fn(self, other)


def _operator(bitwise, logical):
    """``&``-style operator: bitwise on integer tensors, logical on bool ones (as torch: a float raises)."""

    def method(self, other):
        if self._dev is not None and self.dtype == np.bool_:
            from .methods import _compare

            return _compare(logical)(self, other)
        return bitwise(self, other)

    return method


def _inverted(device_invert):
    """``~``: bitwise ``not`` (logical for bool); CUDA tensors keep their own path."""

    def method(self):
        if self.dtype.kind == "f":
            raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
        return device_invert(self) if self._dev is not None else bitwise_not(self)

    return method


def bind():
    T = Tensor
    for fn in (logical_and, logical_or, logical_xor, logical_not, bitwise_and, bitwise_or, bitwise_xor,
               bitwise_not, bitwise_left_shift, bitwise_right_shift, gcd, lcm, heaviside, nextafter, frexp, isclose,
               allclose, equal, clamp_min, clamp_max, float_power, ldexp, logaddexp2, sgn, positive):
        setattr(T, fn.__name__, fn)
    for fn in (logical_and, logical_or, logical_xor, logical_not, bitwise_and, bitwise_or, bitwise_xor, bitwise_not,
               bitwise_left_shift, bitwise_right_shift, gcd, lcm, heaviside, nextafter, clamp_min, clamp_max,
               float_power, ldexp, sgn):
        setattr(T, fn.__name__ + "_", _inplace_from(fn))
    T.clip_ = T.clamp_
    T.absolute = T.abs
    T.absolute_ = T.abs_
    T.negative_ = T.neg_
    T.multiply_ = T.mul_
    T.subtract_ = T.sub_
    T.divide_ = T.div_
    T.true_divide = T.div
    T.true_divide_ = T.div_
    T.__and__ = _operator(bitwise_and, np.logical_and)
    T.__or__ = _operator(bitwise_or, np.logical_or)
    T.__xor__ = _operator(bitwise_xor, np.logical_xor)
    T.__rand__ = _reflected(T.__and__)
    T.__ror__ = _reflected(T.__or__)
    T.__rxor__ = _reflected(T.__xor__)
    T.__invert__ = _inverted(T.__invert__)
    T.__lshift__ = bitwise_left_shift
    T.__rshift__ = bitwise_right_shift
    T.__iand__ = T.bitwise_and_
    T.__ior__ = T.bitwise_or_
    T.__ixor__ = T.bitwise_xor_
