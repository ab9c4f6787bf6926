"""Tests that kill the surviving mutants of the second-order sessions (tests/mutation/SURVIVORS.md): the compiled
forward over reverse (``kernels/second_order.py``, ``ad/second_order.py``), the fused double backward
(``ad/double_backward.py``) and the replayed backward program (``ad/compile_backward.py``).

Every Hessian-vector product here is checked against torch's (double backward, or forward over reverse where
the two differ), never against a number written down; each test names the mutant it was written for.
"""

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.double_backward as db
import ad.second_order as so

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def _chain(y):
    """30 rows after ``y``: a graph long enough for the fused double backward (``double_backward.MIN_NODES``)."""
    for _ in range(30):
        y = y * 1.0
    return y


@pytest.fixture
def compiled(monkeypatch):
    """Counts the compiled passes that ran to the end: the forward-over-reverse sweep (``so._sweep``) and the
    fused node's VJP (``db._compiled_vjp``), so a test knows it did not compare a fallback with torch."""
    ran = {"fwd": 0, "fused": 0}
    for path, module, name in (("fwd", so, "_sweep"), ("fused", db, "_compiled_vjp")):
        monkeypatch.setattr(module, name, _counting(getattr(module, name), ran, path))
    return ran


def _counting(real, ran, path):
    def counting(*args):
        result = real(*args)
        ran[path] += 1
        return result

    return counting


def _hvp(fn, arrays, vs, path):
    """``H v`` of ``fn(*xs).sum()`` per input, by ``path``: "fwd" (forward over reverse, the compiled sweep) or
    "fused" (grad of grad through ``_chain``: the compiled double backward)."""
    xs = [ad.tensor(a.copy(), requires_grad=True) for a in arrays]
    if path == "fused":
        gs = ad.autograd.grad(_chain(fn(ad, *xs)).sum(), xs, create_graph=True)
        dot = sum((g * ad.tensor(v)).sum() for g, v in zip(gs, vs))
        return [h.numpy() for h in ad.autograd.grad(dot, xs, allow_unused=True, materialize_grads=True)]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, ad.tensor(v)) for x, v in zip(xs, vs)]
        gs = ad.autograd.grad(fn(ad, *duals).sum(), xs)
        return [fwAD.unpack_dual(g).tangent.numpy() for g in gs]


def _torch_hvp(fn, arrays, vs, forward_over_reverse=False):
    """torch's ``H v`` (double backward; forward over reverse with ``forward_over_reverse``)."""
    if forward_over_reverse:
        import torch.autograd.forward_ad as tfw

        with tfw.dual_level():
            xs = [torch.tensor(a, requires_grad=True) for a in arrays]
            duals = [tfw.make_dual(x, torch.tensor(v)) for x, v in zip(xs, vs)]
            gs = torch.autograd.grad(fn(torch, *duals).sum(), xs)
            return [tfw.unpack_dual(g).tangent.numpy() for g in gs]
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    gs = torch.autograd.grad(fn(torch, *xs).sum(), xs, create_graph=True)
    dot = sum((g * torch.tensor(v)).sum() for g, v in zip(gs, vs))
    return [h.numpy() for h in torch.autograd.grad(dot, xs, allow_unused=True, materialize_grads=True)]


def _assert_hvps(got, want, rtol=1e-12):
    for j, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=f"input {j}")


def _cosines(shape, phase):
    return np.cos(np.arange(int(np.prod(shape))) * 0.7 + phase).reshape(shape)


# --- kernels/second_order.py --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["fwd", "fused"])
def test_batched_matmul_hvp_is_torch(path, compiled):
    """A batched matmul's rows in the compiled sweeps (``_matmul_tangent``'s per-batch offsets ``x + b * xbs``,
    ``y + b * ybs``; mutants ``b / xbs``, ``b / ybs``): batch 3, each operand's own batch and a broadcast one."""
    arrays = [_cosines((3, 2, 4), 0.1), _cosines((3, 4, 2), 0.5), _cosines((4, 2), 0.9)]
    vs = [_cosines(a.shape, 1.3 + k) for k, a in enumerate(arrays)]

    def fn(M, x, y, z):
        return (x @ y).tanh() + (x @ z).sin()

    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs))
    assert compiled[path] == 1


