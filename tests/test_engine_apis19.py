"""torch's remaining autograd-engine and training-loop APIs, against torch: register_multi_grad_hook,
GradientEdge / get_gradient_edge, increment_version, allow_mutation_on_saved_tensors, InplaceFunction /
NestedIOFunction, DistributedSampler, replace_all_batch_norm_modules_, convert_conv*_weight_memory_format,
swap_in_optimizer_params_and_state."""

import copy
import sys

import numpy as np
import pytest

import ad
from ad.autograd.graph import (
    GradientEdge,
    allow_mutation_on_saved_tensors,
    get_gradient_edge,
    increment_version,
    register_multi_grad_hook,
)

torch = pytest.importorskip("torch")

A = [0.5, -1.0, 2.0]
B = [1.5, 0.25, -0.75]


def arr(t):
    if t is None:
        return None
    return t.detach().numpy().copy()


def same(x, y, tol=1e-6):
    """Nested results of the two libraries (arrays, None, lists/tuples) agree."""
    if isinstance(x, (list, tuple)):
        assert isinstance(y, (list, tuple)) and len(x) == len(y)
        for a, b in zip(x, y):
            same(a, b, tol)
    elif x is None or y is None:
        assert x is None and y is None
    elif isinstance(x, str):
        assert x == y
    else:
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol)


def both(run):
    """``run(lib)`` for ad and torch (float64 throughout)."""
    return run(ad), run(torch)


def raises_as_torch(call_ad, call_torch):
    """Both calls raise the same exception class, with the same message."""
    with pytest.raises(Exception) as theirs:
        call_torch()
    with pytest.raises(type(theirs.value)) as ours:
        call_ad()
    assert str(ours.value) == str(theirs.value)


def leaves(lib):
    a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(B, dtype=lib.float64, requires_grad=True)
    c = lib.tensor([5.0], dtype=lib.float64, requires_grad=True)
    return a, b, c


# ---------------------------------------------------------------------------------------------------------
# register_multi_grad_hook


def _grads(seen):
    return [[arr(g) for g in call] if isinstance(call, list) else arr(call) for call in seen]


def test_multi_grad_hook_all_mode_leaves_non_leaves_remove_matches_torch():
    def run(lib):
        a, b, c = leaves(lib)
        seen = []
        h = lib.autograd.graph.register_multi_grad_hook((a, b, c), seen.append)
        (a * 2).sum().backward()  # b and c not reached: None
        (a * b).sum().backward()
        (a * b * c).sum().backward(inputs=[a, c])  # b is not an input: None
        h.remove()
        (a * b).sum().backward()  # removed: no call
        y, z, w = a * 2, b * 3, c * 1
        h = lib.autograd.graph.register_multi_grad_hook((y, z, w), seen.append)
        loss = (y * z).sum()
        loss.backward(retain_graph=True)  # a second backward of the same graph: a second call
        loss.backward(retain_graph=True)
        lib.autograd.grad(loss, [a], retain_graph=True)  # z's node does not run: None
        lib.autograd.grad(loss, [y])  # y is requested: its gradient, z's None
        h.remove()
        return _grads(seen), arr(a.grad), arr(b.grad)

    ours, theirs = both(run)
    same(ours, theirs)


def test_multi_grad_hook_fn_sees_all_before_grad_is_written_and_its_return_is_ignored():
    def run(lib):
        a, b, _ = leaves(lib)
        y = a * b
        order = []

        def fn(grads):
            order.append(("multi", [arr(g) for g in grads], a.grad is None))
            return [g * 0 for g in grads]  # ignored

        lib.autograd.graph.register_multi_grad_hook((y, a), fn)
        y.register_hook(lambda g: order.append(("y", arr(g))))
        (y.exp()).sum().backward()
        return order, arr(a.grad)

    ours, theirs = both(run)
    assert [o[0] for o in ours[0]] == [o[0] for o in theirs[0]] == ["y", "multi"]
    same([o[1] for o in ours[0]], [o[1] for o in theirs[0]])
    assert ours[0][1][2] is theirs[0][1][2] is True  # (no .grad written yet when fn runs)
    same(ours[1], theirs[1])


