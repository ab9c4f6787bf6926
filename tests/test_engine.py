"""Engine behaviour beyond single ops: big rows swept by numpy, tapes, threads, memory of freed graphs."""

import gc
import threading
import weakref

import numpy as np

import ad
import ad.autograd.forward_ad as fwAD
from ad.tape import BIG_ROW


def _chain(x):
    y = x * 0.9
    y = y.sin() + 0.1
    y = y.tanh() * y
    y = (y * 0.5).exp() / (y * y + 1.0)
    return y.sum()


def test_big_rows_match_small_rows():
    """Rows of BIG_ROW elements or more go through numpy; the result equals the kernel path element-wise."""
    rng = np.random.default_rng(0)
    data = rng.uniform(-1, 1, BIG_ROW + 7)
    big = ad.tensor(data, requires_grad=True)
    _chain(big).backward()
    pieces = [ad.tensor(c, requires_grad=True) for c in np.array_split(data, 8)]  # each piece < BIG_ROW
    for p in pieces:
        _chain(p).backward()
    np.testing.assert_allclose(big.grad.numpy(), np.concatenate([p.grad.numpy() for p in pieces]), rtol=1e-13)


def test_big_rows_kernel_sweep_matches_differentiable_sweep():
    rng = np.random.default_rng(1)
    x = ad.tensor(rng.uniform(-1, 1, BIG_ROW * 2), requires_grad=True)
    (g1,) = ad.autograd.grad(_chain(x), x)
    (g2,) = ad.autograd.grad(_chain(x), x, create_graph=True)
    np.testing.assert_allclose(g1.numpy(), g2.detach().numpy(), rtol=1e-13)


def test_big_forward_mode_matches_reverse():
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1, 1, BIG_ROW * 2)
    v = rng.standard_normal(x0.shape)
    x = ad.tensor(x0, requires_grad=True)
    (g,) = ad.autograd.grad(_chain(x), x)
    with fwAD.dual_level():
        jv = fwAD.unpack_dual(_chain(fwAD.make_dual(ad.tensor(x0), ad.tensor(v)))).tangent
    np.testing.assert_allclose(jv.item(), float(np.dot(g.numpy(), v)), rtol=1e-11)


def test_graphs_interleaved_and_shared_leaves():
    a = ad.tensor([1.0, 2.0], requires_grad=True)
    y1 = (a * a).sum()
    y2 = (a.sin() * 3.0).sum()
    y3 = (a * y1).sum()  # uses y1 again after y2 was built
    y2.backward()
    y3.backward()
    expected = 3 * np.cos([1.0, 2.0]) + (5.0 + 2 * np.array([1.0, 2.0]) * 3.0)
    np.testing.assert_allclose(a.grad.numpy(), expected)


