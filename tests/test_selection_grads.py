"""Selection ops' derivatives select, as torch's do: an inf or NaN cotangent (or tangent) at a blocked input
gives 0, not ``inf * 0 = NaN``, and a NaN input gets torch's derivative there (relu, elu: the gradient
passes; clamp, hardtanh, the shrinks: it does not).

``CASES`` lists the ops (``fn(M, *xs)``, written once for ``M = ad`` and ``M = torch``) over the points ``X``
(kinks, bounds, signed zeros, NaN, +-inf) and, for binary ops, ``Y`` (ties with X, NaN, -inf). ``TORCH`` holds
torch 2.13's derivatives there (made by running torch one element at a time, ``torch_reference``: its scalar
loops, where torch's vectorized loops differ at NaN for some ops; ``test_table_is_torchs`` checks the table
against the torch installed): per case, the reverse gradients for cotangents of ones, of inf and of NaN (one
array per input), then the forward tangents for tangents of ones and of inf on one input at a time. Every path
must give them:

- reverse: the kernel sweep on small rows and on big rows (``tape.BIG_ROW`` elements or more), the rules
  (``create_graph=True``), ``is_grads_batched`` (the three cotangents as one batch), ``ad.compile`` replay;
- forward: the compiled JVP (inputs that do not require grad), the rules (inputs that do), batched tangents;
- forward over reverse (the compiled second-order sweep) and reverse over reverse: a selection op's second
  derivative is 0, also under an inf cotangent.

Where torch's forward rule and its backward differ (maximum, minimum at NaN), each mode follows torch's own.
tests/cuda/test_selection_grads_cuda.py runs the table's reverse and forward rows on CUDA tensors.
"""

import math
import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

NAN = N = math.nan
INF = I = math.inf  # noqa: E741 - the table's shorthand

X = [-1.0, -0.0, 0.0, 1.0, NAN, INF, -INF, 0.5, -0.5, 6.0, 3.0, -3.0]
Y = [0.0, 0.0, -0.0, 2.0, 1.0, NAN, NAN, 0.5, -1.0, 7.0, 3.0, -INF]


def _mask(M, x):
    """A constant mask (no gradient flows through a comparison): where x > 0.2 or is NaN."""
    xd = x.detach()
    return (xd > 0.2) | (xd != xd)


def _F(M):
    return M.nn.functional


def _zeros(M, x):
    return M.zeros_like(x)


# (id, fn(M, *xs), inputs: "X" / "Y" per operand)
CASES = [
    ("relu", lambda M, x: _F(M).relu(x), "X"),
    ("relu6", lambda M, x: _F(M).relu6(x), "X"),
    ("hardtanh", lambda M, x: _F(M).hardtanh(x), "X"),
    ("clamp", lambda M, x: M.clamp(x, -0.5, 0.5), "X"),
    ("clamp_min", lambda M, x: M.clamp(x, min=0.0), "X"),
    ("clamp_max", lambda M, x: M.clamp(x, max=0.0), "X"),
    ("hardsigmoid", lambda M, x: _F(M).hardsigmoid(x), "X"),
    ("hardswish", lambda M, x: _F(M).hardswish(x), "X"),
    ("leaky_relu", lambda M, x: _F(M).leaky_relu(x, 0.1), "X"),
    ("elu", lambda M, x: _F(M).elu(x), "X"),
    ("celu", lambda M, x: _F(M).celu(x, 2.0), "X"),
    ("selu", lambda M, x: _F(M).selu(x), "X"),
    ("softshrink", lambda M, x: _F(M).softshrink(x, 0.5), "X"),
    ("hardshrink", lambda M, x: _F(M).hardshrink(x, 0.5), "X"),
    ("abs", lambda M, x: M.abs(x), "X"),
    ("sign", lambda M, x: M.sign(x), "X"),
    ("floor", lambda M, x: M.floor(x), "X"),
    ("round", lambda M, x: M.round(x), "X"),
    ("where", lambda M, x: M.where(_mask(M, x), x, _zeros(M, x)), "X"),
    ("masked_fill", lambda M, x: x.masked_fill(_mask(M, x), 0.0), "X"),
    ("maximum_zero", lambda M, x: M.maximum(x, _zeros(M, x)), "X"),
    ("minimum_zero", lambda M, x: M.minimum(x, _zeros(M, x)), "X"),
    ("maximum", lambda M, x, y: M.maximum(x, y), "XY"),
    ("minimum", lambda M, x, y: M.minimum(x, y), "XY"),
    ("fmax", lambda M, x, y: M.fmax(x, y), "XY"),
    ("fmin", lambda M, x, y: M.fmin(x, y), "XY"),
    ("relu_of_max", lambda M, x, y: _F(M).relu(M.maximum(x, y) - 0.5), "XY"),
]

