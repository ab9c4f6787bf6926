"""sin, cos, exp and tanh that vectorize: branch-free range reduction and polynomials, for the kernels' loops.

Why: numpy's float64 ``sin``/``cos`` call scalar libm per element (~8 ns each here), while ``exp``, ``tanh``
and the arithmetic ufuncs are SIMD; a 4M-element chain with two sines spent over half its time in them, and
torch's vectorized SLEEF versions were 3x faster. numba cannot vectorize a loop that calls libm, but it can
one of plain arithmetic and selects, so ``sin_cos`` below is written that way (no ``fastmath``: LLVM keeps
every rounding, NaN and inf as written).

The method is fdlibm's (``k_sin.c``, ``k_cos.c``, ``e_rem_pio2.c``): ``k = round(x * 2/pi)``,
``r = x - k*pi/2`` with pi/2 split into four parts of which the first three have 33 significant bits, so
``k * part`` is exact for ``|k| < 2**20``; then degree-13 (sin) and degree-14 (cos) polynomials on
``|r| <= pi/4`` and the quadrant ``k mod 4`` picks and signs them. Error: within 1 ulp of the correctly
rounded result (tests/test_vmath.py measures it against numpy over random and adversarial inputs).

``|x| > TRIG_LIMIT``, inf and NaN are not handled by the polynomial path: the loops in ``cpu.py`` mark such
elements and recompute them with ``math.sin``/``math.cos`` in a second, scalar pass that only runs when one
occurred, so results equal libm's there.
"""

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Same options as every kernel (see cpu.KERNEL): cached, no fastmath; inlined into the loops that use them.
_INLINE = {"cache": True, "nogil": True, "error_model": "numpy", "inline": "always"}

TRIG_LIMIT = 1.0e6  # |k| = |x| * 2/pi < 2**20 below this, so the reduction products are exact

_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00  # first 33 bits of pi/2
_PIO2_2 = 6.07710050630396597660e-11  # next 33 bits
_PIO2_3 = 2.02226624871116645580e-21  # next 33 bits
_PIO2_3T = 8.47842766036889956997e-32  # pi/2 - (_PIO2_1 + _PIO2_2 + _PIO2_3)
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (v + _ROUND) - _ROUND rounds v to an integer (|v| < 2**51)

_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10

_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11


@njit(**_INLINE)
def _reduce(x):
    """``(r, q)``: ``x = r + k*pi/2`` with ``|r| <= ~pi/4`` and ``q = k mod 4`` (as a float in 0..3)."""
    k = (x * _TWO_OVER_PI + _ROUND) - _ROUND
    r = x - k * _PIO2_1  # exact: both near each other (Sterbenz) or k == 0
    r = r - k * _PIO2_2
    r = r - k * _PIO2_3
    r = r - k * _PIO2_3T
    q = k - 4.0 * math.floor(k * 0.25)
    return r, q


@njit(**_INLINE)
def _sin_poly(r):
    z = r * r
    v = z * r
    p = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    return r + v * (_S1 + z * p)


@njit(**_INLINE)
def _cos_poly(r):
    z = r * r
    p = z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    hz = 0.5 * z
    w = 1.0 - hz
    return w + (((1.0 - w) - hz) + z * p)  # recovers the bits of 1 - hz that the first rounding lost


@njit(**_INLINE)
def in_trig_range(x):
    """True where ``sin_cos`` is exact enough; False for large ``|x|``, inf and NaN."""
    return abs(x) <= TRIG_LIMIT


@njit(**_INLINE)
def sin_cos(x):
    """``(sin(x), cos(x))`` for ``in_trig_range(x)``; meaningless outside it (callers recompute those)."""
    r, q = _reduce(x)
    s = _sin_poly(r)
    c = _cos_poly(r)
    if r == 0.0:
        s = r  # keeps the sign of a zero: sin(-0.0) is -0.0 (the polynomial would give +0.0)
    odd = q == 1.0 or q == 3.0
    sin_v = c if odd else s
    cos_v = s if odd else c
    if q >= 2.0:
        sin_v = -sin_v
    if q == 1.0 or q == 2.0:
        cos_v = -cos_v
    return sin_v, cos_v


