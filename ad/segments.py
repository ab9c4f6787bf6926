"""``torch.segment_reduce``: reductions over consecutive segments of one dimension.

The segments of ``data`` along ``axis`` are given by ``lengths`` (or ``offsets``), one row of segments per index
of the dimensions before ``axis``. Every segment is gathered into a padded block of shape
``batch + (segments, longest) + rest`` (one index map, ``ops.gather_map``), its padding set to the reduction's
identity by a constant mask (``where``), and the block reduced over its ``longest`` axis with the ordinary ad
reduction (``sum``, ``amax``, ``amin``, ``prod``). So the gradients are those of the reductions: ``amax``/``amin``
share ties evenly and ``prod`` is exact at zeros, as torch's; reverse, forward and higher order all come from them.
"""

import numpy as np

from . import ops
from .ops import where
from .tensor import Tensor

__all__ = ["segment_reduce"]

_IDENTITY = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}
_NAMES = {"sum": "sum", "mean": "mean", "prod": "prod", "max": "max", "amax": "max", "min": "min", "amin": "min"}


def _int_array(t, name):
    if isinstance(t, Tensor):
        return np.asarray(t.detach().cpu().numpy(), dtype=np.int64)
    raise TypeError(f"segment_reduce(): argument '{name}' must be Tensor, not {type(t).__name__}")


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    """``torch.segment_reduce``: ``reduce`` ("sum", "mean", "prod", "amax"/"max", "amin"/"min") over the segments
    of ``data`` along ``axis``. An empty segment gives ``initial`` if given, else the reduction's identity (NaN for
    "mean"); otherwise ``initial`` joins every segment (for "mean": added to the sum, which is divided by the
    segment's length).

    Args:
        data: the tensor to reduce.
        lengths: the segment lengths, shape ``data.shape[:axis] + (segments,)`` (or ``offsets``, one longer).
        axis: the segmented dimension (``lengths.dim() - 1``).
        unsafe: skip the check that the lengths cover ``data.shape[axis]``.

    Returns:
        A tensor of ``data``'s shape with ``axis`` of size ``segments``.

    Raises:
        RuntimeError: torch's errors for an unknown reduction, missing lengths and offsets, ``indices``, an axis
            that is not the lengths' last, or lengths that do not cover the dimension.

    Example:
        >>> ad.segment_reduce(ad.tensor([1.0, 2.0, 3.0]), "sum", lengths=ad.tensor([2, 1]))
        tensor([3., 3.])
    """
    if reduce not in _NAMES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    kind = _NAMES[reduce]
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet.")
    if lengths is None and offsets is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined.")
    if lengths is not None:
        lens = _int_array(lengths, "lengths")
        bounds = np.concatenate([np.zeros(lens.shape[:-1] + (1,), np.int64), np.cumsum(lens, -1)], -1)
    else:
        bounds = _int_array(offsets, "offsets")
        lens = np.diff(bounds, axis=-1)
    axis = axis + data.ndim if axis < 0 else axis
    if axis != lens.ndim - 1:
        raise RuntimeError(f"segment_reduce(): Expected axis to be the last dimension of lengths but got {axis}.")
    n = data.shape[axis]
    if not unsafe and (bounds[..., -1] != n).any():
        raise RuntimeError(
            "segment_reduce(): Expected all rows of lengths along axis to sum to data.size(lengths.dim()-1) when "
            "!unsafe."
        )
    batch, rest = tuple(data.shape[:axis]), tuple(data.shape[axis + 1 :])
    segments = lens.shape[-1]
    longest = max(int(lens.max()) if lens.size else 0, 1)
    # flat index into data of element j of segment s (of batch row b), for every (b, s, j, r)
    j = np.arange(longest)
    valid = j < lens[..., None]  # batch + (segments, longest)
    position = np.where(valid, bounds[..., :-1, None] + j, 0)
    row = np.arange(int(np.prod(batch, dtype=np.int64))).reshape(batch + (1, 1)) if batch else 0
    inner = int(np.prod(rest, dtype=np.int64))
    start = (row * n + position) * inner
    index = start.reshape(start.shape + (1,) * len(rest)) + np.arange(inner).reshape(rest)
    shape = batch + (segments, longest) + rest
    block = ops.gather_map(data, shape, np.broadcast_to(index, shape))
    mask = ops.wrap_array(np.broadcast_to(valid.reshape(valid.shape + (1,) * len(rest)), shape).copy())
    if data._dev is not None:
        mask = mask.to(data.device)
    block = where(mask, block, _IDENTITY[kind])
    over = axis + 1
    if kind in ("sum", "mean"):
        out = block.sum(over)
    elif kind == "prod":
        out = block.prod(over)
    else:
        out = block.amax(over) if kind == "max" else block.amin(over)
    count = lens.reshape(lens.shape + (1,) * len(rest)).astype(data.dtype)
    empty = ops.wrap_array(np.broadcast_to(count == 0, out.shape).copy())
    if data._dev is not None:
        empty = empty.to(data.device)
    if initial is not None:
        if kind in ("sum", "mean"):
            out = out + initial
        elif kind == "prod":
            out = out * initial
        elif kind == "max":
            out = out.clamp(min=initial)
        else:
            out = out.clamp(max=initial)
    if kind == "mean":
        divisor = ops.wrap_array(np.maximum(count, 1))
        out = out / (divisor if data._dev is None else divisor.to(data.device))
        out = where(empty, float("nan") if initial is None else float(initial), out)
    elif initial is not None:
        out = where(empty, float(initial), out)
    return out
