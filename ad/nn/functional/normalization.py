"""Normalization: ``layer_norm``, ``group_norm``, ``batch_norm``, ``instance_norm``, ``local_response_norm``.

``(x - mean) * rsqrt(var + eps)`` over the normalised dims (biased variance, as torch), then the optional
affine ``* weight + bias`` per channel / per normalised element: one Python-swept row (``_Normalize``) whose
forward and first-order backward are the compiled kernels of kernels/norm.py (one pass for the statistics and
one to write, each way; ``_kernel_layout`` maps every normalization onto their ``(P, Q, R)`` layout, and numpy
runs the row where it does not apply); its ``create_graph`` backward and its jvp are the same formula as ``ad``
ops. ``batch_norm`` and
``instance_norm`` update ``running_mean`` / ``running_var`` in place when training (outside the graph,
with the unbiased variance, as torch), and bump their version counters.
"""

import numpy as np

from kernels import norm as kn

from ... import ops
from ...autograd.function import Function
from ...conveniences import Size
from ...forward import _fw, visible_levels_of
from ...grad_mode import is_grad_enabled, no_grad
from ...saved import guard, saves_as
from ...tensor import Tensor, wrap_array
from .conv import _scratch


def _project(v, xhat, rstd, mean):
    """``rstd * (v - mean(v) - xhat * mean(v * xhat))``: the normalisation's Jacobian (symmetric, so it maps
    tangents forward and cotangents back); numpy arrays or ``ad`` tensors, ``mean`` over the normalised dims."""
    return rstd * (v - mean(v) - xhat * mean(v * xhat))


def _ad_mean(dims):
    return lambda v: ops.mean(v, dims, keepdim=True)


def _reduced_axes(shape, wshape):
    """The axes of ``shape`` over which a ``wshape``-broadcast parameter's gradient is summed."""
    return tuple(i for i, (a, b) in enumerate(zip(shape, wshape)) if b == 1 and a != 1)


