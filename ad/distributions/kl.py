"""``kl_divergence(p, q)``: KL(p || q) in closed form, dispatched on the pair of types; ``register_kl`` adds a
pair. The most specific registered pair wins (by the position of each registered type in the arguments' MROs);
a tie between two matches that are each more specific in one argument raises, as torch's."""

import ad

from .continuous import Cauchy, Exponential, Gumbel, HalfNormal, Laplace, LogNormal, Normal, Uniform
from .discrete import Bernoulli, Binomial, Categorical, Geometric, OneHotCategorical, Poisson
from .distribution import _sum_rightmost
from .exp_family import ExponentialFamily, _bregman_kl
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


# any two members of one exponential family without a closed form of their own: the Bregman divergence of the
# log normalizer (different families raise NotImplementedError, as torch)
register_kl(ExponentialFamily, ExponentialFamily)(_bregman_kl)


def _inf_like(t):
    return ad.full_like(t, float("inf"))


def _where_inf(mask, value):
    return ad.where(mask, _inf_like(value), value)


@register_kl(Normal, Normal)
def _normals(p, q):
    # log(sq / sp) + (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2
    return (q.scale / p.scale).log() + (p.scale.square() + (p.loc - q.loc).square()) / (2 * q.scale.square()) - 0.5


@register_kl(LogNormal, LogNormal)
@register_kl(HalfNormal, HalfNormal)
def _through_normal_bases(p, q):
    # both are a fixed bijection of their normal base: the divergence is the bases'
    return _normals(p.base_dist, q.base_dist)


@register_kl(Bernoulli, Bernoulli)
def _bernoullis(p, q):
    # p log(p / q) + (1 - p) log((1 - p) / (1 - q)), the logs from logits (log sigmoid(x) = -softplus(-x));
    # a term whose p-weight is 0 is 0, one whose q-probability is 0 (and p-weight not) is infinite
    softplus = ad.nn.functional.softplus
    ones = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    zeros = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    ones = ad.where(p.probs == 0, ad.zeros_like(ones), _where_inf(q.probs == 0, ones))
    zeros = ad.where(p.probs == 1, ad.zeros_like(zeros), _where_inf(q.probs == 1, zeros))
    return ones + zeros


@register_kl(Binomial, Binomial)
def _binomials(p, q):
    # n KL(Bernoulli(p) || Bernoulli(q)) for equal counts; infinite when p has more trials (its support is larger)
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    a, b = p.probs, q.probs
    per_trial = ad.xlogy(a, a) - ad.xlogy(a, b) + ad.xlogy(1 - a, 1 - a) - ad.xlogy(1 - a, 1 - b)
    return _where_inf(p.total_count > q.total_count, p.total_count * per_trial)


@register_kl(Categorical, Categorical)
def _categoricals(p, q):
    terms = p.probs * (p.logits - q.logits)
    terms = _where_inf((q.probs == 0).expand_as(terms), terms)
    return ad.where((p.probs == 0).expand_as(terms), ad.zeros_like(terms), terms).sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _one_hot_categoricals(p, q):
    return _categoricals(p._categorical, q._categorical)


@register_kl(Geometric, Geometric)
def _geometrics(p, q):
    # -H(p) - E_p[log q(k)], log q(k) = k log(1 - q) + log q, E_p[k] = (1 - p) / p
    return -p.entropy() - (1 - p.probs) / p.probs * ad.log1p(-q.probs) - q.probs.log()


@register_kl(Poisson, Poisson)
def _poissons(p, q):
    return ad.xlogy(p.rate, p.rate / q.rate) - p.rate + q.rate


@register_kl(Uniform, Uniform)
def _uniforms(p, q):
    # log of the width ratio while q's interval holds p's, else infinite
    value = ((q.high - q.low) / (p.high - p.low)).log()
    return _where_inf((q.low > p.low) | (q.high < p.high), value)


@register_kl(Exponential, Exponential)
def _exponentials(p, q):
    return (p.rate / q.rate).log() + q.rate / p.rate - 1


@register_kl(Laplace, Laplace)
def _laplaces(p, q):
    gap = (p.loc - q.loc).abs()
    return (q.scale / p.scale).log() + gap / q.scale + p.scale / q.scale * ad.exp(-gap / p.scale) - 1


@register_kl(Cauchy, Cauchy)
def _cauchys(p, q):
    return (((p.scale + q.scale).square() + (p.loc - q.loc).square()) / (4 * p.scale * q.scale)).log()


@register_kl(Gumbel, Gumbel)
def _gumbels(p, q):
    # log(bq / bp) + (mp - mq) / bq + euler * bp / bq + exp((mq - mp) / bq) Gamma(1 + bp / bq) - (1 + euler)
    ratio = p.scale / q.scale
    euler = 0.57721566490153286060
    tail = ad.exp((q.loc - p.loc) / q.scale + ad.lgamma(1 + ratio))
    return -ratio.log() + (p.loc - q.loc) / q.scale + euler * ratio + tail - (1 + euler)


@register_kl(Gamma, Gamma)
def _gammas(p, q):
    a, b, c, d = p.concentration, p.rate, q.concentration, q.rate
    return (a - c) * ad.digamma(a) + ad.lgamma(c) - ad.lgamma(a) + c * (b / d).log() + a * (d - b) / b


@register_kl(Dirichlet, Dirichlet)
def _dirichlets(p, q):
    a, b = p.concentration, q.concentration
    a0 = a.sum(-1, keepdim=True)
    log_norms = ad.lgamma(a0.squeeze(-1)) - ad.lgamma(b.sum(-1)) + (ad.lgamma(b) - ad.lgamma(a)).sum(-1)
    return log_norms + ((a - b) * (ad.digamma(a) - ad.digamma(a0))).sum(-1)


@register_kl(Beta, Beta)
def _betas(p, q):
    return _dirichlets(p._dirichlet, q._dirichlet)


@register_kl(MultivariateNormal, MultivariateNormal)
def _multivariate_normals(p, q):
    # (tr(Sq^-1 Sp) + (mq - mp)^T Sq^-1 (mq - mp) - n) / 2 + log det Lq - log det Lp, with S = L L^T
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    n = p.event_shape[0]
    batch = ad.broadcast_shapes(p.scale_tril.shape[:-2], q.scale_tril.shape[:-2])
    lq, lp = q.scale_tril.expand(batch + (n, n)), p.scale_tril.expand(batch + (n, n))
    trace = ad.linalg.solve_triangular(lq, lp, upper=False).square().sum((-2, -1))
    quad = _batch_mahalanobis(q.scale_tril, q.loc - p.loc)
    return 0.5 * (trace + quad - n) + q._half_log_det() - p._half_log_det()


@register_kl(Independent, Independent)
def _independents(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(Normal, Uniform)
@register_kl(Normal, Exponential)
@register_kl(Normal, Gamma)
@register_kl(Normal, Beta)
def _outside_q_support(p, q):
    """p's support (all reals) is not contained in q's: the divergence is infinite."""
    return ad.full(p.batch_shape, float("inf"), dtype=p.loc.dtype, device=p.loc.device)
