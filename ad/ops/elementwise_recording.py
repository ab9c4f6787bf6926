"""Recording an elementwise row: the generic ``_unary`` / ``_binary``, their per-op fast paths, forward mode
through an elementwise op, and the numpy evaluation of the forward.

``_unary(op, x, a0, a1)`` and ``_binary(op, x, y)`` take any operands: they handle grad mode, forward-mode
tangents (``_dual_unary`` / ``_dual_binary``; the compiled JVPs ``_compiled_jvp_*`` when the tangent needs no
recorded rule), CUDA tensors, integer dtypes, broadcasting (recorded ``expand`` rows), big tensors split across
cores and importing leaves and constants into the tape. ``_fast_unary(op)``, ``_fast_affine()`` and
``_fast_binary(op)`` build, once per op, the hot path of the common case (a small CPU operand on this thread's
current tape, nothing dual): they record exactly the row the generic function would, without its checks and one
call frame, and fall back to it for anything else (the binary ones are also Tensor's + - * operators). They test
grad mode and the tape's thread at once: ``tape.is_current == get_ident()`` (see ``Tape.is_current``).
``_import_slot`` is the leaf import they inline. Keep them in step with the generic paths.

The op entries these paths test for (COPY, SUB) come from ``elementwise_table.py``; the public functions built
on them live in ``elementwise.py``. Names of the structural ops (``expand``) are reached through the package
module ``_ops`` at call time: the package imports this module while it is being initialized, before those are
defined.

Start reading at ``_unary`` and ``_binary``.
"""

import math
from threading import get_ident as _get_ident

import numpy as np

from kernels import cpu as _cpu
from kernels import opcodes as K

from .. import forward as _forward
from .. import observe as _observe
from .. import ops as _ops
from .. import parallel
from .. import views as _views
from ..forward import _fw
from ..grad_mode import _grad_state
from ..parallel import PARALLEL_MIN
from ..tape import _FIELD, _ROW_SHIFT, _VERSION_SHIFT, BIG_ROW
from ..tape import _state as _tape_state
from ..tensor import Tensor, _new, wrap_array
from . import _F64, VECTOR_MIN, _broadcast_shape, _tape_for
from .elementwise_table import (
    _F64_ARRAYS,
    AFFINE,
    ARRAY_PARTIALS,
    COPY,
    SCALAR_ARRAY_MAX,
    SUB,
    _affine_np,
    _as_f64_array,
    _cuda_ops,
)
from .out import write_result

# Rows of ops whose partial calls libm per element in the compiled sweep (elementwise_table.ARRAY_PARTIALS: silu,
# gelu, ...) are swept with numpy from this size on, where its vectorized exp and tanh repay a Python row's cost
# (~60 us): silu's backward on 8192 elements took 0.20 ms compiled, 0.13 ms so; on 2048, 0.05 and 0.10 ms
ARRAY_ROW = 4096

# ---------------------------------------------------------------------------------------------------------
# unary rows


