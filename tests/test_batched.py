"""``grad(..., is_grads_batched=True)``: the batched compiled sweep (``ad/batched.py``) against a loop of
``grad`` over the op table, big rows, hooks, custom Functions, several tapes, and torch's argument rules."""

import numpy as np
import pytest
from test_op_table import ALL_CASES, _case, _inputs

import ad
from ad.tape import BIG_ROW

B = 3


def _looped(out, xs, gs, **kw):
    per = [ad.autograd.grad(out, xs, ad.tensor(g), retain_graph=True, allow_unused=True, **kw) for g in gs]
    return [None if per[0][k] is None else np.stack([p[k].detach().numpy() for p in per]) for k in range(len(xs))]


def _check_batched_equals_looped(out, xs, gs):
    batched = ad.autograd.grad(out, xs, ad.tensor(gs), is_grads_batched=True, retain_graph=True, allow_unused=True)
    looped = _looped(out, xs, gs)
    for b, lp in zip(batched, looped):
        if lp is None:
            assert b is None
            continue
        assert b.shape == lp.shape
        np.testing.assert_allclose(b.numpy(), lp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_batched_equals_looped_over_op_table(name):
    fn, shapes, _ = _case(name)
    xs = _inputs(name, shapes, seed=7)
    out = fn(*xs)
    gs = np.random.default_rng(8).standard_normal((B,) + tuple(out.shape))
    _check_batched_equals_looped(out, xs, gs)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_batched_equals_looped_over_op_table_with_big_rows(name):
    """As above with the big-row thresholds lowered to a few elements: products run in the kernel on operands
    copied into the arena at the sweep (``ad.batched._in_kernel``), the other big rows from Python."""
    from test_hypothesis import _big_rows

    with _big_rows(4, 8):
        test_batched_equals_looped_over_op_table(name)


def test_big_rows_batched():
    """Rows over BIG_ROW elements are swept from Python: matmul / linear as one GEMM, elementwise with one
    partial per element, sum, and (once per example) the other rules."""
    rng = np.random.default_rng(0)
    n = int(np.sqrt(BIG_ROW)) + 8
    a = ad.tensor(rng.standard_normal((n, n)) / n, requires_grad=True)
    x = ad.tensor(rng.standard_normal(n), requires_grad=True)
    w = ad.tensor(rng.standard_normal((3, n)), requires_grad=True)
    h = ad.tanh(a @ x)  # big matmul row (a is big)
    big = (a * a).sin() + a.sum() * a  # big elementwise rows and a big sum
    lin = ad.nn.functional.linear(a, w, ad.tensor(rng.standard_normal(3), requires_grad=True))
    out = ad.cat([h, big.amax(0), lin.reshape(-1), (a.abs() ** 2.5).sum(1)])
    gs = rng.standard_normal((4,) + tuple(out.shape))
    _check_batched_equals_looped(out, [a, x, w], gs)


def test_hooks_see_one_cotangent_each():
    x = ad.tensor([0.5, 1.0, 2.0], requires_grad=True)
    seen = []
    y = x * 3.0
    y.register_hook(lambda g: seen.append(tuple(g.shape)) or g * 2.0)
    x.register_hook(lambda g: g + 1.0)
    out = y.sin()
    gs = np.eye(3)
    (b,) = ad.autograd.grad(out, x, ad.tensor(gs), is_grads_batched=True)
    assert seen == [(3,)] * 3
    np.testing.assert_allclose(b.numpy(), np.diag(6.0 * np.cos(3.0 * x.detach().numpy())) + 1.0, rtol=1e-12)


class Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        assert g.shape == x.shape  # one cotangent at a time, as under torch's vmap
        return 3 * x**2 * g


def test_custom_function_and_several_tapes():
    x = ad.tensor([0.3, -0.7, 1.1], requires_grad=True)
    y = Cube.apply(x.sin()) * 2.0
    ad.tape.reset_current()  # the rest of the graph on a newer tape
    out = ad.stack([y.exp(), y * x])
    gs = np.random.default_rng(1).standard_normal((5, 2, 3))
    _check_batched_equals_looped(out, [x, y], gs)
    (b,) = ad.autograd.grad(out, x, ad.tensor(gs), is_grads_batched=True)
    xv = x.detach().numpy()
    yv = 2.0 * np.sin(xv) ** 3
    dy = 6.0 * np.sin(xv) ** 2 * np.cos(xv)
    expected = gs[:, 0] * np.exp(yv) * dy + gs[:, 1] * (dy * xv + yv)
    np.testing.assert_allclose(b.numpy(), expected, rtol=1e-12)


def test_several_outputs_and_graph_freed():
    x = ad.tensor([0.3, 0.2], requires_grad=True)
    y1, y2 = x.exp(), (x * x).sum()
    g1, g2 = np.ones((2, 2)), np.array([1.0, -1.0])
    (b,) = ad.autograd.grad([y1, y2], x, [ad.tensor(g1), ad.tensor(g2)], is_grads_batched=True)
    xv = x.detach().numpy()
    np.testing.assert_allclose(b.numpy(), np.exp(xv) + np.outer(g2, 2 * xv), rtol=1e-12)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        ad.autograd.grad(y1, x, ad.tensor(g1), is_grads_batched=True)


def test_create_graph_batched_is_differentiable():
    x = ad.tensor([0.4, 0.9, 1.3], requires_grad=True)
    (g,) = ad.autograd.grad((x**3).sum(), x, create_graph=True)
    (h,) = ad.autograd.grad(g, x, ad.eye(3, dtype=ad.float64), is_grads_batched=True, create_graph=True)
    np.testing.assert_allclose(h.detach().numpy(), np.diag(6 * x.detach().numpy()), rtol=1e-12)
    (t,) = ad.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(t.numpy(), np.full(3, 6.0), rtol=1e-12)


def test_unused_inputs_as_torch():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    z = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    gs = ad.tensor(np.ones((4, 2)))
    with pytest.raises(RuntimeError, match="index 1 appears to not have been used"):
        ad.autograd.grad(y, [x, z], gs, is_grads_batched=True, retain_graph=True)
    _, none = ad.autograd.grad(y, [x, z], gs, is_grads_batched=True, retain_graph=True, allow_unused=True)
    assert none is None
    _, zeros = ad.autograd.grad(y, [x, z], gs, is_grads_batched=True, materialize_grads=True)
    assert zeros.shape == (3,)  # torch's materialized zeros are unbatched


@pytest.mark.parametrize(
    ("grads", "error", "match"),
    [
        (np.ones((4, 2)), RuntimeError, "we interpret the first dimension"),
        (np.ones(3), RuntimeError, "we interpret the first dimension"),
        (None, RuntimeError, "implicitly created only for scalar outputs"),
        (np.float64(1.0), IndexError, "0-dimensional"),
        (np.ones((0, 3)), IndexError, "size 0"),
    ],
)
def test_argument_errors_as_torch(grads, error, match):
    torch = pytest.importorskip("torch")
    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = tx * 2.0
    g = None if grads is None else ad.tensor(grads)
    with pytest.raises(error, match=match):
        ad.autograd.grad(y, x, g, is_grads_batched=True)
    with pytest.raises(error):
        torch.autograd.grad(ty, tx, None if grads is None else torch.tensor(grads), is_grads_batched=True)


def test_scalar_output_without_batched_grad_output():
    torch = pytest.importorskip("torch")
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="batched grad_output"):
        ad.autograd.grad((x * x).sum(), x, None, is_grads_batched=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError):
        torch.autograd.grad((tx * tx).sum(), tx, None, is_grads_batched=True)


