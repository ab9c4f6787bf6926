"""torch's autograd semantics (PyTorch's test_autograd.py behaviours): engine traversal, reentrant backward,
custom Function features, in-place ops and saved tensors, ``.grad``/``.data`` state, grad-mode decorators.

Expected values are analytic (checked against torch 2.13 when the tests were written); tests that compare with
torch directly skip without it.
"""

import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
from ad.autograd.function import once_differentiable

CALLS = []


class Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        CALLS.append("cube")
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * t


class Exp(ad.autograd.Function):
    """Saves its output: double backward must go through the recorded output."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


def _t(values, rg=True):
    return ad.tensor(np.asarray(values, dtype=np.float64), requires_grad=rg)


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


# ------------------------------------------------------------------------------------------ engine traversal


@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_runs_only_nodes_on_a_path_to_the_inputs(create_graph):
    a, b = _t([1.0, 2.0]), _t([3.0, 4.0])
    loss = (a * 2).sum() + Cube.apply(b).sum()
    (ga,) = ad.autograd.grad(loss, [a], create_graph=create_graph)
    np.testing.assert_allclose(ga.detach().numpy(), [2.0, 2.0])
    assert CALLS == []  # Cube is not on a path from loss to a
    (gb,) = ad.autograd.grad(loss, [b], create_graph=create_graph)
    np.testing.assert_allclose(gb.detach().numpy(), 3 * np.array([3.0, 4.0]) ** 2)
    assert CALLS == ["cube"]


def test_backward_never_runs_functions_of_other_graphs_on_the_tape():
    a, b = _t([1.0, 2.0]), _t([3.0, 4.0])
    unrelated = Cube.apply(b).sum()  # recorded on the same tape, never differentiated
    (a * a).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 4.0])
    assert CALLS == [] and b.grad is None
    unrelated.backward()
    assert CALLS == ["cube"]


def test_function_recorded_between_rows_of_another_graph_is_not_run():
    x, z = _t([1.0, 2.0]), _t([1.0, 2.0])
    h = x * x
    Cube.apply(z)  # recorded between the rows of (x * x).sum()
    loss = h.sum()
    gx, gz = ad.autograd.grad(loss, [x, z], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])
    assert gz is None and CALLS == []


@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_frees_only_what_it_ran(create_graph):
    v = [_t([float(i + 1)]) for i in range(4)]
    loss = (v[0].exp() * v[1].exp()).sum() + (v[2].sin() * v[3].sin()).sum()
    g01 = ad.autograd.grad(loss, [v[0], v[1]])
    g23 = ad.autograd.grad(loss, [v[2], v[3]])  # the sin branch was not run, so not freed
    e = np.exp(3.0)
    np.testing.assert_allclose([g.item() for g in g01], [e, e])
    np.testing.assert_allclose([g.item() for g in g23], [np.cos(3) * np.sin(4), np.sin(3) * np.cos(4)])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        ad.autograd.grad(loss, [v[0]])


def test_hook_on_requested_non_leaf_does_not_change_its_returned_gradient():
    for create_graph in (False, True):
        x = _t([1.0, 2.0])
        h = x * 2
        h.register_hook(lambda g: g * 10)
        gh, gx = ad.autograd.grad((h * h).sum(), [h, x], create_graph=create_graph)
        np.testing.assert_allclose(gh.detach().numpy(), 2 * np.array([2.0, 4.0]))  # as it reaches h
        np.testing.assert_allclose(gx.detach().numpy(), 10 * 2 * 2 * np.array([2.0, 4.0]))  # hooked


def test_hooks_off_the_path_do_not_fire():
    x, w = _t([1.0, 2.0]), _t([3.0])
    fired = []
    u = w * 3
    u.register_hook(lambda g: fired.append("u"))
    loss = (x * 2).sum() + u.sum()
    ad.autograd.grad(loss, [x])
    assert fired == []


def test_reentrant_backward_from_a_hook():
    x, w = _t([1.0, 2.0]), _t([3.0, 1.0])
    y = x * 2

    def hook(g):
        with ad.enable_grad():
            (w * w).sum().backward()
        return g

    y.register_hook(hook)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(w.grad.numpy(), [6.0, 2.0])


class Reentrant(ad.autograd.Function):
    """backward calls grad on a graph of its own, nested ``depth`` levels deep."""

    @staticmethod
    def forward(ctx, x, depth):
        ctx.save_for_backward(x)
        ctx.depth = depth
        return x * 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        with ad.enable_grad():
            xx = x.detach().requires_grad_()
            inner = Reentrant.apply(xx, ctx.depth - 1) if ctx.depth > 0 else xx
            (gx,) = ad.autograd.grad((inner**2).sum(), xx)
        return g * gx, None


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_reentrant_backward_from_a_function_nested(depth):
    x = _t([1.0, 2.0])
    Reentrant.apply(x, depth).sum().backward()
    # level k's custom gradient of sum(R_{k-1}(x)^2): the seed 2 * (2x) times level k-1's, and 2x at the bottom
    x0 = np.array([1.0, 2.0])
    expected = 2 * x0
    for _ in range(depth):
        expected = 4 * x0 * expected
    np.testing.assert_allclose(x.grad.numpy(), expected)


# ------------------------------------------------------------------------------------------ custom Functions


@pytest.mark.parametrize("x0", [0.5, -1.2])
def test_double_backward_through_saved_output_and_input(x0):
    x = _t(x0)
    (g,) = ad.autograd.grad(Exp.apply(x), x, create_graph=True)
    (gg,) = ad.autograd.grad(g, x)
    np.testing.assert_allclose([g.item(), gg.item()], [np.exp(x0), np.exp(x0)])
    (g,) = ad.autograd.grad(Cube.apply(x), x, create_graph=True)
    (gg,) = ad.autograd.grad(g, x)
    np.testing.assert_allclose([g.item(), gg.item()], [3 * x0**2, 6 * x0])


def test_in_place_op_on_function_output_keeps_its_gradient():
    for create_graph in (False, True):
        x = _t([1.0, 2.0])
        y = Cube.apply(x)
        y.mul_(2)
        (g,) = ad.autograd.grad(y.sum(), x, create_graph=create_graph)
        np.testing.assert_allclose(g.detach().numpy(), 6 * np.array([1.0, 2.0]) ** 2)


def test_saved_input_modified_under_no_grad_raises():
    x = _t([1.0, 2.0])
    h = x * 1
    y = Cube.apply(h)
    with ad.no_grad():
        h.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_saved_output_modified_in_place_raises():
    x = _t([1.0, 2.0])
    y = Exp.apply(x)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


class Square(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        assert not ad.is_grad_enabled() and not g.requires_grad
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_once_differentiable():
    x = _t([1.0, 2.0])
    (g,) = ad.autograd.grad(Square.apply(x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    y = Square.apply(x)
    (g,) = ad.autograd.grad((y * x).sum(), x, create_graph=True)  # x^3: 3 x^2, partly through Square
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0])
    with pytest.raises(RuntimeError, match="differentiate twice a function that was marked with @once_differentiable"):
        g.sum().backward()


class Scale(ad.autograd.Function):
    """torch's separate style: forward without ctx, then setup_context."""

    @staticmethod
    def forward(x, k):
        return x * k

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.k = inputs[1]

    @staticmethod
    def vjp(ctx, g):  # the alias of backward
        return g * ctx.k, None