def test_graphs_built_in_threads_give_serial_results():
    rng = np.random.default_rng(3)
    data = [rng.uniform(-1, 1, 32) for _ in range(8)]

    def grad_of(d):
        x = ad.tensor(d, requires_grad=True)
        for _ in range(20):
            (x * 0.5).tanh()  # interleave other graphs' rows on this thread's tape
        _chain(x).backward()
        return x.grad.numpy().copy()

    serial = [grad_of(d) for d in data]
    results = [None] * len(data)

    def work(k):
        for _ in range(5):
            results[k] = grad_of(data[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, r in zip(serial, results):
        np.testing.assert_allclose(r, s, rtol=1e-14)


def test_tensor_used_across_threads_tapes():
    x = ad.tensor([0.3, 0.6], requires_grad=True)
    box = {}

    def build():
        box["y"] = x.sin() * 2.0  # recorded on another thread's tape

    t = threading.Thread(target=build)
    t.start()
    t.join()
    z = (box["y"] * x).sum()  # this thread's tape, referencing the other one
    z.backward()
    xs = np.array([0.3, 0.6])
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(xs) * xs + 2 * np.sin(xs))


def test_freed_graph_memory_is_released():
    import weakref

    x = ad.tensor(np.ones(1000), requires_grad=True)
    y = (x.sin() * 2.0).sum()
    tape_ref = weakref.ref(y._tape)
    y.backward()
    del y
    gc.collect()
    assert tape_ref() is None


def test_training_loop_memory_stays_flat():
    """Tapes, arenas and saved values of finished steps are released: memory after 300 steps is that after 50."""
    import tracemalloc

    rng = np.random.default_rng(4)
    X = ad.tensor(rng.standard_normal((64, 8)))
    y = ad.tensor(rng.integers(0, 3, 64))
    params = [ad.tensor(rng.standard_normal(s) * 0.3, requires_grad=True) for s in ((8, 16), (16,), (16, 3), (3,))]

    def step():
        h = (X @ params[0] + params[1]).tanh()
        loss = ad.nn.functional.cross_entropy(h @ params[2] + params[3], y)
        loss.backward()
        with ad.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad = None

    tracemalloc.start()
    try:
        for _ in range(50):
            step()
        gc.collect()
        after_50 = tracemalloc.get_traced_memory()[0]
        for _ in range(250):
            step()
        gc.collect()
        after_300 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_300 - after_50 < 256 * 1024, (after_50, after_300)


def test_vectorized_matmul_and_reductions_match_rules():
    """Big matmul / amax / prod rows (swept with numpy, operands imported without copies) agree with the rules."""
    rng = np.random.default_rng(5)
    W = ad.tensor(rng.standard_normal((200, 100)) * 0.1, requires_grad=True)
    X = ad.tensor(rng.standard_normal((180, 200)), requires_grad=True)
    b = ad.tensor(rng.uniform(0.9, 1.1, (200, 100)), requires_grad=True)

    def f():
        h = (X @ W).tanh()
        lin = ad.nn.functional.linear(X, b.T.reshape(100, 200)).sin().sum()  # linear: x @ w.T rows
        return h.amax(0).sum() + (h * h).sum() + b.prod(0).sum() + b.amin() + lin

    kernel = ad.autograd.grad(f(), (W, X, b))
    rules = ad.autograd.grad(f(), (W, X, b), create_graph=True)
    for k, r in zip(kernel, rules):
        np.testing.assert_allclose(k.numpy(), r.detach().numpy(), rtol=1e-12, atol=1e-12)
    H = np.tanh(X.detach().numpy() @ W.detach().numpy())
    dh = 2 * H
    dh[np.argmax(H, 0), np.arange(100)] += 1.0
    expected_w = X.detach().numpy().T @ (dh * (1 - H * H))
    np.testing.assert_allclose(kernel[0].numpy(), expected_w, rtol=1e-10)
    wl = b.detach().numpy().T.reshape(100, 200)
    expected_x = (dh * (1 - H * H)) @ W.detach().numpy().T + np.cos(X.detach().numpy() @ wl.T) @ wl
    np.testing.assert_allclose(kernel[1].numpy(), expected_x, rtol=1e-10)


def test_vectorized_linear_with_bias_matches_rules():
    """A big ``F.linear(x, w, b)`` (one row: its bias cotangent is a column sum of g) agrees with the rules, also
    when the bias is used again elsewhere and when an operand is the bias itself."""
    rng = np.random.default_rng(7)
    F = ad.nn.functional
    for dtype in (np.float64, np.float32):
        X = ad.tensor(rng.standard_normal((90, 200)).astype(dtype), requires_grad=True)
        W = ad.tensor((rng.standard_normal((200, 200)) * 0.1).astype(dtype), requires_grad=True)
        b = ad.tensor(rng.standard_normal(200).astype(dtype), requires_grad=True)

        def f(X=X, W=W, b=b):
            h = F.linear(X, W, b).tanh()
            return (h * h).sum() + (b * b).sum() + F.linear(b, W, b).sum() + F.linear(h, W, b).sin().sum()

        assert F.linear(X, W, b).grad_fn.name() == "AddmmBackward0"
        kernel = ad.autograd.grad(f(), (X, W, b))
        rules = ad.autograd.grad(f(), (X, W, b), create_graph=True)
        tol = 1e-12 if dtype == np.float64 else 1e-4
        for k, r in zip(kernel, rules):
            assert k.dtype == r.dtype == X.dtype
            np.testing.assert_allclose(k.numpy(), r.detach().numpy(), rtol=tol, atol=tol)
        xn, wn, bn = (t.detach().numpy() for t in (X, W, b))
        np.testing.assert_allclose(F.linear(X, W, b).detach().numpy(), xn @ wn.T + bn, rtol=tol, atol=tol)
        h = np.tanh(xn @ wn.T + bn)
        g_pre = 2 * h * (1 - h * h) + (np.cos(h @ wn.T + bn) @ wn) * (1 - h * h)
        expected_b = g_pre.sum(0) + 2 * bn + 1.0 + wn.sum(0) + np.cos(h @ wn.T + bn).sum(0)
        np.testing.assert_allclose(kernel[2].numpy(), expected_b, rtol=10 * tol, atol=10 * tol)


def test_big_linear_bias_cotangent_across_batch_sizes():
    """A big linear row's bias cotangent (the column sums of g, taken as one BLAS product with a vector of ones
    kept between calls) is exact for batches smaller and larger than the last one, narrow and wide layers."""
    rng = np.random.default_rng(11)
    F = ad.nn.functional
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        for batch, n_in, n_out in ((3000, 8, 20), (64, 784, 512), (5000, 4, 3), (1, 20000, 2)):
            x = ad.tensor(rng.standard_normal((batch, n_in)).astype(dtype))
            w = ad.tensor(rng.standard_normal((n_out, n_in)).astype(dtype), requires_grad=True)
            b = ad.tensor(rng.standard_normal(n_out).astype(dtype), requires_grad=True)
            c = rng.standard_normal((batch, n_out)).astype(dtype)
            (F.linear(x, w, b) * ad.tensor(c)).sum().backward()
            assert b.grad.dtype == dtype
            np.testing.assert_allclose(b.grad.numpy(), c.astype(np.float64).sum(0), rtol=tol, atol=tol * batch)
            np.testing.assert_allclose(w.grad.numpy(), c.T.astype(np.float64) @ x.numpy(), rtol=tol, atol=tol * batch)


def test_in_place_change_of_a_big_leaf_after_use_raises():
    W = ad.tensor(np.ones((200, 100)), requires_grad=True)
    y = (W * W).sum()
    with ad.no_grad():
        W.mul_(2.0)
    import pytest

    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    assert W.grad is None


def test_parallel_chunks_match_serial_pieces():
    """Elementwise work of PARALLEL_MIN elements or more is split across threads; results are unchanged."""
    from ad.parallel import PARALLEL_MIN

    rng = np.random.default_rng(6)
    data = rng.uniform(-1, 1, PARALLEL_MIN + 1001)
    other = rng.uniform(0.5, 1.5, data.shape)
    big = ad.tensor(data, requires_grad=True)
    c = ad.tensor(other, requires_grad=True)
    (_chain(big) * 1.0 + (big / c).sum()).backward()
    pieces = np.array_split(np.arange(data.size), 40)
    for idx in pieces:
        p = ad.tensor(data[idx], requires_grad=True)
        q = ad.tensor(other[idx], requires_grad=True)
        (_chain(p) + (p / q).sum()).backward()
        np.testing.assert_allclose(big.grad.numpy()[idx], p.grad.numpy(), rtol=1e-13)
        np.testing.assert_allclose(c.grad.numpy()[idx], q.grad.numpy(), rtol=1e-13)
    with fwAD.dual_level():
        jv = fwAD.unpack_dual(_chain(fwAD.make_dual(ad.tensor(data), ad.tensor(other)))).tangent
    np.testing.assert_allclose(jv.item(), float(np.dot(big.grad.numpy() - 1.0 / other, other)), rtol=1e-10)


def test_recycled_arenas_never_overwrite_live_views():
    """Arena buffers are reused between graphs only when no tensor or numpy view refers to them."""
    x = ad.tensor(np.linspace(0.1, 0.9, 50), requires_grad=True)
    kept_values = []
    kept_grads = []
    for k in range(6):
        y = (x * float(k + 1)).sin()
        kept_values.append((y.detach().numpy(), y.detach().numpy().copy()))
        y.sum().backward()
        kept_grads.append((x.grad.numpy(), x.grad.numpy().copy()))
        x.grad = None
        del y
        gc.collect()
    for view, expected in kept_values:
        np.testing.assert_array_equal(view, expected)
    for view, expected in kept_grads:
        np.testing.assert_array_equal(view, expected)


def test_matmul_batch_expanded_rules_match_kernel():
    """Found by the long hypothesis profile: (1, 2, 1) @ (1,) and 1-D @ (1, 2, 3) expand an operand to the batch;
    the differentiable sweep must see consistent shapes and agree with the kernel sweep."""
    rng = np.random.default_rng(7)
    for xs, ys in (((1, 2, 1), (1,)), ((2,), (1, 2, 3)), ((1, 3), (2, 3, 1)), ((2, 1, 3, 2), (2,))):
        x = ad.tensor(rng.standard_normal(xs), requires_grad=True)
        y = ad.tensor(rng.standard_normal(ys), requires_grad=True)
        out = x @ y
        assert out.shape == np.matmul(np.ones(xs), np.ones(ys)).shape
        kernel = ad.autograd.grad((x @ y).sin().sum(), (x, y))
        rules = ad.autograd.grad((x @ y).sin().sum(), (x, y), create_graph=True)
        for k, r in zip(kernel, rules):
            np.testing.assert_allclose(k.numpy(), r.detach().numpy(), rtol=1e-12, atol=1e-12)
        assert ad.autograd.gradcheck(lambda a, b: (a @ b).sin(), (x, y))


def test_nan_and_inf_propagate_as_in_numpy():
    """No fastmath: infinities and NaNs in values and partials come out as numpy computes them."""
    import warnings

    x = ad.tensor([0.0, 1.0, np.nan, np.inf], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = x.log()
        (g,) = ad.autograd.grad(y.sum(), x)
        (g_rule,) = ad.autograd.grad(x.log().sum(), x, create_graph=True)
        expected = 1.0 / np.array([0.0, 1.0, np.nan, np.inf])
        expected_log = np.log([0.0, 1.0, np.nan, np.inf])
    np.testing.assert_array_equal(y.detach().numpy(), expected_log)
    np.testing.assert_array_equal(g.numpy(), expected)
    np.testing.assert_array_equal(g_rule.detach().numpy(), expected)
    z = ad.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (gs,) = ad.autograd.grad(z.sqrt().sum(), z)
    assert np.isnan(gs.numpy()[0]) and np.isinf(gs.numpy()[1]) and gs.numpy()[2] == 0.5 / np.sqrt(2.0)


class _Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


def test_big_cotangent_regions_left_dirty_are_never_read():
    """Cotangent regions of big tensors are not cleared when a backward allocates its (recycled, dirty)
    arena: the first write into one stores, or clears it first. Every kind of first writer is exercised:
    fused rows (unary, binary, x op x), BLAS rows, rules, kernel rows reading a big operand (sum, strided
    and indexed gathers), seeds, hooks and custom Functions; each result is checked against the
    differentiable sweep, which uses no arena."""
    rng = np.random.default_rng(11)
    n = 2 * BIG_ROW

    def f(x, w):
        y = x.sin() * x  # fused unary and binary rows; x reaches two regions
        y.register_hook(lambda g: g * 2.0)  # a hook on a big tensor
        z = (y * y).sum() + y[::3].sum() + y[7] * 3.0 + y.abs().pow(1.5).mean()  # x op x, kernel rows, a rule
        z = z + _Cube.apply(y.tanh()).sum() + (x.reshape(64, -1) @ w).pow(2).sum()  # Function, matmul, rules
        return z

    for _trial in range(4):  # later trials run on arenas recycled from the earlier ones, full of old values
        x0 = rng.uniform(-1.5, 1.5, n)
        w0 = rng.uniform(-0.1, 0.1, (n // 64, 5))
        x, w = ad.tensor(x0, requires_grad=True), ad.tensor(w0, requires_grad=True)
        f(x, w).backward()
        xr, wr = ad.tensor(x0, requires_grad=True), ad.tensor(w0, requires_grad=True)
        gx, gw = ad.autograd.grad(f(xr, wr), (xr, wr), create_graph=True)
        np.testing.assert_allclose(x.grad.numpy(), gx.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(w.grad.numpy(), gw.detach().numpy(), rtol=1e-10, atol=1e-12)
        # seeds into a big region, several outputs at once, the second adding to the first's region
        y = x.cos()
        ad.autograd.backward([y, y * 1.0], [ad.ones_like(y), ad.full_like(y, 2.0)])
        np.testing.assert_allclose(x.grad.numpy(), gx.detach().numpy() - 3.0 * np.sin(x0), rtol=1e-10, atol=1e-12)


def test_ops_in_another_thread_never_append_to_this_threads_tape():
    """A tape is appended to by its own thread only: another thread's ops on its tensors record elsewhere
    (two threads appending to one tape would race for its offsets)."""
    x0 = np.linspace(0.1, 1.0, 6)
    x = ad.tensor(x0, requires_grad=True)
    y = x * 2.0  # recorded on this thread's current tape
    seen = {}

    def worker():
        z = y.sin() * y + y.tanh()  # the fast paths of unary and binary ops, on a tensor of the main tape
        seen["tape"] = z._tape
        z.sum().backward()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["tape"] is not y._tape
    w = 2.0 * x0
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * (np.cos(w) * w + np.sin(w) + 1.0 - np.tanh(w) ** 2))


def test_fused_cross_entropy_matches_log_softmax_and_nll():
    """``F.cross_entropy(x, target)`` (one row) equals ``nll_loss(log_softmax(x))`` (the general path), in
    value and gradient, small (kernel sweep) and big (vectorized row), float64 and float32."""
    F = ad.nn.functional
    rng = np.random.default_rng(9)
    for (m, c), dtype in [((5, 4), np.float64), ((64, 10), np.float32), ((300, 70), np.float64)]:
        data = (rng.standard_normal((m, c)) * 3).astype(dtype)
        target = ad.tensor(rng.integers(0, c, m))
        x1 = ad.tensor(data, requires_grad=True)
        x2 = ad.tensor(data, requires_grad=True)
        fused = F.cross_entropy(x1, target)
        general = F.nll_loss(F.log_softmax(x2, 1), target)
        assert fused.grad_fn.name() == "NllLossBackward0" and fused.dtype == x1.dtype
        tol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(fused.item(), general.item(), rtol=tol)
        (fused * 2.0).backward()
        (general * 2.0).backward()
        assert x1.grad.dtype == x1.dtype
        np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=tol, atol=tol)
    # a row of -inf logits except the target: finite loss, as log_softmax gives
    x = ad.tensor(np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]]), requires_grad=True)
    loss = F.cross_entropy(x, ad.tensor([2, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()


class _Twice(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return g * 2.0


def test_cotangents_of_big_imports_are_exact_in_recycled_arenas():
    """The cotangent regions of big imports are not cleared in advance (engine._TapeSweep): with the arena
    pool full of NaN, every kind of consumer of a big leaf (linear rows with and without bias, kernel row,
    vectorized elementwise row, custom Function), each first in turn, still gives exact gradients."""
    from ad.tape import POOL

    rng = np.random.default_rng(8)
    W = ad.tensor(rng.standard_normal((200, 100)), requires_grad=True)
    X = ad.tensor(rng.standard_normal((30, 100)))
    c = ad.tensor(rng.standard_normal((100, 200)))
    b = ad.tensor(rng.standard_normal(200), requires_grad=True)
    wn, xn, cn = W.detach().numpy(), X.numpy(), c.numpy()
    consumers = {
        "linear": (lambda: ad.nn.functional.linear(X, W).sum(), np.ones((30, 200)).T @ xn),
        "linear_bias": (lambda: ad.nn.functional.linear(X, W, b).sum(), np.ones((30, 200)).T @ xn),
        "transpose": (lambda: (W.T * c).sum(), cn.T),
        "square": (lambda: (W * W).sum(), 2 * wn),
        "function": (lambda: _Twice.apply(W).sum(), np.full(wn.shape, 2.0)),
    }
    orders = [["linear", "transpose"], ["transpose", "linear_bias"], ["square", "linear"], ["function", "linear"]]
    orders += [[name] for name in consumers]
    for names in orders:
        for _ in range(2):
            W.grad = None
            loss = sum((consumers[name][0]() for name in names), ad.tensor(0.0))
            for _ in range(POOL.MAX_BUFFERS):
                POOL.give(np.full(loss._tape.used + 1, np.nan))  # the size the sweep's cotangent arena takes
            loss.backward()
            expected = sum(consumers[name][1] for name in names)
            np.testing.assert_allclose(W.grad.numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=str(names))


def test_recycled_modified_flags_start_clear():
    """A dead tape's ``modified`` flags go back to the pool marked clean (cleared where they were set), and
    a new tape takes them without clearing again: they must read as all zeros."""
    from ad.tape import POOL, current_tape, reset_current

    for _ in range(3):
        x = ad.tensor(np.ones(50), requires_grad=True)
        y = x * 2.0
        z = y * 3.0
        with ad.no_grad():
            y.mul_(2.0)  # flags y's arena offset on the tape
        assert z._tape.modified.any()
        del x, y, z
        gc.collect()
        reset_current()
        gc.collect()
        tape = current_tape(np.dtype(np.float64), 10)
        assert not tape.modified.any()
        assert not any(id(b) in POOL.clean and b.any() for b in POOL.buffers)
        reset_current()


def test_activation_chunks_equal_the_scalar_partials():
    """The big-row loops of tanh, sigmoid and exp (one loop per op, kernels/cpu.py) give exactly
    ``g * unary_partial`` as compiled for the kernel sweep (same dtypes), storing and accumulating."""
    from kernels import opcodes as K
    from kernels.cpu import unary_backward_chunk, unary_partial

    rng = np.random.default_rng(12)
    for dtype in (np.float64, np.float32):
        x = rng.uniform(-2, 2, 1000).astype(dtype)
        g = rng.standard_normal(1000).astype(dtype)
        base = rng.standard_normal(1000).astype(dtype)
        for code, fn in ((K.TANH, np.tanh), (K.SIGMOID, lambda v: 1 / (1 + np.exp(-v))), (K.EXP, np.exp)):
            out = fn(x).astype(dtype)
            d = np.array([unary_partial(code, a, b, 0.0, 0.0) for a, b in zip(x, out)])  # numpy scalars: x's dtype
            gx = base.copy()
            unary_backward_chunk(code, x, out, g, gx, 0.0, 0.0, False)
            np.testing.assert_array_equal(gx, (g * d).astype(dtype))
            gx = base.copy()
            unary_backward_chunk(code, x, out, g, gx, 0.0, 0.0, True)
            # (float32: numba may round the product to float32 before adding; a rounding either way)
            tol = 0 if dtype == np.float64 else 2e-7
            np.testing.assert_allclose(gx, (base + g * d).astype(dtype), rtol=tol, atol=tol)


def test_big_matrix_vector_rows_match_the_rules():
    """Big matmul rows with a vector operand (A @ v, v @ A, v @ v) go to BLAS straight into the cotangent
    arena; the differentiable sweep (the rules, no arena) gives the same gradients."""
    rng = np.random.default_rng(12)
    a0 = rng.standard_normal((256, 128))
    u0, v0 = rng.standard_normal(128), rng.standard_normal(256)
    w0 = rng.standard_normal(BIG_ROW + 3)

    def f(a, u, v, w):
        return ((a @ u).tanh() * v).sum() + (v @ a * u).sum() + (w @ w) * 1e-3 + (a @ u).sum()

    leaves = [ad.tensor(z, requires_grad=True) for z in (a0, u0, v0, w0)]
    f(*leaves).backward()
    again = [ad.tensor(z, requires_grad=True) for z in (a0, u0, v0, w0)]
    expected = ad.autograd.grad(f(*again), again, create_graph=True)
    for leaf, e in zip(leaves, expected):
        np.testing.assert_allclose(leaf.grad.numpy(), e.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_sums_of_huge_tensors_fill_the_cotangent_across_threads():
    """sum/mean of a tensor of PARALLEL_MIN elements or more: its backward fills (first) or adds (later) the
    operand's cotangent in chunks, in the tensor's dtype."""
    from ad.parallel import PARALLEL_MIN

    n = PARALLEL_MIN + 5
    for dtype in (np.float32, np.float64):
        x = ad.tensor(np.linspace(-1.0, 1.0, n).astype(dtype), requires_grad=True)
        y = x * 2.0
        (y.sum() * 3.0 + y.mean() + x.sum()).backward()
        assert x.grad.dtype == x.dtype
        np.testing.assert_allclose(x.grad.numpy(), np.full(n, 2.0 * 3.0 + 2.0 / n + 1.0), rtol=1e-6)


def test_small_recorded_sums_equal_numpy_bit_for_bit():
    """A recorded whole-tensor sum of a few float64 elements adds in Python (ops.structural._total) in numpy's
    order: every value, signed zeros, inf and nan equal np.sum's exactly, recorded or not, for sizes around
    numpy's 8-wide blocks and the Python path's limit; the gradient is ones."""
    from ad.ops.structural import SMALL_SUM

    rng = np.random.default_rng(21)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324, 1.0])
    for n in range(0, SMALL_SUM + 3):
        for values in (rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n), rng.choice(specials, n)):
            x = ad.tensor(values.reshape((1, n)) if n % 2 else values, requires_grad=True)
            with np.errstate(over="ignore", invalid="ignore"):  # (inf - inf; numpy warns above SMALL_SUM)
                s = x.sum()
                expected = np.sum(values)
            np.testing.assert_array_equal(s.detach().numpy(), expected)  # (nan == nan here)
            assert np.signbit(s.item()) == np.signbit(expected)
            s.backward()
            np.testing.assert_array_equal(x.grad.numpy(), np.ones(x.shape))


def test_big_rows_swept_through_any_handle_on_their_node():
    """A big row is swept from Python through a tensor that holds its node. Two ways to end up with another
    object holding it, found by the big-row property tests: an in-place op (the node of ``c.mul_(v)`` is
    built as a temporary, then moved into ``c``), and ``unpack_dual``'s primal outliving the dual tensor.
    Both rows read a big leaf whose values are not copied into the arena, so the kernel must not sweep them."""
    import ad.autograd.forward_ad as fwAD

    rng = np.random.default_rng(13)
    n = BIG_ROW + 1
    v0, c0 = rng.standard_normal(n), rng.standard_normal(n)
    v = ad.tensor(v0, requires_grad=True)
    c = v.clone()
    c.mul_(v)
    (g,) = ad.autograd.grad(c.sum(), v)
    np.testing.assert_allclose(g.numpy(), 2.0 * v0)
    x = ad.tensor(v0, requires_grad=True)
    with fwAD.dual_level():
        y = fwAD.make_dual(x, ad.ones(n)) * ad.tensor(c0)
        primal, tangent = fwAD.unpack_dual(y)
        del y
        gc.collect()
    primal.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), c0)
    np.testing.assert_allclose(tangent.numpy(), c0)