def test_batch_sizes_must_agree():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="same size in the mapped dimension"):
        ad.autograd.grad([x * 2.0, x * 3.0], x, [ad.ones(2, 2), ad.ones(3, 2)], is_grads_batched=True)


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, xv, gs = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((6, 4))
    x = ad.tensor(xv, requires_grad=True)
    (b,) = ad.autograd.grad(ad.tanh(ad.tensor(a) @ x) * x.sum(), x, ad.tensor(gs), is_grads_batched=True)
    tx = torch.tensor(xv, requires_grad=True)
    (tb,) = torch.autograd.grad(
        torch.tanh(torch.tensor(a) @ tx) * tx.sum(), tx, torch.tensor(gs), is_grads_batched=True
    )
    np.testing.assert_allclose(b.numpy(), tb.numpy(), rtol=1e-12)


def test_retain_grad_is_refused_before_any_sweep():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y.retain_grad()
    with pytest.raises(RuntimeError, match="retain_grad"):
        ad.autograd.grad(y.sin(), x, ad.ones(3, 2, dtype=ad.float64), is_grads_batched=True)
    assert y.grad is None


def test_float32_and_non_leaf_inputs_with_hooks():
    x = ad.tensor(np.array([0.2, -0.4, 0.9], np.float32), requires_grad=True)
    y = x.exp()
    y.register_hook(lambda g: g * 10.0)  # y's own node runs: its gradient is captured before the hook
    out = (y * y).tanh()
    gs = np.random.default_rng(4).standard_normal((4, 3)).astype(np.float32)
    by, bx = ad.autograd.grad(out, [y, x], ad.tensor(gs), is_grads_batched=True, retain_graph=True)
    assert by.dtype == bx.dtype == ad.float32 and by.shape == bx.shape == (4, 3)
    looped = [ad.autograd.grad(out, [y, x], ad.tensor(g), retain_graph=True) for g in gs]
    np.testing.assert_allclose(by.numpy(), np.stack([lp[0].numpy() for lp in looped]), rtol=1e-6)
    np.testing.assert_allclose(bx.numpy(), np.stack([lp[1].numpy() for lp in looped]), rtol=1e-6)


