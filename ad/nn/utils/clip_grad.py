"""Gradient clipping (in place on ``.grad``, as torch) and parameters <-> one flat vector."""

import math

import numpy as np

from ...methods import _bump
from ...tensor import Tensor, wrap_array


def _as_list(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all ``tensors`` together (as one vector), a 0-d tensor."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return wrap_array(np.array(0.0))
    arrays = [np.abs(t._data).ravel() for t in tensors]
    if math.isinf(norm_type):
        total = max(float(a.max()) if a.size else 0.0 for a in arrays)
    else:
        total = float(sum(np.sum(a**norm_type) for a in arrays) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
            "be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return wrap_array(np.array(total, dtype=tensors[0].dtype))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients in place so that their joint norm is at most ``max_norm``; returns the norm
    before clipping (torch's formula: factor ``min(1, max_norm / (norm + 1e-6))``)."""
    params = _as_list(parameters)
    grads = [p._grad for p in params if p._grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    coef = float(max_norm) / (float(total._data) + 1e-6)
    coef = min(coef, 1.0)
    for g in grads:
        g._data *= coef
        _bump(g)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p._grad is not None:
            np.clip(p._grad._data, -clip_value, clip_value, out=p._grad._data)
            _bump(p._grad)


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated into one (differentiable) vector."""
    from ... import ops

    return ops.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of ``vec`` into the parameters' data (in place, not recorded)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    data = vec._data.reshape(-1)
    pointer = 0
    for p in parameters:
        n = p.numel()
        p._data[...] = data[pointer : pointer + n].reshape(p.shape)
        _bump(p)
        pointer += n


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of ``clip_grad_norm_`` (warns as torch)."""
    import warnings

    warnings.warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients in place by ``min(1, max_norm / (total_norm + 1e-6))`` for a ``total_norm`` computed
    beforehand (``get_total_norm`` of the gradients: the second half of ``clip_grad_norm_``)."""
    grads = [p._grad for p in _as_list(parameters) if p._grad is not None]
    if not grads:
        return
    norm = float(total_norm.detach().cpu()._data) if isinstance(total_norm, Tensor) else float(total_norm)
    coef = min(float(max_norm) / (norm + 1e-6), 1.0)
    for g in grads:
        g._data *= coef
        _bump(g)
