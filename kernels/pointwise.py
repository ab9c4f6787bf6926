"""Per-element local partials of the elementwise ops of ``opcodes.py``: each derivative formula written once.

Every formula is a plain function ``d_<op>(x, out, a0, a1)`` (unary: input, output, the row's two float
attributes) or a pair ``dx_<op>(x, y, out)``, ``dy_<op>(x, y, out)`` (binary), made of arithmetic and calls
to the bare names imported or defined below (``cos``, ``exp``, ``sqrt``, ``step``, ``sign``, ...). The same
formula serves four callers, as HIPS autograd and JAX write each rule once:

- the compiled kernels: ``cpu.py`` compiles ``unary_partial`` / ``binary_partial_*``, which dispatch on the
  opcode to these formulas (``register_jitable`` lets numba inline them; CUDA device code can call them too);
- scalars in Python (the formulas are ordinary Python);
- ``ad`` tensors: ``ad/ops/elementwise_table.py`` rebinds the bare names to ``ad`` ops (``on_tensors``) and calls
  the formula's code on tensors, which records it, so the differentiable rules (``create_graph=True``,
  forward mode through a recorded graph, second order) are these same formulas;
- numpy arrays, for the big rows of the activations (``on_arrays``, ``ad/ops/activation_ops.py``): numpy's
  vectorized exp and tanh where the compiled loops call libm per element.

So a formula may only use: arithmetic, comparisons combined with ``&`` / ``|`` (bools for scalars, bool
tensors for ``ad``), the bare names below, ``math.<fn>`` of the float attributes ``a0`` / ``a1`` only
(``math`` is never rebound), and Python conditionals on ``a0`` / ``a1`` only. ``step(cond, like)`` is 1.0
where ``cond`` holds, else 0.0 (a constant: comparisons have no derivative); ``select(cond, a, b)`` is a
branch (``where`` for tensors: differentiated along the branch taken).

Conventions follow torch: relu'(0) = 0, relu'(NaN) = 1, abs'(0) = abs'(NaN) = 0, d/dx x**0 = 0, maximum/minimum
ties split 0.5/0.5; the selecting ops (``SELECTING_CODES``) apply their partial with ``times``, not ``*``.
The forward value of each opcode (for the compiled forward kernels) is ``pointwise_values.py``'s.
"""

import math
from math import cos, cosh, erf, exp, sin, sinh, sqrt, tanh  # noqa: F401 - bare names the formulas call (rebound for ad)

from numba.extending import register_jitable

from . import opcodes as K

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
HALF_SQRT_PI = 0.5 * math.sqrt(math.pi)
LN2 = math.log(2.0)
LN10 = math.log(10.0)
PI = math.pi
SQRT1_2 = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715  # gelu's tanh approximation: tanh(sqrt(2 / pi) (x + 0.044715 x^3))
SOFTPLUS_LINEAR = 20.0  # mish's softplus (torch's threshold): the identity above it


# --- helpers (scalar forms; ad/ops/elementwise_table.py gives their tensor forms) --------------------------


@register_jitable
def step(cond, like):
    """1.0 where ``cond`` holds, else 0.0 (``like`` gives the tensor form its dtype)."""
    return 1.0 if cond else 0.0


@register_jitable
def selects(v, extreme):
    """Whether member ``v`` is what an amax / amin over its group returned (``extreme``): equal to it, or NaN
    where the result is NaN (the NaN that propagated is the selected member: its gradient goes there, as torch's
    max, not to nowhere)."""
    return v == extreme or (v != v and extreme != extreme)


@register_jitable
def counts_as_extreme(v, extreme, evenly):
    """Whether member ``v`` is counted among the members of an amax / amin group that share its cotangent:
    equal to the result; with ``evenly`` (torch's max() / min() over all elements) also a NaN of a NaN result."""
    return v == extreme or (evenly and v != v and extreme != extreme)