class _Normalize(Function):
    """``xhat * weight + bias`` with ``xhat = (x - mean) * rsqrt(var + eps)``: ``x`` viewed as ``view`` and
    normalised over ``dims`` of that view, ``weight`` / ``bias`` (either may be None) broadcast to ``x`` as
    ``wshape``. Saves the statistics (kernels: ``mean`` and ``rstd`` per group; numpy: ``xhat`` and ``rstd``)
    for its first-order backward; when the graph is to be
    differentiated again (grad mode on) or a saved input carries a forward tangent (forward over reverse), the
    backward recomputes them as ``ad`` ops from the saved inputs, so the tangents reach the gradient."""

    _grad_fn_name = "NativeLayerNormBackward0"
    _backward_carries_tangents = True

    @staticmethod
    def forward(ctx, x, weight, bias, view, dims, wshape, eps, layout=None):
        ctx.save_for_backward(x, weight, bias)
        ctx.args = (view, dims, wshape, eps)
        ctx.layout = layout
        if layout is not None:  # the compiled kernels (kernels/norm.py): one pass for the statistics, one to write
            p, q, r, rs = layout
            out = _scratch(x.shape, x._data.dtype)
            ctx.mean, ctx.rstd = np.empty(q), np.empty(q)
            kn.norm_forward(
                _cont(x._data).reshape(p, q, r), *_params2d(x, weight, bias, layout), eps,
                out.reshape(p, q, r), ctx.mean, ctx.rstd,
            )  # fmt: skip
            return wrap_array(out)
        # in place where it can be: every fresh array of this size costs page faults
        xv = x._data.reshape(view)
        xhat = xv - xv.mean(axis=dims, keepdims=True)
        out = np.square(xhat)
        rstd = 1.0 / np.sqrt(out.mean(axis=dims, keepdims=True) + eps)
        out = out.reshape(x.shape)
        xhat *= rstd
        xhat = xhat.reshape(x.shape)
        if weight is not None:
            np.multiply(xhat, weight._data.reshape(wshape), out=out)
        else:
            np.copyto(out, xhat)
        if bias is not None:
            out += bias._data.reshape(wshape)
        ctx.xhat, ctx.rstd = xhat, rstd
        return wrap_array(out)

    @staticmethod
    def _composite(ctx, x, weight):
        """``xhat`` and ``rstd`` recomputed as ``ad`` ops from the saved input (differentiable)."""
        view, dims, _, eps = ctx.args
        xv = ops.reshape(x, view)
        centered = xv - ops.mean(xv, dims, keepdim=True)
        rstd = ops.rsqrt(ops.mean(centered * centered, dims, keepdim=True) + eps)
        return ops.reshape(centered * rstd, x.shape), rstd

    @staticmethod
    def backward(ctx, g):
        x, weight, bias = ctx.saved_tensors
        view, dims, wshape, _ = ctx.args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        axes = _reduced_axes(x.shape, wshape)
        dual = bool(_fw.levels) and bool(visible_levels_of(*[t for t in (x, weight, bias, g) if t is not None]))
        if is_grad_enabled() or dual:  # create_graph or forward over reverse: the same formula as ad ops
            xhat, rstd = _Normalize._composite(ctx, x, weight)
            gx = gw = gb = None
            if need_x:
                gxhat = g * ops.reshape(weight, wshape) if weight is not None else g
                gx = _project(ops.reshape(gxhat, view), ops.reshape(xhat, view), rstd, _ad_mean(dims))
                gx = ops.reshape(gx, x.shape)
            if need_w:
                gw = ops.reshape(ops.sum(g * xhat, list(axes), keepdim=True), weight.shape)
            if need_b:
                gb = ops.reshape(ops.sum(g, list(axes), keepdim=True), bias.shape)
            return gx, gw, gb, None, None, None, None, None
        if ctx.layout is not None:
            return _Normalize._kernel_backward(ctx, g, x, weight, bias) + (None,) * 5
        gd, xhat, rstd = g._data, ctx.xhat, ctx.rstd
        gx = gw = gb = None
        buf = np.multiply(gd, xhat)
        if need_w:
            gw = wrap_array(np.sum(buf, axis=axes).reshape(weight.shape))
        if need_b:
            gb = wrap_array(np.sum(gd, axis=axes).reshape(bias.shape))
        if need_x:  # _project, in place (fresh arrays of this size cost page faults)
            v = gd * weight._data.reshape(wshape) if weight is not None else gd.copy()
            vv, xh, bv = v.reshape(view), xhat.reshape(view), buf.reshape(view)
            np.multiply(vv, xh, out=bv)
            np.multiply(xh, bv.mean(axis=dims, keepdims=True), out=bv)
            vv -= vv.mean(axis=dims, keepdims=True)
            vv -= bv
            vv *= rstd
            gx = wrap_array(v)
        return gx, gw, gb, None, None, None, None, None

    @staticmethod
    def _kernel_backward(ctx, g, x, weight, bias):
        """The first-order gradients by ``kernels.norm.norm_backward`` (one pass for the sums, one to write)."""
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        p, q, r, rs = ctx.layout
        w2, _, _, has_w, _ = _params2d(x, weight, bias, ctx.layout)
        gw2, gb2 = np.zeros(w2.shape), np.zeros(w2.shape)
        gx = _scratch(x.shape, x._data.dtype) if need_x else np.empty((1, 1, 1), x._data.dtype)
        kn.norm_backward(
            _cont(x._data).reshape(p, q, r), _cont(g._data).reshape(p, q, r), w2, rs, has_w, ctx.mean, ctx.rstd,
            bool(need_x), gx.reshape(p, q, r) if need_x else gx, gw2, gb2,
        )  # fmt: skip
        gw = wrap_array(gw2.astype(weight._data.dtype).reshape(weight.shape)) if need_w else None
        gb = wrap_array(gb2.astype(bias._data.dtype).reshape(bias.shape)) if need_b else None
        return (wrap_array(gx) if need_x else None), gw, gb

    @staticmethod
    def jvp(ctx, tx, tw, tb, *_):
        x, weight, bias = ctx.saved_tensors
        view, dims, wshape, _ = ctx.args
        xhat, rstd = _Normalize._composite(ctx, x, weight)
        dxhat = _project(ops.reshape(tx, view), ops.reshape(xhat, view), rstd, _ad_mean(dims))
        out = ops.reshape(dxhat, x.shape)
        if weight is not None:
            out = out * ops.reshape(weight, wshape) + xhat * ops.reshape(tw, wshape)
        if bias is not None:
            out = out + ops.reshape(tb, wshape)
        return out


class _BatchNorm(_Normalize):
    _grad_fn_name = "NativeBatchNormBackward0"


class _GroupNorm(_Normalize):
    _grad_fn_name = "NativeGroupNormBackward0"