# torch 2.13's derivatives at the points (made by running torch: see the module docstring); per case: reverse
# gradients for cotangents of ones, inf, NaN (per input), then forward tangents for tangents of ones and inf
# (per input, the others without one)
TORCH = {
    "relu": (
        [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, 0.0, 0.0, I, I, I, 0.0, I, 0.0, I, I, 0.0]],
        [[0.0, 0.0, 0.0, N, N, N, 0.0, N, 0.0, N, N, 0.0]],
        [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, 0.0, 0.0, I, I, I, 0.0, I, 0.0, I, I, 0.0]],
    ),
    "relu6": (
        [[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]],
        [[0.0, 0.0, 0.0, I, I, 0.0, 0.0, I, 0.0, 0.0, I, 0.0]],
        [[0.0, 0.0, 0.0, N, N, 0.0, 0.0, N, 0.0, 0.0, N, 0.0]],
        [[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]],
        [[0.0, 0.0, 0.0, I, I, 0.0, 0.0, I, 0.0, 0.0, I, 0.0]],
    ),
    "hardtanh": (
        [[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]],
        [[0.0, I, I, 0.0, I, 0.0, 0.0, I, I, 0.0, 0.0, 0.0]],
        [[0.0, N, N, 0.0, N, 0.0, 0.0, N, N, 0.0, 0.0, 0.0]],
        [[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]],
        [[0.0, I, I, 0.0, I, 0.0, 0.0, I, I, 0.0, 0.0, 0.0]],
    ),
    "clamp": (
        [[0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]],
        [[0.0, I, I, 0.0, 0.0, 0.0, 0.0, I, I, 0.0, 0.0, 0.0]],
        [[0.0, N, N, 0.0, 0.0, 0.0, 0.0, N, N, 0.0, 0.0, 0.0]],
        [[0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]],
        [[0.0, I, I, 0.0, 0.0, 0.0, 0.0, I, I, 0.0, 0.0, 0.0]],
    ),
    "clamp_min": (
        [[0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, I, I, I, 0.0, I, 0.0, I, 0.0, I, I, 0.0]],
        [[0.0, N, N, N, 0.0, N, 0.0, N, 0.0, N, N, 0.0]],
        [[0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, I, I, I, 0.0, I, 0.0, I, 0.0, I, I, 0.0]],
    ),
    "clamp_max": (
        [[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]],
        [[I, I, I, 0.0, 0.0, 0.0, I, 0.0, I, 0.0, 0.0, I]],
        [[N, N, N, 0.0, 0.0, 0.0, N, 0.0, N, 0.0, 0.0, N]],
        [[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]],
        [[I, I, I, 0.0, 0.0, 0.0, I, 0.0, I, 0.0, 0.0, I]],
    ),
    "hardsigmoid": (
        [
            [
                0.1666666716337204,
                0.1666666716337204,
                0.1666666716337204,
                0.1666666716337204,
                0.0,
                0.0,
                0.0,
                0.1666666716337204,
                0.1666666716337204,
                0.0,
                0.0,
                0.0,
            ]
        ],
        [[I, I, I, I, 0.0, 0.0, 0.0, I, I, 0.0, 0.0, 0.0]],
        [[N, N, N, N, 0.0, 0.0, 0.0, N, N, 0.0, 0.0, 0.0]],
        [
            [
                0.1666666716337204,
                0.1666666716337204,
                0.1666666716337204,
                0.1666666716337204,
                0.0,
                0.0,
                0.0,
                0.1666666716337204,
                0.1666666716337204,
                0.0,
                0.0,
                0.0,
            ]
        ],
        [[I, I, I, I, 0.0, 0.0, 0.0, I, I, 0.0, 0.0, 0.0]],
    ),
    "hardswish": (
        [
            [
                0.16666666666666669,
                0.5,
                0.5,
                0.8333333333333333,
                1.0,
                1.0,
                0.0,
                0.6666666666666666,
                0.33333333333333337,
                1.0,
                1.0,
                0.0,
            ]
        ],
        [[I, I, I, I, I, I, 0.0, I, I, I, I, 0.0]],
        [[N, N, N, N, N, N, 0.0, N, N, N, N, 0.0]],
        [
            [
                0.16666666666666669,
                0.5,
                0.5,
                0.8333333333333333,
                1.0,
                1.0,
                0.0,
                0.6666666666666666,
                0.33333333333333337,
                1.0,
                1.0,
                0.0,
            ]
        ],
        [[I, I, I, I, I, I, 0.0, I, I, I, I, 0.0]],
    ),
    "leaky_relu": (
        [[0.1, 0.1, 0.1, 1.0, 0.1, 1.0, 0.1, 1.0, 0.1, 1.0, 1.0, 0.1]],
        [[I, I, I, I, I, I, I, I, I, I, I, I]],
        [[N, N, N, N, N, N, N, N, N, N, N, N]],
        [[0.1, 0.1, 0.1, 1.0, 0.1, 1.0, 0.1, 1.0, 0.1, 1.0, 1.0, 0.1]],
        [[I, I, I, I, I, I, I, I, I, I, I, I]],
    ),
    "elu": (
        [[0.36787944117144233, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.6065306597126334, 1.0, 1.0, 0.049787068367863944]],
        [[I, I, I, I, I, I, N, I, I, I, I, I]],
        [[N, N, N, N, N, N, N, N, N, N, N, N]],
        [[0.36787944117144233, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.6065306597126334, 1.0, 1.0, 0.049787068367863944]],
        [[I, I, I, I, I, I, N, I, I, I, I, I]],
    ),
    "celu": (
        [[0.6065306597126334, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.7788007830714049, 1.0, 1.0, 0.22313016014842982]],
        [[I, I, I, I, I, I, N, I, I, I, I, I]],
        [[N, N, N, N, N, N, N, N, N, N, N, N]],
        [[0.6065306597126334, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.7788007830714049, 1.0, 1.0, 0.22313016014842982]],
        [[I, I, I, I, I, I, N, I, I, I, I, I]],
    ),
    "selu": (
        [
            [
                0.646768603034814,
                1.7580993408473766,
                1.7580993408473766,
                1.0507009873554805,
                1.0507009873554805,
                1.0507009873554805,
                0.0,
                1.0507009873554805,
                1.0663411530445053,
                1.0507009873554805,
                1.0507009873554805,
                0.08753061208026487,
            ]
        ],
        [[I, I, I, I, I, I, N, I, I, I, I, I]],
        [[N, N, N, N, N, N, N, N, N, N, N, N]],
        [
            [
                0.646768603034814,
                1.7580993408473766,
                1.7580993408473766,
                1.0507009873554805,
                1.0507009873554805,
                1.0507009873554805,
                0.0,
                1.0507009873554805,
                1.0663411530445053,
                1.0507009873554805,
                1.0507009873554805,
                0.08753061208026487,
            ]
        ],
        [[I, I, I, I, I, I, N, I, I, I, I, I]],
    ),
    "softshrink": (
        [[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]],
        [[I, 0.0, 0.0, I, I, I, I, 0.0, 0.0, I, I, I]],
        [[N, 0.0, 0.0, N, N, N, N, 0.0, 0.0, N, N, N]],
        [[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]],
        [[I, 0.0, 0.0, I, I, I, I, 0.0, 0.0, I, I, I]],
    ),
    "hardshrink": (
        [[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]],
        [[I, 0.0, 0.0, I, I, I, I, 0.0, 0.0, I, I, I]],
        [[N, 0.0, 0.0, N, N, N, N, 0.0, 0.0, N, N, N]],
        [[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]],
        [[I, 0.0, 0.0, I, I, I, I, 0.0, 0.0, I, I, I]],
    ),
    "abs": (
        [[-1.0, 0.0, 0.0, 1.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0]],
        [[-I, N, N, I, N, I, -I, I, -I, I, I, -I]],
        [[N, N, N, N, N, N, N, N, N, N, N, N]],
        [[-1.0, 0.0, 0.0, 1.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0]],
        [[-I, N, N, I, N, I, -I, I, -I, I, I, -I]],
    ),
    "sign": (
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
    ),
    "floor": (
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
    ),
    "round": (
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
    ),
    "where": (
        [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, 0.0, 0.0, I, I, I, 0.0, I, 0.0, I, I, 0.0]],
        [[0.0, 0.0, 0.0, N, N, N, 0.0, N, 0.0, N, N, 0.0]],
        [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, 0.0, 0.0, I, I, I, 0.0, I, 0.0, I, I, 0.0]],
    ),
    "masked_fill": (
        [[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]],
        [[I, I, I, 0.0, 0.0, 0.0, I, 0.0, I, 0.0, 0.0, I]],
        [[N, N, N, 0.0, 0.0, 0.0, N, 0.0, N, 0.0, 0.0, N]],
        [[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]],
        [[I, I, I, 0.0, 0.0, 0.0, I, 0.0, I, 0.0, 0.0, I]],
    ),
    "maximum_zero": (
        [[0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[0.0, I, I, I, I, I, 0.0, I, 0.0, I, I, 0.0]],
        [[0.0, N, N, N, N, N, 0.0, N, 0.0, N, N, 0.0]],
        [[0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]],
        [[N, I, I, I, N, I, N, I, N, I, I, N]],
    ),
    "minimum_zero": (
        [[1.0, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]],
        [[I, I, I, 0.0, I, 0.0, I, 0.0, I, 0.0, 0.0, I]],
        [[N, N, N, 0.0, N, 0.0, N, 0.0, N, 0.0, 0.0, N]],
        [[1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]],
        [[I, I, I, N, N, N, I, N, I, N, N, I]],
    ),
    "maximum": (
        [
            [0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.0, 0.5, 1.0],
            [1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0],
        ],
        [[0.0, I, I, 0.0, I, I, I, I, I, 0.0, I, I], [I, I, I, I, I, I, I, I, 0.0, I, I, 0.0]],
        [[0.0, N, N, 0.0, N, N, N, N, N, 0.0, N, N], [N, N, N, N, N, N, N, N, 0.0, N, N, 0.0]],
        [
            [0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0],
            [1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0],
        ],
        [[N, I, I, N, N, N, N, I, I, N, I, I], [N, N, N, N, N, N, N, N, N, N, N, N]],
    ),
    "minimum": (
        [
            [1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0],
            [0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.0, 0.5, 1.0],
        ],
        [[I, I, I, I, I, I, I, I, 0.0, I, I, 0.0], [0.0, I, I, 0.0, I, I, I, I, I, 0.0, I, I]],
        [[N, N, N, N, N, N, N, N, 0.0, N, N, 0.0], [0.0, N, N, 0.0, N, N, N, N, N, 0.0, N, N]],
        [
            [1.0, 0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 1.0, 0.5, 0.0],
            [0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.0, 0.5, 1.0],
        ],
        [[I, I, I, I, N, N, N, I, N, I, I, N], [N, N, N, N, N, N, N, N, N, N, N, N]],
    ),
    "fmax": (
        [
            [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
            [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        ],
        [[0.0, I, I, 0.0, 0.0, I, I, I, I, 0.0, I, I], [I, 0.0, 0.0, I, I, 0.0, 0.0, 0.0, 0.0, I, 0.0, 0.0]],
        [[0.0, N, N, 0.0, 0.0, N, N, N, N, 0.0, N, N], [N, 0.0, 0.0, N, N, 0.0, 0.0, 0.0, 0.0, N, 0.0, 0.0]],
        [
            [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
            [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0],
        ],
        [[N, N, N, N, N, I, I, N, I, N, N, I], [N, N, N, N, N, N, N, N, N, N, N, N]],
    ),
    "fmin": (
        [
            [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        ],
        [[I, I, I, I, 0.0, I, I, I, 0.0, I, I, 0.0], [0.0, 0.0, 0.0, 0.0, I, 0.0, 0.0, 0.0, I, 0.0, 0.0, I]],
        [[N, N, N, N, 0.0, N, N, N, 0.0, N, N, 0.0], [0.0, 0.0, 0.0, 0.0, N, 0.0, 0.0, 0.0, N, 0.0, 0.0, N]],
        [
            [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        ],
        [[I, I, I, I, N, I, I, I, N, I, I, N], [N, N, N, N, N, N, N, N, N, N, N, N]],
    ),
    "relu_of_max": (
        [
            [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.0],
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.0],
        ],
        [[0.0, 0.0, 0.0, 0.0, I, I, I, 0.0, 0.0, 0.0, I, 0.0], [0.0, 0.0, 0.0, I, I, I, I, 0.0, 0.0, I, I, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, N, N, N, 0.0, 0.0, 0.0, N, 0.0], [0.0, 0.0, 0.0, N, N, N, N, 0.0, 0.0, N, N, 0.0]],
        [
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0],
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.0],
        ],
        [[0.0, 0.0, 0.0, N, N, N, N, 0.0, 0.0, N, I, 0.0], [0.0, 0.0, 0.0, N, N, N, N, 0.0, 0.0, N, N, 0.0]],
    ),
}

# torch's forward rule of fmax / fmin gives a tie to the other operand (fmax) and multiplies (an inf tangent on
# the side not chosen gives NaN); ad's tangent follows its gradient there (README, deliberate differences)
FORWARD_FOLLOWS_GRADIENT = {"fmax", "fmin"}

IDS = [c[0] for c in CASES]
BY_ID = {c[0]: c for c in CASES}
COTANGENTS = (1.0, INF, NAN)
TANGENTS = (1.0, INF)


def _arrays(name, tile=1):
    return [np.tile(np.array(X if i == "X" else Y), tile) for i in BY_ID[name][2]]


def _expected_reverse(name, k, tile=1):
    return [np.tile(np.array(e), tile) for e in TORCH[name][k]]


def _expected_forward(name, k, tile=1):
    return [np.tile(np.array(e), tile) for e in TORCH[name][3 + k]]


def _same(actual, expected, what):
    # (rtol: torch's hardsigmoid slope is 1/6 rounded to float32 even in float64)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-7, atol=0.0, equal_nan=True, err_msg=what)


def _grads(name, c, tile=1, create_graph=False):
    fn = BY_ID[name][1]
    xs = [ad.tensor(a, requires_grad=True) for a in _arrays(name, tile)]
    out = fn(ad, *xs)
    gs = ad.autograd.grad(out, xs, ad.full(out.shape, c), create_graph=create_graph)
    return [g.detach().numpy() for g in gs]


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("path", ["kernel", "big_rows", "rules"])
def test_reverse_selects_as_torch(name, path):
    tile = 1400 if path == "big_rows" else 1  # 16,800 elements: beyond tape.BIG_ROW
    for k, c in enumerate(COTANGENTS):
        got = _grads(name, c, tile, create_graph=path == "rules")
        for j, (g, e) in enumerate(zip(got, _expected_reverse(name, k, tile))):
            _same(g, e, f"{name} ({path}), cotangent {c}, input {j}")


@pytest.mark.parametrize("name", IDS)
def test_batched_cotangents_select_as_torch(name):
    fn = BY_ID[name][1]
    xs = [ad.tensor(a, requires_grad=True) for a in _arrays(name)]
    out = fn(ad, *xs)
    seeds = ad.tensor(np.stack([np.full(out.shape, c) for c in COTANGENTS]))
    for create_graph in (False, True):
        gs = ad.autograd.grad(out, xs, seeds, retain_graph=True, create_graph=create_graph, is_grads_batched=True)
        for j, g in enumerate(gs):
            for k, c in enumerate(COTANGENTS):
                _same(g[k].detach().numpy(), _expected_reverse(name, k)[j], f"{name} batched, cotangent {c}, input {j}")


def _tangent(name, j, c, requires_grad, batched=False):
    fn = BY_ID[name][1]
    xs = [ad.tensor(a, requires_grad=requires_grad) for a in _arrays(name)]
    with fwAD.dual_level():
        if batched:
            t = ad.tensor(np.stack([np.full(xs[j].shape, v) for v in TANGENTS]))
            xs[j] = fwAD.make_dual(xs[j], t, is_batched=True)
        else:
            xs[j] = fwAD.make_dual(xs[j], ad.full(xs[j].shape, c))
        return fwAD.unpack_dual(fn(ad, *xs)).tangent.detach().numpy().copy()


@pytest.mark.parametrize("name", [n for n in IDS if n not in FORWARD_FOLLOWS_GRADIENT])
@pytest.mark.parametrize("path", ["compiled", "rules", "batched"])
def test_forward_as_torch(name, path):
    for j in range(len(BY_ID[name][2])):
        if path == "batched":
            got = _tangent(name, j, None, False, batched=True)
            for k, c in enumerate(TANGENTS):
                _same(got[k], _expected_forward(name, k)[j], f"{name} batched tangents, tangent {c}, input {j}")
            continue
        for k, c in enumerate(TANGENTS):
            got = _tangent(name, j, c, path == "rules")
            _same(got, _expected_forward(name, k)[j], f"{name} ({path}), tangent {c}, input {j}")


@pytest.mark.parametrize("name", sorted(FORWARD_FOLLOWS_GRADIENT))
def test_forward_of_fmax_fmin_follows_the_gradient(name):
    """The listed difference: ad's tangent of fmax / fmin is the gradient's selection (torch's forward rule
    differs at ties and multiplies)."""
    for j in range(2):
        for k, c in enumerate(TANGENTS):
            for requires_grad in (False, True):
                _same(_tangent(name, j, c, requires_grad), _expected_reverse(name, k)[j], f"{name}, input {j}, {c}")


@pytest.mark.parametrize("name", ["relu", "clamp", "maximum", "relu_of_max", "sign"])
@pytest.mark.parametrize("backward_inside", [True, False], ids=["step", "loss"])
def test_compiled_step_selects_as_torch(name, backward_inside, monkeypatch):
    """``ad.compile`` replay of a step that calls backward() inside, and of one that returns the loss: both
    small steps run the fused forward-and-backward kernel (``kernels/fused_step.py``)."""
    import kernels.fused_step

    fused_calls = []
    fused = kernels.fused_step.forward_backward
    monkeypatch.setattr(kernels.fused_step, "forward_backward", lambda *a: fused_calls.append(1) or fused(*a))
    fn = BY_ID[name][1]

    def step(w, *xs):
        loss = (fn(ad, *xs) * w).sum()
        if backward_inside:
            loss.backward()
        return loss

    cf = ad.compile(step)
    for _ in range(3):  # record, then replays
        for k, c in enumerate(COTANGENTS):
            xs = [ad.tensor(a, requires_grad=True) for a in _arrays(name)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                loss = cf(ad.full((len(X),), c), *xs)
                if not backward_inside:
                    loss.backward()
            for j, x in enumerate(xs):
                _same(x.grad.numpy(), _expected_reverse(name, k)[j], f"{name} compiled, cotangent {c}, input {j}")
    ((entry,),) = [cf.cache.values()]
    assert entry.eager is None  # (replayed, not run eagerly)
    assert fused_calls


@pytest.mark.parametrize("name", ["relu", "clamp", "maximum", "minimum", "sign", "relu_of_max"])
def test_second_order_of_selection_is_zero_under_inf_cotangent(name):
    """d/dx of ``grad(sum(w * f(x)))`` with an inf ``w``: 0 (torch's masks have no derivative), by forward over
    reverse (the compiled tangent sweep) and reverse over reverse; the gradient itself as torch's."""
    fn = BY_ID[name][1]
    arrays = _arrays(name)
    expected = _expected_reverse(name, 1)
    w = ad.full((len(X),), INF)
    with fwAD.dual_level():
        xs = [fwAD.make_dual(ad.tensor(a, requires_grad=True), ad.ones(len(X))) for a in arrays]
        gs = ad.autograd.grad((fn(ad, *xs) * w).sum(), xs, create_graph=True)
        for j, g in enumerate(gs):
            primal, tangent = fwAD.unpack_dual(g)
            _same(primal.detach().numpy(), expected[j], f"{name}: gradient {j} under a tangent")
            _same(0.0 if tangent is None else tangent.detach().numpy(), np.zeros(len(X)), f"{name}: its tangent")
    xs = [ad.tensor(a, requires_grad=True) for a in arrays]
    gs = ad.autograd.grad((fn(ad, *xs) * w).sum(), xs, create_graph=True)
    for j, g in enumerate(gs):
        _same(g.detach().numpy(), expected[j], f"{name}: gradient {j}")
        if g.requires_grad:
            hs = ad.autograd.grad(g.sum(), xs, allow_unused=True, materialize_grads=True)
            for k, h in enumerate(hs):
                _same(h.numpy(), np.zeros(len(X)), f"{name}: d/d input {k} of gradient {j}")


def test_float32_kernel_sweep_selects():
    x = ad.tensor(np.array(X, np.float32), requires_grad=True)
    (g,) = ad.autograd.grad(ad.relu(x), x, ad.full((len(X),), INF, dtype=ad.float32))
    assert g.dtype == ad.float32
    _same(g.numpy(), np.array(TORCH["relu"][1][0], np.float32), "relu float32")


# amax / amin over rows (a tie of two, a NaN group, a tie of three), as torch 2.13: a tangent inf on the members
# that are not the extreme adds nothing (torch's forward rule selects); the reverse rule is the cotangent over the
# number of members equal to the result times their 0/1 mask, so a cotangent inf or NaN gives the others NaN and
# a NaN result (no member equal to it) gives its whole group NaN, in both modes (tests/test_parity_gaps19.py)
EXTREME_X = np.array([[1.0, 5.0, 5.0, 2.0], [3.0, NAN, 0.0, -1.0], [7.0, -2.0, 7.0, 7.0]])
EXTREME_T = {
    "amax": np.array([[INF, 1.0, 3.0, INF], [INF, 2.0, INF, INF], [1.0, INF, 2.0, 3.0]]),
    "amin": np.array([[1.0, INF, INF, INF], [INF, 2.0, INF, INF], [INF, 2.0, INF, INF]]),
}


def _extreme_mask(name, x):
    return x == (np.max if name == "amax" else np.min)(x, 1, keepdims=True)


def _extreme_expected(name, tile):
    """The reverse gradient for a cotangent 1 (times c), and the forward tangent for EXTREME_T: the members
    equal to the extreme share them evenly, the others get 0 (0 / 0, NaN, in a NaN group)."""
    x, t = np.tile(EXTREME_X, (1, tile)), np.tile(EXTREME_T[name], (1, tile))
    mask = _extreme_mask(name, x)
    with np.errstate(invalid="ignore"):
        return x, t, mask / mask.sum(1, keepdims=True), np.where(mask, t, 0.0).sum(1) / mask.sum(1)


def _times(share, c):
    with np.errstate(invalid="ignore"):
        return share * c


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("path", ["kernel", "big_rows", "rules", "batched"])
def test_extreme_reverse_selects(name, path):
    x, _, share, _ = _extreme_expected(name, 1400 if path == "big_rows" else 1)  # (16,800: big rows)
    xa = ad.tensor(x, requires_grad=True)
    out = getattr(xa, name)(1)
    if path == "batched":
        seeds = ad.tensor(np.stack([np.full(3, c) for c in COTANGENTS]))
        (g,) = ad.autograd.grad(out, xa, seeds, is_grads_batched=True)
        for k, c in enumerate(COTANGENTS):
            _same(g[k].numpy(), _times(share, c), f"{name} batched, cotangent {c}")
        return
    for c in COTANGENTS:
        (g,) = ad.autograd.grad(out, xa, ad.full((3,), c), retain_graph=True, create_graph=path == "rules")
        _same(g.detach().numpy(), _times(share, c), f"{name} ({path}), cotangent {c}")


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("path", ["compiled", "rules", "batched", "double_backward"])
def test_extreme_tangent_selects(name, path):
    x, t, _, want = _extreme_expected(name, 1)
    if path == "double_backward":  # d/dg of the gradient, applied to t: the reverse rule multiplies by the mask,
        # so t's infs on the members that are not the extreme give NaN (torch 2.13: [nan, nan, nan] too)
        xa, g = ad.tensor(x, requires_grad=True), ad.ones(3, requires_grad=True)
        (gx,) = ad.autograd.grad(getattr(xa, name)(1), xa, g, create_graph=True)
        (got,) = ad.autograd.grad(gx, g, ad.tensor(t))
        with np.errstate(invalid="ignore"):
            _same(got.numpy(), (_extreme_mask(name, x) * t).sum(1) / _extreme_mask(name, x).sum(1), f"{name} ddb")
        return
    with fwAD.dual_level():
        if path == "batched":
            d = fwAD.make_dual(ad.tensor(x), ad.tensor(np.stack([t, 2.0 * t])), is_batched=True)
            got = fwAD.unpack_dual(getattr(d, name)(1)).tangent.numpy()
            _same(got, np.stack([want, 2.0 * want]), f"{name} batched tangents")
            return
        d = fwAD.make_dual(ad.tensor(x, requires_grad=path == "rules"), ad.tensor(t))
        got = fwAD.unpack_dual(getattr(d, name)(1)).tangent.detach().numpy()
    _same(got, want, f"{name} ({path})")


def test_extreme_tangent_is_torchs():
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as tfw

    for name in ("amax", "amin"):
        x, t, _, want = _extreme_expected(name, 1)
        with tfw.dual_level():
            d = tfw.make_dual(torch.tensor(x), torch.tensor(t))
            got = tfw.unpack_dual(getattr(d, name)(1)).tangent.numpy()
        rows = [0, 2]  # (the NaN group: torch's amax gives NaN to every member, README)
        _same(got[rows], want[rows], f"torch {name}")


def test_threshold_at_nan_passes_as_torchs():
    """torch's threshold compares ``input <= threshold``: NaN is not, so it keeps NaN and the gradient 1 (torch 2.13,
    small and vectorized loops, float32 and float64 alike)."""
    for dtype in (np.float64, np.float32):
        for n in (3, 40):
            xs = np.resize([NAN, 1.0, 0.0, 0.5], n).astype(dtype)
            x = ad.tensor(xs, requires_grad=True)
            out = ad.nn.functional.threshold(x, 0.5, -2.0)
            _same(out.detach().numpy(), np.where(xs <= 0.5, -2.0, xs), "threshold value")
            (g,) = ad.autograd.grad(out, x, ad.full((n,), INF, dtype=x.dtype))
            _same(g.numpy(), np.where(xs <= 0.5, 0.0, INF), "threshold gradient")
            with fwAD.dual_level():
                d = fwAD.make_dual(ad.tensor(xs), ad.full((n,), INF, dtype=x.dtype))
                t = fwAD.unpack_dual(ad.nn.functional.threshold(d, 0.5, -2.0)).tangent.numpy()
            _same(t, np.where(xs <= 0.5, 0.0, INF), "threshold tangent")


def torch_reference(torch, name):
    """``TORCH[name]`` computed by torch, one element at a time: torch's scalar loops, which are what its small
    tensors and the tails of its vectorized loops run (its vectorized loops, over 8 or more float64 elements,
    give some of these ops other derivatives at NaN: 0 for hardtanh, relu6 and the shrinks, NaN for elu)."""
    import torch.autograd.forward_ad as tfw

    fn, inputs = BY_ID[name][1], BY_ID[name][2]
    columns = [np.array(X if i == "X" else Y) for i in inputs]
    rows = [[np.zeros(len(X)) for _ in inputs] for _ in COTANGENTS + TANGENTS]
    for e in range(len(X)):
        arrays = [torch.tensor(c[e : e + 1]) for c in columns]
        for k, c in enumerate(COTANGENTS):
            xs = [a.clone().requires_grad_() for a in arrays]
            out = fn(torch, *xs)
            for j, g in enumerate(torch.autograd.grad(out, xs, torch.full_like(out, c))):
                rows[k][j][e] = g.item()
        for k, c in enumerate(TANGENTS):
            for j in range(len(arrays)):
                with tfw.dual_level():
                    xs = [a.clone() for a in arrays]
                    xs[j] = tfw.make_dual(xs[j], torch.full_like(xs[j], c))
                    rows[3 + k][j][e] = tfw.unpack_dual(fn(torch, *xs)).tangent.item()
    return rows


def test_table_is_torchs():
    torch = pytest.importorskip("torch")
    for name in IDS:
        for k, per_input in enumerate(torch_reference(torch, name)):
            for j, want in enumerate(per_input):
                _same(want, np.array(TORCH[name][k][j]), f"torch {name}, row {k}, input {j}")
