"""Every distribution's repr against torch's: parameters with one element as their value (a 0-d tensor formats as
its number, ``Normal(loc: 0.0, scale: 1.0)``), larger ones as their shape (``ad.Size``, torch's ``torch.Size``),
and none for those torch builds over another distribution (``LogNormal()``). Parameters in float64 on both sides
(torch's default float32 would print 0.30000001192092896)."""

import numpy as np
import pytest

import ad
import ad.distributions as AD

torch = pytest.importorskip("torch")
import torch.distributions as TD  # noqa: E402
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli  # noqa: E402
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical  # noqa: E402

from ad.distributions.relaxed import ExpRelaxedCategorical as AdExpRelaxedCategorical  # noqa: E402
from ad.distributions.relaxed import LogitRelaxedBernoulli as AdLogitRelaxedBernoulli  # noqa: E402


def _cases(D, L, relaxed):
    exp_relaxed, logit_relaxed = relaxed
    t = lambda v: L.tensor(np.asarray(v, dtype=np.float64))  # noqa: E731
    v2, m2 = t([0.3, 0.7]), t(np.eye(2))
    return {
        "normal_shapes": lambda: D.Normal(t([0.0, 1.0, 2.0]), t([1.0, 1.0, 1.0])),
        "normal_numbers": lambda: D.Normal(0.5, 2.0),
        "normal_0d": lambda: D.Normal(t(0.25), t(1.5)),
        "normal_one_element": lambda: D.Normal(t([[1.0]]), t(2.0)),
        "bernoulli": lambda: D.Bernoulli(probs=v2),
        "bernoulli_logits": lambda: D.Bernoulli(logits=t(0.3)),
        "categorical": lambda: D.Categorical(v2),
        "categorical_logits": lambda: D.Categorical(logits=t([[0.3, 0.7]])),
        "mvn": lambda: D.MultivariateNormal(t([0.0, 0.0]), m2),
        "mvn_precision": lambda: D.MultivariateNormal(t([0.0, 0.0]), precision_matrix=m2),
        "independent": lambda: D.Independent(D.Normal(t([0.0, 1.0]), t([1.0, 1.0])), 1),
        "transformed": lambda: D.TransformedDistribution(D.Normal(0.0, 1.0), [D.transforms.ExpTransform()]),
        "lognormal": lambda: D.LogNormal(0.0, 1.0),
        "uniform": lambda: D.Uniform(0.0, t([1.0, 2.0])),
        "mixture": lambda: D.MixtureSameFamily(D.Categorical(t([1.0, 1.0])), D.Normal(t([0.0, 1.0]), t([1.0, 2.0]))),
        "binomial": lambda: D.Binomial(10, v2),
        "binomial_logits": lambda: D.Binomial(10, logits=t(0.2)),
        "gamma": lambda: D.Gamma(t([1.0, 2.0]), 3.0),
        "beta": lambda: D.Beta(2.0, 3.0),
        "dirichlet": lambda: D.Dirichlet(t([1.0, 2.0])),
        "exponential": lambda: D.Exponential(2.0),
        "student_t": lambda: D.StudentT(3.0),
        "poisson": lambda: D.Poisson(t([1.0, 2.0])),
        "one_hot": lambda: D.OneHotCategorical(v2),
        "one_hot_st": lambda: D.OneHotCategoricalStraightThrough(v2),
        "multinomial": lambda: D.Multinomial(5, v2),
        "relaxed_bernoulli": lambda: D.RelaxedBernoulli(t(0.5), probs=v2),
        "logit_relaxed_bernoulli": lambda: logit_relaxed(t(0.5), logits=t(0.25)),
        "relaxed_one_hot": lambda: D.RelaxedOneHotCategorical(t(0.5), probs=v2),
        "exp_relaxed_categorical": lambda: exp_relaxed(t(0.5), probs=v2),
        "low_rank_mvn": lambda: D.LowRankMultivariateNormal(t([0.0, 0.0]), t([[1.0], [1.0]]), t([1.0, 1.0])),
        "cauchy": lambda: D.Cauchy(0.0, 1.0),
        "laplace": lambda: D.Laplace(0.0, t([1.0, 2.0])),
        "gumbel": lambda: D.Gumbel(0.0, 1.0),
        "half_normal": lambda: D.HalfNormal(1.0),
        "half_cauchy": lambda: D.HalfCauchy(t([1.0, 2.0])),
        "chi2": lambda: D.Chi2(3.0),
        "chi2_shape": lambda: D.Chi2(t([3.0, 4.0])),
        "geometric": lambda: D.Geometric(t(0.25)),
        "negative_binomial": lambda: D.NegativeBinomial(3.0, t(0.5)),
        "weibull": lambda: D.Weibull(1.0, 2.0),
        "pareto": lambda: D.Pareto(1.0, 2.0),
        "von_mises": lambda: D.VonMises(0.0, 1.0),
        "kumaraswamy": lambda: D.Kumaraswamy(1.0, 2.0),
        "fisher_snedecor": lambda: D.FisherSnedecor(1.0, 2.0),
        "logistic_normal": lambda: D.LogisticNormal(t([0.0, 0.0]), t([1.0, 1.0])),
        "continuous_bernoulli": lambda: D.ContinuousBernoulli(t(0.25)),
        "wishart": lambda: D.Wishart(t(3.0), m2),
        "wishart_batched": lambda: D.Wishart(t([3.0]), scale_tril=m2[None]),
        "lkj_cholesky": lambda: D.LKJCholesky(3, 0.5),
        "inverse_gamma": lambda: D.InverseGamma(2.0, 3.0),
        "generalized_pareto": lambda: D.GeneralizedPareto(0.0, 1.0, 0.5),
        "exotic_numbers": lambda: D.Normal(t(1e-20), t(123456789.0)),
    }


