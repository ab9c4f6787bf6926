"""torch's ``*_copy`` functions: each view op's result as a new contiguous tensor (``torch.t_copy(x)`` is
``x.t().contiguous()`` that never aliases ``x``), differentiable as the view op followed by a copy.

``detach_copy`` returns a tensor that does not require grad (torch marks its result as requiring grad, and then
raises "derivative for aten::detach_copy is not implemented" in backward).

``as_strided_copy`` reads torch's storage model off ad's views: the storage is the view's root tensor (``_vbase``,
or the tensor itself), ``stride()`` and ``storage_offset()`` place the input in it. Each output element is the
storage element at ``storage_offset + sum(i_k * stride_k)``: a gather from the input where that element belongs
to it (gradients flow there), a constant read of the root elsewhere (no gradient, as torch's). The
``view_as_real_copy`` / ``view_as_complex_copy`` and sparse ``*_copy`` functions are absent: ad has no complex
or sparse tensors.
"""

import numpy as np

from . import cuda as _cuda
from .ops.out import with_out
from .tensor import Tensor

__all__ = [
    "alias_copy", "as_strided_copy", "detach_copy", "diagonal_copy", "expand_copy", "permute_copy", "select_copy",
    "slice_copy",
    "split_copy", "split_with_sizes_copy", "squeeze_copy", "t_copy", "transpose_copy", "unbind_copy", "unfold_copy",
    "unsqueeze_copy", "view_copy",
]


