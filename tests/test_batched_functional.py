"""``ad.autograd.functional`` on the batched sweep: Jacobians and Hessians against analytic values and torch."""

import numpy as np
import pytest

import ad
from ad.autograd import functional as F

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(11)
A = RNG.standard_normal((5, 4)) / 2.0
W1, B1 = RNG.standard_normal((6, 4)) / 2.0, RNG.standard_normal(6)
W2, B2 = RNG.standard_normal((3, 6)) / 2.0, RNG.standard_normal(3)
X = RNG.standard_normal(4)


def _mlp(lib, linear):
    w1, b1, w2, b2 = (lib.tensor(a) for a in (W1, B1, W2, B2))
    return lambda x: linear(lib.tanh(linear(x, w1, b1)), w2, b2)


AD_MLP = _mlp(ad, ad.nn.functional.linear)
TORCH_MLP = _mlp(torch, torch.nn.functional.linear)


def _tanh_layer(lib):
    a = lib.tensor(A)
    return lambda x: lib.tanh(a @ x).sum()


def _np(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_mlp_jacobian_matches_torch(vectorize, strategy):
    if strategy == "forward-mode" and not vectorize:
        pytest.skip("torch: forward-mode needs vectorize=True")
    j = F.jacobian(AD_MLP, ad.tensor(X), vectorize=vectorize, strategy=strategy)
    tj = torch.autograd.functional.jacobian(TORCH_MLP, torch.tensor(X), vectorize=vectorize, strategy=strategy)
    assert j.shape == tuple(tj.shape) == (3, 4)
    np.testing.assert_allclose(_np(j), _np(tj), rtol=1e-12, atol=1e-14)


def test_hessian_of_tanh_layer_is_analytic_and_matches_torch():
    h = F.hessian(_tanh_layer(ad), ad.tensor(X))
    t = np.tanh(A @ X)
    analytic = A.T @ np.diag(-2.0 * t * (1.0 - t * t)) @ A
    np.testing.assert_allclose(_np(h), analytic, rtol=1e-12, atol=1e-14)
    for vectorize in (False, True):
        th = torch.autograd.functional.hessian(_tanh_layer(torch), torch.tensor(X), vectorize=vectorize)
        np.testing.assert_allclose(_np(h), _np(th), rtol=1e-12, atol=1e-14)


def test_hessian_of_tuple_inputs_matches_torch():
    def f(lib):
        return lambda x, y: (lib.sin(x)[:, None] * y * y).sum() + (x * x).sum() * y.sum()

    xs = (RNG.standard_normal(3), RNG.standard_normal((3, 2)))
    h = F.hessian(f(ad), tuple(ad.tensor(a) for a in xs), vectorize=True)
    th = torch.autograd.functional.hessian(f(torch), tuple(torch.tensor(a) for a in xs), vectorize=True)
    for i in range(2):
        for j in range(2):
            assert h[i][j].shape == tuple(th[i][j].shape)
            np.testing.assert_allclose(_np(h[i][j]), _np(th[i][j]), rtol=1e-12, atol=1e-14)


def test_jacobian_tuple_outputs_and_unused_input_match_torch():
    def f(lib):
        return lambda x, y: (lib.exp(x) * 2.0, (x * x).sum() + 0.0 * x.sum())

    xs = (RNG.standard_normal(3), RNG.standard_normal(2))
    j = F.jacobian(f(ad), tuple(ad.tensor(a) for a in xs), vectorize=True)
    tj = torch.autograd.functional.jacobian(f(torch), tuple(torch.tensor(a) for a in xs), vectorize=True)
    for i in range(2):
        for k in range(2):
            assert j[i][k].shape == tuple(tj[i][k].shape)
            np.testing.assert_allclose(_np(j[i][k]), _np(tj[i][k]), rtol=1e-12)


@pytest.mark.parametrize("name", ["hvp", "vhp", "jvp", "vjp"])
def test_products_match_torch(name):
    v = RNG.standard_normal(4)
    if name in ("hvp", "vhp"):
        fa, ft, va = _tanh_layer(ad), _tanh_layer(torch), v
    elif name == "jvp":
        fa, ft, va = AD_MLP, TORCH_MLP, v
    else:
        fa, ft, va = AD_MLP, TORCH_MLP, RNG.standard_normal(3)
    out, res = getattr(F, name)(fa, ad.tensor(X), ad.tensor(va))
    tout, tres = getattr(torch.autograd.functional, name)(ft, torch.tensor(X), torch.tensor(va))
    np.testing.assert_allclose(_np(out), _np(tout), rtol=1e-12)
    np.testing.assert_allclose(_np(res), _np(tres), rtol=1e-12, atol=1e-14)


def test_jacobian_create_graph_vectorized_is_differentiable():
    x = ad.tensor(X, requires_grad=True)
    j = F.jacobian(lambda x: ad.sin(x) * x.sum(), x, create_graph=True, vectorize=True)
    assert j.requires_grad
    (g,) = ad.autograd.grad(j.sum(), x)
    tx = torch.tensor(X, requires_grad=True)
    tj = torch.autograd.functional.jacobian(lambda x: torch.sin(x) * x.sum(), tx, create_graph=True, vectorize=True)
    (tg,) = torch.autograd.grad(tj.sum(), tx)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)


