"""The rows of the kernel sweep that run from Python: big tensors (``tape.BIG_ROW`` elements or more) and the
rows the kernel cannot sweep (``tape.python_rows``).

``engine._sweep_stretches`` stops the compiled kernel at such a row and calls ``_vectorized_row``: matmul and
linear rows go through BLAS (each operand's cotangent written straight into its arena region), elementwise rows
with a cheap partial run the kernels' chunk functions in several threads (they release the GIL), a whole-tensor
sum fills its operand's region, and any other op applies its differentiable ``vjp`` under no_grad. The checks
the kernel makes on its rows (freed graph, saved values modified in place) are made here by ``big_row_head``,
which the chain sweep (``chain_backward``), the batched sweep and the compiled second-order sweep share, as
they share the error messages below.

``s`` is always the sweep's state (``engine._TapeSweep``): its cotangent arena ``cot``, the ``live`` flags of
regions already written (a region not yet live is stored into, not added to: it may hold garbage) and the tape.
"""

import struct

import numpy as np

from kernels import opcodes as K
from kernels.cpu import (
    CHEAP_PARTIAL,
    READS_OUT,
    READS_X,
    READS_Y,
    SAVES,
    binary_backward_chunk,
    needed_reads_py,
    read_only,
    unary_backward_chunk,
)

from . import blas_threads, grad_mode, parallel
from .ops.elementwise_table import ARRAY_PARTIALS
from .parallel import PARALLEL_MIN
from .tensor import Tensor, _new, wrap_array

_ROW_HEAD = struct.Struct("<4q")  # a tape row's opcode and its out, x, y offsets (tape.ROW)
_ROW_INTS = struct.Struct("<8q")  # a tape row's integer words (tape.ROW without the two float attributes)
_ROW_ATTRS = struct.Struct("<2d")  # a tape row's two float attributes (at byte 64 of its record)

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have "
    "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if "
    "you need to access saved tensors after calling backward."
)


def _row_out(tape, h):
    """The arena offset of row ``h``'s output."""
    return _ROW_HEAD.unpack_from(tape.rows, h * 80)[1]


def _vectorized_row(s, t, h, freed):
    """Sweep row ``h`` (producing ``t``) with the op's differentiable rule on arena views, under no_grad."""
    code, out_off, targets = big_row_head(s, t, h, freed)
    n = t._data.size
    g_flat = s.cot[out_off : out_off + n]
    if (
        (code == K.MATMUL and t._inputs[0]._data.ndim <= 2 and t._inputs[1]._data.ndim <= 2)
        or code == K.LINEAR
        or code == K.LINEAR_BIAS
    ):
        _matmul_row(s, t, g_flat, targets, code != K.MATMUL)
    elif CHEAP_PARTIAL[code] and _fused_row(s, t, code, g_flat, targets, h):
        pass
    elif code in ARRAY_PARTIALS:
        _array_partial_row(s, t, ARRAY_PARTIALS[code], g_flat, targets, h)
    elif code == K.SUM_ALL:
        _sum_all_row(s, t, g_flat, targets, h)
    else:
        s.clear_unwritten(targets)  # the rules below add into the operands' regions
        _rule_row(s, t, code, n, g_flat, targets)
    for off, prow, _ in targets:
        s.live[off] = 1
        if prow < s.lowest:
            s.lowest = prow


_READS = {}  # a row's opcode bits -> the values its backward reads (``needed_reads_py`` of the static ``SAVES``)


def big_row_head(s, t, h, freed):
    """Check row ``h`` (producing ``t``, swept from Python) as the kernel checks its rows (freed graph, saved
    values modified in place), mark it visited; return ``(opcode, output offset, targets)`` with ``targets``
    the ``(offset, row, tensor)`` of each operand that receives a cotangent."""
    tape = s.tape
    op_bits, out_off, x_off, y_off, _, aux_at, x_row, y_row = _ROW_INTS.unpack_from(tape.rows, h * 80)
    code = op_bits & K.CODE_MASK
    reads = _READS.get(op_bits)
    if reads is None:
        reads = _READS[op_bits] = needed_reads_py(int(SAVES[code]), op_bits)
    if reads:
        if freed[h]:
            raise RuntimeError(FREED_MESSAGE)
        mod = tape.modified
        if (
            (reads & READS_OUT and mod[out_off])
            or (reads & READS_X and x_off >= 0 and mod[x_off])
            or (reads & READS_Y and y_off >= 0 and mod[y_off])
        ):
            raise RuntimeError(_modified_message(tape, h, out_off))
    s.visited[h] = 1
    inputs = t._inputs
    targets = []
    if op_bits & K.XRG:
        targets.append((x_off, x_row, inputs[0]))
    if op_bits & K.YRG:
        targets.append((y_off, y_row, inputs[1]))
    if code == K.LINEAR_BIAS:
        if tape.aux[aux_at + 5]:  # the bias: a third operand, its offset and row kept in aux
            targets.append((tape.aux[aux_at + 3], tape.aux[aux_at + 4], inputs[2]))
    return code, out_off, targets


