"""``ad.distributions`` on CUDA parameters (the simulator): densities, entropies and KL equal the CPU's, samples
live on the parameters' device, and reparameterized samples carry gradients back to device parameters."""

import numpy as np
import pytest

import ad
import ad.distributions as AD

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device or simulator", allow_module_level=True)

COV = np.array([[2.0, 0.3], [0.3, 1.0]])
CASES = {
    "Normal": (lambda t: AD.Normal(t([0.1, -0.3]), t([0.5, 2.0])), [0.2, 0.4]),
    "Gamma": (lambda t: AD.Gamma(t([0.5, 2.0]), t([1.5, 0.7])), [0.2, 0.4]),
    "Beta": (lambda t: AD.Beta(t([0.5, 2.0]), t([1.5, 0.7])), [0.2, 0.4]),
    "Categorical": (lambda t: AD.Categorical(logits=t([[0.1, 0.5, -1.0], [0.0, 0.2, 0.3]])), [2.0, 0.0]),
    "MultivariateNormal": (lambda t: AD.MultivariateNormal(t([0.1, -0.3]), covariance_matrix=t(COV)), [0.2, 0.4]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_distribution_on_cuda_equals_cpu(name):
    make, value = CASES[name]
    got = {}
    for dev in ("cpu", "cuda"):
        leaves = []

        def t(x, dev=dev, leaves=leaves):
            leaves.append(ad.tensor(np.asarray(x, dtype=np.float64), device=dev, requires_grad=True))
            return leaves[-1]

        d = make(t)
        total = d.log_prob(ad.tensor(value, device=dev)).sum() + d.entropy().sum()
        if name != "Categorical":
            total = total + AD.kl_divergence(d, make(t)).sum()
        grads = ad.autograd.grad(total, leaves, allow_unused=True)
        sample = d.sample((3,))
        assert sample.device == leaves[0].device
        got[dev] = [total.detach().cpu().numpy()] + [g.cpu().numpy() for g in grads if g is not None]
    for a, b in zip(got["cpu"], got["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_rsample_on_cuda_differentiates_to_device_parameters():
    loc = ad.tensor([0.5, -1.0], device="cuda", requires_grad=True)
    scale = ad.tensor([2.0, 0.5], device="cuda", requires_grad=True)
    x = AD.Normal(loc, scale).rsample((4,))
    gl, gs = ad.autograd.grad((x * x).sum(), (loc, scale))
    assert gl.is_cuda and gs.is_cuda
    np.testing.assert_allclose(gl.cpu().numpy(), (2 * x).sum(0).detach().cpu().numpy(), rtol=1e-12)


MORE = {  # the later families: log_prob, entropy where defined, KL with themselves where registered
    "StudentT": (lambda t: AD.StudentT(t([3.0, 5.5]), t([0.1, -0.3]), t([0.5, 2.0])), [0.2, 0.4]),
    "Weibull": (lambda t: AD.Weibull(t([0.5, 2.0]), t([1.5, 0.7])), [0.2, 0.4]),
    "Pareto": (lambda t: AD.Pareto(t([0.1, 0.3]), t([1.5, 2.7])), [0.2, 0.4]),
    "VonMises": (lambda t: AD.VonMises(t([0.1, -0.3]), t([0.5, 2.0])), [0.2, 0.4]),
    "ContinuousBernoulli": (lambda t: AD.ContinuousBernoulli(t([0.2, 0.7])), [0.2, 0.4]),
    "LogisticNormal": (lambda t: AD.LogisticNormal(t([0.1, -0.3]), t([0.5, 2.0])), [0.2, 0.3, 0.5]),
    "LowRankMultivariateNormal": (lambda t: AD.LowRankMultivariateNormal(t([0.1, -0.3]), t([[1.0], [0.5]]),
                                                                         t([0.5, 2.0])), [0.2, 0.4]),
    "Wishart": (lambda t: AD.Wishart(t(3.5), covariance_matrix=t(COV)), [[1.0, 0.2], [0.2, 2.0]]),
    "LKJCholesky": (lambda t: AD.LKJCholesky(3, t([0.5, 2.0])), np.linalg.cholesky([[1.0, 0.3, -0.5],
                                                                                     [0.3, 1.0, 0.2],
                                                                                     [-0.5, 0.2, 1.0]])),
    "MixtureSameFamily": (lambda t: AD.MixtureSameFamily(AD.Categorical(t([0.3, 0.7])),
                                                         AD.Normal(t([0.1, -0.3]), t([0.5, 2.0]))), [0.2, 0.4]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MORE))
def test_later_distributions_on_cuda_equal_cpu(name):
    make, value = MORE[name]
    got = {}
    for dev in ("cpu", "cuda"):
        leaves = []

        def t(x, dev=dev, leaves=leaves):
            leaves.append(ad.tensor(np.asarray(x, dtype=np.float64), device=dev, requires_grad=True))
            return leaves[-1]

        d = make(t)
        total = d.log_prob(ad.tensor(np.asarray(value, dtype=np.float64), device=dev)).sum()
        try:
            total = total + d.entropy().sum()
        except NotImplementedError:
            pass
        try:
            total = total + AD.kl_divergence(d, make(t)).sum()
        except NotImplementedError:
            pass
        grads = ad.autograd.grad(total, leaves, allow_unused=True)
        sample = d.sample((3,))
        assert sample.device == leaves[0].device
        got[dev] = [total.detach().cpu().numpy()] + [g.cpu().numpy() for g in grads if g is not None]
    for a, b in zip(got["cpu"], got["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
