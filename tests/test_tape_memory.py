"""Tapes die with the tensors of their graph: the number of live tapes stays bounded over repeated graphs, also
when a graph spans a tape boundary and the thread's current tape outlives it (forward-over-reverse Hessians)."""

import gc

import numpy as np

import ad
import ad.autograd.forward_ad as fwAD
from ad import tape as tape_mod

N = 64
# a small arena, so that every graph below spans a tape boundary (as a 256x256 Hessian does at the default size)
SMALL_CAPACITY = 3 * N * N + 64


def _live_tapes():
    gc.collect()
    return len(list(tape_mod._live_tapes))


def _assert_bounded(step, iterations=30):
    step()
    base = _live_tapes()
    counts = []
    for k in range(1, iterations + 1):
        step()
        if k % 5 == 0:  # (a full collection per iteration would cost more than the steps)
            counts.append(_live_tapes())
    assert max(counts) <= base + 1, counts


def _problem(monkeypatch):
    monkeypatch.setattr(tape_mod, "DEFAULT_CAPACITY", SMALL_CAPACITY)
    tape_mod.reset_current()
    rng = np.random.default_rng(0)
    a = ad.tensor(rng.standard_normal((N, N)) / 8)
    return (lambda x: ad.tanh(a @ x).sum()), rng.standard_normal(N)


def test_hessian_forward_over_reverse_loop(monkeypatch):
    f, x0 = _problem(monkeypatch)
    expected = ad.autograd.functional.hessian(f, ad.tensor(x0)).numpy()

    def step():  # the values still match the reverse-over-reverse Hessian on every call
        h = ad.autograd.functional.hessian(f, ad.tensor(x0), vectorize=True, outer_jacobian_strategy="forward-mode")
        np.testing.assert_allclose(h.numpy(), expected, rtol=1e-10, atol=1e-12)

    _assert_bounded(step)


def test_hvp_grad_of_grad_and_dual_loops(monkeypatch):
    f, x0 = _problem(monkeypatch)
    v = ad.tensor(np.ones(N))

    def hvp():
        ad.autograd.functional.hvp(f, ad.tensor(x0), v)

    def grad_of_grad():
        x = ad.tensor(x0, requires_grad=True)
        (g,) = ad.autograd.grad(f(x), x, create_graph=True)
        (h,) = ad.autograd.grad(g.sum(), x)
        assert h.shape == (N,)

    def dual_backward():
        x = ad.tensor(x0, requires_grad=True)
        with fwAD.dual_level():
            f(fwAD.make_dual(x, v)).backward()
        assert x.grad is not None

    for step in (hvp, grad_of_grad, dual_backward):
        _assert_bounded(step)


def test_training_and_create_graph_loops(monkeypatch):
    f, x0 = _problem(monkeypatch)
    w = ad.tensor(x0, requires_grad=True)

    def train():
        f(w).backward()
        with ad.no_grad():
            w.sub_(0.01 * w.grad)
        w.grad = None

    def create_graph_backward():
        x = ad.tensor(x0, requires_grad=True)
        (g,) = ad.autograd.grad(f(x), x, create_graph=True)
        g.sum().backward()

    for step in (train, create_graph_backward):
        _assert_bounded(step)


def test_graph_across_tapes_keeps_the_older_tensors_it_reads():
    # the newer tape holds the older tape's intermediate weakly: its consumer keeps it (and its tape) alive
    x = ad.tensor(np.linspace(0.1, 1.0, 5), requires_grad=True)
    y = ad.sin(x) * 2
    tape_mod.reset_current()
    z = (ad.exp(y) * 3).sum()
    assert z._tape is not y._tape
    del y
    gc.collect()
    z.backward()
    xv = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(2 * np.sin(xv)) * 2 * np.cos(xv), rtol=1e-12)