@register_jitable
def extreme_share(g, count, v, extreme, evenly):
    """Member ``v``'s share of its amax / amin group's cotangent ``g`` (``count``: ``counts_as_extreme`` members).
    torch's max() / min() over all elements (``evenly``) select: ``g / count`` to the counted members, 0 to the
    others whatever ``g`` is. torch's amax / amin multiply: ``g / count`` times the 0/1 mask of the members equal
    to the result, so a NaN result (no member equal: ``g / 0 * 0``) gives its whole group NaN, and an inf or NaN
    ``g`` gives the other members NaN."""
    if evenly:
        return g / count if selects(v, extreme) else 0.0
    return (g / count) * (1.0 if v == extreme else 0.0)


# Opcodes whose derivative selects the cotangent instead of scaling it: torch's backward of relu, clamp,
# maximum / minimum (and of the piecewise-constant ops, zeros) is ``cond ? g : 0``, so an inf or NaN cotangent
# at a blocked input gives 0 there, where ``g * 0`` would give NaN. Their partials are 0, 0.5 or 1 (never NaN,
# so a NaN input that passes the gradient has partial 1, not a NaN flag). ``times`` applies the rule.
SELECTING_CODES = (K.RELU, K.CLAMP, K.STEP_FN, K.MAXIMUM, K.MINIMUM)


@register_jitable
def selecting(code):
    """Whether opcode ``code``'s derivative selects (``SELECTING_CODES``; written out for numba and CUDA)."""
    return code == K.RELU or code == K.CLAMP or code == K.STEP_FN or code == K.MAXIMUM or code == K.MINIMUM


@register_jitable
def times(code, g, d):
    """The chain rule's ``g * d`` (``g`` a cotangent or tangent, ``d`` the row's partial), except that a
    selecting op's zero partial gives 0 whatever ``g`` is (inf, NaN), as torch's ``cond ? g : 0``. The opcode
    test is the same for a whole row; the big-row loops (``cpu.unary_backward_chunk``) pass the selecting opcodes
    as constants, so that this folds to one select and the loop vectorizes (with the opcode known only at run
    time, relu's and maximum's big rows took 3-4x as long)."""
    p = g * d
    if selecting(code):
        return d if d == 0.0 else p  # (d: a +0.0 from the formulas' steps, in d's type)
    return p


@register_jitable
def sign(v):
    """-1, 0 or 1, and 0 for NaN (torch's sign and sgn, and so abs'(x))."""
    if v > 0.0:
        return 1.0
    if v < 0.0:
        return -1.0
    return 0.0


@register_jitable
def log(v):
    """Natural log with numpy's values at 0 and below (-inf, NaN) also for Python floats."""
    if v > 0.0:
        return math.log(v)
    if v == 0.0:
        return -math.inf
    return math.nan


@register_jitable
def trunc(v):
    """``np.trunc`` of a float scalar, as a float (``math.trunc`` returns an int, and numpy's ufuncs are no CUDA
    device functions); rebound for ad."""
    if abs(v) < 4503599627370496.0:  # below 2**52 a float may have a fraction (NaN and inf fall through)
        return math.copysign(float(int(v)), v)
    return v


@register_jitable
def floor(v):
    """``np.floor`` of a float scalar, as a float (see ``trunc``); rebound for ad."""
    t = trunc(v)
    return t - 1.0 if t > v else t


@register_jitable
def xlogy(a, b):
    """``a * log(b)``, 0 where ``a == 0`` (unless ``b`` is NaN), as torch.xlogy."""
    if a == 0.0 and not math.isnan(b):
        return 0.0
    return a * log(b)


@register_jitable
def select(cond, a, b):
    """``a`` where ``cond`` holds, else ``b`` (rebound to ``ad.where`` for tensors: a branch the formula's own
    derivative follows, where ``step`` is a constant factor)."""
    return a if cond else b