# --- recycled cotangent blocks (ad/batched.py _layout, kernels/batched.py recycled_bases) -----------------


def _chain(x, n):
    for i in range(n):
        x = (x * 1.1, x + 0.3, x.sin(), x.tanh())[i % 4]
    return x


def test_recycled_blocks_keep_a_chain_in_a_few_blocks():
    """A 200-row chain's rows share arena blocks (the arena is a few blocks, not the tape); the batched
    gradients equal the loop's, also for a requested non-leaf in the middle of the chain (pinned: read after
    the sweep, so its block is never reused)."""
    from ad.batched import _layout

    x = ad.tensor(np.linspace(0.1, 0.9, 8), requires_grad=True)
    mid = _chain(x, 100)
    out = _chain(mid, 100)
    tape = out._tape
    recycled, compact = _layout(tape, pinned=(out._off, mid._off))[4], _layout(tape)[4]
    assert compact > 200 * 8 and recycled <= 6 * 8
    gs = np.random.default_rng(5).standard_normal((4, 8))
    _check_batched_equals_looped(out, [x, mid], gs)


def test_recycled_blocks_on_branching_graphs():
    """Operands read by several rows (a block lives from its first writer down to its producer), gathers,
    concatenation, reductions and matmul rows in one graph."""
    rng = np.random.default_rng(6)
    x = ad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = ad.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    h = (x @ w).tanh()
    a = _chain(h, 9)
    b = h * a + h.exp()[:, [2, 0, 1, 1]]
    c = ad.cat([b.sum(0, keepdim=True), a.amax(0, keepdim=True), b[1:] - a[:-1]])
    out = ad.nn.functional.log_softmax(_chain(c, 12), dim=1) + c.transpose(0, 1).reshape(4, 4).T
    _check_batched_equals_looped(out, [x, w, h], rng.standard_normal((5, 4, 4)))


def test_recycled_blocks_are_cleared_for_their_next_owner():
    """Only x is requested: y's branch is off the plan, yet z = a * b still writes b's cotangents, and b's row
    (masked) never reads them. b's block is reused by the rows of a's chain below: the kernel clears it at
    their first write, so nothing of b's leaks into x's gradients."""
    x = ad.tensor(np.linspace(0.2, 0.8, 6), requires_grad=True)
    y = ad.tensor(np.linspace(-0.5, 0.5, 6), requires_grad=True)
    a = _chain(x, 40)
    b = y.exp()
    out = _chain(a * b, 20)
    gs = np.random.default_rng(7).standard_normal((3, 6))
    _check_batched_equals_looped(out, [x], gs)


def test_shared_blocks_are_cleared_by_the_kernel_for_their_first_owner_too():
    """Before the sweep only the arena's fixed part (seeded and requested regions) is cleared; the kernel clears
    each shared block when its first owner is born. On a recycled buffer full of NaN the results equal the
    loop's."""
    from ad.tape import POOL

    x = ad.tensor(np.linspace(0.1, 0.6, 5), requires_grad=True)
    out = _chain(x, 30)
    POOL.give(np.full(1 << 16, np.nan))
    _check_batched_equals_looped(out, [x], np.random.default_rng(9).standard_normal((3, 5)))