def _check(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")


def _fresh(view):
    """A contiguous copy of ``view`` that shares no memory with it."""
    out = view.clone()
    return out if out.is_contiguous() else out.contiguous()


@with_out
def alias_copy(input):
    """``torch.alias_copy``: a copy of ``input`` (the copy variant of ``torch.alias``)."""
    _check("alias_copy", input)
    return _fresh(input)


@with_out
def detach_copy(input):
    """``torch.detach_copy``: a copy of ``input`` outside the graph (see the module's note)."""
    _check("detach_copy", input)
    return _fresh(input.detach())


@with_out
def diagonal_copy(input, offset=0, dim1=0, dim2=1):
    """``torch.diagonal_copy``: ``input.diagonal(offset, dim1, dim2)`` as a new tensor."""
    _check("diagonal_copy", input)
    return _fresh(input.diagonal(offset, dim1, dim2))


@with_out
def expand_copy(input, size, *, implicit=False):
    """``torch.expand_copy``: ``input.expand(size)`` materialized (``implicit`` is accepted, as torch's)."""
    _check("expand_copy", input)
    return _fresh(input.expand(*size))


@with_out
def permute_copy(input, dims):
    """``torch.permute_copy``: ``input.permute(dims)`` as a new contiguous tensor."""
    _check("permute_copy", input)
    return _fresh(input.permute(*dims))


@with_out
def select_copy(input, dim, index):
    """``torch.select_copy``: ``input.select(dim, index)`` as a new tensor."""
    _check("select_copy", input)
    return _fresh(input.select(dim, index))


@with_out
def slice_copy(input, dim=0, start=None, end=None, step=1):
    """``torch.slice_copy``: ``input`` sliced ``start:end:step`` along ``dim``, as a new tensor.

    Raises:
        RuntimeError: ``step`` is not positive (torch's message).
    """
    _check("slice_copy", input)
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    dim = dim + input.ndim if dim < 0 else dim
    return _fresh(input[(slice(None),) * dim + (slice(start, end, step),)])


@with_out
def split_copy(input, split_size, dim=0):
    """``torch.split_copy``: the pieces of ``input.split(split_size, dim)``, each a new tensor (a tuple)."""
    _check("split_copy", input)
    return tuple(_fresh(p) for p in input.split(split_size, dim))


@with_out
def split_with_sizes_copy(input, split_sizes, dim=0):
    """``torch.split_with_sizes_copy``: ``input.split(split_sizes, dim)`` with explicit sizes, copied (a tuple)."""
    _check("split_with_sizes_copy", input)
    return tuple(_fresh(p) for p in input.split(list(split_sizes), dim))


@with_out
def squeeze_copy(input, dim=None):
    """``torch.squeeze_copy``: ``input.squeeze(dim)`` (all size-1 dims when ``dim`` is None), copied."""
    _check("squeeze_copy", input)
    return _fresh(input.squeeze() if dim is None else input.squeeze(dim))


@with_out
def t_copy(input):
    """``torch.t_copy``: ``input.t()`` as a new contiguous tensor."""
    _check("t_copy", input)
    return _fresh(input.t())


@with_out
def transpose_copy(input, dim0, dim1):
    """``torch.transpose_copy``: ``input.transpose(dim0, dim1)`` as a new contiguous tensor."""
    _check("transpose_copy", input)
    return _fresh(input.transpose(dim0, dim1))


@with_out
def unbind_copy(input, dim=0):
    """``torch.unbind_copy``: the slices of ``input.unbind(dim)``, each a new tensor (a tuple)."""
    _check("unbind_copy", input)
    return tuple(_fresh(p) for p in input.unbind(dim))


@with_out
def unfold_copy(input, dimension, size, step):
    """``torch.unfold_copy``: ``input.unfold(dimension, size, step)`` as a new contiguous tensor."""
    _check("unfold_copy", input)
    return _fresh(input.unfold(dimension, size, step))


@with_out
def unsqueeze_copy(input, dim):
    """``torch.unsqueeze_copy``: ``input.unsqueeze(dim)`` as a new tensor."""
    _check("unsqueeze_copy", input)
    return _fresh(input.unsqueeze(dim))


@with_out
def view_copy(input, size):
    """``torch.view_copy``: ``input.view(size)`` (a shape, or a dtype to reinterpret the bytes as), copied."""
    _check("view_copy", input)
    if isinstance(size, (tuple, list)):
        return _fresh(input.view(*size))
    return _fresh(input.view(size))


@with_out
def as_strided_copy(input, size, stride, storage_offset=None):
    """``torch.as_strided_copy``: the elements of ``input``'s storage at ``storage_offset + sum(i_k * stride_k)``
    (``storage_offset`` defaults to ``input``'s own), as a new tensor of shape ``size``.

    Raises:
        RuntimeError: ``size`` and ``stride`` of different lengths, a negative stride, size or offset, or a
            layout that reaches past the storage (torch's messages).

    Example:
        >>> ad.as_strided_copy(ad.arange(6.0), (2, 2), (1, 2))
        tensor([[0., 2.],
                [1., 3.]])
    """
    from .as_strided import check_layout, storage_positions
    from .ops import gather_map, where
    from .ops.indexing import AS_STRIDED_COPY

    _check("as_strided_copy", input)
    size, stride = [int(n) for n in size], [int(s) for s in stride]
    offset = input.storage_offset() if storage_offset is None else int(storage_offset)
    root = input if input._vbase is None else input._vbase
    check_layout(size, stride, offset, input.dtype.itemsize, root.numel())
    wanted = storage_positions(size, stride, offset)
    # storage index -> flat index in the input (-1: not one of the input's elements)
    owner = np.full(root.numel(), -1, dtype=np.int64)
    owner[storage_positions(input.shape, input.stride(), input.storage_offset())] = np.arange(input.numel())
    index = owner[wanted]
    inside = index >= 0
    if inside.all():
        return gather_map(input, size, index, AS_STRIDED_COPY)
    # some elements lie outside the input: read from the root's storage, without a gradient
    root_owner = np.full(root.numel(), -1, dtype=np.int64)
    root_owner[storage_positions(root.shape, root.stride(), 0)] = np.arange(root.numel())
    outside = gather_map(root.detach(), size, root_owner[wanted])
    if not inside.any() and (input.numel() == 0 or not input.requires_grad):
        return outside
    # (with no element inside, the all-false select still ties the result to the input's graph, as torch's)
    gathered = gather_map(input, size, np.where(inside, index, 0), AS_STRIDED_COPY)
    return where(_cuda.index_tensor(inside.reshape(size), input), gathered, outside)
