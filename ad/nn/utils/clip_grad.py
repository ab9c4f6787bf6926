"""Gradient clipping (in place on ``.grad``, as torch) and parameters <-> one flat vector."""

import math

import numpy as np

from ... import creation
from ...grad_mode import no_grad
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
    if any(t._dev is not None for t in tensors):
        return _device_total_norm(tensors, norm_type, error_if_nonfinite)
    # torch's: the norm of the per-tensor norms (equal to the joint norm, but for p = -inf and 0, where the joint
    # min was the max and p = 0 divided by zero)
    norms = np.array([_host_norm(np.abs(t._data).ravel(), norm_type) for t in tensors])
    total = float(_host_norm(norms, norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise _nonfinite(norm_type)
    return wrap_array(np.array(total, dtype=tensors[0].dtype))


def _host_norm(a, norm_type):
    """The ``norm_type``-norm of the absolute values ``a`` (1-d numpy), as ``linalg.vector_norm``."""
    if not a.size:
        return 0.0
    if math.isinf(norm_type):
        return a.max() if norm_type > 0 else a.min()
    if norm_type == 0:
        return float(np.count_nonzero(a))
    with np.errstate(divide="ignore"):  # (a zero to a negative power: inf, the norm 0)
        return np.sum(a**norm_type) ** (1.0 / norm_type)


def _nonfinite(norm_type):
    return RuntimeError(
        f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
        "be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
        "`error_if_nonfinite=False`"
    )


def _device_total_norm(tensors, norm_type, error_if_nonfinite):
    """CUDA gradients: the norm of the per-tensor norms, reduced on the device (a 0-d CUDA tensor, as torch's;
    only ``error_if_nonfinite`` reads it on the host, as torch's check does)."""
    from ... import ops

    with no_grad():
        norms = [_device_norm(ops.reshape(t.detach(), (-1,)), norm_type) for t in tensors]
        total = _device_norm(ops.stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise _nonfinite(norm_type)
    return total


def _device_norm(v, norm_type):
    """The ``norm_type``-norm of the vector ``v`` in device ops (``linalg.vector_norm`` takes a CUDA operand
    through the host: two copies per gradient). Not differentiated (the caller holds ``no_grad``)."""
    from ... import ops

    if not v.numel():
        return ops.sum(v)
    if math.isinf(norm_type):
        a = ops.abs(v)
        return ops.amax(a) if norm_type > 0 else ops.amin(a)
    if norm_type == 0:
        return ops.sum((v != 0).to(v.dtype))
    if norm_type == 1:
        return ops.sum(ops.abs(v))
    if norm_type == 2:
        return ops.sqrt(ops.sum(v * v))
    return ops.sum(ops.abs(v) ** norm_type) ** (1.0 / norm_type)


def _scale_on_device(grads, max_norm, total):
    """``g *= min(1, max_norm / (total + 1e-6))`` for CUDA gradients, the factor computed on the device (no
    host read, as torch's foreach path)."""
    from ... import ops

    with no_grad():
        coef = ops.clamp(float(max_norm) / (total.detach() + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients in place so that their joint norm is at most ``max_norm``; returns the norm
    before clipping (torch's formula: factor ``min(1, max_norm / (norm + 1e-6))``)."""
    params = _as_list(parameters)
    grads = [p._grad for p in params if p._grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    if total._dev is not None:
        _scale_on_device(grads, max_norm, total)
        return total
    coef = float(max_norm) / (float(total._data) + 1e-6)
    coef = min(coef, 1.0)
    with np.errstate(invalid="ignore"):  # an inf gradient times a factor of 0 is NaN, silently as in torch
        for g in grads:
            g._data *= coef
            _bump(g)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p._grad is not None and p._grad._dev is not None:
            with no_grad():
                p._grad.clamp_(-clip_value, clip_value)
        elif p._grad is not None:
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
    pointer = 0
    for p in parameters:
        n = p.numel()
        if p._dev is not None or vec._dev is not None:  # (a device copy: the storage keeps its identity)
            with no_grad():
                p.copy_(vec.detach().reshape(-1)[pointer : pointer + n].reshape(p.shape))
        else:
            p._data[...] = vec._data.reshape(-1)[pointer : pointer + n].reshape(p.shape)
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
    if any(g._dev is not None for g in grads):
        if not isinstance(total_norm, Tensor):
            total_norm = creation.full((), float(total_norm), dtype=grads[0].dtype, device=grads[0].device)
        _scale_on_device(grads, max_norm, total_norm.to(grads[0].device))
        return
    norm = float(total_norm.detach().cpu()._data) if isinstance(total_norm, Tensor) else float(total_norm)
    coef = min(float(max_norm) / (norm + 1e-6), 1.0)
    for g in grads:
        g._data *= coef
        _bump(g)
