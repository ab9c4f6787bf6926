"""``ad.distributions.ExponentialFamily`` against torch's and against the closed forms: which distributions derive
from it, their natural parameters and log normalizers, the generic entropy (from the log normalizer, by
autograd) equal to each closed-form entropy in value and in gradient, and the Bregman-divergence KL between two
members of one family equal to the closed-form KLs (float64)."""

import inspect
import warnings

import numpy as np
import pytest

import ad
from ad.autograd import gradcheck
from ad.distributions import ExponentialFamily
from ad.distributions.exp_family import _bregman_kl

torch = pytest.importorskip("torch")

AD = ad.distributions


@pytest.fixture(autouse=True)
def _torch_float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# name -> (p's parameters, q's parameters), each a function of the library's tensor constructor
FAMILIES = {
    "Bernoulli": (lambda T, D: D.Bernoulli(T([0.3, 0.6])), lambda T, D: D.Bernoulli(T([0.1, 0.95]))),
    "BernoulliLogits": (
        lambda T, D: D.Bernoulli(logits=T([-2.0, 0.4])),
        lambda T, D: D.Bernoulli(logits=T([1.0, 3.0])),
    ),
    "Beta": (lambda T, D: D.Beta(T([2.0, 0.5]), T([3.0, 1.5])), lambda T, D: D.Beta(T([1.2, 4.0]), T([0.7, 2.0]))),
    "Chi2": (lambda T, D: D.Chi2(T([2.0, 5.0])), lambda T, D: D.Chi2(T([3.5, 1.0]))),
    # (probs 0.5, 0.4995, 0.5003: the Taylor branches of the normalizer)
    "ContinuousBernoulli": (
        lambda T, D: D.ContinuousBernoulli(T([0.3, 0.8, 0.5, 0.4995])),
        lambda T, D: D.ContinuousBernoulli(T([0.6, 0.2, 0.5003, 0.7])),
    ),
    "Dirichlet": (
        lambda T, D: D.Dirichlet(T([[2.0, 0.5, 1.0], [1.0, 1.0, 3.0]])),
        lambda T, D: D.Dirichlet(T([[1.0, 2.0, 3.0], [0.5, 0.7, 2.0]])),
    ),
    "Exponential": (lambda T, D: D.Exponential(T([2.0, 0.5])), lambda T, D: D.Exponential(T([1.0, 3.0]))),
    "Gamma": (lambda T, D: D.Gamma(T([2.0, 0.5]), T([3.0, 1.5])), lambda T, D: D.Gamma(T([1.0, 2.5]), T([0.5, 2.0]))),
    "Normal": (
        lambda T, D: D.Normal(T([0.0, 1.0]), T([1.0, 2.0])),
        lambda T, D: D.Normal(T([0.5, -1.0]), T([0.7, 1.3])),
    ),
    "Poisson": (lambda T, D: D.Poisson(T([2.0, 0.5])), lambda T, D: D.Poisson(T([1.0, 3.0]))),
    "Wishart": (
        lambda T, D: D.Wishart(T(4.0), covariance_matrix=T([[2.0, 0.3], [0.3, 1.0]])),
        lambda T, D: D.Wishart(T(3.0), covariance_matrix=T([[1.0, -0.2], [-0.2, 0.5]])),
    ),
}