def test_multi_grad_hook_any_mode_and_duplicates_match_torch():
    def run(lib):
        a, b, _ = leaves(lib)
        seen = []
        h = lib.autograd.graph.register_multi_grad_hook((a, b), seen.append, mode="any")
        (b * 3).sum().backward()
        (a * 2).sum().backward()
        y = a * 2
        lib.autograd.grad((y * y).sum(), [a])  # (mode "any" allows leaves in grad)
        h.remove()
        (a * b).sum().backward()
        h = lib.autograd.graph.register_multi_grad_hook((a, a), seen.append)
        (a * 3).sum().backward()
        h.remove()
        return _grads(seen)

    ours, theirs = both(run)
    same(ours, theirs)


def test_multi_grad_hook_errors_match_torch():
    a, _, _ = leaves(ad)
    ta, _, _ = leaves(torch)
    raises_as_torch(
        lambda: register_multi_grad_hook((a,), print, mode="bad"),
        lambda: torch.autograd.graph.register_multi_grad_hook((ta,), print, mode="bad"),
    )
    raises_as_torch(
        lambda: register_multi_grad_hook([a, ad.ones(2)], print),
        lambda: torch.autograd.graph.register_multi_grad_hook([ta, torch.ones(2)], print),
    )
    # mode "any" skips tensors that do not require grad; an empty sequence is allowed
    register_multi_grad_hook((ad.ones(2),), print, mode="any").remove()
    register_multi_grad_hook((), print).remove()
    # grad() with a leaf among the tensors of mode "all": torch's engine does not support it
    h = register_multi_grad_hook((a,), print)
    th = torch.autograd.graph.register_multi_grad_hook((ta,), print)
    raises_as_torch(lambda: ad.autograd.grad((a * a).sum(), [a]), lambda: torch.autograd.grad((ta * ta).sum(), [ta]))
    h.remove()
    th.remove()


def test_multi_grad_hook_with_create_graph_and_hooks_that_change_gradients():
    def run(lib):
        a, b, _ = leaves(lib)
        y = a * b
        u = a.exp()
        seen = []
        y.register_hook(lambda g: g * 2)  # registered first: the multi-grad hook sees the doubled gradient
        h = lib.autograd.graph.register_multi_grad_hook((y, u), lambda gs: seen.append([arr(g) for g in gs]))
        (ga,) = lib.autograd.grad((y * y * u).sum(), [a], create_graph=True)
        (gga,) = lib.autograd.grad(ga.sum(), [a])
        h.remove()
        return seen, arr(ga), arr(gga)

    ours, theirs = both(run)
    same(ours, theirs)


def test_multi_grad_hook_under_compile_matches_eager():
    w = ad.tensor(A, requires_grad=True)
    v = ad.tensor(B, requires_grad=True)
    seen = []
    h = register_multi_grad_hook((w, v), lambda gs: seen.append([arr(g) for g in gs]))

    def step(x):
        return (ad.tanh(x * w) * v).sum()

    cf = ad.compile(step)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = ad.tensor(rng.standard_normal(3))
        seen.clear()
        cf(x).backward()
        compiled = list(seen)
        seen.clear()
        step(x).backward()
        assert len(compiled) == len(seen) == 1
        same(compiled, seen, 1e-12)
    assert isinstance(cf(x)._tape, sys.modules["ad.compile_replay"]._ReplayTape)
    h.remove()


# ---------------------------------------------------------------------------------------------------------
# GradientEdge, increment_version


def test_gradient_edges_as_inputs_and_outputs_match_torch():
    def run(lib):
        ge = lib.autograd.graph.get_gradient_edge
        a, _, _ = leaves(lib)
        y = a * 2
        edge = ge(y)
        z = y + 1  # (saves nothing of y)
        y.mul_(3)
        w = (y * z).sum()
        out = [
            lib.autograd.grad(w, edge, retain_graph=True),  # d/d(y before the write)
            lib.autograd.grad(w, [edge, a], retain_graph=True),
            lib.autograd.grad(w, [y, a], retain_graph=True),
        ]
        y2 = a * 3
        out.append(lib.autograd.grad(ge(y2), a, grad_outputs=lib.ones(3, dtype=lib.float64), retain_graph=True))
        out.append(lib.autograd.grad([ge(y2), (y2 * y2).sum()], [a], [lib.ones(3, dtype=lib.float64), None]))
        lib.autograd.backward((a * 2).sum(), inputs=[ge(a)])
        y3 = a * 2
        lib.autograd.backward((y3 * y3).sum(), inputs=[ge(y3)])  # a non-leaf edge: nothing stored
        u = a.unbind()
        out.append(lib.autograd.grad(u[0] * 3 + u[1], ge(u[1])))
        return out, arr(a.grad), edge.output_nr, edge.ownership_token, type(ge(a).node).__name__

    ours, theirs = both(run)
    same(ours[0], theirs[0])
    same(ours[1], theirs[1])
    assert ours[2:4] == theirs[2:4]
    assert ours[4] == "AccumulateGrad" and theirs[4] == "AccumulateGrad"
    assert GradientEdge._fields == torch.autograd.graph.GradientEdge._fields


