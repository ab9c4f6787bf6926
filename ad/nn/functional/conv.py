"""Convolutions as im2col + one batched GEMM: ``unfold``, ``fold``, ``conv1d/2d/3d``, ``conv_transpose1d/2d/3d``.

Two Python-swept primitives carry every convolution: ``_Im2Col`` (torch's ``F.unfold``, generalised to
1-3 spatial dims) and its adjoint ``_Col2Im`` (``F.fold``). Both run compiled kernels (``kernels/conv.py``)
on the image viewed as ``(N, C, D, H, W)``; each one's backward and jvp is the other one applied to the
cotangent or tangent, written with ``ad`` ops, so ``create_graph=True``, forward mode and any order of
derivative come without more rules. A convolution is then

    cols = im2col(x)                           (N, C * taps, L)
    out  = weight.reshape(O, C * taps) @ cols  (N, O, L): one recorded batched MATMUL row (BLAS)

and a transposed convolution is ``col2im(weight2d.T @ x)``. Groups split the channel axis into a batch axis
of the product. Everything else (bias, reshapes) is ordinary ``ad`` ops. That composite is the differentiable
form (``create_graph=True``); ``conv1d/2d/3d`` themselves record one row, ``_Convolution``, which does the same
arithmetic one sample at a time in numpy + BLAS, so that a sample's columns stay in cache (see its docstring),
with the batch split across the cores (``ad.parallel.run_parts``, numpy's BLAS on one thread meanwhile).
On CUDA operands ``conv1d/2d/3d`` and the transposed convolutions run the composite in device ops
(``_device_conv_indexed``): the columns gathered in one launch through an index table of one sample's im2col
(cached per geometry on the device; a transposed convolution is the stride-1 convolution of its input spread
into zeros, the table's empty entries, with the taps reversed), then the batched matmul. Samples too big for
exact float32 indices gather the columns by strided slices (``_device_conv``; the transposed convolution's
spread by ``scatter_strided``, ``_device_conv_transpose``).
"""

import itertools

import numpy as np

from kernels import conv as kconv

from ... import blas_threads, ops, parallel
from ...autograd.function import Function
from ...forward import _fw, visible_levels_of
from ...grad_mode import is_grad_enabled
from ...ops.shape_index import flip
from ...tape import _ArenaPool
from ...tensor import Tensor, wrap_array

# ---------------------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------------------


def _tuple(value, n, name):
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = tuple(value) * n
        if len(value) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to match the "
                               f"convolution dimensions, but got {name}={list(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _geometry(spatial, kernel, stride, padding, dilation):
    """The kernels' int64 geometry array (3 spatial dims, leading ones filled) and the output size."""
    k = len(spatial)
    out = []
    for s, kk, st, p, d in zip(spatial, kernel, stride, padding, dilation):
        o = (s + 2 * p - d * (kk - 1) - 1) // st + 1
        out.append(o)
    pad3 = lambda v, fill: (fill,) * (3 - k) + tuple(v)  # noqa: E731
    geom = np.array(
        pad3(kernel, 1) + pad3(stride, 1) + pad3(padding, 0) + pad3(dilation, 1) + pad3(out, 1), dtype=np.int64
    )
    return geom, tuple(out)


class _ScratchPool(_ArenaPool):
    """The convolutions' large temporaries (columns, GEMM products, outputs, gradients), recycled between
    calls: numpy maps a fresh array this large anew each time, and the kernel's first touch of every page
    (zeroing, and huge-page compaction) cost more CPU time than the GEMMs in a training step. A buffer is handed
    out again only when nothing views it any more (the pool counts references), so a result kept by the caller
    or columns saved for backward are never overwritten."""

    MAX_BUFFERS = 16
    MAX_TOTAL_BYTES = 512 << 20


_SCRATCH = _ScratchPool()


def _scratch(shape, dtype):
    """An uninitialized C-contiguous array of ``shape``, a view of a pooled buffer (see ``_ScratchPool``)."""
    size = int(np.prod(shape))
    buf = _SCRATCH.take(dtype, size)
    if buf is None:
        buf = np.empty(size, dtype)
    _SCRATCH.give(buf)  # pooled at once: it is only taken again after the view below and its copies die
    return buf[:size].reshape(shape)


def _as5d(shape):
    n, c, *sp = shape
    return (n, c) + (1,) * (3 - len(sp)) + tuple(sp)


def _im2col_np(x, kernel, stride, padding, dilation):
    n, c, *sp = x.shape
    geom, out = _geometry(sp, kernel, stride, padding, dilation)
    taps = int(np.prod(kernel))
    cols = np.empty((n, c * taps, int(np.prod(out))), x.dtype)
    if cols.size:
        kconv.im2col(np.ascontiguousarray(x).reshape(_as5d(x.shape)), geom, cols)
    return cols


def _col2im_np(cols, image_shape, kernel, stride, padding, dilation):
    n, c, *sp = image_shape
    geom, _ = _geometry(sp, kernel, stride, padding, dilation)
    x = np.zeros(_as5d(image_shape), cols.dtype)
    if cols.size:
        kconv.col2im(np.ascontiguousarray(cols), geom, x)
    return x.reshape(image_shape)


