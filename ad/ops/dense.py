"""The fused rows of dense layers: ``matmul`` (batched, BLAS in the forward and in the sweep), ``linear`` and
``linear`` with a bias (``x @ w.T + b`` without materializing ``w.T``), ``log_softmax`` over a dim and
``cross_entropy`` of logits against class indices: one row each where the composites would cost several.
"""

import math

import numpy as np

from kernels import cpu as _cpu
from kernels import opcodes as K

from .. import blas_threads
from .. import forward as _forward
from ..forward import _fw
from ..grad_mode import _grad_state
from ..tape import BIG_ROW, current_tape
from ..tensor import Tensor, _new, _wrap_dim, wrap_array
from . import (
    Op,
    _broadcast_shape,
    _matmul_jvp,
    _operand,
    _recording,
    _result,
    _size,
    _tape_for,
    _tensor_arg,
    _terms,
    exp,
    forward_rule,
    mul,
)
from .out import write_result
from .structural import expand, reshape, squeeze, sum, transpose, unsqueeze

# --- matmul


def _sum_to_shape(g, shape):
    """Sum ``g`` over broadcast dimensions so that it has ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    dims = list(range(lead)) + [lead + k for k, s in enumerate(shape) if s == 1 and g.shape[lead + k] != 1]
    out = sum(g, dims, keepdim=True) if dims else g
    return reshape(out, tuple(shape))


def _matmul_vjp(g, out, inputs, ctx):
    """``gx = g @ y^T``, ``gy = x^T @ g`` (summed over broadcast batches), as ad ops: the differentiable rule.

    The same formula is stated twice more, on purpose (issue 16 asks for one source or the reason why not):
    the kernel sweep (``kernels/cpu._matmul_backward``) runs it inside the compiled loop on arena slices,
    where no Python, and so no ad op, can run; the big-row path (``big_rows._matmul_row``) has BLAS write into
    the cotangent regions themselves (``out=``, no temporaries, no zero fill), which an op returning a new
    tensor cannot do. The op-table tests check the kernel sweep against this rule, and the property tests
    with lowered big-row thresholds check the big-row path against finite differences."""
    x, y = inputs
    xn, yn = x._data.ndim, y._data.ndim
    if xn == 1 and yn == 1:  # dot product: g is a scalar
        return (g * y if x._rg else None, g * x if y._rg else None)
    mm = matmul if _fw.levels else _matmul  # (outside dual levels the public op's wrappers do nothing)
    if xn == 2 and yn == 1:  # matrix-vector: no transposed copies
        return (outer(g, y) if x._rg else None, mm(g, x) if y._rg else None)
    if xn == 1 and yn == 2:
        return (mm(y, g) if x._rg else None, outer(x, g) if y._rg else None)
    if xn == 2 and yn == 2:
        return (linear(g, y) if x._rg else None, matmul(transpose(x, 0, 1), g) if y._rg else None)
    xs = x if x.ndim > 1 else unsqueeze(x, 0)
    ys = y if y.ndim > 1 else unsqueeze(y, -1)
    gg = g
    if x.ndim == 1:
        gg = unsqueeze(gg, -2)
    if y.ndim == 1:
        gg = unsqueeze(gg, -1)
    gx = gy = None
    if x._rg:
        gx = matmul(gg, transpose(ys, -1, -2))
        if x.ndim == 1:
            gx = squeeze(gx, -2)
        gx = _sum_to_shape(gx, x.shape)
    if y._rg:
        gy = matmul(transpose(xs, -1, -2), gg)
        if y.ndim == 1:
            gy = squeeze(gy, -1)
        gy = _sum_to_shape(gy, y.shape)
    return gx, gy


MATMUL = Op("matmul", K.MATMUL, "MmBackward0", _matmul_vjp)


def _fused_matmul_jvp(x, y):
    """``x @ y`` at one dual level where exactly one operand has a tangent, a plain one, and the other none:
    one BLAS call computes the primal and the tangent together (``[x; tx] @ y`` or ``x @ [y, ty]``), reading
    the other operand (a weight matrix, say) once instead of twice. None where it does not apply (then the
    general rule runs)."""
    if type(x) is not Tensor or type(y) is not Tensor or (x._tangents is None) == (y._tangents is None):
        return None
    if x._dev is not None or y._dev is not None:
        return None  # (CUDA: the general rule, whose ad ops run on the device)
    levels = _fw.levels
    if len(levels) != 1 or _fw.hidden:
        return None
    level = levels[0]
    dual, other = (x, y) if x._tangents is not None else (y, x)
    tan_t = dual._tangents.get(level)
    if tan_t is None or tan_t._tangents is not None:
        return None
    if _grad_state.enabled and (tan_t._rg or other._rg):
        return None  # the tangent's product would have to be recorded for reverse mode
    xd = x._data
    yd = y._data
    if not (1 <= xd.ndim <= 2 and 1 <= yd.ndim <= 2) or xd.shape[-1] != yd.shape[0] or xd.dtype != yd.dtype:
        return None  # (batched or mismatched operands: the general path, and its errors)
    if xd.dtype.kind != "f":
        return None
    tan = tan_t._data
    if tan.shape != dual._data.shape or tan.dtype != xd.dtype:
        return None
    # operand and tangent side by side in one buffer (cheaper than np.stack), then one product
    # (np.dot: for these 1-D and 2-D operands it means matmul, with less overhead than np.matmul)
    own_row = False
    if dual is x:
        m = xd.shape[0] if xd.ndim == 2 else 1
        both_in = np.empty((2 * m, xd.shape[-1]), xd.dtype)
        both_in[:m] = xd
        both_in[m:] = tan
        both = np.dot(both_in, yd)
        primal, tangent = (both[:m], both[m:]) if xd.ndim == 2 else (both[0], both[1])
    elif yd.ndim == 1 and xd.ndim == 2:
        # matrix times a dual vector (W4's ``A @ x``): vector and tangent as two rows, so that the product's rows
        # are the primal and the tangent, each contiguous
        both = np.dot(np.array((yd, tan)), xd.T)
        primal, tangent = both[0], both[1]
        own_row = True  # (the tangent is a contiguous row of a fresh array: no copy)
    else:
        n = yd.shape[1] if yd.ndim == 2 else 1
        both_in = np.empty((yd.shape[0], 2 * n), yd.dtype)
        both_in[:, :n] = yd.reshape(yd.shape[0], n)
        both_in[:, n:] = tan.reshape(yd.shape[0], n)
        both = np.dot(xd, both_in)
        primal, tangent = both[..., :n], both[..., n:]
        if yd.ndim == 1:
            primal, tangent = primal[..., 0], tangent[..., 0]
    if _grad_state.enabled and (x._rg or y._rg):
        out = _matmul(x, y, primal)  # records the primal's row
    else:
        out = _new(Tensor)
        out._data = np.array(primal, order="C")  # (np.array keeps a 0-d result 0-d)
    _forward.set_tangent(out, level, wrap_array(tangent if own_row else np.array(tangent, order="C")))
    return out


@forward_rule(_matmul_jvp, fused=_fused_matmul_jvp)
def matmul(input, other, *, out=None):
    if out is not None:
        return write_result("matmul", matmul(input, other), out, same_dtype=True)  # (the forward rule: a dual raises)
    return _matmul(input, other)


def _matmul(x, y, product=None):
    """``x @ y``; ``product``: its value, when the caller computed it already (``_fused_matmul_jvp``)."""
    if type(x) is not Tensor:  # (exact tensors, the usual operands, skip the call)
        _tensor_arg(x, "matmul", "input")
    if type(y) is not Tensor:
        _tensor_arg(y, "matmul", "other")
    if x._dev is not None or y._dev is not None:
        return _cuda_ops().matmul(x, y)
    xd = x._data
    yd = y._data
    xn = xd.ndim
    yn = yd.ndim
    if (
        0 < xn <= 2
        and 0 < yn <= 2
        and xd.shape[-1] == yd.shape[0]
        and xd.dtype is yd.dtype
        and xd.dtype.kind == "f"
        and (x._rg or y._rg)
        and _grad_state.enabled  # (_recording(x, y), inlined)
    ):
        # vectors and matrices, the common case: no batch to broadcast, the row's layout directly
        m = xd.shape[0] if xn == 2 else 1
        k = yd.shape[0]
        n = yd.shape[1] if yn == 2 else 1
        if xn == 2:
            out_shape = (m, n) if yn == 2 else (m,)
        else:
            out_shape = (n,) if yn == 2 else ()
        return _record_matmul(x, y, out_shape, [1, m, k, n, m * k, k * n], product, m * n)
    if xd.ndim == 0 or yd.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {xd.ndim}D and {yd.ndim}D")
    xs2 = xd.shape if xd.ndim > 1 else (1,) + xd.shape
    ys2 = yd.shape if yd.ndim > 1 else yd.shape + (1,)
    if xs2[-1] != ys2[-2]:
        if yd.ndim == 1 and xd.ndim >= 2:  # (torch's matrix-vector product, the batch folded into the rows)
            rows = _size(xd.shape[:-1])
            raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{xs2[-1]}), vec ({yd.shape[0]})")
        if xd.ndim <= 2 and yd.ndim <= 2:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({xs2[-2]}x{xs2[-1]} and {ys2[-2]}x{ys2[-1]})"
            )
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{xs2[-1]}] but got: [{ys2[-2]}]."
        )
    if xd.dtype != yd.dtype and xd.dtype.kind == "f" and yd.dtype.kind == "f":
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_torch_dtype(xd.dtype)} != {_torch_dtype(yd.dtype)}"
        )
    out_shape = _matmul_shape(xd.shape, yd.shape)  # also raises torch's error for unbroadcastable batches
    if not _recording(x, y):
        # (before any batch expansion below)
        return wrap_array(np.asarray(np.matmul(xd, yd)) if product is None else np.array(product, order="C"))
    bx = xs2[:-2]
    by = ys2[:-2]
    batch = _broadcast_shape(bx, by) if bx != by else bx
    B = _size(batch)
    M, K_ = xs2[-2], xs2[-1]
    N = ys2[-1]
    if _size(bx) not in (1, B) or (_size(bx) == B and bx != batch):
        x = expand(x if xd.ndim > 1 else unsqueeze(x, 0), batch + (M, K_))
    if _size(by) not in (1, B) or (_size(by) == B and by != batch):
        y = expand(y if yd.ndim > 1 else unsqueeze(y, -1), batch + (K_, N))
    xbatch = _size(x._data.shape[:-2]) if x.ndim > 1 else 1
    ybatch = _size(y._data.shape[:-2]) if y.ndim > 1 else 1
    xbs = M * K_ if xbatch == B else 0  # stride 0: one matrix broadcast over the batch
    ybs = K_ * N if ybatch == B else 0
    # the operands may have been expanded to a common batch (one more leading 1): the row's output has the
    # expanded shape, so that its rule sees consistent shapes; a reshape row gives the caller's shape
    node_shape = _matmul_shape(x.shape, y.shape)
    out = _record_matmul(x, y, node_shape, (B, M, K_, N, xbs, ybs), product)
    return out if node_shape == out_shape else reshape(out, out_shape)


def _record_matmul(x, y, node_shape, layout, product=None, n=None):
    """Record the MATMUL row of ``x @ y`` (operands of a common batch; ``layout``: the row's aux, (B, M, K,
    N, x batch stride, y batch stride)) and return its output of ``node_shape`` (``n`` elements, if the caller
    knows), computed here or given. (Tape.alloc, view, add_aux and _operand's own-tape case are inlined: every
    matmul of a graph, its reverse rule's included, comes here.)"""
    xd, yd = x._data, y._data
    dt = xd.dtype if xd.dtype is yd.dtype else np.result_type(xd, yd)
    if n is None:
        n = _size(node_shape)
    tape = _tape_for(dt, n + xd.size + yd.size + 2, x, y)
    off = tape.used
    tape.used = off + (n if n > 0 else 1)
    view = tape.values[off : off + n]
    if len(node_shape) != 1:
        view = view.reshape(node_shape)
    if product is not None:
        view[...] = product
    elif xd.ndim == 2 and yd.ndim == 2 and xd.dtype is yd.dtype:
        blas_threads.matmul(xd, yd, view)  # (as the replay and the sweep: backs off under contention)
    elif xd.ndim <= 2 and yd.ndim <= 2 and xd.dtype is yd.dtype:
        np.dot(xd, yd, out=view)  # (matmul for these operands, at a third of np.matmul's call overhead)
    else:
        np.matmul(xd, yd, out=view)
    xoff, xrow = (x._off, x._row) if x._tape is tape else tape.import_tensor(x, x._rg)
    yoff, yrow = (y._off, y._row) if y._tape is tape else tape.import_tensor(y, y._rg)
    aux = len(tape.aux)
    tape.aux.extend(layout)
    code = K.MATMUL | (K.XRG if x._rg else 0) | (K.YRG if y._rg else 0)
    row = tape.record(code, off, xoff, yoff, n, aux, xrow, yrow)
    out = _result(view, tape, off, row, MATMUL, (x, y))
    if xd.size >= BIG_ROW or yd.size >= BIG_ROW or n >= BIG_ROW:
        tape.mark_vectorized(row, out)  # BLAS through numpy, on the operands' own arrays
    return out


def _matmul_shape(xs, ys):
    xs2 = xs if len(xs) > 1 else (1,) + tuple(xs)
    ys2 = ys if len(ys) > 1 else tuple(ys) + (1,)
    batch = _broadcast_shape(tuple(xs2[:-2]), tuple(ys2[:-2]))
    shape = batch + (xs2[-2], ys2[-1])
    if len(xs) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(ys) == 1:
        shape = shape[:-1]
    return tuple(shape)


def outer(input, vec2):
    """Outer product of two vectors (``x[:, None] * y[None, :]``)."""
    for name, t_ in (("self", input), ("vec2", vec2)):
        if _tensor_arg(t_, "outer", name).ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t_.ndim}-D")
    return mul(unsqueeze(input, 1), unsqueeze(vec2, 0))


