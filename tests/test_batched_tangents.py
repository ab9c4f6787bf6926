"""Batched tangents in forward mode (issue 12, item 2): B JVPs in one forward pass.

- ``test_batched_equals_looped``: every op-table case (tests/test_op_table.py's ``ALL_CASES``), B random
  tangents per input carried at one batched level, against B separate forward passes (one tangent each);
- the same through a recorded graph (inputs that require grad) and at two nested levels;
- ``jacobian(strategy="forward-mode", vectorize=True)`` against reverse mode and analytic values, ``hessian``
  forward over reverse against torch's, and the argument errors of ``make_dual(is_batched=True)``.
"""

import numpy as np
import pytest
from test_forward_fd import _plain_inputs
from test_op_table import ALL_CASES, _case

import ad
import ad.autograd.forward_ad as fwAD

B = 3


def _looped(fn, xs, tangents):
    """``tangents[i]``: (B, *xs[i].shape); the output tangent of each batch entry, one forward pass each."""
    res = []
    for b in range(B):
        with fwAD.dual_level():
            duals = [fwAD.make_dual(x, ad.tensor(t[b])) for x, t in zip(xs, tangents)]
            out = fwAD.unpack_dual(fn(*duals))
            res.append(out.tangent.detach().numpy())
    return np.stack(res)


def _batched(fn, xs, tangents):
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, ad.tensor(t), is_batched=True) for x, t in zip(xs, tangents)]
        out = fwAD.unpack_dual(fn(*duals))
        assert out.tangent.shape == (B,) + tuple(out.primal.shape)
        return out.primal.detach().numpy(), out.tangent.detach().numpy()


def _setup(name, requires_grad=False):
    fn, shapes, _ = _case(name)
    arrays = _plain_inputs(name, shapes, seed=21)
    rng = np.random.default_rng(22)
    tangents = [rng.standard_normal((B,) + a.shape) for a in arrays]
    xs = [ad.tensor(a, requires_grad=requires_grad) for a in arrays]
    return fn, xs, tangents


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_batched_equals_looped(name):
    fn, xs, tangents = _setup(name)
    primal, batched = _batched(fn, xs, tangents)
    with ad.no_grad():
        np.testing.assert_allclose(primal, fn(*xs).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batched, _looped(fn, xs, tangents), rtol=1e-10, atol=1e-10)


# a sample across the families (every op of the table runs above): through a recorded graph, where no compiled
# JVP applies and every rule runs as ad ops
RECORDED = [
    "sin",
    "mul",
    "div",
    "pow",
    "maximum",
    "sum",
    "mean",
    "prod",
    "amax",
    "matmul",
    "expand",
    "permute",
    "getitem",
    "cat",
    "stack",
    "where",
    "log_softmax",
    "cross_entropy",
    "cumsum",
    "linalg_solve",
]


@pytest.mark.parametrize("name", [n for n in RECORDED if n in ALL_CASES])
def test_batched_equals_looped_through_a_recorded_graph(name):
    fn, xs, tangents = _setup(name, requires_grad=True)
    _, batched = _batched(fn, xs, tangents)
    np.testing.assert_allclose(batched, _looped(fn, xs, tangents), rtol=1e-10, atol=1e-10)


def test_recorded_sample_names_exist():
    assert len([n for n in RECORDED if n in ALL_CASES]) >= 15


def _f(x, y):
    return ((x @ y).tanh() * y.sum(0, keepdim=True)).sum(-1) + (x.T[0] * y[:, 0]).exp().mean()


def test_nested_levels_batched_outer_plain_inner():
    """Forward over forward with the outer level batched: the mixed second derivatives ``d2 f . (u_b, v)``."""
    rng = np.random.default_rng(3)
    x, y = ad.tensor(rng.standard_normal((3, 3))), ad.tensor(rng.standard_normal((3, 2)))
    U = rng.standard_normal((B, 3, 3))
    v = rng.standard_normal((3, 3))

    def second(outer_tangent, batched):
        with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
            xo = fwAD.make_dual(x, ad.tensor(outer_tangent), level=outer, is_batched=batched)
            xi = fwAD.make_dual(xo, ad.tensor(v), level=inner)
            d1 = fwAD.unpack_dual(_f(xi, y), level=inner).tangent
            return fwAD.unpack_dual(d1, level=outer).tangent.numpy()

    looped = np.stack([second(U[b], False) for b in range(B)])
    np.testing.assert_allclose(second(U, True), looped, rtol=1e-10, atol=1e-12)