class _Im2Col(Function):
    """``(N, C, *spatial) -> (N, C * prod(kernel), L)``: the sliding windows of ``x`` as columns."""

    _grad_fn_name = "Im2ColBackward0"
    _backward_carries_tangents = True  # (linear: its backward applies _Col2Im to the cotangent, dual or not)

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation):
        ctx.geometry = (tuple(x.shape), kernel, stride, padding, dilation)
        return wrap_array(_im2col_np(x._data, kernel, stride, padding, dilation))

    @staticmethod
    def backward(ctx, g):
        shape, *geo = ctx.geometry
        return (_Col2Im.apply(g, shape, *geo),) + (None,) * 4

    @staticmethod
    def jvp(ctx, t, *_):
        shape, *geo = ctx.geometry
        return _Im2Col.apply(t, *geo)


class _Col2Im(Function):
    """``(N, C * prod(kernel), L) -> (N, C, *spatial)``: sums the columns back onto the image (the adjoint)."""

    _grad_fn_name = "Col2ImBackward0"
    _backward_carries_tangents = True  # (linear: its backward applies _Im2Col to the cotangent, dual or not)

    @staticmethod
    def forward(ctx, cols, image_shape, kernel, stride, padding, dilation):
        ctx.geometry = (kernel, stride, padding, dilation)
        ctx.image_shape = image_shape
        return wrap_array(_col2im_np(cols._data, image_shape, kernel, stride, padding, dilation))

    @staticmethod
    def backward(ctx, g):
        return (_Im2Col.apply(g, *ctx.geometry),) + (None,) * 5

    @staticmethod
    def jvp(ctx, t, *_):
        return _Col2Im.apply(t, ctx.image_shape, *ctx.geometry)


def _im2col(x, kernel, stride, padding, dilation):
    return _Im2Col.apply(x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation))


def _col2im(cols, image_shape, kernel, stride, padding, dilation):
    return _Col2Im.apply(cols, tuple(image_shape), tuple(kernel), tuple(stride), tuple(padding), tuple(dilation))


# ---------------------------------------------------------------------------------------------------------
# unfold / fold (torch's 4-D forms)
# ---------------------------------------------------------------------------------------------------------