def _torch_dtype(dt):
    return {"float64": "double", "float32": "float", "int64": "long", "int32": "int"}.get(str(dt), str(dt))


def mm(input, mat2):
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return matmul(input, mat2)


def dot(input, tensor):
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    if input.shape[0] != tensor.shape[0]:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src [{tensor.shape[0]}] to have the "
            f"same number of elements, but got {input.shape[0]} and {tensor.shape[0]} elements respectively"
        )
    if isinstance(tensor, Tensor) and input.dtype != tensor.dtype:
        raise RuntimeError(
            f"dot : expected both vectors to have same dtype, but found {_torch_dtype(input.dtype).capitalize()} "
            f"and {_torch_dtype(tensor.dtype).capitalize()}"
        )
    return matmul(input, tensor)


# --- log_softmax: one row (the loss layer of every classifier; as a composite it costs five)


def _log_softmax_vjp(g, out, inputs, ctx):
    dim = ctx
    return (g - exp(out) * sum(g, dim, keepdim=True),)


def _log_softmax_jvp(tan, out, x, dim):
    t_ = tan(x)
    if t_ is None:
        return None
    d = _wrap_dim(dim, x.ndim)
    return t_ - sum(exp(out) * t_, d, keepdim=True)


LOG_SOFTMAX = Op("log_softmax", K.LOG_SOFTMAX, "LogSoftmaxBackward0", _log_softmax_vjp)


