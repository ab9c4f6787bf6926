"""Engine semantics of session 20, each against torch run side by side: saved_tensors_hooks with a custom
Function that saves its output (first and second derivatives through the unpacked tensors), the deprecated
Module.register_backward_hook whose hook returns new grad_input, and grad_fn hooks that replace grad_inputs."""

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

X = np.array([0.5, -1.0, 2.0])


def _exp_function(lib):
    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out, x)
            return out

        @staticmethod
        def backward(ctx, g):
            out, x = ctx.saved_tensors
            return g * out * (1 + 0 * x)

    return Exp


def _hook_pairs(lib):
    return {
        "identity": lambda: lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t),
        "detach": lambda: lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach(), lambda t: t),
        "numpy": lambda: lib.autograd.graph.saved_tensors_hooks(
            lambda t: t.detach().numpy().copy(), lambda a: lib.from_numpy(a)
        ),
        # the unpacked values differ from the saved ones: torch uses them, with the saved tensor's graph
        "scaled": lambda: lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach() * 2, lambda t: t),
        "graph_in_unpack": lambda: lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach(), lambda t: t * 1),
        "save_on_cpu": lambda: lib.autograd.graph.save_on_cpu(),
    }


@pytest.mark.parametrize("pair", sorted(_hook_pairs(ad)))
def test_saved_output_keeps_its_graph_under_saved_tensors_hooks(pair):
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        with _hook_pairs(lib)[pair]():
            y = _exp_function(lib).apply(x)
        (g,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), x)
        z = _exp_function(lib)
        with _hook_pairs(lib)[pair]():
            w = z.apply(x)
        w.sum().backward()  # a first-order backward through the hooks too
        return g.detach().numpy(), gg.numpy(), x.grad.numpy()

    for a, t in zip(run(ad), run(torch)):
        np.testing.assert_allclose(a, t, rtol=1e-13)


def test_saved_tensors_hooks_second_derivative_matches_finite_differences():
    x = ad.tensor(X, requires_grad=True)
    with ad.autograd.graph.saved_tensors_hooks(lambda t: t.detach().numpy().copy(), ad.from_numpy):
        y = _exp_function(ad).apply(x)
    (g,) = ad.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = ad.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.exp(X), rtol=1e-14)  # d2/dx2 exp = exp


def test_saved_tensors_hooks_pack_after_forward_and_only_when_recorded():
    def run(lib):
        log = []

        class Save(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                out = x * 2
                ctx.save_for_backward(out)
                log.append("saved")
                return out

            @staticmethod
            def backward(ctx, g):
                (out,) = ctx.saved_tensors
                return g * 2

        def pack(t):
            log.append(("pack", t.grad_fn is not None, t.requires_grad))
            return t

        x = lib.tensor(X, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            Save.apply(x)
            with lib.no_grad():
                Save.apply(x)
        return log

    assert run(ad) == run(torch) == ["saved", ("pack", True, True), "saved"]


def test_saved_tensors_hooks_unpack_errors():
    class Save(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out

    x = ad.tensor(X, requires_grad=True)
    with ad.autograd.graph.saved_tensors_hooks(lambda t: 0, lambda p: 5):
        y = Save.apply(x)
    with pytest.raises(TypeError, match="expected to be a Tensor but got result of type int"):
        y.sum().backward()
    # a tensor of another shape cannot carry the saved tensor's graph: raised where a graph is recorded
    with ad.autograd.graph.saved_tensors_hooks(lambda t: 0, lambda p: ad.ones(4)):
        y = Save.apply(x)
    with pytest.raises(RuntimeError, match="cannot attach it to the saved tensor's graph"):
        ad.autograd.grad(y.sum(), x, create_graph=True)


def test_saved_tensors_hooks_saved_output_written_in_place_later_uses_the_saved_node():
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach().clone(), lambda t: t):
            y = _exp_function(lib).apply(x)
        y.mul_(3)  # (the pack hook's clone keeps the saved values; the graph is the call's node, before the write)
        (g,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        return g.detach().numpy(), gg.numpy()

    for a, t in zip(run(ad), run(torch)):
        np.testing.assert_allclose(a, t, rtol=1e-13)