def test_nested_levels_plain_outer_batched_inner():
    rng = np.random.default_rng(4)
    x, y = ad.tensor(rng.standard_normal((3, 3))), ad.tensor(rng.standard_normal((3, 2)))
    u = rng.standard_normal((3, 3))
    V = rng.standard_normal((B, 3, 3))

    def second(inner_tangent, batched):
        with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
            xo = fwAD.make_dual(x, ad.tensor(u), level=outer)
            xi = fwAD.make_dual(xo, ad.tensor(inner_tangent), level=inner, is_batched=batched)
            d1 = fwAD.unpack_dual(_f(xi, y), level=inner).tangent
            return fwAD.unpack_dual(d1, level=outer).tangent.numpy()

    looped = np.stack([second(V[b], False) for b in range(B)])
    np.testing.assert_allclose(second(V, True), looped, rtol=1e-10, atol=1e-12)


def test_unbatched_tangent_at_a_batched_level_is_broadcast():
    rng = np.random.default_rng(5)
    x, y = ad.tensor(rng.standard_normal((3, 3))), ad.tensor(rng.standard_normal((3, 2)))
    U, w = rng.standard_normal((B, 3, 3)), rng.standard_normal((3, 2))
    with fwAD.dual_level():
        out = _f(fwAD.make_dual(x, ad.tensor(U), is_batched=True), fwAD.make_dual(y, ad.tensor(w)))
        batched = fwAD.unpack_dual(out).tangent.numpy()
    looped = _looped(_f, [x, y], [U, np.broadcast_to(w, (B, 3, 2))])
    np.testing.assert_allclose(batched, looped, rtol=1e-10, atol=1e-12)


class _Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        assert t.shape == x.shape  # the user's jvp sees one tangent at a time
        return 3 * x**2 * t


def test_custom_function_jvp_runs_per_batch_entry():
    rng = np.random.default_rng(6)
    x = ad.tensor(rng.uniform(0.5, 1.5, (4,)))
    T = rng.standard_normal((B, 4))
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(_Cube.apply(fwAD.make_dual(x, ad.tensor(T), is_batched=True))).tangent
    np.testing.assert_allclose(tangent.numpy(), 3 * x.numpy() ** 2 * T, rtol=1e-13)


def test_batched_make_dual_errors():
    x = ad.tensor(np.ones((2, 3)))
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(x, ad.tensor(np.ones((4, 3, 2))), is_batched=True)
        with pytest.raises(RuntimeError, match="leading batch dimension"):
            fwAD.make_dual(ad.tensor(1.0), ad.tensor(1.0), is_batched=True)
        fwAD.make_dual(x, ad.tensor(np.ones((4, 2, 3))), is_batched=True)
        with pytest.raises(RuntimeError, match="batch size 5 differs from the batch size 4"):
            fwAD.make_dual(x, ad.tensor(np.ones((5, 2, 3))), is_batched=True)
        with pytest.raises(RuntimeError, match="same dtype"):
            fwAD.make_dual(x, ad.tensor(np.ones((4, 2, 3), np.float32)), is_batched=True)
    with fwAD.dual_level():
        keep = fwAD.make_dual(x, ad.tensor(np.ones((2, 3))))
        with pytest.raises(RuntimeError, match="already holds unbatched tangents"):
            fwAD.make_dual(x, ad.tensor(np.ones((4, 2, 3))), is_batched=True)
        assert fwAD.unpack_dual(keep).tangent.shape == (2, 3)
    with fwAD.dual_level():  # a level exited forgets its batch size
        assert fwAD.unpack_dual(fwAD.make_dual(x, ad.tensor(np.ones((2, 3))))).tangent.shape == (2, 3)


# ---------------------------------------------------------------------------------------------------------
# functional: jacobian and hessian by batched tangents