def test_setup_context_style_and_vjp_alias():
    x = _t([1.0, 2.0])
    Scale.apply(x, 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_defining_backward_and_vjp_raises():
    class Both(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def vjp(ctx, g):
            return g * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = _t([1.0])
    with pytest.raises(RuntimeError, match="Implementing both 'backward' and 'vjp'"):
        Both.apply(x).sum().backward()


class TwoOut(ad.autograd.Function):
    seen = []

    @staticmethod
    def forward(ctx, x):
        a, b = x * 2, x * 3
        ctx.mark_non_differentiable(b) if getattr(ctx, "nondiff", False) else None
        return a, b

    @staticmethod
    def backward(ctx, ga, gb):
        TwoOut.seen.append((ga, gb))
        return ga * 2 + gb * 3


def test_gradient_through_a_later_output_only():
    TwoOut.seen.clear()
    x = _t([1.0, 2.0])
    a, b = TwoOut.apply(x)
    assert a.grad_fn is b.grad_fn and a.grad_fn.name() == "TwoOutBackward"
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    ga, gb = TwoOut.seen[0]
    np.testing.assert_allclose(ga.numpy(), [0.0, 0.0])  # materialized zeros for the unused output
    np.testing.assert_allclose(gb.numpy(), [1.0, 1.0])


class NonDiff(ad.autograd.Function):
    seen = []

    @staticmethod
    def forward(ctx, x):
        a, b = x * 2, x * 3
        ctx.mark_non_differentiable(b)
        return a, b

    @staticmethod
    def backward(ctx, ga, gb):
        NonDiff.seen.append(gb)
        return ga * 2

    @staticmethod
    def jvp(ctx, t):
        return t * 2, t * 3  # a tangent for the non-differentiable output: an error


def test_mark_non_differentiable():
    NonDiff.seen.clear()
    x = _t([1.0, 2.0])
    a, b = NonDiff.apply(x)
    assert not b.requires_grad and b.grad_fn is None
    a.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(NonDiff.seen[0].numpy(), [0.0, 0.0])  # zeros, not None
    with fwAD.dual_level():
        xd = fwAD.make_dual(_t([1.0, 2.0], rg=False), _t([1.0, 1.0], rg=False))
        with pytest.raises(RuntimeError, match="not a differentiable Tensor"):
            NonDiff.apply(xd)


def test_set_materialize_grads_false_passes_none():
    seen = []

    class Lazy(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append((g1, g2))
            return g2 * 3

    x = _t([1.0, 2.0])
    Lazy.apply(x)[1].sum().backward()
    assert seen[0][0] is None
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_returning_the_same_tensor_twice():
    seen = []

    class Same(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x, x

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append((g1.numpy().copy(), g2.numpy().copy()))
            return g1 + g2

    x = _t([1.0, 2.0])
    a, b = Same.apply(x * 1)
    (a * 2 + b * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])
    np.testing.assert_allclose(seen[0][0], [2.0, 2.0])
    np.testing.assert_allclose(seen[0][1], [3.0, 3.0])


def test_jvp_gets_none_for_non_float_inputs_and_zeros_for_float_inputs_without_tangent():
    seen = []

    class Mul(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, idx):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def jvp(ctx, tx, ty, tidx):
            seen.append((ty, tidx))
            x, y = ctx.saved_tensors
            return tx * y + ty * x

    with fwAD.dual_level():
        x = fwAD.make_dual(_t([1.0, 2.0], rg=False), _t([1.0, 1.0], rg=False))
        out = Mul.apply(x, _t([3.0, 4.0], rg=False), ad.tensor(np.array([0, 1])))
        np.testing.assert_allclose(fwAD.unpack_dual(out).tangent.numpy(), [3.0, 4.0])
    ty, tidx = seen[0]
    np.testing.assert_allclose(ty.numpy(), [0.0, 0.0])
    assert tidx is None


def test_missing_jvp_raises_not_implemented():
    class NoJvp(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with fwAD.dual_level():
        xd = fwAD.make_dual(_t([1.0], rg=False), _t([1.0], rg=False))
        with pytest.raises(NotImplementedError, match="implement the jvp function"):
            NoJvp.apply(xd)


def test_legacy_call_and_instantiation():
    with pytest.warns(DeprecationWarning, match="should not be instantiated"):
        f = Cube()
    with pytest.raises(RuntimeError, match="Legacy autograd function with non-static forward method"):
        f(_t([1.0]))


def test_mark_dirty():
    class MulInPlace(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x.mul_(2)

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = _t([1.0, 2.0])
    h = x * 3
    y = MulInPlace.apply(h)
    assert y is h and h.grad_fn.name() == "MulInPlaceBackward"
    np.testing.assert_allclose(h.detach().numpy(), [6.0, 12.0])
    (h * h).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([6.0, 12.0]) * 2 * 3)
    leaf = _t([1.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        MulInPlace.apply(leaf)


# ------------------------------------------------------------------------------------------ tensor state


@pytest.mark.parametrize("create_graph", [False, True])
def test_retain_grad_survives_in_place(create_graph):
    x = _t([1.0, 2.0])
    h = x * 1
    h.retain_grad()
    h.mul_(3)
    assert h.retains_grad
    h.sum().backward(create_graph=create_graph)
    np.testing.assert_allclose(h.grad.detach().numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0, 3.0])


def test_grad_assignment_checks_and_delete():
    x = _t([1.0, 2.0])
    with pytest.raises(RuntimeError, match="can't assign Variable as its own grad"):
        x.grad = x
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype 'float'"):
        x.grad = ad.tensor([1.0, 2.0], dtype=ad.float32)
    with pytest.raises(RuntimeError, match="size"):
        x.grad = _t([1.0, 2.0, 3.0], rg=False)
    assert x.grad is None  # nothing half-changed
    x.grad = _t([5.0, 6.0], rg=False)
    del x.grad
    assert x.grad is None


def test_data_assignment_and_deletion():
    y = _t([1.0, 2.0])
    y.data = _t([5.0, 6.0, 7.0], rg=False)
    assert y.shape == (3,) and y.requires_grad and y.is_leaf
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        y.data = [1.0, 2.0]
    with pytest.raises(RuntimeError, match="Deleting tensor data is not allowed"):
        del y.data
    d = y.data
    assert not d.requires_grad and d.is_leaf
    d.mul_(2)  # shares storage, no version bump of y
    np.testing.assert_allclose(y.detach().numpy(), [10.0, 12.0, 14.0])
    assert y._version == 0


def test_numpy_under_no_grad():
    y = _t([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Can't call numpy"):
        y.numpy()
    with ad.no_grad():
        np.testing.assert_allclose(y.numpy(), [1.0, 2.0])


# ------------------------------------------------------------------------------------------ grad mode


@pytest.mark.parametrize("make", [ad.no_grad, lambda: ad.no_grad, lambda: ad.set_grad_enabled(False)])
def test_grad_mode_decorates_generator_bodies(make):
    # (set_grad_enabled(False) takes effect when constructed, as torch's: build it here, not at collection)
    @make()
    def gen():
        x = _t([1.0])
        for _ in range(2):
            yield ad.is_grad_enabled(), (x * 2).requires_grad

    it = gen()
    assert next(it) == (False, False)
    assert ad.is_grad_enabled()  # the caller's mode between steps
    assert next(it) == (False, False)
    assert list(it) == [] and ad.is_grad_enabled()


def test_enable_grad_generator_inside_no_grad():
    @ad.enable_grad()
    def gen():
        yield ad.is_grad_enabled()

    with ad.no_grad():
        it = gen()
        assert next(it) is True
        assert not ad.is_grad_enabled()


def test_grad_mode_class_decoration_warns():
    with pytest.warns(FutureWarning, match="Decorating classes is deprecated"):

        @ad.no_grad()
        class Model:
            def __init__(self):
                self.enabled = ad.is_grad_enabled()

    assert Model().enabled is False


# ------------------------------------------------------------------------------------------ misc


def test_materialize_grads_with_create_graph_require_grad():
    x, z = _t([1.0, 2.0]), _t([1.0, 2.0])
    _, gz = ad.autograd.grad((x * x).sum(), [x, z], create_graph=True, materialize_grads=True)
    assert gz.requires_grad
    np.testing.assert_allclose(gz.detach().numpy(), [0.0, 0.0])
    _, gz = ad.autograd.grad((x * x).sum(), [x, z], materialize_grads=True)
    assert not gz.requires_grad


def test_dual_repr_shows_tangent():
    with fwAD.dual_level():
        d = fwAD.make_dual(_t([1.0, 2.0], rg=False), _t([3.0, 4.0], rg=False))
        assert repr(d) == "tensor([1., 2.], tangent=tensor([3., 4.]))"


def test_forward_mode_jacobian_keeps_0d_shapes():
    jac = ad.autograd.functional.jacobian(lambda x: x.sin(), _t(0.5, rg=False), strategy="forward-mode", vectorize=True)
    assert jac.shape == ()
    np.testing.assert_allclose(jac.item(), np.cos(0.5))


def test_no_warning_from_a_plain_function_call():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Cube.apply(_t([1.0])).sum().backward()


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (lambda x, c: x + 2, 2),
        (lambda x, c: x * 2, 2),
        (lambda x, c: x / 2, 2),
        (lambda x, c: x - 2, 2),
        (lambda x, c: 2 - x, 1),
        (lambda x, c: -x, 1),
        (lambda x, c: x * c, 2),
        (lambda x, c: x.sin(), 1),
        (lambda x, c: x**2, 1),
    ],
)
def test_next_functions_one_entry_per_operand(make, count):
    """torch counts a Python scalar operand of + - * / as an (undefined) edge."""
    x, c = _t([1.0, 2.0]), _t([3.0, 4.0], rg=False)
    nf = make(x, c).grad_fn.next_functions
    assert len(nf) == count
    assert nf[0][0].name() == "torch::autograd::AccumulateGrad"
    assert all(fn is None for fn, _ in nf[1:])


def test_in_place_through_data_is_read_by_backward_without_error():
    """torch's .data shares storage but not the version counter: backward silently reads the new value."""
    y = _t([1.0, 2.0])
    z = y * y
    y.data.mul_(2)
    z.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [4.0, 8.0])  # 2 * (2 y)


# --- writes under no_grad and in-place writes through views: where torch's node keeps its identity


def _both(fn):
    """``fn(lib)`` run with ad and with torch (imported here: this module's other tests run without it)."""
    torch = pytest.importorskip("torch")
    return fn(ad), fn(torch)


def _arr(t):
    return None if t is None else np.asarray(t.detach().numpy())


def test_retained_grad_after_nograd_write_sums_uses_before_and_after():
    """torch's grad_fn is unchanged by a write under no_grad: the retained .grad (set before or after the write)
    sums the gradients of the uses before and after it."""

    def run(L, retain_after):
        x = L.tensor([0.5, -1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = x.sin()
        if not retain_after:
            y.retain_grad()
        before = y.exp()
        with L.no_grad():
            y.neg_()
        if retain_after:
            y.retain_grad()
            y.retain_grad()  # (a second call changes nothing)
        ((before * 2).sum() + (y * y).sum()).backward()
        return _arr(y.grad), _arr(x.grad)

    for retain_after in (False, True):
        (ay, ax), (ty, tx) = _both(lambda L, r=retain_after: run(L, r))
        np.testing.assert_allclose(ay, ty, rtol=1e-12)
        np.testing.assert_allclose(ax, tx, rtol=1e-12)


def test_hook_registered_after_nograd_write_sees_the_whole_gradient():
    def run(L):
        x = L.tensor([0.5, -1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = x * 3
        before = (y + 1.0) ** 2  # (the sum reads y + 1, not y)
        with L.no_grad():
            y.mul_(2)
        seen = []
        y.register_hook(lambda g: seen.append(_arr(g)))
        (before.sum() + (y * y).sum()).backward()
        return seen, _arr(x.grad)

    (a_seen, ax), (t_seen, tx) = _both(run)
    assert len(a_seen) == len(t_seen) == 1
    np.testing.assert_allclose(a_seen[0], t_seen[0], rtol=1e-12)
    np.testing.assert_allclose(ax, tx, rtol=1e-12)


def test_hook_on_view_before_inplace_through_it_is_not_called():
    """CopySlices sends the view's gradient straight to the base's old node, past the view's own old node."""

    def run(L):
        x = L.tensor([[0.5, 1.3, 0.2], [-0.2, 0.1, 0.4]], dtype=L.float64, requires_grad=True)
        y = x.sin()
        v = y[0]
        calls = []
        v.register_hook(lambda g: calls.append(1))
        v.mul_(2.0)
        y.sum().backward()
        return len(calls), _arr(x.grad)

    (a_calls, ax), (t_calls, tx) = _both(run)
    assert a_calls == t_calls == 0
    np.testing.assert_allclose(ax, tx, rtol=1e-12)


@pytest.mark.parametrize(
    "write",
    [
        lambda x: x[None].add_(x),
        lambda x: x[1:].add_(x[:-1]),
        lambda x: x.view(2, 2).add_(x.view(2, 2).T),
        lambda x: x.view(2, 2).mul_(x[:2]),
        lambda x: x.add_(x),
        lambda x: x.add_(x.reshape(-1)),
        lambda x: x[:2].add_(x[2:]),
        lambda x: x.add_(x.detach()),
    ],
)
def test_operand_partly_overlapping_the_written_tensor_is_refused(write):
    """torch's assert_no_partial_overlap: the same memory in another layout raises; the same layout or
    disjoint memory is fine (the values then agree)."""

    def run(L):
        x = L.tensor([1.0, 2.0, 3.0, 4.0], dtype=L.float64)
        try:
            write(x)
        except RuntimeError as e:
            return str(e)
        return x.numpy().tolist()

    a, t = _both(run)
    assert a == t


def test_make_dual_of_a_leaf_that_requires_grad_is_a_view_of_it():
    def run(L):
        x = L.tensor([0.5, 2.0], dtype=L.float64, requires_grad=True)
        with L.autograd.forward_ad.dual_level():
            d = L.autograd.forward_ad.make_dual(x, L.tensor([1.0, 0.0], dtype=L.float64))
            is_view = d._base is x
            try:
                d.add_(1.0)
                raised = None
            except RuntimeError as e:
                raised = str(e)
        return is_view, raised

    a, t = _both(run)
    assert a == t
    assert a[0] and "leaf Variable that requires grad" in a[1]


def test_issue13_probe_finds_no_gap():
    """scripts/probe_issue13.py: every op of issue 13 and every view function exists with torch's parameter names
    (keyword calls as torch's), Tensor methods and in-place variants, values of the pointwise ops, and the
    complex-result names raise NotImplementedError naming the missing dtype."""
    pytest.importorskip("torch")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "probe_issue13.py"
    spec = importlib.util.spec_from_file_location("probe_issue13", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert probe.main() == []


def test_view_functions_take_torch_keywords():
    torch = pytest.importorskip("torch")
    a = np.arange(6.0).reshape(2, 3)
    calls = [
        lambda L, t: L.transpose(input=t, dim0=0, dim1=1),
        lambda L, t: L.swapdims(input=t, dim0=1, dim1=0),
        lambda L, t: L.swapaxes(input=t, axis0=1, axis1=0),
        lambda L, t: L.permute(input=t, dims=(1, 0)),
        lambda L, t: t.permute(dims=[1, 0]),
        lambda L, t: L.reshape(input=t, shape=(3, 2)),
        lambda L, t: t.reshape(shape=(6,)),
        lambda L, t: L.narrow(input=t, dim=1, start=1, length=2),
        lambda L, t: L.select(input=t, dim=0, index=1),
        lambda L, t: L.movedim(input=t, source=0, destination=1),
        lambda L, t: L.unflatten(input=t, dim=1, sizes=(3, 1)),
        lambda L, t: L.diagonal(input=t, offset=1),
        lambda L, t: L.squeeze(input=L.unsqueeze(input=t, dim=0), dim=0),
        lambda L, t: L.flatten(input=t),
    ]
    for call in calls:
        want = call(torch, torch.tensor(a))
        x = ad.tensor(a, requires_grad=True)
        with fwAD.dual_level():  # the forward rules take the operands given by keyword too
            got = call(ad, fwAD.make_dual(x, ad.ones_like(x)))
            tangent = fwAD.unpack_dual(got).tangent
        np.testing.assert_array_equal(got.detach().numpy(), want.numpy())
        np.testing.assert_array_equal(tangent.numpy(), call(torch, torch.ones(2, 3)).numpy())
        xt = torch.tensor(a, requires_grad=True)
        call(torch, xt).sum().backward()
        call(ad, x).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


# core functions called with torch's keywords (issue 13): (L, a, b, idx) -> tensor, a and b (3, 4) float64
CORE_KEYWORD_CALLS = {
    "add": lambda L, a, b, i: L.add(input=a, other=b, alpha=2),
    "sub": lambda L, a, b, i: L.sub(input=a, other=b, alpha=0.5),
    "mul": lambda L, a, b, i: L.mul(input=a, other=b),
    "div": lambda L, a, b, i: L.div(input=a, other=b + 2.0),
    "pow": lambda L, a, b, i: L.pow(input=a + 2.0, exponent=b),
    "maximum": lambda L, a, b, i: L.maximum(input=a, other=b),
    "clamp": lambda L, a, b, i: L.clamp(input=a, min=-0.5, max=0.5),
    "where": lambda L, a, b, i: L.where(condition=a > 0, input=a, other=b),
    "sum": lambda L, a, b, i: L.sum(input=a * b, dim=0, keepdim=True, dtype=L.float64),
    "mean": lambda L, a, b, i: L.mean(input=a * b, dim=1),
    "prod": lambda L, a, b, i: L.prod(input=a + b, dim=1, dtype=L.float64),
    "amax": lambda L, a, b, i: L.amax(input=a + b, dim=1),
    "max": lambda L, a, b, i: L.max(input=a - b, dim=1, keepdim=True).values,
    "logsumexp": lambda L, a, b, i: L.logsumexp(input=a * b, dim=1),
    "softmax": lambda L, a, b, i: L.softmax(input=a * b, dim=1, dtype=L.float64),
    "log_softmax": lambda L, a, b, i: L.log_softmax(input=a + b, dim=0),
    "F.softmax": lambda L, a, b, i: L.nn.functional.softmax(input=a * b, dim=0, dtype=L.float64),
    "var": lambda L, a, b, i: L.var(input=a * b, dim=1, unbiased=False),
    "std": lambda L, a, b, i: L.std(input=a + b, dim=0),
    "gather": lambda L, a, b, i: L.gather(input=a * b, dim=1, index=i),
    "index_select": lambda L, a, b, i: L.index_select(input=a - b, dim=0, index=i[:, 0]),
    "matmul": lambda L, a, b, i: L.matmul(input=a, other=b.T),
    "mm": lambda L, a, b, i: L.mm(input=a, mat2=b.T),
    "dot": lambda L, a, b, i: L.dot(input=a[0], tensor=b[0]),
    "outer": lambda L, a, b, i: L.outer(input=a[0], vec2=b[1]),
    "cumsum": lambda L, a, b, i: L.cumsum(input=a * b, dim=1, dtype=L.float64),
    "split": lambda L, a, b, i: L.split(tensor=a * b, split_size_or_sections=3, dim=1)[1],
    "chunk": lambda L, a, b, i: L.chunk(input=a + b, chunks=2, dim=1)[0],
    "Tensor.split": lambda L, a, b, i: (a * b).split(split_size=1, dim=0)[2],
    "Tensor.squeeze": lambda L, a, b, i: (a * b).reshape(1, 3, 1, 4).squeeze(0, 2),
    "Tensor.view": lambda L, a, b, i: (a + b).view(size=(4, 3)),
    "Tensor.expand": lambda L, a, b, i: (a * b)[:1].expand(size=(2, 3, 4)),
    "Tensor.repeat": lambda L, a, b, i: (a - b).repeat(repeats=(1, 2)),
    "broadcast_to": lambda L, a, b, i: L.broadcast_to(input=a[0] * b[0], size=(2, 4)),
    "vector_norm": lambda L, a, b, i: L.linalg.vector_norm(input=a * b, ord=2, dim=1),
    "matrix_norm": lambda L, a, b, i: L.linalg.matrix_norm(input=a + b),
    "pinv": lambda L, a, b, i: L.linalg.pinv(input=a + b, rcond=1e-6),
    "zeros_like": lambda L, a, b, i: L.zeros_like(input=a, dtype=L.float64) + a * b,
}


@pytest.mark.parametrize("name", sorted(CORE_KEYWORD_CALLS))
def test_core_functions_take_torch_keywords(name):
    """Called with torch's keyword names, each function gives torch's values, gradients (reverse) and tangents
    (forward mode: the forward rules bind the keyword operands too)."""
    torch = pytest.importorskip("torch")
    call = CORE_KEYWORD_CALLS[name]
    rng = np.random.default_rng(sorted(CORE_KEYWORD_CALLS).index(name))
    a, b, ta, tb = (rng.uniform(-1.0, 1.0, (3, 4)) for _ in range(4))
    index = np.array([[0, 3], [2, 2], [1, 0]])
    want_a, want_b = (torch.tensor(v, requires_grad=True) for v in (a, b))
    want = call(torch, want_a, want_b, torch.tensor(index))
    weights = rng.uniform(-1.0, 1.0, tuple(want.shape))
    (want * torch.tensor(weights)).sum().backward()
    got_a, got_b = (ad.tensor(v, requires_grad=True) for v in (a, b))
    got = call(ad, got_a, got_b, ad.tensor(index))
    (got * ad.tensor(weights)).sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got_x, want_x in ((got_a, want_a), (got_b, want_b)):
        assert (got_x.grad is None) == (want_x.grad is None)  # (an operand the call does not use: None in both)
        if want_x.grad is not None:
            np.testing.assert_allclose(got_x.grad.numpy(), want_x.grad.numpy(), rtol=1e-10, atol=1e-12)
    with torch.autograd.forward_ad.dual_level():
        dual = [torch.autograd.forward_ad.make_dual(torch.tensor(v), torch.tensor(t)) for v, t in ((a, ta), (b, tb))]
        want_t = torch.autograd.forward_ad.unpack_dual(call(torch, *dual, torch.tensor(index))).tangent
    with fwAD.dual_level():
        dual = [fwAD.make_dual(ad.tensor(v), ad.tensor(t)) for v, t in ((a, ta), (b, tb))]
        got_t = fwAD.unpack_dual(call(ad, *dual, ad.tensor(index))).tangent
    np.testing.assert_allclose(got_t.numpy(), want_t.numpy(), rtol=1e-10, atol=1e-12)


# out= on the public functions given it in issue 13: (L, a, out) -> result, ``out`` made like torch's result
OUT_CALLS = {
    "zeros": lambda L, a, out: L.zeros(2, 3, out=out),
    "arange": lambda L, a, out: L.arange(1.0, 4.0, 0.5, out=out),
    "cat": lambda L, a, out: L.cat([a, a * 2.0], dim=1, out=out),
    "stack": lambda L, a, out: L.stack([a, a], out=out),
    "argmax": lambda L, a, out: L.argmax(a, dim=1, out=out),
    "gather": lambda L, a, out: L.gather(a, 1, L.tensor([[0, 2], [1, 1], [2, 0]]), out=out),
    "amax": lambda L, a, out: L.amax(a, dim=0, out=out),
    "max_dim": lambda L, a, out: L.max(a, 1, out=out),
    "var": lambda L, a, out: L.var(a, 1, out=out),
    "where": lambda L, a, out: L.where(a > 0, a, -a, out=out),
    "clamp": lambda L, a, out: L.clamp(a, min=-0.2, max=0.3, out=out),
    "softmax": lambda L, a, out: L.softmax(a, 0, out=out),
    "mm": lambda L, a, out: L.mm(a, a.T, out=out),
    "slogdet": lambda L, a, out: L.slogdet(a[:, :2][:2] + 1.0, out=out),
    "linalg.cond": lambda L, a, out: L.linalg.cond(a[:, :3] + 3.0 * L.eye(3), out=out),
}
# the hottest functions, which take out=None in their own signature (ad/ops/out.py)
HOT_UNARY = "abs cos erf exp expm1 log log1p neg negative rsqrt sigmoid sin sqrt square tan tanh".split()
HOT_BINARY = "add sub subtract mul multiply div divide pow maximum minimum".split()
OUT_CALLS.update({name: lambda L, a, out, name=name: getattr(L, name)(a + 1.5, out=out) for name in HOT_UNARY})
OUT_CALLS.update(
    {name: lambda L, a, out, name=name: getattr(L, name)(a + 1.5, a * 0.5, out=out) for name in HOT_BINARY}
)
OUT_CALLS.update(
    {
        "add_alpha": lambda L, a, out: L.add(a, a.T, alpha=-2.0, out=out),
        "mul_scalar": lambda L, a, out: L.mul(a, 3.0, out=out),
        "pow_scalar": lambda L, a, out: L.pow(a + 1.5, 2.5, out=out),
        "div_rounding": lambda L, a, out: L.div(a, a + 2.0, rounding_mode=None, out=out),
        "matmul": lambda L, a, out: L.matmul(a, a.T, out=out),
        "matmul_vector": lambda L, a, out: L.matmul(a, a[0], out=out),
        "sum": lambda L, a, out: L.sum(a, 1, out=out),
        "sum_keepdim": lambda L, a, out: L.sum(a, (0, 1), keepdim=True, out=out),
        "mean": lambda L, a, out: L.mean(a, 0, out=out),
    }
)


@pytest.mark.parametrize("name", sorted(OUT_CALLS))
def test_out_keyword_as_torch(name):
    """``out=`` writes torch's values into the given tensor(s) and returns them; with an operand that requires
    grad it raises torch's RuntimeError."""
    torch = pytest.importorskip("torch")
    call = OUT_CALLS[name]
    a = np.random.default_rng(1).uniform(-1.0, 1.0, (3, 3))
    want = call(torch, torch.tensor(a), None)
    wants = want if isinstance(want, tuple) else (want,)
    outs = tuple(ad.zeros(tuple(w.shape), dtype=np.dtype(str(w.dtype).removeprefix("torch."))) for w in wants)
    got = call(ad, ad.tensor(a), outs if isinstance(want, tuple) else outs[0])
    gots = got if isinstance(got, tuple) else (got,)
    assert all(g is o for g, o in zip(gots, outs))
    for g, w in zip(gots, wants):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12)
    if name in ("zeros", "arange"):
        return
    # torch raises where the result would need grad (not for argmax's indices); for softmax and linalg.cond its
    # out= variants write a result with no graph, silently: ad raises there too rather than drop the gradient
    given = tuple(w.clone() for w in wants) if len(wants) > 1 else wants[0].clone()
    try:
        call(torch, torch.tensor(a, requires_grad=True), given)
        raises = name in ("softmax", "linalg.cond")
    except RuntimeError as e:
        raises = "don't support automatic differentiation" in str(e)
    before = [o.numpy().copy() for o in outs]
    if raises:
        with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
            call(ad, ad.tensor(a, requires_grad=True), outs if isinstance(want, tuple) else outs[0])
        for o, b in zip(outs, before):  # nothing written
            np.testing.assert_array_equal(o.numpy(), b)
    else:
        call(ad, ad.tensor(a, requires_grad=True), outs if isinstance(want, tuple) else outs[0])


def _assert_same_seen(got, want, rtol, atol=0.0):
    """``{what: value or tuple of values}`` seen with ad and with torch agree: arrays in dtype and values (within
    the tolerances), the rest (error texts, shapes, flags) exactly."""
    assert got.keys() == want.keys()
    for key in want:
        g, w = (got[key], want[key]) if isinstance(want[key], tuple) else ((got[key],), (want[key],))
        for gi, wi in zip(g, w):
            if isinstance(wi, np.ndarray):
                assert gi.dtype == wi.dtype, key
                np.testing.assert_allclose(gi, wi, rtol=rtol, atol=atol, err_msg=key)
            else:
                assert gi == wi, (key, gi, wi)


def test_out_on_the_hot_functions_follows_torch():
    """The hot functions' ``out=`` (ad/ops/out.py) against torch: a non-empty ``out`` of another shape is resized
    with torch's warning (an empty one silently); dtypes: elementwise results cast to ``out``'s where torch casts,
    ``sum`` computes in ``out``'s dtype, ``matmul`` wants the same one, errors with torch's messages; ``out`` is
    written through when it is a view and its version counter moves; grad mode with an ``out`` that requires grad
    raises (under no_grad it is written and keeps its flag); forward mode raises NotImplementedError; the Tensor
    methods and operators are unchanged."""

    def attempt(call):
        try:
            return _arr(call())
        except (RuntimeError, NotImplementedError, TypeError) as e:
            return f"{type(e).__name__}: {e}"

    def run(L):
        seen = {}
        f64 = L.float64
        a = L.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=f64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = L.zeros(3, dtype=f64)
            L.exp(a, out=out)
            empty = L.zeros(0, dtype=f64)
            L.add(a, a, out=empty)
        seen["resized"] = (tuple(out.shape), _arr(out), tuple(empty.shape), _arr(empty))
        seen["warnings"] = [str(w.message).split(".")[0] for w in caught]
        for what, call in {
            "cast": lambda: L.mul(a, a, out=L.zeros((2, 2), dtype=L.float32)),
            "refused": lambda: L.maximum(a, a, out=L.zeros((2, 2), dtype=L.int64)),
            "int to bool": lambda: L.add(a.to(L.int64), a.to(L.int64), out=L.zeros((2, 2), dtype=L.bool)),
            "sum in out's dtype": lambda: L.sum(a, 0, out=L.zeros(2, dtype=L.int64)),
            "sum dtype": lambda: L.sum(a, 0, dtype=L.float32, out=L.zeros(2, dtype=f64)),
            "mean dtype": lambda: L.mean(a, 1, dtype=L.float32, out=L.zeros(2, dtype=f64)),
            "mean cast": lambda: L.mean(a, 1, out=L.zeros(2, dtype=L.float32)),
            "matmul dtype": lambda: L.matmul(a, a, out=L.zeros((2, 2), dtype=L.float32)),
        }.items():
            seen[what] = attempt(call)
        base = L.zeros((3, 2), dtype=f64)
        version = base._version
        L.matmul(a, a, out=base[1:])
        seen["view"] = (_arr(base), base._version > version)
        grad_out = L.zeros(2, dtype=f64, requires_grad=True)
        seen["out requires grad"] = attempt(lambda: L.sin(a[0], out=grad_out))
        with L.no_grad():
            L.sin(a[0], out=grad_out)
        seen["no_grad"] = (_arr(grad_out), grad_out.requires_grad, grad_out.is_leaf)
        fw = L.autograd.forward_ad
        with fw.dual_level():
            dual = fw.make_dual(a, L.ones_like(a))
            seen["dual input"] = attempt(lambda: L.tanh(dual, out=L.zeros(2, 2, dtype=f64)))
            seen["dual sum"] = attempt(lambda: L.sum(dual, 1, out=L.zeros(2, dtype=f64)))
            refused = attempt(lambda: L.matmul(a, dual, out=L.zeros(2, 2, dtype=f64)))  # (torch names it mm_out)
            seen["dual matmul"] = refused.startswith("NotImplementedError") and refused.endswith("an out= function")
            dual_out = fw.make_dual(L.zeros(2, 2, dtype=f64), L.ones_like(a))
            seen["dual out"] = attempt(lambda: L.add(a, a, out=dual_out))
        seen["sum method"] = attempt(lambda: a.sum(out=L.zeros((), dtype=f64)))[:9]
        seen["operators"] = _arr(a + a * a - a / 2.0 + 1.0 - a @ a)
        return seen

    got, want = _both(run)
    _assert_same_seen(got, want, rtol=1e-12)
    assert got["sum method"] == "TypeError"  # as torch's; ad's Tensor.add, .exp ... accept out= (see the README)


def test_out_rules_of_the_one_writer_follow_torch():
    """Every ``out=`` goes through ad/ops/out.py's ``write_result``, with the caller's dtype rule: linalg, the
    matrix products, sorting, scatter/gather and the statistics want ``out``'s dtype exactly (torch's
    RuntimeError), pointwise ops, stacking and ``kron`` cast into it; a non-empty ``out`` of another shape is
    resized with torch's warning (also by linalg), silently by the samplers and the factories (not ``arange``);
    an ``out`` that is a view writes through to its base; an ``out`` that aliases an input gets the result
    computed from the input."""

    def attempt(call):
        try:
            return _arr(call())
        except (RuntimeError, TypeError) as e:
            return f"{type(e).__name__}: {str(e).split(':')[0] if 'Expected out' not in str(e) else e}"

    def run(L):
        seen = {}
        a = L.tensor([[2.0, 0.5, 0.0], [1.0, 3.0, -1.0], [0.0, 1.0, 4.0]], dtype=L.float64)
        f32 = lambda shape: L.zeros(shape, dtype=L.float32)  # noqa: E731
        for what, call in {  # exact: the error class (and torch's message where it is the common one)
            "linalg.inv": lambda: L.linalg.inv(a, out=f32((3, 3))),
            "linalg.slogdet": lambda: L.linalg.slogdet(a, out=(L.zeros(()), f32(()))),
            "bmm": lambda: L.bmm(a[None], a[None], out=f32((1, 3, 3))),
            "sort": lambda: L.sort(a, out=(f32((3, 3)), L.zeros((3, 3), dtype=L.int64))),
            "msort": lambda: L.msort(a, out=f32((3, 3))),
            "tril": lambda: L.tril(a, out=f32((3, 3))),
            "quantile": lambda: L.quantile(a, 0.5, dim=0, out=f32(3)),
            "clamp_min": lambda: L.clamp_min(a, 0.0, out=f32((3, 3))),
        }.items():
            seen[what] = attempt(call)[:13]
        seen["exact message"] = attempt(lambda: L.linalg.inv(a, out=f32((3, 3))))
        for what, call in {  # cast
            "kron": lambda: L.kron(a, a, out=f32((9, 9))),
            "hstack": lambda: L.hstack([a, a], out=f32((3, 6))),
            "logaddexp2": lambda: L.logaddexp2(a, a, out=f32((3, 3))),
            "diff": lambda: L.diff(a, out=f32((3, 2))),
            "logical_and": lambda: L.logical_and(a, a, out=L.zeros((3, 3), dtype=L.int64)),
            "matrix_rank": lambda: L.linalg.matrix_rank(a, out=L.zeros((), dtype=L.int32)),
            "refused": lambda: L.kron(a, a, out=L.zeros((9, 9), dtype=L.int64)),
            "normalize": lambda: L.nn.functional.normalize(a, out=f32((3, 3))),
        }.items():
            seen[what] = attempt(call)
        try:  # F.normalize(out=) is div's out=: ad wrote it without a graph, silently
            L.nn.functional.normalize(a.clone().requires_grad_(), out=L.zeros((3, 3), dtype=L.float64))
        except RuntimeError as e:
            seen["normalize grad"] = str(e)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inv, empty = L.zeros(2, dtype=L.float64), L.zeros(0, dtype=L.float64)
            L.linalg.inv(a, out=inv)
            L.linalg.det(a, out=empty)
            L.quantile(a, 0.5, out=L.zeros(4, dtype=L.float64))
            L.logspace(0.0, 1.0, 3, out=L.zeros(5))
            L.randperm(3, out=L.zeros(5, dtype=L.int64))
            L.nn.functional.normalize(a, out=L.zeros(2, dtype=L.float64))
            L.zeros(2, 3, out=L.zeros(5, dtype=L.float64))  # the factories resize silently, but arange
            L.randn(2, out=L.zeros(5, dtype=L.float64))
            L.arange(6.0, out=L.zeros(2, dtype=L.float64))
        seen["resized"] = (tuple(inv.shape), _arr(inv), tuple(empty.shape))
        seen["warned"] = len(caught)
        base = L.zeros((4, 3), dtype=L.float64)
        version = base._version
        L.linalg.inv(a, out=base[1:])
        transposed = L.zeros((3, 3), dtype=L.float64)
        L.tril(a, out=transposed.T)
        seen["view"] = (_arr(base), base._version > version, _arr(transposed))
        for what, call in {  # out aliasing an input: the result is computed first
            "inv into input": lambda b: L.linalg.inv(b, out=b),
            "tril into input": lambda b: L.tril(b, 1, out=b),
            "sort into input": lambda b: L.sort(b, 1, out=(b, L.zeros((3, 3), dtype=L.int64)))[0],
            "renorm into input": lambda b: L.renorm(b, 2, 0, 1.0, out=b),
        }.items():
            b = a.clone()
            r = call(b)
            seen[what] = (_arr(b), r is b)
        return seen

    got, want = _both(run)
    _assert_same_seen(got, want, rtol=1e-6, atol=1e-12)  # (float32 outs)


def test_view_made_under_no_grad_requires_grad_as_torch():
    """torch 2.13: a view made under no_grad of a tensor that requires grad requires grad, is a leaf without
    grad_fn (``_base`` is the base); ops on it in grad mode record, backward gives no gradient to it or its base;
    an in-place op on it (or on a view of it) in grad mode raises, under no_grad it writes; detach() drops
    requires_grad; a dual's view keeps its tangent."""

    def attempt(call):
        try:
            return call()
        except RuntimeError as e:
            return f"RuntimeError: {str(e).split('. ')[0]}"

    def run(L):
        fw = L.autograd.forward_ad
        seen = {}
        x = L.tensor([1.0, 2.0, 3.0], dtype=L.float64, requires_grad=True)
        h = x * 2.0
        with L.no_grad():
            v, of_nonleaf, of_const = x[1:], h[1:], x.detach()[1:]
            kinds = (x.view(3, 1), x.expand(2, 3), x.unsqueeze(0).t(), x.unbind(0)[0])
        seen["flags"] = [(t.requires_grad, t.is_leaf, t.grad_fn is None) for t in (v, of_nonleaf, of_const, *kinds)]
        seen["base"] = (v._base is x, of_nonleaf._base is h)
        y = (v * v + of_nonleaf).sum()
        seen["recorded"] = (y.requires_grad, y.grad_fn is not None)
        y.backward()
        seen["grads"] = (x.grad, v.grad, of_nonleaf.grad)
        seen["unused"] = "appears to not have been used in the graph" in attempt(
            lambda: L.autograd.grad((v * 3.0).sum(), v)
        )  # (torch 2.13 words its start differently: "The differentiated Tensor at index 0 ...")
        seen["allow_unused"] = L.autograd.grad((v * 3.0).sum(), x, allow_unused=True)
        seen["in-place, grad mode"] = attempt(lambda: v.mul_(2.0))
        seen["in-place on a non-leaf's"] = attempt(lambda: of_nonleaf.add_(1.0))
        seen["in-place on unbind's"] = attempt(lambda: kinds[3].mul_(2.0))
        seen["view of it, in-place"] = attempt(lambda: v[:1].mul_(2.0))
        first, _ = x.split(2)  # a multi-output op's view, then a view of it under no_grad: the no-grad meta wins
        with L.no_grad():
            of_split = (first.unsqueeze(0), first.expand(3, 2), first[1:])
        seen["of a split output"] = [(t.requires_grad, t.is_leaf, t.grad_fn is None) for t in of_split]
        seen["of a split output, in-place"] = [attempt(lambda t=t: t.mul_(2.0)) for t in of_split[::2]]
        with L.no_grad():
            v.mul_(2.0)
        seen["in-place, no_grad"] = (x.detach().numpy().tolist(), v.requires_grad, x._version)
        d = v.detach()
        seen["detach"] = (d.requires_grad, d.is_leaf)
        with fw.dual_level():
            p = fw.make_dual(L.tensor([1.0, 2.0], dtype=L.float64), L.tensor([1.0, 3.0], dtype=L.float64))
            with L.no_grad():
                pv = p[1:]
            seen["dual view"] = (pv.requires_grad, fw.unpack_dual(pv * 2.0).tangent.tolist())
            pv.mul_(2.0)  # (no reverse graph: allowed in grad mode)
            seen["dual view write"] = fw.unpack_dual(p).tangent.tolist()
            q = fw.make_dual(L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True), L.ones(2, dtype=L.float64))
            with L.no_grad():
                qv = q[1:]
            r = qv * qv
            seen["dual view of a leaf"] = (qv.requires_grad, qv.is_leaf, r.requires_grad)
            seen["dual view of a leaf, tangent"] = fw.unpack_dual(r).tangent.tolist()
            seen["dual view of a leaf, in-place"] = attempt(lambda: qv.mul_(2.0))
        return seen

    got, want = _both(run)
    assert got == want