def test_strict_with_vectorize_raises_as_torch():
    with pytest.raises(RuntimeError, match="not supported together"):
        F.jacobian(AD_MLP, ad.tensor(X), strict=True, vectorize=True)
    with pytest.raises(RuntimeError, match="not supported together"):
        torch.autograd.functional.jacobian(TORCH_MLP, torch.tensor(X), strict=True, vectorize=True)


def test_retain_grad_inside_func_keeps_the_row_loop():
    """The batched sweep refuses retain_grad tensors; vectorize=False then runs torch's row-by-row loop."""
    kept = []

    def f(x):
        y = ad.sin(x)
        y.retain_grad()
        kept.append(y)
        return y * x

    j = F.jacobian(f, ad.tensor(X))
    np.testing.assert_allclose(_np(j), np.diag(np.cos(X) * X + np.sin(X)), rtol=1e-12)
    assert kept[-1].grad is not None
    with pytest.raises(RuntimeError, match="retain_grad"):
        F.jacobian(f, ad.tensor(X), vectorize=True)


def _wide_mlp(lib, params):
    linear = lib.nn.functional.linear

    def f(x):
        h = lib.tanh(linear(x, params[0], params[1]))
        h = lib.tanh(linear(h, params[2], params[3]))
        return linear(h, params[4], params[5])

    return f


