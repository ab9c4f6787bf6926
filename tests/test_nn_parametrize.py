"""``ad.nn.utils.parametrize`` and ``ad.nn.utils.parametrizations`` against torch's: parameter and state-dict
names, values and gradients of the originals (torch's originals and buffers copied in, float64), assignment
through ``right_inverse``, removal, caching, transfer, copies, and torch's exception classes."""

import copy
import pickle

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")
from torch.nn.utils import parametrizations as TPZ  # noqa: E402
from torch.nn.utils import parametrize as TP  # noqa: E402

P = ad.nn.utils.parametrize
PZ = ad.nn.utils.parametrizations
TOL = {"rtol": 1e-9, "atol": 1e-11}


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _copy_state(t_module, a_module):
    """Load torch's state (every key, buffers included) into the ad module."""
    a_module.load_state_dict({k: ad.tensor(v.detach().numpy().copy()) for k, v in t_module.state_dict().items()})


def _check_grads(t_module, a_module, t_x, a_x):
    t_module(t_x).pow(2).sum().backward()
    a_module(a_x).pow(2).sum().backward()
    t_grads = {n: p.grad for n, p in t_module.named_parameters()}
    a_grads = {n: p.grad for n, p in a_module.named_parameters()}
    assert list(t_grads) == list(a_grads)
    for n in t_grads:
        np.testing.assert_allclose(_np(a_grads[n]), _np(t_grads[n]), **TOL, err_msg=n)


class _Symmetric:
    """The same parametrization written for each library: X -> triu(X) + triu(X, 1)^T, right inverse triu."""

    @staticmethod
    def make(lib, with_inverse=True):
        class Symmetric(lib.nn.Module):
            def forward(self, X):
                return X.triu() + X.triu(1).transpose(-1, -2)

        class SymmetricInv(Symmetric):
            def right_inverse(self, A):
                return A.triu()

        return SymmetricInv() if with_inverse else Symmetric()


class _Split:
    @staticmethod
    def make(lib):
        class Split(lib.nn.Module):
            def forward(self, a, b):
                return a * b

            def right_inverse(self, X):
                return X.sign() * X.abs().sqrt(), X.abs().sqrt()

        return Split()


def _pair(in_f, out_f, seed=0):
    t = torch.nn.Linear(in_f, out_f).double()
    a = ad.nn.Linear(in_f, out_f, dtype=ad.float64)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        t.weight.copy_(torch.randn(out_f, in_f, generator=g, dtype=torch.float64))
        t.bias.copy_(torch.randn(out_f, generator=g, dtype=torch.float64))
    a.load_state_dict({k: ad.tensor(v.detach().numpy().copy()) for k, v in t.state_dict().items()})
    return t, a


def test_register_names_values_grads_and_class():
    t, a = _pair(3, 3)
    w = a.weight
    TP.register_parametrization(t, "weight", _Symmetric.make(torch))
    P.register_parametrization(a, "weight", _Symmetric.make(ad))
    assert type(a).__name__ == "ParametrizedLinear" and isinstance(a, ad.nn.Linear)
    assert P.type_before_parametrizations(a) is ad.nn.Linear
    assert P.type_before_parametrizations(ad.nn.Linear(1, 1)) is ad.nn.Linear
    assert P.is_parametrized(a) and P.is_parametrized(a, "weight") and not P.is_parametrized(a, "bias")
    assert list(a.state_dict()) == list(t.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in t.named_parameters()]
    plist = a.parametrizations.weight
    assert plist.original is w  # one original: the Parameter object is kept
    assert (plist.is_tensor, plist.ntensors, plist.unsafe) == (True, 1, False)
    np.testing.assert_allclose(_np(plist.original), _np(t.parametrizations.weight.original), **TOL)
    np.testing.assert_allclose(_np(a.weight), _np(t.weight), **TOL)
    x = np.random.default_rng(1).standard_normal((4, 3))
    _check_grads(t, a, torch.tensor(x), ad.tensor(x))
    # a second module's class is its own (the properties are per module)
    b = P.register_parametrization(ad.nn.Linear(2, 2), "weight", _Symmetric.make(ad))
    assert type(b) is not type(a) and not hasattr(ad.nn.Linear, "weight")


