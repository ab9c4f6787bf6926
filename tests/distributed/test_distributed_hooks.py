"""Single-process tests of what DataParallel builds on (``ad/autograd/sweep_hooks.py``): gradient-ready hooks
run mid-sweep with the leaf's complete gradient, before ``.grad`` is written; ``queue_callback`` runs after it;
and ``ad.distributed``'s argument checks that need no MPI (``import ad`` never imports mpi4py)."""

import sys
from datetime import timedelta

import numpy as np
import pytest

import ad
import ad.distributed as dist
from ad.autograd import sweep_hooks


def _mlp():
    rng = np.random.default_rng(0)
    w1 = ad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w2 = ad.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    x = ad.tensor(rng.standard_normal((5, 3)))
    return w1, w2, x


def test_grad_ready_hooks_run_mid_sweep_with_the_complete_gradient():
    w1, w2, x = _mlp()
    events = []
    for name, w in (("w1", w1), ("w2", w2)):
        sweep_hooks.register_grad_ready_hook(w, lambda t, g, name=name: events.append((name, g.copy(), t.grad)))
    h = x @ w1
    h.register_hook(lambda g: events.append(("h", None, None)))  # runs in the sweep, between w2's and w1's rows
    y = (ad.tanh(h) @ w2 * (ad.tanh(h) @ w2)).sum()  # w2 used twice: its hook waits for both uses
    y.backward()
    assert [e[0] for e in events] == ["w2", "h", "w1"]
    assert events[0][2] is None and events[2][2] is None  # no .grad written yet
    np.testing.assert_allclose(events[0][1], w2.grad.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(events[2][1], w1.grad.detach().numpy(), rtol=1e-15)
    # a leaf that is also an output: its seed is added apart from the tape, so its hook waits for the end
    events.clear()
    w1.grad = w2.grad = None
    u = x @ w1
    u.register_hook(lambda g: events.append(("u", None, None)))
    ad.autograd.backward([(u @ w2).sum(), w2], [None, ad.ones(4, 2, dtype=ad.float64)])
    assert [e[0] for e in events] == ["u", "w2", "w1"]  # (without the seed, w2's would come before u's)
    np.testing.assert_allclose(events[1][1], w2.grad.detach().numpy(), rtol=1e-15)
    # a hook sees this backward's gradient only, before it is accumulated into .grad
    events.clear()
    before = w1.grad.detach().numpy().copy()
    (x @ w1).sum().backward()
    np.testing.assert_allclose(w1.grad.detach().numpy(), before + events[0][1], rtol=1e-15)


def test_grad_ready_hooks_after_a_differentiable_sweep_or_restricted_backward():
    w1, w2, x = _mlp()
    seen = []
    sweep_hooks.register_grad_ready_hook(w1, lambda t, g: seen.append(g.copy()))
    with pytest.warns(UserWarning), ad.autograd.detect_anomaly():  # node-by-node sweep: the hooks run when it is over
        (x @ w1).sum().backward()
    np.testing.assert_allclose(seen[0], np.tile(x.detach().numpy().sum(0)[:, None], (1, 4)), rtol=1e-14)
    (x @ w1 @ w2).sum().backward(inputs=[w2])  # w1 not among the inputs: no hook
    assert len(seen) == 1
    ad.autograd.grad((x @ w1).sum(), w1)  # grad() writes no .grad: no hook
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="create_graph"):
        (x @ w1).sum().backward(create_graph=True)
    with pytest.raises(RuntimeError, match="leaf"):
        sweep_hooks.register_grad_ready_hook(x @ w1, lambda t, g: None)


def test_queue_callback_runs_after_every_grad_is_written():
    w1, w2, x = _mlp()
    seen = []

    def hook(t, g):
        sweep_hooks.queue_callback(lambda: seen.append((w1.grad is not None, w2.grad is not None)))

    sweep_hooks.register_grad_ready_hook(w2, hook)
    (ad.tanh(x @ w1) @ w2).sum().backward()
    assert seen == [(True, True)]
    with pytest.raises(RuntimeError, match="Final callbacks can only be installed during backward pass"):
        sweep_hooks.queue_callback(lambda: None)


def test_api_without_a_process_group():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier, lambda: dist.all_reduce(ad.ones(2))):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            call()
    with pytest.raises(TypeError, match="Expected timeout argument to be of type datetime.timedelta"):
        dist.init_process_group("mpi", timeout=5)
    with pytest.raises(ValueError, match="'mpi' backend only"):
        dist.init_process_group("nccl", timeout=timedelta(seconds=5))
    assert dist.default_pg_timeout == timedelta(minutes=30)


def test_import_ad_does_not_import_mpi4py():
    # (ad and ad.distributed are imported above; nothing in the test suite imports mpi4py in this process)
    assert "mpi4py" not in sys.modules
