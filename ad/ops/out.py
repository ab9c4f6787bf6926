"""torch's ``out=`` keyword: the result written into a given tensor.

``write_result(name, result, out, same_dtype=False, warn_resize=True)`` is the one implementation (every public
function that takes ``out=`` ends in it). The hottest public functions (``add``, ``mul``, ``exp``, ``sum``,
``matmul``, ...) take ``out=None`` in their own signature and call it only when ``out`` is given (``if out is not
None``: the eager path pays one check and no call frame); the others call it directly (it returns the result when
``out`` is None) or get the keyword from the ``with_out`` wrapper.

torch's rules, in the order torch checks them (nothing is written when one fails):
- grad mode on and the result or ``out`` requires grad: RuntimeError ("functions with out=... arguments don't
  support automatic differentiation"); under ``no_grad`` the result is written and ``out`` keeps its flag;
- a tangent of an active forward-mode level on the result or ``out``: NotImplementedError (torch's ``*_out``
  kernels have no forward derivative);
- dtypes, two rules (torch's kernels differ; the caller names its rule): by default the result's dtype must cast
  to ``out``'s ("same kind": float -> int and int -> bool are refused; pointwise ops, stacking, ``kron``); with
  ``same_dtype`` ``out`` must have the result's dtype exactly (``torch.linalg``, the matrix products, sorting,
  scatter/gather, statistics: "Expected out tensor to have dtype double, but got float instead"); ``sum``
  computes in ``out``'s dtype, see ``reduction_dtype``;
- ``out`` of another shape is resized, with torch's deprecation warning unless it was empty (factory functions
  such as ``zeros`` and the samplers resize silently: ``warn_resize=False``);
- ``out`` must be on the result's device (RuntimeError);
- the values are written into ``out``'s own buffer, on a GPU by a device kernel (an ``out`` that is a view
  writes through to its base; an ``out`` that aliases an input is written after the result is computed), and
  ``out``'s version counter is bumped (a saved ``out`` then fails backward's version check, as in torch).
"""

import functools
import inspect
import warnings

import numpy as np

from .. import forward as _forward
from ..forward import _fw
from ..grad_mode import _grad_state, no_grad
from ..tensor import Tensor


def write_result(name, result, out, same_dtype=False, warn_resize=True):
    """Write ``result`` (a tensor, or a tuple of them) into ``out`` (the same structure) and return ``out``
    (``result`` when ``out`` is None). ``same_dtype``: each ``out`` must have its result's dtype (torch's linalg
    rule) instead of one the result casts to. ``warn_resize``: torch's warning when a non-empty ``out`` is resized.

    Raises:
        RuntimeError: grad mode is on and the result or ``out`` requires grad; ``out`` is on another device; or
            the dtype cannot be cast (or differs, with ``same_dtype``).
        NotImplementedError: the result or ``out`` carries a forward-mode tangent.
        TypeError: ``out`` is not a tensor (or a tuple of as many tensors as results).
    """
    if out is None:
        return result
    results = result if isinstance(result, tuple) else (result,)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if _grad_state.enabled and any(isinstance(t, Tensor) and t._rg for t in (*results, *outs)):
        raise RuntimeError(
            f"{name}(): functions with out=... arguments don't support automatic differentiation, "
            "but one of the arguments requires grad."
        )
    if _fw.levels and _forward.visible_levels_of(*results, *outs):
        raise NotImplementedError(
            f"Trying to use forward AD with {name}_out that does not support it because it is an out= function"
        )
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result) or not all(isinstance(o, Tensor) for o in out):
            raise TypeError(f"{name}(): argument 'out' must be tuple of {len(result)} Tensors")
    elif not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    for r, o in zip(results, outs):  # every check before the first write
        if r.device != o.device:
            raise RuntimeError(f"{name}(): Expected out tensor to have device {r.device}, but got {o.device} instead")
        _check_dtype(r._data.dtype, o._data.dtype, same_dtype)
    for r, o in zip(results, outs):
        _write_out(r, o, warn_resize)
    if not isinstance(result, tuple):
        return out
    if hasattr(result, "_fields"):  # a named tuple
        return type(result)(*out)
    return type(result)(out)  # a tuple, or a tuple subclass with .values / .indices


