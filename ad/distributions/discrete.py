"""Discrete distributions: ``Bernoulli``, ``Geometric``, ``Binomial``, ``NegativeBinomial`` (``probs`` or
``logits``), ``Categorical``, ``OneHotCategorical``, ``Multinomial`` (unnormalized ``probs`` or ``logits`` over the
last dim), ``Poisson``.

Each keeps the parameterization it was given and derives the other on first use (``cached_property``), as
torch's; log-probabilities are computed from logits where that is the stabler form.
"""

import math

import numpy as np

import ad

from . import constraints
from .distribution import Distribution, _broadcast, cached_property
from .exp_family import ExponentialFamily

__all__ = ["Bernoulli", "Binomial", "Categorical", "Geometric", "Multinomial", "NegativeBinomial", "OneHotCategorical",
           "OneHotCategoricalStraightThrough",
           "Poisson"]


def _clamp_probs(probs):
    eps = float(np.finfo(probs._data.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def _probs_to_logits(probs, is_binary=False):
    ps = _clamp_probs(probs)
    return ps.log() - ad.log1p(-ps) if is_binary else ps.log()


def _one_of(probs, logits):
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class _Binary(Distribution):
    """Shared by the distributions of one probability per element (``probs`` or ``logits``)."""

    def _init_binary(self, probs, logits, extra=()):
        _one_of(probs, logits)
        if probs is not None:
            (*extra, self.probs) = _broadcast(*extra, probs)
            shape = self.probs.shape
        else:
            (*extra, self.logits) = _broadcast(*extra, logits)
            shape = self.logits.shape
        return extra, shape

    @cached_property
    def probs(self):
        return ad.sigmoid(self.logits)

    @cached_property
    def logits(self):
        return _probs_to_logits(self.probs, is_binary=True)

    @property
    def param_shape(self):
        return self.__dict__["probs" if "probs" in self.__dict__ else "logits"].shape


class Bernoulli(_Binary, ExponentialFamily):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        _, shape = self._init_binary(probs, logits)
        super().__init__(shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        mode = (self.probs >= 0.5).to(self.probs.dtype)
        return ad.where(self.probs == 0.5, ad.full_like(mode, float("nan")), mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        with ad.no_grad():
            return ad.bernoulli(self.probs.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = ad.broadcast_tensors(self.logits, value.to(self.logits.dtype))
        return -ad.nn.functional.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return ad.nn.functional.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    @property
    def _natural_params(self):  # T(x) = x
        return (self.logits,)

    def _log_normalizer(self, x):
        return ad.nn.functional.softplus(x)

    @property
    def _mean_carrier_measure(self):
        return 0

    def enumerate_support(self, expand=True):
        p = self.__dict__.get("probs", self.__dict__.get("logits"))
        values = ad.arange(2, dtype=p.dtype, device=p.device).reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values


class Geometric(_Binary):
    """The number of failures before the first success, each trial a success with probability ``probs``."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        _, shape = self._init_binary(probs, logits)
        super().__init__(shape, validate_args=validate_args)
        if self._validate_args and probs is not None and not bool((self.probs > 0).all()):
            raise ValueError(
                f"Expected parameter probs ({type(self.probs).__name__} of shape {tuple(self.probs.shape)}) of "
                f"distribution {self!r} to satisfy the constraint {constraints.interval(0.0, 1.0)!r}, but found "
                f"invalid values:\n{self.probs}"
            )

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return ad.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        with ad.no_grad():
            shape = self._extended_shape(sample_shape)
            tiny = float(np.finfo(self.probs._data.dtype).tiny)
            u = ad.rand(shape, dtype=self.probs.dtype, device=self.probs.device).clamp(min=tiny)
            return (u.log() / ad.log1p(-self.probs)).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = ad.broadcast_tensors(value.to(self.probs.dtype), self.probs)
        q = ad.where((probs == 1) & (value == 0), ad.zeros_like(probs), probs)  # (0 * log(0) := 0)
        return value * ad.log1p(-q) + self.probs.log()

    def entropy(self):
        bce = ad.nn.functional.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")
        return bce / self.probs


class Binomial(_Binary):
    """The number of successes in ``total_count`` independent trials, each with probability ``probs``."""

    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        (self.total_count,), shape = self._init_binary(probs, logits, (total_count,))
        self.total_count = self.total_count.to(self.__dict__.get("probs", self.__dict__.get("logits")).dtype)
        super().__init__(shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        from ..random import _rng_of

        shape = self._extended_shape(sample_shape)
        n = self.total_count.detach().expand(shape).cpu().numpy()
        p = self.probs.detach().expand(shape).cpu().numpy()
        return ad.tensor(_rng_of(None).binomial(n.astype(np.int64), p).astype(p.dtype), device=self.probs.device)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, k = self.total_count, value.to(self.total_count.dtype)
        log_binom = ad.lgamma(n + 1) - ad.lgamma(k + 1) - ad.lgamma(n - k + 1)
        # k log p + (n - k) log(1 - p) from the logits: k * logits - n * softplus(logits)
        return log_binom + k * self.logits - n * ad.nn.functional.softplus(self.logits)

    def entropy(self):
        n = self.total_count
        if not bool((n == n.max()).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        values = self.enumerate_support(False)
        log_prob = self.log_prob(values)
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand=True):
        n = int(self.total_count.max())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = ad.arange(1 + n, dtype=self.total_count.dtype, device=self.total_count.device)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values


class Poisson(ExponentialFamily):
    """The Poisson distribution with mean ``rate``."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = _broadcast(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        with ad.no_grad():
            return ad.poisson(self.rate.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = ad.broadcast_tensors(self.rate, value.to(self.rate.dtype))
        return ad.xlogy(value, rate) - rate - ad.lgamma(value + 1)

    # T(x) = x, h(x) = 1 / x!: E[log h] = -E[log x!] has no closed form, so there is no entropy (as torch)
    @property
    def _natural_params(self):
        return (self.rate.log(),)

    def _log_normalizer(self, x):
        return x.exp()


class Categorical(Distribution):
    """One of K categories (the last dim of ``probs``, normalized, or of ``logits``, log-normalized)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        _one_of(probs, logits)
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
        param = self.__dict__["probs" if probs is not None else "logits"]
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], validate_args=validate_args)

    @cached_property
    def probs(self):
        return ad.softmax(self.logits, -1)

    @cached_property
    def logits(self):
        return _probs_to_logits(self.probs)

    @property
    def param_shape(self):
        return self.__dict__["probs" if "probs" in self.__dict__ else "logits"].shape

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        shape = tuple(batch_shape) + (self._num_events,)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(shape))
        new._num_events = self._num_events
        return self._expanded(new, batch_shape)

    @property
    def mean(self):
        return ad.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype, device=self.probs.device)

    @property
    def mode(self):
        return self.probs.argmax(-1)

    @property
    def variance(self):
        return self.mean

    def sample(self, sample_shape=()):
        sample_shape = ad.Size(sample_shape)
        with ad.no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)
            n = int(np.prod(sample_shape)) if len(sample_shape) else 1
            draws = ad.multinomial(probs_2d, n, True).T
            return draws.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = ad.broadcast_tensors(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self):
        low = float(np.finfo(self.logits._data.dtype).min)
        return -(self.logits.clamp(min=low) * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = ad.arange(self._num_events, device=self.__dict__.get("probs", self.__dict__.get("logits")).device)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values


class OneHotCategorical(Distribution):
    """``Categorical``'s draws as one-hot vectors (event shape ``(K,)``)."""

    _repr_shows_parameters = False  # (torch's: see Distribution)

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        param = self._categorical.param_shape
        super().__init__(param[:-1], param[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        new._categorical = self._categorical.expand(batch_shape)
        return self._expanded(new, batch_shape)

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self._categorical.probs

    @property
    def mode(self):
        probs = self._categorical.probs
        return ad.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self):
        return self._categorical.probs * (1 - self._categorical.probs)

    def sample(self, sample_shape=()):
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape)
        return ad.nn.functional.one_hot(indices, probs.shape[-1]).to(probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand=True):
        n = self.event_shape[0]
        probs = self._categorical.probs
        values = ad.eye(n, dtype=probs.dtype, device=probs.device).reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        return values.expand((n,) + tuple(self.batch_shape) + (n,)) if expand else values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """``OneHotCategorical`` whose ``rsample`` is the one-hot draw in value but passes gradients to ``probs`` as
    if it were ``probs`` (the straight-through estimator, Bengio et al. 2013): draw + probs - probs.detach()."""

    has_rsample = True

    def rsample(self, sample_shape=()):
        draw = self.sample(sample_shape)
        probs = self._categorical.probs
        return draw + (probs - probs.detach())


class NegativeBinomial(_Binary):
    """The number of successes (each with probability ``probs``) before ``total_count`` failures."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0), "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        (self.total_count,), shape = self._init_binary(probs, logits, (total_count,))
        self.total_count = self.total_count.to(self.__dict__.get("probs", self.__dict__.get("logits")).dtype)
        super().__init__(shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / ad.sigmoid(-self.logits)

    def sample(self, sample_shape=()):
        """A Poisson draw whose rate is a Gamma(total_count, (1 - p) / p) draw."""
        from ..random import _rng_of

        rng = _rng_of(None)
        shape = tuple(self._extended_shape(sample_shape))
        r = np.broadcast_to(self.total_count.detach().cpu().numpy(), shape)
        odds = np.broadcast_to(self.logits.detach().exp().cpu().numpy(), shape)
        rate = rng.standard_gamma(r) * odds
        dtype = self.total_count._data.dtype
        return ad.tensor(rng.poisson(rate).astype(dtype), device=self.total_count.device)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        r, logits = self.total_count, self.logits
        k = value.to(r.dtype)
        log_terms = r * ad.nn.functional.logsigmoid(-logits) + k * ad.nn.functional.logsigmoid(logits)
        log_binom = ad.lgamma(r + k) - ad.lgamma(1 + k) - ad.lgamma(r)
        # r + k == 0: the empty case, probability 1 (the lgamma terms are inf - inf there)
        log_binom = ad.where(r + k == 0, ad.zeros_like(log_binom), log_binom)
        return log_terms + log_binom


class Multinomial(Distribution):
    """Counts of ``total_count`` draws from a ``Categorical(probs, logits)`` (event shape ``(K,)``)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        param = self._categorical.param_shape
        super().__init__(param[:-1], param[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        return self._expanded(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        from ..random import _rng_of

        shape = tuple(self._extended_shape(sample_shape))
        probs = self.probs.detach().cpu().numpy()
        pvals = np.broadcast_to(probs, shape).astype(np.float64)
        counts = _rng_of(None).multinomial(self.total_count, pvals / pvals.sum(-1, keepdims=True))
        return ad.tensor(counts.astype(probs.dtype), device=self.probs.device)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = ad.broadcast_tensors(self.logits, value.to(self.logits.dtype))
        # 0 * log(0) := 0 for categories of probability zero that were not drawn
        logits = ad.where((value == 0) & ad.isinf(logits), ad.zeros_like(logits), logits)
        return ad.lgamma(value.sum(-1) + 1) - ad.lgamma(value + 1).sum(-1) + (logits * value).sum(-1)

    def entropy(self):
        """-E[log p(x)] = -log n! + sum_i E[log x_i!] - n sum_i p_i log p_i, each x_i ~ Binomial(n, p_i)."""
        n = self.total_count
        counts = ad.arange(n + 1, dtype=self.probs.dtype, device=self.probs.device)
        counts = counts.reshape((-1,) + (1,) * (len(self.batch_shape) + 1))
        marginals = Binomial(n, self.probs, validate_args=False)
        expected_log_factorial = (marginals.log_prob(counts).exp() * ad.lgamma(counts + 1)).sum(0).sum(-1)
        return n * self._categorical.entropy() - math.lgamma(n + 1) + expected_log_factorial
