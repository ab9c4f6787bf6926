"""ad.nn.Module's API against torch.nn.Module: registration, traversal order, train/eval, zero_grad,
requires_grad_, apply, to, state_dict/load_state_dict (strict, errors, nothing half-loaded), hooks,
containers and repr."""

import copy
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")


def build(nn):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.register_buffer("scale", (nn.Linear(1, 1).weight * 0 + 2).detach())
            self.register_buffer("tmp", (nn.Linear(1, 1).weight * 0).detach(), persistent=False)
            self.gain = nn.Parameter(nn.Linear(4, 1).bias.detach() * 0 + 1)

        def forward(self, x):
            return self.fc(x) * self.gain * self.scale

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Tanh()])
            self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())})
            self.shared = self.layers[0]  # the same module twice
            self.extra = nn.ParameterList([nn.Parameter(nn.Linear(2, 2).weight.detach().clone())])

        def forward(self, x):
            h = self.block(x)
            for layer in self.layers:
                h = layer(h)
            return self.heads["a"](h) + self.heads["b"](h)

    return Net()


def test_traversal_names_and_order_match_torch():
    a, t = build(ad.nn), build(torch.nn)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in a.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in a.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in a.named_children()] == [n for n, _ in t.named_children()]
    assert list(a.state_dict()) == list(t.state_dict())
    assert [n for n, _ in a.named_parameters(remove_duplicate=False)] == [
        n for n, _ in t.named_parameters(remove_duplicate=False)
    ]
    assert [n for n, _ in a.block.named_parameters(prefix="p", recurse=False)] == ["p.gain"]
    assert repr(a) == repr(t.double()).replace("torch.float64", "float64")
    assert a.get_submodule("heads.b.0") is a.heads["b"][0]
    assert a.get_parameter("block.fc.weight") is a.block.fc.weight
    assert a.get_buffer("block.scale") is a.block.scale


def test_forward_and_state_dict_round_trip_match_torch():
    a, t = build(ad.nn), build(torch.nn)
    a.double()
    t.double()
    missing = a.load_state_dict({k: ad.tensor(v.numpy()) for k, v in t.state_dict().items()})
    assert repr(missing) == "<All keys matched successfully>"
    x = np.random.default_rng(0).standard_normal((5, 3))
    ya, yt = a(ad.tensor(x)), t(torch.tensor(x))
    np.testing.assert_allclose(ya.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    ya.sum().backward()
    yt.sum().backward()
    for (n, pa), (_, pt) in zip(a.named_parameters(), t.named_parameters()):
        if pt.grad is None:  # a parameter forward does not use
            assert pa.grad is None, n
            continue
        np.testing.assert_allclose(pa.grad.numpy(), pt.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=n)


def test_load_state_dict_errors_change_nothing():
    m = ad.nn.Linear(2, 3)
    before = m.weight.detach().numpy().copy()
    bad = {"weight": ad.ones(3, 3), "bias": ad.ones(3), "x": ad.ones(1)}
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(bad)
    tm = torch.nn.Linear(2, 3)
    with pytest.raises(RuntimeError) as terr:
        tm.load_state_dict({"weight": torch.ones(3, 3), "bias": torch.ones(3), "x": torch.ones(1)})
    assert str(err.value).replace("ad.Size", "torch.Size") == str(terr.value)
    np.testing.assert_array_equal(m.weight.detach().numpy(), before)
    np.testing.assert_array_equal(m.bias.detach().numpy() == 1, np.zeros(3, bool))  # bias untouched too
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        m.load_state_dict({"weight": ad.ones(3, 2)})
    result = m.load_state_dict({"weight": ad.ones(3, 2), "y": ad.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["y"]
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones((3, 2)))
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        m.load_state_dict([1, 2])


def test_state_dict_shares_data_and_load_copies():
    m = ad.nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    with ad.no_grad():
        m.weight.mul_(0.0)
    np.testing.assert_array_equal(sd["weight"].numpy(), np.zeros((2, 2)))
    assert m.state_dict(keep_vars=True)["weight"] is m.weight
    src = {"weight": ad.full((2, 2), 3.0), "bias": ad.zeros(2)}
    m.load_state_dict(src)
    src["weight"].fill_(5.0)
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.full((2, 2), 3.0))
    m.load_state_dict(src, assign=True)
    assert isinstance(m.weight, ad.nn.Parameter) and m.weight.requires_grad
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.full((2, 2), 5.0))  # taken, not copied


