"""``Tensor`` methods, operators and in-place variants of issue 13's elementwise ops, reductions and scans
(bound by ``methods.bind``; the ops themselves live in ``ops/pointwise_ops.py`` and ``reductions.py``).

An in-place variant ``x.op_(...)`` computes ``op(x, ...)`` out of place and takes the result over: recorded
(``methods._rebase``: ``x`` becomes the new node, a value saved for backward and then overwritten raises),
through forward mode (``methods._dual_inplace``), or as a plain write into ``x``'s data. As in torch, the
result must fit ``x``: same shape, and a dtype ``x`` can hold (float into an integer tensor raises).
"""

import numpy as np

from . import ops, reductions
from . import views as _views
from .forward import _fw
from .grad_mode import _grad_state
from .tensor import Tensor

# name -> function: Tensor methods with torch's names (``self`` is the first argument)
METHODS = {
    name: getattr(ops, name)
    for name in (
        "atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "arctan", "arcsin", "arccos",
        "arcsinh", "arccosh", "arctanh", "log2", "log10", "exp2", "erfc", "erfinv", "logit", "sinc",
        "floor", "ceil", "round", "trunc", "fix", "frac", "deg2rad", "rad2deg", "nan_to_num", "sign",
        "signbit", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "atan2", "arctan2", "hypot", "fmod",
        "remainder", "floor_divide", "copysign", "logaddexp", "xlogy", "lerp", "addcmul", "addcdiv", "fmax",
        "fmin", "gt", "ge", "lt", "le", "eq", "ne", "greater", "greater_equal", "less", "less_equal",
        "not_equal",
    )
}  # fmt: skip
METHODS.update(
    {
        name: getattr(reductions, name)
        for name in (
            "lgamma", "digamma", "polygamma", "median", "nanmedian", "nanmean", "nansum", "cumsum", "cumprod",
            "cummax", "cummin", "logcumsumexp", "count_nonzero", "all", "any", "aminmax", "norm", "dist",
        )
    }
)  # fmt: skip

METHODS["polygamma"] = reductions.polygamma_method  # torch's method takes n after self

# in-place variants: name_ -> the out-of-place function
INPLACE = {
    name: METHODS[name]
    for name in (
        "atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "arctan", "arcsin", "arccos",
        "arcsinh", "arccosh", "arctanh", "log2", "log10", "exp2", "erfc", "erfinv", "logit", "sinc",
        "floor", "ceil", "round", "trunc", "fix", "frac", "deg2rad", "rad2deg", "nan_to_num", "sign",
        "atan2", "arctan2", "hypot", "fmod", "remainder", "floor_divide", "copysign", "xlogy", "lerp",
        "addcmul", "addcdiv", "lgamma", "digamma", "polygamma", "cumsum", "cumprod", "gt", "ge", "lt", "le", "eq",
        "ne", "greater", "greater_equal", "less", "less_equal", "not_equal",
    )
}  # fmt: skip
INPLACE.update(
    {
        name: getattr(ops, name)
        for name in (
            "neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
            "sigmoid", "relu", "erf", "square", "pow",
        )
    }
)  # fmt: skip


def _torch_name(dt):
    from .ops.linalg import torch_dtype_name

    return torch_dtype_name(np.dtype(dt))


def inplace(name, fn):
    """``self.name_(*args)``: ``fn(self, *args)`` written into ``self`` (see the module header)."""
    from .methods import _INPLACE_LEAF, _bump, _dual_inplace, _rebase, _store

    def method(self, *args, **kwargs):
        tensors = [a for a in args if isinstance(a, Tensor)]
        for t in tensors:
            _views.check_operand_overlap(self, t)
        if _grad_state.enabled and (self._rg or any(t._rg for t in tensors)):
            if self._rg and self._op is None:
                raise RuntimeError(_INPLACE_LEAF)
            return _rebase(self, lambda snap: _fit(fn(snap, *args, **kwargs), self, name))
        if _fw.levels and (self._tangents is not None or any(t._tangents for t in tensors)):
            if _dual_inplace(
                self, tensors[0] if tensors else None, lambda: _fit(fn(self, *args, **kwargs), self, name)
            ):
                return self
        _views.check_write(self)  # (an expanded self: torch refuses the write whatever the grad mode)
        result = _fit(fn(self, *args, **kwargs), self, name)
        _store(self, result)
        _bump(self)
        return self

    method.__name__ = name + "_"
    method.__doc__ = f"In-place ``{name}`` (see ``ad.elementwise_methods``)."
    return method


def _fit(result, self, name):
    """``result`` checked against ``self`` (torch's errors) and cast to its dtype."""
    if result.shape != self.shape:
        raise RuntimeError(
            f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(result.shape)}"
        )
    if result.dtype != self.dtype:
        if not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise RuntimeError(
                f"result type {_torch_name(result.dtype)} can't be cast to the desired output type "
                f"{_torch_name(self.dtype)}"
            )
        result = result.to(self.dtype)
    return result


def bind():
    for name, fn in METHODS.items():
        setattr(Tensor, name, getattr(fn, "method", fn))
    for name, fn in INPLACE.items():
        setattr(Tensor, name + "_", inplace(name, fn))
    Tensor.__floordiv__ = ops.floor_divide
    Tensor.__rfloordiv__ = ops.rfloordiv
    Tensor.__mod__ = ops.remainder
    Tensor.__rmod__ = ops.rremainder
    Tensor.__ifloordiv__ = inplace("floor_divide", ops.floor_divide)
    Tensor.__imod__ = inplace("remainder", ops.remainder)