def reduction_dtype(dtype, out, computes_in_out):
    """The ``dtype=`` a reduction given ``out=`` computes in: ``out``'s dtype where none is given and the reduction
    computes in it (torch's ``sum``: ``sum(x, 0, out=long_tensor)`` sums ``x`` cast to int64), else ``dtype``,
    which must then be ``out``'s.

    Raises:
        RuntimeError: ``dtype`` is given and differs from ``out``'s (torch's message).
    """
    if not isinstance(out, Tensor):
        return dtype  # (write_result raises torch's TypeError)
    if dtype is None:
        return out._data.dtype if computes_in_out else None
    if np.dtype(dtype) != out._data.dtype:
        raise RuntimeError(_expected_dtype(dtype, out._data.dtype))
    return dtype


def _expected_dtype(want, got):
    from .linalg import torch_dtype_name

    return (
        f"Expected out tensor to have dtype {torch_dtype_name(np.dtype(want)).lower()}, but got "
        f"{torch_dtype_name(got).lower()} instead"
    )


def _check_dtype(have, want, same_dtype):
    from .linalg import torch_dtype_name

    if same_dtype and have != want:
        raise RuntimeError(_expected_dtype(have, want))
    if not np.can_cast(have, want, "same_kind"):
        raise RuntimeError(
            f"result type {torch_dtype_name(have)} can't be cast to the desired output type {torch_dtype_name(want)}"
        )


def _write_out(result, out, warn_resize):
    from ..methods import _bump

    data = result._data
    if out._data.shape != data.shape:
        if warn_resize and out._data.size:
            warnings.warn(_resized(out._data.shape, data.shape), UserWarning, stacklevel=3)
        if out._dev is not None:  # a fresh device buffer of out's dtype
            out._data = result.detach().to(out._data.dtype).clone()._data
            _bump(out)
            return out
        out._data = np.empty(data.shape, out._data.dtype)  # torch resizes out
    if out._dev is not None:
        with no_grad():  # a device kernel writes (and casts) into out's buffer; copy_ bumps the version
            out.copy_(result)
        return out
    out._data[...] = data
    _bump(out)
    return out


def _resized(had, required):
    """torch's warning (aten/src/ATen/native/Resize.cpp) for a non-empty ``out`` of another shape."""
    return (
        f"An output with one or more elements was resized since it had shape {list(had)}, which does not match "
        f"the required output shape {list(required)}. This behavior is deprecated, and in a future PyTorch release "
        "outputs will not be resized unless they have zero elements. You can explicitly reuse an out tensor t by "
        "resizing it, inplace, to zero elements with t.resize_(0)."
    )


def out_signature(fn):
    """``fn``'s signature with torch's keyword-only ``out=None`` added (what ``inspect.signature`` shows for a
    function given ``out=`` by a wrapper, instead of the wrapped function's own)."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if "out" in sig.parameters:
        return sig
    at = len(params) - (params[-1].kind is inspect.Parameter.VAR_KEYWORD if params else 0)
    params.insert(at, inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None))
    return sig.replace(parameters=params)


def with_out(fn=None, *, same_dtype=False, warn_resize=True):
    """``fn`` with torch's keyword ``out=`` (see ``write_result``), for the functions off the eager hot path: as
    ``with_out(fn)``, or as the decorator ``@with_out(same_dtype=True)``."""
    if fn is None:
        return functools.partial(with_out, same_dtype=same_dtype, warn_resize=warn_resize)

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        return write_result(fn.__name__, fn(*args, **kwargs), out, same_dtype, warn_resize)

    wrapper.__signature__ = out_signature(fn)
    return wrapper