def test_big_tape_arena_goes_back_to_the_pool():
    """A tape made for big tensors reserves room for a chain of them (far more than the pool would hold, were
    it counted whole) but only the part its ops wrote holds memory: the pool counts that part, so the next
    step's tape takes the same arena instead of faulting in fresh pages, and its results stay exact."""
    from ad.tape import POOL

    x = ad.tensor(np.linspace(-1.0, 1.0, 2_000_000), requires_grad=True)
    for step in range(2):
        x.grad = None
        loss = (x * 2.0).sin().sum()
        capacity = loss._tape.capacity
        assert capacity * 8 > POOL.MAX_TOTAL_BYTES // 2  # whole, it would not be pooled
        if step == 1:
            assert not any(b.shape[0] == capacity for b in POOL.buffers)  # taken back out by this step's tape
        loss.backward()
        np.testing.assert_allclose(x.grad.numpy(), 2.0 * np.cos(2.0 * x.detach().numpy()), rtol=1e-13)
        del loss
        gc.collect()
        assert any(b.shape[0] == capacity and b.dtype == np.float64 for b in POOL.buffers)


def test_stack_of_many_pieces_rows_match_the_loop_and_fall_back(monkeypatch):
    """A stack of many pieces that all require grad and live on the current tape has its rows built at once
    (ops/indexing._stack_rows); a piece that does not qualify (a constant, a piece of another tape) takes the
    per-piece loop. Both give the analytic gradient, in the kernel sweep and the differentiable sweep, and the
    lazy layouts read as the list of ``(strides, base)`` they stand for."""
    import sys

    from ad.ops.indexing import MANY_PIECES

    indexing = sys.modules["ad.ops.indexing"]
    built = []  # what _stack_rows returned (the first row, or None where it declined), per stack
    stack_rows = indexing._stack_rows
    monkeypatch.setattr(indexing, "_stack_rows", lambda *a: built.append(stack_rows(*a)) or built[-1])

    rng = np.random.default_rng(7)
    n = MANY_PIECES + 4
    ps = [ad.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(n)]
    w = rng.standard_normal((n, 2, 3))
    outside = (ps[1] * 1.0).exp()  # recorded on a tape that is retired before the stack (an imported piece)
    ad.tape.reset_current()
    for variant in ("fast", "constant", "imported"):
        pieces = [ad.tanh(p * 2.0) for p in ps]
        if variant == "constant":
            pieces[3] = ad.tensor(np.ones((2, 3)))
        elif variant == "imported":
            pieces[5] = outside
        built.clear()
        s = ad.stack(pieces, dim=1)
        # (the numpy-built rows were once never taken: ``tape.pack is ROW.pack_into`` compared fresh bound methods)
        assert (built[0] is not None) == (variant == "fast")
        assert len(s._ctx) == n and list(s._ctx)[2] == s._ctx[2] == s._ctx[-n + 2] == ((60, 1), 6)
        loss = (s * ad.tensor(w.transpose(1, 0, 2))).sum()
        expected = [2.0 * w[k] * (1 - np.tanh(2.0 * p.detach().numpy()) ** 2) for k, p in enumerate(ps)]
        if variant == "constant":
            expected[3] = 0.0 * expected[3]
        elif variant == "imported":
            e1 = np.exp(ps[1].detach().numpy())
            expected[1] = expected[1] + w[5] * e1
            expected[5] = 0.0 * expected[5]
        (g1,) = ad.autograd.grad(loss, [ps[1]], retain_graph=True)
        grads = ad.autograd.grad(loss, ps, create_graph=True, allow_unused=True, materialize_grads=True)
        np.testing.assert_allclose(g1.numpy(), expected[1], rtol=1e-13)
        for g, e in zip(grads, expected):
            np.testing.assert_allclose(g.detach().numpy(), e, rtol=1e-13, atol=1e-300)


