"""Opcode table shared by the Python op table (``ad/ops.py``) and the compiled sweeps.

A tape row (see ``ad/tape.py``) stores ``opcode | XRG * x_requires_grad | YRG * y_requires_grad`` in its
first column. Opcodes are only ever appended: cached kernels and saved tapes depend on the numbers.

Ranges matter to the kernels: ``UNARY_FIRST..UNARY_LAST``, ``UNARY2_FIRST..UNARY2_LAST`` and
``UNARY3_FIRST..UNARY3_LAST`` are elementwise ops whose local partial is a function of (x, out, attr0, attr1)
(``is_unary`` tests the three ranges: the one test every kernel uses, so that a new range is one edit here);
``BINARY_FIRST..BINARY_LAST`` are same-shape elementwise ops whose partials are functions of (x, y, out)
(their formulas: ``pointwise.py``). Everything else has a branch of its own in the sweep.
"""

from numba.extending import register_jitable

# Bits above the opcode: whether the row's x / y operand requires grad (and so receives a cotangent).
XRG = 1 << 8
YRG = 1 << 9
CODE_MASK = 0xFF

# --- elementwise unary: partial d(x, out, a0, a1) ---------------------------------------------------------
COPY = 1  # identity: reshape, view, clone, dtype casts
NEG = 2
ABS = 3
EXP = 4
LOG = 5
LOG1P = 6
EXPM1 = 7
SQRT = 8
RSQRT = 9
SIN = 10
COS = 11
TAN = 12
TANH = 13
SIGMOID = 14
RELU = 15
ERF = 16
CLAMP = 17  # gradient passes where lo <= x <= hi (a0, a1 are the bounds; NaN bound means none)
POW_SCALAR = 18  # x ** a0
RPOW_SCALAR = 19  # a0 ** x
AFFINE = 20  # a0 * x + a1 (x + c, x * c, c - x, x / c, -x)
RDIV_SCALAR = 21  # a0 / x
SQUARE = 22
# (elementwise branch: issue 13's unary ops; the range continues at UNARY2_FIRST below)
ATAN = 23
ASIN = 24
ACOS = 25
SINH = 26
COSH = 27
ASINH = 28
ACOSH = 29
ATANH = 30
LOG2 = 31
UNARY_FIRST = COPY
UNARY_LAST = LOG2

# --- elementwise binary, same shape: partials (dx, dy) of (x, y, out) --------------------------------------
ADD = 32
SUB = 33
MUL = 34
DIV = 35
POW = 36
MAXIMUM = 37  # ties split the gradient 0.5 / 0.5, as torch
MINIMUM = 38
TANH_BACKWARD = 39  # g * (1 - y * y), y = tanh(x): tanh's rule as one node of second-order graphs
ATAN2 = 40  # atan2(x, y)
HYPOT = 41
FMOD = 42
REMAINDER = 43
COPYSIGN = 44
LOGADDEXP = 45
XLOGY = 46
BCE_LOGITS = 47  # binary_cross_entropy_with_logits(x, target) per element: (1 - target) x - log sigmoid(x)
BINARY_FIRST = ADD
BINARY_LAST = BCE_LOGITS