THEIRS = _cases(TD, torch, (ExpRelaxedCategorical, LogitRelaxedBernoulli))
OURS = _cases(AD, ad, (AdExpRelaxedCategorical, AdLogitRelaxedBernoulli))


def test_every_distribution_is_covered():
    classes = {c for c in vars(AD).values() if isinstance(c, type) and issubclass(c, AD.Distribution)}
    covered = {type(make()) for make in OURS.values()} | {AD.Distribution, AD.ExponentialFamily}
    assert classes <= covered, sorted(c.__name__ for c in classes - covered)


@pytest.mark.parametrize("name", sorted(THEIRS))
def test_repr_matches_torch(name):
    torch.set_default_dtype(torch.float64)
    try:
        expected = repr(THEIRS[name]()).replace("torch.Size", "ad.Size")
    finally:
        torch.set_default_dtype(torch.float32)
    assert repr(OURS[name]()) == expected


def test_a_0d_tensor_formats_as_its_number():
    for lib in (ad, torch):
        assert f"{lib.tensor(0.5, dtype=lib.float64):.2f}" == "0.50"
        assert format(lib.tensor(3), ">3") == "  3"
        assert f"{lib.tensor(True)}" == "True"
        with pytest.raises(TypeError, match="unsupported format string passed to"):
            format(lib.tensor([0.5]), ".2f")
    assert f"{ad.tensor([0.5])}" == str(ad.tensor([0.5]))
    # a Parameter (a subclass) formats as an object: its str, as torch's
    assert f"{ad.nn.Parameter(ad.tensor(0.5))}" == str(ad.nn.Parameter(ad.tensor(0.5)))
    # a validation error names the distribution by its repr
    for D, lib in ((AD, ad), (TD, torch)):
        with pytest.raises(ValueError, match=r"of distribution Normal\(loc: nan, scale: 1.0\)"):
            D.Normal(lib.tensor(float("nan")), lib.tensor(1.0))