@register_jitable
def sigmoid_value(x):
    """``1 / (1 + exp(-x))`` without overflow for large ``|x|`` (scipy's expit)."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@register_jitable
def sigmoid(v):
    """``1 / (1 + exp(-v))`` without overflow (rebound for ad)."""
    return sigmoid_value(v)


@register_jitable
def softplus(v):
    """``log(1 + exp(v))``, ``v`` itself above ``SOFTPLUS_LINEAR`` (mish's softplus, as torch's; rebound for ad)."""
    if v > SOFTPLUS_LINEAR:
        return v
    return math.log1p(math.exp(v))


@register_jitable
def erfinv(v):
    """The inverse error function (scalar form): Giles' approximation (2010) refined by Newton steps, on
    ``log(erfc)`` in the tails (``1 - |v|`` is exact there, ``1 - erf`` would cancel). erfinv's derivative reads it:
    torch's erfinv saves its input, not its result (ad/saved.py)."""
    if not (v > -1.0 and v < 1.0):
        if v == 1.0:
            return math.inf
        if v == -1.0:
            return -math.inf
        return math.nan
    a = abs(v)
    w = -math.log((1.0 - a) * (1.0 + a))
    if w < 5.0:
        w = w - 2.5
        p = 2.81022636e-08
        p = 3.43273939e-07 + p * w
        p = -3.5233877e-06 + p * w
        p = -4.39150654e-06 + p * w
        p = 0.00021858087 + p * w
        p = -0.00125372503 + p * w
        p = -0.00417768164 + p * w
        p = 0.246640727 + p * w
        p = 1.50140941 + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        p = 0.000100950558 + p * w
        p = 0.00134934322 + p * w
        p = -0.00367342844 + p * w
        p = 0.00573950773 + p * w
        p = -0.0076224613 + p * w
        p = 0.00943887047 + p * w
        p = 1.00167406 + p * w
        p = 2.83297682 + p * w
    r = p * a
    for _ in range(8):  # two steps inside float32's range of the approximation, a few more far in the tails
        slope = TWO_OVER_SQRT_PI * math.exp(-r * r)
        if a > 0.5:  # on log(erfc(r)) = log(1 - a): no overshoot where erfc's slope is tiny
            c = math.erfc(r)
            step = -(math.log(c) - math.log(1.0 - a)) * c / slope
        else:
            step = (math.erf(r) - a) / slope
        r = r - step
        if abs(step) <= 1e-15 * r:
            break
    return math.copysign(r, v)  # (odd: erfinv(-0.0) is -0.0, as torch's)


# --- unary partials d(x, out, a0, a1) --------------------------------------------------------------------


@register_jitable
def d_one(x, out, a0, a1):
    return 1.0


@register_jitable
def d_zero(x, out, a0, a1):  # floor, ceil, round, trunc, sign: zero almost everywhere, as torch
    return 0.0


@register_jitable
def d_affine(x, out, a0, a1):  # a0 * x + a1
    return a0


@register_jitable
def d_neg(x, out, a0, a1):
    return -1.0


@register_jitable
def d_abs(x, out, a0, a1):
    return sign(x)


@register_jitable
def d_exp(x, out, a0, a1):
    return out


@register_jitable
def d_log(x, out, a0, a1):
    return 1.0 / x


@register_jitable
def d_log1p(x, out, a0, a1):
    return 1.0 / (x + 1.0)


@register_jitable
def d_expm1(x, out, a0, a1):
    return out + 1.0


@register_jitable
def d_sqrt(x, out, a0, a1):
    return 0.5 / out


@register_jitable
def d_rsqrt(x, out, a0, a1):
    return -0.5 * out * out * out


@register_jitable
def d_sin(x, out, a0, a1):
    return cos(x)


@register_jitable
def d_cos(x, out, a0, a1):
    return -sin(x)


@register_jitable
def d_tan(x, out, a0, a1):
    return 1.0 + out * out


@register_jitable
def d_tanh(x, out, a0, a1):
    return 1.0 - out * out


@register_jitable
def d_sigmoid(x, out, a0, a1):
    return out * (1.0 - out)