# --- structural -------------------------------------------------------------------------------------------
WHERE = 48  # out = where(mask, x, y); aux -> offset of the mask (0/1) in the value arena
GATHER_STRIDED = 49  # out[i] = x[base + sum_k i_k * stride_k]       (expand, permute, slicing)
SCATTER_STRIDED = 50  # out[base + sum_k i_k * stride_k] += a0 * x[i] (sum/mean over dims, cat, slice adjoint)
GATHER_MAP = 51  # out[i] = x[map[i]]                                 (integer indexing, gather)
SCATTER_MAP = 52  # out[map[i]] += x[i]                               (adjoint of GATHER_MAP)
MATMUL = 53  # batched: aux -> (B, M, K, N); x is (B, M, K), y is (B, K, N)
PROD = 54  # product over groups; aux as SCATTER_STRIDED (group of each x element)
AMAX = 55  # max over groups; ties share the gradient evenly; aux as SCATTER_STRIDED
AMIN = 56
SUM_ALL = 57  # out[0] = a0 * sum(x); the row's aux column holds the size of x (no aux entries)
PYTHON = 58  # output of a custom autograd.Function: the sweep stops before it and Python runs its backward
LOG_SOFTMAX = 59  # out = x - logsumexp(x, dim); aux -> (outer, size of dim, inner)
LINEAR = 60  # out = x @ y.T (torch's linear without bias; y stored (N, K)); aux -> (M, K, N)
LINEAR_BIAS = 61  # out = x @ y.T + b (torch's linear / addmm); aux -> (M, K, N, b offset, b row, b requires grad)
CROSS_ENTROPY = 62  # out = mean_i(logsumexp(x[i]) - x[i, t_i]), x (M, C); aux -> (M, C, t_0, ..., t_M-1)
GATHER_INDEXED = 63  # out[i] = x[(i // a0) * a1 + t_i], t_i >= 0 (else none); aux -> (t's arena offset, shared)

# --- elementwise unary, second range (the first is full): partial d(x, out, a0, a1) as UNARY_FIRST.. -----
# (numbers far above the structural ops, which other families append after CROSS_ENTROPY)
LOG10 = 128
EXP2 = 129
ERFC = 130
ERFINV = 131
LOGIT = 132  # a0: eps (NaN for none)
SINC = 133
STEP_FN = 134  # floor, ceil, round (a0: decimals), trunc, sign: piecewise constant, zero gradient as torch
UNARY2_FIRST = LOG10
UNARY2_LAST = STEP_FN

# --- saved-tensor guards (issue 17, versions2): rows that compute nothing ------------------------------------
# A composite op (var, std, norm, logsumexp) is recorded as primitives whose rows save intermediates, not
# the tensors torch's single node saves. A guard row after the composite's last row has the composite's
# output as ``out`` and, for SAVED_INPUT, the saved input's offset as ``x`` (no XRG: nothing flows to it), so
# the sweeps' usual check (kernels/cpu.py SAVES) raises torch's in-place error when the composite's backward
# runs after that tensor (or, for SAVED_RESULT, the output) was modified. See ad/saved.py.
SAVED_INPUT = 135
SAVED_RESULT = 136

# --- elementwise unary, third range: activations as one row each (issue 19), partial d(x, out, a0, a1) ------
# (their composites cost several rows, and an infinite cotangent met 0 * inf inside the chain: NaN where
# torch's fused rule gives +-inf)
SILU = 137
GELU = 138  # a0: 0 for approximate='none' (the erf form), 1 for 'tanh'
MISH = 139
ELU = 140  # elu and selu: a0 alpha, a1 scale (x > 0: a1 * x, else a1 * a0 * expm1(x))
CELU = 141  # a0 alpha: x > 0: x, else a0 * expm1(x / a0)
UNARY3_FIRST = SILU
UNARY3_LAST = CELU

# every elementwise unary opcode, for tables built in Python (numpy flag arrays, sets)
UNARY_CODES = (
    tuple(range(UNARY_FIRST, UNARY_LAST + 1))
    + tuple(range(UNARY2_FIRST, UNARY2_LAST + 1))
    + tuple(range(UNARY3_FIRST, UNARY3_LAST + 1))
)


@register_jitable
def is_unary(code):
    """Whether ``code`` is an elementwise unary opcode (partial d(x, out, a0, a1)); inlined by numba and CUDA."""
    return (
        (code >= UNARY_FIRST and code <= UNARY_LAST)
        or (code >= UNARY2_FIRST and code <= UNARY2_LAST)
        or (code >= UNARY3_FIRST and code <= UNARY3_LAST)
    )