def _torch_forward_over_reverse(fn, arrays, vs):
    import torch.autograd.forward_ad as tfw

    with tfw.dual_level():
        xs = [torch.tensor(a, requires_grad=True) for a in arrays]
        gs = torch.autograd.grad(fn(torch, *[tfw.make_dual(x, torch.tensor(v)) for x, v in zip(xs, vs)]).sum(), xs)
        return [g.detach().numpy() for g in gs] + [tfw.unpack_dual(g).tangent.numpy() for g in gs]


def _compiled_forward_over_reverse(fn, arrays, vs):
    xs = [ad.tensor(a.copy(), requires_grad=True) for a in arrays]
    with fwAD.dual_level():
        gs = ad.autograd.grad(fn(ad, *[fwAD.make_dual(x, ad.tensor(v)) for x, v in zip(xs, vs)]).sum(), xs)
        return [g.numpy() for g in gs] + [fwAD.unpack_dual(g).tangent.numpy() for g in gs]


# Every pair of special values (zeros of both signs, 1, -1, a fraction, 2): pow's masked second partials (x = 0,
# y in {0, 1}, y - 1 >= 0), xlogy's (x = 0 or y <= 0), atan2's and div's, except the poles where ad keeps its own
# documented convention (atan2 at the origin: tests/test_edge_points.py's BINARY_MASKS) or where the paths
# differ at y = +-0 (div, xlogy: see tests/mutation/SURVIVORS.md).
_SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -1.5]
_GRID_X, _GRID_Y = (np.array(g) for g in zip(*[(a, b) for a in _SPECIAL for b in _SPECIAL]))
_BINARY = {
    "pow": (lambda M, x, y: x**y, np.ones(_GRID_X.shape, bool)),
    "mul": (lambda M, x, y: x * y, np.ones(_GRID_X.shape, bool)),
    "xlogy": (lambda M, x, y: M.xlogy(x, y), _GRID_Y != 0),
    "div": (lambda M, x, y: x / y, _GRID_Y != 0),
    "atan2": (lambda M, x, y: M.atan2(x, y), (_GRID_X != 0) | (_GRID_Y != 0)),
}


@pytest.mark.parametrize("name", list(_BINARY))
def test_compiled_forward_over_reverse_at_special_points_is_torch(name, compiled):
    """The compiled sweep's gradients and their tangents at every pair of special values against torch's forward
    over reverse, NaN where torch's is NaN (mutants of ``binary_second``'s pow and xlogy masks: ``x > 0.0``,
    ``y - 1.0 >= 0.0``, ``y >= 0.0``, ``x != 0.0 or y > 0.0``)."""
    fn, keep = _BINARY[name]
    arrays = [_GRID_X[keep], _GRID_Y[keep]]
    vs = [np.full(arrays[0].shape, 1.5), np.full(arrays[0].shape, -0.5)]
    got = _compiled_forward_over_reverse(fn, arrays, vs)
    want = _torch_forward_over_reverse(fn, arrays, vs)
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0, equal_nan=True, err_msg=f"{name}: output {k}")
    assert compiled["fwd"] == 1


@pytest.mark.parametrize("path", ["fwd", "fused"])
def test_logit_with_eps_second_derivative_is_torch(path, compiled):
    """logit with ``eps``: the second derivative is 0 outside ``[eps, 1 - eps]`` (``unary_second``'s LOGIT bounds;
    mutants ``x < a0 and x > 1.0 - a0``, ``x <= a0``, ``1.0 + a0``), the formula inside, bounds included."""
    arrays = [np.array([0.05, 0.2, 0.25, 0.35, 0.5, 0.65, 0.75, 0.8, 0.95, -0.5, 1.5])]  # (eps and 1 - eps inside)
    vs = [np.linspace(0.5, 1.5, 11)]

    def fn(M, x):
        return M.logit(x, eps=0.25) ** 2

    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs))
    assert compiled[path] == 1


