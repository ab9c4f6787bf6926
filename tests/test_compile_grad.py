"""ad.compile of functions that differentiate inside (jit of grad, a compiled HVP, a step calling backward()):
every replayed call against the same function run eagerly, and against analytic derivatives."""

import warnings

import numpy as np
import pytest

import ad
from ad.compile_program import Program

RNG = np.random.default_rng(7)
N = 12


def close(a, b, tol=1e-12):
    a = a.detach().numpy() if isinstance(a, ad.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, ad.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def arr(t):
    return t.detach().numpy()


def program_of(cf):
    """The confirmed template of ``cf``'s only signature."""
    (entry,) = cf.cache.values()
    assert entry.eager is None, entry.eager
    return entry.template


def compiled(fn):
    """``ad.compile(fn)``, failing the test on any warning (a fallback to eager)."""
    cf = ad.compile(fn)

    def call(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return cf(*args)

    call.cf = cf
    return call


def leaf(*shape):
    return ad.tensor(RNG.standard_normal(shape), requires_grad=True)


def test_jit_of_grad_matches_eager_and_analytic_across_calls_and_parameter_updates():
    A = ad.tensor(RNG.standard_normal((N, N)) / 4)

    def g1(x):
        return ad.autograd.grad(ad.tanh(A @ x).sum(), x)[0]

    cf = compiled(g1)
    for _ in range(6):
        x = leaf(N)
        g = cf(x)
        close(g, g1(x))
        t = np.tanh(arr(A) @ arr(x))
        close(g, arr(A).T @ (1 - t * t), 1e-10)
        assert not g.requires_grad and x.grad is None
        with ad.no_grad():
            A.mul_(1.05)  # (a captured parameter updated in place: seen by the next replay)
    assert isinstance(program_of(cf.cf), Program)


def test_compiled_double_backward_hvp_matches_eager_and_analytic():
    A = ad.tensor(RNG.standard_normal((N, N)) / 4)
    v = ad.tensor(RNG.standard_normal(N))

    def hvp(x):
        (g,) = ad.autograd.grad(ad.tanh(A @ x).sum(), x, create_graph=True)
        return ad.autograd.grad((g * v).sum(), x)[0]

    cf = compiled(hvp)
    for _ in range(5):
        x = leaf(N)
        h = cf(x)
        close(h, hvp(x))
        a, t = arr(A), np.tanh(arr(A) @ arr(x))
        close(h, a.T @ ((-2 * t * (1 - t * t)) * (a @ arr(v))), 1e-10)
        with ad.no_grad():
            v.mul_(-0.9)
    assert isinstance(program_of(cf.cf), Program)


def test_grad_with_create_graph_alone_replays_as_one_template():
    w = ad.tensor(RNG.uniform(0.5, 1.5, N))

    def f(x):
        (g,) = ad.autograd.grad(ad.sin(x * w).sum(), x, create_graph=True)
        return g

    cf = compiled(f)
    for _ in range(4):
        x = leaf(N)
        g = cf(x)
        close(g, f(x))
        close(g, arr(w) * np.cos(arr(x) * arr(w)))
        (h,) = ad.autograd.grad(g.sum(), x)  # the replayed gradient is differentiable, as eager's
        close(h, -(arr(w) ** 2) * np.sin(arr(x) * arr(w)))
    assert not isinstance(program_of(cf.cf), Program)


def test_ops_after_the_gradient_replay_and_differentiate_as_eager():
    A = ad.tensor(RNG.standard_normal((N, N)) / 4)

    def sgd_step(x, lr):
        loss = (ad.tanh(A @ x) ** 2).sum()
        (g,) = ad.autograd.grad(loss, x)
        return loss, (x - g) * lr  # a graph of its own (x requires grad), after the backward

    cf = compiled(sgd_step)
    for _ in range(5):
        x = leaf(N)
        loss, x1 = cf(x, 0.1)
        ref_loss, ref_x1 = sgd_step(x, 0.1)
        close(loss, ref_loss)
        close(x1, ref_x1)
        (gx,) = ad.autograd.grad((x1 * x1).sum(), x)  # through the replayed second phase
        (gx_ref,) = ad.autograd.grad((ref_x1 * ref_x1).sum(), x)
        close(gx, gx_ref)
        close(gx, 2 * 0.1 * arr(ref_x1))  # (g is a constant of x1: no create_graph)


def test_two_grads_from_one_loss_and_a_second_grad_after_the_first():
    W = leaf(N, N)

    def f(x):
        loss = ad.tanh(W @ x).sum()
        gx, gw = ad.autograd.grad(loss, (x, W), retain_graph=True)
        (gx2,) = ad.autograd.grad((loss * loss), x)  # the same graph swept again, then freed
        y = ad.sin(x + gx)  # reads the first event's result
        (gy,) = ad.autograd.grad(y.sum(), x)
        return gx, gw, gx2, gy

    cf = compiled(f)
    for _ in range(5):
        x = leaf(N)
        for a, b in zip(cf(x), f(x)):
            close(a, b)
        with ad.no_grad():
            W.add_(0.01)
    assert len(program_of(cf.cf).steps) == 6  # phase, 2 events, phase, event, (no rows after it)


def test_backward_inside_accumulates_into_grad_as_eager():
    w = leaf(N)
    w_ref = ad.tensor(arr(w).copy(), requires_grad=True)

    def step(x, p):
        loss = (ad.tanh(p * x) ** 2).mean()
        loss.backward()
        return loss

    cf = compiled(step)
    for k in range(6):
        x = ad.tensor(RNG.standard_normal(N))
        close(cf(x, w), step(x, w_ref))
        close(w.grad, w_ref.grad)  # accumulated over the calls, as eager
        with ad.no_grad():
            w.sub_(0.1 * w.grad)
            w_ref.sub_(0.1 * w_ref.grad)
        if k == 3:
            w.grad = None
            w_ref.grad = None
    assert isinstance(program_of(cf.cf), Program)


def test_grad_outputs_and_unused_inputs():
    def f(x, u, z):
        y = ad.exp(x) * 2.0
        gx, gz = ad.autograd.grad(y, (x, z), grad_outputs=u, allow_unused=True)
        return gx, gz

    cf = compiled(f)
    z = leaf(3)
    for _ in range(4):
        x, u = leaf(N), ad.tensor(RNG.standard_normal(N))
        gx, gz = cf(x, u, z)
        assert gz is None
        close(gx, 2 * np.exp(arr(x)) * arr(u))


@pytest.mark.parametrize(
    "body, reason",
    [
        ("backward_create_graph", "backward(create_graph=True)"),
        ("free_create_graph", "retain_graph=False"),
        ("forward_ad", "forward-mode"),
        ("constant_of_gradient", "creates itself without recording"),
    ],
)
def test_unsupported_backwards_run_eagerly_with_one_warning(body, reason):
    import ad.autograd.forward_ad as fwAD

    def f(x):
        y = ad.sin(x).sum()
        if body == "backward_create_graph":
            y.backward(create_graph=True)
            return x.grad * 1.0
        if body == "free_create_graph":
            return ad.autograd.grad(y, x, create_graph=True, retain_graph=False)[0]
        if body == "constant_of_gradient":  # (0.5 * g: no operand requires grad, not recorded, not replayable)
            return x - 0.5 * ad.autograd.grad(y, x)[0]
        with fwAD.dual_level():
            d = fwAD.make_dual(x, ad.ones_like(x))
            return y + fwAD.unpack_dual(ad.sin(d)).tangent.sum()

    cf = ad.compile(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):
            x = leaf(N)
            x_ref = ad.tensor(arr(x), requires_grad=True)
            close(cf(x), f(x_ref))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and reason in messages[0], messages


def test_second_derivative_of_a_scalar_iteration_replays_w7():
    def iterate(x):
        for _ in range(30):
            x = x - 0.1 * ad.sin(x) * x
        return x

    def d2(x):
        (g,) = ad.autograd.grad(iterate(x), x, create_graph=True)  # (its seed's first cotangents are folded)
        return ad.autograd.grad(g, x)[0]

    cf = compiled(d2)
    for x0 in (0.7, 0.3, -1.1, 0.9, 2.0):
        x = ad.tensor(x0, requires_grad=True)
        h = cf(x)
        close(h, d2(x))
        eps = 1e-4  # (central differences of the first derivative)
        gp, gm = (first_derivative(iterate, x0 + s) for s in (eps, -eps))
        close(h, (gp - gm) / (2 * eps), 1e-6)


def first_derivative(f, x0):
    x = ad.tensor(x0, requires_grad=True)
    return arr(ad.autograd.grad(f(x), x)[0])


def test_constants_made_inside_fold_but_a_non_differentiable_argument_does_not():
    def folded(x):
        c = ad.ones(N) * 2.0 - 0.5  # (computed without recording from a factory's constant: replayed)
        return (x * c).sum()

    cf = compiled(folded)
    for _ in range(4):
        x = leaf(N)
        close(cf(x), 1.5 * arr(x).sum())

    def from_argument(x, a):
        return (x * (a * 2.0)).sum()  # a * 2.0: from an argument's values, never folded

    cf = ad.compile(from_argument)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):
            x, a = leaf(N), ad.tensor(RNG.standard_normal(N))
            close(cf(x, a), 2 * (arr(x) * arr(a)).sum())
    assert len(caught) == 1 and "creates itself without recording" in str(caught[0].message)


def test_create_graph_sweep_through_relu_masks_follows_each_call():
    def f(x):
        (g,) = ad.autograd.grad((ad.relu(x) * x).sum(), x, create_graph=True)
        return ad.autograd.grad((g * g).sum(), x)[0]

    cf = ad.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (replayed or eager: either way the value of this call)
        for _ in range(6):
            x = leaf(N)  # (signs change from call to call: the masks must too)
            close(cf(x), f(x))
            xv = arr(x)
            close(cf(x), np.where(xv > 0, 8 * xv, 0.0))  # g = 2x (x > 0), d/dx sum(g^2) = 8x


def test_functional_jacobian_inside_replays_and_matches_analytic():
    W1, W2 = ad.tensor(RNG.standard_normal((N, 5)) / 2), ad.tensor(RNG.standard_normal((3, N)) / 3)

    def mlp(x):
        return W2 @ ad.tanh(W1 @ x)

    for vectorize in (True, False):
        cf = compiled(lambda x, vectorize=vectorize: ad.autograd.functional.jacobian(mlp, x, vectorize=vectorize))
        for _ in range(4):
            x = ad.tensor(RNG.standard_normal(5))  # (jacobian's detached alias of x requires grad: one per call)
            j = cf(x)
            t = np.tanh(arr(W1) @ arr(x))
            close(j, arr(W2) @ ((1 - t * t)[:, None] * arr(W1)))
            close(j, ad.autograd.functional.jacobian(mlp, x, vectorize=vectorize))
            assert not x.requires_grad
            with ad.no_grad():
                W1.mul_(0.9)
        assert isinstance(program_of(cf.cf), Program)


def test_replayed_programs_leave_no_reference_cycles():
    import gc

    import ad.compile_replay as replay

    A = ad.tensor(RNG.standard_normal((N, N)) / 4)

    def f(x):
        (g,) = ad.autograd.grad(ad.tanh(A @ x).sum(), x, create_graph=True)
        return ad.autograd.grad((g * g).sum(), x)[0]

    cf = compiled(f)
    x = leaf(N)
    for _ in range(3):
        cf(x)
    gc.collect()
    before = len(replay.live_replay_tapes())
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(5):
            cf(x)
        assert len(replay.live_replay_tapes()) == before  # (each call's tape died with its tensors, not collected)
    finally:
        if enabled:
            gc.enable()


def test_reading_grad_after_a_backward_inside_follows_grad_reset_between_calls():
    w = leaf(N)
    w_ref = ad.tensor(arr(w), requires_grad=True)

    def make(p):
        def step(x):
            ad.sin(p * x).sum().backward()
            return (p * p.grad).sum()  # reads the .grad the backward made (or accumulated into)

        return step

    cf, ef = compiled(make(w)), make(w_ref)
    for k in range(7):
        x = ad.tensor(RNG.standard_normal(N))
        close(cf(x), ef(x))
        close(w.grad, w_ref.grad)
        if k >= 3:  # (after the recordings: each later backward makes a new .grad)
            w.grad = None
            w_ref.grad = None
    assert isinstance(program_of(cf.cf), Program)


def test_backward_inside_takes_the_fused_replays_gradients(monkeypatch):
    import ad.compile_fused as fused

    taken = []
    take = fused.take
    monkeypatch.setattr(fused, "take", lambda *a: taken.append(take(*a)) or taken[-1])
    w = leaf(N)
    w_ref = ad.tensor(arr(w), requires_grad=True)

    def make(p):
        def step(x):
            loss = (ad.sin(p * x) * x).sum()
            loss.backward()
            return loss

        return step

    cf, ef = compiled(make(w)), make(w_ref)
    for _ in range(5):
        x = ad.tensor(RNG.standard_normal(N))
        close(cf(x), ef(x))
        close(w.grad, w_ref.grad, 1e-14)
    assert len(taken) == 3 and all(t is not None for t in taken)  # (the replays: forward and sweep in one call)


def test_direct_grad_event_matches_the_generic_one_and_steps_aside_for_hooks():
    """A grad of a scalar with respect to arguments replays through ``_call_grad_direct`` (the sweep without
    autograd.grad's dispatch), and the graph the event swept is freed as eager's is. A hook on the argument,
    registered after the recording, would change what the recorded differentiable sweep computed: such a call
    runs eagerly (the hook runs as often, the results are eager's)."""
    A = ad.tensor(RNG.standard_normal((N, N)) / 4)
    v = ad.tensor(RNG.standard_normal(N))

    def hvp(x):
        y = ad.tanh(A @ x).sum()
        (g,) = ad.autograd.grad(y, x, create_graph=True)
        (h,) = ad.autograd.grad((g * v).sum(), x)
        return y, g, h

    cf = compiled(hvp)
    for _ in range(3):
        x = leaf(N)
        for a, b in zip(cf(x), hvp(x)):
            close(a, b)
    (event,) = [s for s in program_of(cf.cf).steps if s[0] == "e"]
    assert event[2].__name__ == "_call_grad_direct"
    x = leaf(N)
    calls = []
    x.register_hook(lambda g: calls.append(1) or g * 3.0)
    got = cf(x)
    ran = len(calls)
    want = hvp(x)
    assert ran == 2 and len(calls) == 4  # the hook ran in the compiled call as often as eagerly
    for a, b in zip(got, want):
        close(a, b)
    for y in (got[1], want[1]):  # the event's sweep freed the rows it visited, in both
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.sum().backward()


def test_direct_grad_event_keeps_retain_graph_and_allow_unused():
    w = ad.tensor(RNG.uniform(0.5, 1.5, N))

    def f(x, z):
        y = (ad.sin(x) * w).sum()
        gx, gz = ad.autograd.grad(y, (x, z), retain_graph=True, allow_unused=True)
        (gx2,) = ad.autograd.grad(y * 2.0, x)
        return gx, gz, gx2

    cf = compiled(f)
    z = leaf(3)
    for _ in range(4):
        x = leaf(N)
        gx, gz, gx2 = cf(x, z)
        assert gz is None
        close(gx, arr(w) * np.cos(arr(x)))
        close(gx2, 2 * arr(w) * np.cos(arr(x)))
    names = [s[2].__name__ for s in program_of(cf.cf).steps if s[0] == "e"]
    assert names == ["_call_grad", "_call_grad_direct"]  # (an input without a gradient: the generic event)


def test_direct_grad_event_falls_back_for_hooks_on_the_argument_without_a_differentiable_sweep():
    w = ad.tensor(RNG.uniform(0.5, 1.5, N))

    def f(x):
        return ad.autograd.grad((ad.sin(x) * w).sum(), x)[0]

    cf = compiled(f)
    for _ in range(3):
        x = leaf(N)
        close(cf(x), f(x))
    x = leaf(N)
    handle = x.register_hook(lambda g: g * -2.0)
    close(cf(x), -2 * arr(w) * np.cos(arr(x)))  # (the replayed event ran the hook: _call_grad)
    handle.remove()
    close(cf(x), arr(w) * np.cos(arr(x)))
    (event,) = [s for s in program_of(cf.cf).steps if s[0] == "e"]
    assert event[2].__name__ == "_call_grad_direct"


def test_a_hook_on_an_input_of_a_differentiable_sweep_sends_the_call_eagerly():
    w = ad.tensor(RNG.uniform(0.5, 1.5, N), requires_grad=True)  # (from outside: its gradient is returned too)

    def f(x):
        gx, gw = ad.autograd.grad((ad.sin(x * w)).sum(), (x, w), create_graph=True)
        return gx * 1.0, gw * 1.0

    cf = compiled(f)
    for _ in range(3):
        x = leaf(N)
        for a, b in zip(cf(x), f(x)):
            close(a, b)
    for hooked in ("x", "w"):
        x = leaf(N)
        handle = (x if hooked == "x" else w).register_hook(lambda g: g * 5.0)
        got, want = cf(x), f(x)
        for a, b in zip(got, want):
            close(a, b)
        handle.remove()
        close(got[0] if hooked == "x" else got[1], 5.0 * (f(x)[0] if hooked == "x" else f(x)[1]))
    assert cf.cf.cache and program_of(cf.cf) is not None  # (replayed, except the hooked calls)


def test_direct_grad_event_sweeps_one_tape_directly_and_steps_aside_where_the_tape_reaches_more(monkeypatch):
    """The direct event sweeps through ``engine.sweep_leaves`` where the output's tape imports no tensor that
    requires grad but the inputs (a compiled Hessian-vector product), and through ``kernel_sweep`` (its plan: the
    paths to the inputs only) where it imports another (a parameter from outside, not differentiated): the results
    are eager's in both, and the parameter's ``.grad`` is untouched. An output that is itself the input leaf gets
    a fresh gradient at each call (its seed: never an array shared between calls)."""
    from ad import engine

    swept = []
    sweep_leaves = engine.sweep_leaves
    monkeypatch.setattr(engine, "sweep_leaves", lambda *a: swept.append(1) or sweep_leaves(*a))
    A = ad.tensor(RNG.standard_normal((N, N)) / 4)
    w = ad.tensor(RNG.uniform(0.5, 1.5, N), requires_grad=True)
    v = ad.tensor(RNG.standard_normal(N))

    def hvp(x):
        (g,) = ad.autograd.grad(ad.tanh(A @ x).sum(), x, create_graph=True)
        return g, ad.autograd.grad((g * v).sum(), x)[0]

    def weighted(x):
        return ad.autograd.grad((ad.sin(x) * w).sum(), x)[0]

    def itself(x):
        return ad.autograd.grad(x, x)[0]

    cf, cw, ci = compiled(hvp), compiled(weighted), compiled(itself)
    for _ in range(4):
        x = leaf(N)
        for a, b in zip(cf(x), hvp(x)):
            close(a, b)
        close(cw(x), weighted(x))
        close(cw(x), arr(w) * np.cos(arr(x)))
        assert w.grad is None
    assert len(swept) == 2  # (the replays of hvp: weighted's event takes kernel_sweep)
    x0 = leaf()
    got = [ci(x0) for _ in range(4)]
    for g in got:
        close(g, 1.0)
    got[-1]._data[...] = 5.0  # (a caller may write into its gradient: the next call's is its own)
    close(ci(x0), 1.0)
    for c in (cf, cw):
        assert [s[2].__name__ for s in program_of(c.cf).steps if s[0] == "e"][-1] == "_call_grad_direct"
