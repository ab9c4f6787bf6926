"""Second order (issue 12): the compiled forward-over-reverse sweep (``ad/second_order.py``) and its per-row
second derivatives (``kernels/second_order.py``).

- ``test_hvp_paths_agree``: every op-table case, a Hessian-vector product three ways: forward over reverse
  (the compiled sweep where it applies), double backward (``create_graph=True``), and central differences of the
  gradient along ``v``; and the compiled sweep against the differentiable one it replaces (forced fallback).
- ``test_compiled_sweep_covers``: the compiled sweep really runs for the elementwise, matmul, linear and
  reduction cases (so the comparisons above are not all of the fallback against itself).
- ``test_second_derivatives_match_finite_differences``: ``unary_second`` / ``binary_second`` against central
  differences of the first partials of ``kernels/pointwise.py``, per opcode, in Python.
- W4 and W7-like graphs: the HVP of sum(tanh(A x)) with a big A (the Python big rows) against the analytic
  Hessian; the second derivative of a scalar iteration against the analytic recursion.
"""

import math

import numpy as np
import pytest
from test_op_table import ALL_CASES, _case, _inputs, _scalarize

import ad
import ad.autograd.forward_ad as fwAD
import ad.double_backward as db
import ad.second_order as so
from kernels import opcodes as K
from kernels import pointwise, pointwise_values
from kernels.second_order import SECOND_ORDER, binary_second, unary_second

EPS = 1e-5


class _Spy:
    """Counts the compiled sweeps that ran to the end (``_sweep`` returned) while installed."""

    def __init__(self, monkeypatch):
        self.ran = 0
        real = so._sweep

        def counting(*args):
            result = real(*args)
            self.ran += 1
            return result

        monkeypatch.setattr(so, "_sweep", counting)


def _fwd_over_rev(fn, xs, vs):
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach(), ad.tensor(v)) for x, v in zip(xs, vs)]
        for d in duals:
            d.requires_grad_()  # (make_dual of a detached tensor: a leaf that carries the tangent)
        grads = ad.autograd.grad(_scalarize(fn(*duals)), duals, allow_unused=True, materialize_grads=True)
        return [
            np.zeros(x.shape) if fwAD.unpack_dual(g).tangent is None else fwAD.unpack_dual(g).tangent.numpy()
            for g, x in zip(grads, xs)
        ]


def _double_backward(fn, xs, vs):
    grads = ad.autograd.grad(_scalarize(fn(*xs)), xs, create_graph=True)
    dot = sum((g * ad.tensor(v)).sum() for g, v in zip(grads, vs) if g.requires_grad)
    if not isinstance(dot, ad.Tensor):
        return [np.zeros(x.shape) for x in xs]
    return [h.numpy() for h in ad.autograd.grad(dot, xs, allow_unused=True, materialize_grads=True)]


def _fd_hvp(fn, xs, vs):
    def grad_at(sign):
        moved = [ad.tensor(x.detach().numpy() + sign * EPS * v, requires_grad=True) for x, v in zip(xs, vs)]
        return [
            g.numpy()
            for g in ad.autograd.grad(_scalarize(fn(*moved)), moved, allow_unused=True, materialize_grads=True)
        ]

    return [(p - m) / (2 * EPS) for p, m in zip(grad_at(1.0), grad_at(-1.0))]