def _mlp_params(rng, sizes=(5, 7, 4)):
    return [
        (ad.tensor(rng.standard_normal((o, i)) / np.sqrt(i)), ad.tensor(rng.standard_normal(o) / 10))
        for i, o in zip(sizes[:-1], sizes[1:])
    ]


@pytest.mark.parametrize("rows", [None, 2])
def test_jacobian_forward_mode_equals_reverse_mode_and_analytic(rows):
    """A 1-D input, and a batch of ``rows`` inputs (2-D tangents and cotangents through each layer)."""
    rng = np.random.default_rng(7)
    params = _mlp_params(rng)
    x = ad.tensor(rng.standard_normal(5 if rows is None else (rows, 5)))
    F = ad.nn.functional

    def mlp(x):
        h = F.linear(x, *params[0]).tanh()
        return F.linear(h, *params[1])

    fwd = ad.autograd.functional.jacobian(mlp, x, vectorize=True, strategy="forward-mode")
    rev = ad.autograd.functional.jacobian(mlp, x, vectorize=True)
    (W1, b1), (W2, _) = [(w.numpy(), b.numpy()) for w, b in params]
    xs = x.numpy().reshape(-1, 5)
    analytic = np.zeros((xs.shape[0], 4, xs.shape[0], 5))
    for m, xm in enumerate(xs):  # row m of the output depends on row m of the input only
        h = np.tanh(W1 @ xm + b1)
        analytic[m, :, m] = W2 @ ((1 - h**2)[:, None] * W1)
    analytic = analytic.reshape(tuple(mlp(x).shape) + tuple(x.shape))
    for j in (fwd, rev):
        assert j.shape == analytic.shape and j.numpy().flags.c_contiguous and not j.requires_grad
        np.testing.assert_allclose(j.numpy(), analytic, rtol=1e-12, atol=1e-14)


def test_jacobian_forward_mode_several_inputs_and_outputs():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(4)

    def f(x, y):
        return (x.sin() * y[:3]).sum(0), x @ (y[1:] * y[:3]).unsqueeze(-1), y.prod()

    inputs = (ad.tensor(a), ad.tensor(b))
    fwd = ad.autograd.functional.jacobian(f, inputs, vectorize=True, strategy="forward-mode")
    rev = ad.autograd.functional.jacobian(f, inputs, vectorize=True)
    for i in range(3):
        for j in range(2):
            assert fwd[i][j].shape == rev[i][j].shape
            np.testing.assert_allclose(fwd[i][j].numpy(), rev[i][j].numpy(), rtol=1e-12, atol=1e-14)


def test_hessian_forward_over_reverse_equals_torchs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    a, xa, ya = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((2, 2))

    def f(lib, x, y):
        return (lib.tensor(a) @ x).tanh().sum() * (y**2).sum() + (x[:2] * y[0]).exp().sum()

    H = ad.autograd.functional.hessian(
        lambda x, y: f(ad, x, y), (ad.tensor(xa), ad.tensor(ya)), vectorize=True, outer_jacobian_strategy="forward-mode"
    )
    Ht = torch.autograd.functional.hessian(
        lambda x, y: f(torch, x, y),
        (torch.tensor(xa), torch.tensor(ya)),
        vectorize=True,
        outer_jacobian_strategy="forward-mode",
    )
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(H[i][j].numpy(), Ht[i][j].detach().numpy(), rtol=1e-11, atol=1e-13)


# ---------------------------------------------------------------------------------------------------------
# grad(..., is_grads_batched=True, create_graph=True): one differentiable sweep carrying the batch