def _unary(op, x, a0=0.0, a1=0.0, ctx=None, dual=True):
    if dual and x._tangents is not None and _fw.levels:
        out = _dual_unary(op, x, a0, a1, ctx)
        if out is not None:
            return out
    if x._dev is not None:
        return _cuda_ops().unary(op, x, a0, a1, ctx)
    xd = x._data
    if not (x._rg and _grad_state.enabled):
        if _observe.observer is not None:  # (ad.compile: constant folding, see ``_folded``)
            return _folded(wrap_array(_unary_np(op, xd, a0, a1)), (x,))
        return wrap_array(_unary_np(op, xd, a0, a1))
    n = xd.size
    xtape = x._tape
    tape = _tape_state.current.get(xd.dtype)
    if tape is None or tape.used + 2 * n + 2 > tape.capacity or (xtape is not None and xtape.id > tape.id):
        tape = _tape_for(xd.dtype, 2 * n + 2, x)  # room for the result and, if imported, the operand
    off = tape.used  # tape.alloc(n), inlined: this is the forward pass's hottest path
    tape.used = off + (n or 1)
    view = tape.values[off : off + n]
    if xd.ndim != 1:
        view = view.reshape(xd.shape)
    if op.plain and n < PARALLEL_MIN and (op.vector_fn is None or n < VECTOR_MIN):
        op.np_fn(xd, view)
    elif op is COPY and n < PARALLEL_MIN:
        np.copyto(view, xd)  # (clone, and make_dual's row: _copy_np without the two calls that lead to it)
    else:
        _unary_np(op, xd, a0, a1, view)
    if xtape is tape:
        xoff = x._off
        xrow = x._row
    else:
        xoff, xrow = tape.import_tensor(x, True)
    row = tape.nrows
    if row >= tape.row_cap:
        tape.grow()
    tape.pack(tape.rows, row * 80, op.code | K.XRG, off, xoff, -1, n, 0, xrow, -1, a0, a1)
    tape.nrows = row + 1
    t = _new(Tensor)
    t._data = view
    t._rg = True
    t._op = op
    t._in0 = x
    if ctx is not None:
        t._ctx = ctx
    elif a0 != 0.0 or a1 != 0.0:
        t._ctx = (a0, a1)
    t._tape = tape
    t._off = off
    t._row = row
    if n >= BIG_ROW or (n >= ARRAY_ROW and op.code in ARRAY_PARTIALS):
        tape.mark_vectorized(row, t)  # swept with numpy's vectorized ufuncs (see tape.BIG_ROW)
    return t


def _folded(out, operands):
    """Tell a recording ``ad.compile`` that ``out``, computed without recording, is a function of ``operands``'
    values (and of Python constants): where they are constants made inside the compiled function, so is it
    (``_Recorder.folded``). Returns ``out``."""
    _observe.observer.folded(out, operands)
    return out


def _fast_unary(op):
    """The forward pass's hottest path, specialised per op (one without attributes: sin, exp, tanh, ...; the
    affine rows have ``_fast_affine``): an elementwise op on a tensor recorded on this thread's current tape,
    nothing dual, small. Anything else goes through the generic ``_unary``, which records exactly the same row;
    this only skips its checks and a call frame. Its only keyword is ``out``: each keyword-only default costs
    the call a lookup."""
    if op.code in _ATTR_CODES:
        raise ValueError(f"{op.name} has attributes: its rows are recorded by _unary or _fast_affine")
    code = op.code | K.XRG
    np_fn = op.np_fn
    plain = op.plain
    vector_fn = op.vector_fn

    def fast(input, *, out=None):  # noqa: A002 - torch's name (``torch.sin(input=t)``)
        if out is not None:
            return write_result(op.name, fast(input), out)
        try:
            tape = input._tape  # not None: a recorded result (so it requires grad)
        except AttributeError:
            _as_float_operand(input, op.name)  # a non-tensor argument: torch's TypeError
            raise
        if input._tangents is not None:
            if _fw.levels:
                dual = _dual_unary(op, input, 0.0, 0.0, None)
                if dual is not None:
                    return dual
        elif tape is not None and tape.is_current == _get_ident():  # grad mode on, this thread's tape
            xd = input._data
            n = xd.size
            if n < PARALLEL_MIN and tape.used + n < tape.capacity:
                off = tape.used
                tape.used = off + (n or 1)
                view = tape.values[off : off + n]
                if xd.ndim != 1:
                    view = view.reshape(xd.shape)
                if plain:
                    if vector_fn is None or n < VECTOR_MIN:
                        np_fn(xd, view)
                    else:
                        vector_fn(xd, view)
                else:
                    np_fn(xd, out=view)
                row = tape.nrows
                if row >= tape.row_cap:
                    tape.grow()
                tape.pack_ints(tape.rows, row * 80, code, off, input._off, -1, n, 0, input._row, -1)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = op
                t._in0 = input
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _unary(op, input)

    return fast


