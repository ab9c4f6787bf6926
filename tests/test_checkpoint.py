"""ad.utils.checkpoint: gradients equal the plain call's (and torch's), the function runs again in backward,
random draws replay, torch's argument errors."""

import numpy as np
import pytest

import ad
from ad.utils.checkpoint import checkpoint, checkpoint_sequential

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 5))
V = RNG.standard_normal((5, 3))
X = RNG.standard_normal((6, 4))


def _block(lib, w, v):
    def block(x, scale=1.0):
        return (lib.tanh(x @ w) @ v).sin() * scale, (x * x).sum()

    return block


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_gradients_equal_the_plain_call_and_torch(use_reentrant):
    def run(lib, ckpt):
        w = lib.tensor(W, requires_grad=True)
        v = lib.tensor(V, requires_grad=True)
        x = lib.tensor(X, requires_grad=True)
        block = _block(lib, w, v)
        h = x * 2
        a, b = ckpt(block, h, use_reentrant=use_reentrant) if ckpt else block(h)
        a2, _ = ckpt(block, h.cos(), use_reentrant=use_reentrant) if ckpt else block(h.cos())
        ((a * a2).sum() + b).backward()
        return [t.grad.numpy().copy() for t in (w, v, x)], a.detach().numpy()

    ours, plain = run(ad, checkpoint), run(ad, None)
    theirs = run(torch, torch.utils.checkpoint.checkpoint)
    np.testing.assert_array_equal(ours[1], plain[1])
    for g, p, t in zip(ours[0], plain[0], theirs[0]):
        np.testing.assert_allclose(g, p, rtol=0, atol=1e-13)
        np.testing.assert_allclose(g, t, rtol=0, atol=1e-12)


def test_the_function_runs_again_in_backward_and_forward_records_nothing_inside():
    calls = []
    w = ad.tensor(W, requires_grad=True)

    def f(x):
        calls.append(ad.is_grad_enabled())
        return (x @ w).tanh()

    x = ad.tensor(X, requires_grad=True)
    y = checkpoint(f, x, use_reentrant=False)
    assert calls == [False]  # forward: no graph inside the checkpoint
    y.sum().backward()
    assert calls == [False, True]  # backward: recomputed with grad enabled
    np.testing.assert_allclose(x.grad.numpy(), (1 - np.tanh(X @ W) ** 2) @ W.T, rtol=1e-12)


@pytest.mark.parametrize("preserve", [True, False])
def test_dropout_replays_its_mask(preserve):
    w = ad.tensor(W, requires_grad=True)

    def f(x):
        return ad.nn.functional.dropout(x @ w, 0.5).sum(0)

    x = ad.tensor(X, requires_grad=True)
    ad.manual_seed(1)
    checkpoint(f, x, use_reentrant=False, preserve_rng_state=preserve).pow(2).sum().backward()
    ours = w.grad.numpy().copy()
    w.grad = None
    ad.manual_seed(1)
    f(x).pow(2).sum().backward()
    if preserve:
        np.testing.assert_allclose(ours, w.grad.numpy(), rtol=0, atol=1e-13)
    else:  # a fresh mask in the recomputation: not the plain call's gradient
        assert not np.allclose(ours, w.grad.numpy())


def test_keyword_arguments_and_non_tensor_arguments():
    w, v = ad.tensor(W, requires_grad=True), ad.tensor(V, requires_grad=True)
    x = ad.tensor(X, requires_grad=True)
    a, _ = checkpoint(_block(ad, w, v), x, use_reentrant=False, scale=3.0)
    a.sum().backward()
    got = x.grad.numpy().copy()
    x.grad = None
    _block(ad, w, v)(x, 3.0)[0].sum().backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=0, atol=1e-13)


def test_checkpoint_sequential_matches_the_plain_model():
    ad.manual_seed(0)
    model = ad.nn.Sequential(*[m for _ in range(3) for m in (ad.nn.Linear(4, 4), ad.nn.Tanh())])
    x = ad.tensor(X, requires_grad=True)
    checkpoint_sequential(model, 2, x, use_reentrant=False).sum().backward()
    got = [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]
    model.zero_grad()
    x.grad = None
    model(x).sum().backward()
    for g, p in zip(got, [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]):
        np.testing.assert_allclose(g, p, rtol=0, atol=1e-13)