def _grad_inputs(name):
    fn, shapes, _ = _case(name)
    arrays = _plain_inputs(name, shapes, seed=31)
    xs = [ad.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    G = ad.tensor(np.random.default_rng(32).standard_normal((B,) + tuple(out.shape)))
    return fn, xs, out, G


# cases whose gradient depends on the inputs (a linear op's does not: nothing to differentiate again)
SECOND_ORDER = ["sin", "tanh", "div", "pow", "prod", "matmul", "log_softmax", "cross_entropy", "where", "linalg_solve"]


def _as_arrays(res):
    return [None if r is None else r.detach().numpy() for r in res]


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_batched_create_graph_equals_looped(name, monkeypatch):
    from ad import batched

    took = []
    real = batched.batched_graph_grad
    monkeypatch.setattr(batched, "batched_graph_grad", lambda *a: took.append(1) or real(*a))
    fn, xs, out, G = _grad_inputs(name)
    res = ad.autograd.grad(out, xs, G, is_grads_batched=True, create_graph=True, allow_unused=True)
    assert took  # the batched differentiable sweep was tried (it declines graphs with custom Functions)
    looped = [ad.autograd.grad(out, xs, G[b], create_graph=True, allow_unused=True) for b in range(B)]
    for k, r in enumerate(_as_arrays(res)):
        column = [lp[k] for lp in looped]
        if r is None:
            assert all(c is None for c in column)
            continue
        assert r.shape == (B,) + tuple(xs[k].shape)
        np.testing.assert_allclose(r, np.stack([c.detach().numpy() for c in column]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivative_through_a_batched_create_graph(name):
    fn, xs, out, G = _grad_inputs(name)
    res = ad.autograd.grad(out, xs, G, is_grads_batched=True, create_graph=True, allow_unused=True)
    weights = [ad.tensor(np.random.default_rng(33 + k).standard_normal(r.shape)) for k, r in enumerate(res)]
    total = sum((r * w).sum() for r, w in zip(res, weights) if r is not None)
    second = ad.autograd.grad(total, xs, retain_graph=True, allow_unused=True)
    looped_total = 0
    for b in range(B):
        gb = ad.autograd.grad(out, xs, G[b], create_graph=True, allow_unused=True)
        looped_total = looped_total + sum((g * w[b]).sum() for g, w in zip(gb, weights) if g is not None)
    expected = ad.autograd.grad(looped_total, xs, allow_unused=True)
    for s, e in zip(second, expected):
        if s is None or e is None:
            assert s is None and e is None
            continue
        np.testing.assert_allclose(s.numpy(), e.numpy(), rtol=1e-9, atol=1e-11)


def test_batched_create_graph_is_differentiable_wrt_the_cotangents():
    x = ad.tensor(np.linspace(0.1, 1.0, 4), requires_grad=True)
    G = ad.tensor(np.random.default_rng(34).standard_normal((B, 4)), requires_grad=True)
    (g,) = ad.autograd.grad(x.sin() * x, x, G, is_grads_batched=True, create_graph=True)
    (dG,) = ad.autograd.grad(g.sum(), G)
    xv = x.detach().numpy()
    np.testing.assert_allclose(dG.numpy(), np.broadcast_to(np.cos(xv) * xv + np.sin(xv), (B, 4)), rtol=1e-13)


def test_batched_create_graph_with_a_user_function_runs_per_cotangent():
    x = ad.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)
    G = ad.tensor(np.random.default_rng(35).standard_normal((B, 4)))
    (g,) = ad.autograd.grad(_Cube.apply(x), x, G, is_grads_batched=True, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2 * G.numpy(), rtol=1e-13)


MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((1, 2, 3), (5, 3, 2)),
]


@pytest.mark.parametrize("xs, ys", MATMUL_SHAPES)
def test_batched_matmul_every_operand_layout(xs, ys):
    """Each way matmul treats its operands (1-D as row or column, broadcast batch dims) against the product
    rule written out per batch entry."""
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal(xs), rng.standard_normal(ys)
    TX, TY = rng.standard_normal((B,) + xs), rng.standard_normal((B,) + ys)
    with fwAD.dual_level():
        dx = fwAD.make_dual(ad.tensor(x), ad.tensor(TX), is_batched=True)
        dy = fwAD.make_dual(ad.tensor(y), ad.tensor(TY), is_batched=True)
        tangent = fwAD.unpack_dual(dx @ dy).tangent.numpy()
    expected = np.stack([TX[b] @ y + x @ TY[b] for b in range(B)])
    assert tangent.shape == expected.shape
    np.testing.assert_allclose(tangent, expected, rtol=1e-12, atol=1e-13)
