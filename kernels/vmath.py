"""sin and cos that vectorize: branch-free range reduction and polynomials, for the kernels' element loops.

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

from numba import njit

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