@pytest.mark.parametrize("path", ["fwd", "fused"])
def test_sinc_second_derivative_near_zero_is_the_finite_difference(path, compiled):
    """sinc's second derivative at 0 and near it by the series (``unary_second``'s SINC: mutant ``x / x < 1e-6``
    takes the closed form everywhere: NaN at 0, cancellation near it), against a central difference of the
    gradient in float64. (torch's double backward is NaN at 0 and off by 5e-9 at 1e-4: not the reference here.)"""
    arrays = [np.array([0.0, 1e-4, -3e-4, 2e-3, 0.3])]
    vs = [np.array([1.0, -0.5, 2.0, 1.5, 0.7])]

    def gradient(x):
        xt = ad.tensor(x, requires_grad=True)
        (g,) = ad.autograd.grad(ad.sinc(xt).sum(), xt)
        return g.numpy()

    h = 1e-5
    want = (gradient(arrays[0] + h) - gradient(arrays[0] - h)) / (2 * h) * vs[0]
    (got,) = _hvp(lambda M, x: M.sinc(x), arrays, vs, path)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=0)
    assert compiled[path] == 1


def test_small_linears_with_and_without_bias_are_torch(compiled):
    """``linear(x, W, b)`` in the compiled sweep's small rows: the bias's cotangent and tangent (``aux[a + 5]``,
    the bias's column sums; mutant ``code != K.LINEAR_BIAS``), and a linear row without bias before it, whose
    aux words are followed by the next row's (mutant ``code == K.LINEAR_BIAS or aux[a + 5] != 0``)."""
    arrays = [_cosines((2, 3), 0.1), _cosines((4, 4), 0.7), _cosines((4,), 1.3), _cosines((4, 3), 1.9)]
    vs = [_cosines(a.shape, 2.1 + k) for k, a in enumerate(arrays)]

    def fn(M, x, w, b, w0):
        return M.tanh(M.nn.functional.linear(M.tanh(M.nn.functional.linear(x, w0)), w, b)) ** 2

    _assert_hvps(_hvp(fn, arrays, vs, "fwd"), _torch_hvp(fn, arrays, vs))
    assert compiled["fwd"] == 1


def _spoil_pool(elements):
    """Fill every pooled buffer with NaN (255 in every flag byte) and pool one more, of ``elements`` NaNs: a
    buffer big enough for the next tangent sweep's three arenas, which would otherwise be fresh zeros (a sweep's
    big regions are not cleared: what a sweep reads there must have been written by it)."""
    from ad.tape import POOL

    for buf in POOL.buffers:
        buf.view(np.uint8)[:] = 0xFF
    POOL.give(np.full(elements, np.nan))


@pytest.mark.parametrize("size", [16383, 16384, 16385])
def test_fused_double_backward_over_a_spoiled_pool(size, compiled):
    """The fused node's backward over a pooled buffer full of NaN, where a big tensor recorded before the first
    input's use (``w.exp()``: outside the node's tangent pass, so its tangent region is never written) is an
    operand of a Python row: ``_compiled_vjp``'s ``tangent`` must read it as None (mutant ``n > BIG_ROW``: reads
    the NaN region at exactly ``tape.BIG_ROW`` elements). ``w`` requires grad but is not asked for: its cross
    term comes from the node's backward."""
    x0, w0, v = _cosines((size,), 0.3), _cosines((size,), 2.2), _cosines((size,), 1.1)

    def run(M, spoil):
        x, w = M.tensor(x0.copy(), requires_grad=True), M.tensor(w0.copy(), requires_grad=True)
        scale = w.exp()
        (g,) = M.autograd.grad(_chain(M.sin(x) * scale).sum(), x, create_graph=True)
        if spoil:
            _spoil_pool(3 * 40 * size)  # (the tape: about 34 regions of ``size``)
        return [h.detach().numpy() for h in M.autograd.grad((g * M.tensor(v)).sum(), [x, w])]

    _assert_hvps(run(ad, True), run(torch, False))
    assert compiled["fused"] == 1