def _fast_affine(scale_only=False):
    """``affine(x, a, b, ctx)``, ``a * x + b`` for Python floats (the scalar forms of + - * /), on the hot path:
    ``_fast_unary(AFFINE)``'s recording with the numbers passed by position (keyword arguments cost a small op
    ~5%), and for a small float64 tensor the ufunc of ``_affine_np`` called here with the number as its cached array
    (``_as_f64_array``: numpy converting a Python number operand is half of that call). Anything else goes
    through the generic ``_unary``, which records the same row. With ``scale_only`` its callers pass multiplications
    only (``b = -0.0``), and it skips testing ``b``'s sign (a ``math.copysign`` call, ~2% of a small ``x * c``)."""
    code = AFFINE.code | K.XRG
    f64_arrays = _F64_ARRAYS
    add = np.add
    multiply = np.multiply
    copysign = math.copysign

    def fast(x, a, b, ctx):
        tape = x._tape  # not None: a recorded result (so it requires grad)
        if tape is not None and x._tangents is None and tape.is_current == _get_ident():
            xd = x._data
            n = xd.size
            if n < PARALLEL_MIN and tape.used + n < tape.capacity:
                off = tape.used
                tape.used = off + (n or 1)
                view = tape.values[off : off + n]
                if xd.ndim != 1:
                    view = view.reshape(xd.shape)
                if xd.dtype is not _F64 or n > SCALAR_ARRAY_MAX:
                    _affine_np(xd, a, b, view)
                elif scale_only or (b == 0.0 and copysign(1.0, b) < 0.0):  # (_affine_np's first cases, inlined)
                    scale = f64_arrays.get(a)
                    multiply(xd, scale if scale is not None else _as_f64_array(a), view)
                elif a == 1.0:
                    shift = f64_arrays.get(b)
                    add(xd, shift if shift is not None else _as_f64_array(b), view)
                else:
                    _affine_np(xd, a, b, view)
                row = tape.nrows
                if row >= tape.row_cap:
                    tape.grow()
                tape.pack(tape.rows, row * 80, code, off, x._off, -1, n, 0, x._row, -1, a, b)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = AFFINE
                t._in0 = x
                t._ctx = ctx
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _unary(AFFINE, x, a, b, ctx)

    return fast


def _unary_fn(op):
    """The public function of an elementwise unary op: its fast path itself (which turns a non-tensor argument
    into torch's TypeError), so that ``ad.sin(x)`` costs no call frame more than ``x.sin()``."""
    fn = _fast_unary(op)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``, differentiable in reverse and forward mode."
    fn.method = fn
    return fn