def test_no_recycling_where_python_reads_cotangents():
    """A hook on a chain's intermediate makes the sweep stop and run Python there, which may read any
    cotangent: that tape keeps one block per region (the compact layout); results equal the loop's."""
    from ad.batched import _BatchedTapeSweep

    x = ad.tensor(np.linspace(0.1, 0.6, 5), requires_grad=True)
    mid = _chain(x, 30)
    mid.register_hook(lambda g: g * 2.0)
    out = _chain(mid, 30)
    s = _BatchedTapeSweep(out._tape, 2, None, pinned=(out._off,))
    assert s.zeros[0].size == 0 and s.cot.shape[0] > 60 * 5
    _check_batched_equals_looped(out, [x], np.random.default_rng(8).standard_normal((3, 5)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_products_accumulate_into_existing_cotangents(dtype):
    """The kernel's products add into their operands' cotangents inside BLAS (``beta = 1``): an operand read by
    a matmul as ``x``, by another as ``y``, by a linear with a constant weight and by an elementwise row gets
    the sum of the four, for every cotangent of the batch (analytic values, float64 and float32)."""
    rng = np.random.default_rng(3)
    A, C, W = (rng.standard_normal(s).astype(dtype) for s in ((5, 4), (6, 3), (7, 6)))
    X0 = rng.standard_normal((4, 6)).astype(dtype)
    X, a = ad.tensor(X0, requires_grad=True), ad.tensor(A, requires_grad=True)
    p = a @ X  # X as y: gX += A.T @ G1 (one GEMM with B times the columns); gA = G1 @ X.T
    q = X @ ad.tensor(C)  # X as x: gX += G2[m] @ C.T, row by row
    r = ad.nn.functional.linear(X, ad.tensor(W))  # linear, constant weight: gX += G3[m] @ W
    out = ad.cat([p.reshape(-1), q.reshape(-1), r.reshape(-1), (X * 2.0).reshape(-1)])
    G = rng.standard_normal((B, out.numel())).astype(dtype)
    gX, gA = ad.autograd.grad(out, (X, a), ad.tensor(G), is_grads_batched=True)
    G1, G2, G3, G4 = np.split(G, np.cumsum([30, 12, 28]), axis=1)
    G1, G2, G3, G4 = G1.reshape(B, 5, 6), G2.reshape(B, 4, 3), G3.reshape(B, 4, 7), G4.reshape(B, 4, 6)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert gX.dtype == dtype and gA.dtype == dtype
    np.testing.assert_allclose(gX.numpy(), A.T @ G1 + G2 @ C.T + G3 @ W + 2.0 * G4, rtol=tol, atol=tol)
    np.testing.assert_allclose(gA.numpy(), G1 @ X0.T, rtol=tol, atol=tol)


def test_kernel_products_with_an_empty_inner_dimension():
    """A product over an empty inner dimension adds nothing (BLAS is not called with a zero leading size)."""
    x = ad.tensor(np.zeros((3, 0)), requires_grad=True)
    y = ad.tensor(np.zeros((0, 4)), requires_grad=True)
    z = ad.tensor(np.ones(4), requires_grad=True)
    out = x @ y + z
    gx, gy, gz = ad.autograd.grad(out, (x, y, z), ad.tensor(np.ones((2, 3, 4))), is_grads_batched=True)
    assert gx.shape == (2, 3, 0) and gy.shape == (2, 0, 4)
    np.testing.assert_array_equal(gz.numpy(), np.full((2, 4), 3.0))


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_products_in_serial_blocks_add_the_whole_product(transpose, dtype):
    """``kernels.batched._gemm_add`` cuts a product into blocks OpenBLAS runs on the calling thread (rows, and
    columns where one row of ``c`` is more): blocks that do not divide the shape, both layouts of W and a
    product of one block all add exactly ``W.T @ g`` (or ``W @ g``) to ``c``, and leave the rest untouched."""
    from kernels.batched import SERIAL_GEMM_MACS, _gemm_add

    rng = np.random.default_rng(4)
    tol = 1e-10 if dtype == np.float64 else 1e-3
    # (R, Q, P): many row blocks of several columns' worth; one row over the limit (column blocks); one block
    for R, Q, P in ((37, 300, 70), (3, 2 * SERIAL_GEMM_MACS // 50 + 7, 50), (4, 5, 6)):
        w = rng.standard_normal((P, R) if transpose else (R, P)).astype(dtype)
        g = rng.standard_normal((P, Q)).astype(dtype)
        c0 = rng.standard_normal((R + 2, Q)).astype(dtype)
        c = c0.copy()
        _gemm_add(c[1 : R + 1], w.reshape(-1), g, transpose)
        expected = (w.T if transpose else w).astype(np.float64) @ g.astype(np.float64)
        np.testing.assert_allclose(c[1 : R + 1], c0[1 : R + 1] + expected, rtol=tol, atol=tol * P)
        np.testing.assert_array_equal(c[[0, R + 1]], c0[[0, R + 1]])