def test_gradient_edge_errors_match_torch():
    raises_as_torch(
        lambda: get_gradient_edge(ad.ones(2)), lambda: torch.autograd.graph.get_gradient_edge(torch.ones(2))
    )
    a = ad.ones(2, requires_grad=True)
    ta = torch.ones(2, requires_grad=True)
    raises_as_torch(
        lambda: ad.autograd.grad((a * a).sum(), [get_gradient_edge(a), 3]),
        lambda: torch.autograd.grad((ta * ta).sum(), [torch.autograd.graph.get_gradient_edge(ta), 3]),
    )


def test_custom_function_outputs_are_numbered():
    class Two(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return 2 * g1 + 3 * g2

    x = ad.tensor(A, requires_grad=True)
    p, q = Two.apply(x)
    assert get_gradient_edge(q).output_nr == 1
    (g,) = ad.autograd.grad((p * q).sum(), get_gradient_edge(q))
    same(arr(g), arr(p))


def test_increment_version_matches_torch():
    def run(lib):
        x = lib.tensor(A, dtype=lib.float64, requires_grad=True)
        y = x * 1
        z = y.sin()  # saves y
        versions = [y._version]
        lib.autograd.graph.increment_version(y)
        lib.autograd.graph.increment_version([y, y])
        versions.append(y._version)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()
        c = lib.ones(2)
        lib.autograd.graph.increment_version(c)
        versions.append(c._version)
        return versions

    ours, theirs = both(run)
    assert ours == theirs
    raises_as_torch(lambda: increment_version(3), lambda: torch.autograd.graph.increment_version(3))
    a, ta = ad.ones(2), torch.ones(2)
    raises_as_torch(lambda: increment_version([a, 3]), lambda: torch.autograd.graph.increment_version([ta, 3]))
    assert a._version == ta._version == 1  # (the tensors before the bad element are bumped)


# ---------------------------------------------------------------------------------------------------------
# allow_mutation_on_saved_tensors


def test_allow_mutation_gives_the_gradient_of_the_saved_values_as_torch():
    def run(lib):
        amst = lib.autograd.graph.allow_mutation_on_saved_tensors
        a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(B, dtype=lib.float64)
        out = []
        with amst():
            y = a * 1
            z = y.sin()
            y.mul_(2)
            y.mul_(2)
            z.sum().backward(retain_graph=True)
            out.append(arr(a.grad))
            z.sum().backward()  # a second backward of the same graph
            out.append(arr(a.grad))
            out.append(arr(y))
        a.grad = None
        with amst():
            z = (a * b).sum()  # saves the constant b
            b.add_(1)
            z.backward()
            out.append(arr(a.grad))
        a.grad = None
        with amst():
            y = a * 1
            v = y[0:2]
            z = (y.exp() * y).sum()
            v.mul_(10)  # through a view
            out.append(arr(lib.autograd.grad(z, a)[0]))
            out.append(arr(y))
        return out

    ours, theirs = both(run)
    same(ours, theirs)


def test_allow_mutation_with_a_training_step_and_a_custom_function():
    class Square(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    def run(lib, square):
        lin = lib.nn.Linear(3, 2).double()
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([A, B], dtype=lib.float64))
            lin.bias.fill_(0.1)
        x = lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=lib.float64)
        with lib.autograd.graph.allow_mutation_on_saved_tensors():
            loss = (lin(x).tanh() ** 2).sum()
            with lib.no_grad():
                lin.weight.add_(1.0)  # an optimizer step before backward
            loss.backward()
            a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
            y = a * 1
            z = square.apply(y)
            y.mul_(5)
            z.sum().backward()
        return arr(lin.weight.grad), arr(lin.bias.grad), arr(a.grad)

    class TorchSquare(torch.autograd.Function):
        forward = Square.forward
        backward = Square.backward

    same(run(ad, Square), run(torch, TorchSquare))


