"""Relaxed (concrete / Gumbel-softmax) distributions: continuous, reparameterizable stand-ins for Bernoulli and
one-hot categorical draws, sharper as ``temperature`` goes to 0 (Maddison et al. 2017; Jang et al. 2017).

``LogitRelaxedBernoulli`` and ``ExpRelaxedCategorical`` live in logit / log space (their densities are the stable
ones); ``RelaxedBernoulli`` and ``RelaxedOneHotCategorical`` are their sigmoid and exp transforms.
"""

import math

import numpy as np

import ad

from . import constraints
from .discrete import Categorical, _Binary
from .distribution import Distribution
from .transformed import TransformedDistribution
from .transforms import ExpTransform, SigmoidTransform

__all__ = ["ExpRelaxedCategorical", "LogitRelaxedBernoulli", "RelaxedBernoulli", "RelaxedOneHotCategorical"]


def _open_unit_noise(shape, like):
    """Uniform noise in [eps, 1 - eps] (its logs and logits finite)."""
    eps = float(np.finfo(like._data.dtype).eps)
    return ad.rand(shape, dtype=like.dtype, device=like.device).clamp(min=eps, max=1 - eps)


class LogitRelaxedBernoulli(_Binary):
    """The logit of a relaxed Bernoulli draw: (logits + logistic noise) / temperature."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self.temperature = temperature
        _, shape = self._init_binary(probs, logits)
        super().__init__(shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(tuple(batch_shape)))
        new.temperature = self.temperature
        return self._expanded(new, batch_shape)

    def rsample(self, sample_shape=()):
        u = _open_unit_noise(self._extended_shape(sample_shape), self.logits)
        return (u.log() - ad.log1p(-u) + self.logits) / self.temperature

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = ad.broadcast_tensors(self.logits, value)
        t = self.temperature
        log_t = t.log() if isinstance(t, ad.Tensor) else math.log(t)
        diff = logits - value * t
        return log_t + diff - 2 * ad.nn.functional.softplus(diff)


class _Relaxed(TransformedDistribution):
    """A relaxed distribution as a transformed base draw: its parameters are the base's."""

    def _expand_params(self):
        return []

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class RelaxedBernoulli(_Relaxed):
    """sigmoid of a ``LogitRelaxedBernoulli`` draw: values in (0, 1)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)


class ExpRelaxedCategorical(Distribution):
    """The log of a relaxed one-hot categorical draw: log_softmax((logits + Gumbel noise) / temperature)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        self.temperature = temperature
        param = self._categorical.param_shape
        super().__init__(param[:-1], param[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        new.temperature = self.temperature
        new._categorical = self._categorical.expand(batch_shape)
        return self._expanded(new, batch_shape)

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    def rsample(self, sample_shape=()):
        u = _open_unit_noise(self._extended_shape(sample_shape), self.logits)
        gumbels = -(-u.log()).log()
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(-1, keepdim=True)

    def log_prob(self, value):
        """log((K-1)!) + (K-1) log t + sum_i (l_i - t v_i) - K logsumexp_i (l_i - t v_i), for l the normalized
        logits and t the temperature."""
        k = self._categorical._num_events
        if self._validate_args:
            self._validate_sample(value)
        logits, value = ad.broadcast_tensors(self.logits, value)
        t = self.temperature if isinstance(self.temperature, ad.Tensor) else ad.tensor(
            float(self.temperature), dtype=logits.dtype, device=logits.device)
        log_scale = math.lgamma(k) + (k - 1) * t.log()
        score = logits - value * t
        return (score - score.logsumexp(-1, keepdim=True)).sum(-1) + log_scale


class RelaxedOneHotCategorical(_Relaxed):
    """exp of an ``ExpRelaxedCategorical`` draw: a point of the simplex."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)