def test_assignment_runs_right_inverse_and_keeps_the_original():
    t, a = _pair(3, 3)
    TP.register_parametrization(t, "weight", _Symmetric.make(torch))
    P.register_parametrization(a, "weight", _Symmetric.make(ad))
    original = a.parametrizations.weight.original
    value = np.arange(9.0).reshape(3, 3)
    t.weight = torch.tensor(value)
    a.weight = ad.tensor(value)
    assert a.parametrizations.weight.original is original
    np.testing.assert_allclose(_np(original), _np(t.parametrizations.weight.original))
    np.testing.assert_allclose(_np(a.weight), _np(t.weight))
    with pytest.raises(ValueError, match="has dtype"):
        a.weight = ad.tensor(value, dtype=ad.float32)
    with pytest.raises(KeyError, match="already exists"):  # a Parameter cannot replace the property
        a.weight = ad.nn.Parameter(ad.ones(3, 3))
    # no right_inverse: assignment is refused
    c = P.register_parametrization(ad.nn.Linear(3, 3), "weight", _Symmetric.make(ad, with_inverse=False))
    with pytest.raises(RuntimeError, match="does not implement right_inverse"):
        c.weight = ad.ones(3, 3)


def test_remove_leave_parametrized_and_not():
    for leave in (True, False):
        t, a = _pair(3, 3)
        TP.register_parametrization(t, "weight", _Symmetric.make(torch))
        P.register_parametrization(a, "weight", _Symmetric.make(ad))
        original = a.parametrizations.weight.original
        TP.remove_parametrizations(t, "weight", leave_parametrized=leave)
        P.remove_parametrizations(a, "weight", leave_parametrized=leave)
        assert type(a) is ad.nn.Linear and not P.is_parametrized(a) and "parametrizations" not in a._modules
        assert a.weight is original and isinstance(a.weight, ad.nn.Parameter)
        assert list(a.state_dict()) == list(t.state_dict())
        np.testing.assert_allclose(_np(a.weight), _np(t.weight), **TOL)
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        P.remove_parametrizations(ad.nn.Linear(2, 2), "weight")


