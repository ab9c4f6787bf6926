"""ad.compile's backward program for replayed dense steps (ad/compile_backward.py): each backward it runs against
the same step run eagerly, and every case where it must leave the sweep to the generic one (hooks registered
after the call, ``retain_graph``, restricted ``grad``, in-place writes, freed graphs)."""

import sys

import numpy as np
import pytest

import ad
import ad.nn.functional as F
from ad import compile_backward

BATCH, IN, HIDDEN, CLASSES = 32, 48, 600, 7  # (32, 600) activations: big rows (tape.BIG_ROW elements)


def mlp(x, target, w1, b1, w2, b2, w3, b3):
    h = ad.tanh(F.linear(x, w1, b1))
    h = ad.tanh(F.linear(h, w2, b2))
    return F.cross_entropy(F.linear(h, w3, b3), target)


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(HIDDEN, IN), (HIDDEN,), (HIDDEN, HIDDEN), (HIDDEN,), (CLASSES, HIDDEN), (CLASSES,)]
    return [ad.tensor((rng.standard_normal(s) * 0.05).astype(dtype), requires_grad=True) for s in shapes]


def copies(ps):
    return [ad.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]


def batch(dtype, rng):
    return ad.tensor(rng.standard_normal((BATCH, IN)).astype(dtype)), ad.tensor(rng.integers(0, CLASSES, BATCH))