def test_tape_imports_view_reads_like_the_dict_it_replaced():
    """``Tape.imports`` (a view over the packed ``import_at`` ints): an import's entry is ``(offset, row, tensor,
    version)``; a tensor written in place since is imported again (a new copy, its new version); a recorded tensor
    of an older tape is held weakly; ``del`` and ``clear`` empty both dicts."""
    a = ad.tensor([1.0, 2.0], requires_grad=True)
    c = ad.tensor([3.0, 4.0])
    old = a * 1.5  # on a tape retired below: imported into the next one by weak reference
    ad.tape.reset_current()
    y = a * c
    tape = y._tape
    imports = tape.imports
    ka, kc = id(a), id(c)
    assert set(imports) == {ka, kc} and len(imports) == 2 and ka in imports
    off, row, ref, version = imports[ka]
    assert ref is a and version == 0 and row == y._row and np.array_equal(tape.values[off : off + 2], [1.0, 2.0])
    c_off = imports[kc][0]
    with ad.no_grad():
        c.add_(1.0)
    z = y * c  # c changed in place since its import: copied again, at a new offset, with its new version
    off2, _, ref2, version2 = imports.get(kc)
    assert ref2 is c and version2 == c._version == 1 and off2 != c_off
    assert np.array_equal(tape.values[off2 : off2 + 2], [4.0, 5.0])
    w = z * old
    _, _, ref3, _ = dict(imports.items())[id(old)]
    assert type(ref3) is weakref.ref and ref3() is old and w._tape is tape
    assert sum(e[2] is c for e in imports.values()) == 1 and imports.get(12345) is None
    del imports[ka]
    assert ka not in tape.import_at and ka not in tape.import_refs
    imports.clear()
    assert not tape.import_at and not tape.import_refs and len(imports) == 0