@register_jitable
def d_relu(x, out, a0, a1):  # 1 at NaN: torch's relu lets a NaN input's gradient through (not out <= 0)
    return step((out > 0.0) | (out != out), out)


@register_jitable
def d_erf(x, out, a0, a1):
    return TWO_OVER_SQRT_PI * exp(-(x * x))


@register_jitable
def d_square(x, out, a0, a1):
    return 2.0 * x


@register_jitable
def d_clamp(x, out, a0, a1):  # a0, a1: the bounds, NaN for none
    return step(((x >= a0) | math.isnan(a0)) & ((x <= a1) | math.isnan(a1)), x)


@register_jitable
def d_pow_scalar(x, out, a0, a1):  # x ** a0
    if a0 == 0.0:
        return 0.0
    return a0 * x ** (a0 - 1.0)


@register_jitable
def d_rpow_scalar(x, out, a0, a1):  # a0 ** x
    return out * math.log(a0)


@register_jitable
def d_rdiv_scalar(x, out, a0, a1):  # a0 / x
    # from the output, as torch's reciprocal (which saves its result, so that writing into x afterwards is
    # allowed and writing into the result raises): r = out / a0 is 1 / x, and the partial is -a0 * r * r.
    # For a0 = 0 the output carries no 1 / x; torch's 0 * -(r * r) is 0 unless x is 0 or NaN, where out is NaN.
    if a0 == 0.0:
        return out * 0.0
    r = out / a0
    return -a0 * (r * r)


@register_jitable
def d_atan(x, out, a0, a1):
    return 1.0 / (x * x + 1.0)


@register_jitable
def d_asin(x, out, a0, a1):
    return 1.0 / sqrt(1.0 - x * x)


@register_jitable
def d_acos(x, out, a0, a1):
    return -1.0 / sqrt(1.0 - x * x)


@register_jitable
def d_sinh(x, out, a0, a1):
    return cosh(x)


@register_jitable
def d_cosh(x, out, a0, a1):
    return sinh(x)


@register_jitable
def d_asinh(x, out, a0, a1):
    return 1.0 / sqrt(x * x + 1.0)


@register_jitable
def d_acosh(x, out, a0, a1):
    return 1.0 / sqrt(x * x - 1.0)


@register_jitable
def d_atanh(x, out, a0, a1):
    return 1.0 / (1.0 - x * x)


@register_jitable
def d_log2(x, out, a0, a1):
    return 1.0 / (x * LN2)


@register_jitable
def d_log10(x, out, a0, a1):
    return 1.0 / (x * LN10)


@register_jitable
def d_exp2(x, out, a0, a1):
    return out * LN2


@register_jitable
def d_erfc(x, out, a0, a1):
    return -TWO_OVER_SQRT_PI * exp(-(x * x))


@register_jitable
def d_erfinv(x, out, a0, a1):  # from x (torch saves the input only: writing into the result is no error)
    y = erfinv(x)
    return HALF_SQRT_PI * exp(y * y)


@register_jitable
def d_logit(x, out, a0, a1):  # a0: eps (NaN for none); 0 outside [eps, 1 - eps], as torch
    inside = step(((x >= a0) & (x <= 1.0 - a0)) | math.isnan(a0), x)
    # (outside: 0, also at x = 0 or 1, where 0 / 0 would be NaN; at -0.0, +inf, as torch's backward: its forward
    # mode gives -inf there)
    d = inside / (x * (1.0 - x) + (1.0 - inside))
    if math.isnan(a0):  # without eps: NaN outside [0, 1], as torch; a constant factor, so that the second
        # derivative is NaN there too, and none at 0 and 1 (where it is infinite)
        d = d * (1.0 + sqrt(step((x >= 0.0) & (x <= 1.0), x) - 1.0))
    return d