@forward_rule(_log_softmax_jvp)
def log_softmax_dim(x, dim):
    """``x - logsumexp(x, dim)``, computed stably; its reverse rule is ``g - softmax(x) * sum(g)``."""
    xd = x._data
    if xd.dtype.kind != "f":
        raise NotImplementedError(
            f"\"log_softmax_lastdim_kernel_impl\" not implemented for '{_torch_dtype(xd.dtype).capitalize()}'"
        )
    d = _wrap_dim(dim, xd.ndim)
    if x._dev is not None:
        return _cuda_ops().log_softmax(x, d if xd.ndim else 0)
    if xd.ndim == 0:
        out_data = np.zeros((), xd.dtype)
    else:
        m = np.max(xd, axis=d, keepdims=True) if xd.size else np.zeros(1, xd.dtype)
        m = np.where(np.isfinite(m), m, 0.0).astype(xd.dtype, copy=False)
        shifted = xd - m
        out_data = shifted - np.log(np.sum(np.exp(shifted), axis=d, keepdims=True))
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(out_data.dtype, 2 * n + 2, x)
    off = tape.alloc(n)
    view = tape.view(off, out_data.shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    shape = xd.shape if xd.ndim else (1,)
    dd = d if xd.ndim else 0
    aux = tape.add_aux([_size(shape[:dd]), shape[dd], _size(shape[dd + 1 :])])
    row = tape.record(K.LOG_SOFTMAX | K.XRG, off, xoff, -1, n, aux, xrow)
    out = _result(view, tape, off, row, LOG_SOFTMAX, (x,), dd)
    if n >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


# --- linear: x @ w.T without materializing w.T (torch stores weights as (out, in))


def _linear_vjp(g, out, inputs, ctx):
    x, w = inputs
    gx = linear(g, transpose(w, 0, 1)) if x._rg else None
    gw = None
    if w._rg:
        rows = math.prod(x.shape[:-1])  # (not -1: ambiguous for a layer with no inputs or no outputs)
        g2 = reshape(g, (rows, w.shape[0]))
        x2 = reshape(x, (rows, w.shape[1]))
        gw = matmul(transpose(g2, 0, 1), x2)
    return gx, gw


def _linear_jvp(tan, out, x, w):
    tx = tan(x)
    tw = tan(w)
    return _terms(linear(tx, w) if tx is not None else None, linear(x, tw) if tw is not None else None)


LINEAR = Op("linear", K.LINEAR, "MmBackward0", _linear_vjp)

# A float32 linear of at most this many rows (a batch against a layer's weight) computes its transpose
# ``w @ x.T`` and copies that out: OpenBLAS's sgemm packs the big operand faster untransposed. Measured on
# this project's 2-core AMD EPYC (OpenBLAS 0.3.31, SkylakeX kernels), x (M, 784) against w (512, 784): 1.9x
# faster at M = 8, 1.45-1.5x at 32, 1.04-1.33x at 64 (W2's forward: 64x784-512 and 64x512-512 together 40-100
# us faster a step at 2 threads); slower from M = 128 (0.83x) on, where the copy of the result grows, and
# no steady gain in float64 (0.9x to 1.16x by shape), which keeps ``x @ w.T``.
TRANSPOSED_MAX_ROWS = 64


def linear_product(xd, wd, out=None):
    """``xd @ wd.T`` into ``out`` (a new array if None): the forward GEMM of linear rows, eager and replayed
    (``compile_replay._blas_row``), so that both give the same bits."""
    m = _size(xd.shape[:-1])
    small = xd.ndim >= 2 and 1 < m <= TRANSPOSED_MAX_ROWS and (out is None or out.flags.c_contiguous)
    if small and xd.dtype == np.float32 and wd.dtype == np.float32:
        # (any leading dims as rows: the replay's row is 2-D, and both must take this path)
        if out is None:
            out = np.empty(xd.shape[:-1] + wd.shape[:1], np.float32)
        product = np.empty((wd.shape[0], m), np.float32)
        blas_threads.matmul(wd, xd.reshape(m, xd.shape[-1]).T, product)
        blas_threads.transpose(product, out.reshape(m, wd.shape[0]))  # (OpenBLAS's blocked copy: 2.5x numpy's)
        return out
    if xd.ndim == 1 and xd.dtype == wd.dtype and (out is None or (out.dtype == wd.dtype and out.flags.c_contiguous)):
        # one input vector (functional.jacobian's MLP): ``wd @ xd``, the same BLAS GEMV as ``xd @ wd.T`` through
        # np.dot, whose call costs 0.5 us less than np.matmul's (three layers a call)
        return np.dot(wd, xd, out=out)
    if xd.ndim != 2:
        return np.matmul(xd, wd.T, out=out)
    if out is None:
        out = np.empty((xd.shape[0], wd.shape[0]), np.result_type(xd, wd))
    blas_threads.matmul(xd, wd.T, out)
    return out


@forward_rule(_linear_jvp)
def linear(x, w):
    """``x @ w.T`` for ``w`` of shape (out, in), without copying the transpose."""
    xd = x._data
    wd = w._data
    if wd.ndim != 2:
        return matmul(x, transpose(w, 0, 1) if wd.ndim == 2 else w)
    if xd.shape[-1] != wd.shape[1]:
        m = _size(xd.shape[:-1])
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({m}x{xd.shape[-1]} and {wd.shape[1]}x{wd.shape[0]})"
        )
    if xd.dtype != wd.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_torch_dtype(xd.dtype)} != {_torch_dtype(wd.dtype)}"
        )
    if x._dev is not None or w._dev is not None:
        return _cuda_ops().linear(x, w)
    if not _recording(x, w):
        return wrap_array(linear_product(xd, wd))
    N, K_ = wd.shape
    out_shape = xd.shape[:-1] + (N,)
    M = _size(xd.shape[:-1])
    n = M * N
    tape = _tape_for(xd.dtype, n + xd.size + wd.size + 2, x, w)
    off = tape.alloc(n)
    view = tape.view(off, out_shape, n)
    linear_product(xd, wd, view)
    xoff, xrow = _operand(tape, x)
    woff, wrow = _operand(tape, w)
    aux = tape.add_aux([M, K_, N])
    code = K.LINEAR | (K.XRG if x._rg else 0) | (K.YRG if w._rg else 0)
    row = tape.record(code, off, xoff, woff, n, aux, xrow, wrow)
    out = _result(view, tape, off, row, LINEAR, (x, w))
    if xd.size >= BIG_ROW or wd.size >= BIG_ROW or n >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