def test_allow_mutation_errors_match_torch():
    def outside(lib):
        amst = lib.autograd.graph.allow_mutation_on_saved_tensors
        a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
        with amst():
            y = a * 1
            z = y.sin()
            y.mul_(2)
        with amst():
            z2 = (a * 1).sin()  # no write: refused outside all the same
        return z, z2, a

    (z, z2, a), (tz, tz2, ta) = both(outside)
    raises_as_torch(lambda: z.sum().backward(), lambda: tz.sum().backward())
    raises_as_torch(lambda: z2.sum().backward(), lambda: tz2.sum().backward())
    raises_as_torch(lambda: (z2 * 2).sum().backward(), lambda: (tz2 * 2).sum().backward())  # extended outside
    raises_as_torch(lambda: ad.autograd.grad(z2.sum() * 2, a), lambda: torch.autograd.grad(tz2.sum() * 2, ta))
    (a * a).sum().backward()  # a graph recorded after the context: as usual
    same(arr(a.grad), 2 * np.array(A))

    def nested(lib):
        with lib.autograd.graph.allow_mutation_on_saved_tensors():
            lib.autograd.graph.allow_mutation_on_saved_tensors().__enter__()

    raises_as_torch(lambda: nested(ad), lambda: nested(torch))
    # a graph recorded before the context and written inside it raises the usual error
    a = ad.tensor(A, requires_grad=True)
    y = a * 1
    z = y.sin()
    with allow_mutation_on_saved_tensors():
        y.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_allow_mutation_raises_where_ad_reads_values_from_tensors_never_a_wrong_gradient():
    a = ad.tensor(A, requires_grad=True)
    with allow_mutation_on_saved_tensors():
        y = a * 1
        z = (y * y * y).sum()
        y.mul_(5)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            ad.autograd.grad(z, a, create_graph=True)  # the differentiable sweep reads the tensors
        (g,) = ad.autograd.grad(z, a)
        same(arr(g), 3 * np.array(A) ** 2)
    rng = np.random.default_rng(2)
    w = ad.tensor(rng.standard_normal((130, 130)), requires_grad=True)  # BIG_ROW elements and more
    with allow_mutation_on_saved_tensors():
        y = w * 1
        z = (y.tanh() * y).sum()
        y.mul_(3)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.backward()


# ---------------------------------------------------------------------------------------------------------
# InplaceFunction, NestedIOFunction


def test_inplace_function_keeps_its_flag_and_applies():
    from ad.autograd.function import InplaceFunction

    class Double(InplaceFunction):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with pytest.warns(DeprecationWarning):
        assert Double(inplace=True).inplace is True
    with pytest.warns(DeprecationWarning):
        assert Double().inplace is False
    x = ad.tensor(A, requires_grad=True)
    y = Double.apply(x)
    assert y.grad_fn.name() == "DoubleBackward"
    y.sum().backward()
    same(arr(x.grad), [2.0, 2.0, 2.0])


def test_nested_io_function_runs_forward_and_backward_extended():
    from ad.autograd.function import NestedIOFunction

    class MulAdd(NestedIOFunction):
        def forward_extended(self, pair, z):
            x, y = pair
            self.save_for_backward(x, y, z)
            return x * y * z, [x + y]

        def backward_extended(self, g_prod, g_sum):
            x, y, z = self.saved_tensors
            return (g_prod * y * z + g_sum[0], g_prod * x * z + g_sum[0]), g_prod * x * y

    x = ad.tensor(A, requires_grad=True)
    y = ad.tensor(B, requires_grad=True)
    z = ad.tensor([2.0, 3.0, 4.0], requires_grad=True)
    with pytest.warns(DeprecationWarning):
        fn = MulAdd()
    prod, (total,) = fn((x, y), z)
    assert prod.grad_fn.name() == "MulAddBackward"
    same(arr(prod), np.array(A) * np.array(B) * [2, 3, 4])
    (prod.sum() + (total * total).sum()).backward()
    xa, ya, za = np.array(A), np.array(B), np.array([2.0, 3.0, 4.0])
    same(arr(x.grad), ya * za + 2 * (xa + ya))
    same(arr(y.grad), xa * za + 2 * (xa + ya))
    same(arr(z.grad), xa * ya)
    with pytest.raises(AttributeError, match="call an instance"):
        MulAdd.apply((x, y), z)