# --- ad/second_order.py, ad/double_backward.py ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["fwd", "fused"])
def test_big_whole_tensor_mean_is_torch(path, compiled):
    """A mean over ``parallel.PARALLEL_MIN`` elements or more is a Python row (``_big_row``'s and
    ``_big_forward``'s SUM_ALL branch; mutants ``off - size``: the operand's cotangent, or its tangent, never
    written)."""
    n = 300_000
    arrays = [_cosines((n,), 0.2), _cosines((n,), 0.6)]
    vs = [_cosines((n,), 1.1), _cosines((n,), 1.7)]

    def fn(M, x, y):
        return (x.sin() * y).mean() ** 2  # (a cotangent with a tangent at the mean)

    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs), rtol=1e-9)
    assert compiled[path] == 1


@pytest.mark.parametrize("path", ["fwd", "fused"])
@pytest.mark.parametrize("weight_grad", [False, True], ids=["constant_weight", "weight"])
def test_big_linear_of_a_vector_is_torch(path, weight_grad, compiled):
    """``linear(x, W, b)`` with a 1-D ``x`` and a square ``W`` over ``tape.BIG_ROW`` elements (``_matmul_tangent``:
    a linear row must not take the matrix-vector shortcut, which multiplies by ``W.T``; mutant ``not linear or
    ...``), with the weight's cotangent wanted or not (one target or three)."""
    n = 130
    arrays = [_cosines((n,), 0.3), _cosines((n, n), 0.8) / n, _cosines((n,), 1.2)]
    vs = [_cosines(a.shape, 2.0 + k) for k, a in enumerate(arrays)]
    if not weight_grad:  # the weight and bias as constants: x's cotangent alone
        w, b = arrays[1], arrays[2]

        def fn(M, x):
            return M.tanh(M.nn.functional.linear(x, M.tensor(w), M.tensor(b)))

        arrays, vs = arrays[:1], vs[:1]
    else:

        def fn(M, x, w, b):
            return M.tanh(M.nn.functional.linear(x, w, b))

    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs))
    assert compiled[path] == 1


@pytest.mark.parametrize("path", ["fwd", "fused"])
@pytest.mark.parametrize("vector_first", [False, True])
@pytest.mark.parametrize("wanted", ["both", "matrix"])
def test_big_matvec_cotangents_are_torch(path, vector_first, wanted, compiled):
    """``A @ x`` and ``x @ A`` with a big square ``A``: both operands wanting their cotangent, or the matrix alone
    (``_matmul_tangent``'s shortcut is for one target that is the vector: mutants ``len(targets) != 1``,
    ``inp is y or y.ndim == 1``, ``inp is x and x.ndim != 1``)."""
    n = 130
    arrays = [_cosines((n, n), 0.4) / n, _cosines((n,), 0.9)]
    vs = [_cosines(a.shape, 2.5 + k) for k, a in enumerate(arrays)]
    vector = arrays[1]

    def fn(M, a, x=None):
        x = M.tensor(vector) if x is None else x  # (the matrix alone: the vector a constant)
        return M.sin(x @ a if vector_first else a @ x)

    if wanted == "matrix":
        arrays, vs = arrays[:1], vs[:1]
    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs))
    assert compiled[path] == 1