def test_setattr_registration_and_errors():
    m = ad.nn.Module()
    m.w = ad.nn.Parameter(ad.ones(2))
    m.sub = ad.nn.Linear(1, 1)
    m.register_buffer("buf", ad.zeros(1))
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"] and list(m._buffers) == ["buf"]
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = ad.ones(2)
    m.buf = ad.ones(1)  # a registered buffer takes a new tensor
    with pytest.raises(TypeError, match="cannot assign 'int' as buffer 'buf'"):
        m.buf = 3
    with pytest.raises(KeyError, match="attribute 'plain' already exists"):
        m.register_buffer("plain", ad.ones(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' object to parameter 'p'"):
        m.register_parameter("p", ad.ones(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        _ = m.nope
    del m.w
    assert "w" not in m._parameters
    m.w = None
    assert m.w is None

    class Early(ad.nn.Module):
        def __init__(self):
            self.p = ad.nn.Parameter(ad.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        ad.nn.Module()(1)


def test_train_eval_zero_grad_requires_grad_apply():
    m = ad.nn.Sequential(ad.nn.Linear(2, 2), ad.nn.Dropout(0.5))
    assert m.training and m[1].training
    m.eval()
    assert not m.training and not m[1].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train("yes")
    m(ad.ones(3, 2)).sum().backward() if hasattr(ad.nn.functional, "dropout") else m[0](ad.ones(3, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m[0].weight.grad.numpy(), np.zeros((2, 2)))
    m.zero_grad()
    assert m[0].weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Dropout", "Sequential"]


def test_forward_hooks_match_torch():
    def run(nn, lib):
        m = nn.Linear(2, 2)
        calls = []
        h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
        h2 = m.register_forward_hook(lambda mod, args, out: out + 1)
        m.register_forward_hook(lambda mod, args, out: calls.append("second"), prepend=False)
        m.register_forward_hook(lambda mod, args, out: calls.append("first"), prepend=True)
        with lib.no_grad():
            m.weight.copy_(lib.ones(2, 2))
            m.bias.copy_(lib.zeros(2))
        y1 = m(lib.ones(1, 2)).detach().numpy().copy()
        h1.remove()
        h2.remove()
        y2 = m(lib.ones(1, 2)).detach().numpy().copy()
        return y1, y2, calls

    a, t = run(ad.nn, ad), run(torch.nn, torch)
    np.testing.assert_array_equal(a[0], t[0])
    np.testing.assert_array_equal(a[1], t[1])
    assert a[2] == t[2]


def test_full_backward_hooks_match_torch():
    def run(nn, lib):
        m = nn.Linear(3, 2).double()
        with lib.no_grad():
            m.weight.copy_(lib.tensor(np.arange(6.0).reshape(2, 3)))
        seen = {}

        def pre(mod, grad_output):
            seen["pre"] = grad_output[0].detach().numpy().copy()
            return (grad_output[0] * 2,)

        def post(mod, grad_input, grad_output):
            seen["gi"] = grad_input[0].detach().numpy().copy()
            seen["go"] = grad_output[0].detach().numpy().copy()
            return (grad_input[0] * 10,)

        m.register_full_backward_pre_hook(pre)
        m.register_full_backward_hook(post)
        x = lib.tensor(np.ones((4, 3)), requires_grad=True)
        (m(x) * lib.tensor(np.arange(8.0).reshape(4, 2))).sum().backward()
        return seen, x.grad.numpy(), m.weight.grad.numpy()

    (sa, xa, wa), (st, xt, wt) = run(ad.nn, ad), run(torch.nn, torch)
    for key in ("pre", "gi", "go"):
        np.testing.assert_allclose(sa[key], st[key], err_msg=key)
    np.testing.assert_allclose(xa, xt)
    np.testing.assert_allclose(wa, wt)


def test_containers():
    seq = ad.nn.Sequential(ad.nn.Linear(2, 3), ad.nn.ReLU(), ad.nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], ad.nn.Linear) and len(seq[:2]) == 2
    seq.append(ad.nn.Tanh())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Tanh"]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError):
        seq[5]
    od = ad.nn.Sequential(OrderedDict(first=ad.nn.Linear(2, 2), act=ad.nn.ReLU()))
    assert list(od.state_dict()) == ["first.weight", "first.bias"]
    ml = ad.nn.ModuleList([ad.nn.Linear(1, 1)])
    ml += [ad.nn.Linear(1, 1)]
    ml.insert(0, ad.nn.Tanh())
    assert [type(m).__name__ for m in ml] == ["Tanh", "Linear", "Linear"]
    with pytest.raises(TypeError, match="should be called with an iterable"):
        ml.extend(ad.nn.Linear(1, 1))
    md = ad.nn.ModuleDict([("a", ad.nn.Linear(1, 1))])
    md["b"] = ad.nn.ReLU()
    assert list(md.keys()) == ["a", "b"] and "a" in md and md.pop("a") is not None and len(md) == 1
    pl = ad.nn.ParameterList([ad.ones(2), ad.nn.Parameter(ad.zeros(3))])
    assert all(isinstance(p, ad.nn.Parameter) for p in pl) and len(list(pl.parameters())) == 2
    pd = ad.nn.ParameterDict({"x": ad.ones(1)})
    pd["y"] = ad.nn.Parameter(ad.zeros(1))
    assert [n for n, _ in pd.named_parameters()] == ["x", "y"] and isinstance(pd["x"], ad.nn.Parameter)
    tpl = torch.nn.ParameterList([torch.ones(2, dtype=torch.float64)])
    assert repr(ad.nn.ParameterList([ad.ones(2)])) == repr(tpl).replace("torch.float64", "float64")


def test_parameter_semantics():
    t = ad.ones(3)
    p = ad.nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, ad.Tensor)
    assert np.shares_memory(p.numpy(force=True), t.numpy())
    assert repr(p) == "Parameter containing:\n" + repr(ad.tensor(np.ones(3), requires_grad=True))
    y = p * 2  # ops on parameters give plain tensors
    assert type(y) is ad.Tensor
    assert not ad.nn.Parameter(ad.ones(1), requires_grad=False).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        ad.nn.Parameter(ad.tensor([1, 2]))


def test_module_copy_and_pickle():
    m = ad.nn.Sequential(ad.nn.Linear(2, 3), ad.nn.Tanh())
    m(ad.ones(1, 2)).sum().backward()  # parameters now have a recorded history and grads
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert repr(clone) == repr(m)
        for (_, p), (_, q) in zip(m.named_parameters(), clone.named_parameters()):
            assert q is not p and isinstance(q, ad.nn.Parameter) and q.requires_grad
            np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy())
        x = ad.tensor([[0.3, -0.2]])
        np.testing.assert_array_equal(clone(x).detach().numpy(), m(x).detach().numpy())


def test_module_to_dtype():
    m = ad.nn.Linear(2, 2)
    w = m.weight
    m.to(ad.float32)
    assert m.weight is w and w.dtype == np.float32
    assert m(ad.ones(1, 2, dtype=ad.float32)).dtype == np.float32
    m.to(dtype=ad.float64, device="cpu")
    assert w.dtype == np.float64
    with pytest.raises(TypeError, match="only accepts floating point"):
        m.to(ad.int64)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(3)
    values = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    grads = [rng.standard_normal((3, 2)), rng.standard_normal(4)]

    def run(lib):
        params = [lib.tensor(v, requires_grad=True) for v in values]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g)
        total = lib.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        return float(total), [p.grad.numpy().copy() for p in params]

    (ta, ga), (tt, gt) = run(ad), run(torch)
    assert abs(ta - tt) < 1e-12 * max(1.0, tt)
    for a, t in zip(ga, gt):
        np.testing.assert_allclose(a, t, rtol=1e-12)


def test_clip_grad_norm_of_an_inf_gradient_is_torchs_without_a_warning():
    # the total norm is inf, the factor 0: the inf element becomes NaN and the rest 0, silently as in torch
    def run(lib):
        p = lib.tensor([1.0, 1.0, 1.0], requires_grad=True)
        p.grad = lib.tensor([1.0, float("inf"), 2.0])
        total = lib.nn.utils.clip_grad_norm_([p], 1.0)
        return float(total), p.grad.numpy().copy()

    (tt, gt) = run(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ta, ga = run(ad)
    assert ta == tt == float("inf")
    np.testing.assert_array_equal(ga, gt)


def test_clip_grad_value_and_vector_round_trip():
    p = ad.tensor([[1.0, -2.0], [3.0, 0.1]], requires_grad=True)
    p.grad = ad.tensor([[5.0, -5.0], [0.5, -0.2]])
    ad.nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [[1.0, -1.0], [0.5, -0.2]])
    m = ad.nn.Linear(3, 2)
    vec = ad.nn.utils.parameters_to_vector(m.parameters())
    assert vec.shape == (8,)
    ad.nn.utils.vector_to_parameters(vec * 2, m.parameters())
    np.testing.assert_allclose(
        ad.nn.utils.parameters_to_vector(m.parameters()).detach().numpy(), 2 * vec.detach().numpy()
    )
    with pytest.raises(RuntimeError, match="non-finite"):
        q = ad.tensor([1.0], requires_grad=True)
        q.grad = ad.tensor([float("nan")])
        ad.nn.utils.clip_grad_norm_([q], 1.0, error_if_nonfinite=True)