def _check_tensor(x, fn, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{what}' (position 1) must be Tensor, not {type(x).__name__}")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002 - torch's names
    """Sliding local blocks of a batched image ``(N, C, H, W)`` as columns ``(N, C * kh * kw, L)``.

    Example:
        >>> F.unfold(ad.ones(1, 2, 3, 3), 2).shape
        (1, 8, 4)
    """
    _check_tensor(input, "unfold")
    batched = input.ndim == 4
    if input.ndim < 3:  # (torch 2.13 indexes the channel dim of the batched form first)
        nd = max(input.ndim, 1)
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got 2)")
    if input.ndim > 4:
        raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero "
                           f"dimensions for input, but got: {list(input.shape)}")
    x = input if batched else ops.unsqueeze(input, 0)
    k, d, p, s = (_tuple(v, 2, n) for v, n in ((kernel_size, "kernel_size"), (dilation, "dilation"),
                                               (padding, "padding"), (stride, "stride")))
    _check_geometry(x.shape[2:], k, s, p, d, "unfold")
    cols = _im2col(x, k, s, p, d)
    return cols if batched else ops.squeeze(cols, 0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """Sums columns ``(N, C * kh * kw, L)`` into an image ``(N, C, *output_size)`` (the adjoint of unfold)."""
    _check_tensor(input, "fold")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero "
                           f"dimensions for input, but got: {list(input.shape)}")
    batched = input.ndim == 3
    x = input if batched else ops.unsqueeze(input, 0)
    o, k, d, p, s = (_tuple(v, 2, n) for v, n in ((output_size, "output_size"), (kernel_size, "kernel_size"),
                                                  (dilation, "dilation"), (padding, "padding"), (stride, "stride")))
    taps = k[0] * k[1]
    if x.shape[1] % taps:
        raise RuntimeError(
            f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got "
            f"input.size(1)={x.shape[1]} and kernel_size={k}"
        )
    _, out = _geometry(o, k, s, p, d)
    if int(np.prod(out)) != x.shape[2]:
        raise RuntimeError(
            f"Given output_size={o}, kernel_size={k}, dilation={d}, padding={p}, stride={s}, expected size of "
            f"input's dimension 2 to match the calculated number of sliding blocks {out[0]} * {out[1]} = "
            f"{out[0] * out[1]}, but got input.size(2)={x.shape[2]}."
        )
    image = _col2im(x, (x.shape[0], x.shape[1] // taps) + o, k, s, p, d)
    return image if batched else ops.squeeze(image, 0)


def _check_steps(stride, padding, dilation, output_padding=()):
    """torch's checks (and words) of a convolution's steps, before any size is computed."""
    if any(e <= 0 for e in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(e < 0 for e in padding):
        raise RuntimeError("negative padding is not supported")
    if any(e < 0 for e in output_padding):
        raise RuntimeError("negative output_padding is not supported")
    if any(e <= 0 for e in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")


def _check_geometry(spatial, kernel, stride, padding, dilation, fn):
    if fn == "unfold":  # torch's im2col wording
        for v, name, short in ((kernel, "kernel size", "kernel"), (stride, "stride", "stride"),
                               (dilation, "dilation", "dilation"), (padding, "padding", "pad")):
            if any(e < 0 if name == "padding" else e <= 0 for e in v):
                should = "be non-negative" if name == "padding" else "be greater than zero"
                raise RuntimeError(f"{name} should {should}, but got {short}_height: {v[0]} {short}_width: {v[1]}")
    _check_steps(stride, padding, dilation)
    if any(e <= 0 for e in kernel):
        raise RuntimeError(f"{fn}: kernel size should be greater than zero, but got kernel_size: {kernel}")
    _, out = _geometry(spatial, kernel, stride, padding, dilation)
    if any(o <= 0 for o in out):
        if fn == "unfold":  # torch's im2col wording
            raise RuntimeError(
                f"Given input with spatial size {tuple(spatial)}, kernel_size={tuple(kernel)}, dilation="
                f"{tuple(dilation)}, padding={tuple(padding)}, calculated shape of the array of sliding blocks as "
                f"{tuple(out)}, but its components must be at least one."
            )
        # the output is empty exactly when the dilated kernel is wider than the padded input: torch's wording
        padded = " x ".join(str(n + 2 * q) for n, q in zip(spatial, padding))
        dilated = " x ".join(str(dd * (kk - 1) + 1) for kk, dd in zip(kernel, dilation))
        raise RuntimeError(
            f"Calculated padded input size per channel: ({padded}). Kernel size: ({dilated}). Kernel size can't be "
            "greater than actual input size"
        )


# ---------------------------------------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------------------------------------


def _same_padding(spatial, kernel, dilation):
    """torch's padding='same': total d * (k - 1), the odd one extra after (applied by an explicit pad)."""
    before, after = [], []
    for kk, d in zip(kernel, dilation):
        total = d * (kk - 1)
        before.append(total // 2)
        after.append(total - total // 2)
    return tuple(before), tuple(after)


def _weight_dims_error(nd, input, weight, settings):  # noqa: A002
    """torch's RuntimeError for a ``weight`` whose dims do not fit a ``conv{nd}d`` (transposed or not): the
    weight's dims set the number of spatial dims ``k``, each of ``settings`` (``(name, value)`` in torch's order of
    checks; an int is ``nd`` copies, a string padding is not checked) must be one value or ``k``, and then the
    input (batched) must have the weight's dims."""
    if weight.ndim < 3:
        return RuntimeError("weight should have at least three dimensions")
    k = weight.ndim - 2
    same = any(isinstance(value, str) and value == "same" for _, value in settings)
    for name, value in settings:
        if isinstance(value, str):
            continue
        values = [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * nd
        if len(values) != 1 and len(values) != k and not same:
            return RuntimeError(
                f"expected {name} to be a single integer value or a list of {k} values to match the convolution "
                f"dimensions, but got {name}={values}"
            )
    shape = list(input.shape) if input.ndim == nd + 2 else [1, *input.shape]
    gap = "" if same else " "  # (torch's padding='same' path words it without the space)
    return RuntimeError(
        f"Expected {weight.ndim}-dimensional input for {weight.ndim}-dimensional weight{gap}{list(weight.shape)}, "
        f"but got {len(shape)}-dimensional input of size {shape} instead"
    )


def _convnd(nd, input, weight, bias, stride, padding, dilation, groups):  # noqa: A002
    fn = f"conv{nd}d"
    _check_tensor(input, fn)
    _check_tensor(weight, fn, "weight")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {fn}, but got input of size: "
            f"{list(input.shape)}"
        )
    if weight.ndim != nd + 2:
        raise _weight_dims_error(nd, input, weight, (("stride", stride), ("padding", padding), ("dilation", dilation)))
    if input.dtype != weight.dtype:
        raise RuntimeError(
            f"Input type ({input.dtype}) and weight type ({weight.dtype}) should be the same"
        )
    batched = input.ndim == nd + 2
    x = input if batched else ops.unsqueeze(input, 0)
    groups = int(groups)
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    out_c, in_per_group, *kernel = weight.shape
    kernel = tuple(kernel)
    c = x.shape[1]
    if c != in_per_group * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(x.shape)} to have "
            f"{in_per_group * groups} channels, but got {c} channels instead"
        )
    if out_c % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got weight "
            f"of size {list(weight.shape)} instead"
        )
    stride = _tuple(stride, nd, "stride")
    dilation = _tuple(dilation, nd, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            before, after = _same_padding(x.shape[2:], kernel, dilation)
            if before != after:  # asymmetric: pad the extra element after, explicitly
                from .vision import pad as _pad

                widths = []
                for b, a in reversed(list(zip(before, after))):
                    widths += [0, a - b]
                x = _pad(x, widths)
            padding = before
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    else:
        padding = _tuple(padding, nd, "padding")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (out_c,)):
        raise RuntimeError(
            f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional with {out_c} elements, "
            f"but got bias of size {list(bias.shape) if isinstance(bias, Tensor) else bias} instead"
        )
    _check_geometry(x.shape[2:], kernel, stride, padding, dilation, fn)
    geo = (kernel, stride, padding, dilation)
    if x._dev is not None and weight._dev is not None:
        out = _device_conv_indexed(x, weight, bias, geo, groups, False, _geometry(x.shape[2:], *geo)[1])
        if out is None:
            out = _device_conv(x, weight, bias, geo, groups)
    else:
        out = _Convolution.apply(x, weight, bias, geo, groups)
    return out if batched else ops.squeeze(out, 0)


_COLUMN_TABLES = {}  # geometry -> its column table on the device (``_column_table``), the latest few kept
_MAX_COLUMN_TABLES = 32
_MAX_COLUMN_TABLE_BYTES = 256 << 20  # (a 3x3 convolution of 256 channels at 56x56: 58 MB of int64)


def _tap_coords(size, out, k, stride, padding, dilation, transposed):
    """Per output ``o`` (O,) and tap ``j`` (K,) of one spatial dim: the input coordinate its column reads and
    whether there is one. A convolution reads ``o * stride - padding + j * dilation``. A transposed convolution is
    the stride-1 convolution, with the taps reversed, of the input spread ``stride`` apart with ``dilation * (k -
    1) - padding`` zeros before it: column ``(o, j)`` reads spread position ``o + (k - 1 - j) * dilation``, which is
    input element ``i`` where that is ``i * stride + dilation * (k - 1) - padding``, else one of the zeros."""
    o, j = np.arange(out)[:, None], np.arange(k)[None, :]
    if not transposed:
        coord = o * stride - padding + j * dilation
        return coord, (coord >= 0) & (coord < size)
    spread = o + (k - 1 - j) * dilation - (dilation * (k - 1) - padding)
    coord = spread // stride
    return coord, (spread % stride == 0) & (spread >= 0) & (coord < size)


def _column_table(channels, spatial, geo, out_spatial, transposed, dev):
    """The in-sample flat index (C * spatial) that each column element ``(c, taps..., outputs...)`` reads, -1 for
    the zeros of padding (and of a transposed convolution's spreading): one sample's im2col as an index table,
    the same for every sample; made once per geometry on the host, kept on the device."""
    key = (channels, tuple(spatial), geo, tuple(out_spatial), transposed, dev)
    table = _COLUMN_TABLES.get(key)
    if table is not None:
        return table
    from ...cuda.arrays import to_device

    nd = len(spatial)
    index = np.zeros((), np.int64)
    valid = np.ones((), bool)
    for d, (size, o, k, st, p, dl) in enumerate(zip(spatial, out_spatial, *geo)):
        coord, ok = _tap_coords(size, o, k, st, p, dl, transposed)  # (O_d, K_d)
        shape = [1] * (2 * nd)  # (taps..., outputs...)
        shape[d], shape[nd + d] = k, o
        index = index + (np.clip(coord, 0, size - 1) * int(np.prod(spatial[d + 1:]))).T.reshape(shape)
        valid = valid & ok.T.reshape(shape)
    plane = int(np.prod(spatial))
    table = np.where(valid[None], index[None] + (np.arange(channels) * plane).reshape((-1,) + (1,) * (2 * nd)), -1)
    table = to_device(np.ascontiguousarray(table, dtype=np.int64).reshape(-1))
    while _COLUMN_TABLES and (len(_COLUMN_TABLES) >= _MAX_COLUMN_TABLES or table.nbytes + sum(
            t.nbytes for t in _COLUMN_TABLES.values()) > _MAX_COLUMN_TABLE_BYTES):
        del _COLUMN_TABLES[next(iter(_COLUMN_TABLES))]  # (the oldest first)
    _COLUMN_TABLES[key] = table
    return table


def _device_conv_indexed(x, weight, bias, geo, groups, transposed, out_spatial):
    """A convolution (or, ``transposed``, a transposed convolution) of CUDA operands in two launches: one sample's
    columns as an index table (``_column_table``), the batch's columns gathered through it by one
    ``ops.gather_indexed`` (zeros where it says -1: padding and spreading cost nothing; the adjoint adds each
    column's gradient back to its input element), and the batched matmul by the weight (a transposed
    convolution's: its channel axes swapped per group, the taps reversed by the table). None when one sample's
    indices would not be exact in the dtype (float32 above 2 ** 24 elements; ``_device_conv`` then)."""
    n, c, *spatial = x.shape
    per_in = c * int(np.prod(spatial))
    if x._data.dtype.kind != "f" or per_in > 1 << (24 if x._data.dtype == np.float32 else 53):
        return None
    kernel = geo[0]
    if transposed:
        in_c, out_per_group = weight.shape[:2]
        w = ops.reshape(weight, (groups, in_c // groups, out_per_group) + tuple(kernel))
        weight = ops.reshape(ops.transpose(w, 1, 2), (groups * out_per_group, in_c // groups) + tuple(kernel))
    out_c, in_per_group = weight.shape[:2]
    taps, length = int(np.prod(kernel)), int(np.prod(out_spatial))
    table = _column_table(c, spatial, geo, out_spatial, transposed, x._dev)
    cols = ops.gather_indexed(x, (n, groups, in_per_group * taps, length), table, c * taps * length, per_in,
                              shared=True)  # fmt: skip
    w = ops.reshape(weight, (groups, out_c // groups, in_per_group * taps))
    out = ops.reshape(ops.matmul(w, cols), (n, out_c) + tuple(out_spatial))
    if bias is not None:
        out = out + ops.reshape(bias, (out_c,) + (1,) * len(kernel))
    return out


def _device_conv(x, weight, bias, geo, groups):
    """A convolution of CUDA operands in device ops: ``_conv_composite``'s product with its columns gathered by
    strided slices, one per tap, of the zero-padded input (``_Im2Col`` is a numpy kernel: on CUDA operands
    ``_Convolution`` went through the host, three copies back per call and a hand-over to Python in backward).
    The gradients and tangents are the slices', the stack's and the matmul's rules, all on the device."""
    kernel, stride, padding, dilation = geo
    n = x.shape[0]
    out_c, in_per_group = weight.shape[:2]
    spatial_out = _geometry(x.shape[2:], kernel, stride, padding, dilation)[1]
    for d, p in enumerate(padding):
        if p:
            axis = 2 + d
            zeros = _device_zeros(x, axis, p)
            x = ops.cat([zeros, x, zeros], axis)
    taps = []
    for offsets in itertools.product(*(range(k) for k in kernel)):  # (row-major: the weight's tap order)
        window = tuple(
            slice(o * dl, o * dl + (size - 1) * st + 1, st)
            for o, dl, size, st in zip(offsets, dilation, spatial_out, stride)
        )
        taps.append(x[(slice(None), slice(None)) + window])
    cols = ops.stack(taps, 2) if len(taps) > 1 else ops.unsqueeze(taps[0], 2)  # (N, C, taps, *out)
    length = int(np.prod(spatial_out))
    cols = ops.reshape(cols, (n, groups, in_per_group * len(taps), length))
    w = ops.reshape(weight, (groups, out_c // groups, in_per_group * len(taps)))
    out = ops.reshape(ops.matmul(w, cols), (n, out_c) + spatial_out)  # (N, G, O / G, L) -> (N, O, *spatial)
    if bias is not None:
        out = out + ops.reshape(bias, (out_c,) + (1,) * len(kernel))
    return out


def _device_conv_transpose(x, weight, bias, stride, padding, dilation, groups, out_spatial):
    """A transposed convolution of CUDA operands in device ops, as the convolution it is: ``x`` spread ``stride``
    apart into zeros (one ``scatter_strided``: the zero insertion and the padding at once), then ``_device_conv``
    at stride 1 with the weight's channel axes swapped per group and its taps reversed. Output ``o`` reads the
    spread input at ``o + j * dilation``, where input element ``i`` sits at ``i * stride + dilation * (k - 1) -
    padding``: exactly the ``(i, tap)`` pairs with ``i * stride - padding + tap * dilation = o`` of the
    col2im form. Elements that land outside (padding wider than ``dilation * (k - 1)``) are sliced off first.
    ``_Col2Im`` is a numpy kernel: the CPU form took CUDA operands through the host, three copies back per call.
    The gradients and tangents are the scatter's, the slices' and the matmul's rules, all on the device."""
    nd = len(out_spatial)
    n, c = x.shape[:2]
    in_c, out_per_group, *kernel = weight.shape
    spread = tuple(o + d * (k - 1) for o, d, k in zip(out_spatial, dilation, kernel))  # (stride-1 conv input)
    keep, base = [slice(None), slice(None)], []
    for size, st, p, d, k, length in zip(x.shape[2:], stride, padding, dilation, kernel, spread):
        shift = d * (k - 1) - p  # (where input element 0 lands)
        lo = max(0, -(shift // st))  # (the first element at or after 0: ceil(-shift / st))
        hi = min(size, (length - 1 - shift) // st + 1)
        keep.append(slice(lo, max(lo, hi)))
        base.append(lo * st + shift)
    if any(s.start or s.stop != size for s, size in zip(keep[2:], x.shape[2:])):
        x = x[tuple(keep)]
    plane = [int(np.prod(spread[d + 1:])) for d in range(nd)]
    strides = [c * int(np.prod(spread)), int(np.prod(spread))] + [st * pl for st, pl in zip(stride, plane)]
    offset = sum(b * pl for b, pl in zip(base, plane))
    spread_x = ops.scatter_strided(x, (n, c) + spread, strides, offset)
    w = ops.reshape(weight, (groups, in_c // groups, out_per_group) + tuple(kernel))
    w = ops.reshape(ops.transpose(w, 1, 2), (groups * out_per_group, in_c // groups) + tuple(kernel))
    w = flip(w, list(range(2, 2 + nd)))
    geo = (tuple(kernel), (1,) * nd, (0,) * nd, tuple(dilation))
    return _device_conv(spread_x, w, bias, geo, groups)


def _device_zeros(x, axis, width):
    """Zeros shaped as ``x`` but ``width`` long along ``axis``, filled on ``x``'s CUDA device."""
    from ...cuda.ops import full

    shape = list(x.shape)
    shape[axis] = width
    return full(tuple(shape), 0.0, x._data.dtype, x._dev)


def _conv_composite(x, weight, bias, geo, groups):
    """The convolution as ``ad`` ops (im2col row + batched matmul): the differentiable form of the rules."""
    kernel, stride, padding, dilation = geo
    n, c = x.shape[:2]
    out_c, in_per_group = weight.shape[:2]
    taps = int(np.prod(kernel))
    spatial_out = _geometry(x.shape[2:], kernel, stride, padding, dilation)[1]
    cols = _im2col(x, kernel, stride, padding, dilation)  # (N, C * taps, L)
    cols = ops.reshape(cols, (n, groups, in_per_group * taps, cols.shape[-1]))
    w = ops.reshape(weight, (groups, out_c // groups, in_per_group * taps))
    out = ops.reshape(ops.matmul(w, cols), (n, out_c) + spatial_out)  # (N, G, O / G, L) -> (N, O, *spatial)
    if bias is not None:
        out = out + ops.reshape(bias, (out_c,) + (1,) * len(kernel))
    return out


def _weight_grad_composite(x, g, weight_shape, geo, groups):
    """d(sum(g * conv(x, w))) / dw as ``ad`` ops."""
    kernel, stride, padding, dilation = geo
    n = x.shape[0]
    out_c, in_per_group = weight_shape[:2]
    taps = int(np.prod(kernel))
    cols = _im2col(x, kernel, stride, padding, dilation)
    cols = ops.reshape(cols, (n, groups, in_per_group * taps, cols.shape[-1]))
    gg = ops.reshape(g, (n, groups, out_c // groups, cols.shape[-1]))
    gw = ops.sum(ops.matmul(gg, ops.transpose(cols, 2, 3)), 0)  # (G, O / G, C / G * taps)
    return ops.reshape(gw, weight_shape)


def _input_grad_composite(g, weight, x_shape, geo, groups):
    """d(sum(g * conv(x, w))) / dx as ``ad`` ops: a transposed convolution onto ``x_shape``."""
    kernel, stride, padding, dilation = geo
    n = g.shape[0]
    out_c, in_per_group = weight.shape[:2]
    taps = int(np.prod(kernel))
    length = int(np.prod(g.shape[2:]))
    gg = ops.reshape(g, (n, groups, out_c // groups, length))
    w = ops.reshape(weight, (groups, out_c // groups, in_per_group * taps))
    cols = ops.reshape(ops.matmul(ops.transpose(w, 1, 2), gg), (n, in_per_group * groups * taps, length))
    return _col2im(cols, x_shape, kernel, stride, padding, dilation)


# A convolution splits its batch across threads (one part per core) when the batch's GEMMs have at least this
# many multiply-adds in all: about 50 us of one core's sgemm, which starting the threads (tens of us) is worth.
SPLIT_MIN_MACS = 1 << 20


def _batch_parts(n, sample_macs):
    """How many threads share a convolution's ``n`` samples, ``sample_macs`` multiply-adds each: one per core
    (``ad.parallel``) for a batch with enough work, where numpy's BLAS can be held to one thread meanwhile
    (``ad.blas_threads``); else 1 (the serial loop, whose GEMMs BLAS may thread itself)."""
    if n < 2 or n * sample_macs < SPLIT_MIN_MACS or not blas_threads.available():
        return 1
    return parallel.parts(n)


def _run_batch(count, n, samples):
    """``samples(part, lo, hi)`` over ``count`` parts of the batch; with several parts on as many threads,
    numpy's BLAS on one thread meanwhile: each thread's GEMMs run on its own core, and two threaded GEMMs at
    once would serialize in OpenBLAS with its workers spinning."""
    if count == 1:
        return [samples(0, 0, n)]
    with blas_threads.single_threaded():
        return parallel.run_parts(count, n, samples)


def _sample_columns(x5, n, geom, cols):
    """The columns of sample ``n`` of the 5-D image batch ``x5`` into ``cols`` (C * taps, L), in place."""
    kconv.im2col(x5[n : n + 1], geom, cols.reshape((1,) + cols.shape))


class _Convolution(Function):
    """``conv(x, weight) + bias`` (N, O, *spatial_out), forward and first-order backward in numpy + BLAS.

    One sample at a time: its columns ``(C * taps, L)`` (a few hundred kB: they stay in the core's cache)
    are written by im2col and read at once by the GEMM ``W @ cols`` straight into the sample's output, so
    no pass over memory transposes or copies a batch-sized buffer. Backward, per sample too: the sample's
    columns are written again into the same cached buffer (cheaper than keeping the batch's columns from the
    forward: those are written to memory and read back from it, at twice the cost of an im2col from cache)
    for the weight's gradient ``cols_n @ g_n.T`` summed over the batch, and the input's ``col2im(W.T @ g_n)``
    from another cached buffer. Groups are a batch axis of each GEMM. A batch with enough work is split into
    one contiguous part per core (``_batch_parts``), each thread with its own column buffers and its own sums
    of the weight and bias gradients (added in part order after: float64 results agree with the serial loop
    to rounding), while numpy's BLAS runs on the calling thread (``ad.blas_threads``): OpenBLAS's own threads
    would serialize two threads' GEMMs and spin. Every step stays in the input's dtype
    (float32 GEMMs are BLAS's sgemm, accumulating in float32 as torch's). With grad mode on
    (``create_graph=True``) the backward is the same mathematics as ``ad`` ops (``_*_composite``), so it is
    differentiable again.
    """

    _grad_fn_name = "ConvolutionBackward0"
    _backward_carries_tangents = True  # (a dual cotangent or saved input takes the composite path)
    _backward_borrows_cotangent = True  # (backward reads g and returns new arrays: no copy of g needed)

    @staticmethod
    def forward(ctx, x, weight, bias, geo, groups):
        kernel, stride, padding, dilation = geo
        xd = np.ascontiguousarray(x._data)
        n, c, *spatial = xd.shape
        geom, spatial_out = _geometry(spatial, kernel, stride, padding, dilation)
        rows, length = c * int(np.prod(kernel)), int(np.prod(spatial_out))
        out_c = weight.shape[0]
        w = np.ascontiguousarray(weight._data).reshape(groups, out_c // groups, rows // groups)
        count = _batch_parts(n, out_c * (rows // groups) * length) if rows and length else 1
        columns = [_scratch((1, rows, length), xd.dtype) for _ in range(count)]
        out = _scratch((n, out_c, length), xd.dtype)
        b = bias._data[:, None] if bias is not None else None
        x5 = xd.reshape(_as5d(xd.shape))

        def samples(part, lo, hi):
            cols = columns[part]
            for i in range(lo, hi):
                _sample_columns(x5, i, geom, cols[0])
                oi = out[i]
                np.matmul(
                    w, cols.reshape(groups, rows // groups, length), out=oi.reshape(groups, out_c // groups, length)
                )
                if b is not None:
                    oi += b

        if rows and length:
            _run_batch(count, n, samples)
        else:
            out.fill(0)
            if b is not None:
                out += b
        ctx.save_for_backward(x, weight)
        ctx.geo = geo
        ctx.groups = groups
        ctx.has_bias = bias is not None
        return wrap_array(out.reshape((n, out_c) + spatial_out))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        geo, groups = ctx.geo, ctx.groups
        dual = bool(_fw.levels) and bool(visible_levels_of(x, weight, g))
        # create_graph, or forward over reverse (the gradient's tangent: the same bilinear forms applied to the
        # tangents of g, x and weight): the differentiable form, as ad ops
        if is_grad_enabled() or dual:
            gx = _input_grad_composite(g, weight, x.shape, geo, groups) if need_x else None
            gw = _weight_grad_composite(x, g, weight.shape, geo, groups) if need_w else None
            gb = ops.sum(g, [0] + list(range(2, g.ndim))) if need_b and ctx.has_bias else None
            return gx, gw, gb, None, None
        kernel, stride, padding, dilation = geo
        gd = np.ascontiguousarray(g._data)
        n, out_c = gd.shape[:2]
        length = int(np.prod(gd.shape[2:]))
        gd = gd.reshape(n, groups, out_c // groups, length)
        geom = _geometry(x.shape[2:], kernel, stride, padding, dilation)[0]
        rows = x.shape[1] * int(np.prod(kernel))
        need_b = need_b and ctx.has_bias
        count = _batch_parts(n, (need_w + need_x) * out_c * (rows // groups) * length) if rows and length else 1
        x5 = np.ascontiguousarray(x._data).reshape(_as5d(x.shape)) if need_w else None
        columns = [_scratch((rows, length), gd.dtype) if need_w else None for _ in range(count)]
        if need_x:
            wt = np.ascontiguousarray(
                np.ascontiguousarray(weight._data).reshape(groups, out_c // groups, -1).transpose(0, 2, 1)
            )  # (G, C / G * taps, O / G)
            grad_columns = [_scratch((1, rows, length), gd.dtype) for _ in range(count)]
            image = _scratch(_as5d(x.shape), gd.dtype)
            if not (rows and length):
                image.fill(0)
        ones = np.ones(length, gd.dtype)

        # one pass over the samples, so that g_n is read from memory once for both gradients; each part of the
        # batch sums its own weight and bias gradients, added up in part order after
        def samples(part, lo, hi):
            acc = part_w = gb = None
            if need_w:
                cols = columns[part]
                acc = np.zeros((groups, rows // groups, out_c // groups), gd.dtype)
                part_w = np.empty_like(acc)
            if need_x:
                gcols = grad_columns[part]
            for i in range(lo, hi if rows and length else lo):  # (no columns: the GEMMs' sums are empty)
                if need_w:  # cols_n @ g_n.T: BLAS is faster with the long L axis as the inner product's
                    _sample_columns(x5, i, geom, cols)
                    np.matmul(cols.reshape(groups, rows // groups, length), gd[i].transpose(0, 2, 1), out=part_w)
                    acc += part_w
                if need_x:
                    np.matmul(wt, gd[i], out=gcols[0].reshape(groups, rows // groups, length))
                    image[i].fill(0)
                    kconv.col2im(gcols, geom, image[i : i + 1])
            if need_b:  # sum over L: one GEMV (BLAS) over the part's (n * O, L) rows, then over its samples
                gb = (gd[lo:hi].reshape(-1, length) @ ones).reshape(hi - lo, out_c).sum(0)
            return acc, gb

        results = _run_batch(count, n, samples)
        gx = gw = gb = None
        if need_w:
            acc = results[0][0]
            for part_acc, _ in results[1:]:
                acc += part_acc
            gw = wrap_array(np.ascontiguousarray(acc.transpose(0, 2, 1)).reshape(weight.shape))
        if need_x:
            gx = wrap_array(image.reshape(x.shape))
        if need_b:
            total = results[0][1]
            for _, part_gb in results[1:]:
                total += part_gb
            gb = wrap_array(total)
        return gx, gw, gb, None, None

    @staticmethod
    def jvp(ctx, tx, tw, tb, *_):
        x, weight = ctx.saved_tensors
        # bilinear in (x, weight): d conv = conv(tx, w) + conv(x, tw) + tb
        out = _Convolution.apply(tx, weight, tb if ctx.has_bias else None, ctx.geo, ctx.groups)
        return out + _Convolution.apply(x, tw, None, ctx.geo, ctx.groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """1-D convolution (cross-correlation, as torch) of ``input`` (N, C, L) with ``weight`` (O, C / groups, k).

    Args: as ``torch.nn.functional.conv1d``; ``padding`` may be an int, a tuple, ``"valid"`` or ``"same"``.
    Returns: (N, O, L_out). Raises: RuntimeError for mismatched shapes, as torch.
    """
    return _convnd(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution of ``input`` (N, C, H, W) with ``weight`` (O, C / groups, kh, kw).

    Example:
        >>> F.conv2d(ad.ones(1, 1, 3, 3), ad.ones(1, 1, 2, 2)).shape
        (1, 1, 2, 2)
    """
    return _convnd(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """3-D convolution of ``input`` (N, C, D, H, W) with ``weight`` (O, C / groups, kd, kh, kw)."""
    return _convnd(3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transposend(nd, input, weight, bias, stride, padding, output_padding, groups, dilation):  # noqa: A002
    fn = f"conv_transpose{nd}d"
    _check_tensor(input, fn)
    _check_tensor(weight, fn, "weight")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {fn}, but got input of size: "
            f"{list(input.shape)}"
        )
    if weight.ndim != nd + 2:
        settings = (("stride", stride), ("padding", padding), ("dilation", dilation))
        settings += (("output_padding", output_padding),)
        raise _weight_dims_error(nd, input, weight, settings)
    if input.dtype != weight.dtype:
        raise RuntimeError(f"Input type ({input.dtype}) and weight type ({weight.dtype}) should be the same")
    batched = input.ndim == nd + 2
    x = input if batched else ops.unsqueeze(input, 0)
    groups = int(groups)
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    in_c, out_per_group, *kernel = weight.shape
    kernel = tuple(kernel)
    n, c, *spatial = x.shape
    if c != in_c:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} to have "
            f"{in_c} channels, but got {c} channels instead"
        )
    if in_c % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0")
    stride = _tuple(stride, nd, "stride")
    padding = _tuple(padding, nd, "padding")
    output_padding = _tuple(output_padding, nd, "output_padding")
    dilation = _tuple(dilation, nd, "dilation")
    _check_steps(stride, padding, dilation, output_padding)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                               f"output_padding: {output_padding}, stride: {stride}, dilation: {dilation}")
    out_c = out_per_group * groups
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (out_c,)):
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected bias to be "
                           f"1-dimensional with {out_c} elements")
    out_spatial = tuple(
        (s - 1) * st - 2 * p + d * (k - 1) + op_ + 1
        for s, st, p, d, k, op_ in zip(spatial, stride, padding, dilation, kernel, output_padding)
    )
    if any(o <= 0 for o in out_spatial):
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, spatial))}). Calculated output "
                           f"size per channel: ({' x '.join(map(str, out_spatial))}). Output size is too small")
    if x._dev is not None and weight._dev is not None:
        geo = (kernel, stride, padding, dilation)
        out = _device_conv_indexed(x, weight, bias, geo, groups, True, out_spatial)
        if out is None:
            out = _device_conv_transpose(x, weight, bias, stride, padding, dilation, groups, out_spatial)
        return out if batched else ops.squeeze(out, 0)
    taps = int(np.prod(kernel))
    length = int(np.prod(spatial))
    xs = ops.reshape(x, (n, groups, c // groups, length))
    w = ops.reshape(weight, (groups, c // groups, out_per_group * taps))
    cols = ops.matmul(ops.transpose(w, 1, 2), xs)  # (N, G, O / G * taps, L)
    cols = ops.reshape(cols, (n, out_c * taps, length))
    out = _col2im(cols, (n, out_c) + out_spatial, kernel, stride, padding, dilation)
    if bias is not None:
        out = out + ops.reshape(bias, (out_c,) + (1,) * nd)
    return out if batched else ops.squeeze(out, 0)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # noqa: A002
    """Transposed 1-D convolution (the adjoint of conv1d in its input); ``weight`` is (C, O / groups, k)."""
    return _conv_transposend(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # noqa: A002
    """Transposed 2-D convolution; ``weight`` is (C, O / groups, kh, kw)."""
    return _conv_transposend(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # noqa: A002
    """Transposed 3-D convolution; ``weight`` is (C, O / groups, kd, kh, kw)."""
    return _conv_transposend(3, input, weight, bias, stride, padding, output_padding, groups, dilation)