def _make(lib, name, which=0, requires_grad=True):
    """The distribution and the leaf tensors it was made from."""
    leaves = []

    def tensor(values):
        t = (torch.tensor if lib is torch else ad.tensor)(values, requires_grad=requires_grad)
        leaves.append(t)
        return t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (Wishart's low-df warning)
        return FAMILIES[name][which](tensor, lib.distributions), leaves


def _numpy(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def test_the_same_classes_derive_from_it_as_in_torch():
    names = [n for n in dir(torch.distributions) if inspect.isclass(getattr(torch.distributions, n))]
    checked = 0
    for name in names:
        cls_t = getattr(torch.distributions, name)
        if not issubclass(cls_t, torch.distributions.Distribution) or not hasattr(AD, name):
            continue
        cls_a = getattr(AD, name)
        assert issubclass(cls_a, ExponentialFamily) == issubclass(cls_t, torch.distributions.ExponentialFamily), name
        checked += 1
    assert checked > 30
    assert ad.distributions.exp_family.ExponentialFamily is ExponentialFamily
    d, _ = _make(ad, "Normal")
    assert isinstance(d, ExponentialFamily) and not isinstance(AD.Laplace(0.0, 1.0), ExponentialFamily)


@pytest.mark.parametrize("name", FAMILIES)
def test_natural_parameters_and_log_normalizer_as_torch(name):
    da, _ = _make(ad, name)
    dt, _ = _make(torch, name)
    etas_a, etas_t = da._natural_params, dt._natural_params
    assert len(etas_a) == len(etas_t)
    for a, t in zip(etas_a, etas_t):
        np.testing.assert_allclose(_numpy(a), _numpy(t), rtol=1e-12)
    np.testing.assert_allclose(
        _numpy(da._log_normalizer(*etas_a)), _numpy(dt._log_normalizer(*etas_t)), rtol=1e-10, atol=1e-12
    )
    if name in ("Beta", "Dirichlet", "Poisson"):  # (torch defines no mean carrier measure for these)
        with pytest.raises(NotImplementedError):
            _ = dt._mean_carrier_measure
    else:
        np.testing.assert_allclose(_numpy(da._mean_carrier_measure), _numpy(dt._mean_carrier_measure))


@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "Poisson"])
def test_generic_entropy_is_the_closed_form(name):
    """A(eta) - <eta, grad A(eta)> - E[log h]: the value, and its gradient to the distribution's parameters (torch's
    generic entropy has none: it differentiates at detached copies)."""
    d, leaves = _make(ad, name)
    generic = ExponentialFamily.entropy(d)
    closed = d.entropy()
    np.testing.assert_allclose(generic.detach().numpy(), closed.detach().numpy(), rtol=1e-9, atol=1e-12)
    g_generic = ad.autograd.grad(generic.sum(), leaves, retain_graph=True, materialize_grads=True)
    g_closed = ad.autograd.grad(closed.sum(), leaves, materialize_grads=True)
    for a, b in zip(g_generic, g_closed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)
    if name in ("Bernoulli", "Chi2", "ContinuousBernoulli", "Exponential", "Gamma", "Normal", "Wishart"):  # torch's
        dt, _ = _make(torch, name)
        expected = torch.distributions.ExponentialFamily.entropy(dt)
        np.testing.assert_allclose(generic.detach().numpy(), _numpy(expected), rtol=1e-9, atol=1e-12)


def test_generic_entropy_second_order_and_grad_modes():
    """Its gradient differentiates again (the log normalizer's gradient is taken with create_graph); without
    parameters that require grad, or under no_grad, the result carries no graph (torch's raises under no_grad)."""
    d_fn = lambda rate: ExponentialFamily.entropy(AD.Gamma(rate * 2.0, rate))  # noqa: E731
    assert gradcheck(d_fn, (ad.tensor([0.7, 1.9], requires_grad=True),))
    rate = ad.tensor([0.7, 1.9], requires_grad=True)
    (g,) = ad.autograd.grad(d_fn(rate).sum(), [rate], create_graph=True)
    (h,) = ad.autograd.grad(g.sum(), [rate])
    # H(r) = 2r - log r + lgamma(2r) + (1 - 2r) digamma(2r): H'' = 1 / r^2 - 4 trigamma(2r) + 4 (1 - 2r) psi''(2r)
    r = rate.detach()
    expected = 1 / r.pow(2) - 4 * ad.polygamma(1, 2 * r) + 4 * (1 - 2 * r) * ad.polygamma(2, 2 * r)
    np.testing.assert_allclose(h.numpy(), expected.numpy(), rtol=1e-8)
    plain, _ = _make(ad, "Beta", requires_grad=False)
    assert not ExponentialFamily.entropy(plain).requires_grad
    tracked, _ = _make(ad, "Beta")
    with ad.no_grad():
        value = ExponentialFamily.entropy(tracked)
    assert not value.requires_grad
    np.testing.assert_allclose(value.numpy(), tracked.entropy().detach().numpy(), rtol=1e-9)


def test_poisson_has_no_entropy_as_torch():
    for lib in (ad, torch):
        d, _ = _make(lib, "Poisson")
        with pytest.raises(NotImplementedError):
            d.entropy()