def test_argument_errors_and_warning_as_torch():
    x = ad.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    for kwargs in (dict(use_reentrant=True, scale=2.0), dict(use_reentrant=True, debug=True)):
        with pytest.raises(ValueError) as theirs:
            torch.utils.checkpoint.checkpoint(lambda t, scale=1: t, tx, **kwargs)
        with pytest.raises(ValueError) as ours:
            checkpoint(lambda t, scale=1: t, x, **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(lambda t: t * 2, x)
    with pytest.raises(RuntimeError, match="none of output has requires_grad=True"):
        checkpoint(lambda t: t.detach(), x, use_reentrant=True).sum().backward()


def test_inputs_without_grad():
    """Data as the input: the non-reentrant variant still gives the captured parameters their gradients; the
    reentrant one warns and gives none (both as torch)."""
    for lib, ckpt in ((ad, checkpoint), (torch, torch.utils.checkpoint.checkpoint)):
        w = lib.tensor(W, requires_grad=True)
        x = lib.tensor(X)
        ckpt(lambda t, w=w, lib=lib: lib.tanh(t @ w), x, use_reentrant=False).sum().backward()
        if lib is ad:
            ours = w.grad.numpy()
        else:
            np.testing.assert_allclose(ours, w.grad.numpy(), rtol=0, atol=1e-12)
        w.grad = None
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
            y = ckpt(lambda t, w=w, lib=lib: lib.tanh(t @ w), x, use_reentrant=True)
        assert not y.requires_grad
    # nothing captured that requires grad either: backward through the rest of the graph still works
    v = ad.tensor(V, requires_grad=True)
    y = checkpoint(lambda t: t.sin(), ad.tensor(X), use_reentrant=False)
    (y.sum() * v).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), np.full(V.shape, np.sin(X).sum()), rtol=1e-12)


def test_determinism_check():
    state = {"n": 0}

    def f(t):
        state["n"] += 1
        return t[: 2 + state["n"]] * 2

    x = ad.tensor(X, requires_grad=True)
    with pytest.raises(ad.utils.checkpoint.CheckpointError, match="Recomputed values have different metadata"):
        checkpoint(f, x, use_reentrant=False).sum().backward()


@pytest.mark.parametrize("use_reentrant", [True, False])
@pytest.mark.parametrize("call", ["grad", "backward_inputs"])
def test_refused_where_the_inner_backward_would_write_captured_grads(use_reentrant, call):
    # grad() and backward(inputs=...) must leave every other .grad alone and return the captured parameters'
    # gradients, which the recomputing inner backward cannot do: raise (torch does for use_reentrant=True),
    # with nothing written
    w = ad.tensor(W, requires_grad=True)
    v = ad.tensor(V, requires_grad=True)
    x = ad.tensor(X, requires_grad=True)
    a, b = checkpoint(_block(ad, w, v), x * 2, use_reentrant=use_reentrant)
    loss = a.sum() + b
    with pytest.raises(RuntimeError, match="use_reentrant=True" if use_reentrant else "only under .backward"):
        if call == "grad":
            ad.autograd.grad(loss, [x, w])
        else:
            loss.backward(inputs=[x])
    assert w.grad is None and v.grad is None and x.grad is None
    if use_reentrant:
        tw = torch.tensor(W, requires_grad=True)
        tx = torch.tensor(X, requires_grad=True)
        ta, tb = torch.utils.checkpoint.checkpoint(_block(torch, tw, torch.tensor(V)), tx * 2, use_reentrant=True)
        with pytest.raises(RuntimeError, match="use_reentrant=True"):
            torch.autograd.grad(ta.sum() + tb, [tx, tw])


def test_a_backward_inside_grad_does_not_validate_a_checkpoint():
    # the flag follows the innermost sweep: a hook that calls backward() during an outer grad() sees a valid
    # checkpoint for its own graph, and the outer grad() still refuses its own checkpoint
    w = ad.tensor(W, requires_grad=True)
    x = ad.tensor(X, requires_grad=True)
    inner = []

    def hook(g):
        y = ad.tensor(X, requires_grad=True)
        with ad.enable_grad():  # (hooks run under the sweep's grad mode: off without create_graph)
            c, _ = checkpoint(_block(ad, w, ad.tensor(V)), y, use_reentrant=True)
            c.sum().backward()
        inner.append(y.grad is not None)
        return g

    x.register_hook(hook)
    (g,) = ad.autograd.grad((x * 3).sum(), x)
    assert inner == [True]
    np.testing.assert_array_equal(g.numpy(), np.full_like(X, 3.0))