def _sum_all_row(s, t, g_flat, targets, h):
    """The cotangent of a big tensor summed to a scalar: ``scale * g`` everywhere (stored at the first write,
    added after), split across threads."""
    if not targets:
        return
    off, _, x = targets[0]
    scale = float(np.frombuffer(s.tape.rows, np.float64, count=1, offset=h * 80 + 64)[0])
    value = g_flat[0] * scale
    region = s.cot[off : off + x._data.size]
    if s.live[off]:
        parallel.run(region.size, lambda lo, hi: np.add(region[lo:hi], value, out=region[lo:hi]))
    else:
        parallel.run(region.size, lambda lo, hi: region[lo:hi].fill(value))


def _rule_row(s, t, code, n, g_flat, targets):
    """Sweep a big row with the op's differentiable rule, on numpy arrays."""
    if n >= PARALLEL_MIN and (K.is_unary(code) or K.BINARY_FIRST <= code <= K.BINARY_LAST):
        # elementwise: every chunk of the output depends on the same chunk of the operands only
        parallel.run(n, lambda lo, hi: _elementwise_chunk(s, t, g_flat, targets, lo, hi))
    else:
        g = wrap_array(g_flat.reshape(t._data.shape))
        with grad_mode.no_grad():
            in_grads = t._op.vjp(g, t, t._inputs, t._ctx)
        _add_input_grads(s, t._inputs, in_grads, targets, 0, None)


def _matmul_row(s, t, g_flat, targets, linear):
    """Matmul of 1-D or 2-D operands (``x @ y``) or linear (``x @ y.T``, plus a bias ``b`` as third input):
    BLAS writes each operand's cotangent straight into its arena region (or adds to it); the bias gets the
    column sums of g. A vector operand is taken as a one-row ``x`` or a one-column ``y``."""
    x, y = t._inputs[:2]
    b = t._inputs[2] if len(t._inputs) > 2 else None
    if not linear and len(targets) == 1 and x._data.ndim + y._data.ndim == 3:
        off, _, inp = targets[0]
        k = 1 if inp is y else 0 if inp is x else -1
        if k >= 0 and (y if k else x)._data.ndim == 1:
            _matvec_row(s, off, k, x._data, y._data, g_flat)
            return
    xd = x._data.reshape(-1, x.shape[-1])
    yd = y._data if linear or y.ndim == 2 else y._data.reshape(-1, 1)
    g = g_flat.reshape(xd.shape[0], -1)
    done = []
    products = []  # (offset, shape, a, b) of x's and y's cotangents
    for off, _, inp in targets:
        if any(inp is d for d in done):
            continue  # an input used twice (x @ x): all its parts were added on its first pass
        done.append(inp)
        if inp is x:
            products.append((off, xd.shape, g, yd if linear else yd.T))
        if inp is y:
            products.append((off, yd.shape, *((g.T, xd) if linear else (xd.T, g))))
        if inp is b:
            _write_product(s, off, (g.shape[1],), g, None)
    if len(products) == 2 and products[0][0] != products[1][0]:
        # both operands' cotangents, side by side on BLAS's threads (equal in multiply-adds: ``g @ y.T`` and
        # ``g.T @ x`` share their three dimensions)
        jobs = []
        for off, shape, left, right in products:
            jobs.append((left, right, s.cot[off : off + _size(shape)].reshape(shape), bool(s.live[off])))
        blas_threads.matmuls(jobs)
        for off, _, _, _ in products:
            s.live[off] = 1
        return
    for off, shape, left, right in products:  # (x @ x: the second adds to the first)
        _write_product(s, off, shape, left, right)