def test_fast_path_results_keep_their_operands_without_a_tuple():
    """The recording fast paths store a result's operands in ``_in0``/``_in1`` (``tensor._Operands``): ``_inputs``
    reads them back as the tuple it held before, an ``_inputs`` set on the tensor takes precedence, ``detach_``
    drops them; a leaf times a constant, tanh and a sum leave a Tensor per op and one tuple per leaf (its extern
    entry) for the garbage collector, and the gradients and grad_fn graph are unchanged."""
    p = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    c = ad.tensor([1.5, 2.0, -0.5])
    y = p * c
    t = ad.tanh(y)
    s = t.sum()
    assert y._inputs == (p, c) and t._inputs == (y,) and s._inputs == (t,) and p._inputs == ()
    assert "_inputs" not in y.__dict__ and ad.Tensor._inputs == ()
    assert [f for f, _ in s.grad_fn.next_functions] == [t.grad_fn]
    assert t.grad_fn.next_functions[0][0] is y.grad_fn
    assert y.grad_fn.next_functions[0][0].variable is p and y.grad_fn.next_functions[1] == (None, 0)
    s.backward(retain_graph=True)
    np.testing.assert_allclose(p.grad.numpy(), (1 - np.tanh(p.detach().numpy() * c.numpy()) ** 2) * c.numpy())
    (gg,) = ad.autograd.grad(s, p, create_graph=True)  # the differentiable sweep walks ``_inputs``
    np.testing.assert_allclose(gg.detach().numpy(), p.grad.numpy(), rtol=1e-15)
    t._inputs = (c,)
    assert t._inputs == (c,)
    y.detach_()
    assert y._inputs == () and y._in0 is None and y.is_leaf
    leaves = [ad.tensor(np.full(4, k + 0.5), requires_grad=True) for k in range(50)]
    consts = [ad.tensor(np.full(4, 0.25)) for _ in range(50)]
    for _ in range(2):  # (the first import of a tensor makes its ``_imports`` list; the next steps reuse it)
        ad.tape.reset_current()
        outs = None
        gc.collect()
        before = len(gc.get_objects())
        outs = [ad.tanh(q * k).sum() for q, k in zip(leaves, consts)]
        made = len(gc.get_objects()) - before
    assert made <= 4 * len(outs) + 10, made  # 3 tensors and 1 extern tuple per leaf (and the list)


