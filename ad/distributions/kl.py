"""``kl_divergence(p, q)``: KL(p || q) in closed form, dispatched on the pair of types; ``register_kl`` adds a
pair. The most specific registered pair wins (by the position of each registered type in the arguments' MROs);
a tie between two matches that are each more specific in one argument raises, as torch's."""

import ad

from .continuous import Cauchy, Exponential, Gumbel, HalfNormal, Laplace, LogNormal, Normal, Uniform
from .discrete import Bernoulli, Binomial, Categorical, Geometric, OneHotCategorical, Poisson
from .distribution import _sum_rightmost
from .gamma import Beta, Dirichlet, Gamma
from .multivariate import Independent, MultivariateNormal, _batch_mahalanobis

__all__ = ["kl_divergence", "register_kl"]

_KL = {}  # (type_p, type_q) -> fn(p, q)
_CACHE = {}


def register_kl(type_p, type_q):
    """Decorator: ``fn(p, q)`` computes KL(p || q) for ``p`` an instance of ``type_p`` and ``q`` of ``type_q``."""
    from .distribution import Distribution

    if not (isinstance(type_p, type) and issubclass(type_p, Distribution)):
        raise TypeError(f"Expected type_p to be a Distribution subclass but got {type_p}")
    if not (isinstance(type_q, type) and issubclass(type_q, Distribution)):
        raise TypeError(f"Expected type_q to be a Distribution subclass but got {type_q}")

    def decorator(fn):
        _KL[type_p, type_q] = fn
        _CACHE.clear()
        return fn

    return decorator


def _dispatch(type_p, type_q):
    matches = [(type_p.__mro__.index(p), type_q.__mro__.index(q), p, q) for p, q in _KL
               if issubclass(type_p, p) and issubclass(type_q, q)]
    if not matches:
        return None
    best = min(matches, key=lambda m: (m[0], m[1]))
    other = min(matches, key=lambda m: (m[1], m[0]))
    if best[:2] != other[:2]:
        import warnings

        warnings.warn(
            f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}). Please register_kl("
            f"{best[2].__name__}, {other[3].__name__})",
            RuntimeWarning,
            stacklevel=3,
        )
    return _KL[best[2], best[3]]


def kl_divergence(p, q):
    """KL(p || q) = E_p[log p(x) - log q(x)], batched over ``p``'s and ``q``'s batch shapes.

    Raises:
        NotImplementedError: no closed form is registered for the pair of types.
    """
    key = (type(p), type(q))
    if key not in _CACHE:
        _CACHE[key] = _dispatch(*key)
    fn = _CACHE[key]
    if fn is None:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                                  f"{type(q).__name__}")
    return fn(p, q)


def _inf_like(t):
    return ad.full_like(t, float("inf"))


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p, q):
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (ad.nn.functional.softplus(-q.logits) - ad.nn.functional.softplus(-p.logits))
    t1 = ad.where(q.probs == 0, _inf_like(t1), t1)
    t1 = ad.where(p.probs == 0, ad.zeros_like(t1), t1)
    t2 = (1 - p.probs) * (ad.nn.functional.softplus(q.logits) - ad.nn.functional.softplus(p.logits))
    t2 = ad.where(q.probs == 1, _inf_like(t2), t2)
    t2 = ad.where(p.probs == 1, ad.zeros_like(t2), t2)
    return t1 + t2


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + ad.log1p(-p.probs) - ad.log1p(-q.probs))
    return ad.where(p.total_count > q.total_count, _inf_like(kl), kl)


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = ad.where((q.probs == 0).expand_as(t), _inf_like(t), t)
    t = ad.where((p.probs == 0).expand_as(t), ad.zeros_like(t), t)
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehotcategorical_onehotcategorical(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - ad.log1p(-q.probs) / p.probs - q.logits


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    outside = (q.low > p.low) | (q.high < p.high)
    return ad.where(outside, _inf_like(result), result)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return rate_ratio - 1 - rate_ratio.log()


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return -scale_ratio.log() + loc_abs_diff / q.scale + scale_ratio * ad.exp(-loc_abs_diff / p.scale) - 1


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    return (((p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2)) / (4 * p.scale * q.scale)).log()


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    ct1, ct2 = p.scale / q.scale, q.loc / q.scale
    ct3 = p.loc / q.scale
    t1 = -ct1.log() - ct2 + ct3
    t2 = ct1 * 0.57721566490153286060
    t3 = ad.exp(ct2 + ad.lgamma(1 + ct1) - ct3)
    return t1 + t2 + t3 - (1 + 0.57721566490153286060)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    a, b, c, d = p.concentration, p.rate, q.concentration, q.rate
    return ((a - c) * ad.digamma(a) - ad.lgamma(a) + ad.lgamma(c) + c * (b.log() - d.log()) + a * (d / b - 1))


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    a, b = p.concentration, q.concentration
    a0 = a.sum(-1)
    t1 = ad.lgamma(a0) - ad.lgamma(b.sum(-1)) - (ad.lgamma(a) - ad.lgamma(b)).sum(-1)
    return t1 + ((a - b) * (ad.digamma(a) - ad.digamma(a0).unsqueeze(-1))).sum(-1)


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    return _kl_dirichlet_dirichlet(p._dirichlet, q._dirichlet)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    n = p.event_shape[0]
    half_log_det_diff = q._half_log_det() - p._half_log_det()
    shape = ad.broadcast_shapes(p.scale_tril.shape[:-2], q.scale_tril.shape[:-2])
    q_tril = q.scale_tril.expand(shape + (n, n))
    p_tril = p.scale_tril.expand(shape + (n, n))
    trace = ad.linalg.solve_triangular(q_tril, p_tril, upper=False).pow(2).sum((-2, -1))
    maha = _batch_mahalanobis(q.scale_tril, q.loc - p.loc)
    return half_log_det_diff + 0.5 * (trace + maha - n)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(Normal, Uniform)
@register_kl(Normal, Exponential)
@register_kl(Normal, Gamma)
@register_kl(Normal, Beta)
def _kl_infinite_support_mismatch(p, q):
    """p's support (all reals) is not contained in q's: the divergence is infinite."""
    return ad.full(p.batch_shape, float("inf"), dtype=p.loc.dtype, device=p.loc.device)