def _as_float_operand(x, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return x


def _dual_unary(op, x, a0, a1, ctx):
    """Forward mode through an elementwise unary op: ``t * d(x, out)``; None if ``x`` has no visible tangent."""
    # (CUDA: the rule's ad ops, on the device; an operand being recorded: compiled_level says None, uncalled)
    level = _forward.compiled_level(x) if x._dev is None and not (x._rg and _grad_state.enabled) else None
    if level is not None:
        return _compiled_jvp_unary(op, x, a0, a1, level)
    active = _fw.levels
    if len(active) == 1 and not _fw.hidden:  # (visible_levels_of for one active level: the usual case)
        levels = active if active[0] in x._tangents else ()
    else:
        levels = _forward.visible_levels_of(x)
    if not levels:
        return None
    if len(levels) == 1:
        # (apply_dual's one-level case, inlined: a recorded graph through a dual level, as in forward over
        # reverse, takes this path for every elementwise op)
        level = levels[0]
        out = _unary(op, x, a0, a1, ctx, False)
        prev = _fw.hidden  # (``with _forward.hide(levels)``, inlined: three Python calls per op)
        _fw.hidden = prev | frozenset(levels)
        try:
            tangent = op.partial(x._tangents[level], x, out, a0, a1)
        finally:
            _fw.hidden = prev
        _forward.set_tangent(out, level, tangent)
        return out
    rule = lambda tan, base: op.partial(tan(x), x, base, a0, a1)  # noqa: E731
    # (the partial broadcasts against a batched tangent: the same rule serves a batch)
    return _forward.apply_dual(lambda: _unary(op, x, a0, a1, ctx, False), rule, (x,), levels, rule)


def _compiled_jvp_unary(op, x, a0, a1, level):
    """The hot path of a JVP (see forward.compiled_level): the primal as without forward mode, the tangent
    by the compiled partial (the reverse sweep's formula), no tape and no Python rule."""
    xd = x._data
    if xd.dtype.kind != "f":
        xd = xd.astype(np.float64)
    n = xd.size
    if n >= PARALLEL_MIN:
        out_data = _unary_np(op, xd, a0, a1)
    elif op.plain and (op.vector_fn is None or n < VECTOR_MIN):
        out_data = op.np_fn(xd)
    else:
        out_data = _unary_np_serial(op, xd, a0, a1)
    if type(out_data) is not np.ndarray:
        out_data = np.asarray(out_data)  # a numpy scalar for 0-d input
    dt = out_data.dtype
    res = np.empty(out_data.shape, dt)
    t = x._tangents[level]._data
    if out_data.ndim == 1 and t.ndim == 1 and (t.dtype is dt or t.dtype == dt):
        xf, of, rf = xd, out_data, res  # (1-D views need not be contiguous: numba takes strided arrays)
    else:
        t = _flat(t, dt)
        xf = _flat(xd, dt)
        of = out_data.reshape(-1)
        rf = res.reshape(-1)
    code = op.code
    if n >= PARALLEL_MIN:
        parallel.run(n, lambda lo, hi: _cpu.jvp_unary(code, xf[lo:hi], of[lo:hi], t[lo:hi], rf[lo:hi], a0, a1))
    else:
        _cpu.jvp_unary(code, xf, of, t, rf, a0, a1)
    return _dual_result(out_data, level, res)


def _dual_result(data, level, tangent_data):
    """A new tensor holding ``data``, with tangent ``tangent_data`` at ``level`` (the compiled JVPs' result)."""
    out = _new(Tensor)
    out._data = data
    tangent = _new(Tensor)
    tangent._data = tangent_data
    _forward.set_tangent(out, level, tangent)
    return out


def _flat(a, dtype):
    """``a`` as a flat contiguous array of ``dtype`` (itself when it is one already)."""
    if a.ndim == 1 and (a.dtype is dtype or a.dtype == dtype) and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _unary_np(op, xd, a0, a1, out=None):
    if xd.dtype.kind != "f":
        integral = _INTEGRAL.get(op.code)
        if integral is not None:  # neg, abs, relu, square keep an integer dtype (and refuse bool) as torch's
            return integral(xd)
        xd = xd.astype(np.float64)
    if xd.size >= PARALLEL_MIN:
        # one chunk per core: numpy releases the GIL in its loops
        if out is None:
            out = np.empty(xd.shape, xd.dtype)
        xf = xd.reshape(-1)
        of = out.reshape(-1)
        parallel.run(xf.size, lambda lo, hi: _unary_np_serial(op, xf[lo:hi], a0, a1, of[lo:hi]))
        return out
    return _unary_np_serial(op, xd, a0, a1, out)


# forward fn(x, a0, a1, out)
_ATTR_CODES = (
    K.AFFINE,
    K.POW_SCALAR,
    K.RPOW_SCALAR,
    K.RDIV_SCALAR,
    K.CLAMP,
    K.LOGIT,
    K.STEP_FN,
    K.SILU,
    K.GELU,
    K.MISH,
    K.ELU,
    K.CELU,
)  # forward fn(x, a0, a1, out)


def _unary_np_serial(op, xd, a0, a1, out=None):
    if op.vector_fn is not None and xd.size >= VECTOR_MIN:
        return op.vector_fn(xd, out)
    fn = op.np_fn
    if op.code in _ATTR_CODES:
        return fn(xd, a0, a1, out)
    return fn(xd, out=out) if out is not None else fn(xd)


def _no_bool(fn, error):
    def integral(xd):
        if xd.dtype.kind == "b":
            raise error
        return fn(xd)

    return integral


_NEG_BOOL = (
    "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the "
    "`~` or `logical_not()` operator instead."
)
# integer and bool inputs of the ops whose torch result keeps the input's integer or bool dtype (the others compute in
# float64, numpy's promotion)
_INTEGRAL = {
    K.COPY: np.copy,  # (``Tensor.clone()``, ``.contiguous()``)
    K.NEG: _no_bool(np.negative, RuntimeError(_NEG_BOOL)),
    K.ABS: _no_bool(np.abs, NotImplementedError('"abs_cpu" not implemented for \'Bool\'')),
    K.RELU: _no_bool(lambda xd: np.maximum(xd, 0), RuntimeError("Boolean inputs not supported for relu")),
    K.SQUARE: lambda xd: np.square(xd.astype(np.int64) if xd.dtype.kind == "b" else xd),
}


# ---------------------------------------------------------------------------------------------------------
# binary rows (same shape after broadcasting by recorded expands)


def _integer_operands(op, xd, yd):
    """``op`` of two integer or bool arrays: integer ops stay integer; float-valued ones (atan2, hypot, ...)
    give float64, ad's rule for integer inputs, where numpy would pick float16 or float32 for small integer
    types."""
    out = np.asarray(op.np_fn(xd, yd))
    if out.dtype.kind == "f" and out.dtype != np.float64:
        out = np.asarray(op.np_fn(xd.astype(np.float64), yd.astype(np.float64)))
    return out


def _binary(op, x, y, dual=True):
    """Elementwise ``op(x, y)`` for tensors (scalars are turned into ``affine`` rows by the callers)."""
    if dual and (x._tangents is not None or y._tangents is not None) and _fw.levels:
        out = _dual_binary(op, x, y)
        if out is not None:
            return out
    if x._dev is not None or y._dev is not None:
        return _cuda_ops().binary(op, x, y)
    xd = x._data
    yd = y._data
    if not (_grad_state.enabled and (x._rg or y._rg)):
        if op is SUB and (xd.dtype.kind == "b" or yd.dtype.kind == "b"):
            raise RuntimeError(_SUB_TWO_BOOLS if xd.dtype.kind == yd.dtype.kind else _SUB_BOOL)
        if xd.shape != yd.shape:
            _broadcast_shape(xd.shape, yd.shape)  # torch's error message for incompatible shapes
        if xd.dtype.kind not in "fc" and yd.dtype.kind not in "fc":
            out = wrap_array(_integer_operands(op, xd, yd))
        elif xd.shape == yd.shape and xd.size >= PARALLEL_MIN:
            out = wrap_array(_binary_np(op, xd, yd, np.empty(xd.shape, np.result_type(xd, yd))))
        else:
            out = wrap_array(np.asarray(op.np_fn(xd, yd)))
        if _observe.observer is not None:  # (ad.compile: constant folding, see ``_folded``)
            _folded(out, (x, y))
        return out
    shape = xd.shape
    dt = xd.dtype
    if shape != yd.shape or dt is not yd.dtype:
        shape = _broadcast_shape(xd.shape, yd.shape)
        dt = np.result_type(xd, yd)
        if dt.kind != "f":
            dt = np.dtype(np.float64)
        if xd.shape != shape:
            x = _ops.expand(x, shape) if x._rg else _views.broadcast_constant(x, shape)
        if yd.shape != shape:
            y = _ops.expand(y, shape) if y._rg else _views.broadcast_constant(y, shape)
        xd = x._data
        yd = y._data
    n = xd.size
    xtape = x._tape
    ytape = y._tape
    tape = _tape_state.current.get(dt)
    if (
        tape is None
        or tape.used + 3 * n + 3 > tape.capacity
        or (xtape is not None and xtape.id > tape.id)
        or (ytape is not None and ytape.id > tape.id)
    ):
        tape = _tape_for(dt, 3 * n + 2, x, y)
    off = tape.used  # tape.alloc(n), inlined
    tape.used = off + (n or 1)
    view = tape.values[off : off + n]
    if len(shape) != 1:
        view = view.reshape(shape)
    if n >= PARALLEL_MIN:
        _binary_np(op, xd, yd, view)
    elif op.code < K.MAXIMUM:
        op.np_fn(xd, yd, view)  # positional out: numpy's fastest call
    else:
        op.np_fn(xd, yd, out=view)  # np.maximum / np.minimum deprecate a positional out
    if xtape is tape:
        xoff = x._off
        xrow = x._row
    else:
        xoff, xrow = tape.import_tensor(x, x._rg)
    if ytape is tape:
        yoff = y._off
        yrow = y._row
    else:
        yoff, yrow = tape.import_tensor(y, y._rg)
    code = op.code | (K.XRG if x._rg else 0) | (K.YRG if y._rg else 0)
    row = tape.nrows
    if row >= tape.row_cap:
        tape.grow()
    tape.pack(tape.rows, row * 80, code, off, xoff, yoff, n, 0, xrow, yrow, 0.0, 0.0)
    tape.nrows = row + 1
    t = _new(Tensor)
    t._data = view
    t._rg = True
    t._op = op
    t._in0 = x
    t._in1 = y
    t._tape = tape
    t._off = off
    t._row = row
    if n >= BIG_ROW:
        tape.mark_vectorized(row, t)
    return t


def _fast_binary(op, generic=None, scalar=None):
    """(Repeats the recording tail of ``_binary`` on purpose, as ``_fast_unary`` does for ``_unary``: one call
    frame and the generic checks are ~15% of a small op's forward cost, which is the W1 bar.)

    The hot path of a same-shape binary op on this thread's current tape, nothing dual, small: each operand
    recorded there, or a leaf or constant (imported there now, or already: ``_import_slot``'s cases, the
    commonest inlined); else the generic ``_binary``, which records the same row. Leaves times constants are
    the many-leaf graph's op (W6), results times constants the chain's (W1).

    With ``generic`` (the public function: ``add``, ``mul``) the result is the Tensor operator itself
    (``Tensor.__mul__``, one call frame fewer per ``x * y``): an operand that is not a Tensor goes to
    ``generic``, except a Python float with ``scalar`` ("add" or "mul"): ``x + c`` and ``x * c`` are affine rows
    (``_affine_fast``, as ``add`` and ``mul`` make them)."""
    np_fn = op.np_fn
    base_code = op.code
    xrg_code = base_code | K.XRG
    YRG = K.YRG
    affine = _fast_affine(scale_only=scalar == "mul") if scalar is not None else None
    add_form = scalar == "add"

    def fast(x, y):
        if type(y) is not Tensor:
            if generic is None:  # (a plain fast path: its callers pass tensors)
                return _binary(op, x, y)
            if affine is not None and type(y) is float:
                if add_form:
                    return affine(x, 1.0, y, (1.0, y, "add"))
                return affine(x, y, -0.0, (y, -0.0, "mul"))  # (b = -0.0: a multiplication, see _affine_np)
            return generic(x, y)
        if x._tangents is None and y._tangents is None:
            xd = x._data
            yd = y._data
            xtape = x._tape
            ytape = y._tape
            tape = xtape
            if tape is None:  # a leaf or constant: the current tape of its dtype, if either requires grad
                tape = _tape_state.current.get(xd.dtype) if x._rg or y._rg else None
            n = xd.size
            if (
                tape is not None
                and tape.is_current == _get_ident()  # grad mode on, and this thread's current tape
                and xd.shape == yd.shape
                and xd.dtype is yd.dtype
                and n < PARALLEL_MIN
                and tape.used + 3 * n + 3 <= tape.capacity  # (room for the result and two imports)
            ):
                off = tape.used
                tape.used = off + (n or 1)
                values = tape.values
                row = tape.nrows
                if xtape is tape:
                    xoff = x._off
                    xrow = x._row
                    code = xrg_code
                elif (
                    xtape is None
                    and x._vc is None
                    and xd.ndim == 1
                    and id(x) not in tape.import_at
                    and x._dev is None
                    and x._grad_ready_hooks is None
                    and not x._stale_view
                ):
                    # the first import of a plain leaf or constant on this tape (Tape.import_new's common case,
                    # inlined: a many-leaf graph imports a leaf and a constant per op, W6)
                    xoff = tape.used
                    tape.used = xoff + (n or 1)
                    values[xoff : xoff + n] = xd
                    xrow = row
                    if x._rg:
                        code = xrg_code
                        if not (x._vflags & 2 and x._op is None):  # (not a no_grad view)
                            tape.ext_rows.append(row)  # (tape.externs.append((row, xoff, x)))
                            tape.ext_offs.append(xoff)
                            tape.ext_refs.append(x)
                    else:
                        code = base_code
                    key = id(x)
                    tape.import_at[key] = xoff | row << _ROW_SHIFT
                    tape.import_refs[key] = x
                    copies = x._imports
                    if copies is None:
                        x._imports = [(tape.ref, xoff)]
                    elif len(copies) == 1 and copies[0][0]() is None:
                        copies[0] = (tape.ref, xoff)
                    else:
                        tape.add_copy(copies, xoff)
                else:
                    slot = _import_slot(tape, x)
                    if slot is None:
                        tape.used = off  # (nothing allocated since)
                        return _binary(op, x, y)
                    xoff, xrow = slot
                    code = xrg_code if x._rg else base_code
                if ytape is tape:
                    yoff = y._off
                    yrow = y._row
                    code |= YRG
                elif ytape is None:
                    key = id(y)
                    packed = tape.import_at.get(key)
                    if packed is not None:
                        # imported already (a constant read by every step of a chain, W1): its copy, if the
                        # tensor did not change since (``_import_slot``'s test, inlined)
                        vc = y._vc
                        version = 0 if vc is None else vc.version
                        if packed >> _VERSION_SHIFT != version or tape.import_refs[key] is not y:
                            return _binary(op, x, y)  # (the result's slot stays unused: a copy of x may follow it)
                        yoff = packed & _FIELD
                        yrow = (packed >> _ROW_SHIFT) & _FIELD
                    elif (
                        y._vc is None
                        and yd.ndim == 1
                        and y._dev is None
                        and y._grad_ready_hooks is None
                        and not y._stale_view
                    ):
                        yoff = tape.used  # (the first import, as x's above)
                        tape.used = yoff + (n or 1)
                        values[yoff : yoff + n] = yd
                        yrow = row
                        if y._rg and not (y._vflags & 2 and y._op is None):
                            tape.ext_rows.append(row)  # (tape.externs.append((row, yoff, y)))
                            tape.ext_offs.append(yoff)
                            tape.ext_refs.append(y)
                        tape.import_at[key] = yoff | row << _ROW_SHIFT
                        tape.import_refs[key] = y
                        copies = y._imports
                        if copies is None:
                            y._imports = [(tape.ref, yoff)]
                        elif len(copies) == 1 and copies[0][0]() is None:
                            copies[0] = (tape.ref, yoff)
                        else:
                            tape.add_copy(copies, yoff)
                    else:
                        slot = _import_slot(tape, y)
                        if slot is None:
                            return _binary(op, x, y)
                        yoff, yrow = slot
                    if y._rg:
                        code |= YRG
                else:  # (a tensor of another tape: the generic path imports it)
                    return _binary(op, x, y)
                view = values[off : off + n]
                if xd.ndim != 1:
                    view = view.reshape(xd.shape)
                np_fn(xd, yd, view)
                if row >= tape.row_cap:
                    tape.grow()
                tape.pack_ints(tape.rows, row * 80, code, off, xoff, yoff, n, 0, xrow, yrow)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = op
                t._in0 = x
                t._in1 = y
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _binary(op, x, y)

    return fast


def _import_slot(tape, t):
    """``(offset, row)`` of ``t`` (not recorded on ``tape``) on ``tape``: its arena copy, made now for a CPU leaf
    or constant (``Tape.import_tensor``, inlined); None where the generic path must decide (a tensor of
    another tape or device, a changed or stale copy)."""
    key = id(t)
    vc = t._vc
    version = 0 if vc is None else vc.version
    packed = tape.import_at.get(key)
    if packed is None:
        if t._tape is not None or t._dev is not None:
            return None
        return tape.import_new(t, t._rg, key, version)
    if packed >> _VERSION_SHIFT != version or tape.import_refs[key] is not t:
        return None
    return packed & _FIELD, (packed >> _ROW_SHIFT) & _FIELD


def _binary_np(op, xd, yd, out):
    """``op.np_fn(xd, yd, out=out)`` for same-shape operands, one chunk per core."""
    xf = xd.reshape(-1)
    yf = yd.reshape(-1)
    of = out.reshape(-1)
    parallel.run(of.size, lambda lo, hi: op.np_fn(xf[lo:hi], yf[lo:hi], out=of[lo:hi]))
    return out


def _dual_binary(op, x, y):
    """Forward mode through an elementwise binary op: ``tx * dx + ty * dy``; None if no operand has a visible
    tangent."""
    xd = x._data
    yd = y._data
    if xd.shape == yd.shape and xd.dtype is yd.dtype and x._dev is None and y._dev is None:
        level = _forward.compiled_level(x, y)
        if level is not None:
            return _compiled_jvp_binary(op, x, y, level)
    levels = _forward.visible_levels_of(x, y)
    if not levels:
        return None
    if x._dev != y._dev:  # a 0-d CPU operand beside a CUDA one (torch's CPU scalars): moved first, as binary() does
        cuda_ops = _cuda_ops()
        dev = cuda_ops.common_device(x, y)
        x, y = cuda_ops.on_device(x, dev), cuda_ops.on_device(y, dev)
        xd, yd = x._data, y._data
    if xd.shape != yd.shape:
        # broadcast first, outside the rule: the expanded operands keep their tangents for the reverse rules
        shape = _broadcast_shape(xd.shape, yd.shape)
        if xd.shape != shape:
            x = _ops.expand(x, shape)
        if yd.shape != shape:
            y = _ops.expand(y, shape)
    rule = lambda tan, base: op.jvp(tan(x), tan(y), x, y, base)  # noqa: E731
    # (the operands have the result's shape here, so the rule's partials broadcast against batched tangents)
    return _forward.apply_dual(lambda: _binary(op, x, y, False), rule, (x, y), levels, rule)


def _compiled_jvp_binary(op, x, y, level):
    """Same-shape, same-dtype operands: the primal by numpy, the tangent by the compiled partials."""
    xd = x._data
    yd = y._data
    n = xd.size
    if n >= PARALLEL_MIN:
        od = _binary_np(op, xd, yd, np.empty(xd.shape, xd.dtype))
    else:
        od = np.asarray(op.np_fn(xd, yd))
    dt = od.dtype
    tx = _forward.tangent_of(x, level)
    ty = _forward.tangent_of(y, level)
    of = od if od.ndim == 1 else od.reshape(-1)
    xf = _flat(xd, dt)
    yf = _flat(yd, dt)
    txf = _flat(tx._data, dt) if tx is not None else of
    tyf = _flat(ty._data, dt) if ty is not None else of
    res = np.empty(od.shape, dt)
    rf = res if res.ndim == 1 else res.reshape(-1)
    code, has_tx, has_ty = op.code, tx is not None, ty is not None
    if n >= PARALLEL_MIN:
        parallel.run(
            n,
            lambda lo, hi: _cpu.jvp_binary(
                code, xf[lo:hi], yf[lo:hi], of[lo:hi], txf[lo:hi], tyf[lo:hi], rf[lo:hi], has_tx, has_ty
            ),
        )
    else:
        _cpu.jvp_binary(code, xf, yf, of, txf, tyf, rf, has_tx, has_ty)
    return _dual_result(od, level, res)


_SUB_TWO_BOOLS = (
    "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator "
    "instead."
)
_SUB_BOOL = (
    "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use "
    "the `~` or `logical_not()` operator instead."
)
