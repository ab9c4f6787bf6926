"""torch.special's functions that ``ad`` had no op for (``ad/special.py`` is the public namespace): the Bessel
functions and their relatives, the normal distribution's ``ndtr`` / ``ndtri`` / ``log_ndtr``, ``erfcx``,
``entr``, ``xlog1py``, ``zeta``, the regularized incomplete gamma functions (``igamma``, ``igammac``), the
orthogonal polynomials, and torch's top-level ``angle``.

Three kinds of function live here, each following a pattern the code already has:

- Python-swept primitives (``ad.autograd.Function`` subclasses named as torch's nodes, ``I0Backward0``), as
  lgamma/digamma in ``ad/reductions.py``: values from scipy.special, derivatives written with ``ad`` ops (which
  call these same Functions), so ``create_graph=True``, second order and nested forward levels work. Each saves
  what torch's node saves (``i0`` and ``entr`` their input: ``reductions._special``; ``i0e``, ``i1``, ``i1e``,
  ``log_ndtr``, ``erfcx`` also their result, ``ndtri`` only its result: ``_unary_special``, whose rules read the
  result where torch's do), so a write into a saved tensor raises exactly where torch's does. The binary ones
  (``_binary_special``) broadcast their operands first (a differentiable ``expand``), so the Function sees one
  shape.
- Composites (``ndtr``, ``angle``): no rules of their own.
- Functions torch gives no derivative at all (the Bessel functions, airy_ai, the polynomials): their result is a
  constant (``requires_grad=False`` whatever the input, no tangent), as torch's.

Where torch's derivatives.yaml says ``not_implemented`` for one input (``zeta``'s and ``igamma``'s first), that
input goes through ``_gate``: a Function whose backward raises torch's NotImplementedError, so the error comes
exactly when that input's gradient is needed (``grad(z, other)`` alone computes, as torch's), never a silent
zero. In forward mode a tangent on that input raises too; the tangent of ``other`` is computed (torch 2.13
raises for any tangent there: it lacks the formula, which is the reverse one).

On CUDA tensors the Functions take the documented host round trip (``autograd.function.host_round_trip``); the
constant ones compute on a host copy and return a device tensor.
"""

import inspect
import math

import numpy as np
import scipy.special as sc

from . import forward as _forward
from . import ops
from .autograd.function import Function
from .cuda import host_copy, index_tensor
from .forward import _fw
from .grad_mode import _grad_state
from .ops.out import write_result
from .ops.pointwise_ops import _operands
from .ops.stacking import broadcast_tensors
from .reductions import _check_tensor, _special, lgamma
from .saved import guard
from .tensor import Tensor, wrap_array