def test_wide_mlp_jacobian_matches_torch_and_the_loop_and_constants_get_no_slots():
    """Issue 12's benchmark MLP (64 -> 128 -> 128 -> 64, a 128x128 weight past tape.BIG_ROW): the batched
    sweep's Jacobian equals torch's and one grad() per output row; the constant weights and biases get no
    batched cotangent slots (the arena is the tape less the constants), a weight that requires grad gets them."""
    from ad.batched import _layout

    rng = np.random.default_rng(12)
    sizes = (64, 128, 128, 64)
    arrays = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        arrays += [rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in), rng.standard_normal(fan_out) / 10.0]
    x = rng.standard_normal(sizes[0])
    params = [ad.tensor(a) for a in arrays]
    f = _wide_mlp(ad, params)
    j = F.jacobian(f, ad.tensor(x), vectorize=True)
    tj = torch.autograd.functional.jacobian(
        _wide_mlp(torch, [torch.tensor(a) for a in arrays]), torch.tensor(x), vectorize=True
    )
    np.testing.assert_allclose(_np(j), tj.numpy(), rtol=1e-12, atol=1e-12)
    xr = ad.tensor(x, requires_grad=True)
    out = f(xr)
    rows = [ad.autograd.grad(out[i], xr, retain_graph=True)[0] for i in range(sizes[-1])]
    np.testing.assert_allclose(_np(j), np.stack([_np(r) for r in rows]), rtol=1e-12, atol=1e-12)

    constants = sum(a.size for a in arrays)
    assert _layout(out._tape)[4] - 1 == out._tape.used - constants
    w = ad.tensor(arrays[0], requires_grad=True)
    out = _wide_mlp(ad, [w] + params[1:])(xr)
    assert _layout(out._tape)[4] - 1 == out._tape.used - (constants - w.numel())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_big_products_swept_in_the_kernel_match_python_rows_and_analytic(dtype, monkeypatch):
    """Product rows past tape.BIG_ROW (the 128x128 linear; a big constant matrix times a small one, on either
    side, and its transpose: an F-ordered operand) are swept by the batched kernel (their big operands read in
    place by address, the F-ordered one copied into the arena): the Jacobian equals the analytic one and the one
    with those rows run from Python (``KERNEL_PRODUCT_WORK = 0``)."""
    import ad.batched

    rng = np.random.default_rng(3)
    w1, w2, w3 = (rng.standard_normal(s) / 8.0 for s in ((128, 16), (128, 128), (8, 128)))
    b1, b2, b3 = (rng.standard_normal(n) / 10.0 for n in (128, 128, 8))
    c = rng.standard_normal((130, 130)) / 130.0  # 16,900 elements: a MATMUL row's big operand
    x = rng.standard_normal(16)
    w1_, w2_, w3_, b1_, b2_, b3_, c_ = (ad.tensor(a.astype(dtype)) for a in (w1, w2, w3, b1, b2, b3, c))
    lin = ad.nn.functional.linear

    def f(x):
        h = ad.tanh(lin(ad.tanh(lin(x, w1_, b1_)), w2_, b2_))
        m = h[:2].reshape(1, 2) @ h[:2].reshape(2, 1)  # (a small 2-D matmul, for company)
        side = (c_ @ ad.cat([h, h[:2]]).reshape(130, 1)).sum() + (ad.cat([h, h[:2]]).reshape(1, 130) @ c_).sum()
        side = side + (ad.cat([h, h[:2]]).reshape(1, 130) @ c_.t()).sum()
        return lin(h, w3_, b3_) + side + m.reshape(())

    h1 = np.tanh(w1 @ x + b1)
    h2 = np.tanh(w2 @ h1 + b2)
    dside = np.concatenate([np.eye(128), np.eye(128)[:2]]).T @ (2 * c.sum(0) + c.sum(1))
    dm = np.zeros(128)
    dm[:2] = 2 * h2[:2]
    expected = (w3 + dside + dm) @ np.diag(1 - h2**2) @ w2 @ np.diag(1 - h1**2) @ w1
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    j = F.jacobian(f, ad.tensor(x.astype(dtype)), vectorize=True)
    assert j.dtype == ad.float64 if dtype == np.float64 else ad.float32
    np.testing.assert_allclose(_np(j), expected, **tol)
    jf = F.jacobian(f, ad.tensor(x.astype(dtype)), vectorize=True, strategy="forward-mode")
    np.testing.assert_allclose(_np(jf), expected, **tol)
    monkeypatch.setattr(ad.batched, "KERNEL_PRODUCT_WORK", 0)
    jp = F.jacobian(f, ad.tensor(x.astype(dtype)), vectorize=True)
    np.testing.assert_allclose(_np(j), _np(jp), **tol)


def test_big_product_operand_modified_in_place_raises_in_the_kernel():
    """A big constant weight changed in place between the forward and the batched sweep: the kernel's row reads
    it, so the sweep raises torch's in-place error rather than use either version of it."""
    rng = np.random.default_rng(4)
    w = ad.tensor(rng.standard_normal((128, 128)))
    x = ad.tensor(rng.standard_normal(128), requires_grad=True)
    out = ad.nn.functional.linear(x, w)
    w.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ad.autograd.grad(out, x, ad.tensor(np.eye(128)), is_grads_batched=True)