@register_jitable
def d_sinc(x, out, a0, a1):  # sin(pi x) / (pi x); 0 at x = 0
    # Below |x| = 1e-3 the quotient's numerator cancels (0 / 0 at 0, and at |x| < 1e-154 where px * x underflows):
    # there the Taylor series pi f(pi x), f(u) = -u / 3 + u^3 / 30 - u^5 / 840 + u^7 / 45360, whose own derivative
    # (what create_graph differentiates) is sinc''(x), -pi^2 / 3 at 0
    px = PI * x
    near = step(x * x < 1e-6, x)
    u = px * near
    u2 = u * u
    series = PI * u * (-1.0 / 3.0 + u2 * (1.0 / 30.0 - u2 * (1.0 / 840.0 - u2 / 45360.0)))
    return (px * cos(px) - sin(px)) / (px * x + near) * (1.0 - near) + series


# The activations (issue 19): one row each, the partial from x as torch's fused rules, so that an infinite
# cotangent meets a finite nonzero partial (+-inf, as torch) where the composites' chains formed 0 * inf.


@register_jitable
def d_silu(x, out, a0, a1):  # s (1 + x (1 - s)), s = sigmoid(x); NaN at +-inf, as torch
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


@register_jitable
def d_gelu(x, out, a0, a1):  # a0 = 0: Phi(x) + x phi(x) (torch's 1 + erf form: 0 from x = -38 on); a0 = 1: tanh form
    if a0 == 0.0:
        return 0.5 * (1.0 + erf(x * SQRT1_2)) + x * (INV_SQRT_2PI * exp(-0.5 * (x * x)))
    t = tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * (x * x * x)))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * (SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * (x * x)))


@register_jitable
def d_mish(x, out, a0, a1):  # t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x))
    t = tanh(softplus(x))
    return t + x * sigmoid(x) * (1.0 - t * t)


@register_jitable
def d_elu(x, out, a0, a1):  # a0 alpha, a1 scale: a1 a0 exp(x) for x <= 0 (from x: 1 + expm1(x) is 0 below -37,
    # and an inf cotangent would give NaN where torch's gives inf), a1 above and at NaN. exp's argument stops
    # at 0 (no overflow on the side not taken) and is a constant at 0 itself: the second derivative there is
    # torch's 0.
    return select(x <= 0.0, (a1 * a0) * exp(select(x < 0.0, x, 0.0)), a1)


@register_jitable
def d_celu(x, out, a0, a1):  # a0 alpha: exp(x / a0) for x <= 0, else 1 (as d_elu)
    return select(x <= 0.0, exp(select(x < 0.0, x, 0.0) / a0), 1.0)


# --- binary partials (x, y, out) -------------------------------------------------------------------------


@register_jitable
def dx_mul(x, y, out):
    return y


@register_jitable
def dy_mul(x, y, out):
    return x


@register_jitable
def dx_div(x, y, out):
    return 1.0 / y


@register_jitable
def dy_div(x, y, out):  # -(x / y) / y, as torch's: its derivative at y = -0.0 is -inf where -x / (y * y)'s is NaN
    return -(x / y) / y


@register_jitable
def dx_pow(x, y, out):  # 0 where y = 0 (torch: d/dx x**0 = 0, also at x = 0, and masked: its d/dy there is 0)
    at_zero = step(y == 0.0, y)
    return y * x ** (y - 1.0 + at_zero) * (1.0 - at_zero)


@register_jitable
def dy_pow(x, y, out):  # 0 where x = 0 and y >= 0 (torch)
    zero = step((x == 0.0) & (y >= 0.0), x)
    return out * log(x + zero) * (1.0 - zero)


@register_jitable
def dx_maximum(x, y, out):  # ties split 0.5 / 0.5; NaN: 1 (as torch)
    return 1.0 - step(x < y, x) - 0.5 * step(x == y, x)


@register_jitable
def dy_maximum(x, y, out):
    return 1.0 - step(y < x, y) - 0.5 * step(x == y, y)


@register_jitable
def dx_minimum(x, y, out):
    return 1.0 - step(x > y, x) - 0.5 * step(x == y, x)