def _matvec_row(s, off, k, x, y, g_flat):
    """The cotangent of the vector operand (``k``: 0 for ``x``, 1 for ``y``; 1-D) of a matrix-vector product
    ``x @ y`` (arrays) into its region at ``off``: one BLAS call on 1-D arrays (matmul's 2-D forms of the vectors
    cost a batched loop and temporaries)."""
    if k:
        _write_dot(s, off, g_flat, x)  # gv = g @ A
    else:
        _write_dot(s, off, y, g_flat)  # gv = A @ g


def _write_product(s, off, shape, a, b):
    """Cotangent region at ``off`` (of ``shape``) = ``a @ b`` (column sums of ``a`` when b is None), or += it
    once the region is live: the first contribution needs no zeroed region and no temporary."""
    region = s.cot[off : off + _size(shape)].reshape(shape)
    if b is None:
        # a bias's cotangent: the column sums of g as ``ones @ g``, one BLAS matrix-vector product (numpy's
        # axis-0 sum costs 10-20 us at a dense layer's (64, 512), 200 us at (3000, 20); this 1-10 us)
        a, b = _ones(a.dtype, a.shape[0]), a
        if s.live[off]:
            region += np.dot(a, b)
        else:
            np.dot(a, b, out=region)
            s.live[off] = 1
    elif a.ndim == 2 and b.ndim == 2:  # (BLAS's threads, or one thread while the cores are contended)
        blas_threads.matmul(a, b, region, accumulate=bool(s.live[off]))
        s.live[off] = 1
    elif s.live[off]:
        region += a @ b
    else:
        np.matmul(a, b, out=region)
        s.live[off] = 1


_ONES = {}  # dtype -> the longest vector of ones asked for yet (``_ones`` hands out its leading part)


def _ones(dtype, n):
    ones = _ONES.get(dtype)
    if ones is None or ones.shape[0] < n:
        ones = _ONES[dtype] = np.ones(max(n, 64), dtype)
        ones.flags.writeable = False
    return ones[:n]


def _write_dot(s, off, a, b):
    """Cotangent region at ``off`` (a vector) = ``np.dot(a, b)``, or += it once the region is live."""
    n = b.shape[-1] if a.ndim == 1 else a.shape[0]
    region = s.cot[off : off + n]
    if s.live[off]:
        region += np.dot(a, b)
    else:
        np.dot(a, b, out=region)
        s.live[off] = 1


def _size(shape):
    n = 1
    for k in shape:
        n *= k
    return n


def _fused_row(s, t, code, g_flat, targets, h):
    """One fused pass of the kernels' partial per chunk, in several threads (the kernels release the GIL)."""
    inputs = t._inputs
    shape = t._data.shape
    for i in inputs:
        if i._data.shape != shape:
            return False
    a0, a1 = _ROW_ATTRS.unpack_from(s.tape.rows, h * 80 + 64)
    out = read_only(t._data.reshape(-1))
    if len(inputs) == 1:  # (the common unary row, without the general case's dicts and closures)
        if not targets:
            return True
        x = read_only(np.ascontiguousarray(inputs[0]._data).reshape(-1))
        off = targets[0][0]
        gx = s.cot[off : off + x.size]
        acc = bool(s.live[off])
        if out.size < PARALLEL_MIN:
            unary_backward_chunk(code, x, out, g_flat, gx, a0, a1, acc)
        else:
            parallel.run(
                out.size,
                lambda lo, hi: unary_backward_chunk(code, x[lo:hi], out[lo:hi], g_flat[lo:hi], gx[lo:hi], a0, a1, acc),
            )
        return True
    flat = [read_only(np.ascontiguousarray(i._data).reshape(-1)) for i in inputs]
    regions = {}
    for off, _, inp in targets:
        for k, i in enumerate(inputs):
            if i is inp and k not in regions:
                regions[k] = s.cot[off : off + inp._data.size]
    # a region without a cotangent yet is stored into, not added to (it may hold garbage: see _TapeSweep)
    accumulate = {k: bool(s.live[off]) for off, _, inp in targets for k, i in enumerate(inputs) if i is inp}
    gx = regions.get(0, g_flat)  # (a region the kernel does not write: has_x / has_y say which)
    gy = regions.get(1, g_flat)
    has_x, has_y = 0 in regions, 1 in regions
    acc_x, acc_y = accumulate.get(0, True), accumulate.get(1, True)
    if inputs[0] is inputs[1]:  # x op x: both partials go to the same region, the second one adds
        gy = gx
        has_y = has_x
        acc_y = True
    parallel.run(
        out.size,
        lambda lo, hi: binary_backward_chunk(
            code,
            flat[0][lo:hi],
            flat[1][lo:hi],
            out[lo:hi],
            g_flat[lo:hi],
            gx[lo:hi],
            gy[lo:hi],
            has_x,
            has_y,
            acc_x,
            acc_y,
        ),
    )
    return True


