"""Binds the op table and composites to ``Tensor`` as methods and operators (one place, torch's names)."""

import numpy as np

from . import composites, ops
from .grad_mode import _grad_state
from .tensor import Tensor, wrap_array

_INPLACE_LEAF = "a leaf Variable that requires grad is being used in an in-place operation."


def _operand_data(other):
    return other._data if isinstance(other, Tensor) else other


def _inplace(name, np_op):
    def method(self, other=None, *args, **kwargs):
        _check_inplace(self, other)
        if np_op is None:
            self._data[...] = 0
        else:
            value = _operand_data(other)
            try:
                np_op(self._data, value, out=self._data, casting="same_kind")
            except ValueError:
                shape = np.shape(value)
                raise RuntimeError(
                    f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                    f"{list(np.broadcast_shapes(self.shape, shape))}"
                ) from None
        self._version += 1
        return self

    method.__name__ = name
    method.__doc__ = f"In-place ``{name}``: under ``no_grad`` (optimizer steps) or on tensors outside a graph."
    return method


def _check_inplace(self, other):
    if not _grad_state.enabled:
        return
    if self._rg and self._op is None:
        raise RuntimeError(_INPLACE_LEAF)
    if self._rg or (isinstance(other, Tensor) and other._rg):
        raise RuntimeError(
            "in-place operations on tensors that take part in a recorded graph are not supported yet: use the "
            "out-of-place form (y = y + x) or run the update under ad.no_grad()"
        )


def _zero_(self):
    _check_inplace(self, None)
    self._data[...] = 0
    self._version += 1
    return self


def _fill_(self, value):
    _check_inplace(self, value)
    self._data[...] = _operand_data(value)
    self._version += 1
    return self


def _copy_(self, src, non_blocking=False):
    _check_inplace(self, src)
    self._data[...] = _operand_data(src)
    self._version += 1
    return self


def _clamp_(self, min=None, max=None):  # noqa: A002
    _check_inplace(self, None)
    np.clip(self._data, min, max, out=self._data)
    self._version += 1
    return self


def _setitem(self, key, value):
    _check_inplace(self, value)
    nkey, _ = ops._index_key(key)
    self._data[nkey] = _operand_data(value)
    self._version += 1


def _compare(np_op):
    def method(self, other):
        return wrap_array(np.asarray(np_op(self._data, _operand_data(other))))

    return method


def _rpow(self, other):
    return ops.pow(other, self)


def _rmatmul(self, other):
    return ops.matmul(ops.as_tensor_operand(other), self)


def _T(self):
    return ops.permute(self, tuple(range(self.ndim - 1, -1, -1))) if self.ndim > 1 else self


def _mT(self):
    return ops.transpose(self, -2, -1)


def _expand(self, *sizes):
    return ops.expand(self, *sizes)


def _expand_as(self, other):
    return ops.expand(self, other.shape)


def _view_as(self, other):
    return ops.reshape(self, other.shape)


def _reshape_as(self, other):
    return ops.reshape(self, other.shape)


def _pow(self, exponent):
    return ops.pow(self, exponent)


def _type_as(self, other):
    return self.to(other.dtype)


def bind():
    T = Tensor
    T.__add__ = ops.add
    T.__radd__ = ops.add
    T.__sub__ = ops.sub
    T.__rsub__ = ops.rsub
    T.__mul__ = ops.mul
    T.__rmul__ = ops.mul
    T.__truediv__ = ops.div
    T.__rtruediv__ = ops.rdiv
    T.__pow__ = _pow
    T.__rpow__ = _rpow
    T.__matmul__ = ops.matmul
    T.__rmatmul__ = _rmatmul
    T.__neg__ = ops.neg
    T.__pos__ = lambda self: self
    T.__abs__ = ops.abs
    T.__getitem__ = ops.getitem
    T.__setitem__ = _setitem
    T.__lt__ = _compare(np.less)
    T.__le__ = _compare(np.less_equal)
    T.__gt__ = _compare(np.greater)
    T.__ge__ = _compare(np.greater_equal)
    T.__eq__ = _compare(np.equal)
    T.__ne__ = _compare(np.not_equal)
    T.__and__ = _compare(np.logical_and)
    T.__or__ = _compare(np.logical_or)
    T.__invert__ = lambda self: wrap_array(np.logical_not(self._data))
    T.__hash__ = object.__hash__
    T.__iadd__ = T.add_ = _inplace("add_", np.add)
    T.__isub__ = T.sub_ = _inplace("sub_", np.subtract)
    T.__imul__ = T.mul_ = _inplace("mul_", np.multiply)
    T.__itruediv__ = T.div_ = _inplace("div_", np.divide)
    T.zero_ = _zero_
    T.fill_ = _fill_
    T.copy_ = _copy_
    T.clamp_ = _clamp_
    T.T = property(_T)
    T.mT = property(_mT)
    for name in (
        "add", "sub", "mul", "div", "pow", "matmul", "neg", "abs", "exp", "log", "log1p", "expm1", "sqrt",
        "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "erf", "square", "clamp", "clip", "maximum",
        "minimum", "sum", "mean", "prod", "amax", "amin", "max", "min", "reshape", "view", "flatten", "transpose",
        "permute", "squeeze", "unsqueeze", "gather", "index_select", "split", "chunk", "mm", "dot", "t",
    ):
        setattr(T, name, getattr(ops, name))
    for name in ("var", "std", "logsumexp", "softmax", "log_softmax", "argmax", "argmin", "sign", "reciprocal",
                 "norm"):
        setattr(T, name, getattr(composites, name))
    T.subtract = ops.sub
    T.multiply = ops.mul
    T.divide = ops.div
    T.negative = ops.neg
    T.expand = _expand
    T.expand_as = _expand_as
    T.broadcast_to = ops.broadcast_to
    T.view_as = _view_as
    T.reshape_as = _reshape_as
    T.type_as = _type_as
    T.contiguous = lambda self, memory_format=None: self
    T.is_contiguous = lambda self, memory_format=None: True
    T.where = lambda self, condition, other: ops.where(condition, self, other)