def test_several_originals_chained_parametrizations_and_buffers():
    t, a = _pair(3, 3)
    TP.register_parametrization(t, "weight", _Split.make(torch))
    P.register_parametrization(a, "weight", _Split.make(ad))
    TP.register_parametrization(t, "weight", _Symmetric.make(torch))
    P.register_parametrization(a, "weight", _Symmetric.make(ad))
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in t.named_parameters()] == [
        "bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    plist = a.parametrizations.weight
    assert (plist.is_tensor, plist.ntensors, len(plist)) == (False, 2, 2)
    for i in range(2):
        np.testing.assert_allclose(_np(getattr(plist, f"original{i}")),
                                   _np(getattr(t.parametrizations.weight, f"original{i}")), **TOL)
    x = np.random.default_rng(2).standard_normal((2, 3))
    _check_grads(t, a, torch.tensor(x), ad.tensor(x))
    value = np.eye(3) * 4
    t.weight = torch.tensor(value)
    a.weight = ad.tensor(value)
    np.testing.assert_allclose(_np(plist.original0), _np(t.parametrizations.weight.original0), **TOL)
    with pytest.raises(ValueError, match="sequence of tensors"):
        P.remove_parametrizations(a, "weight", leave_parametrized=False)
    P.remove_parametrizations(a, "weight")
    TP.remove_parametrizations(t, "weight")
    assert isinstance(a.weight, ad.nn.Parameter) and a.weight.requires_grad
    np.testing.assert_allclose(_np(a.weight), _np(t.weight), **TOL)
    # a buffer stays a buffer
    bn = P.register_parametrization(ad.nn.BatchNorm1d(3), "running_mean", ad.nn.Identity())
    assert "parametrizations.running_mean.original" in dict(bn.named_buffers())
    assert not isinstance(bn.parametrizations.running_mean.original, ad.nn.Parameter)


def test_registration_errors_match_torch():
    class Shrink(ad.nn.Module):
        def forward(self, X):
            return X[:2]

    class ToFloat(ad.nn.Module):
        def forward(self, X):
            return X.float()

    class Scalar(ad.nn.Module):
        def forward(self, X):
            return 3

    class BadInverse(ad.nn.Module):
        def forward(self, X):
            return X

        def right_inverse(self, X):
            return 3

    with pytest.raises(ValueError, match="may not change the shape"):
        P.register_parametrization(ad.nn.Linear(3, 3), "weight", Shrink())
    with pytest.raises(ValueError, match="may not change the dtype"):
        P.register_parametrization(ad.nn.Linear(3, 3, dtype=ad.float64), "weight", ToFloat())
    with pytest.raises(ValueError, match="must return a tensor"):
        P.register_parametrization(ad.nn.Linear(3, 3), "weight", Scalar())
    with pytest.raises(ValueError, match="must return a Tensor or a Sequence"):
        P.register_parametrization(ad.nn.Linear(3, 3), "weight", BadInverse())
    with pytest.raises(ValueError, match="with name 'nope'"):
        P.register_parametrization(ad.nn.Linear(3, 3), "nope", Shrink())
    m = P.register_parametrization(ad.nn.Linear(3, 3), "weight", Shrink(), unsafe=True)
    assert m.weight.shape == (2, 3) and m.parametrizations.weight.unsafe
    with pytest.raises(AttributeError):
        del m.weight


def test_cached_transfer_copy_and_pickle():
    a = P.register_parametrization(ad.nn.Linear(3, 3), "weight", _Symmetric.make(ad))
    with P.cached():
        assert a.weight is a.weight
    assert a.weight is not a.weight
    b = ad.nn.Linear(3, 3)
    P.transfer_parametrizations_and_params(a, b)
    assert P.is_parametrized(b, "weight")
    assert b.parametrizations.weight.original is a.parametrizations.weight.original
    assert b.parametrizations.weight[0] is a.parametrizations.weight[0]
    np.testing.assert_array_equal(_np(b.weight), _np(a.weight))
    c = ad.nn.Linear(3, 3)
    assert P.transfer_parametrizations_and_params(ad.nn.Linear(3, 3), c) is c and not P.is_parametrized(c)
    d = copy.deepcopy(a)
    assert type(d) is type(a) and d.parametrizations.weight.original is not a.parametrizations.weight.original
    np.testing.assert_array_equal(_np(d.weight), _np(a.weight))
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        pickle.dumps(a)


def test_optimizer_steps_the_original():
    a = P.register_parametrization(ad.nn.Linear(3, 3), "weight", _Symmetric.make(ad))
    opt = ad.optim.SGD(a.parameters(), lr=0.1)
    before = _np(a.parametrizations.weight.original).copy()
    a(ad.ones(2, 3)).sum().backward()
    opt.step()
    assert not np.allclose(before, _np(a.parametrizations.weight.original))
    w = _np(a.weight)
    np.testing.assert_allclose(w, w.T)


# ------------------------------------------------------------------ parametrizations

@pytest.mark.parametrize("shape", [(3, 3), (5, 3), (3, 5)])
@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("trivial", [True, False])
def test_orthogonal_values_and_grads(shape, orthogonal_map, trivial):
    t, a = _pair(shape[1], shape[0], seed=3)
    TPZ.orthogonal(t, orthogonal_map=orthogonal_map, use_trivialization=trivial)
    PZ.orthogonal(a, orthogonal_map=orthogonal_map, use_trivialization=trivial)
    assert list(a.state_dict()) == list(t.state_dict())
    assert a.parametrizations.weight[0].orthogonal_map.name == orthogonal_map
    t_base = t.parametrizations.weight[0].base if trivial else None
    if trivial and shape[0] == shape[1]:  # the QR of the weight (deterministic; tall ones are completed at random)
        np.testing.assert_allclose(_np(a.parametrizations.weight[0].base), _np(t_base), **TOL)
    if not trivial and orthogonal_map == "householder":  # geqrf's reflectors
        np.testing.assert_allclose(_np(a.parametrizations.weight.original),
                                   _np(t.parametrizations.weight.original), **TOL)
    w = _np(a.weight)
    gram = w @ w.T if shape[0] < shape[1] else w.T @ w
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-12)
    # with torch's state (a moved original, torch's base) both give the same weight and gradients
    with torch.no_grad():
        t.parametrizations.weight.original.add_(0.1 * torch.randn(shape, generator=torch.Generator().manual_seed(4),
                                                                  dtype=torch.float64))
    _copy_state(t, a)
    np.testing.assert_allclose(_np(a.weight), _np(t.weight), **TOL)
    x = np.random.default_rng(5).standard_normal((2, shape[1]))
    _check_grads(t, a, torch.tensor(x), ad.tensor(x))


