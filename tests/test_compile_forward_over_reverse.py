"""ad.compile of forward over reverse (a grad inside a dual level: ad/compile_dual.py): every replayed call
against the same function run eagerly, against analytic Hessian-vector products, and the uses it does not
replay (eager, one warning, still right)."""

import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwd
from ad.compile_program import Program

RNG = np.random.default_rng(19)


def close(a, b, tol=1e-12):
    a = a.detach().numpy() if isinstance(a, ad.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, ad.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def hvp_of(f, wrt_leaf=False):
    """The workload's step: (gradient, H v) of the scalar ``f`` at ``x`` along ``v``."""

    def step(x, v):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            (g,) = ad.autograd.grad(f(xd), x if wrt_leaf else xd)
            return fwd.unpack_dual(g)

    return step


def check_replays(step, make_args, tol=1e-12, calls=5):
    """Every call of ``ad.compile(step)`` (two recordings, then replays) equals ``step`` run eagerly, with no
    warning; returns the compiled function."""
    cf = ad.compile(step)
    for _ in range(calls):
        args = make_args()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cf(*args)
        want = step(*args)
        assert len(got) == len(want) == 2
        for a, b in zip(got, want):
            assert b is not None and not a.requires_grad and a._tangents is None
            close(a, b, tol)
    (entry,) = cf.cache.values()
    assert entry.eager is None and type(entry.template) is Program
    return cf


def leaf(*shape, dtype="float64"):
    return ad.tensor(RNG.standard_normal(shape).astype(dtype), requires_grad=True)


def const(*shape, dtype="float64"):
    return ad.tensor(RNG.standard_normal(shape).astype(dtype))


def test_w4_hessian_vector_product_replays_and_is_analytic():
    n = 64
    A = const(n, n) / np.sqrt(n)
    step = hvp_of(lambda x: ad.tanh(A @ x).sum())
    cf = check_replays(step, lambda: (leaf(n), const(n)))
    x, v = leaf(n), const(n)
    g, hv = cf(x, v)
    a, xv, vv = A.numpy(), x.detach().numpy(), v.numpy()
    t = np.tanh(a @ xv)
    close(g, a.T @ (1 - t**2))
    close(hv, a.T @ (-2 * t * (1 - t**2) * (a @ vv)))


def test_big_matrix_rows_and_the_gradient_of_the_leaf():
    n = 256  # (A has BIG_ROW elements or more: its matmul is a big row, swept from Python)
    A = const(n, n) / np.sqrt(n)
    check_replays(hvp_of(lambda x: ad.tanh(A @ x).sum(), wrt_leaf=True), lambda: (leaf(n), const(n)), calls=4)


def test_mlp():
    W1, b1, W2, b2 = const(16, 8), const(16), const(4, 16), const(4)

    def f(x):
        h = ad.tanh(W1 @ x + b1)
        return (ad.sigmoid(W2 @ h + b2) ** 2).sum()

    check_replays(hvp_of(f), lambda: (leaf(8), const(8)))


@pytest.mark.parametrize(
    "f",
    [
        lambda x: (ad.sin(x) * ad.exp(x)).sum(),
        lambda x: (x * x * x / (1.0 + x * x)).sum(),
        lambda x: ad.log(1.0 + ad.exp(-x)).sum(),
        lambda x: (ad.cos(x) ** 2 - ad.sqrt(x * x + 1.0)).mean(),
    ],
    ids=["sin-exp", "rational", "softplus", "cos-sqrt-mean"],
)
def test_elementwise_ops(f):
    check_replays(hvp_of(f), lambda: (leaf(10), const(10)))


def test_float32():
    A = const(32, 32, dtype="float32") / 6.0
    step = hvp_of(lambda x: ad.tanh(A @ x).sum())
    check_replays(step, lambda: (leaf(32, dtype="float32"), const(32, dtype="float32")), tol=1e-5)


def test_tangent_from_outside_is_read_at_each_call_and_a_constant_tangent_replays():
    n = 12
    v = const(n)

    def step(x):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            (g,) = ad.autograd.grad((ad.sin(xd) * xd).sum(), xd)
            return fwd.unpack_dual(g).tangent

    cf = ad.compile(step)
    for _ in range(4):
        with ad.no_grad():
            v.copy_(const(n))  # (an in-place update of the direction, as an optimizer's)
        x = leaf(n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            close(cf(x), step(x))
        xv, vv = x.detach().numpy(), v.numpy()
        close(cf(x), (2 * np.cos(xv) - xv * np.sin(xv)) * vv)

    def ones_direction(x):
        with fwd.dual_level():
            xd = fwd.make_dual(x, ad.ones_like(x))
            (g,) = ad.autograd.grad((xd**3).sum(), xd)
            return fwd.unpack_dual(g).tangent

    check_ones = ad.compile(ones_direction)
    for _ in range(4):
        x = leaf(n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            close(check_ones(x), 6 * x.detach().numpy())


def test_results_of_an_earlier_call_stay_valid():
    n = 20
    A = const(n, n)
    cf = ad.compile(hvp_of(lambda x: ad.tanh(A @ x).sum()))
    held = []
    for _ in range(5):
        x, v = leaf(n), const(n)
        g, hv = cf(x, v)
        held.append((g, hv, g.numpy().copy(), hv.numpy().copy()))
    for g, hv, g0, hv0 in held:
        close(g, g0, 0)
        close(hv, hv0, 0)
    assert len({id(h[1]._data) for h in held}) == len(held)


def test_graph_outside_the_level_and_returned_primal_values():
    n = 9

    def step(x, v):
        y = ad.sin(x) * 2.0  # recorded before the level: its tangent is zero, its rows primal
        with fwd.dual_level():
            xd = fwd.make_dual(y, v)
            loss = (ad.exp(xd) * y).sum()
            (g,) = ad.autograd.grad(loss, xd, retain_graph=True)
            p, t = fwd.unpack_dual(g)
        return loss, p, t

    cf = ad.compile(step)
    for _ in range(5):
        x, v = leaf(n), const(n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cf(x, v)
        want = step(x, v)
        for a, b in zip(got, want):
            close(a, b)
        yv = 2 * np.sin(x.detach().numpy())
        close(got[2], np.exp(yv) * yv * v.numpy())
        (gx,) = ad.autograd.grad(got[0], x)  # (the replayed loss keeps its graph: retain_graph=True)
        close(gx, (np.exp(yv) * yv + np.exp(yv)) * 2 * np.cos(x.detach().numpy()))


def _nested(x, v):
    with fwd.dual_level(), fwd.dual_level():
        xd = fwd.make_dual(x, v)
        (g,) = ad.autograd.grad((xd**3).sum(), xd)
        return fwd.unpack_dual(g).tangent


def _tangent_of_intermediate(x, v):
    with fwd.dual_level():
        y = ad.sin(fwd.make_dual(x, v))
        return y.sum().detach() + fwd.unpack_dual(y).tangent.sum()


def _create_graph(x, v):
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        (g,) = ad.autograd.grad((xd**3).sum(), xd, create_graph=True)
        return fwd.unpack_dual(g).tangent


def _batched(x, v):
    with fwd.dual_level():
        xd = fwd.make_dual(x, ad.stack([v, v * 2.0]), is_batched=True)
        (g,) = ad.autograd.grad((xd**3).sum(), xd)
        return fwd.unpack_dual(g).tangent


def _no_grad_in_level(x, v):
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        return (xd**3).sum()


def _two_grads(x, v):
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        (g,) = ad.autograd.grad((xd**3).sum(), xd)
        (h,) = ad.autograd.grad((xd**2).sum(), xd)
        return fwd.unpack_dual(g).tangent + fwd.unpack_dual(h).tangent


def _without_second_order_rule(x, v):
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        (g,) = ad.autograd.grad((ad.softmax(xd, 0) ** 2).sum(), xd)
        return fwd.unpack_dual(g).tangent


_UNUSED = ad.tensor([1.0, 2.0], requires_grad=True)


def _unused_input(x, v):
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        g, unused = ad.autograd.grad((xd**3).sum(), (xd, _UNUSED), allow_unused=True)
        return fwd.unpack_dual(g).tangent


@pytest.mark.parametrize(
    "step, reason",
    [
        (_nested, "nested"),
        (_tangent_of_intermediate, "tangent of a tensor other than a grad() result"),
        (_create_graph, "other than grad() without create_graph"),
        (_batched, "batched"),
        (_no_grad_in_level, "without a grad() inside it"),
        (_two_grads, "two grad() calls"),
        (_without_second_order_rule, "second-order rule"),
        (_unused_input, "unused input"),
    ],
)
def test_unsupported_uses_run_eagerly_with_one_warning(step, reason):
    cf = ad.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):
            x, v = leaf(6), const(6)
            close(cf(x, v), step(x, v))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "forward-mode AD" in messages[0] and reason in messages[0], messages


def test_a_level_entered_outside_runs_eagerly():
    n = 6
    cf = ad.compile(lambda xd: ad.autograd.grad((xd**3).sum(), xd)[0])
    for _ in range(3):
        x, v = leaf(n), const(n)
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            got = fwd.unpack_dual(cf(xd))
        close(got.tangent, 6 * x.detach().numpy() * v.numpy())


def test_gradients_of_a_parameter_from_outside_carry_tangents_too():
    W = ad.tensor(RNG.standard_normal((5, 7)), requires_grad=True)

    def step(x, v):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            gx, gw = ad.autograd.grad(ad.tanh(W @ xd).sum(), (xd, W))
            return fwd.unpack_dual(gx).tangent, fwd.unpack_dual(gw).tangent, gw

    cf = ad.compile(step)
    for _ in range(5):
        x, v = leaf(7), const(7)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cf(x, v)
        want = step(x, v)
        for a, b in zip(got, want):
            close(a, b)
        w, xv, vv = W.detach().numpy(), x.detach().numpy(), v.numpy()
        t = np.tanh(w @ xv)
        close(got[1], np.outer(-2 * t * (1 - t**2) * (w @ vv), xv) + np.outer(1 - t**2, vv))
    assert W.grad is None


def test_linear_with_bias_and_the_bias_gradient():
    W, b = const(6, 5), ad.tensor(RNG.standard_normal(6), requires_grad=True)

    def step(x, v):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            h = ad.tanh(xd * 2.0)  # (tangent rows before linear's: its bias row moves when they are left out)
            gx, gb = ad.autograd.grad(ad.sigmoid(ad.nn.functional.linear(h, W, b)).sum(), (xd, b))
            return fwd.unpack_dual(gx).tangent, fwd.unpack_dual(gb).tangent

    cf = ad.compile(step)
    for _ in range(5):
        x, v = leaf(4, 5), const(4, 5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cf(x, v)
        for a, want in zip(got, step(x, v)):
            close(a, want)


# --- the prepared program (compile_dual.DualProgram): big matrix-vector rows, kept buffers ---------------------


def prepared(cf):
    """The ``DualProgram`` a compiled function's replays run (None: ``call_dual_grad``)."""
    (entry,) = cf.cache.values()
    return entry.template.dual[5]


@pytest.mark.parametrize("wrt_leaf", [False, True], ids=["dual", "leaf"])
def test_big_matrix_vector_products_in_both_orientations(wrt_leaf):
    n = 128  # (n * n = BIG_ROW elements: each product is a big row, swept from Python)
    W1, W2 = const(n, n) / np.sqrt(n), const(n, n) / np.sqrt(n)

    def step(x, v):
        y = ad.sin(x)  # recorded before the level: no tangent, so its product's tangent is zero
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            h = ad.tanh(W1 @ xd) * ad.cos(W2 @ y)
            (g,) = ad.autograd.grad((ad.tanh(h @ W2) ** 2).sum(), x if wrt_leaf else xd)
            return fwd.unpack_dual(g)

    cf = check_replays(step, lambda: (leaf(n), const(n)))
    P = prepared(cf)
    assert P is not None and [mv[6] for mv in P.matvecs] == [1, 1, 0]  # (A @ v twice, then v @ A)


def test_w4_through_the_prepared_program_is_analytic():
    n = 128
    A = const(n, n) / np.sqrt(n)
    cf = check_replays(hvp_of(lambda x: ad.tanh(A @ x).sum()), lambda: (leaf(n), const(n)), calls=3)
    assert prepared(cf) is not None
    x, v = leaf(n), const(n)
    g, hv = cf(x, v)
    a, xv, vv = A.numpy(), x.detach().numpy(), v.numpy()
    t = np.tanh(a @ xv)
    close(g, a.T @ (1 - t**2))
    close(hv, a.T @ (-2 * t * (1 - t**2) * (a @ vv)))


def test_kept_buffers_do_not_leak_values_between_calls():
    n = 128
    A = const(n, n) / np.sqrt(n)
    step = hvp_of(lambda x: ad.tanh(A @ x).sum())
    cf = check_replays(step, lambda: (leaf(n), const(n)), calls=3)
    P = prepared(cf)
    for _ in range(3):
        assert P.spares
        for spare in P.spares:
            spare[0][:] = 255  # every byte of the kept buffer: NaN arenas, every live flag set
            spare[5][:] = 1  # (visited rows)
        x, v = leaf(n), const(n)
        for a, b in zip(cf(x, v), step(x, v)):
            close(a, b)
            assert np.isfinite(a.numpy()).all()


def test_a_matrix_from_outside_is_read_at_each_call():
    n = 128
    A = const(n, n) / np.sqrt(n)
    step = hvp_of(lambda x: ad.tanh(A @ x).sum())
    cf = check_replays(step, lambda: (leaf(n), const(n)), calls=3)
    for k in range(4):
        if k % 2:
            with ad.no_grad():
                A.mul_(0.5)  # (in place)
        else:
            A.data = const(n, n) / np.sqrt(n)  # (another array)
        x, v = leaf(n), const(n)
        for a, b in zip(cf(x, v), step(x, v)):
            close(a, b)
    assert prepared(cf) is not None


def test_calls_from_several_threads_take_separate_buffers():
    import threading

    n = 128
    A = const(n, n) / np.sqrt(n)
    step = hvp_of(lambda x: ad.tanh(A @ x).sum())
    cf = check_replays(step, lambda: (leaf(n), const(n)), calls=3)
    args = [(leaf(n), const(n)) for _ in range(4)]
    want = [[t.numpy().copy() for t in step(*a)] for a in args]
    errors = []

    def worker():
        try:
            for _ in range(25):
                for a, w in zip(args, want):
                    for got, expected in zip(cf(*a), w):
                        close(got, expected)
        except Exception as e:  # (reported below: an exception in a thread does not fail the test)
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_a_replay_with_ufunc_rows_runs_the_tangent_pass_after_it():
    A = const(4096, 4) / 2.0  # (a big row; its 4096-element result's log1p is a numpy ufunc row in the replay)
    step = hvp_of(lambda x: ad.log1p(ad.tanh(A @ x) ** 2).sum())
    cf = check_replays(step, lambda: (leaf(4), const(4)), calls=4)
    P = prepared(cf)
    assert P is not None and P.schedule is None
    x, v = leaf(4), const(4)
    g, hv = cf(x, v)
    a, xv, vv = A.numpy(), x.detach().numpy(), v.numpy()

    def grad(x):
        u = np.tanh(a @ x)
        return a.T @ (2 * u * (1 - u**2) / (1 + u**2))

    close(g, grad(xv), 1e-10)
    eps = 1e-5
    close(hv, (grad(xv + eps * vv) - grad(xv - eps * vv)) / (2 * eps), 1e-6)


@pytest.mark.parametrize("retain_graph", [True, False])
def test_a_returned_loss_through_big_rows_keeps_or_frees_its_graph_as_eager(retain_graph):
    n = 128
    A = const(n, n) / np.sqrt(n)

    def step(x, v):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            loss = ad.tanh(A @ xd).sum()
            (g,) = ad.autograd.grad(loss, xd, retain_graph=retain_graph)
            return loss, fwd.unpack_dual(g).tangent

    cf = ad.compile(step)
    for _ in range(4):
        x, v = leaf(n), const(n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cf(x, v)
        want = step(x, v)
        for a, b in zip(got, want):
            close(a, b)
        if retain_graph:  # (the replayed loss's graph, its big row's tensors made when the sweep reads them)
            close(ad.autograd.grad(got[0], x)[0], ad.autograd.grad(want[0], x)[0])
        else:
            with pytest.raises(RuntimeError) as replayed:
                ad.autograd.grad(got[0], x)
            with pytest.raises(RuntimeError) as eager:
                ad.autograd.grad(want[0], x)
            assert str(replayed.value) == str(eager.value)
    assert prepared(cf) is not None


def test_a_tangent_from_outside_of_another_shape_runs_eagerly_and_raises_as_eager():
    n = 128
    A, v = const(n, n) / np.sqrt(n), const(n)

    def step(x):
        with fwd.dual_level():
            xd = fwd.make_dual(x, v)
            (g,) = ad.autograd.grad(ad.tanh(A @ xd).sum(), xd)
            return fwd.unpack_dual(g)

    cf = check_replays(step, lambda: (leaf(n),), calls=3)
    assert prepared(cf) is not None
    v.data = const(n + 1)
    x = leaf(n)
    with pytest.raises(RuntimeError, match="different size"):
        cf(x)
    with pytest.raises(RuntimeError, match="different size"):
        step(x)
    v.data = const(n)
    for a, b in zip(cf(x), step(x)):
        close(a, b)