def _array_partial_row(s, t, partial, g_flat, targets, h):
    """A unary row whose partial is faster as numpy's vectorized loops than per element in the compiled loop
    (``elementwise_table.ARRAY_PARTIALS``): ``gx (+)= g * d(x, out)`` per chunk, in several threads."""
    if not targets:
        return
    x = np.ascontiguousarray(t._inputs[0]._data).reshape(-1)
    out = None if s.tape.modified[_row_out(s.tape, h)] else t._data.reshape(-1)  # (None: written in place since)
    a0, a1 = _ROW_ATTRS.unpack_from(s.tape.rows, h * 80 + 64)
    off = targets[0][0]
    gx = s.cot[off : off + x.size]
    acc = bool(s.live[off])  # (a region without a cotangent yet is stored into: it may hold garbage)

    def chunk(lo, hi):
        with np.errstate(all="ignore"):  # (exp's overflow on the side not taken, inf * 0 at infinite inputs)
            d = partial(x[lo:hi], None if out is None else out[lo:hi], a0, a1)
            if acc:
                gx[lo:hi] += g_flat[lo:hi] * d
            else:
                np.multiply(g_flat[lo:hi], d, out=gx[lo:hi])

    if x.size < PARALLEL_MIN:
        chunk(0, x.size)
    else:
        parallel.run(x.size, chunk)


def _chunk(t, lo, hi):
    """Elements ``lo:hi`` of tensor ``t`` as a 1-D tensor with ``t``'s op (rules read ``out._op``)."""
    c = _new(Tensor)
    c._data = t._data.reshape(-1)[lo:hi]
    c._rg = t._rg
    c._op = t._op
    c._ctx = t._ctx
    return c


def _elementwise_chunk(s, t, g_flat, targets, lo, hi):
    with grad_mode.no_grad():
        in_grads = t._op.vjp(
            wrap_array(g_flat[lo:hi]), _chunk(t, lo, hi), [_chunk(i, lo, hi) for i in t._inputs], t._ctx
        )
    _add_input_grads(s, t._inputs, in_grads, targets, lo, hi)


def _add_input_grads(s, inputs, in_grads, targets, lo, hi):
    """Add each operand's cotangent into its arena region (``lo:hi`` of it for a chunk, all of it if None)."""
    for inp, gi in zip(inputs, in_grads):
        if gi is None:
            continue
        for off, _, target in targets:
            if target is inp:
                gd = gi._data if isinstance(gi, Tensor) else np.asarray(gi)
                if hi is None:
                    s.cot[off : off + inp._data.size] += np.broadcast_to(gd, inp._data.shape).reshape(-1)
                else:
                    s.cot[off + lo : off + hi] += np.broadcast_to(gd, (hi - lo,))
                break


def _modified_message(tape, row, off):
    from kernels import opcodes as K

    from .ops import OPS

    code = int(np.frombuffer(tape.rows, np.int64, count=1, offset=row * 80)[0]) & K.CODE_MASK
    names = [op.grad_fn_name for op in OPS.values() if op.code == code and isinstance(op.grad_fn_name, str)]
    who = names[0] if names else f"opcode {code}"
    if code == K.SAVED_INPUT or code == K.SAVED_RESULT:  # a composite's guard row (ad/saved.py)
        from .saved import guard_name

        who = guard_name(tape, row)
    kind = "DoubleTensor" if tape.dtype == np.float64 else "FloatTensor"
    return (
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{kind}] saved by {who} (tape row {row}) was changed after it was saved. Hint: the operation that "
        "failed to compute its gradient used a value that a later in-place operation (add_, mul_, x[i] = v, "
        "...) overwrote; compute on a clone() instead, or apply the in-place update after backward."
    )
