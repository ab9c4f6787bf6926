"""register_post_accumulate_grad_hook, grad_fn.register_prehook / register_hook and
autograd.graph.saved_tensors_hooks, against torch."""

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

X = np.array([0.5, -1.0, 2.0])


def test_post_accumulate_grad_hook_matches_torch():
    def run(lib):
        w = lib.tensor(X, requires_grad=True)
        seen = []

        def hook(t):
            seen.append(t.grad.numpy().copy())
            with lib.no_grad():  # an optimizer step fused into backward, the hook's purpose
                t -= 0.1 * t.grad
            t.grad = None

        handle = w.register_post_accumulate_grad_hook(hook)
        (w * w).sum().backward()
        (w.sin()).sum().backward(inputs=[w])
        handle.remove()
        (w * 3).sum().backward()
        return seen, w.detach().numpy().copy(), w.grad.numpy().copy()

    (sa, wa, ga), (st, wt, gt) = run(ad), run(torch)
    assert len(sa) == len(st) == 2
    for a, t in zip(sa, st):
        np.testing.assert_allclose(a, t, rtol=1e-14)
    np.testing.assert_allclose(wa, wt, rtol=1e-14)
    np.testing.assert_allclose(ga, gt, rtol=1e-14)
    # autograd.grad accumulates nothing, so it calls no post-accumulate hook
    w = ad.tensor(X, requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(calls.append)
    ad.autograd.grad((w * w).sum(), w)
    assert calls == []


def test_post_accumulate_grad_hook_errors():
    w = ad.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot be registered on non-leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ad.tensor(X).register_post_accumulate_grad_hook(print)


def test_grad_fn_prehook_and_hook_match_torch():
    def run(lib):
        w = lib.tensor(X, requires_grad=True)
        v = lib.tensor(X[::-1].copy(), requires_grad=True)
        y = w * v + w.exp()
        seen = {}
        mul = y.grad_fn.next_functions[0][0]  # the product's node
        y.grad_fn.register_prehook(lambda go: (go[0] * 2,))

        def observe(grad_inputs, grad_outputs):
            seen["gi"] = [g.numpy().copy() for g in grad_inputs]
            seen["go"] = grad_outputs[0].numpy().copy()

        mul.register_hook(observe)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        return seen, w.grad.numpy(), v.grad.numpy()

    (sa, wa, va), (st, wt, vt) = run(ad), run(torch)
    np.testing.assert_allclose(sa["go"], st["go"], rtol=1e-14)
    for a, t in zip(sa["gi"], st["gi"]):
        np.testing.assert_allclose(a, t, rtol=1e-14)
    np.testing.assert_allclose(wa, wt, rtol=1e-14)
    np.testing.assert_allclose(va, vt, rtol=1e-14)


def test_grad_fn_hook_with_broadcasting_and_removal():
    w = ad.tensor(np.ones((2, 3)), requires_grad=True)
    b = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = w + b
    seen = []
    handle = y.grad_fn.register_hook(lambda gi, go: seen.append([g.shape for g in gi]))
    y.sum().backward(retain_graph=True)
    # ad records the broadcast of b as its own ExpandBackward0 node (see next_functions): the add node's
    # grad_inputs have the shapes of the add's operands
    assert y.grad_fn.next_functions[1][0].name() == "ExpandBackward0"
    assert seen == [[(2, 3), (2, 3)]]
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0, 2.0])
    handle.remove()
    y.sum().backward()
    assert len(seen) == 1
    z = w * 2
    z.grad_fn.register_hook(lambda gi, go: tuple(None if g is None else g * 3 for g in gi))
    w.grad = None
    z.sum().backward()  # (what the hook returns replaces the node's grad_inputs: tests/test_engine_gaps20.py)
    np.testing.assert_array_equal(w.grad.numpy(), np.full(w.shape, 6.0))


class Square(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_saved_tensors_hooks_pack_and_unpack_custom_function_tensors():
    packed, unpacked = [], []

    def pack(t):
        packed.append(t.shape)
        return t.detach().numpy().copy() * 10  # stored elsewhere, in another form

    def unpack(p):
        unpacked.append(p.shape)
        return ad.tensor(p / 10)

    x = ad.tensor(X, requires_grad=True)
    with ad.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = Square.apply(x)
    assert packed == [(3,)] and unpacked == []
    y.sum().backward()
    assert unpacked == [(3,)]
    np.testing.assert_allclose(x.grad.numpy(), 2 * X)
    with ad.autograd.graph.disable_saved_tensors_hooks("no hooks here"):
        with pytest.raises(RuntimeError, match="no hooks here"):
            with ad.autograd.graph.saved_tensors_hooks(pack, unpack):
                pass
    with ad.autograd.graph.save_on_cpu():
        z = Square.apply(x)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * X)
