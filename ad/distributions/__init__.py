"""``ad.distributions``: probability distributions with torch.distributions' names, signatures, shapes and
validation, written with ``ad`` ops (so densities and reparameterized samples differentiate to any order, in
forward mode too, and run on CUDA parameters).

What exists (see each module): ``Distribution`` and ``constraints`` (distribution.py, constraints.py);
``ExponentialFamily`` (exp_family.py: the generic entropy and the Bregman KL of the families torch derives from it,
Bernoulli, Beta, Chi2, ContinuousBernoulli, Dirichlet, Exponential, Gamma, Normal, Poisson, Wishart); ``Normal``,
``Uniform``, ``Exponential``, ``Laplace``, ``Cauchy``, ``Gumbel``, ``HalfNormal``, ``LogNormal`` (continuous.py);
``Gamma``, ``Chi2``, ``Beta``, ``Dirichlet``, ``StudentT``, ``FisherSnedecor`` (gamma.py: implicit
reparameterization gradients); ``VonMises``, ``ContinuousBernoulli``, ``GeneralizedPareto`` (special_continuous.py);
``Bernoulli``, ``Geometric``, ``Binomial``, ``NegativeBinomial``, ``Poisson``, ``Categorical``,
``OneHotCategorical``, ``OneHotCategoricalStraightThrough``, ``Multinomial`` (discrete.py); ``MultivariateNormal``,
``LowRankMultivariateNormal``, ``Independent`` (multivariate.py); ``Wishart``, ``LKJCholesky`` (matrices.py);
``MixtureSameFamily`` (mixture.py); ``transforms`` (``Transform`` and Exp, Power, Sigmoid, Softplus, Tanh, Abs,
Affine, Softmax, StickBreaking, LowerCholesky, CorrCholesky, PositiveDefinite, CumulativeDistribution, Compose,
Independent, Reshape, Cat, Stack) and ``biject_to``/``transform_to`` (constraint_registry.py);
``TransformedDistribution`` and the distributions defined by transforms, ``HalfCauchy``, ``Weibull``, ``Pareto``,
``Kumaraswamy``, ``InverseGamma``, ``LogisticNormal`` (transformed.py); ``RelaxedBernoulli``,
``RelaxedOneHotCategorical`` and their bases ``LogitRelaxedBernoulli``, ``ExpRelaxedCategorical`` (relaxed.py);
``kl_divergence`` and ``register_kl`` for every same-family pair and the cross-family pairs torch registers (kl.py,
kl_cross.py).

Example:
    >>> loc = ad.tensor([0.0, 1.0], requires_grad=True)
    >>> d = ad.distributions.Normal(loc, 2.0)
    >>> d.rsample((5,)).shape, d.log_prob(ad.tensor([0.5, 0.5])).shape
    ((5, 2), (2,))
"""

from . import (
    constraints,
    exp_family,  # noqa: F401  (ad.distributions.exp_family, as torch's module)
    kl_cross,  # noqa: F401  (registers the cross-family KL pairs)
    transforms,
)
from .constraint_registry import biject_to, transform_to
from .continuous import Cauchy, Exponential, Gumbel, HalfNormal, Laplace, LogNormal, Normal, Uniform
from .discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    Geometric,
    Multinomial,
    NegativeBinomial,
    OneHotCategorical,
    OneHotCategoricalStraightThrough,
    Poisson,
)
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .gamma import Beta, Chi2, Dirichlet, FisherSnedecor, Gamma, StudentT
from .kl import kl_divergence, register_kl
from .matrices import LKJCholesky, Wishart
from .mixture import MixtureSameFamily
from .multivariate import Independent, LowRankMultivariateNormal, MultivariateNormal
from .relaxed import ExpRelaxedCategorical, LogitRelaxedBernoulli, RelaxedBernoulli, RelaxedOneHotCategorical
from .special_continuous import ContinuousBernoulli, GeneralizedPareto, VonMises
from .transformed import HalfCauchy, InverseGamma, Kumaraswamy, LogisticNormal, Pareto, TransformedDistribution, Weibull
from .transforms import (
    AbsTransform,
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StackTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)

__all__ = [
    "AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "CatTransform", "Categorical", "Cauchy",
    "Chi2", "ComposeTransform", "ContinuousBernoulli", "CorrCholeskyTransform", "CumulativeDistributionTransform",
    "Dirichlet", "Distribution", "ExpRelaxedCategorical", "ExpTransform", "Exponential", "ExponentialFamily",
    "FisherSnedecor", "Gamma",
    "GeneralizedPareto", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "IndependentTransform",
    "InverseGamma", "Kumaraswamy", "LKJCholesky", "Laplace", "LogNormal", "LogisticNormal", "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal", "LowerCholeskyTransform", "MixtureSameFamily", "Multinomial", "MultivariateNormal",
    "NegativeBinomial", "Normal", "OneHotCategorical", "OneHotCategoricalStraightThrough", "Pareto", "Poisson",
    "PositiveDefiniteTransform", "PowerTransform", "RelaxedBernoulli", "RelaxedOneHotCategorical", "ReshapeTransform",
    "SigmoidTransform", "SoftmaxTransform", "SoftplusTransform", "StackTransform", "StickBreakingTransform",
    "StudentT", "TanhTransform", "Transform", "TransformedDistribution", "Uniform", "VonMises", "Weibull", "Wishart",
    "biject_to", "constraints", "identity_transform", "kl_divergence", "register_kl", "transform_to", "transforms",
]  # fmt: skip