# --- linear with a bias: one row for x @ w.T + b (every dense layer). As linear then ``+ b`` it costs two more
# rows, a broadcast copy of b the size of the output in the forward pass, and in the backward a strided walk
# to sum that copy back down; here the bias cotangent is a column sum of g, taken where g is read anyway.


def _linear_bias_vjp(g, out, inputs, ctx):
    x, w, b = inputs
    gx, gw = _linear_vjp(g, out, (x, w), ctx)
    gb = sum(reshape(g, (math.prod(x.shape[:-1]), w.shape[0])), 0) if b._rg else None
    return gx, gw, gb


def _linear_bias_jvp(tan, out, x, w, b):
    tb = tan(b)
    return _terms(_linear_jvp(tan, out, x, w), expand(tb, out.shape) if tb is not None else None)


LINEAR_BIAS = Op("linear_bias", K.LINEAR_BIAS, "AddmmBackward0", _linear_bias_vjp)


@forward_rule(_linear_bias_jvp)
def linear_bias(x, w, b):
    """``x @ w.T + b`` for ``w`` of shape (out, in) and ``b`` of shape (out,), recorded as one row.

    The caller (``nn.functional.linear``) checks shapes and dtypes: anything else goes through ``linear`` and
    ``+``, which raise torch's errors."""
    if x._dev is not None or w._dev is not None or b._dev is not None:
        return _cuda_ops().linear(x, w, b)
    xd = x._data
    wd = w._data
    bd = b._data
    if not _recording(x, w, b):
        res = linear_product(xd, wd)
        res += bd
        return wrap_array(res)
    N, K_ = wd.shape
    out_shape = xd.shape[:-1] + (N,)
    M = _size(xd.shape[:-1])
    n = M * N
    need = n + xd.size + wd.size + N + 3
    tape = _tape_for(xd.dtype, need, x, w)
    if b._tape is not None and b._tape.id > tape.id:
        tape = current_tape(xd.dtype, need, b._tape.id)
    off = tape.alloc(n)
    view = tape.view(off, out_shape, n)
    linear_product(xd, wd, view)
    view += bd  # in place, while the rows of the product are still in cache
    xoff, xrow = _operand(tape, x)
    woff, wrow = _operand(tape, w)
    boff, brow = _operand(tape, b)
    aux = tape.add_aux([M, K_, N, boff, brow, 1 if b._rg else 0])
    code = K.LINEAR_BIAS | (K.XRG if x._rg else 0) | (K.YRG if w._rg else 0)
    row = tape.record(code, off, xoff, woff, n, aux, xrow, wrow)
    out = _result(view, tape, off, row, LINEAR_BIAS, (x, w, b))
    if xd.size >= BIG_ROW or wd.size >= BIG_ROW or n >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


