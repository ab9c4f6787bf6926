"""ad.compile: every replayed call against the same function run eagerly (values and gradients)."""

import sys
import warnings

import numpy as np
import pytest

import ad
import ad.nn.functional as F
from kernels import opcodes as K

RNG = np.random.default_rng(0)


def close(a, b, tol=1e-12):
    a = a.detach().numpy() if isinstance(a, ad.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, ad.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def replayed(t):
    """Whether ``t`` came from a replay."""
    return isinstance(t._tape, sys.modules["ad.compile_replay"]._ReplayTape)


def chain(x, c):
    for i in range(15):
        k = i % 5
        if k == 0:
            x = x * c
        elif k == 1:
            x = x + (-1.0)
        elif k == 2:
            x = ad.sin(x)
        elif k == 3:
            x = ad.tanh(x)
        else:
            x = ad.exp(x)
    return x.sum()


def mlp_loss(x, target, w1, b1, w2, b2):
    h = ad.tanh(F.linear(x, w1, b1))
    return F.cross_entropy(F.linear(h, w2, b2), target)


def params(dtype=np.float64):
    shapes = [(32, 12), (32,), (5, 32), (5,)]
    return [ad.tensor(RNG.standard_normal(s).astype(dtype) * 0.3, requires_grad=True) for s in shapes]


def grads_of(loss, ps):
    for p in ps:
        p.grad = None
    loss.backward()
    return [p.grad.numpy().copy() for p in ps]


def same_as_eager(y, g, f, args, leaves):
    """The replayed result ``y`` and its gradients ``g`` equal an eager call's."""
    y_ref = f(*args)
    close(y, y_ref)
    for a, b in zip(g, grads_of(y_ref, leaves)):
        close(a, b)


def test_chain_replay_matches_eager_values_and_grads():
    c = ad.tensor(RNG.uniform(0.99, 1.0, 16))
    cf = ad.compile(chain)
    for step in range(4):
        w = ad.tensor(RNG.uniform(0.1, 1.0, 16), requires_grad=True)
        y = cf(w, c)
        g = grads_of(y, [w])
        y_ref = chain(w, c)
        g_ref = grads_of(y_ref, [w])
        close(y, y_ref)
        close(g[0], g_ref[0])
        assert replayed(y) == (step >= 2)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_mlp_training_loop_with_optimizer_matches_eager(opt_name):
    ps = params()
    ps_ref = [ad.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    make = getattr(ad.optim, opt_name)
    opt, opt_ref = make(ps, lr=0.05), make(ps_ref, lr=0.05)
    step = ad.compile(mlp_loss)
    for _ in range(5):
        x = ad.tensor(RNG.standard_normal((8, 12)))
        target = ad.tensor(RNG.integers(0, 5, 8))
        opt.zero_grad()
        loss = step(x, target, *ps)
        loss.backward()
        opt.step()
        opt_ref.zero_grad()
        loss_ref = mlp_loss(x, target, *ps_ref)
        loss_ref.backward()
        opt_ref.step()
        close(loss, loss_ref)
        for p, q in zip(ps, ps_ref):
            close(p, q)
    assert replayed(loss)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_dense_rows_replay_through_numpy_blas_across_optimizer_steps(dtype):
    """Linear and matmul rows over ``BIG_ROW`` elements replay as numpy BLAS calls (segments "m", as the eager
    op computes them): an MLP whose first weight is big, a vector-matrix product and a batched matmul with a
    big matrix broadcast over the batch, against eager after each SGD step (values and gradients)."""
    tol = 1e-5 if dtype == np.float32 else 1e-12
    rng = np.random.default_rng(3)

    def leaf(*shape):
        return ad.tensor((rng.standard_normal(shape) * 0.1).astype(dtype), requires_grad=True)

    def f(x, t, w1, b1, w2, b2, m, v, k):
        h = ad.tanh(F.linear(x, w1, b1))  # (8, 128) @ (160, 128).T: the weight is big
        u = ad.matmul(v, m)  # (128,) @ (128, 140): a vector times a big matrix
        batched = ad.matmul(h.reshape(2, 4, 160), k)  # (2, 4, 160) @ (160, 140): k broadcast over the batch
        return F.cross_entropy(F.linear(h, w2, b2), t) + (u * u).sum() * 0.01 + batched.tanh().mean()

    ps = [leaf(160, 128), leaf(160), leaf(10, 160), leaf(10), leaf(128, 140), leaf(128), leaf(160, 140)]
    ps_ref = [ad.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    opt, opt_ref = ad.optim.SGD(ps, lr=0.1), ad.optim.SGD(ps_ref, lr=0.1)
    cf = ad.compile(f)
    for _ in range(4):
        x = ad.tensor(rng.standard_normal((8, 128)).astype(dtype))
        t = ad.tensor(rng.integers(0, 10, 8))
        for step, params, o in ((cf, ps, opt), (f, ps_ref, opt_ref)):
            o.zero_grad()
            loss = step(x, t, *params)
            loss.backward()
            o.step()
            if step is cf:
                got, grads = loss, [p.grad.numpy().copy() for p in params]
        close(got, loss, tol)
        for g, p in zip(grads, ps_ref):
            close(g, p.grad, tol)
        for p, q in zip(ps, ps_ref):
            close(p, q, tol)
    assert replayed(got)
    tpl = next(iter(cf.cache.values())).template
    assert sum(seg[0] == "m" for seg in tpl.segments) >= 3


@pytest.mark.parametrize("rows", [2, 64, 65])
def test_float32_linear_of_few_rows_eager_and_replayed_agree(rows):
    """A float32 linear of at most ``TRANSPOSED_MAX_ROWS`` rows computes ``w @ x.T`` and copies it out
    (``ops/dense.linear_product``); one row more takes ``x @ w.T``. Either way: the float64 product to float32
    rounding, a 3-D input as its rows, no_grad's result the same, and the replayed big rows ("m") the eager
    call's values and gradients to float32 rounding (BLAS's thread count, which ``blas_threads.matmul`` lowers
    while the cores are contended, can change the last bits)."""
    from ad.ops.dense import TRANSPOSED_MAX_ROWS, linear_product

    assert TRANSPOSED_MAX_ROWS == 64
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 300)).astype(np.float32)
    w = (rng.standard_normal((200, 300)) * 0.05).astype(np.float32)
    b = rng.standard_normal(200).astype(np.float32)
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    got = linear_product(x, w)
    assert got.dtype == np.float32 and got.shape == (rows, 200)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    if rows % 2 == 0:
        x3 = x.reshape(2, rows // 2, 300)
        np.testing.assert_allclose(linear_product(x3, w), got.reshape(2, rows // 2, 200), rtol=1e-6, atol=1e-6)
    with ad.no_grad():
        no_grad = F.linear(ad.tensor(x), ad.tensor(w), ad.tensor(b)).numpy()
        np.testing.assert_allclose(no_grad, got + b, rtol=1e-6, atol=1e-6)
    ws = [ad.tensor(w, requires_grad=True), ad.tensor(b, requires_grad=True)]

    def f(xt, w_, b_):
        return (ad.tanh(F.linear(xt, w_, b_)) ** 2).sum()

    cf = ad.compile(f)
    xt = ad.tensor(x)
    for _ in range(3):
        y = cf(xt, *ws)
        g = grads_of(y, ws)
    assert replayed(y)
    assert any(seg[0] == "m" for seg in next(iter(cf.cache.values())).template.segments)
    y_ref = f(xt, *ws)
    close(y, y_ref, 1e-6)
    for a, b_ in zip(g, grads_of(y_ref, ws)):
        close(a, b_, 1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_transpose_copies_bits_and_falls_back(dtype):
    """``blas_threads.transpose`` (the float32 linear's copy of ``w @ x.T`` out: OpenBLAS's ?omatcopy where
    found) gives numpy's ``src.T`` bit for bit, quiet NaNs, infinities, -0.0 and subnormals included, for
    shapes with a dimension of one too; an ``out`` that is not C-contiguous takes numpy's copy."""
    from ad import blas_threads

    rng = np.random.default_rng(11)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    tiny = np.finfo(dtype).smallest_subnormal
    for shape in [(512, 64), (10, 64), (1, 7), (7, 1), (3, 5)]:
        src = rng.standard_normal(shape).astype(dtype)
        specials = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, tiny, -tiny], dtype)
        k = min(src.size, specials.size)
        src.reshape(-1)[:k] = specials[:k]
        out = np.full(shape[::-1], 7.0, dtype)
        blas_threads.transpose(src, out)
        assert np.array_equal(out.view(uint), np.ascontiguousarray(src.T).view(uint))
    src = rng.standard_normal((4, 6)).astype(dtype)
    out = np.empty((12, 4), dtype)[::2]  # (a strided out: numpy's copy)
    blas_threads.transpose(src, out)
    assert np.array_equal(out, src.T)


def test_dense_gemm_backs_off_to_one_thread_while_contended(monkeypatch):
    """``blas_threads.matmul`` (every matmul and linear row's GEMM): threaded calls much slower than the fastest
    seen for their shapes keep the next ``CONTENDED_HOLD_S`` of GEMMs on the calling thread (BLAS's count 1 during
    the call, put back after), then it goes back to the threads; products and accumulations are a @ b throughout.
    A lone slow call among normal ones does not hold (``CONTENDED_STRIKES``)."""
    from ad import blas_threads

    if not blas_threads.available():
        pytest.skip("no OpenBLAS thread control found for numpy's BLAS")
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((64, 100)), rng.standard_normal((100, 60))
    out = np.empty((64, 60))
    counts = []
    product = blas_threads._product

    def counted(*args):
        counts.append([getter() for _, getter in blas_threads._get_controls()])
        product(*args)

    monkeypatch.setattr(blas_threads, "_product", counted)
    monkeypatch.setattr(blas_threads, "_hold_until", 0.0)
    monkeypatch.setattr(blas_threads, "_fastest", {((64, 100), (100, 60), "d"): 1e-12})
    monkeypatch.setattr(blas_threads, "CONTENDED_MIN_S", 0.0)
    monkeypatch.setattr(blas_threads, "CONTENDED_STRIKES", 1)
    monkeypatch.setattr(blas_threads, "_strikes", 0)
    before = [getter() for _, getter in blas_threads._get_controls()]
    blas_threads.matmul(a, b, out)  # "contended": far slower than the 1e-12 s recorded
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    assert blas_threads._hold_until > 0.0
    blas_threads.matmul(a, b, out, accumulate=True)  # held: on the calling thread
    np.testing.assert_allclose(out, 2 * (a @ b), rtol=1e-12, atol=1e-12)
    assert counts == [before, [1] * len(before)]
    assert [getter() for _, getter in blas_threads._get_controls()] == before
    monkeypatch.setattr(blas_threads, "_hold_until", 0.0)  # the hold over: threads again
    blas_threads.matmul(a, b, out)
    assert counts[-1] == before
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    # no fast call seen (a load from the start on): a rate under CONTENDED_RATE holds too; a first call is not judged
    monkeypatch.setattr(blas_threads, "_hold_until", 0.0)
    monkeypatch.setattr(blas_threads, "_fastest", {})
    monkeypatch.setattr(blas_threads, "CONTENDED_RATE", 1e30)
    blas_threads.matmul(a, b, out)
    assert blas_threads._hold_until == 0.0
    monkeypatch.setattr(blas_threads, "CONTENDED_RATIO", 1e30)  # (the ratio rule out of the way)
    blas_threads._fastest[(64, 100), (100, 60), "d"] = 1e-12
    blas_threads.matmul(a, b, out)
    assert blas_threads._hold_until > 0.0
    # strikes: two slow calls with a normal one between do not reach three; a third slow one in a row does
    monkeypatch.setattr(blas_threads, "_hold_until", 0.0)
    monkeypatch.setattr(blas_threads, "CONTENDED_STRIKES", 3)
    monkeypatch.setattr(blas_threads, "CONTENDED_RATE", 0.0)
    monkeypatch.setattr(blas_threads, "CONTENDED_RATIO", 8.0)
    key = ((64, 100), (100, 60), "d")
    for fastest in (1e-12, 10.0, 1e-12, 1e-12):  # slow, normal (a new fastest), slow, slow: strikes 1, 0, 1, 2
        blas_threads._fastest[key] = fastest
        blas_threads.matmul(a, b, out)
    assert blas_threads._hold_until == 0.0 and blas_threads._strikes == 2
    blas_threads._fastest[key] = 1e-12
    blas_threads.matmul(a, b, out)
    assert blas_threads._hold_until > 0.0 and blas_threads._strikes == 0
    # deterministic algorithms: no back-off (BLAS's thread count whatever the timings)
    monkeypatch.setattr(blas_threads, "_hold_until", 0.0)
    monkeypatch.setattr(blas_threads, "CONTENDED_STRIKES", 1)
    ad.use_deterministic_algorithms(True)
    try:
        blas_threads.matmul(a, b, out)
        assert blas_threads._hold_until == 0.0
    finally:
        ad.use_deterministic_algorithms(False)
    assert blas_threads.backoff


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_batched_products_equal_numpys(dtype, monkeypatch):
    """``blas_threads.matmuls`` (a linear row's two cotangents side by side, each on one BLAS thread, through
    OpenBLAS's batch GEMM): numpy's products (to BLAS rounding) into outputs holding NaN, and ``+=`` them with
    ``accumulate``; transposed operands, a strided output (nothing outside it written), a small product (numpy's
    calls: the batch crashes on those), outputs overlapping an operand or each other and one BLAS thread
    (numpy's calls, which copy an overlapped operand) all give numpy's values."""
    from ad import blas_threads

    rng = np.random.default_rng(3)
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)
    g, w, x, x2 = (rng.standard_normal(s).astype(dtype) for s in [(64, 512), (512, 384), (64, 384), (64, 700)])
    taken = []
    batched = blas_threads._batched
    monkeypatch.setattr(blas_threads, "_batched", lambda *a: taken.append(batched(*a)) or taken[-1])
    monkeypatch.setattr(blas_threads, "backoff", False)  # (no contention hold: the test's load does not decide)
    gx, gw = np.full((64, 384), np.nan, dtype), np.full((512, 384), np.nan, dtype)
    blas_threads.matmuls([(g, w, gx, False), (g.T, x, gw, False)])
    np.testing.assert_allclose(gx, g @ w, **tol)
    np.testing.assert_allclose(gw, g.T @ x, **tol)
    found = (blas_threads._batches or {}).get(np.dtype(dtype).char)
    if found is not None and found[2]() == 2:  # (a batch GEMM, two BLAS threads: the batch was taken)
        assert taken == [True]
    blas_threads.matmuls([(g, w, gx, True), (g.T, x, gw, True)])
    np.testing.assert_allclose(gx, 2 * (g @ w), **tol)
    np.testing.assert_allclose(gw, 2 * (g.T @ x), **tol)
    big = np.full((600, 800), np.nan, dtype)
    view = big[7:519, 3:703]  # (ldc 800)
    blas_threads.matmuls([(g.T, x2, view, False), (g, w, gx, False)])
    np.testing.assert_allclose(view, g.T @ x2, **tol)
    np.testing.assert_allclose(gx, g @ w, **tol)
    assert np.isnan(big[:7]).all() and np.isnan(big[:, :3]).all() and np.isnan(big[519:]).all()
    assert np.isnan(big[:, 703:]).all()
    small = np.full((8, 16), np.nan, dtype)
    blas_threads.matmuls([(g[:8].T[:8], g[:8, :16], small, False), (g.T, x, gw, False)])
    np.testing.assert_allclose(small, g[:8].T[:8] @ g[:8, :16], **tol)
    np.testing.assert_allclose(gw, g.T @ x, **tol)
    arena = np.zeros(64 * 512 + 1000, dtype)
    a, out = arena[: 64 * 512].reshape(64, 512), arena[1000:].reshape(64, 512)  # (out overlaps a)
    w2 = rng.standard_normal((512, 512)).astype(dtype)
    assert not batched([(a, w2, out, False), (g.T, x, gw, False)])
    assert not batched([(g, w, gw[:64], False), (g.T, x, gw, False)])  # (outputs overlap)
    with blas_threads.single_threaded():  # one BLAS thread: numpy's calls
        gw2 = np.full((512, 384), np.nan, dtype)
        assert not batched([(g, w, gx, False), (g.T, x, gw2, False)])
        blas_threads.matmuls([(g, w, gx, False), (g.T, x, gw2, False)])
    np.testing.assert_allclose(gw2, g.T @ x, **tol)


def test_dense_layer_gradients_through_batched_blas_match_float64():
    """A dense layer big enough for the batched BLAS products (``big_rows._matmul_row`` hands the input's and the
    weight's cotangents to ``blas_threads.matmuls``): eager and replayed gradients equal the float64 ones, over
    steps; ``linear(a, a)``, one tensor as input and weight (both products into one region), adds the two."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((64, 300))
    params = [rng.standard_normal(s) * 0.05 for s in [(512, 300), (512,), (384, 512), (384,)]]

    def f(xt, w1, b1, w2, b2):
        return (ad.tanh(F.linear(ad.tanh(F.linear(xt, w1, b1)), w2, b2)) ** 2).sum()

    def reference(ps):
        h = np.tanh(x @ ps[0].T + ps[1])
        z = np.tanh(h @ ps[2].T + ps[3])
        gz = 2 * z * (1 - z**2)
        gh = (gz @ ps[2]) * (1 - h**2)
        return [gh.T @ x, gh.sum(0), gz.T @ h, gz.sum(0)]

    cf = ad.compile(f)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 2e-3)):
        ws = [ad.tensor(p.astype(dtype), requires_grad=True) for p in params]
        xt = ad.tensor(x.astype(dtype))
        for _ in range(2):
            for got in (grads_of(f(xt, *ws), ws), grads_of(cf(xt, *ws), ws)):
                for a, b in zip(got, reference([p.detach().numpy().astype(np.float64) for p in ws])):
                    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
            with ad.no_grad():
                for p in ws:
                    p -= 0.1 * p.grad
        assert replayed(cf(xt, *ws))
    a0 = rng.standard_normal((256, 256)) * 0.1
    a = ad.tensor(a0, requires_grad=True)
    (g,) = ad.autograd.grad((F.linear(a, a) ** 2).sum(), [a])
    ga = 2 * (a0 @ a0.T)
    np.testing.assert_allclose(g.numpy(), ga @ a0 + ga.T @ a0, rtol=1e-10, atol=1e-10)


def test_parameters_read_from_outside_are_reread_after_in_place_updates():
    w = ad.tensor(RNG.standard_normal(6), requires_grad=True)
    f = ad.compile(lambda x: (ad.tanh(x * w) * w).sum())
    for _ in range(4):
        x = ad.tensor(RNG.standard_normal(6))
        w.grad = None
        y = f(x)
        y.backward()
        g = w.grad.numpy().copy()
        w.grad = None
        y_ref = (ad.tanh(x * w) * w).sum()
        y_ref.backward()
        close(y, y_ref)
        close(g, w.grad)
        with ad.no_grad():
            w -= 0.1 * w.grad
    assert replayed(y)


def test_changed_batch_shape_is_a_new_signature_and_both_are_kept():
    ps = params()
    step = ad.compile(mlp_loss)
    for batch in (4, 7, 4, 7, 4, 7):
        x = ad.tensor(RNG.standard_normal((batch, 12)))
        target = ad.tensor(RNG.integers(0, 5, batch))
        loss = step(x, target, *ps)
        g = grads_of(loss, ps)
        g_ref = grads_of(mlp_loss(x, target, *ps), ps)
        for a, b in zip(g, g_ref):
            close(a, b)
    assert len(step.cache) == 2
    assert replayed(loss)


def test_hooks_on_parameters_and_retain_grad_and_hooks_inside_fn():
    w = ad.tensor(RNG.standard_normal(5), requires_grad=True)
    seen = []
    w.register_hook(lambda g: seen.append(g.numpy().copy()))

    def f(x):
        h = ad.sin(x * w)
        h.retain_grad()
        h.register_hook(lambda g: g * 2.0)
        return (h * h).sum(), h

    cf = ad.compile(f)
    for _ in range(3):
        x = ad.tensor(RNG.standard_normal(5))
        seen.clear()
        w.grad = None
        y, h = cf(x)
        y.backward()
        g, hg, hook_g = w.grad.numpy().copy(), h.grad.numpy().copy(), seen[0]
        seen.clear()
        w.grad = None
        y_ref, h_ref = f(x)
        y_ref.backward()
        close(g, w.grad)
        close(hg, h_ref.grad)
        close(hook_g, seen[0])
    assert replayed(y)


def test_retain_graph_twice_and_grad_with_inputs_and_create_graph():
    w = ad.tensor(RNG.standard_normal(4), requires_grad=True)
    v = ad.tensor(RNG.standard_normal(4), requires_grad=True)

    def f(x):
        return (ad.exp(x * w) * v).sum()

    cf = ad.compile(f)
    for _ in range(3):
        x = ad.tensor(RNG.standard_normal(4))
        y = cf(x)
    assert replayed(y)
    y_ref = f(x)
    w.grad = None
    y.backward(retain_graph=True)
    y.backward()
    twice = w.grad.numpy().copy()
    w.grad = None
    y_ref.backward(retain_graph=True)
    y_ref.backward()
    close(twice, w.grad)
    (gw,) = ad.autograd.grad(cf(x), [w])
    (gw_ref,) = ad.autograd.grad(f(x), [w])
    close(gw, gw_ref)
    (gw,) = ad.autograd.grad(cf(x), [w], create_graph=True)
    (gw_ref,) = ad.autograd.grad(f(x), [w], create_graph=True)
    close(gw, gw_ref)
    (h,) = ad.autograd.grad(gw.sum(), [v])
    (h_ref,) = ad.autograd.grad(gw_ref.sum(), [v])
    close(h, h_ref)


def test_float32_and_non_tensor_arguments_and_kwargs_and_decorator():
    ps = params(np.float32)

    @ad.compile
    def step(x, target, *ps, scale=1.0):
        return mlp_loss(x, target, *ps) * scale

    for scale in (1.0, 2.0, 1.0, 2.0, 1.0, 2.0):
        x = ad.tensor(RNG.standard_normal((6, 12)).astype(np.float32))
        target = ad.tensor(RNG.integers(0, 5, 6))
        loss = step(x, target, *ps, scale=scale)
        g = grads_of(loss, ps)
        g_ref = grads_of(mlp_loss(x, target, *ps) * scale, ps)
        assert loss.dtype == np.float32
        for a, b in zip(g, g_ref):
            close(a, b, 1e-5)
    assert replayed(loss)
    assert len(step.cache) == 2


def test_returns_tuple_dict_and_non_tensor():
    w = ad.tensor(RNG.standard_normal(3), requires_grad=True)

    @ad.compile(mode="reduce-overhead")
    def f(x):
        y = x * w
        return {"sum": y.sum(), "parts": (y, ad.cos(y))}, "tag"

    for _ in range(3):
        x = ad.tensor(RNG.standard_normal(3))
        out, tag = f(x)
    assert tag == "tag" and replayed(out["sum"])
    close(out["parts"][1], ad.cos(x * w))
    (out["sum"] + out["parts"][1].sum()).backward()
    g = w.grad.numpy().copy()
    w.grad = None
    y = x * w
    (y.sum() + ad.cos(y).sum()).backward()
    close(g, w.grad)


def test_no_grad_call_runs_eagerly():
    w = ad.tensor(RNG.standard_normal(3), requires_grad=True)
    f = ad.compile(lambda x: (x * w).sum())
    x = ad.tensor(RNG.standard_normal(3))
    with ad.no_grad():
        for _ in range(3):
            y = f(x)
    assert not y.requires_grad
    close(y, (x * w).sum())


def fallback_cases():
    w = ad.tensor(RNG.standard_normal(4), requires_grad=True)
    return {
        "item": lambda x: (x * w).sum() * (x * w).sum().item(),
        "bool": lambda x: (x * w).sum() if bool((x > 0).all()) else (x * w * 2).sum(),
        "numpy": lambda x: (x * w).sum() + float(x.numpy()[0]),
        "mask": lambda x: (x * w)[x > 0].sum(),
        "random": lambda x: F.dropout(x * w, 0.5).sum(),
        "tensor of a tensor": lambda x: (x * w * ad.tensor(x)).sum(),
        "untracked computation": lambda x: (w * (x * 2.0)).sum(),
        "in place": lambda x: (w * x.mul_(1.0)).sum(),
    }, w


@pytest.mark.parametrize("case", list(fallback_cases()[0]))
def test_fallbacks_warn_once_and_give_eager_answers(case):
    fns, w = fallback_cases()
    fn = fns[case]
    cf = ad.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(5):
            x = ad.tensor(RNG.standard_normal(4) + (3.0 if case == "bool" else 0.0))
            if case == "random":
                ad.manual_seed(k)
            w.grad = None
            y = cf(x)
            y.backward()
            g = w.grad.numpy().copy()
            if case == "random":
                ad.manual_seed(k)
            w.grad = None
            y_ref = fn(x)
            y_ref.backward()
            close(y, y_ref)
            close(g, w.grad)
            assert not replayed(y)
    mine = [c for c in caught if "ad.compile" in str(c.message)]
    assert len(mine) == 1, [str(c.message) for c in caught]
    if case in ("item", "numpy", "mask"):
        assert "test_compile.py" in str(mine[0].message)


def test_custom_function_inside_runs_eagerly_with_eager_answers():
    class Square(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    w = ad.tensor(RNG.standard_normal(3), requires_grad=True)
    fn = lambda x: Square.apply(x * w).sum()  # noqa: E731
    cf = ad.compile(fn)
    with pytest.warns(UserWarning, match="custom autograd.Function"):
        for _ in range(3):
            x = ad.tensor(RNG.standard_normal(3))
            w.grad = None
            cf(x).backward()
            g = w.grad.numpy().copy()
            w.grad = None
            fn(x).backward()
            close(g, w.grad)


def test_cache_size_limit_warns_and_runs_eagerly():
    w = ad.tensor(RNG.standard_normal(2), requires_grad=True)
    f = ad.compile(lambda x, k: (x * w).sum() * k)
    x = ad.tensor(RNG.standard_normal(2))
    for k in range(8):
        f(x, k)
    with pytest.warns(UserWarning, match="cache size limit"):
        y = f(x, 100)
    close(y, (x * w).sum() * 100)
    assert len(f.cache) == 8


def test_disable_returns_fn_and_arguments_are_accepted():
    def fn(x):
        return x

    assert ad.compile(fn, disable=True) is fn
    assert callable(ad.compile(fn, fullgraph=True, dynamic=False, backend="inductor", options={}))


def test_big_elementwise_rows_and_fused_runs():
    c = ad.tensor(RNG.uniform(0.99, 1.0, 40000))
    cf = ad.compile(chain)
    for _ in range(3):
        w = ad.tensor(RNG.uniform(0.1, 1.0, 40000), requires_grad=True)
        y = cf(w, c)
        g = grads_of(y, [w])
    y_ref = chain(w, c)
    close(y, y_ref, 1e-11)
    close(g[0], grads_of(y_ref, [w])[0])
    assert replayed(y)


def test_many_leaves_stack_and_reductions():
    leaves = [ad.tensor(RNG.standard_normal(8), requires_grad=True) for _ in range(20)]
    consts = [ad.tensor(RNG.standard_normal(8)) for _ in range(20)]

    def f(ps, cs):
        return ad.stack([ad.tanh(p * c).sum() for p, c in zip(ps, cs)]).sum() + ps[0].reshape(2, 4).mean(0).amax()

    cf = ad.compile(f)
    for _ in range(3):
        y = cf(leaves, consts)
        g = grads_of(y, leaves)
    same_as_eager(y, g, f, (leaves, consts), leaves)
    assert replayed(y)


def test_replayed_grad_fn_graph_matches_eager():
    w = ad.tensor(RNG.standard_normal(3), requires_grad=True)

    def f(x):
        return (ad.exp(x * w) + w).sum()

    def names(node, depth=4):
        if node is None or depth == 0:
            return None
        return (node.name(), tuple(names(n, depth - 1) for n, _ in node.next_functions))

    cf = ad.compile(f)
    for _ in range(3):
        x = ad.tensor(RNG.standard_normal(3))
        y = cf(x)
    assert replayed(y)
    assert names(y.grad_fn) == names(f(x).grad_fn)


def test_float32_big_transcendental_rows_take_numpys_loops():
    """float32 exp, tanh, sin and cos rows from ``FUSE_MIN`` elements replay through numpy's float32 ufuncs, as
    the eager ops compute them (vmath's loops work in float64): values equal eager's bit for bit."""
    n = 5000
    c = ad.tensor(RNG.uniform(0.99, 1.0, n).astype(np.float32))
    cf = ad.compile(chain)
    for _ in range(3):
        w = ad.tensor(RNG.uniform(0.1, 1.0, n).astype(np.float32), requires_grad=True)
        y = cf(w, c)
        g = grads_of(y, [w])
    assert replayed(y)
    tpl = next(iter(cf.cache.values())).template
    runs = [seg[1] for seg in tpl.segments if seg[0] == "f"]  # (sin, tanh, exp: a blocked pass of ufunc calls)
    assert len(runs) == 3 and all(r.prog is None for r in runs)
    tape = y._tape
    y_ref = chain(w, c)
    ref_tape = y_ref._tape
    last = tpl.nrows - 2  # (the row before the sum)
    np.testing.assert_array_equal(
        tape.values[tape_out(tape, last) :][:n], ref_tape.values[tape_out(ref_tape, last) :][:n]
    )
    close(g[0], grads_of(y_ref, [w])[0], 1e-4)


def tape_out(tape, row):
    return int(np.frombuffer(tape.rows, np.int64, count=2, offset=row * 80)[1])


def _with_log(x, c):
    return (ad.log(ad.tanh(x * c) + 2.0) * c).sum()


@pytest.mark.parametrize("fn, compiled", [(chain, True), (_with_log, False)])
def test_fused_run_split_across_threads(fn, compiled):
    """A chain of big rows is one blocked pass across threads (ad/chain_forward.py): one compiled call per thread
    (kernels/fused_run.py), or numpy's ufuncs from Python where a row's values are numpy's (log)."""
    n = ad.parallel.PARALLEL_MIN + 1000
    c = ad.tensor(RNG.uniform(0.99, 1.0, n))
    cf = ad.compile(fn)
    for _ in range(3):
        w = ad.tensor(RNG.uniform(0.1, 1.0, n), requires_grad=True)
        y = cf(w, c)
        g = grads_of(y, [w])
    tpl = next(iter(cf.cache.values())).template
    runs = [seg[1] for seg in tpl.segments if seg[0] == "f"]
    assert runs and all((r.prog is not None) == compiled for r in runs)
    y_ref = fn(w, c)
    close(y, y_ref, 1e-10)
    close(g[0], grads_of(y_ref, [w])[0])


def test_unhashable_argument_warns_once_and_same_tensor_twice_is_its_own_signature():
    w = ad.tensor(RNG.standard_normal(3), requires_grad=True)
    f = ad.compile(lambda x, opts: (x * w).sum() * len(opts))
    x = ad.tensor(RNG.standard_normal(3))
    with pytest.warns(UserWarning, match="unhashable"):
        for _ in range(3):
            y = f(x, np.array([1, 2]))
    close(y, (x * w).sum() * 2)
    g = ad.compile(lambda a, b: (a * b * w).sum())
    a, b = ad.tensor(RNG.standard_normal(3)), ad.tensor(RNG.standard_normal(3))
    for _ in range(3):
        g(a, a)
    y = g(a, b)  # recorded with one tensor passed twice: another signature, not a wrong replay
    close(y, (a * b * w).sum())
    assert len(g.cache) == 2


def test_big_inputs_and_parameters_are_read_in_place():
    """Inputs of ``BIG_ROW`` elements or more are not copied into the replay's arena (extern slots): a big
    weight read by linear, a broadcast big input, four big inputs read by one fused run (more than a kernel
    call's two slots), and an in-place change of a big input after the forward still raises at backward."""
    n = ad.tape.BIG_ROW + 100
    w = ad.tensor(RNG.standard_normal((n // 64, 64)) * 0.1, requires_grad=True)
    b = ad.tensor(RNG.standard_normal(n // 64), requires_grad=True)

    def f(x, row, a, c, d):
        h = ad.tanh(F.linear(x, w, b)).sum()
        return h + (row * a + c * d).sum() + (a * 0.5).sum()

    def inputs():
        return (
            ad.tensor(RNG.standard_normal((3, 64))),
            ad.tensor(RNG.standard_normal((1, n))),
            ad.tensor(RNG.standard_normal((2, n)), requires_grad=True),
            ad.tensor(RNG.standard_normal((2, n))),
            ad.tensor(RNG.standard_normal((2, n)), requires_grad=True),
        )

    cf = ad.compile(f)
    for _ in range(4):
        args = inputs()
        y = cf(*args)
        g = grads_of(y, [w, b, args[2], args[4]])
        y_ref = f(*args)
        close(y, y_ref)
        for p, q in zip(g, grads_of(y_ref, [w, b, args[2], args[4]])):
            close(p, q)
    assert replayed(y)
    tpl = next(iter(cf.cache.values())).template
    assert len(tpl.externs_in) >= 4 and all(n_ >= ad.tape.BIG_ROW for _, n_, _ in tpl.externs_in)
    for y in (cf(*args), f(*args)):  # c is read by d's gradient: changed in place, replay raises as eager does
        with ad.no_grad():
            args[3].mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()


def test_constants_made_inside_fn_are_re_created():
    """Factories inside ``fn`` (tensor, zeros, ones, full, arange, linspace, eye, *_like) make constants the
    replay re-creates from the recorded values: broadcast ones, big ones (read in place), and ones in ctx."""
    w = ad.tensor(RNG.standard_normal(4), requires_grad=True)
    n = ad.tape.BIG_ROW + 10

    def f(x, big):
        y = x * w * ad.tensor([1.0, 2.0, 3.0, 4.0]) + ad.arange(4.0)
        y = y * ad.tensor(2.0) - ad.ones_like(x) + ad.zeros(4)
        y = ad.matmul(ad.eye(4), ad.sin(y)) + ad.linspace(0.0, 1.0, 4)
        return (y * ad.full((4,), 0.25)).sum() + (big * w[0] * ad.ones(n)).sum()

    cf = ad.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            x = ad.tensor(RNG.standard_normal(4))
            big = ad.tensor(RNG.standard_normal(n))
            w.grad = None
            y = cf(x, big)
            y.backward()
            g = w.grad.numpy().copy()
            w.grad = None
            y_ref = f(x, big)
            y_ref.backward()
            close(y, y_ref)
            close(g, w.grad)
    assert replayed(y)
    tpl = next(iter(cf.cache.values())).template
    assert any(src[0] == "k" for _, _, src in tpl.externs_in)


def test_constant_whose_values_change_between_recordings_runs_eagerly():
    w = ad.tensor(RNG.standard_normal(4), requires_grad=True)
    scale = [1.0]
    fn = lambda x: (x * w * ad.full((4,), scale[0])).sum()  # noqa: E731
    cf = ad.compile(fn)
    x = ad.tensor(RNG.standard_normal(4))
    cf(x)
    scale[0] = 2.0
    with pytest.warns(UserWarning, match="whose values change"):
        cf(x)
    scale[0] = 3.0
    y = cf(x)
    assert not replayed(y)
    close(y, fn(x))


def _chain_grads(f, args, wrt, fused=True, create_graph=False):
    """``grad(f(*args), wrt)`` and the lengths of the chains of big rows swept in one pass
    (ad/chain_backward.py); ``fused=False``: row by row."""
    import ad.engine as E

    lengths = []
    sweep, rows = E.sweep_chain, E.chain_rows
    E.sweep_chain = lambda s, chain, *a: (lengths.append(len(chain)), sweep(s, chain, *a))
    if not fused:
        E.chain_rows = lambda s, t, h: None
    try:
        gs = ad.autograd.grad(f(*args), wrt, create_graph=create_graph)
    finally:
        E.sweep_chain, E.chain_rows = sweep, rows
    return [g.detach().numpy().copy() for g in gs], lengths


@pytest.mark.parametrize("threads, dtype", [(1, np.float64), (2, np.float64), (2, np.float32)])
def test_chain_of_big_rows_backward_in_one_pass_matches_row_by_row(monkeypatch, threads, dtype):
    monkeypatch.setattr(ad.parallel, "_WORKERS", threads)
    n = ad.parallel.PARALLEL_MIN + 1000 if threads > 1 else 20000
    c = ad.tensor(RNG.uniform(0.99, 1.0, n).astype(dtype))
    x = ad.tensor(RNG.uniform(0.1, 1.0, n).astype(dtype), requires_grad=True)

    def f(x, c):  # y is read again after the chain (its cotangent from y.sum() joins the chain's)
        y = ad.sin(x * c + 0.5)
        return (ad.exp(ad.tanh(y)) * 2.0).sum() + y.sum()

    cf = ad.compile(f)
    for _ in range(3):
        cf(x, c)
    assert replayed(cf(x, c))
    ref, none = _chain_grads(f, (x, c), [x], fused=False)
    assert none == []
    graph, _ = _chain_grads(f, (x, c), [x], create_graph=True)
    for fn in (f, cf):
        got, lengths = _chain_grads(fn, (x, c), [x])
        assert lengths == [6]  # *2, exp, tanh, sin, +0.5, *c
        tol = 1e-12 if dtype == np.float64 else 1e-5
        close(got[0], ref[0], tol)
        close(got[0], graph[0], tol)


def test_chain_of_big_rows_of_mixed_dtypes_matches_row_by_row():
    """A float32 constant in a float64 chain: its arrays are not all of the arena's dtype, so the chain's blocks
    are swept from Python (ad/chain_backward.py), with the same values."""
    n = 20000
    c = ad.tensor(RNG.uniform(0.99, 1.0, n).astype(np.float32))
    x = ad.tensor(RNG.uniform(0.1, 1.0, n), requires_grad=True)

    def f(x, c):
        return ad.exp(ad.tanh(ad.sin(x) * c)).sum()

    import ad.chain_backward as CB

    compiled = []
    sweep = CB._sweep_compiled
    CB._sweep_compiled = lambda *a: (compiled.append(1), sweep(*a))
    try:
        ref, _ = _chain_grads(f, (x, c), [x], fused=False)
        got, lengths = _chain_grads(f, (x, c), [x])
    finally:
        CB._sweep_compiled = sweep
    assert lengths == [4] and compiled == []  # (exp, tanh, * c, sin)
    close(got[0], ref[0])


def test_chain_of_big_rows_stops_at_broadcast_and_non_contiguous_operands():
    n = 20000
    base = ad.tensor(RNG.uniform(0.1, 1.0, (2, n // 2)), requires_grad=True)
    cb = ad.tensor(RNG.uniform(0.5, 1.5, 1))

    def f_broadcast(x, cb):  # sin(x) * cb reads a broadcast operand: the chain is exp, tanh
        return ad.exp(ad.tanh(ad.sin(x.reshape(-1)) * cb)).sum()

    def f_transposed(x):  # sin reads x.T, not contiguous: the chain is exp, tanh
        return ad.exp(ad.tanh(ad.sin(x.T))).sum()

    # (a replay holds x.T as a contiguous copy in its arena, whose sin row then joins the chain)
    for f, args, replay_lengths in ((f_broadcast, (base, cb), [2]), (f_transposed, (base,), [3])):
        ref, _ = _chain_grads(f, args, [base], fused=False)
        got, lengths = _chain_grads(f, args, [base])
        assert lengths == [2]
        close(got[0], ref[0])
        cf = ad.compile(f)
        for _ in range(3):
            y = cf(*args)
        assert replayed(y)
        got, lengths = _chain_grads(cf, args, [base])
        assert (f.__name__, lengths) == (f.__name__, replay_lengths)
        close(got[0], ref[0])


def test_many_small_leaves_fast_paths_see_every_kind_of_update():
    """The many-leaf path (one gather of all copies guarded by version counters, a short key for
    a list of alike tensors) against eager after each kind of update: an optimizer step, ``p.copy_()`` under
    no_grad, ``p.data = new`` (an argument and a tensor from outside), an outside tensor rebound to another
    shape (that call runs eagerly), a list whose tensors differ in shape (a new signature), and an in-place
    change between forward and backward (raises, as eager does: the replayed tape checks the sources' versions); a
    source's ``_imports`` does not grow with the steps."""
    leaves = [ad.tensor(RNG.standard_normal(8), requires_grad=True) for _ in range(24)]
    consts = [ad.tensor(RNG.uniform(0.5, 1.5, 8)) for _ in range(24)]
    outside = [ad.tensor(RNG.standard_normal(8), requires_grad=True) for _ in range(3)]

    def f(ps, cs):
        s = ad.stack([ad.tanh(p * c).sum() for p, c in zip(ps, cs)]).sum()
        return s + sum((q * q).sum() for q in outside)

    cf = ad.compile(f)
    opt = ad.optim.SGD(leaves + outside, lr=0.1)
    updates = [
        lambda: opt.step(),
        lambda: leaves[3].copy_(ad.tensor(RNG.standard_normal(8))),
        lambda: setattr(leaves[5], "data", ad.tensor(RNG.standard_normal(8))),
        lambda: setattr(outside[1], "data", ad.tensor(RNG.standard_normal(8))),
        lambda: consts[7].mul_(2.0),
        lambda: outside[0].add_(1.0),
    ]
    for step in range(10):
        y = cf(leaves, consts)
        g = grads_of(y, leaves + outside)
        y_ref = f(leaves, consts)
        close(y, y_ref)
        for a, b in zip(g, grads_of(y_ref, leaves + outside)):
            close(a, b)
        assert replayed(y) == (step >= 2)
        with ad.no_grad():
            updates[step % len(updates)]()
    tpl = next(iter(cf.cache.values())).template
    assert tpl.pick_copies is not None and tpl.pick_externs is not None  # (the fast paths ran)
    assert len(cf.cache) == 1 and len(next(iter(cf.cache))) < 8  # (24 alike tensors: one part of the key)

    outside[2].data = ad.tensor(RNG.standard_normal((2, 4)))  # another shape: this call runs eagerly
    y = cf(leaves, consts)
    close(y, f(leaves, consts))
    assert not replayed(y)
    outside[2].data = ad.tensor(RNG.standard_normal(8))

    for y in (cf(leaves, consts), f(leaves, consts)):  # consts[0] is read by leaves[0]'s gradient
        with ad.no_grad():
            consts[0].mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()

    for _ in range(2 * sys.modules["ad.compile_replay"].PRUNE_EVERY):
        cf(leaves, consts).backward()
    assert len(consts[0]._imports or ()) <= 4  # (replays guard their copies by version: no entry per step)

    with ad.no_grad():  # the same list, one tensor's data of another shape (the key's memo sees the new array)
        leaves[-1].data = ad.tensor(RNG.standard_normal((1, 8)))
    for _ in range(3):  # tensors that are not alike: a key part per tensor, a new signature
        y = cf(leaves, consts)
        g = grads_of(y, leaves)
        same_as_eager(y, g, f, (leaves, consts), leaves)
    assert replayed(y) and len(cf.cache) == 2


@pytest.mark.parametrize("shape", [(8,), (2, 4)])
def test_many_leaf_step_hands_gradients_over_as_eager_does(shape):
    """A replayed many-leaf step's backward hands every leaf its gradient at once (the leaves' cotangents cut
    from one strided view where they lie evenly in the arena, ``.grad`` set in C-level passes when none has one)
    and falls back to the per-leaf way for accumulation into an existing ``.grad``, a leaf with a hook, and a
    post-accumulate-grad hook: each step's gradients equal eager's, across optimizer steps."""
    leaves = [ad.tensor(RNG.standard_normal(shape), requires_grad=True) for _ in range(32)]
    consts = [ad.tensor(RNG.uniform(0.5, 1.5, shape)) for _ in range(32)]

    def f(ps, cs):
        return ad.stack([ad.tanh(p * c).sum() for p, c in zip(ps, cs)]).sum()

    cf = ad.compile(f)
    opt = ad.optim.SGD(leaves, lr=0.1)
    seen = []
    for step in range(9):
        y = cf(leaves, consts)
        if step == 5:
            handle = leaves[4].register_hook(lambda g: g * 3.0)
        if step == 7:
            post = leaves[2].register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
        accumulate = step % 3 == 1  # (an existing .grad: the gradient is added into it)
        before = [p.grad.numpy().copy() for p in leaves] if accumulate else None
        if not accumulate:
            opt.zero_grad(set_to_none=True)
        y.backward()
        got = [p.grad.numpy().copy() for p in leaves]
        y_ref = f(leaves, consts)
        close(y, y_ref)
        for p in leaves:
            p.grad = None
        y_ref.backward()
        for k, (a, p) in enumerate(zip(got, leaves)):
            b = p.grad.numpy() + (before[k] if accumulate else 0.0)
            close(a, b)
            assert a.shape == shape
        assert replayed(y) == (step >= 2)
        if step == 5:
            handle.remove()
        if step == 7:
            post.remove()
            assert len(seen) == 2 and np.array_equal(seen[0], got[2])
        opt.step()
    tpl = next(iter(cf.cache.values())).template
    assert tpl.fused is not None and tpl.pick_externs is not None  # (the fused step and the many-leaf path ran)
    assert tpl.extern_grid is not None and tpl.import_flat == (len(shape) == 1)  # (one strided view; 2-D: reshaped)


def test_fused_step_sweeps_sums_over_dims_cat_and_slices_as_eager():
    """The fused step (forward and the loss's sweep in one kernel call) sweeps its sum and strided-scatter rows
    (sums over a dim, ``cat``, ``stack``, a slice's mean) itself: its gradients equal eager's, in float64."""
    w = ad.tensor(RNG.standard_normal((4, 6)), requires_grad=True)
    v = ad.tensor(RNG.standard_normal(6), requires_grad=True)

    def f(x):
        h = ad.tanh(x * w)
        a = h.sum(dim=0) * v
        b = h[:, 1:4].mean(dim=1)
        c = ad.cat([a, b * 2.0, ad.stack([h.sum(), (v * v).sum()])])
        return (c * c).sum()

    cf = ad.compile(f)
    for step in range(4):
        x = ad.tensor(RNG.standard_normal((4, 6)))
        y = cf(x)
        g = grads_of(y, [w, v])
        same_as_eager(y, g, f, (x,), [w, v])
        assert replayed(y) == (step >= 2)
    tpl = next(iter(cf.cache.values())).template
    codes = set((tpl.rows[:, 0] & K.CODE_MASK).tolist())
    assert tpl.fused is not None and tpl.fused.last[0]  # (the last backward took the fused kernel's gradients)
    assert {K.SUM_ALL, K.SCATTER_STRIDED} <= codes


def test_list_of_unlike_parameters_key_memo_sees_rebinding_and_grad_flags():
    """A list of tensors of several shapes (a model's parameters) keeps its key parts in ``_flatten``'s memo:
    the same arrays and flags again reuse them, while ``p.data = ...`` (another array, another shape) or
    ``requires_grad_(False)`` on one of them makes a new signature, each replayed as eager computes it."""
    ps = [ad.tensor(RNG.standard_normal(shape), requires_grad=True) for shape in [(3, 4), (4,)]]

    def f(params):
        return (params[0] * params[1]).tanh().sum()

    cf = ad.compile(f)
    for rebind in (None, "data", "flag"):
        if rebind == "data":
            with ad.no_grad():
                ps[0].data = ad.tensor(RNG.standard_normal((5, 4)))
        elif rebind == "flag":
            ps[0].requires_grad_(False)
        wanted = [p for p in ps if p.requires_grad]
        for _ in range(3):
            y = cf(ps)
            g = grads_of(y, wanted)
        assert replayed(y) and y.shape == () and len(cf.cache) == 1 + (rebind is not None) + (rebind == "flag")
        same_as_eager(y, g, f, (ps,), wanted)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_with_an_index_map_of_the_shapes_is_replayed(mode):
    """``pad``'s reflect, replicate and circular modes (an index map that follows from the shapes alone) replay,
    values and gradients against eager."""
    w = ad.tensor(RNG.standard_normal((3, 4)), requires_grad=True)

    def f(x):
        return (F.pad((x * w)[None], (2, 1), mode=mode) ** 2).sum()

    cf = ad.compile(f)
    for step in range(4):
        x = ad.tensor(RNG.standard_normal((3, 4)))
        y = cf(x)
        same_as_eager(y, grads_of(y, [w]), f, (x,), [w])
        assert replayed(y) == (step >= 2)


@pytest.mark.parametrize(
    "resample",
    [
        lambda x: F.interpolate(x, size=(5, 3)),
        lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True),
        lambda x: F.interpolate(x, size=(5, 6), mode="bicubic"),
        lambda x: F.interpolate(x, size=(2, 3), mode="bicubic", antialias=True),
        lambda x: F.interpolate(x, size=(2, 7), mode="lanczos", antialias=True),
        lambda x: F.pixel_shuffle(x.reshape(1, 4, 2, 3), 2),
    ],
    ids=["nearest", "bilinear", "bicubic", "bicubic_aa", "lanczos", "pixel_shuffle"],
)
def test_resampling_with_constant_weights_is_replayed(resample):
    """``interpolate``'s modes and ``pixel_shuffle`` (index maps of the shapes, constant weights made inside the
    op) replay, values and gradients against eager."""
    w = ad.tensor(RNG.standard_normal((1, 2, 3, 4)), requires_grad=True)

    def f(x):
        return (resample(x * w) ** 2).sum()

    cf = ad.compile(f)
    for step in range(4):
        x = ad.tensor(RNG.standard_normal((1, 2, 3, 4)))
        y = cf(x)
        same_as_eager(y, grads_of(y, [w]), f, (x,), [w])
        assert replayed(y) == (step >= 2)


@pytest.mark.parametrize("op", ["gather", "index_select", "getitem"])
def test_gather_with_an_index_tensor_is_replayed_and_reads_the_index_each_call(op):
    """``gather``'s (and ``index_select``'s, and ``x[:, index]``'s) index map is recomputed from the index tensor
    at each replay (an argument, or a tensor from outside changed in place), values and gradients (kernel sweep
    and ``create_graph``) against eager; an out-of-bounds index runs that call eagerly, which raises the op's
    error."""
    pick = (lambda x, dim, index: x[:, None, index]) if op == "getitem" else getattr(ad, op)

    def indices(k):  # valid indices into dim 1 of x (getitem: negative ones too)
        if op == "getitem":
            return ad.tensor(RNG.integers(-5, 5, (2, k)))
        return ad.tensor(RNG.integers(0, 5, (3, k) if op == "gather" else (k,)))

    outside_index = indices(2)

    def f(x, index):
        g = pick(ad.tanh(x), 1, index)
        return (g * g).sum() + pick(x, 1, outside_index).sum()

    cf = ad.compile(f)
    for step in range(5):
        x = ad.tensor(RNG.standard_normal((3, 5)), requires_grad=True)
        index = indices(4)
        y = cf(x, index)
        (g,) = ad.autograd.grad(y, [x], create_graph=True)
        gg = ad.autograd.grad(g.sum(), [x])[0]
        y_ref = f(x, index)
        (g_ref,) = ad.autograd.grad(y_ref, [x], create_graph=True)
        close(y, y_ref)
        close(g, g_ref)
        close(gg, ad.autograd.grad(g_ref.sum(), [x])[0])
        assert replayed(y) == (step >= 2)
        with ad.no_grad():
            outside_index.copy_(indices(2))
    bad = ad.tensor(np.full(index.shape, 5))
    for fn in (cf, f):
        with pytest.raises(IndexError if op == "getitem" else RuntimeError, match="out of"):
            fn(x, bad)


def _fused_runs(cf):
    """The fused runs (ad/chain_forward.py) of compiled ``cf``'s templates."""
    return [seg[1] for entry in cf.cache.values() for seg in entry.template.segments if seg[0] == "f"]


def _two_readers(x, c):
    """A run where ``b`` is read by two rows (sin, which saves it, and tanh), ``s`` and ``t`` are both saved
    (their product's operands both require grad), ``a``, ``u`` and the last product live in scratch only, and
    the sum is folded."""
    a = x * c
    b = a + (-1.0)
    s, t = ad.sin(b), ad.tanh(b)
    u = s * t
    return (ad.exp(u) * c).sum()


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_forward_of_big_elementwise_runs_matches_eager(monkeypatch, threads):
    """Big elementwise runs computed block by block, keeping only what the backward reads, equal eager
    execution (values, first-order and create_graph gradients) with one thread and with two; an in-place
    change of an input after the forward makes a sweep that needs the left-out values raise."""
    monkeypatch.setattr(ad.parallel, "_WORKERS", threads)
    n = ad.parallel.PARALLEL_MIN + 1000
    c = ad.tensor(RNG.uniform(0.5, 1.5, n))
    for f in (chain, _two_readers):
        cf = ad.compile(f)
        for _ in range(3):
            x = ad.tensor(RNG.uniform(0.1, 1.0, n), requires_grad=True)
            y = cf(x, c)
            g = grads_of(y, [x])
        assert replayed(y)
        same_as_eager(y, g, f, (x, c), [x])
        (run,) = _fused_runs(cf)
        assert run.skips and run.sum_row is not None
        y = cf(x, c)
        (gg,) = ad.autograd.grad(y, [x], create_graph=True)  # the left-out values are written first
        (gg_ref,) = ad.autograd.grad(f(x, c), [x], create_graph=True)
        close(gg, gg_ref)
        close((gg * gg).sum(), (gg_ref * gg_ref).sum())
    kept = {st[2][1] for st in run.steps if st[2][0] == 0}
    assert len(kept) == 4 and run.n_scratch >= 1  # b, s, t, exp(u) written; a, u, exp(u) * c never
    y = cf(x, c)
    c2 = ad.tensor(c.numpy().copy())
    y2 = cf(x, c2)
    c2.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ad.autograd.grad(y2, [x], create_graph=True)
    close(grads_of(y, [x])[0], grads_of(_two_readers(x, c), [x])[0])


def test_fused_forward_stops_at_other_sizes_and_structural_rows():
    """A broadcast operand, a transposed one (a gather row) and a change of size end a fused run (here runs of
    elementwise rows, fused from ``FUSE_MIN`` elements); values and gradients equal eager's, and values read
    after a run are written."""
    n = 20000

    def f(x, cb):
        y = ad.sin(x * cb + 0.5)  # (cb: shape (1,), broadcast)
        z = ad.tanh(ad.exp(y) * 2.0)
        w = ad.exp(ad.tanh(z.reshape(2, -1).T.reshape(-1)))  # a gather row, then a run from its result
        half = ad.exp(ad.tanh(w[: n // 2] * 3.0))  # another size
        return half.sum() + y.sum() + (w * z).sum()

    x = ad.tensor(RNG.uniform(0.1, 1.0, n), requires_grad=True)
    cb = ad.tensor(RNG.uniform(0.5, 1.5, 1), requires_grad=True)
    cf = ad.compile(f)
    for _ in range(3):
        y = cf(x, cb)
        g = grads_of(y, [x, cb])
    assert replayed(y)
    same_as_eager(y, g, f, (x, cb), [x, cb])
    assert sorted(_kernel_runs(cf)) == [n // 2, n, n]


def _kernel_runs(cf):
    """The sizes of the fused elementwise runs (two rows or more) in ``cf``'s replay kernel stretches."""
    from kernels import replay

    sizes = []
    for entry in cf.cache.values():
        flags, rows = entry.template.flags, entry.template.rows
        for r in range(1, len(flags)):
            if flags[r] & replay.FLAG_FUSED and not flags[r - 1] & replay.FLAG_FUSED:
                sizes.append(int(rows[r, 4]))
    return sizes
# --- the fused replay (ad/compile_fused.py): forward and the loss's backward in one call -----------------------


def fused_pending(y):
    """Whether a fused replay left gradients on ``y``'s tape for its next plain backward()."""
    return replayed(y) and y._tape.fused is not None


def many_ops(x, w, c):
    """Every kind of row the fused kernel sweeps itself (unary with saved partials, binary) or hands to
    reverse_sweep (sum over a dim, matmul, gather), w a leaf read twice."""
    h = ad.sin(x * w) + ad.cos(w) / (1.5 + ad.sigmoid(x)) - ad.log1p(ad.square(w))
    h = ad.tanh(h) * ad.exp(-h) + ad.sqrt(1.0 + x * x) ** 1.5 - ad.maximum(h, c)
    m = (h.reshape(4, 4) @ w.reshape(4, 4).T).sum(dim=0)
    return (m * ad.relu(m - 0.1)).sum() + h[::3].sum()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_step_equals_eager(dtype):
    """A replayed scalar loss whose backward() takes the fused path: values and .grad of every leaf equal an
    eager call's (1e-12 in float64), step after step, with the leaves updated in place between steps."""
    tol = 1e-12 if dtype == np.float64 else 1e-4
    w = ad.tensor(RNG.uniform(0.2, 1.0, 16).astype(dtype), requires_grad=True)
    c = ad.tensor(RNG.uniform(-0.5, 0.5, 16).astype(dtype))
    cf = ad.compile(many_ops)
    for step in range(5):
        x = ad.tensor(RNG.uniform(-1.0, 1.0, 16).astype(dtype), requires_grad=True)
        y = cf(x, w, c)
        assert fused_pending(y) == (step >= 2)
        g = grads_of(y, [x, w])
        assert not fused_pending(y)
        y_ref = many_ops(x, w, c)
        close(y, y_ref, tol)
        for a, b in zip(g, grads_of(y_ref, [x, w])):
            close(a, b, tol)
        with ad.no_grad():
            w.mul_(0.9)


def test_fused_chain_and_mlp_step_equal_eager_and_accumulate():
    """The fused path on W1's chain and on an MLP training step (linear, cross_entropy: rows swept by
    reverse_sweep); .grad accumulates over two steps without zero_grad, as eager."""
    c = ad.tensor(RNG.uniform(0.99, 1.0, 16))
    w = ad.tensor(RNG.uniform(0.1, 1.0, 16), requires_grad=True)
    cf = ad.compile(chain)
    for _ in range(3):
        y = cf(w, c)
    assert fused_pending(y)
    w.grad = None
    y.backward()
    cf(w, c).backward()
    w_ref = ad.tensor(w.detach().numpy().copy(), requires_grad=True)
    chain(w_ref, c).backward()
    chain(w_ref, c).backward()
    close(w.grad, w_ref.grad)
    ps = params()
    step = ad.compile(mlp_loss)
    x, target = ad.tensor(RNG.standard_normal((8, 12))), ad.tensor(RNG.integers(0, 5, 8))
    for _ in range(3):
        y = step(x, target, *ps)
    assert fused_pending(y)
    same_as_eager(y, grads_of(y, ps), mlp_loss, (x, target, *ps), ps)


def fused_loss(w):
    return (ad.tanh(w * 1.5) * ad.sin(w)).sum()


def fused_replay():
    w = ad.tensor(RNG.uniform(0.1, 1.0, 5), requires_grad=True)
    cf = ad.compile(fused_loss)
    for _ in range(3):
        y = cf(w)
    assert fused_pending(y)
    w.grad = None
    return cf, w, y


def eager_grad(w):
    w_ref = ad.tensor(w.detach().numpy().copy(), requires_grad=True)
    y = fused_loss(w_ref)
    return w_ref, y


def test_fused_gradients_are_not_used_where_the_backward_differs():
    """Each backward the fused gradients do not answer takes the generic sweep and equals eager: gradient=,
    retain_graph twice, inputs=, grad, create_graph, a hook or retain_grad on the loss after the call."""
    _, w, y = fused_replay()
    w_ref, y_ref = eager_grad(w)
    y.backward(ad.tensor(2.5))
    y_ref.backward(ad.tensor(2.5))
    close(w.grad, w_ref.grad)

    _, w, y = fused_replay()
    w_ref, y_ref = eager_grad(w)
    y.backward(retain_graph=True)
    y.backward()
    y_ref.backward(retain_graph=True)
    y_ref.backward()
    close(w.grad, w_ref.grad)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()

    _, w, y = fused_replay()
    w_ref, y_ref = eager_grad(w)
    y.backward(inputs=[w])
    y_ref.backward(inputs=[w_ref])
    close(w.grad, w_ref.grad)

    _, w, y = fused_replay()
    w_ref, y_ref = eager_grad(w)
    (g,) = ad.autograd.grad(y, [w], create_graph=True)
    (g_ref,) = ad.autograd.grad(y_ref, [w_ref], create_graph=True)
    close(g, g_ref)
    close(ad.autograd.grad(g.sum(), [w])[0], ad.autograd.grad(g_ref.sum(), [w_ref])[0])

    for hooked in ("hook", "retain_grad"):
        _, w, y = fused_replay()
        w_ref, y_ref = eager_grad(w)
        for t in (y, y_ref):
            if hooked == "hook":
                t.register_hook(lambda g: g * 3.0)
            else:
                t.retain_grad()
        y.backward()
        y_ref.backward()
        close(w.grad, w_ref.grad)
        if hooked == "retain_grad":
            close(y.grad, y_ref.grad)


def test_fused_gradients_respect_writes_leaf_hooks_and_freed_graphs():
    """An in-place write into a leaf after the call raises as eager; a hook on the leaf runs on the fused
    gradient; a second backward of a freed graph raises; a loss not differentiated stops the fusing."""
    _, w, y = fused_replay()
    with ad.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()

    _, w, y = fused_replay()
    w_ref, y_ref = eager_grad(w)
    seen = []
    for t in (w, w_ref):
        t.register_hook(lambda g: seen.append(g.detach().numpy().copy()) or g * 2.0)
    y.backward()
    y_ref.backward()
    close(w.grad, w_ref.grad)
    close(seen[0], seen[1])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()

    cf, w, y = fused_replay()
    for _ in range(3):
        y = cf(w)  # an evaluation loop: no backward
    assert not fused_pending(y)
    y.backward()
    y_ref = fused_loss(w_ref := ad.tensor(w.detach().numpy().copy(), requires_grad=True))
    y_ref.backward()
    close(w.grad, w_ref.grad)


def test_fused_plan_only_for_a_scalar_loss():
    """A template whose result is not one scalar that requires grad has no fused plan."""
    w = ad.tensor(RNG.uniform(0.1, 1.0, 5), requires_grad=True)
    for f in (lambda: ad.tanh(w * 2.0), lambda: (ad.tanh(w).sum(), w * 2.0)):
        cf = ad.compile(f)
        for _ in range(3):
            out = cf()
        assert next(iter(cf.cache.values())).template.fused is None
        assert isinstance(out, (ad.Tensor, tuple))