def test_orthogonal_assignment_defaults_and_errors():
    rng = np.random.default_rng(6)
    m = PZ.orthogonal(ad.nn.Linear(3, 3, dtype=ad.float64))
    assert m.parametrizations.weight[0].orthogonal_map.name == "matrix_exp"
    assert PZ.orthogonal(ad.nn.Linear(3, 5)).parametrizations.weight[0].orthogonal_map.name == "householder"
    A = rng.standard_normal((3, 3))
    m.weight = ad.tensor(A)  # the orthogonal factor of A becomes the base, the original -I
    q, r = np.linalg.qr(A)
    q = q * np.sign(np.diag(r))
    np.testing.assert_allclose(_np(m.weight), q, **TOL)
    np.testing.assert_allclose(_np(m.parametrizations.weight.original), -np.eye(3))
    tall = PZ.orthogonal(ad.nn.Linear(2, 5, dtype=ad.float64), orthogonal_map="cayley")
    B = rng.standard_normal((5, 2))
    tall.weight = ad.tensor(B)
    base = _np(tall.parametrizations.weight[0].base)
    np.testing.assert_allclose(base.T @ base, np.eye(5), atol=1e-12)
    q, r = np.linalg.qr(B)
    np.testing.assert_allclose(_np(tall.weight), q * np.sign(np.diag(r)), **TOL)
    plain = PZ.orthogonal(ad.nn.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError, match="not possible to assign"):
        plain.weight = ad.eye(3)
    with pytest.raises(ValueError, match='has to be one of "matrix_exp"'):
        PZ.orthogonal(ad.nn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        PZ.orthogonal(ad.nn.Linear(3, 3), name="bias")
    with pytest.raises(ValueError, match="no parameter or buffer with name 'nope'"):
        PZ.orthogonal(ad.nn.Linear(3, 3), name="nope")
    conv = PZ.orthogonal(ad.nn.Conv2d(2, 3, 2, dtype=ad.float64))  # a batch of 2 x 2 matrices
    w = _np(conv.weight)
    np.testing.assert_allclose(np.swapaxes(w, -1, -2) @ w, np.broadcast_to(np.eye(2), w.shape), atol=1e-12)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(dim):
    t, a = _pair(4, 3, seed=7)
    TPZ.weight_norm(t, dim=dim)
    PZ.weight_norm(a, dim=dim)
    assert list(a.state_dict()) == list(t.state_dict())
    for i in range(2):
        np.testing.assert_allclose(_np(getattr(a.parametrizations.weight, f"original{i}")),
                                   _np(getattr(t.parametrizations.weight, f"original{i}")), **TOL)
    np.testing.assert_allclose(_np(a.weight), _np(t.weight), **TOL)
    with torch.no_grad():
        t.parametrizations.weight.original0.mul_(1.5)
    _copy_state(t, a)
    x = np.random.default_rng(8).standard_normal((2, 4))
    _check_grads(t, a, torch.tensor(x), ad.tensor(x))
    a.weight = ad.ones(3, 4, dtype=ad.float64)
    t.weight = torch.ones(3, 4, dtype=torch.float64)
    np.testing.assert_allclose(_np(a.parametrizations.weight.original0), _np(t.parametrizations.weight.original0))


@pytest.mark.parametrize("module", ["linear", "conv_transpose", "bias"])
def test_spectral_norm_matches_torch(module):
    if module == "conv_transpose":
        t = torch.nn.ConvTranspose1d(2, 3, 2).double()
        a = ad.nn.ConvTranspose1d(2, 3, 2, dtype=ad.float64)
        x = np.random.default_rng(9).standard_normal((1, 2, 5))
    else:
        t, a = _pair(4, 3, seed=9)
        x = np.random.default_rng(9).standard_normal((2, 4))
    _copy_state(t, a)
    name = "bias" if module == "bias" else "weight"
    TPZ.spectral_norm(t, name=name, n_power_iterations=2)
    PZ.spectral_norm(a, name=name, n_power_iterations=2)
    assert list(a.state_dict()) == list(t.state_dict())
    if module == "conv_transpose":
        assert a.parametrizations.weight[0].dim == 1
        assert a.parametrizations.weight[0]._v.shape == t.parametrizations.weight[0]._v.shape
    _copy_state(t, a)  # torch's random power-iteration vectors
    for training in (True, False):
        t.train(training)
        a.train(training)
        np.testing.assert_allclose(_np(getattr(a, name)), _np(getattr(t, name)), **TOL)  # a read iterates
        for key, value in t.state_dict().items():
            np.testing.assert_allclose(_np(a.state_dict()[key]), _np(value), **TOL, err_msg=key)
        for p in list(t.parameters()) + list(a.parameters()):
            p.grad = None
        _check_grads(t, a, torch.tensor(x), ad.tensor(x))
    if module != "bias":
        w = _np(a.weight)
        mat = np.moveaxis(w, a.parametrizations.weight[0].dim, 0).reshape(w.shape[a.parametrizations.weight[0].dim], -1)
        assert np.linalg.norm(mat, 2) == pytest.approx(1.0, rel=1e-2)
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        PZ.spectral_norm(ad.nn.Linear(3, 3), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        PZ.spectral_norm(ad.nn.Linear(3, 3), dim=2)


def test_orthogonal_gradcheck():
    for orthogonal_map in ("matrix_exp", "cayley", "householder"):
        m = PZ.orthogonal(ad.nn.Linear(3, 4, dtype=ad.float64), orthogonal_map=orthogonal_map)
        layer = m.parametrizations.weight[0]
        x = ad.tensor(np.random.default_rng(10).standard_normal((4, 3)) * 0.3, requires_grad=True)
        if orthogonal_map == "householder":
            with ad.no_grad():
                x = ad.tensor(_np(x) - 2 * np.eye(4, 3), requires_grad=True)  # keep the diagonal's sign fixed
        assert ad.autograd.gradcheck(lambda v, layer=layer: layer(v), (x,))


def test_orthogonal_recurrent_weight_matches_torch():
    """An orthogonal hidden-to-hidden weight (the usual use): the recurrent layer reads the parametrized weight."""
    t = torch.nn.RNN(3, 4).double()
    a = ad.nn.RNN(3, 4, dtype=ad.float64)
    TPZ.orthogonal(t, "weight_hh_l0")
    PZ.orthogonal(a, "weight_hh_l0")
    assert list(a.state_dict()) == list(t.state_dict())
    _copy_state(t, a)
    x = np.random.default_rng(11).standard_normal((5, 2, 3))
    t_out, _ = t(torch.tensor(x))
    a_out, _ = a(ad.tensor(x))
    np.testing.assert_allclose(_np(a_out), _np(t_out), **TOL)
    t_out.sum().backward()
    a_out.sum().backward()
    for (name, tp), (_, ap) in zip(t.named_parameters(), a.named_parameters()):
        np.testing.assert_allclose(_np(ap.grad), _np(tp.grad), **TOL, err_msg=name)
