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


# ---------------------------------------------------------------------------------------------------------
# Module.register_backward_hook / grad_fn.register_hook returning new grad_inputs

W = np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]])
B = np.array([0.25, -0.5])
XS = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [0.0, 0.7, 1.1], [-0.4, 0.9, 0.6]])


def _linear(lib):
    lin = lib.nn.Linear(3, 2).double() if lib is torch else lib.nn.Linear(3, 2)
    with lib.no_grad():
        lin.weight.copy_(lib.tensor(W))
        lin.bias.copy_(lib.tensor(B))
    return lin


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("create_graph", [False, True])
def test_module_backward_hook_returning_grad_input_matches_torch(create_graph):
    def run(lib):
        seen = []

        def scale(module, grad_input, grad_output):
            seen.append([None if g is None else tuple(g.shape) for g in grad_input])
            return tuple(None if g is None else g * 2 for g in grad_input)

        lin = _linear(lib)
        lin.register_backward_hook(scale)
        x = lib.tensor(XS, requires_grad=True)
        y = lin(x)
        (y * y).sum().backward(create_graph=create_graph)
        seq = lib.nn.Sequential(_linear(lib), lib.nn.Tanh())
        seq.register_backward_hook(lambda m, gi, go: tuple(g * 3 for g in gi))  # (on Tanh's node: its only input)
        x2 = lib.tensor(XS, requires_grad=True)
        seq(x2).sum().backward()
        return seen, [t.grad.detach().numpy() for t in (x, lin.weight, lin.bias, x2, seq[0].weight, seq[0].bias)]

    (seen_a, grads_a), (seen_t, grads_t) = run(ad), run(torch)
    assert seen_a == seen_t == [[(2,), (4, 3), (3, 2)]]  # torch's AddmmBackward0 order: bias, input, weight.T
    for a, t in zip(grads_a, grads_t):
        np.testing.assert_allclose(a, t, rtol=1e-13)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_module_backward_hook_on_a_node_of_several_inputs_matches_torch():
    class Mul(ad.nn.Module):
        def forward(self, a, b):
            return a * b

    class TorchMul(torch.nn.Module):
        def forward(self, a, b):
            return a * b

    def run(lib, module):
        a = lib.tensor(X, requires_grad=True)
        b = lib.tensor(X[::-1].copy(), requires_grad=True)
        module.register_backward_hook(lambda m, gi, go: (gi[1] + go[0], None))  # (None: b gets no gradient)
        (module(a, b) * 2).sum().backward()
        return a.grad.numpy(), b.grad

    (ga, gb_a), (gt, gb_t) = run(ad, Mul()), run(torch, TorchMul())
    np.testing.assert_allclose(ga, gt, rtol=1e-14)
    assert gb_a is None and gb_t is None


@pytest.mark.parametrize("big", [False, True])
def test_grad_fn_hooks_replace_grad_inputs_in_order_as_torch(big):
    n = 70000 if big else 3  # (a big row is swept from Python: ad/big_rows.py)
    values = np.linspace(-1.0, 2.0, n)

    def run(lib, create_graph):
        x = lib.tensor(values, requires_grad=True)
        w = lib.tensor(values[::-1].copy(), requires_grad=True)
        y = x * w
        seen = []
        y.grad_fn.register_hook(lambda gi, go: (gi[0] * 10, gi[1]))
        y.grad_fn.register_hook(lambda gi, go: (seen.append(float(gi[0].detach().sum())), (gi[0] + 1, None))[1])
        z = (y.exp() * 0.5).sum()
        gx, gw = lib.autograd.grad(z, (x, w), create_graph=create_graph, allow_unused=True, materialize_grads=True)
        out = [gx.detach().numpy(), gw.detach().numpy(), seen]
        if create_graph:  # the replaced gradient is differentiable: 10 * w * exp(x w) / 2 + 1
            (ggx,) = lib.autograd.grad(gx.sum(), x)
            out.append(ggx.numpy())
        return out

    for create_graph in (False, True):
        ours, theirs = run(ad, create_graph), run(torch, create_graph)
        for a, t in zip(ours[:2], theirs[:2]):
            np.testing.assert_allclose(a, t, rtol=1e-12)
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)
        if create_graph:
            np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12)
            # (the second backward passes y's node again, so its hooks apply again, as torch's)
            expected = 10 * (5 * values[::-1] ** 2 * np.exp(values * values[::-1])) + 1
            np.testing.assert_allclose(ours[3], expected, rtol=1e-12)


def test_grad_fn_hook_result_errors_as_torch():
    def errors(lib):
        found = []
        for result in (
            lambda gi: [gi[0], gi[1]],
            lambda gi: (gi[0],),
            lambda gi: (gi[0], gi[1][:2]),
            lambda gi: (gi[0], 5),
            lambda gi: (gi[0], gi[1].float()),
        ):
            a = lib.tensor(X, requires_grad=True)
            b = lib.tensor(X * 2, requires_grad=True)
            y = a * b
            y.grad_fn.register_hook(lambda gi, go, result=result: result(gi))
            with pytest.raises((TypeError, RuntimeError)) as info:
                y.sum().backward()
            found.append((info.type, str(info.value)))
        c = lib.tensor(X)
        y = lib.tensor(X, requires_grad=True) * c
        y.grad_fn.register_hook(lambda gi, go: (gi[0], lib.ones(3, dtype=lib.float64)))
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
        found.append((info.type, str(info.value)))
        return found

    assert errors(ad) == errors(torch)


def test_hooks_run_in_the_sweeps_grad_mode_as_torch():
    def modes(lib):
        seen = []
        x = lib.tensor(X, requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: seen.append(lib.is_grad_enabled()))
        y.grad_fn.register_hook(lambda gi, go: seen.append((lib.is_grad_enabled(), gi[0].requires_grad)))
        (y * y).sum().backward(retain_graph=True)
        (y * y).sum().backward(create_graph=True)
        return seen

    assert modes(ad) == modes(torch) == [False, (False, False), True, (True, True)]


def test_grad_of_an_unused_input_names_its_index_as_torch():
    def message(lib):
        x = lib.tensor(X, requires_grad=True)
        unused = lib.tensor(X, requires_grad=True)
        with pytest.raises(RuntimeError) as info:
            lib.autograd.grad((x * x).sum(), [x, x, unused])
        return str(info.value)

    assert message(ad) == message(torch)
    assert "index 2" in message(ad)


def test_grad_fn_metadata_and_the_scalar_operands_edge_as_torch():
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        y = x * 2
        y.grad_fn.metadata["tag"] = 1
        seen = []
        y.grad_fn.register_hook(lambda gi, go: (seen.append(len(gi)), (gi[0] * 3, None))[1])
        y.sum().backward()
        return y.grad_fn.metadata, seen, x.grad.numpy()

    (meta_a, seen_a, grad_a), (meta_t, seen_t, grad_t) = run(ad), run(torch)
    assert meta_a == meta_t == {"tag": 1}
    assert seen_a == seen_t == [2]  # (torch counts the Python scalar's edge: a second, None, grad_input)
    np.testing.assert_array_equal(grad_a, grad_t)
