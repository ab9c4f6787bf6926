"""``MixtureSameFamily``: a finite mixture whose components are one batched distribution (the rightmost batch dim
indexes the components) weighted by a ``Categorical``."""

import ad

from . import constraints
from .discrete import Categorical
from .distribution import Distribution

__all__ = ["MixtureSameFamily"]


class MixtureSameFamily(Distribution):
    """p(x) = sum_k pi_k p_k(x) with pi = ``mixture_distribution.probs`` and p_k the k-th of
    ``component_distribution``'s rightmost batch dim.

    Example:
        >>> mix = ad.distributions.Categorical(ad.ones(3))
        >>> comp = ad.distributions.Normal(ad.tensor([-1.0, 0.0, 2.0]), ad.ones(3))
        >>> ad.distributions.MixtureSameFamily(mix, comp).log_prob(ad.tensor(0.5))
    """

    arg_constraints = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(" The Mixture distribution needs to be an instance of torch.distributions.Categorical")
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution need to be an instance of torch.distributions.Distribution")
        mix_batch = tuple(mixture_distribution.batch_shape)
        comp_batch = tuple(component_distribution.batch_shape[:-1])
        for a, b in zip(reversed(mix_batch), reversed(comp_batch)):
            if a != 1 and b != 1 and a != b:
                raise ValueError(f"`mixture_distribution.batch_shape` ({mix_batch}) is not compatible with "
                                 f"`component_distribution.batch_shape`({comp_batch})")
        k_mix = mixture_distribution.logits.shape[-1]
        k_comp = component_distribution.batch_shape[-1]
        if k_mix is not None and k_comp is not None and k_mix != k_comp:
            raise ValueError(f"`mixture_distribution component` ({k_mix}) does not equal "
                             f"`component_distribution.batch_shape[-1]` ({k_comp})")
        self._num_component = k_mix
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(comp_batch, component_distribution.event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._blank(_instance)
        batch_shape = tuple(batch_shape)
        new._component_distribution = self._component_distribution.expand(batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)
        new._num_component, new._event_ndims = self._num_component, self._event_ndims
        return self._expanded(new, batch_shape)

    @constraints.dependent_property
    def support(self):
        return constraints.MixtureSameFamilyConstraint(self._component_distribution.support)

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    def _weights(self):
        """The mixture probabilities shaped to broadcast against a component-indexed value (component dim,
        then the event dims)."""
        probs = self._mixture_distribution.probs
        return probs.reshape(tuple(probs.shape) + (1,) * self._event_ndims)

    def _with_component_dim(self, x):
        return x.unsqueeze(-1 - self._event_ndims)

    @property
    def mean(self):
        return (self._weights() * self._component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self):
        """Law of total variance: E[Var(x | k)] + Var(E[x | k])."""
        w, comp, dim = self._weights(), self._component_distribution, -1 - self._event_ndims
        within = (w * comp.variance).sum(dim)
        between = (w * (comp.mean - self._with_component_dim(self.mean)).pow(2)).sum(dim)
        return within + between

    def cdf(self, x):
        x = self._with_component_dim(x)
        return (self._component_distribution.cdf(x) * self._mixture_distribution.probs).sum(-1)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        log_components = self._component_distribution.log_prob(self._with_component_dim(x))
        log_weights = ad.log_softmax(self._mixture_distribution.logits, -1)
        return (log_components + log_weights).logsumexp(-1)

    def sample(self, sample_shape=()):
        with ad.no_grad():
            sample_shape = tuple(sample_shape)
            mixture = self._mixture_distribution
            if tuple(mixture.batch_shape) != tuple(self.batch_shape):  # (a mixture batch broadcast to the components')
                mixture = mixture.expand(self.batch_shape)
            index = mixture.sample(sample_shape)  # sample + batch
            draws = self._component_distribution.sample(sample_shape)  # sample + batch + (K,) + event
            event = tuple(self.event_shape)
            index = index.reshape(tuple(index.shape) + (1,) * (1 + len(event)))
            index = index.expand(tuple(index.shape[: len(index.shape) - 1 - len(event)]) + (1,) + event)
            return draws.gather(len(draws.shape) - 1 - len(event), index).squeeze(-1 - len(event))

    def __repr__(self):
        return f"MixtureSameFamily(\n  {self._mixture_distribution!r},\n  {self._component_distribution!r})"