def close(a, b, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    a = a.detach().numpy() if isinstance(a, ad.Tensor) else a
    b = b.detach().numpy() if isinstance(b, ad.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


class Counting:
    """Counts the program's runs (True: it swept; False: it left the sweep to the generic one)."""

    def __init__(self, monkeypatch):
        self.ran = []
        run = compile_backward.BackwardProgram.run

        def counted(program, s):
            done = run(program, s)
            self.ran.append(done)
            return done

        monkeypatch.setattr(compile_backward.BackwardProgram, "run", counted)


def replayed_step(dtype, seed=0):
    """A compiled MLP replaying (two recording calls done), its parameters, eager copies and a batch."""
    ps = make_params(dtype, seed)
    step = ad.compile(mlp)
    rng = np.random.default_rng(seed + 1)
    x, t = batch(dtype, rng)
    for _ in range(2):
        step(x, t, *ps)
    for p in ps:
        p.grad = None
    return step, ps, copies(ps), x, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_program_sweeps_replayed_steps_as_eager_across_optimizer_steps(dtype, monkeypatch):
    counting = Counting(monkeypatch)
    step, ps, ps_ref, _, _ = replayed_step(dtype)
    tpl = next(iter(step.cache.values())).template
    assert tpl.backward is not None and [s[3] for s in tpl.backward.steps] == ["m", "e", "m", "e", "m"]
    opt, opt_ref = ad.optim.SGD(ps, lr=0.1, momentum=0.9), ad.optim.SGD(ps_ref, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(7)
    for _ in range(4):
        x, t = batch(dtype, rng)
        for f, params, o in ((step, ps, opt), (mlp, ps_ref, opt_ref)):
            o.zero_grad()
            loss = f(x, t, *params)
            loss.backward()
            if f is step:
                got, grads = loss, [p.grad.numpy().copy() for p in params]
            o.step()
        close(got, loss, dtype)
        for g, p in zip(grads, ps_ref):
            close(g, p.grad, dtype)
    assert counting.ran == [True] * 4


def test_program_accumulates_into_existing_grads_and_takes_seeds():
    step, ps, ps_ref, x, t = replayed_step(np.float64)
    for p, q in zip(ps, ps_ref):
        p.grad = ad.ones_like(p)
        q.grad = ad.ones_like(q)
    step(x, t, *ps).backward(ad.tensor(2.5))
    mlp(x, t, *ps_ref).backward(ad.tensor(2.5))
    for p, q in zip(ps, ps_ref):
        close(p.grad, q.grad, np.float64)


def test_program_leaves_hooks_retain_grad_and_restricted_grads_to_the_generic_sweep(monkeypatch):
    counting = Counting(monkeypatch)
    dtype = np.float64
    step, ps, ps_ref, x, t = replayed_step(dtype)
    # a hook on the loss (a row the program does not stop at) and on a parameter
    seen = []
    loss, loss_ref = step(x, t, *ps), mlp(x, t, *ps_ref)
    for y in (loss, loss_ref):
        y.register_hook(lambda g: seen.append(float(g)) or g * 3.0)
    for p in (ps[2], ps_ref[2]):
        p.register_hook(lambda g: g * 0.5)
    loss.backward()
    loss_ref.backward()
    assert seen == [1.0, 1.0]
    for p, q in zip(ps, ps_ref):
        close(p.grad, q.grad, dtype)
    assert counting.ran == [False]
    # restricted: grad of the loss with respect to some parameters only
    loss, loss_ref = step(x, t, *ps), mlp(x, t, *ps_ref)
    got = ad.autograd.grad(loss, [ps[0], ps[5]])
    want = ad.autograd.grad(loss_ref, [ps_ref[0], ps_ref[5]])
    for g, w in zip(got, want):
        close(g, w, dtype)
    assert counting.ran == [False, False]  # (a restricted sweep: declined)
    # grad with respect to every parameter restricts nothing: the program sweeps
    loss, loss_ref = step(x, t, *ps), mlp(x, t, *ps_ref)
    for g, w in zip(ad.autograd.grad(loss, ps), ad.autograd.grad(loss_ref, ps_ref)):
        close(g, w, dtype)
    assert counting.ran == [False, False, True]


def test_program_declines_for_a_hook_on_an_intermediate_tensor(monkeypatch):
    """An intermediate returned by fn, hooked after the call: its row is one of the program's rows."""
    counting = Counting(monkeypatch)
    dtype = np.float64

    def f(x, target, w1, b1, w2, b2, w3, b3):
        h = ad.tanh(F.linear(x, w1, b1))
        h2 = ad.tanh(F.linear(h, w2, b2))
        return F.cross_entropy(F.linear(h2, w3, b3), target), h

    ps = make_params(dtype)
    ps_ref = copies(ps)
    step = ad.compile(f)
    x, t = batch(dtype, np.random.default_rng(3))
    for _ in range(3):
        loss, h = step(x, t, *ps)
    for p in ps:
        p.grad = None
    seen = []
    h.register_hook(lambda g: seen.append(g.detach().numpy().copy()) or g * 2.0)
    h.retain_grad()
    loss.backward()
    loss_ref, h_ref = f(x, t, *ps_ref)
    h_ref.register_hook(lambda g: seen.append(g.detach().numpy().copy()) or g * 2.0)
    h_ref.retain_grad()
    loss_ref.backward()
    close(seen[0], seen[1], dtype)
    close(h.grad, h_ref.grad, dtype)
    for p, q in zip(ps, ps_ref):
        close(p.grad, q.grad, dtype)
    assert counting.ran[-1] is False


def test_program_with_retain_graph_in_place_writes_and_freed_graphs(monkeypatch):
    counting = Counting(monkeypatch)
    dtype = np.float64
    step, ps, ps_ref, x, t = replayed_step(dtype)
    loss, loss_ref = step(x, t, *ps), mlp(x, t, *ps_ref)
    for y in (loss, loss_ref):
        y.backward(retain_graph=True)
        y.backward()
    for p, q in zip(ps, ps_ref):
        close(p.grad, q.grad, dtype)
    assert counting.ran == [True, True]
    for y in (loss, loss_ref):  # the graph was freed: both raise torch's error
        with pytest.raises(RuntimeError, match="second time"):
            y.backward()
    assert counting.ran == [True, True, False]
    # a parameter written in place after the call: both raise the in-place error
    loss, loss_ref = step(x, t, *ps), mlp(x, t, *ps_ref)
    with ad.no_grad():
        ps[2].mul_(2.0)
        ps_ref[2].mul_(2.0)
    for y in (loss, loss_ref):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()
    assert counting.ran[-1] is False


def test_no_program_for_chains_of_big_elementwise_rows():
    """Two big elementwise rows in a row are a chain the generic sweep runs in one blocked pass."""
    w = ad.tensor(np.random.default_rng(0).standard_normal(40000), requires_grad=True)
    step = ad.compile(lambda: ad.tanh(ad.sin(w * 2.0)).sum())
    for _ in range(3):
        step().backward()
    assert next(iter(step.cache.values())).template.backward is None


@pytest.mark.filterwarnings("ignore:ad.compile")  # (the sum of a parameter without grad: that signature is eager)
def test_the_last_calls_arguments_are_recognized_and_every_change_seen(monkeypatch):
    """``CompiledFunction``'s record of the last call (``_same_call``): the same list of parameters and argument
    tensors again replays without making the key; a list changed in place (an item replaced, one appended), an
    array rebound (``p.data = ...``), a grad flag turned off, a new argument tensor or a non-tensor argument each
    take the full signature, and every call equals eager."""
    rng = np.random.default_rng(5)
    ps = [ad.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 4), (4,)]]

    def f(params, consts, x):
        return (ad.tanh(params[0] * params[1] + x) * consts[0]).sum() + sum(p.sum() for p in params[2:])

    consts = [ad.tensor(rng.standard_normal(4))]
    x = ad.tensor(rng.standard_normal((3, 4)))
    step = ad.compile(f)

    def check(*args):
        for _ in range(3):
            for p in ps:
                p.grad = None
            y = step(*args)
            y.backward()
            got = [None if p.grad is None else p.grad.numpy().copy() for p in ps]
        for p in ps:
            p.grad = None
        y_ref = f(*args)
        y_ref.backward()
        close(y, y_ref, np.float64)
        for g, p in zip(got, ps):
            assert (g is None) == (p.grad is None)
            if g is not None:
                close(g, p.grad, np.float64)

    check(ps, consts, x)
    assert step.last is not None and step.last.entry.template is not None
    module = sys.modules["ad.compile"]
    flattened = []
    flatten = module._flatten
    monkeypatch.setattr(module, "_flatten", lambda *a: flattened.append(1) or flatten(*a))
    step(ps, consts, x)
    assert not flattened  # (recognized: no key made)
    consts[0] = ad.tensor(rng.standard_normal(4))  # an item replaced in place: new values, same signature
    check(ps, consts, x)
    ps.append(ad.tensor(rng.standard_normal(2), requires_grad=True))  # an item appended: a new signature
    check(ps, consts, x)
    with ad.no_grad():
        ps[1].data = ad.tensor(rng.standard_normal(4))  # another array of the same shape: new values
    check(ps, consts, x)
    ps[2].requires_grad_(False)
    check(ps, consts, x)
    check(ps, consts, ad.tensor(rng.standard_normal((3, 4))))  # a new argument tensor
    check(tuple(ps), consts, x)
    n = len(step.cache)
    check(ps, consts, 0.5)  # a non-tensor argument: no record of the call, its own signature
    assert step.last is None and len(step.cache) == n + 1


# matrix-vector programs (a compiled Hessian-vector product): the Python rows' tensors are made only when asked for
M = 160  # (160 x 160 = 25,600 elements: a big row)


def matvec_case(seed=0):
    rng = np.random.default_rng(seed)
    A = ad.tensor(rng.standard_normal((M, M)) / np.sqrt(M))
    v = ad.tensor(rng.standard_normal(M))
    x = ad.tensor(rng.standard_normal(M), requires_grad=True)
    return A, v, x


def test_hvp_program_sweeps_without_the_rows_tensors_and_matches_eager(monkeypatch):
    counting = Counting(monkeypatch)
    A, v, _ = matvec_case()

    def hvp(x):
        y = ad.tanh(A @ x).sum()
        (g,) = ad.autograd.grad(y, x, create_graph=True)
        (h,) = ad.autograd.grad((g * v).sum(), x)
        return y, g, h

    step = ad.compile(hvp)
    rng = np.random.default_rng(5)
    for call in range(5):
        x = ad.tensor(rng.standard_normal(M), requires_grad=True)
        got, want = step(x), hvp(ad.tensor(x.detach().numpy(), requires_grad=True))
        for a, b in zip(got, want):
            close(a, b, np.float64)
        # analytic: H v = A^T diag(-2 t (1 - t^2)) A v, t = tanh(A x)
        a_np, t = A.detach().numpy(), np.tanh(A.detach().numpy() @ x.detach().numpy())
        close(got[2], a_np.T @ (-2 * t * (1 - t * t) * (a_np @ v.detach().numpy())), np.float64)
        if call >= 2:  # (replayed: the program swept, and no tensor of a Python row was made)
            assert got[1]._tape.rows_pending is not None
    program = next(iter(step.cache.values())).template
    assert program.direct is not None  # (one phase, one direct grad: compile_program.Program._direct)
    assert program.templates[0].backward.operands is not None and counting.ran[-3:] == [True] * 3


def matvec_step():
    """A compiled ``(z, tanh(z).sum())``, z = A @ x (a matrix-vector row the program sweeps without tensors)."""
    A, _, _ = matvec_case(1)

    def f(x):
        z = A @ x
        return z, ad.tanh(z).sum()

    step = ad.compile(f)
    for _ in range(3):
        step(matvec_case(1)[2])
    return step, f, A


def test_matvec_program_makes_the_rows_for_hooks_retain_grad_and_generic_sweeps(monkeypatch):
    counting = Counting(monkeypatch)
    step, f, _ = matvec_step()
    x, x_ref = matvec_case(2)[2], matvec_case(2)[2]
    # a hook and retain_grad on the returned matmul result (a Python row) after the call
    (z, y), (z_ref, y_ref) = step(x), f(x_ref)
    assert y._tape.rows_pending is not None
    seen = []
    for t in (z, z_ref):
        t.register_hook(lambda g: seen.append(g.detach().numpy().copy()) or g * 2.0)
        t.retain_grad()
    assert y._tape.rows_pending is None and type(z) is ad.Tensor  # (made: z is now the row's plain tensor)
    y.backward()
    y_ref.backward()
    close(seen[0], seen[1], np.float64)
    close(z.grad, z_ref.grad, np.float64)
    close(x.grad, x_ref.grad, np.float64)
    assert counting.ran[-1] is False
    # a gradient with respect to the intermediate: a restricted sweep (generic), which makes the rows
    (z, y), (z_ref, y_ref) = step(x), f(x_ref)
    close(ad.autograd.grad(y, z)[0], ad.autograd.grad(y_ref, z_ref)[0], np.float64)
    # the program again, after the user dropped z: no tensor needed
    (_, y), (_, y_ref) = step(x), f(x_ref)
    close(ad.autograd.grad(y, x)[0], ad.autograd.grad(y_ref, x_ref)[0], np.float64)
    assert counting.ran[-1] is True


def test_matvec_program_reads_rebound_data_and_frees_its_tapes_without_the_collector():
    import gc
    import weakref

    step, f, A = matvec_step()
    x, x_ref = matvec_case(3)[2], matvec_case(3)[2]
    (_, y), (_, y_ref) = step(x), f(x_ref)
    A.data = ad.tensor(np.random.default_rng(4).standard_normal((M, M)))  # (rebound after the forward: as eager)
    y.backward()
    y_ref.backward()
    close(x.grad, x_ref.grad, np.float64)
    gc.collect()
    gc.disable()
    try:
        for hook in (False, True):
            z, y = step(x)
            tape = weakref.ref(y._tape)
            if hook:  # (the rows made: the state holds z's row tensor, without a cycle)
                z.register_hook(lambda g: g)
            del z, y
            assert tape() is None
    finally:
        gc.enable()


def test_hvp_program_reads_a_matrix_passed_as_an_argument(monkeypatch):
    counting = Counting(monkeypatch)
    _, v, _ = matvec_case()

    def hvp(A, x):
        (g,) = ad.autograd.grad(ad.tanh(A @ x).sum(), x, create_graph=True)
        return ad.autograd.grad((g * v).sum(), x)[0]

    step = ad.compile(hvp)
    rng = np.random.default_rng(9)
    for _ in range(4):
        A = ad.tensor(rng.standard_normal((M, M)) / np.sqrt(M))
        x = ad.tensor(rng.standard_normal(M), requires_grad=True)
        close(step(A, x), hvp(A, ad.tensor(x.detach().numpy(), requires_grad=True)), np.float64)
    assert next(iter(step.cache.values())).template.templates[0].backward.operands is not None
    assert counting.ran[-2:] == [True, True]
