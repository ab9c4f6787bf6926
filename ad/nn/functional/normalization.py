"""Normalization: ``layer_norm``, ``group_norm``, ``batch_norm``, ``instance_norm``, ``local_response_norm``.

Composites: ``(x - mean) * rsqrt(var + eps)`` over the normalised dims (biased variance, as torch), then
the optional affine ``* weight + bias`` per channel / per normalised element. ``batch_norm`` and
``instance_norm`` update ``running_mean`` / ``running_var`` in place when training (outside the graph,
with the unbiased variance, as torch), and bump their version counters.
"""

import numpy as np

from ... import ops
from ...saved import guard, saves_as
from ...tensor import Tensor


def _normalize(x, dims, eps):
    mean = ops.mean(x, dims, keepdim=True)
    centered = x - mean
    var = ops.mean(centered * centered, dims, keepdim=True)
    return centered * ops.rsqrt(var + eps)


def _channel_shape(x):
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _affine(out, weight, bias, shape):
    if weight is not None:
        out = out * (ops.reshape(weight, shape) if shape is not None else weight)
    if bias is not None:
        out = out + (ops.reshape(bias, shape) if shape is not None else bias)
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002 - torch's names
    """Normalises over the last ``len(normalized_shape)`` dims, then ``* weight + bias`` (of that shape)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"layer_norm(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    shape = (int(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape [*, {', '.join(map(str, shape))}], "
            f"but got input of size{list(input.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                               f"{list(t.shape)} and normalized_shape = {list(shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    out = _affine(_normalize(input, dims, eps), weight, bias, None)
    return guard(out, "NativeLayerNormBackward0", input, weight, bias)


def rms_norm(input, normalized_shape, weight=None, eps=None):  # noqa: A002
    """``input * rsqrt(mean(input ** 2) + eps) * weight`` over the last dims (eps: the dtype's epsilon)."""
    shape = (int(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(int(s) for s in normalized_shape)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    out = input * ops.rsqrt(ops.mean(input * input, dims, keepdim=True) + eps)
    return out * weight if weight is not None else out


@saves_as("NativeGroupNormBackward0")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalises each of ``num_groups`` channel groups of (N, C, *) over its channels and positions."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.shape[0] != c):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of channels in input, "
                               f"but got {name} of shape {list(t.shape)} and input of shape {list(input.shape)}")
    grouped = ops.reshape(input, (n, num_groups, -1))
    out = ops.reshape(_normalize(grouped, (2,), eps), input.shape)
    return _affine(out, weight, bias, _channel_shape(input))


def _update_running(running, value, momentum):
    """``running = (1 - momentum) * running + momentum * value``, in place, outside the graph."""
    if running is None:
        return
    running._data[...] = (1.0 - momentum) * running._data + momentum * value
    running._version += 1


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,  # noqa: A002
               eps=1e-5):
    """Normalises each channel of (N, C, *) with the batch's statistics (``training``, which also updates the
    running ones in place) or with ``running_mean`` / ``running_var`` (eval)."""
    if input.ndim < 2:
        raise ValueError(f"expected 2D or higher input (got {input.ndim}D input)")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.numel() != c:
            raise RuntimeError(f"{name} should contain {c} elements not {t.numel()}")
    shape = _channel_shape(input)
    dims = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(input.shape)}")
        out = _normalize(input, dims, eps)
        if running_mean is not None or running_var is not None:
            xd = input._data
            mean = xd.mean(axis=dims)
            _update_running(running_mean, mean, momentum)
            _update_running(running_var, xd.var(axis=dims, ddof=1), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        mean = ops.reshape(running_mean, shape)
        out = (input - mean) * ops.rsqrt(ops.reshape(running_var, shape) + eps)
    return _affine(out, weight, bias, shape)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,  # noqa: A002
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalises each (n, c) plane of (N, C, *) over its positions; with ``use_input_stats=False`` the
    running statistics are used instead. Running statistics are updated with the batch mean of the planes'."""
    if input.ndim < 3:
        raise ValueError(f"expected 3D or higher input (got {input.ndim}D input)")
    shape = _channel_shape(input)
    dims = tuple(range(2, input.ndim))
    if use_input_stats:
        if int(np.prod(input.shape[2:])) <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                             f"{tuple(input.shape)}")
        out = _normalize(input, dims, eps)
        xd = input._data
        if running_mean is not None:
            _update_running(running_mean, xd.mean(axis=dims).mean(0), momentum)
        if running_var is not None:
            _update_running(running_var, xd.var(axis=dims, ddof=1).mean(0), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
        out = (input - ops.reshape(running_mean, shape)) * ops.rsqrt(ops.reshape(running_var, shape) + eps)
    return _affine(out, weight, bias, shape)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):  # noqa: A002
    """``input / (k + alpha * mean of input**2 over size neighbouring channels) ** beta``."""
    from .pooling import avg_pool2d, avg_pool3d
    from .vision import pad

    dim = input.ndim
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
    if input.numel() == 0:
        return input
    div = ops.unsqueeze(input * input, 1)
    if dim == 3:
        div = pad(div, (0, 0, size // 2, (size - 1) // 2))
        div = ops.squeeze(avg_pool2d(div, (size, 1), stride=1), 1)
    else:
        sizes = input.shape
        div = ops.reshape(div, (sizes[0], 1, sizes[1], sizes[2], -1))
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = ops.squeeze(avg_pool3d(div, (size, 1, 1), stride=1), 1)
        div = ops.reshape(div, sizes)
    div = (div * alpha + k) ** beta
    return input / div