def _cont(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _params2d(x, weight, bias, layout):
    """``weight`` and ``bias`` as the kernels' 2-D arrays (see kernels/norm.py), with ``rs`` and presence flags:
    ``(w2, b2, rs, has_w, has_b)`` laid out as ``norm_forward``'s arguments after ``x``."""
    _, _, r, rs = layout
    given = weight if weight is not None else bias
    shape = (given.numel() * rs // r if given is not None else 1, r // rs)
    dummy = np.ones(shape, x._data.dtype)  # (an absent parameter: same shape, so both index alike)
    w2 = _cont(weight._data).reshape(shape) if weight is not None else dummy
    b2 = _cont(bias._data).reshape(shape) if bias is not None else dummy
    return w2, b2, rs, weight is not None, bias is not None


def _kernel_layout(x, view, dims, wshape):
    """``(P, Q, R, RS)`` of kernels/norm.py for normalising ``x`` viewed as ``view`` over ``dims`` with parameters
    broadcast as ``wshape``, or None where the kernels do not apply (then numpy runs the row)."""
    if x._data.dtype not in (np.float32, np.float64) or x.numel() == 0:
        return None
    view = x._data.reshape(view).shape  # (-1 resolved)
    nd = len(view)
    if dims == tuple(range(dims[0], nd)):  # a suffix: Q groups of R contiguous elements
        p, q, r = 1, int(np.prod(view[: dims[0]])), int(np.prod(view[dims[0] :]))
    elif dims == (0,) + tuple(range(2, nd)):  # batch_norm's (N, C, S)
        p, q, r = view[0], view[1], int(np.prod(view[2:]))
    else:
        return None
    if int(np.prod(wshape)) == 1:
        return p, q, r, r  # (one scalar parameter, or none)
    if all(w == 1 for i, w in enumerate(wshape) if i != 1):  # one per channel: x[p, q, r] in (q % QW, r // S)
        rs = int(np.prod(x.shape[2:]))
        return (p, q, r, rs) if r % rs == 0 else None
    return (p, q, r, 1) if p == 1 and int(np.prod(wshape)) == r else None  # one per element of the group (layer_norm)


def _normalized(cls, x, weight, bias, view, dims, wshape, eps):
    """The normalisation and its affine as one row (see ``_Normalize``); on a CUDA device, where the row's
    numpy code cannot run, as the composite of ``ad`` ops."""
    if x._dev is None:
        layout = _kernel_layout(x, tuple(view), tuple(dims), tuple(wshape))
        return cls.apply(x, weight, bias, tuple(view), tuple(dims), tuple(wshape), float(eps), layout)
    xv = ops.reshape(x, view)
    centered = xv - ops.mean(xv, dims, keepdim=True)
    var = ops.mean(centered * centered, dims, keepdim=True)
    out = ops.reshape(centered * ops.rsqrt(var + eps), x.shape)
    if weight is not None:
        out = out * ops.reshape(weight, wshape)
    if bias is not None:
        out = out + ops.reshape(bias, wshape)
    return out


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
    if not k:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one "
                           "element, but got normalized_shape = []")
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
    wshape = (1,) * (input.ndim - k) + shape
    out = _normalized(_Normalize, input, weight, bias, input.shape, dims, wshape, eps)
    return guard(out, "NativeLayerNormBackward0", input, weight, bias)


def rms_norm(input, normalized_shape, weight=None, eps=None):  # noqa: A002
    """``input * rsqrt(mean(input ** 2) + eps) * weight`` over the last dims (eps: the dtype's epsilon)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"rms_norm(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    shape = (int(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(int(s) for s in normalized_shape)
    if not shape:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one "
                           "element, but got normalized_shape = []")
    if len(shape) > input.ndim or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got weight of shape "
                           f"{list(weight.shape)} and normalized_shape = {list(shape)}")
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
    wshape = (1,) + _channel_shape(input)
    return _normalized(_GroupNorm, input, weight, bias, (n, num_groups, -1), (2,), wshape, eps)


def _update_running(running_mean, running_var, input, dims, momentum, over_planes=False):  # noqa: A002
    """``running = (1 - momentum) * running + momentum * value`` in place, outside the graph, for the mean and
    the unbiased variance of ``input`` over ``dims`` (``over_planes``: each plane's, averaged over dim 0). A CUDA
    input's statistics are device reductions written into the device buffers (no host copy)."""
    if input._dev is None:
        xd = input._data
        mean, var = xd.mean(axis=dims), xd.var(axis=dims, ddof=1)
        if over_planes:
            mean, var = mean.mean(0), var.mean(0)
        for running, value in ((running_mean, mean), (running_var, var)):
            if running is not None:
                running._data[...] = (1.0 - momentum) * running._data + momentum * value
                running._version += 1
        return
    with no_grad():
        x = input.detach()
        mean, var = x.mean(dims), x.var(dims, correction=1)
        if over_planes:
            mean, var = mean.mean(0), var.mean(0)
        for running, value in ((running_mean, mean), (running_var, var)):
            if running is not None:
                running.copy_(running * (1.0 - momentum) + value * momentum)


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
                             f"{Size(input.shape)!r}")
        out = _normalized(_BatchNorm, input, weight, bias, input.shape, dims, (1,) + shape, eps)
        if running_mean is not None or running_var is not None:
            _update_running(running_mean, running_var, input, dims, momentum)
        return out
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
    n, c = input.shape[:2]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.numel() != c:  # (torch counts per (n, c) plane: it repeats them over the batch)
            raise RuntimeError(f"{name} should contain {n * c} elements not {n * t.numel()}")
    shape = _channel_shape(input)
    dims = tuple(range(2, input.ndim))
    if use_input_stats:
        if int(np.prod(input.shape[2:])) <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                             f"{Size(input.shape)!r}")
        out = _normalized(_Normalize, input, weight, bias, input.shape, dims, (1,) + shape, eps)
        if running_mean is not None or running_var is not None:
            _update_running(running_mean, running_var, input, dims, momentum, over_planes=True)
        return out
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