@register_jitable
def dy_minimum(x, y, out):
    return 1.0 - step(y > x, y) - 0.5 * step(x == y, y)


@register_jitable
def extreme_tangent(code, tx, ty, x, y):
    """The tangent of ``maximum`` (code MAXIMUM) or ``minimum``, as torch's forward rule ``ty + (tx - ty) * m``:
    ``m`` is 1 where x is chosen strictly, 0.5 at ties and 0 elsewhere, a NaN operand included (the reverse
    rule gives a NaN operand's side the gradient, and its selects; the forward rule multiplies, so an inf tangent
    on the side not chosen gives NaN, as torch's). A missing tangent is 0."""
    if code == K.MAXIMUM:
        m = step(x > y, x) + 0.5 * step(x == y, x)
    else:
        m = step(x < y, x) + 0.5 * step(x == y, x)
    return ty + (tx - ty) * m


@register_jitable
def dx_tanh_backward(x, y, out):  # x * (1 - y * y): x a cotangent, y = tanh(.)
    return 1.0 - y * y


@register_jitable
def dy_tanh_backward(x, y, out):
    return -2.0 * x * y


@register_jitable
def dx_atan2(x, y, out):  # atan2(x, y) = atan(x / y); 0 at (0, 0), as torch
    r = x * x + y * y
    return y / (r + step(r == 0.0, x))


@register_jitable
def dy_atan2(x, y, out):
    r = x * x + y * y
    return -x / (r + step(r == 0.0, x))


@register_jitable
def dx_hypot(x, y, out):
    return x / out


@register_jitable
def dy_hypot(x, y, out):
    return y / out


@register_jitable
def dx_fmod(x, y, out):  # x - trunc(x / y) * y; remainder: the same with floor
    return 1.0


@register_jitable
def dy_fmod(x, y, out):
    return -trunc(x / y)


@register_jitable
def dy_remainder(x, y, out):
    return -floor(x / y)


@register_jitable
def dx_copysign(x, y, out):  # out / x, 0 at x = 0 (torch's copysign backward)
    zero = step(x == 0.0, x)
    return out / (x + zero) * (1.0 - zero)


@register_jitable
def dy_zero(x, y, out):
    return 0.0


@register_jitable
def dx_logaddexp(x, y, out):  # exp(x - out), from x and y (torch saves the inputs, not the result)
    return 1.0 / (1.0 + exp(y - x))


@register_jitable
def dy_logaddexp(x, y, out):
    return 1.0 / (1.0 + exp(x - y))


@register_jitable
def dx_xlogy(x, y, out):  # log(y), but 0 where x = 0 and y <= 0 (torch's values: xlogy(0, y) is 0 there)
    return xlogy(step((x != 0.0) | (y > 0.0), x), y)


@register_jitable
def dy_xlogy(x, y, out):
    return x / y


# binary_cross_entropy_with_logits(x, t) = (1 - t) x - log sigmoid(x) as one row, as torch's fused node: its
# partials are products of the cotangent with sigmoid(x) - t and -x, so an infinite cotangent gives +-inf where
# a chain of rows formed 0 * inf (NaN). pos_weight and weight: ad/nn/functional/loss.py.


@register_jitable
def dx_bce_logits(x, y, out):
    return sigmoid(x) - y


@register_jitable
def dy_bce_logits(x, y, out):
    return -x