# --- cross entropy of logits against class indices, mean over the batch: one row (every classifier's loss).
# As log_softmax, a gather, a sum and a negation it is four rows and a dozen small numpy calls in the forward
# pass; the fused row computes the loss from the row maxima and log-sum-exps and its backward recomputes the
# softmax from the saved logits. ``nn.functional.cross_entropy`` sends only the plain case here.


def _cross_entropy_vjp(g, out, inputs, ctx):
    (x,) = inputs
    onehot = _onehot(ctx, x)
    return ((exp(log_softmax_dim(x, 1)) - onehot) * (g * (1.0 / x.shape[0])),)


def _cross_entropy_jvp(tan, out, x, target):
    tx = tan(x)
    if tx is None:
        return None
    return sum((exp(log_softmax_dim(x, 1)) - _onehot(target, x)) * tx) * (1.0 / x.shape[0])


def _onehot(target, x):
    if x._dev is not None:
        return _cuda_ops().onehot(target, x)
    m, c = x.shape
    onehot = np.zeros((m, c), x._data.dtype)
    onehot[np.arange(m), target] = 1.0
    return wrap_array(onehot)


CROSS_ENTROPY = Op("cross_entropy", K.CROSS_ENTROPY, "NllLossBackward0", _cross_entropy_vjp)