@pytest.mark.parametrize("shape", [(2, 3), (2, 10000)], ids=["small", "big"])
def test_seed_with_a_tangent_is_torch(shape, compiled):
    """``grad(out, x, grad_outputs=v)`` inside a dual level with a dual ``v``: the seed's tangent enters the
    cotangents' tangents (``_sweep``'s seeds: mutants ``off - n``, ``reshape(1)``); a big ``out`` (a region of the
    pooled buffer that holds a previous sweep's garbage: zeroed before the seed's tangent is added, mutant
    ``tcot[off : off - n] = 0.0``), swept twice so the second sweep takes the first one's buffer."""
    x0, v0, t0, s0 = (_cosines(shape, p) for p in (0.2, 0.8, 1.4, 2.0))

    def run(M, fw):
        x = M.tensor(x0, requires_grad=True)
        with fw.dual_level():
            out = fw.make_dual(x, M.tensor(v0)).tanh() * 2.0
            (g,) = M.autograd.grad(out, x, grad_outputs=fw.make_dual(M.tensor(s0), M.tensor(t0)))
            return g.detach().numpy(), fw.unpack_dual(g).tangent.numpy()

    import torch.autograd.forward_ad as tfw

    want = run(torch, tfw)
    _assert_hvps(run(ad, fwAD), want)
    _assert_hvps(run(ad, fwAD), want)
    assert compiled["fwd"] == 2


def test_fused_double_backward_of_a_big_root_with_a_seed(compiled):
    """``grad(y, x, grad_outputs=s, create_graph=True)`` with ``y`` over ``tape.BIG_ROW`` elements, then the
    backward of ``<g, v>`` over a pooled buffer full of NaN: the root's tangent region is a big one, which
    ``_compiled_vjp`` zeroes before seeding (mutant ``tcot[off : off - n] = 0.0``: NaN gradients)."""
    n = 20000
    x0, v, s = _cosines((n,), 0.3), _cosines((n,), 1.1), _cosines((n,), 2.2)
    xt = torch.tensor(x0, requires_grad=True)
    (gt,) = torch.autograd.grad(_chain(xt.sin() * xt), xt, torch.tensor(s), create_graph=True)
    (want,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), xt)
    x = ad.tensor(x0.copy(), requires_grad=True)
    (g,) = ad.autograd.grad(_chain(x.sin() * x), x, ad.tensor(s), create_graph=True)
    _spoil_pool(3 * 40 * n)  # (the tape: about 33 regions of ``n``)
    (h,) = ad.autograd.grad((g * ad.tensor(v)).sum(), x)
    np.testing.assert_allclose(h.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
    assert compiled["fused"] == 1


_N_BIG = 130  # a square matrix of this side is over tape.BIG_ROW elements: a matmul reading it is a Python row
_A, _B = _cosines((_N_BIG, _N_BIG), 0.4) / _N_BIG, _cosines((_N_BIG, _N_BIG), 0.7) / _N_BIG
_SMALL_ROW_GRAPHS = {
    "between": lambda M, x: M.sin(M.tensor(_B) @ (M.tensor(_A) @ x).tanh()),  # big, small (tanh), big
    "before": lambda M, x: M.sin(M.tensor(_A) @ x.tanh()),  # small (tanh) at the first input's use, then big
}


@pytest.mark.parametrize("path", ["fwd", "fused"])
@pytest.mark.parametrize("graph", list(_SMALL_ROW_GRAPHS))
def test_one_small_row_between_or_before_big_rows_is_torch(path, graph, compiled):
    """A single kernel row between two big (Python) rows, or just before the first: the fused node's forward
    tangent pass (``_forward``) runs the kernel over that one row (mutant ``lo < h - 1``: it gets no tangent)."""
    arrays, vs = [_cosines((_N_BIG,), 0.9)], [_cosines((_N_BIG,), 2.5)]
    fn = _SMALL_ROW_GRAPHS[graph]
    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs))
    assert compiled[path] == 1