# opcode -> formula: what ``unary_partial`` / ``binary_partial_*`` dispatch to, and what the op table reads
UNARY = {
    K.COPY: d_one,
    K.AFFINE: d_affine,
    K.NEG: d_neg,
    K.EXP: d_exp,
    K.LOG: d_log,
    K.SIN: d_sin,
    K.COS: d_cos,
    K.TANH: d_tanh,
    K.SIGMOID: d_sigmoid,
    K.RELU: d_relu,
    K.SQUARE: d_square,
    K.ABS: d_abs,
    K.LOG1P: d_log1p,
    K.EXPM1: d_expm1,
    K.SQRT: d_sqrt,
    K.RSQRT: d_rsqrt,
    K.TAN: d_tan,
    K.ERF: d_erf,
    K.CLAMP: d_clamp,
    K.POW_SCALAR: d_pow_scalar,
    K.RPOW_SCALAR: d_rpow_scalar,
    K.RDIV_SCALAR: d_rdiv_scalar,
    K.ATAN: d_atan,
    K.ASIN: d_asin,
    K.ACOS: d_acos,
    K.SINH: d_sinh,
    K.COSH: d_cosh,
    K.ASINH: d_asinh,
    K.ACOSH: d_acosh,
    K.ATANH: d_atanh,
    K.LOG2: d_log2,
    K.LOG10: d_log10,
    K.EXP2: d_exp2,
    K.ERFC: d_erfc,
    K.ERFINV: d_erfinv,
    K.LOGIT: d_logit,
    K.SINC: d_sinc,
    K.STEP_FN: d_zero,
    K.SILU: d_silu,
    K.GELU: d_gelu,
    K.MISH: d_mish,
    K.ELU: d_elu,
    K.CELU: d_celu,
}
BINARY = {
    K.MUL: (dx_mul, dy_mul),
    K.DIV: (dx_div, dy_div),
    K.POW: (dx_pow, dy_pow),
    K.MAXIMUM: (dx_maximum, dy_maximum),
    K.MINIMUM: (dx_minimum, dy_minimum),
    K.TANH_BACKWARD: (dx_tanh_backward, dy_tanh_backward),
    K.ATAN2: (dx_atan2, dy_atan2),
    K.HYPOT: (dx_hypot, dy_hypot),
    K.FMOD: (dx_fmod, dy_fmod),
    K.REMAINDER: (dx_fmod, dy_remainder),
    K.COPYSIGN: (dx_copysign, dy_zero),
    K.LOGADDEXP: (dx_logaddexp, dy_logaddexp),
    K.XLOGY: (dx_xlogy, dy_xlogy),
    K.BCE_LOGITS: (dx_bce_logits, dy_bce_logits),
}


def unary_partial(code, x, out, a0, a1):
    """d out / d x for an elementwise unary op, from its input ``x``, output ``out`` and attributes."""
    if code == K.COPY:
        return 1.0
    if code == K.AFFINE:
        return a0
    if code == K.NEG:
        return -1.0
    if code == K.EXP:
        return out
    if code == K.LOG:
        return d_log(x, out, a0, a1)
    if code == K.SIN:
        return d_sin(x, out, a0, a1)
    if code == K.COS:
        return d_cos(x, out, a0, a1)
    if code == K.TANH:
        return d_tanh(x, out, a0, a1)
    if code == K.SIGMOID:
        return d_sigmoid(x, out, a0, a1)
    if code == K.RELU:
        return d_relu(x, out, a0, a1)
    if code == K.SQUARE:
        return d_square(x, out, a0, a1)
    if code == K.ABS:
        return d_abs(x, out, a0, a1)
    if code == K.LOG1P:
        return d_log1p(x, out, a0, a1)
    if code == K.EXPM1:
        return d_expm1(x, out, a0, a1)
    if code == K.SQRT:
        return d_sqrt(x, out, a0, a1)
    if code == K.RSQRT:
        return d_rsqrt(x, out, a0, a1)
    if code == K.TAN:
        return d_tan(x, out, a0, a1)
    if code == K.ERF:
        return d_erf(x, out, a0, a1)
    if code == K.CLAMP:
        return d_clamp(x, out, a0, a1)
    if code == K.POW_SCALAR:
        return d_pow_scalar(x, out, a0, a1)
    if code == K.RPOW_SCALAR:
        return d_rpow_scalar(x, out, a0, a1)
    if code == K.RDIV_SCALAR:
        return d_rdiv_scalar(x, out, a0, a1)
    if code == K.ATAN:
        return d_atan(x, out, a0, a1)
    if code == K.ASIN:
        return d_asin(x, out, a0, a1)
    if code == K.ACOS:
        return d_acos(x, out, a0, a1)
    if code == K.SINH:
        return d_sinh(x, out, a0, a1)
    if code == K.COSH:
        return d_cosh(x, out, a0, a1)
    if code == K.ASINH:
        return d_asinh(x, out, a0, a1)
    if code == K.ACOSH:
        return d_acosh(x, out, a0, a1)
    if code == K.ATANH:
        return d_atanh(x, out, a0, a1)
    if code == K.LOG2:
        return d_log2(x, out, a0, a1)
    if code == K.LOG10:
        return d_log10(x, out, a0, a1)
    if code == K.EXP2:
        return d_exp2(x, out, a0, a1)
    if code == K.ERFC:
        return d_erfc(x, out, a0, a1)
    if code == K.ERFINV:
        return d_erfinv(x, out, a0, a1)
    if code == K.LOGIT:
        return d_logit(x, out, a0, a1)
    if code == K.SINC:
        return d_sinc(x, out, a0, a1)
    if code == K.STEP_FN:
        return 0.0
    if code == K.SILU:
        return d_silu(x, out, a0, a1)
    if code == K.GELU:
        return d_gelu(x, out, a0, a1)
    if code == K.MISH:
        return d_mish(x, out, a0, a1)
    if code == K.ELU:
        return d_elu(x, out, a0, a1)
    if code == K.CELU:
        return d_celu(x, out, a0, a1)
    return math.nan  # unknown opcode: poison the result rather than return a wrong number