def _case_inputs(name):
    fn, shapes, tol = _case(name)
    xs = _inputs(name, shapes, seed=7)
    rng = np.random.default_rng(8)
    vs = [rng.standard_normal(x.shape) for x in xs]
    return fn, xs, vs, tol


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_hvp_paths_agree(name, monkeypatch):
    fn, xs, vs, tol = _case_inputs(name)
    try:
        compiled = _fwd_over_rev(fn, xs, vs)
    except NotImplementedError:
        pytest.skip("forward over reverse is refused for this op (ad's Python-swept primitives)")
    double = _double_backward(fn, xs, vs)
    fd = _fd_hvp(fn, xs, vs)
    monkeypatch.setattr(so, "tangent_sweep", lambda *args: None)
    general = _fwd_over_rev(fn, xs, vs)
    loose = max(tol["rtol"], 1e-4)
    for c, d, f, g in zip(compiled, double, fd, general):
        np.testing.assert_allclose(c, g, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(c, d, rtol=1e-8, atol=1e-8)
        scale = max(1.0, float(np.max(np.abs(f))) if f.size else 1.0)
        np.testing.assert_allclose(c, f, rtol=loose, atol=max(tol["atol"], 1e-5) * scale * 10)


COVERED = [
    name
    for name in (
        "tanh",
        "sin",
        "cos",
        "exp",
        "log",
        "sigmoid",
        "sqrt",
        "rsqrt",
        "erf",
        "square",
        "pow_scalar",
        "rpow_scalar",
        "rdiv_scalar",
        "affine",
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "matmul_vec",
        "matmul_batched",
        "dot",
        "nn_linear",
        "linear_batched",
        "atan2",
        "hypot",
        "logaddexp",
        "xlogy",
        "sinh",
        "asinh",
        "atanh",
        "erfinv",
        "logit",
        "sinc",
        "sum",
        "mean",
    )
    if name in ALL_CASES
]


@pytest.mark.parametrize("name", COVERED)
def test_compiled_sweep_covers(name, monkeypatch):
    fn, xs, vs, _ = _case_inputs(name)
    spy = _Spy(monkeypatch)
    _fwd_over_rev(fn, xs, vs)
    assert spy.ran == 1, f"{name}: the compiled forward-over-reverse sweep did not run"


# --- the second partials, per opcode, against differences of the first --------------------------------------

UNARY_POINTS = {  # opcode -> (x, a0, a1): inside the op's domain
    K.POW_SCALAR: (1.3, 2.5, 0.0),
    K.RPOW_SCALAR: (0.7, 2.0, 0.0),
    K.RDIV_SCALAR: (0.8, 3.0, 0.0),
    K.AFFINE: (0.4, 2.5, 1.0),
    K.CLAMP: (0.3, -1.0, 1.0),
    K.LOGIT: (0.3, math.nan, 0.0),
    K.ACOSH: (1.7, 0.0, 0.0),
    K.GELU: (-0.6, 1.0, 0.0),  # the tanh form (the erf form: tests/test_activation_rows.py)
    K.ELU: (-0.6, 1.3, 1.05),
    K.CELU: (-0.6, 0.8, 0.0),
}


def _unary_value(code, x, a0, a1):
    fns = {
        K.COPY: lambda v: v,
        K.NEG: lambda v: -v,
        K.ABS: abs,
        K.EXP: math.exp,
        K.LOG: math.log,
        K.LOG1P: math.log1p,
        K.EXPM1: math.expm1,
        K.SQRT: math.sqrt,
        K.RSQRT: lambda v: 1 / math.sqrt(v),
        K.SIN: math.sin,
        K.COS: math.cos,
        K.TAN: math.tan,
        K.TANH: math.tanh,
        K.SIGMOID: lambda v: 1 / (1 + math.exp(-v)),
        K.RELU: lambda v: max(v, 0.0),
        K.ERF: math.erf,
        K.CLAMP: lambda v: min(max(v, a0), a1),
        K.POW_SCALAR: lambda v: v**a0,
        K.RPOW_SCALAR: lambda v: a0**v,
        K.AFFINE: lambda v: a0 * v + a1,
        K.RDIV_SCALAR: lambda v: a0 / v,
        K.SQUARE: lambda v: v * v,
        K.ATAN: math.atan,
        K.ASIN: math.asin,
        K.ACOS: math.acos,
        K.SINH: math.sinh,
        K.COSH: math.cosh,
        K.ASINH: math.asinh,
        K.ACOSH: math.acosh,
        K.ATANH: math.atanh,
        K.LOG2: math.log2,
        K.LOG10: math.log10,
        K.EXP2: lambda v: 2.0**v,
        K.ERFC: math.erfc,
        K.ERFINV: pointwise.erfinv,
        K.LOGIT: lambda v: math.log(v / (1 - v)),
        K.SINC: lambda v: math.sin(math.pi * v) / (math.pi * v),
        K.STEP_FN: math.floor,
        K.SILU: lambda v: v / (1 + math.exp(-v)),
        K.GELU: lambda v: pointwise_values.gelu_value(v, a0),
        K.MISH: lambda v: v * math.tanh(math.log1p(math.exp(v))),
        K.ELU: lambda v: pointwise_values.elu_value(v, a0, a1, 1.0),
        K.CELU: lambda v: pointwise_values.elu_value(v, a0, 1.0, 1.0 / a0),
    }
    return fns[code](x)


UNARY_CODES = list(K.UNARY_CODES)


@pytest.mark.parametrize("code", UNARY_CODES)
def test_unary_second_matches_finite_differences(code):
    assert SECOND_ORDER[code]
    x, a0, a1 = UNARY_POINTS.get(code, (0.37, 0.0, 0.0))
    h = 1e-6

    def first(v):
        return pointwise.unary_partial(code, v, _unary_value(code, v, a0, a1), a0, a1)

    expected = (first(x + h) - first(x - h)) / (2 * h)
    got = unary_second(code, x, _unary_value(code, x, a0, a1), a0, a1)
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


BINARY_VALUES = {
    K.ADD: lambda x, y: x + y,
    K.SUB: lambda x, y: x - y,
    K.MUL: lambda x, y: x * y,
    K.DIV: lambda x, y: x / y,
    K.POW: lambda x, y: x**y,
    K.MAXIMUM: max,
    K.MINIMUM: min,
    K.TANH_BACKWARD: lambda x, y: x * (1 - y * y),
    K.ATAN2: math.atan2,
    K.HYPOT: math.hypot,
    K.FMOD: math.fmod,
    K.REMAINDER: lambda x, y: x - math.floor(x / y) * y,
    K.COPYSIGN: math.copysign,
    K.LOGADDEXP: lambda x, y: math.log(math.exp(x) + math.exp(y)),
    K.XLOGY: lambda x, y: x * math.log(y),
    K.BCE_LOGITS: lambda x, t: (1.0 - t) * x + math.log1p(math.exp(-x)),
}


@pytest.mark.parametrize("code", sorted(BINARY_VALUES))
def test_binary_second_matches_finite_differences(code):
    assert sorted(BINARY_VALUES) == list(range(K.BINARY_FIRST, K.BINARY_LAST + 1))
    x, y, h = 0.7, 1.3, 1e-6
    value = BINARY_VALUES[code]

    def partials(u, w):
        out = value(u, w)
        return pointwise.binary_partial_x(code, u, w, out), pointwise.binary_partial_y(code, u, w, out)

    dx_p, dy_p = partials(x + h, y)
    dx_m, dy_m = partials(x - h, y)
    dx_q, dy_q = partials(x, y + h)
    dx_n, dy_n = partials(x, y - h)
    expected = ((dx_p - dx_m) / (2 * h), (dx_q - dx_n) / (2 * h), (dy_p - dy_m) / (2 * h), (dy_q - dy_n) / (2 * h))
    got = binary_second(code, x, y, value(x, y))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


# --- W4 and W7-like graphs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector_first", [False, True])
def test_w4_hvp_with_a_big_matrix_matches_the_analytic_hessian(vector_first, monkeypatch):
    """f(x) = sum(tanh(A x)) (or sum(tanh(x A^T)): the vector on the left), A 160 x 160 (over tape.BIG_ROW
    elements: the matmul is a Python big row, and its cotangent one np.dot): H = A^T diag(-2 t (1 - t^2)) A
    with t = tanh(A x); forward over reverse and double backward (whose second sweep runs both big rows with
    only the vector requiring grad)."""
    rng = np.random.default_rng(3)
    n = 160
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    x0 = rng.standard_normal(n)
    v = rng.standard_normal(n)
    A = ad.tensor(a.T.copy()) if vector_first else ad.tensor(a)
    x = ad.tensor(x0, requires_grad=True)

    def f(x):
        return ad.tanh(x @ A if vector_first else A @ x).sum()

    spy = _Spy(monkeypatch)
    t = np.tanh(a @ x0)
    expected_g = a.T @ (1 - t * t)
    kept = []
    # three calls with the same tape layout, each result kept: the later sweeps reuse the pooled buffer of
    # the earlier ones (and their cached big-region arrays), which must not alter the gradients handed out
    for direction in (v, -2.0 * v, rng.standard_normal(n)):
        with fwAD.dual_level():
            xd = fwAD.make_dual(x, ad.tensor(direction))
            (g,) = ad.autograd.grad(f(xd), xd)
            primal, hv = fwAD.unpack_dual(g)
        kept.append((primal, hv, a.T @ (-2 * t * (1 - t * t) * (a @ direction))))
    assert spy.ran == 3
    for primal, hv, expected in kept:
        np.testing.assert_allclose(primal.numpy(), expected_g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hv.numpy(), expected, rtol=1e-10, atol=1e-12)
    expected_hv = kept[0][2]
    (g2,) = ad.autograd.grad(f(x), x, create_graph=True)
    (hv2,) = ad.autograd.grad((g2 * ad.tensor(v)).sum(), x)
    np.testing.assert_allclose(g2.detach().numpy(), expected_g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hv2.numpy(), expected_hv, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [40, 160])
def test_sweeps_over_a_recycled_buffer_full_of_garbage(n):
    """The sweeps take their arenas from the pool and clear only the parts outside the big regions (one byte
    range per gap, the flags' head merged with the last arena's tail): with every pooled buffer filled with
    NaN before each call, the gradient (kernel sweep), the HVP by double backward and by forward over reverse
    (three arenas side by side) still match the analytic values of sum(tanh(A x)), with A small (n = 40: no
    big region) or big (n = 160: A over tape.BIG_ROW elements)."""
    from ad.tape import POOL

    rng = np.random.default_rng(11)
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    x0, v = rng.standard_normal((2, n))
    A, x, vt = ad.tensor(a), ad.tensor(x0, requires_grad=True), ad.tensor(v)
    t = np.tanh(a @ x0)
    expected_g = a.T @ (1 - t * t)
    expected_hv = a.T @ (-2 * t * (1 - t * t) * (a @ v))

    def spoil():
        for buf in POOL.buffers:
            buf.view(np.uint8)[:] = 0xFF  # (NaN in every float, 255 in every flag)

    for _ in range(3):  # (the later calls find the earlier calls' buffers in the pool)
        spoil()
        (g,) = ad.autograd.grad(ad.tanh(A @ x).sum(), x)
        np.testing.assert_allclose(g.numpy(), expected_g, rtol=1e-12, atol=1e-12)
        spoil()
        (g1,) = ad.autograd.grad(ad.tanh(A @ x).sum(), x, create_graph=True)
        spoil()
        (hv,) = ad.autograd.grad((g1 * vt).sum(), x)
        np.testing.assert_allclose(hv.numpy(), expected_hv, rtol=1e-10, atol=1e-12)
        spoil()
        with fwAD.dual_level():
            xd = fwAD.make_dual(x, vt)
            (g2,) = ad.autograd.grad(ad.tanh(A @ xd).sum(), xd)
            primal, tangent = fwAD.unpack_dual(g2)
        np.testing.assert_allclose(primal.detach().numpy(), expected_g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tangent.numpy(), expected_hv, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("vector_first", [False, True])
def test_big_matvec_with_a_constant_matrix_that_carries_a_tangent(vector_first, monkeypatch):
    """A 130 x 130 matrix that does not require grad but carries a tangent, times a vector that does: the
    compiled sweep's matrix-vector big row adds the gradient through the matrix's tangent (``g @ tA``, or
    ``tA @ g`` with the vector on the left), as the differentiable sweep does."""
    rng = np.random.default_rng(5)
    a, ta = rng.standard_normal((2, 130, 130)) / 12
    x0, v = rng.standard_normal((2, 130))

    def hvp():
        with fwAD.dual_level():
            xd = fwAD.make_dual(ad.tensor(x0, requires_grad=True), ad.tensor(v))
            A = fwAD.make_dual(ad.tensor(a), ad.tensor(ta))
            (g,) = ad.autograd.grad(ad.tanh(xd @ A if vector_first else A @ xd).sum(), xd)
            primal, tangent = fwAD.unpack_dual(g)
            return primal.detach().numpy(), tangent.numpy()

    spy = _Spy(monkeypatch)
    compiled = hvp()
    assert spy.ran == 1
    monkeypatch.setattr(so, "tangent_sweep", lambda *args: None)
    general = hvp()
    for c, g in zip(compiled, general):
        np.testing.assert_allclose(c, g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("small_first", [False, True])
def test_big_matvec_whose_vector_also_feeds_a_small_row(small_first, monkeypatch):
    """The vector of a big matrix-vector row also feeds an elementwise row, recorded before the matmul (its
    region is first written by the big row) or after it (already live when the big row adds): the compiled
    sweep stores into or adds to the vector's cotangent and tangent regions as the differentiable sweep does,
    and both match the analytic Hessian-vector product, over repeated calls that reuse the pooled buffer."""
    rng = np.random.default_rng(8)
    n = 140
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    x0 = rng.standard_normal(n)
    A = ad.tensor(a)

    def f(x):
        if small_first:
            s = ad.sin(x).sum()
            return s + ad.tanh(A @ x).sum()
        return ad.tanh(A @ x).sum() + ad.sin(x).sum()

    def hvp(v):
        with fwAD.dual_level():
            xd = fwAD.make_dual(ad.tensor(x0, requires_grad=True), ad.tensor(v))
            (g,) = ad.autograd.grad(f(xd), xd)
            primal, tangent = fwAD.unpack_dual(g)
            return primal.detach().numpy(), tangent.numpy()

    t = np.tanh(a @ x0)
    directions = [rng.standard_normal(n) for _ in range(3)]
    spy = _Spy(monkeypatch)
    compiled = [hvp(v) for v in directions]
    assert spy.ran == 3
    monkeypatch.setattr(so, "tangent_sweep", lambda *args: None)
    general = [hvp(v) for v in directions]
    for v, c, g in zip(directions, compiled, general):
        expected_g = a.T @ (1 - t * t) + np.cos(x0)
        expected_hv = a.T @ (-2 * t * (1 - t * t) * (a @ v)) - np.sin(x0) * v
        np.testing.assert_allclose(c[0], expected_g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c[1], expected_hv, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c[1], g[1], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c[0], g[0], rtol=1e-12, atol=1e-12)


def test_w7_like_iteration_second_derivative_matches_the_recursion(monkeypatch):
    """x_{k+1} = x_k - 0.1 sin(x_k) x_k: d/dx0 and d2/dx0^2 by the chain rule's recursion in numpy."""
    x0 = 0.7
    steps = 60
    x, d1, d2 = x0, 1.0, 0.0
    for _ in range(steps):
        fp = 1 - 0.1 * (math.cos(x) * x + math.sin(x))  # f'(x)
        fpp = -0.1 * (2 * math.cos(x) - math.sin(x) * x)  # f''(x)
        x, d1, d2 = x - 0.1 * math.sin(x) * x, fp * d1, fpp * d1 * d1 + fp * d2
    leaf = ad.tensor(x0, requires_grad=True)
    spy = _Spy(monkeypatch)
    with fwAD.dual_level():
        xd = fwAD.make_dual(leaf, ad.tensor(1.0))
        y = xd
        for _ in range(steps):
            y = y - 0.1 * ad.sin(y) * y
        (g,) = ad.autograd.grad(y, xd)
        primal, tangent = fwAD.unpack_dual(g)
    assert spy.ran == 1
    assert float(primal) == pytest.approx(d1, rel=1e-12)
    assert float(tangent) == pytest.approx(d2, rel=1e-10)
    z = ad.tensor(x0, requires_grad=True)
    y = z
    for _ in range(steps):
        y = y - 0.1 * ad.sin(y) * y
    (g,) = ad.autograd.grad(y, z, create_graph=True)
    (h,) = ad.autograd.grad(g, z)
    assert float(h) == pytest.approx(d2, rel=1e-10)


def test_fallback_keeps_hooks_and_answers(monkeypatch):
    """A hook on an intermediate tensor: the graph needs the differentiable sweep (hooks see dual gradients)."""
    spy = _Spy(monkeypatch)
    x = ad.tensor([0.3, -0.2], requires_grad=True)
    seen = []
    with fwAD.dual_level():
        xd = fwAD.make_dual(x, ad.tensor([1.0, 0.0]))
        u = ad.sin(xd)
        u.register_hook(lambda g: seen.append(g) or g * 2.0)
        (g,) = ad.autograd.grad((u * u).sum(), xd)
        primal, tangent = fwAD.unpack_dual(g)
    assert spy.ran == 0 and len(seen) == 1
    xv = np.array([0.3, -0.2])
    np.testing.assert_allclose(primal.numpy(), 2 * 2 * np.sin(xv) * np.cos(xv), rtol=1e-12)
    np.testing.assert_allclose(tangent.numpy(), [2 * 2 * np.cos(2 * 0.3), 0.0], rtol=1e-12, atol=1e-15)


def test_layout_kept_across_calls_keeps_the_answers(monkeypatch):
    """Sweeps of one graph layout reuse its plan, rows and buffer (``second_order._Layout``): repeated HVPs of
    sum(tanh(A x)) (A over tape.BIG_ROW elements) stay exact with the kept buffer spoiled (NaN) between calls;
    the same rows asking for other inputs (also the matrix, a dual leaf), the same rows in float32 and a hook
    added to a node on a later call each get their own answer (the hook: the differentiable sweep)."""
    spy = _Spy(monkeypatch)
    rng = np.random.default_rng(12)
    n = 150
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    x0 = rng.standard_normal(n)
    t = np.tanh(a @ x0)

    def hvp(v, dtype=np.float64, with_matrix=False, hook=None):
        A = ad.tensor(a.astype(dtype), requires_grad=with_matrix)
        with fwAD.dual_level():
            xd = fwAD.make_dual(ad.tensor(x0.astype(dtype), requires_grad=True), ad.tensor(v.astype(dtype)))
            u = A @ xd
            if hook is not None:
                u.register_hook(hook)
            inputs = (xd, A) if with_matrix else (xd,)
            grads = ad.autograd.grad(ad.tanh(u).sum(), inputs)
            return [fwAD.unpack_dual(g) for g in grads]

    def spoil():
        for layout in so._LAYOUTS.values():
            for spare in layout.spares:
                spare[0].view(np.uint8)[:] = 0xFF

    for _ in range(4):
        v = rng.standard_normal(n)
        spoil()
        ((primal, tangent),) = hvp(v)
        np.testing.assert_allclose(primal.detach().numpy(), a.T @ (1 - t * t), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tangent.numpy(), a.T @ (-2 * t * (1 - t * t) * (a @ v)), rtol=1e-10, atol=1e-12)
    assert spy.ran == 4 and any(layout.spares for layout in so._LAYOUTS.values())
    v = rng.standard_normal(n)
    (_, tx), (ga, ta) = hvp(v, with_matrix=True)  # (A requires grad: another layout, another plan)
    np.testing.assert_allclose(tx.numpy(), a.T @ (-2 * t * (1 - t * t) * (a @ v)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ga.detach().numpy(), np.outer(1 - t * t, x0), rtol=1e-12, atol=1e-12)
    dt = -2 * t * (1 - t * t) * (a @ v)  # (the gradient's tangent along v: outer(1 - t^2, x) differentiated)
    np.testing.assert_allclose(ta.numpy(), np.outer(dt, x0) + np.outer(1 - t * t, v), rtol=1e-10, atol=1e-12)
    ((p32, t32),) = hvp(v, dtype=np.float32)
    assert p32.dtype == ad.float32 and t32.dtype == ad.float32
    np.testing.assert_allclose(t32.numpy(), a.T @ (-2 * t * (1 - t * t) * (a @ v)), rtol=1e-3, atol=1e-4)
    ran = spy.ran
    seen = []
    ((_, th),) = hvp(v, hook=lambda g: seen.append(g) or g * 2.0)
    assert spy.ran == ran and len(seen) == 1  # (the hook: the differentiable sweep, not the kept layout)
    np.testing.assert_allclose(th.numpy(), 2 * a.T @ (-2 * t * (1 - t * t) * (a @ v)), rtol=1e-10, atol=1e-12)
    ((_, again),) = hvp(v)
    np.testing.assert_allclose(again.numpy(), a.T @ (-2 * t * (1 - t * t) * (a @ v)), rtol=1e-10, atol=1e-12)
    # a graph over the size kept: no layout, the buffer back to the pool
    monkeypatch.setattr(so, "_LAYOUT_ROWS", 0)
    so._LAYOUTS.clear()
    for _ in range(2):
        ((_, big),) = hvp(v)
        np.testing.assert_allclose(big.numpy(), a.T @ (-2 * t * (1 - t * t) * (a @ v)), rtol=1e-10, atol=1e-12)
    assert not so._LAYOUTS


# --- double backward as one node (ad/double_backward.py) ----------------------------------------------------


class _FusedSpy:
    """Counts the gradients returned as one ``SweepBackward`` node, and which path its backward took."""

    def __init__(self, monkeypatch, min_nodes=0):
        monkeypatch.setattr(db, "MIN_NODES", min_nodes)
        self.fused = 0
        self.compiled = 0
        real_fused, real_vjp = db.fused_grad, db._compiled_vjp

        def fused(*args):
            result = real_fused(*args)
            self.fused += result is not None
            return result

        def compiled(*args):
            result = real_vjp(*args)
            self.compiled += 1
            return result

        monkeypatch.setattr(db, "fused_grad", fused)
        monkeypatch.setattr(db, "_compiled_vjp", compiled)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_fused_double_backward_matches_the_recorded_one(name, monkeypatch):
    fn, xs, vs, _ = _case_inputs(name)
    recorded = _double_backward(fn, xs, vs)
    _FusedSpy(monkeypatch)
    fused = _double_backward(fn, xs, vs)
    for f, r in zip(fused, recorded):
        np.testing.assert_allclose(f, r, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["tanh", "mul", "div", "pow", "matmul_vec", "nn_linear", "logaddexp"])
def test_fused_double_backward_runs_compiled_and_third_order_falls_back(name, monkeypatch):
    fn, xs, vs, _ = _case_inputs(name)
    grads = ad.autograd.grad(_scalarize(fn(*xs)), xs, create_graph=True)
    dot = sum((g * ad.tensor(v)).sum() for g, v in zip(grads, vs))
    hv = ad.autograd.grad(dot, xs, create_graph=True, allow_unused=True, materialize_grads=True)
    third = ad.autograd.grad(sum((h * h).sum() for h in hv), xs, allow_unused=True, materialize_grads=True)
    spy = _FusedSpy(monkeypatch)
    grads_f = ad.autograd.grad(_scalarize(fn(*xs)), xs, create_graph=True)
    assert spy.fused == 1 and grads_f[0].grad_fn.name() == "SweepBackward"
    dot_f = sum((g * ad.tensor(v)).sum() for g, v in zip(grads_f, vs))
    plain = ad.autograd.grad(dot_f, xs, retain_graph=True, allow_unused=True, materialize_grads=True)
    assert spy.compiled == 1
    # differentiable: the recorded fallback
    hv_f = ad.autograd.grad(dot_f, xs, create_graph=True, allow_unused=True, materialize_grads=True)
    assert spy.compiled == 1
    third_f = ad.autograd.grad(sum((h * h).sum() for h in hv_f), xs, allow_unused=True, materialize_grads=True)
    for a, b, c in zip(plain, hv_f, hv):
        np.testing.assert_allclose(a.numpy(), c.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b.detach().numpy(), c.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(third_f, third):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


def test_w7_double_backward_is_one_node_and_reaches_other_leaves(monkeypatch):
    """grad of grad through 200 steps with a second leaf ``c`` (a parameter): the node's backward gives the
    mixed derivative d/dc (d y / d x) too, against the recorded path."""
    spy = _FusedSpy(monkeypatch, min_nodes=db.MIN_NODES)

    def run():
        x = ad.tensor(0.7, requires_grad=True)
        c = ad.tensor(0.1, requires_grad=True)
        y = x
        for _ in range(200):
            y = y - c * ad.sin(y) * y
        (g,) = ad.autograd.grad(y, x, create_graph=True)
        return g, ad.autograd.grad(g, (x, c))

    g, (hxx, hxc) = run()
    assert spy.fused == 1 and spy.compiled == 1
    monkeypatch.setattr(db, "fused_grad", lambda *args: None)
    g_r, (hxx_r, hxc_r) = run()
    assert g.grad_fn.name() == "SweepBackward" and g_r.grad_fn.name() != "SweepBackward"
    assert float(g) == pytest.approx(float(g_r), rel=1e-13)
    assert float(hxx) == pytest.approx(float(hxx_r), rel=1e-10)
    assert float(hxc) == pytest.approx(float(hxc_r), rel=1e-10)


def test_fused_node_keeps_torch_errors(monkeypatch):
    """A leaf modified in place after the forward: the double backward raises torch's error, as recorded."""
    _FusedSpy(monkeypatch)
    x = ad.tensor([0.5, 0.2], requires_grad=True)
    y = ad.sin(x)
    w = y * y
    (g,) = ad.autograd.grad(w.sum(), x, create_graph=True)
    with ad.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ad.autograd.grad(g.sum(), x)


def _freeing_program(lib, retain_first, retain_second, then):
    """A 30-step scalar iteration (the fused node's graph) differentiated twice; ``then``: what runs after the
    second derivative (``"backward"``: y.backward(), ``"grad2"``: the second derivative again, ``"grad"``: the
    first derivative again). Returns the second derivative and what ``then`` computed."""
    x = lib.tensor(0.7, dtype=lib.float64, requires_grad=True)
    y = x
    for _ in range(30):
        y = y - 0.1 * lib.sin(y) * y
    (g,) = lib.autograd.grad(y, x, create_graph=True, retain_graph=retain_first)
    (h,) = lib.autograd.grad(g, x, retain_graph=retain_second)
    if then == "backward":
        y.backward()
        return float(h), float(x.grad)
    if then == "grad2":
        return float(h), float(lib.autograd.grad(g, x)[0])
    return float(h), float(lib.autograd.grad(y, x)[0])


@pytest.mark.parametrize("retain_first", [None, False])
@pytest.mark.parametrize("retain_second", [None, True])
@pytest.mark.parametrize("then", ["backward", "grad2", "grad"])
def test_fused_node_frees_the_graph_as_torch(retain_first, retain_second, then, monkeypatch):
    """retain_graph=False (explicit on the first derivative, the default on the second) frees the first-order
    graph: a later backward through it raises torch's error and RuntimeError, as torch does; retained, the
    values equal the recorded path's and torch's."""
    torch = pytest.importorskip("torch")
    spy = _FusedSpy(monkeypatch, min_nodes=db.MIN_NODES)
    args = (retain_first, retain_second, then)
    try:
        expected = _freeing_program(torch, *args)
    except RuntimeError as e:
        assert "Trying to backward through the graph a second time" in str(e)
        expected = None
    if expected is None:
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            _freeing_program(ad, *args)
    else:
        got = _freeing_program(ad, *args)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert spy.fused >= 1
    monkeypatch.setattr(db, "fused_grad", lambda *args: None)  # the recorded path agrees
    if expected is None:
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            _freeing_program(ad, *args)
    else:
        np.testing.assert_allclose(_freeing_program(ad, *args), expected, rtol=1e-12)


BIG_GRAPHS = {  # over tape.BIG_ROW elements: these rows are swept from Python (both passes)
    "matvec": (lambda a, x: ad.tanh(a @ x), [(130, 130), (130,)]),
    "matmat": (lambda a, b: ad.sin(a @ b), [(130, 130), (130, 2)]),
    "linear_bias": (lambda x, w, b: ad.tanh(ad.nn.functional.linear(x, w, b)), [(2, 130), (130, 130), (130,)]),
    "elementwise": (lambda x, y: ad.tanh(x) * y / (1.5 + ad.sigmoid(y)), [(20000,), (20000,)]),
}


@pytest.mark.parametrize("name", sorted(BIG_GRAPHS))
def test_big_rows_with_tangents_on_every_operand(name, monkeypatch):
    fn, shapes = BIG_GRAPHS[name]
    rng = np.random.default_rng(11)
    xs = [ad.tensor(rng.uniform(-1, 1, s) / np.sqrt(s[-1]), requires_grad=True) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    spy = _Spy(monkeypatch)
    compiled = _fwd_over_rev(fn, xs, vs)
    assert spy.ran == 1
    fused_spy = _FusedSpy(monkeypatch)
    fused = _double_backward(fn, xs, vs)
    assert fused_spy.fused == 1 and fused_spy.compiled == 1
    monkeypatch.setattr(so, "tangent_sweep", lambda *args: None)
    monkeypatch.setattr(db, "fused_grad", lambda *args: None)
    general = _fwd_over_rev(fn, xs, vs)
    recorded = _double_backward(fn, xs, vs)
    for c, f, g, r in zip(compiled, fused, general, recorded):
        np.testing.assert_allclose(c, g, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(f, r, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(c, r, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("requires_grad", [True, False])
def test_dual_sum_fast_path_matches_the_forward_rule(requires_grad, monkeypatch):
    """``Tensor.sum()`` of a dual tensor at one level takes ``structural._dual_sum_all`` (no generic dispatch):
    the same primal and tangent, the same rows (the tangent's sum recorded when the tangent requires grad, so
    that reverse over forward differentiates it), as the general path through ``sum``'s forward rule."""
    from ad.ops import structural

    rng = np.random.default_rng(11)
    a, x0, v = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)

    def run():
        with fwAD.dual_level():
            x = ad.tensor(x0, requires_grad=requires_grad)
            xd = fwAD.make_dual(x, ad.tensor(v))
            y = ad.tanh(ad.tensor(a) @ xd).sum()
            primal, tangent = fwAD.unpack_dual(y)
            out = [primal.detach().numpy(), tangent.detach().numpy(), tangent.requires_grad]
            if requires_grad:  # reverse over forward: d/dx of the tangent (H v), and the HVP by fwd over rev
                out.append(ad.autograd.grad(tangent, x, retain_graph=True)[0].numpy())
                out.append(fwAD.unpack_dual(ad.autograd.grad(y, xd)[0]).tangent.numpy())
            return out

    calls = []
    real = structural._dual_sum_all
    monkeypatch.setattr(structural, "_dual_sum_all", lambda x: calls.append(1) or real(x))
    fast = run()
    assert calls
    monkeypatch.setattr(structural, "_dual_sum_all", lambda x: None)
    general = run()
    assert fast[2] == general[2] == requires_grad
    for f, g in zip(fast[:2] + fast[3:], general[:2] + general[3:]):
        np.testing.assert_array_equal(f, g)
    t = np.tanh(a @ x0)
    np.testing.assert_allclose(fast[1], (1 - t * t) @ (a @ v), rtol=1e-12)
    if requires_grad:
        hv = a.T @ (-2 * t * (1 - t * t) * (a @ v))
        np.testing.assert_allclose(fast[3], hv, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fast[4], hv, rtol=1e-10, atol=1e-12)


def test_dual_sum_of_nested_levels_takes_the_general_path():
    """Two active levels: ``x.sum()`` goes through ``apply_dual`` (each level's tangent, and the tangent of the
    tangent), not the one-level fast path."""
    with fwAD.dual_level():
        x = fwAD.make_dual(ad.tensor([1.0, 2.0]), ad.tensor([3.0, 4.0]))
        with fwAD.dual_level():
            xx = fwAD.make_dual(x, ad.tensor([5.0, 6.0]))
            y = (xx * xx).sum()
            inner = fwAD.unpack_dual(y)
            assert inner.primal.item() == 5.0 and inner.tangent.item() == 2 * (5.0 + 12.0)
        outer = fwAD.unpack_dual(y)
        assert outer.tangent.item() == 2 * (3.0 + 8.0)
