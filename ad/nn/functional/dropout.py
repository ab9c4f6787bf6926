"""Dropout: ``dropout``, ``dropout1d/2d/3d``, ``alpha_dropout``, ``feature_alpha_dropout``.

A mask is drawn in numpy (from ``ad.manual_seed``'s generator, or ``generator=``, an extension of torch's
signature) and applied as a constant factor on the input's device (a CUDA input's mask is copied there: the
same draw on either device), so the gradient is the mask times the scale. With
``training=False`` each function returns ``input`` itself, as torch does.
"""

import warnings

import numpy as np

from ... import cuda as _cuda
from ...random import _rng_of
from ...tensor import Tensor
from .activation import _inplace


def _check(input, p, fn):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _apply(input, factor, inplace, shift=None):  # noqa: A002
    """``input * factor (+ shift)``, the host arrays ``factor`` and ``shift`` as constants on input's device."""
    factor = _cuda.index_tensor(np.asarray(factor, input.dtype), input)
    shift = None if shift is None else _cuda.index_tensor(np.asarray(shift, input.dtype), input)
    fn = (lambda x: x * factor) if shift is None else (lambda x: x * factor + shift)
    return _inplace(input, fn) if inplace else fn(input)


def _keep_mask(shape, p, dtype, generator):
    return (_rng_of(generator).random(shape) >= p).astype(dtype)


def dropout(input, p=0.5, training=True, inplace=False, *, generator=None):  # noqa: A002 - torch's names
    """Zeroes each element with probability ``p`` and scales the others by ``1 / (1 - p)``."""
    _check(input, p, "dropout")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _apply(input, np.zeros(input.shape, input.dtype), inplace)
    mask = _keep_mask(input.shape, p, input.dtype, generator) * (1.0 / (1.0 - p))
    return _apply(input, mask.astype(input.dtype), inplace)


def _feature_dropout(input, p, training, inplace, generator, batched_ndim, fn):  # noqa: A002
    _check(input, p, fn)
    lead = 2 if input.ndim == batched_ndim else 1  # (N, C, ...) or (C, ...): one draw per channel
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        if fn == "dropout1d":
            raise RuntimeError(
                f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that dropout1d exists "
                "to "
                "provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an "
                "optional batch dimension (i.e. 2D or 3D inputs)."
            )
        warnings.warn(f"{fn}: Received a {input.ndim}-D input to {fn}, which is deprecated and will result in "
                      f"an error in a future release.", UserWarning, stacklevel=3)
        lead = 2
    elif fn == "dropout2d" and input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", UserWarning, stacklevel=3)
        lead = 2
    if not training or p == 0.0:
        return input
    shape = input.shape[:lead] + (1,) * (input.ndim - lead)
    return _masked(input, p, inplace, generator, shape, False)


def _masked(input, p, inplace, generator, shape, alpha):  # noqa: A002
    keep = _keep_mask(shape, p, input.dtype, generator)
    if alpha:
        return _alpha(input, keep, p, inplace)
    if p == 1.0:
        return _apply(input, np.zeros(shape, input.dtype), inplace)
    return _apply(input, (keep / (1.0 - p)).astype(input.dtype), inplace)


_ALPHA = 1.7580993408473766  # -selu's negative saturation, scale * alpha


def _alpha(input, keep, p, inplace):  # noqa: A002
    if p == 1.0:
        return _apply(input, np.zeros(keep.shape, input.dtype), inplace)
    a = 1.0 / np.sqrt((_ALPHA * _ALPHA * p + 1.0) * (1.0 - p))
    b = (keep - 1.0) * (_ALPHA * a) + _ALPHA * a * p
    return _apply(input, (keep * a).astype(input.dtype), inplace, b.astype(input.dtype))


def dropout1d(input, p=0.5, training=True, inplace=False, *, generator=None):  # noqa: A002
    """Zeroes whole channels of (N, C, L) or (C, L) input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, generator, 3, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False, *, generator=None):  # noqa: A002
    """Zeroes whole channels of (N, C, H, W) or (C, H, W) input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, generator, 4, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False, *, generator=None):  # noqa: A002
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, generator, 5, "dropout3d")


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, generator=None):  # noqa: A002
    """Dropout that keeps SELU's zero mean and unit variance: dropped elements take ``-alpha'``, then an
    affine map restores the moments (torch's constants)."""
    _check(input, p, "alpha_dropout")
    if not training or p == 0.0:
        return input
    return _masked(input, p, inplace, generator, input.shape, alpha=True)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, *, generator=None):  # noqa: A002
    """alpha_dropout with one draw per channel (dims 0 and 1 of the input)."""
    _check(input, p, "feature_alpha_dropout")
    if not training or p == 0.0:
        return input
    shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _masked(input, p, inplace, generator, shape, alpha=True)