# ---------------------------------------------------------------------------------------------------------
# DistributedSampler


@pytest.mark.parametrize(
    "kw",
    [
        dict(num_replicas=3, rank=0, shuffle=False),
        dict(num_replicas=3, rank=2, shuffle=False),
        dict(num_replicas=3, rank=2, shuffle=False, drop_last=True),
        dict(num_replicas=4, rank=1, shuffle=False),
        dict(num_replicas=4, rank=3, shuffle=False, drop_last=True),
        dict(num_replicas=15, rank=14, shuffle=False),  # more ranks than indices: repeated padding
    ],
)
def test_distributed_sampler_unshuffled_matches_torch(kw):
    ours = ad.utils.data.DistributedSampler(list(range(10)), **kw)
    theirs = torch.utils.data.DistributedSampler(list(range(10)), **kw)
    assert list(ours) == list(theirs)
    assert (len(ours), ours.num_samples, ours.total_size) == (len(theirs), theirs.num_samples, theirs.total_size)


def test_distributed_sampler_shuffle_partitions_the_same_permutation_on_every_rank():
    data = list(range(11))
    shares = [list(ad.utils.data.DistributedSampler(data, num_replicas=3, rank=r, seed=7)) for r in range(3)]
    assert all(len(s) == 4 for s in shares)
    flat = [i for k in range(4) for s in shares for i in s[k : k + 1]]
    assert sorted(set(flat)) == data and len(flat) == 12  # one index repeated as padding
    again = list(ad.utils.data.DistributedSampler(data, num_replicas=3, rank=1, seed=7))
    assert again == shares[1]
    sampler = ad.utils.data.DistributedSampler(data, num_replicas=3, rank=1, seed=7)
    sampler.set_epoch(1)
    assert sampler.epoch == 1 and list(sampler) != shares[1]
    dropped = [list(ad.utils.data.DistributedSampler(data, num_replicas=3, rank=r, drop_last=True)) for r in range(3)]
    assert all(len(s) == 3 for s in dropped) and len({i for s in dropped for i in s}) == 9


def test_distributed_sampler_defaults_and_errors_match_torch(monkeypatch):
    for kw in (dict(), dict(num_replicas=2), dict(num_replicas=2, rank=2), dict(num_replicas=2, rank=-1)):
        raises_as_torch(
            lambda kw=kw: ad.utils.data.DistributedSampler(list(range(4)), **kw),
            lambda kw=kw: torch.utils.data.DistributedSampler(list(range(4)), **kw),
        )
    monkeypatch.setattr(ad.distributed, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(ad.distributed, "get_rank", lambda group=None: 1)
    sampler = ad.utils.data.DistributedSampler(list(range(8)), shuffle=False)
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (2, 1, [1, 3, 5, 7])
    dataset = ad.utils.data.TensorDataset(ad.arange(8.0))
    batches = [b[0].tolist() for b in ad.utils.data.DataLoader(dataset, batch_size=2, sampler=sampler)]
    assert batches == [[1.0, 3.0], [5.0, 7.0]]


# ---------------------------------------------------------------------------------------------------------
# replace_all_batch_norm_modules_, convert_conv*_weight_memory_format, swap_in_optimizer_params_and_state


def test_replace_all_batch_norm_modules_matches_torch():
    def run(lib):
        net = lib.nn.Sequential(
            lib.nn.BatchNorm1d(3), lib.nn.Sequential(lib.nn.BatchNorm2d(4, affine=False)), lib.nn.InstanceNorm1d(3)
        )
        net[2].track_running_stats = True
        assert lib.func.replace_all_batch_norm_modules_(net) is net
        state = [
            (m.running_mean is None, m.running_var is None, m.track_running_stats)
            for m in net.modules()
            if hasattr(m, "running_mean")
        ]
        bn = lib.nn.BatchNorm1d(3).double().eval()
        lib.func.replace_all_batch_norm_modules_(bn)
        x = lib.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0], [2.0, 2.0, 2.0]], dtype=lib.float64)
        return state, arr(bn(x)), sorted(dict(net.named_buffers()))

    ours, theirs = both(run)
    assert ours[0] == theirs[0] and ours[2] == theirs[2]
    same(ours[1], theirs[1], 1e-5)
    raises_as_torch(
        lambda: ad.func.replace_all_batch_norm_modules_(3), lambda: torch.func.replace_all_batch_norm_modules_(3)
    )