@forward_rule(_cross_entropy_jvp)
def cross_entropy_mean(x, target):
    """``mean_i(logsumexp(x[i]) - x[i, target[i]])`` for float logits ``x`` (M, C), M > 0, and int64 class
    indices ``target`` (M,), each in ``[0, C)`` (the caller checks): ``F.cross_entropy(x, target)``."""
    if x._dev is not None:
        return _cuda_ops().cross_entropy(x, np.ascontiguousarray(target, dtype=np.int64))
    xd = np.ascontiguousarray(x._data)
    target = np.ascontiguousarray(target, dtype=np.int64)
    loss = _cpu.cross_entropy_forward(xd, target)
    M, C = xd.shape
    out_data = np.asarray(loss, dtype=xd.dtype)  # (accumulated in float64 by the kernel)
    if not _recording(x):
        return wrap_array(out_data)
    tape = _tape_for(xd.dtype, xd.size + 2, x)
    off = tape.alloc(1)
    view = tape.view(off, (), 1)
    view[...] = out_data
    xoff, xrow = _operand(tape, x)
    aux = len(tape.aux)
    tape.aux.append(M)
    tape.aux.append(C)
    tape.aux.frombytes(target.tobytes())
    row = tape.record(K.CROSS_ENTROPY | K.XRG, off, xoff, -1, 1, aux, xrow)
    out = _result(view, tape, off, row, CROSS_ENTROPY, (x,), target)
    if xd.size >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


def _cuda_ops():
    from ..cuda import ops

    return ops