def _final_linear(lib, w, b, reread):
    """tanh layer, then a linear of one vector (the root); ``reread``: the tanh output is read again after the
    root is recorded (its cotangent block is then born above the root's row)."""
    linear = lib.nn.functional.linear

    def f(x):
        h = lib.tanh(x * 1.5)
        out = linear(h, w, b)
        if reread:
            _ = h * 2.0
        return out

    return f


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reread", [False, True])
def test_identity_seeds_through_a_final_linear_take_the_weight(dtype, reread):
    """Identity seeds through a root that is a linear of one vector: the kernel adds the weight's transpose to
    x's cotangents instead of running the GEMM ``w.T @ I`` (``kernels.batched._linear_backward_batched``); the
    Jacobian is the analytic one, torch's, and exactly the GEMM's (seeds ``2 I``, halved: scaling by two is
    exact, and those seeds are not the identity)."""
    rng = np.random.default_rng(21)
    w, b, x = rng.standard_normal((5, 7)), rng.standard_normal(5), rng.standard_normal(7)
    f = _final_linear(ad, ad.tensor(w.astype(dtype)), ad.tensor(b.astype(dtype)), reread)
    j = F.jacobian(f, ad.tensor(x.astype(dtype)), vectorize=True)
    assert j.dtype == (ad.float64 if dtype == np.float64 else ad.float32)
    expected = w * (1.5 * (1.0 - np.tanh(1.5 * x) ** 2))
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(j), expected, **tol)
    tj = torch.autograd.functional.jacobian(
        _final_linear(torch, torch.tensor(w.astype(dtype)), torch.tensor(b.astype(dtype)), reread),
        torch.tensor(x.astype(dtype)),
        vectorize=True,
    )
    np.testing.assert_allclose(_np(j), _np(tj), **tol)
    xr = ad.tensor(x.astype(dtype), requires_grad=True)
    out = f(xr)
    (doubled,) = ad.autograd.grad(out, xr, ad.tensor(2.0 * np.eye(5, dtype=dtype)), is_grads_batched=True)
    np.testing.assert_array_equal(_np(j), _np(doubled) / 2.0)


@pytest.mark.parametrize("case", ["weight_rg", "bias_rg", "two_rows", "permuted", "scaled"])
def test_batched_seeds_through_a_final_linear_match_the_loop(case):
    """Around that identity path: a weight or bias that needs a gradient too, x of two rows (the GEMM), seeds
    that are not the identity (the GEMM): every VJP of the batch equals its own grad() call."""
    rng = np.random.default_rng(22)
    w = ad.tensor(rng.standard_normal((4, 3)), requires_grad=case == "weight_rg")
    b = ad.tensor(rng.standard_normal(4), requires_grad=case == "bias_rg")
    x = ad.tensor(rng.standard_normal((2, 3) if case == "two_rows" else 3), requires_grad=True)
    out = _final_linear(ad, w, b, False)(x)
    n = out.numel()
    seeds = np.eye(n)[::-1].copy() if case == "permuted" else np.eye(n) * (2.0 if case == "scaled" else 1.0)
    inputs = [x] + [t for t in (w, b) if t.requires_grad]
    got = ad.autograd.grad(
        out, inputs, ad.tensor(seeds.reshape((n,) + out.shape)), is_grads_batched=True, retain_graph=True
    )
    for k in range(n):
        want = ad.autograd.grad(out, inputs, ad.tensor(seeds[k].reshape(out.shape)), retain_graph=True)
        for g, r in zip(got, want):
            np.testing.assert_allclose(_np(g)[k], _np(r), rtol=1e-13, atol=1e-15)


def test_identity_seeds_through_a_final_linear_on_a_freed_graph_raise_as_torch():
    """The identity path runs after the kernel's checks of the row: a second batched sweep of a freed graph raises
    torch's error (a weight changed in place: ``test_big_product_operand_modified_in_place_raises_in_the_kernel``)."""
    rng = np.random.default_rng(23)
    x = ad.tensor(rng.standard_normal(3), requires_grad=True)
    out = ad.nn.functional.linear(ad.tanh(x), ad.tensor(rng.standard_normal((3, 3))), ad.tensor(np.zeros(3)))
    ad.autograd.grad(out, x, ad.tensor(np.eye(3)), is_grads_batched=True)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        ad.autograd.grad(out, x, ad.tensor(np.eye(3)), is_grads_batched=True)