@pytest.mark.parametrize("path", ["fwd", "fused"])
def test_big_linear_with_bias_after_a_small_matmul_is_torch(path, compiled):
    """A big ``linear(x @ p, W, b)`` row whose aux words follow a small matmul's: the bias's offset is the
    fourth of its words (``_big_forward``'s ``tape.aux[a + 3]``; mutant ``a - 3``, which only a row with aux
    words before it tells apart: for the first one, ``aux[-3]`` is the same word)."""
    n = _N_BIG
    arrays = [_cosines((2, 3), 0.1), _cosines((3, n), 0.5), _cosines((n, n), 0.8) / n, _cosines((n,), 1.2)]
    vs = [_cosines(a.shape, 2.0 + k) for k, a in enumerate(arrays)]

    def fn(M, x, p, w, b):
        return M.tanh(M.nn.functional.linear(x @ p, w, b))

    _assert_hvps(_hvp(fn, arrays, vs, path), _torch_hvp(fn, arrays, vs), rtol=1e-10)
    assert compiled[path] == 1


def test_zero_second_partial_with_an_infinite_tangent_is_torch(compiled):
    """``x * y`` with infinite tangents on ``y``: the tangent of ``grad_y = g * x`` is ``g * tx`` in torch, which
    forms no product with ``y``'s tangent (mul's ``d2/dy2`` is a structural zero): ``_second_term`` skips the
    term where the second partial is 0 (mutant ``tb != 0.0 or db != 0.0``: ``0 * inf``, NaN)."""
    arrays = [np.array([1.5, -0.5, 2.0]), np.array([2.0, 0.7, -1.0])]
    vs = [np.array([1.0, 2.0, 0.0]), np.array([np.inf, -np.inf, 0.5])]

    def fn(M, x, y):
        return x * y

    got = _compiled_forward_over_reverse(fn, arrays, vs)
    for k, (g, w) in enumerate(zip(got, _torch_forward_over_reverse(fn, arrays, vs))):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0, equal_nan=False, err_msg=f"output {k}")
    assert compiled["fwd"] == 1


# --- ad/compile_backward.py -----------------------------------------------------------------------------------


_STEPS = {
    "python_row_output": (lambda x, w, b: ad.nn.functional.linear(x, w, b), (32, 48)),
    "kernel_row_first": (lambda x, w, b: ad.nn.functional.linear(x, w, b * 2.0), (32, 48)),  # (row 0: b * 2.0)
    "transposed_input": (lambda x, w, b: ad.nn.functional.linear(x.t(), w, b), (48, 32)),  # (row 0: x.t())
}


@pytest.mark.parametrize("name", list(_STEPS))
def test_replayed_step_whose_output_is_a_python_row(name, monkeypatch):
    """A replayed step (``ad.compile``) whose output is itself a Python row (a big linear row), backward with a
    gradient: the backward program's first step is the seeded row (``BackwardProgram._walk``: mutant
    ``h >= top``, which leaves that row to the kernel, whose arena lacks the big weight's values: ``x``'s
    gradient is wrong); with a kernel row at row 0 below it (mutant ``start > 0``, which leaves row 0 unswept);
    with ``x.t()`` at row 0, whose aux words (``[2, 0, ...]``) come just before the linear's (``plan``'s bias
    flag ``aux[aux_at + 5]``; mutant ``aux_at - 5`` reads the 0 and drops the bias's gradient)."""
    from ad import compile_backward

    ran = []
    real = compile_backward.BackwardProgram.run
    monkeypatch.setattr(compile_backward.BackwardProgram, "run", lambda p, s: ran.append(real(p, s)) or ran[-1])
    fn, x_shape = _STEPS[name]
    seed = ad.tensor(_cosines((32, 600), 0.5))
    arrays = [_cosines(x_shape, 0.1), _cosines((600, 48), 0.9) * 0.05, _cosines((600,), 1.3)]
    params = [ad.tensor(a.copy(), requires_grad=True) for a in arrays]
    step = ad.compile(fn)
    for _ in range(3):
        for p in params:
            p.grad = None
        step(*params).backward(seed)
    eager = [ad.tensor(a.copy(), requires_grad=True) for a in arrays]
    fn(*eager).backward(seed)
    for p, e in zip(params, eager):
        assert p.grad is not None
        np.testing.assert_allclose(p.grad.numpy(), e.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert True in ran