def test_empty_rows_between_small_rows_in_every_small_row_kernel():
    """Rows of 0 elements (their offsets index nothing) beside rows of 16, through the kernels whose element
    loops index the arena with unsigned offsets: the eager sweep, the replay with its fused step (within
    rounding: vmath), the batched sweep and the rule sweep (create_graph) give the same gradients."""

    def f(x, e):
        return _chain(x) + _chain(e) + (e * e).sum()

    rng = np.random.default_rng(7)
    data = rng.uniform(-1, 1, 16)
    x, e = ad.tensor(data, requires_grad=True), ad.tensor(np.zeros(0), requires_grad=True)
    f(x, e).backward()
    assert e.grad.shape == (0,)
    step = ad.compile(f)
    for _ in range(3):  # recorded, then replayed (and fused)
        xc, ec = ad.tensor(data, requires_grad=True), ad.tensor(np.zeros(0), requires_grad=True)
        step(xc, ec).backward()
        np.testing.assert_allclose(xc.grad.numpy(), x.grad.numpy(), rtol=1e-13)  # (replay: vmath)
        assert ec.grad.shape == (0,)
    xb, eb = ad.tensor(data, requires_grad=True), ad.tensor(np.zeros(0), requires_grad=True)
    gx, ge = ad.autograd.grad(f(xb, eb), (xb, eb), ad.ones(3, dtype=ad.float64), is_grads_batched=True)
    np.testing.assert_array_equal(gx.numpy(), np.broadcast_to(x.grad.numpy(), (3, 16)))
    assert ge.shape == (3, 0)
    (gr, _) = ad.autograd.grad(f(xb, eb), (xb, eb), create_graph=True)
    np.testing.assert_allclose(gr.detach().numpy(), x.grad.numpy(), rtol=1e-13)