def binary_partial_x(code, x, y, out):
    """d out / d x for a same-shape elementwise binary op."""
    if code == K.ADD or code == K.SUB:
        return 1.0
    if code == K.MUL:
        return y
    if code == K.DIV:
        return dx_div(x, y, out)
    if code == K.POW:
        return dx_pow(x, y, out)
    if code == K.MAXIMUM:
        return dx_maximum(x, y, out)
    if code == K.MINIMUM:
        return dx_minimum(x, y, out)
    if code == K.TANH_BACKWARD:
        return dx_tanh_backward(x, y, out)
    if code == K.ATAN2:
        return dx_atan2(x, y, out)
    if code == K.HYPOT:
        return dx_hypot(x, y, out)
    if code == K.FMOD or code == K.REMAINDER:
        return 1.0
    if code == K.COPYSIGN:
        return dx_copysign(x, y, out)
    if code == K.LOGADDEXP:
        return dx_logaddexp(x, y, out)
    if code == K.XLOGY:
        return dx_xlogy(x, y, out)
    if code == K.BCE_LOGITS:
        return dx_bce_logits(x, y, out)
    return math.nan


def binary_partial_y(code, x, y, out):
    """d out / d y for a same-shape elementwise binary op."""
    if code == K.ADD:
        return 1.0
    if code == K.SUB:
        return -1.0
    if code == K.MUL:
        return x
    if code == K.DIV:
        return dy_div(x, y, out)
    if code == K.POW:
        return dy_pow(x, y, out)
    if code == K.MAXIMUM:
        return dy_maximum(x, y, out)
    if code == K.MINIMUM:
        return dy_minimum(x, y, out)
    if code == K.TANH_BACKWARD:
        return dy_tanh_backward(x, y, out)
    if code == K.ATAN2:
        return dy_atan2(x, y, out)
    if code == K.HYPOT:
        return dy_hypot(x, y, out)
    if code == K.FMOD:
        return dy_fmod(x, y, out)
    if code == K.REMAINDER:
        return dy_remainder(x, y, out)
    if code == K.COPYSIGN:
        return 0.0
    if code == K.LOGADDEXP:
        return dy_logaddexp(x, y, out)
    if code == K.XLOGY:
        return dy_xlogy(x, y, out)
    if code == K.BCE_LOGITS:
        return dy_bce_logits(x, y, out)
    return math.nan