__all__ = ["angle", "i0", "igamma", "igammac"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _float_data(d):
    """``d`` in the dtype the function computes in: float stays, anything else is float64 (numpy's rule)."""
    return d if d.dtype.kind == "f" else d.astype(np.float64)


# --- unary primitives with a derivative ---------------------------------------------------------------------


def _unary_special(grad_fn_name, forward_np, derivative, saves_input=True):
    """A Function ``f(x)`` computed by ``forward_np(array)`` whose derivative is ``derivative(x, out)`` (ad ops on
    the input and the result). It saves what torch's node saves (its result always, its input unless
    ``saves_input`` is False: ndtri's rule reads only the result), so a write into either raises where torch's
    does, and the rule reads the values torch's reads."""

    class Unary(Function):
        _grad_fn_name = grad_fn_name
        _backward_carries_tangents = True  # (backward reads saved values, dual in forward over reverse)

        @staticmethod
        def forward(ctx, x):
            d = _float_data(x._data)
            with np.errstate(all="ignore"):
                out = wrap_array(np.asarray(forward_np(d), dtype=d.dtype))
            ctx.save_for_backward(x if saves_input else None, out)
            return out

        @staticmethod
        def backward(ctx, g):
            x, out = ctx.saved_tensors
            return g * derivative(x, out)

        @staticmethod
        def jvp(ctx, t):
            x, out = ctx.saved_tensors
            return t * derivative(x, out)

    Unary.__name__ = Unary.__qualname__ = grad_fn_name[: -len("Backward0")]
    return Unary


def _tiny_safe(x):
    """torch's ``i1_backward`` / ``i1e_backward`` guard: ``(|x| > eps, x with the tiny ones replaced by eps)``."""
    eps = float(np.finfo(x.dtype).eps)
    not_tiny = ops.abs(x) > eps
    return not_tiny, ops.where(not_tiny, x, eps)


def _i1_derivative(x, out):
    not_tiny, s = _tiny_safe(x)
    return ops.where(not_tiny, i0(s) - out / s, 0.5)


def _i1e_derivative(x, out):
    not_tiny, s = _tiny_safe(x)
    return ops.where(not_tiny, i0e(s) - out * (ops.sign(s) + 1.0 / s), 0.5)


# torch's rules (derivatives.yaml), reading the result where torch's do
_I0 = _special("I0Backward0", lambda n, d: sc.i0(d), lambda n, x: i1(x))  # (torch saves only the input)
_I0e = _unary_special("SpecialI0EBackward0", sc.i0e, lambda x, out: i1e(x) - ops.sign(x) * out)
_I1 = _unary_special("SpecialI1Backward0", sc.i1, _i1_derivative)
_I1e = _unary_special("SpecialI1EBackward0", sc.i1e, _i1e_derivative)
_Ndtri = _unary_special(
    "SpecialNdtriBackward0", sc.ndtri, lambda x, out: _SQRT_2PI * ops.exp(out * out / 2), saves_input=False
)
_LogNdtr = _unary_special(
    "SpecialLogNdtrBackward0", sc.log_ndtr, lambda x, out: ops.exp(-(out + x * x / 2)) / _SQRT_2PI
)
_Erfcx = _unary_special("SpecialErfcxBackward0", sc.erfcx, lambda x, out: 2.0 * x * out - 2.0 / math.sqrt(math.pi))
_Entr = _special("SpecialEntrBackward0", lambda n, d: sc.entr(d), lambda n, x: -(ops.log(x) + 1.0))


def i0(input, *, out=None):  # noqa: A002 - torch's name
    """The modified Bessel function of the first kind of order 0; its derivative is ``i1``.

    Example: ``ad.i0(ad.tensor([0.0, 1.0]))`` is ``[1.0, 1.2661]``."""
    return write_result("i0", _I0.apply(_check_tensor(input, "i0")), out)


def i0e(input, *, out=None):  # noqa: A002
    """``exp(-|x|) i0(x)``; its derivative is ``i1e(x) - sgn(x) i0e(x)``."""
    return write_result("special_i0e", _I0e.apply(_check_tensor(input, "special_i0e")), out)


def i1(input, *, out=None):  # noqa: A002
    """The modified Bessel function of the first kind of order 1; derivative ``i0(x) - i1(x) / x`` (0.5 at 0)."""
    return write_result("special_i1", _I1.apply(_check_tensor(input, "special_i1")), out)


def i1e(input, *, out=None):  # noqa: A002
    """``exp(-|x|) i1(x)``; derivative ``i0e(x) - i1e(x) (sgn(x) + 1 / x)`` (0.5 at 0)."""
    return write_result("special_i1e", _I1e.apply(_check_tensor(input, "special_i1e")), out)


def ndtri(input, *, out=None):  # noqa: A002
    """The inverse of ``ndtr`` on (0, 1) (-inf at 0, inf at 1, NaN outside)."""
    return write_result("special_ndtri", _Ndtri.apply(_check_tensor(input, "special_ndtri")), out)


def log_ndtr(input, *, out=None):  # noqa: A002
    """``log(ndtr(x))``, accurate far into the left tail."""
    return write_result("special_log_ndtr", _LogNdtr.apply(_check_tensor(input, "special_log_ndtr")), out)


def erfcx(input, *, out=None):  # noqa: A002
    """The scaled complementary error function ``exp(x^2) erfc(x)``; derivative ``2 x erfcx(x) - 2 / sqrt(pi)``."""
    return write_result("special_erfcx", _Erfcx.apply(_check_tensor(input, "special_erfcx")), out)


def entr(input, *, out=None):  # noqa: A002
    """``-x log(x)`` for ``x > 0``, 0 at 0, -inf below; derivative ``-(log(x) + 1)``."""
    return write_result("special_entr", _Entr.apply(_check_tensor(input, "special_entr")), out)


def ndtr(input, *, out=None):  # noqa: A002
    """The standard normal CDF, ``erfc(-x / sqrt(2)) / 2`` (a composite: its gradient is the normal density;
    erfc keeps the left tail that torch's ``(1 + erf(x / sqrt(2))) / 2`` rounds to 0)."""
    x = _check_tensor(input, "special_ndtr")
    if x.dtype.kind != "f":
        x = x.to(np.float64)
    return write_result("special_ndtr", ops.erfc(x * -math.sqrt(0.5)) * 0.5, out)


# --- binary primitives ----------------------------------------------------------------------------------------


def _gate(name, forward_name):
    """The Function an input passes through when torch has no derivative for it (``name`` as torch's message
    says it): identity forward; backward raises, and so does a tangent on it."""

    class Gate(Function):
        _grad_fn_name = "NotImplemented"

        @staticmethod
        def forward(ctx, x):
            return wrap_array(x._data.copy())

        @staticmethod
        def backward(ctx, g):
            raise NotImplementedError(f"the derivative for '{name}' is not implemented.")

        @staticmethod
        def jvp(ctx, t):
            raise NotImplementedError(_no_forward(forward_name))

    Gate.__name__ = Gate.__qualname__ = f"NotImplemented_{forward_name}"
    return Gate


def _no_forward(forward_name):
    return (
        f"Trying to use forward AD with {forward_name} that does not support it because it has not been "
        "implemented yet."
    )


def _binary_special(grad_fn_name, forward_np, vjp_other, vjp_input=None, gate=None):
    """A Function ``f(x, y)`` of two tensors of one shape and float dtype, computed by ``forward_np``.
    ``vjp_input(g, x, y)`` / ``vjp_other(g, x, y)``: the cotangent of each input, linear in ``g`` (so the same
    function gives the tangent). Without ``vjp_input`` the public function puts ``x`` behind ``gate``."""

    class Binary(Function):
        _grad_fn_name = grad_fn_name
        _backward_carries_tangents = True  # (backward reads the saved inputs, dual in forward over reverse)

        @staticmethod
        def forward(ctx, x, y, ungated=None):
            # ungated: x before the gate (torch's node saves it: a write into it raises when other's gradient runs)
            ctx.save_for_backward(x if ungated is None else ungated, y)
            with np.errstate(all="ignore"):
                return wrap_array(np.asarray(forward_np(x._data, y._data), dtype=x._data.dtype))

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            gx = gy = None
            if ctx.needs_input_grad[0]:
                # without a rule, x came through the gate, whose backward raises if x's gradient is needed
                gx = vjp_input(g, x, y) if vjp_input is not None else ops.zeros_like(g)
            if ctx.needs_input_grad[1]:
                gy = vjp_other(g, x, y)
            return (gx, gy) if len(ctx.needs_input_grad) == 2 else (gx, gy, None)

        @staticmethod
        def jvp(ctx, tx, ty, _=None):
            x, y = ctx.saved_tensors
            t = vjp_other(ty, x, y)  # (tx: zeros where x came through the gate, which raised for a real tangent)
            return t if vjp_input is None else t + vjp_input(tx, x, y)

    Binary.__name__ = Binary.__qualname__ = grad_fn_name[: -len("Backward0")]
    Binary.gate = gate
    return Binary


def _binary_call(cls, input, other, name, scalars=True):
    """``cls.apply`` on ``input`` and ``other``: Python numbers as tensors (torch's scalar rule), one float dtype
    (numpy's promotion; integers compute in float64), one broadcast shape; ``input`` through the gate if any."""
    x, y = _operands(input, other, name, scalars)
    dt = np.result_type(x._data.dtype, y._data.dtype)
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    x = x if x._data.dtype == dt else x.to(dt)
    y = y if y._data.dtype == dt else y.to(dt)
    if x.shape != y.shape:
        x, y = broadcast_tensors(x, y)
    if cls.gate is not None:
        if _fw.levels and _forward.visible_levels_of(x):
            raise NotImplementedError(_no_forward(cls.gate.__name__.removeprefix("NotImplemented_")))
        if _grad_state.enabled and x._rg:
            return cls.apply(cls.gate.apply(x), y, x)
    return cls.apply(x, y)


def _xlog1py_input(g, x, y):
    # torch: xlog1py(grad, other), 0 where self == 0 and other <= -1 (where log1p(other) is -inf or NaN)
    return ops.where((x == 0) & (y <= -1), 0.0, xlog1py(g, y))


def _igamma_other(g, x, y):
    return g * ops.exp((x - 1) * ops.log(y) - y - lgamma(x))


_Xlog1py = _binary_special(
    "SpecialXlog1PyBackward0", sc.xlog1py, lambda g, x, y: g * x / (y + 1), vjp_input=_xlog1py_input
)
_Zeta = _binary_special(
    "SpecialZetaBackward0",
    sc.zeta,
    lambda g, x, y: g * -x * zeta(x + 1.0, y),
    gate=_gate("zeta", "special_zeta"),
)
_Igamma = _binary_special("IgammaBackward0", sc.gammainc, _igamma_other, gate=_gate("igamma: input", "igamma"))
_Igammac = _binary_special(
    "IgammacBackward0", sc.gammaincc, lambda g, x, y: -_igamma_other(g, x, y), gate=_gate("igammac: input", "igammac")
)


def xlog1py(input, other, *, out=None):  # noqa: A002
    """``input * log1p(other)``, 0 where ``input`` is 0 (unless ``other`` is NaN); either may be a number.

    Example: ``ad.special.xlog1py(ad.tensor([0.0, 2.0]), ad.tensor([-1.0, 1.0]))`` is ``[0, 2 log 2]``."""
    return write_result("special_xlog1py", _binary_call(_Xlog1py, input, other, "special_xlog1py"), out)


def zeta(input, other, *, out=None):  # noqa: A002
    """The Hurwitz zeta function ``sum_k (k + other) ** -input``; differentiable in ``other`` only (a gradient
    or tangent for ``input`` raises NotImplementedError, as torch)."""
    return write_result("special_zeta", _binary_call(_Zeta, input, other, "special_zeta"), out)


def igamma(input, other, *, out=None):  # noqa: A002
    """The regularized lower incomplete gamma function ``P(input, other)`` (tensors only); differentiable in
    ``other`` only (a gradient for ``input`` raises NotImplementedError, as torch)."""
    return write_result("igamma", _binary_call(_Igamma, input, other, "igamma", scalars=False), out)


def igammac(input, other, *, out=None):  # noqa: A002
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P(input, other)``."""
    return write_result("igammac", _binary_call(_Igammac, input, other, "igammac", scalars=False), out)


# --- composites -----------------------------------------------------------------------------------------------


def angle(input, *, out=None):  # noqa: A002
    """The argument of a real number: pi where ``input < 0``, 0 where it is >= 0 (-0.0 included), NaN kept;
    the gradient is zero, as torch's for real input. Integers give float64 (numpy's rule)."""
    x = _check_tensor(input, "angle")
    d = _float_data(host_copy(x._data))
    values = np.where(d < 0, np.pi, 0.0).astype(d.dtype)
    values[np.isnan(d)] = np.nan
    # a float input stays connected, at a zero gradient and tangent (torch's AngleBackward0 for real input)
    if x.dtype.kind != "f":
        return write_result("angle", index_tensor(values, x), out)
    # torch's node saves the input: a write into it before backward raises
    result = guard(ops.overwritten(x, index_tensor(values, x)), "AngleBackward0", x)
    return write_result("angle", result, out)


# --- no derivative in torch: constant results -----------------------------------------------------------------


def _constant(name, torch_name, np_fn, doc, arg="input"):
    """A function with torch's signature ``name(<arg>, *, out=None)`` (torch names the tensor ``x`` for some)."""

    def fn(*args, out=None, **kwargs):
        x = _one_argument(name, arg, args, kwargs)
        x = _check_tensor(x, torch_name) if arg == "input" else _check_x(x, torch_name)
        d = _float_data(host_copy(x._data))
        with np.errstate(all="ignore"):
            result = index_tensor(np.asarray(np_fn(d), dtype=d.dtype), x)
        return write_result(torch_name, result, out)

    fn.__name__ = fn.__qualname__ = name
    fn.__signature__ = inspect.Signature(
        [
            inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None),
        ]
    )
    fn.__doc__ = f"{doc} Not differentiable (torch gives no gradient: the result does not require grad)."
    return fn