def test_convert_conv_weight_memory_format_keeps_the_module_and_raises_as_torch():
    net = ad.nn.Sequential(ad.nn.Conv2d(2, 3, 3), ad.nn.ConvTranspose2d(3, 2, 3), ad.nn.Linear(6, 2))
    weight = net[0].weight
    x = ad.randn(1, 2, 6, 6)
    before = arr(net(x))
    assert ad.nn.utils.convert_conv2d_weight_memory_format(net, ad.channels_last) is net
    assert net[0].weight is weight and weight.requires_grad
    same(arr(net(x)), before, 0)
    conv3 = ad.nn.Conv3d(2, 3, 3)
    assert ad.nn.utils.convert_conv3d_weight_memory_format(conv3, ad.channels_last_3d) is conv3
    assert ad.nn.utils.convert_conv2d_weight_memory_format(ad.nn.Conv1d(2, 3, 3), ad.channels_last) is not None
    cases = [
        ("2", "Conv2d", "channels_last_3d"),
        ("3", "Conv3d", "channels_last"),
        ("3", "Conv3d", "preserve_format"),
    ]

    def convert(lib, rank, cls, fmt):
        name = f"convert_conv{rank}d_weight_memory_format"
        return getattr(lib.nn.utils, name)(getattr(lib.nn, cls)(2, 3, 3), getattr(lib, fmt))

    for case in cases:
        raises_as_torch(lambda case=case: convert(ad, *case), lambda case=case: convert(torch, *case))


def test_swap_in_optimizer_params_and_state_matches_torch():
    def run(lib):
        lin = lib.nn.Linear(2, 1).double()
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[0.5, -1.0]], dtype=lib.float64))
            lin.bias.fill_(0.25)
        opt = lib.optim.Adam(lin.parameters(), lr=0.1)
        lin(lib.ones(1, 2, dtype=lib.float64)).sum().backward()
        opt.step()
        params = {n: p.detach().clone().requires_grad_() for n, p in lin.named_parameters()}
        for p in params.values():
            p.grad = lib.ones_like(p)
        osd = opt.state_dict()
        swap_state = {
            "state": {k: {kk: vv.clone() for kk, vv in v.items()} for k, v in osd["state"].items()},
            "param_groups": copy.deepcopy(osd["param_groups"]),
        }
        swap_state["param_groups"][0]["lr"] = 0.5
        with lib.optim.swap_in_optimizer_params_and_state(opt, params, swap_state):
            assert opt.param_groups[0]["params"][0] is params["weight"]
            opt.step()
            opt.param_groups[0]["lr"] = 7.0  # dropped on exit
        restored = opt.param_groups[0]["params"][0] is lin.weight and opt.param_groups[0]["lr"] == 0.1
        return (
            arr(params["weight"]),
            arr(lin.weight),
            arr(swap_state["state"][0]["exp_avg"]),
            float(swap_state["state"][0]["step"]),
            float(opt.state[lin.weight]["step"]),
            swap_state["param_groups"][0]["lr"],
            restored,
        )

    ours, theirs = both(run)
    same(ours, theirs)
    raises_as_torch(  # (before a step: no state)
        lambda: ad.optim.swap_in_optimizer_params_and_state(
            ad_opt := ad.optim.Adam(ad.nn.Linear(2, 1).parameters()), {}, ad_opt.state_dict()
        ).__enter__(),
        lambda: torch.optim.swap_in_optimizer_params_and_state(
            t_opt := torch.optim.Adam(torch.nn.Linear(2, 1).parameters()), {}, t_opt.state_dict()
        ).__enter__(),
    )


def test_allow_mutation_keeps_double_backward_through_a_function_saved_output():
    def run(lib):
        class Exp(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, g):
                (y,) = ctx.saved_tensors
                return g * y

        a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
        with lib.autograd.graph.allow_mutation_on_saved_tensors():
            (g,) = lib.autograd.grad(Exp.apply(a).sum(), a, create_graph=True)
            (gg,) = lib.autograd.grad(g.sum(), a)
        return arr(g), arr(gg)

    ours, theirs = both(run)
    same(ours, theirs)
    same(ours[1], np.exp(A))