@pytest.mark.parametrize("name", FAMILIES)
def test_bregman_kl_is_the_closed_form(name):
    """The Bregman divergence of the log normalizer equals each family's closed-form KL (ad's and torch's) in
    value, and in gradient to both distributions' parameters."""
    p, leaves_p = _make(ad, name, 0)
    q, leaves_q = _make(ad, name, 1)
    bregman = _bregman_kl(p, q)
    expected = AD.kl_divergence(p, q)  # (Wishart has no closed form: this is the Bregman one, checked below)
    np.testing.assert_allclose(bregman.detach().numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    pt, _ = _make(torch, name, 0)
    qt, _ = _make(torch, name, 1)
    np.testing.assert_allclose(bregman.detach().numpy(), _numpy(torch.distributions.kl_divergence(pt, qt)), rtol=1e-8)
    grads = ad.autograd.grad(bregman.sum(), leaves_p + leaves_q, retain_graph=True, materialize_grads=True)
    closed = ad.autograd.grad(expected.sum(), leaves_p + leaves_q, materialize_grads=True)
    for a, b in zip(grads, closed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


def test_wishart_kl_batched_and_by_finite_differences():
    """torch's Bregman KL sums the degrees-of-freedom term over the batch dims of a batched Wishart; ad's is
    per element (each entry equals the unbatched KL)."""
    v1, v2 = ad.tensor([[2.0, 0.3], [0.3, 1.0]]), ad.tensor([[1.0, -0.2], [-0.2, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batched = AD.kl_divergence(AD.Wishart(ad.tensor([4.0, 5.0]), v1), AD.Wishart(ad.tensor([3.0, 6.0]), v2))
        singles = [
            AD.kl_divergence(AD.Wishart(ad.tensor(a), v1), AD.Wishart(ad.tensor(b), v2))
            for a, b in ((4.0, 3.0), (5.0, 6.0))
        ]
    np.testing.assert_allclose(batched.numpy(), [s.item() for s in singles], rtol=1e-12)

    def kl(df_p, df_q, scale):
        return AD.kl_divergence(AD.Wishart(df_p, scale_tril=ad.tril(scale) + 2 * ad.eye(2)), AD.Wishart(df_q, v2))

    leaves = (ad.tensor([4.0, 5.0], requires_grad=True), ad.tensor([3.0, 6.0], requires_grad=True),
              ad.tensor([[0.1, 0.0], [0.3, -0.2]], requires_grad=True))
    assert gradcheck(kl, leaves)


class _Rate(ExponentialFamily):
    """A user's family (the exponential distribution through its natural parameter), for the generic paths."""

    arg_constraints = {}

    def __init__(self, rate):
        self.rate = rate
        super().__init__(rate.shape, validate_args=False)

    @property
    def _natural_params(self):
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -(-x).log()

    @property
    def _mean_carrier_measure(self):
        return 0


class _OtherRate(_Rate):
    pass


def test_a_users_family_gets_entropy_and_kl():
    rate = ad.tensor([2.0, 3.0], requires_grad=True)
    other = ad.tensor([1.0, 0.5])
    entropy = _Rate(rate).entropy()
    np.testing.assert_allclose(entropy.detach().numpy(), 1 - np.log([2.0, 3.0]), rtol=1e-12)
    kl = AD.kl_divergence(_Rate(rate), _Rate(other))
    expected = AD.kl_divergence(AD.Exponential(rate), AD.Exponential(other))
    np.testing.assert_allclose(kl.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    (g,) = ad.autograd.grad(kl.sum(), [rate])
    r, o = rate.detach().numpy(), other.numpy()
    np.testing.assert_allclose(g.numpy(), 1 / r - o / r**2, rtol=1e-12)  # d/dr [log(r / o) + o / r - 1]
    with pytest.raises(NotImplementedError, match="different exponential families cannot be computed using Bregman"):
        AD.kl_divergence(_Rate(rate), _OtherRate(other))
    with pytest.raises(NotImplementedError, match="different exponential families"):
        AD.kl_divergence(AD.Normal(0.0, 1.0), AD.Poisson(1.0))