def _one_argument(name, arg, args, kwargs):
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args and set(kwargs) == {arg}:
        return kwargs[arg]
    raise TypeError(f"{name}() takes one argument, '{arg}' (and the keyword 'out'): got {args!r}, {kwargs!r}")


def _check_x(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'x' (position 1) must be Tensor, not {type(x).__name__}")
    return x


def _spherical_j0(d):
    with np.errstate(all="ignore"):
        return np.where(np.isinf(d), 0.0, np.where(d == 0, 1.0, np.sin(d) / d))


airy_ai = _constant("airy_ai", "special_airy_ai", lambda d: sc.airy(d)[0], "The Airy function Ai.", arg="x")
bessel_j0 = _constant("bessel_j0", "special_bessel_j0", sc.j0, "The Bessel function of the first kind of order 0.")
bessel_j1 = _constant("bessel_j1", "special_bessel_j1", sc.j1, "The Bessel function of the first kind of order 1.")
bessel_y0 = _constant("bessel_y0", "special_bessel_y0", sc.y0, "The Bessel function of the second kind of order 0.")
bessel_y1 = _constant("bessel_y1", "special_bessel_y1", sc.y1, "The Bessel function of the second kind of order 1.")
modified_bessel_i0 = _constant(
    "modified_bessel_i0", "special_modified_bessel_i0", sc.i0, "Modified Bessel, first kind, order 0."
)
modified_bessel_i1 = _constant(
    "modified_bessel_i1", "special_modified_bessel_i1", sc.i1, "Modified Bessel, first kind, order 1."
)
modified_bessel_k0 = _constant(
    "modified_bessel_k0", "special_modified_bessel_k0", sc.k0, "Modified Bessel, second kind, order 0."
)
modified_bessel_k1 = _constant(
    "modified_bessel_k1", "special_modified_bessel_k1", sc.k1, "Modified Bessel, second kind, order 1."
)
scaled_modified_bessel_k0 = _constant(
    "scaled_modified_bessel_k0", "special_scaled_modified_bessel_k0", sc.k0e, "``exp(x) k0(x)``.", arg="x"
)
scaled_modified_bessel_k1 = _constant(
    "scaled_modified_bessel_k1", "special_scaled_modified_bessel_k1", sc.k1e, "``exp(x) k1(x)``.", arg="x"
)
spherical_bessel_j0 = _constant(
    "spherical_bessel_j0",
    "special_spherical_bessel_j0",
    _spherical_j0,
    "The spherical Bessel function ``sin(x) / x``.",
    arg="x",
)


# --- orthogonal polynomials (no derivative in torch) ------------------------------------------------------------
#
# Each is torch's scalar algorithm (aten/src/ATen/native/Math.h) run on whole arrays: n < 0 gives 0; the end
# points of the interval have closed forms; for |y| < 1 and n above a threshold the trigonometric form; else the
# three-term recurrence p, q -> q, r, run for n - 1 steps on the elements that need it. ``n`` is truncated to an
# integer after conversion to the result dtype (torch's static_cast; NaN and inf count as negative).


def _parity(n, even, odd):
    return np.where(n % 2 == 0, even, odd)


def _chebyshev(kind, shifted):
    threshold = {"t": 6, "u": 8, "v": 8, "w": 8}[kind] if not shifted else {"t": 6, "u": 6, "v": 6, "w": 4}[kind]

    def values(x, n, nf):
        one = x.dtype.type(1.0)
        y = x + x - one if shifted else x
        if shifted:
            end, pos = (x == 1) | (x == 0), x == 1
        else:
            end, pos = np.abs(y) == 1, y > 0
        if kind == "t":
            at_end = np.where(pos, 1.0, _parity(n, 1.0, -1.0))
            q0 = y
        elif kind == "u":
            at_end = np.where(pos, nf + 1, _parity(n, nf + 1, -(nf + 1)))
            q0 = y + y
        elif kind == "v":
            at_end = np.where(pos, 1.0, _parity(n, nf + nf + 1, -(nf + nf + 1)))
            q0 = y + y - one
        else:
            at_end = np.where(pos, nf + nf + 1, _parity(n, 1.0, -1.0))
            q0 = y + y + one
        with np.errstate(all="ignore"):
            a = np.arccos(y)
            if kind == "t":
                trig = np.cos(nf * a)
            elif kind == "u":
                s = np.sin(a)
                trig = np.where(s != 0, np.sin((nf + 1) * a) / s, (nf + 1) * np.cos((nf + 1) * a) / y)
            elif kind == "v":
                trig = np.where(
                    np.sin(a / 2) != 1, np.cos((nf + 0.5) * a) / np.cos(a / 2), _parity(n, nf + nf + 1, -(nf + nf + 1))
                )
            else:
                fallback = _parity(n, 1.0, -1.0) if shifted else np.where(x > 0, nf + nf + 1, _parity(n, 1.0, -1.0))
                trig = np.where(np.cos(a / 2) != 1, np.sin((nf + 0.5) * a) / np.sin(a / 2), fallback)
        use_trig = (n > threshold) & (np.abs(y) < 1)
        return end, at_end, use_trig, trig, q0, lambda k, p, q: (y + y) * q - p

    return values


def _hermite(physicists):
    def values(x, n, nf):
        limit = 128 if x.dtype == np.float32 else 512
        end = n > limit
        at_end = np.full(x.shape, np.nan)
        if physicists:
            return end, at_end, None, None, x + x, lambda k, p, q: (x + x) * q - (2 * k) * p
        return end, at_end, None, None, x, lambda k, p, q: x * q - k * p

    return values


def _laguerre(x, n, nf):
    one = x.dtype.type(1.0)
    return x == 0, np.ones(x.shape), None, None, one - x, lambda k, p, q: (((k + k) + (one - x)) * q - k * p) / (k + 1)


def _legendre(x, n, nf):
    end = np.abs(x) == 1
    at_end = np.where(x > 0, 1.0, _parity(n, 1.0, -1.0))
    return end, at_end, None, None, x, lambda k, p, q: ((k + k + 1) * x * q - k * p) / (k + 1)


def _polynomial_values(rule, x, n_values):
    """The polynomial of degree ``n_values`` (float, truncated) at ``x`` (float arrays of one shape)."""
    dt = x.dtype
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(n_values)
        n = np.trunc(np.where(bad, -1.0, np.clip(n_values, -1.0, 2.0**62))).astype(np.int64)
    nf = n.astype(dt)
    end, at_end, use_trig, trig, q0, step = rule(x, n, nf)
    out = np.ones(x.shape, dt)
    rec = (n >= 2) & ~end
    if use_trig is not None:
        rec &= ~use_trig
    if rec.any():
        idx = np.flatnonzero(rec)
        steps = n.reshape(-1)[idx] - 1
        xs = x.reshape(-1)[idx]
        p = np.ones(idx.size, dt)
        q = np.asarray(q0, dt).reshape(-1)[idx]
        sub_step = rule(xs, n.reshape(-1)[idx], nf.reshape(-1)[idx])[5]  # (the step reads x: the selected ones)
        j = 0
        with np.errstate(all="ignore"):
            while True:
                j += 1
                act = (steps >= j) & ~np.isnan(q)
                if not act.any():
                    break
                r = np.asarray(sub_step(j, p, q), dt)
                p = np.where(act, q, p)
                q = np.where(act, r, q)
        out.reshape(-1)[idx] = q
    with np.errstate(invalid="ignore"):
        out = np.where(n == 1, np.asarray(q0, dt), out)
        if use_trig is not None:
            out = np.where(use_trig, trig, out)
        out = np.where(end & (n >= 0), at_end, out)
        out = np.where(n < 0, 0.0, out)
    return np.asarray(out, dt)


_hermite_rules = {True: _hermite(True), False: _hermite(False)}


def _polynomial(name, rule, doc):
    torch_name = f"special_{name}"

    def fn(x, n, *, out=None):  # torch's names (``x``, not ``input``)
        if not isinstance(x, Tensor) and not isinstance(n, Tensor):
            raise TypeError(f"{name}(): argument 'x' (position 1) must be Tensor, not {type(x).__name__}")
        given = x
        x, k = _operands(x, n, torch_name)
        like = x if isinstance(given, Tensor) else k
        xd, kd = host_copy(x._data), host_copy(k._data)
        dt = np.result_type(xd.dtype, kd.dtype)
        if dt.kind != "f":
            dt = np.dtype(np.float64)
        xd, kd = np.broadcast_arrays(xd.astype(dt), kd.astype(dt))
        values = _polynomial_values(rule, np.array(xd), np.array(kd))  # (copies: ascontiguousarray makes 0-d 1-d)
        return write_result(torch_name, index_tensor(values, like), out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (
        f"{doc} of degree ``n`` (a tensor or a number, truncated to an integer; 0 for n < 0) at ``input``, "
        "by torch's algorithm. Not differentiable (torch gives no gradient: the result does not require grad)."
    )
    return fn


chebyshev_polynomial_t = _polynomial("chebyshev_polynomial_t", _chebyshev("t", False), "The Chebyshev polynomial T")
chebyshev_polynomial_u = _polynomial("chebyshev_polynomial_u", _chebyshev("u", False), "The Chebyshev polynomial U")
chebyshev_polynomial_v = _polynomial("chebyshev_polynomial_v", _chebyshev("v", False), "The Chebyshev polynomial V")
chebyshev_polynomial_w = _polynomial("chebyshev_polynomial_w", _chebyshev("w", False), "The Chebyshev polynomial W")
shifted_chebyshev_polynomial_t = _polynomial(
    "shifted_chebyshev_polynomial_t", _chebyshev("t", True), "The shifted Chebyshev polynomial T*(x) = T(2x - 1)"
)
shifted_chebyshev_polynomial_u = _polynomial(
    "shifted_chebyshev_polynomial_u", _chebyshev("u", True), "The shifted Chebyshev polynomial U*(x) = U(2x - 1)"
)
shifted_chebyshev_polynomial_v = _polynomial(
    "shifted_chebyshev_polynomial_v", _chebyshev("v", True), "The shifted Chebyshev polynomial V*(x) = V(2x - 1)"
)
shifted_chebyshev_polynomial_w = _polynomial(
    "shifted_chebyshev_polynomial_w", _chebyshev("w", True), "The shifted Chebyshev polynomial W*(x) = W(2x - 1)"
)
hermite_polynomial_h = _polynomial("hermite_polynomial_h", _hermite_rules[True], "The physicists' Hermite polynomial H")
hermite_polynomial_he = _polynomial(
    "hermite_polynomial_he", _hermite_rules[False], "The probabilists' Hermite polynomial He"
)
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l", _laguerre, "The Laguerre polynomial L")
legendre_polynomial_p = _polynomial("legendre_polynomial_p", _legendre, "The Legendre polynomial P")


# --- Tensor methods and in-place variants ---------------------------------------------------------------------


def bind():
    """``Tensor.i0 / i0_ / igamma / igamma_ / igammac / igammac_ / angle``."""
    from .elementwise_methods import inplace

    T = Tensor
    T.i0 = lambda self: i0(self)
    T.i0_ = inplace("i0", i0)
    T.igamma = lambda self, other: igamma(self, other)
    T.igamma_ = inplace("igamma", igamma)
    T.igammac = lambda self, other: igammac(self, other)
    T.igammac_ = inplace("igammac", igammac)
    T.angle = lambda self: angle(self)