# --- exp and tanh -----------------------------------------------------------------------------------------
#
# Why: numba compiles ``math.exp`` and ``math.tanh`` to scalar libm calls, which no loop vectorizes; on the
# project's machines they cost 5.8 and 18 ns per float64 element against numpy's 0.9 and 1.9 (SIMD), so a
# replayed tanh row (``kernels/replay.py``) was 10x slower than the eager op it replays. ``exp`` below is
# fdlibm's ``e_exp.c`` written without branches: ``k = round(x / ln 2)``, ``r = x - k ln 2`` in two parts
# (``k * _LN2_HI`` is exact: ``_LN2_HI`` has 32 significant bits), a degree-5 rational-like polynomial
# ``c(r)``, ``exp(r) = 1 - ((lo - r c / (2 - c)) - hi)``, scaled by ``2**k`` built in the exponent bits.
# Error below 1 ulp for normal results (fdlibm's bound; tests/test_vmath.py measures it). Overflow, underflow
# to zero and subnormal results are selects (scaling in two steps where ``2**k`` alone is not a normal
# number), NaN propagates: one pass, no scalar fallback.
#
# ``tanh`` is Cephes's: an odd rational ``x + x^3 P(x^2) / Q(x^2)`` for ``|x| < 0.625`` and
# ``1 - 2 / (exp(2|x|) + 1)`` with the sign of ``x`` beyond (``|x|`` clamped at 20, where tanh rounds to 1),
# within 2 ulps.

_INV_LN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_OVER = 7.09782712893383973096e02  # above: exp overflows
_EXP_UNDER = -7.45133219101941108420e02  # below: exp rounds to zero
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08
_TWO_M1000 = 2.0**-1000

_TP0 = -9.64399179425052238628e-01
_TP1 = -9.92877231001918586564e01
_TP2 = -1.61468768441708447952e03
_TQ0 = 1.12811678491632931402e02
_TQ1 = 2.23548839060100448583e03
_TQ2 = 4.84406305325125486048e03
_TANH_SMALL = 0.625
_TANH_ONE = 20.0  # tanh(x) rounds to 1 from about 19.06


@intrinsic
def _bits_as_float(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (numba has no scalar bit cast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(**_INLINE)
def exp(x):
    """``e**x`` for every float64 ``x`` (see above)."""
    xc = x
    if x > 710.0:  # (NaN fails both tests and stays NaN)
        xc = 710.0
    if x < -746.0:
        xc = -746.0
    k = (xc * _INV_LN2 + _ROUND) - _ROUND
    hi = xc - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    # 2**k in two factors where it alone is not a normal number: k > 1023 (x just below overflow) and
    # k < -1021 (subnormal results, which the last product rounds once)
    post = 1.0
    if k > 1000.0:
        k = k - 1.0
        post = 2.0
    if k < -1000.0:
        k = k + 1000.0
        post = _TWO_M1000
    scale = _bits_as_float((int(k) + 1023) << 52)
    v = (y * scale) * post
    if x > _EXP_OVER:
        v = math.inf
    if x < _EXP_UNDER:
        v = 0.0
    return v


@njit(**_INLINE)
def tanh(x):
    """``tanh(x)`` for every float64 ``x`` (see above)."""
    a = abs(x)
    if a > _TANH_ONE:  # (inf too; NaN stays NaN)
        a = _TANH_ONE
    z = x * x
    small = x + x * z * (((_TP0 * z + _TP1) * z + _TP2) / (((z + _TQ0) * z + _TQ1) * z + _TQ2))
    if small == 0.0:
        small = x  # keeps the sign of a zero: tanh(-0.0) is -0.0
    big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0)
    if x < 0.0:
        big = -big
    return small if a < _TANH_SMALL else big
