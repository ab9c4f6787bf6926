"""``Distribution``: the base class (shapes, argument and sample validation, ``expand``, the defaults).

Shapes, as torch's: a distribution holds a batch of independent distributions (``batch_shape``) over events of
``event_shape``; ``sample(sample_shape)`` has shape ``sample_shape + batch_shape + event_shape``, and
``log_prob(value)`` the shape of ``value`` less ``event_shape`` (broadcast against ``batch_shape``).

Parameters are broadcast tensors (``_broadcast``: numbers become tensors of the others' dtype, else the default
dtype). Every density and every ``rsample`` is written with ``ad`` ops, so gradients of any order, forward mode
and CUDA parameters come from the ops themselves.
"""

import math
import numbers

import ad

from ..conveniences import _InferenceState
from . import constraints

__all__ = ["Distribution"]


def _broadcast(*values):
    """``values`` (tensors and numbers) as tensors broadcast to one shape, numbers in the tensors' dtype and on their
    device (the default dtype when all are numbers)."""
    tensors = [v for v in values if isinstance(v, ad.Tensor)]
    if len(tensors) + sum(isinstance(v, numbers.Number) for v in values) != len(values):
        raise ValueError("Input arguments must all be instances of numbers.Number or Tensor.")
    like = tensors[0] if tensors else None
    dtype = like.dtype if like is not None else ad.get_default_dtype()
    device = like.device if like is not None else None
    out = [v if isinstance(v, ad.Tensor) else ad.tensor(float(v), dtype=dtype, device=device) for v in values]
    return ad.broadcast_tensors(*out) if len(out) > 1 else out


def _where_defined(condition, x, safe, fn, otherwise):
    """``fn(x)`` where ``condition`` holds and the constant ``otherwise`` (inf or NaN) elsewhere: a moment that
    exists only for some parameters. ``fn`` sees ``safe`` in place of ``x`` outside ``condition``, so that its
    infinite value or derivative there (a pole at the boundary) cannot reach the gradient as inf * 0 = NaN: the
    gradient of a constant region is 0, as torch's."""
    inside = ad.where(condition, x, ad.full_like(x, safe))
    value = fn(inside)
    return ad.where(condition, value, ad.full_like(value, otherwise))


def _sum_rightmost(value, dims):
    return value.sum(list(range(-dims, 0))) if dims > 0 else value


class cached_property:  # noqa: N801 - computed once per instance (Bernoulli's probs from its logits, ...)
    """Computed on first use and kept; always with grad recording (outside inference mode), as torch's: the first
    use may be ``sample()``'s, under ``no_grad``, and the value kept then is the one ``entropy()`` and
    ``log_prob()`` differentiate later (recorded under no_grad it would give them a silent zero gradient)."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.name = fn.__name__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        if _InferenceState.depth:
            value = self.fn(obj)
        else:
            with ad.enable_grad():
                value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


class Distribution:
    """Base class of the distributions: subclasses set ``arg_constraints``, ``support``, ``has_rsample`` and
    implement what they can of ``rsample``/``sample``, ``log_prob``, ``cdf``, ``icdf``, ``entropy``, ``mean``,
    ``mode``, ``variance``, ``enumerate_support`` and ``expand`` (the rest raise ``NotImplementedError``)."""

    has_rsample = False
    has_enumerate_support = False
    _validate_args = True
    arg_constraints = {}
    support = None
    # torch's repr names the parameters its instance holds: one built over another distribution (LogNormal over
    # Normal, Beta over Dirichlet, Chi2 as a Gamma, OneHotCategorical over Categorical) holds them there and prints
    # none, as "LogNormal()"; those set this False
    _repr_shows_parameters = True

    @staticmethod
    def set_default_validate_args(value):
        """Whether distributions check their arguments (and ``log_prob``'s values) by default (torch: True)."""
        if value not in (True, False):
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = ad.Size(batch_shape)
        self._event_shape = ad.Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for param, constraint in self.arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue
                if param not in self.__dict__ and isinstance(getattr(type(self), param, None), cached_property):
                    continue  # (the other parameterization: computed from a checked one)
                value = getattr(self, param)
                if not bool(constraint.check(value).all()):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape {tuple(value.shape)}) of "
                        f"distribution {self!r} to satisfy the constraint {constraint!r}, but found invalid "
                        f"values:\n{value}"
                    )

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def expand(self, batch_shape, _instance=None):
        """The same distribution over a larger batch (parameters expanded: views, no copies)."""
        batch_shape = ad.Size(batch_shape)
        new = self._blank(_instance)
        for name in self._expand_params():
            value = self.__dict__[name]
            event = value.shape[len(self.batch_shape):]
            setattr(new, name, value.expand(batch_shape + event))
        for name, value in self.__dict__.items():
            if name not in new.__dict__ and not isinstance(value, ad.Tensor):
                new.__dict__[name] = value
        return self._expanded(new, batch_shape)

    def _blank(self, _instance):
        """The instance ``expand`` fills in: ``_instance`` (a subclass's ``expand`` passing its own) or a new one."""
        return type(self).__new__(type(self)) if _instance is None else _instance

    def _expanded(self, new, batch_shape):
        """Finish ``expand``: ``new``, its parameters set, takes ``batch_shape``, this event shape and this
        instance's validation setting (its parameters were checked when this one was made)."""
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _expand_params(self):
        return [name for name in self.arg_constraints if isinstance(self.__dict__.get(name), ad.Tensor)]

    def _extended_shape(self, sample_shape=()):
        return ad.Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def sample(self, sample_shape=()):
        """A sample of shape ``sample_shape + batch_shape + event_shape``, not differentiable."""
        with ad.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        """A reparameterized sample: differentiable with respect to the parameters."""
        raise NotImplementedError

    def sample_n(self, n):
        return self.sample((n,))

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def enumerate_support(self, expand=True):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self)} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError

    @property
    def stddev(self):
        return self.variance.sqrt()

    def perplexity(self):
        return self.entropy().exp()

    def _validate_sample(self, value):
        """With ``validate_args``: ``value`` is a tensor whose rightmost dims are ``event_shape``, broadcastable with
        ``batch_shape``, inside ``support`` (ValueError otherwise, with torch's words)."""
        if not isinstance(value, ad.Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = len(value.shape) - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != tuple(self._event_shape):
            raise ValueError(
                f"The right-most size of value must match event_shape: {tuple(value.shape)} vs "
                f"{tuple(self._event_shape)}."
            )
        actual, expected = value.shape, self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {tuple(actual)} vs "
                                 f"{tuple(expected)}.")
        support = self.support
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within the "
                f"support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}"
            )

    def __repr__(self):
        """torch's format: each parameter held, a one-element one as its value (a 0-d tensor formats as its number,
        ``Normal(loc: 0.0, scale: 1.0)``), a larger one as its shape (``Normal(loc: ad.Size([3]), ...)``)."""
        names = [k for k in self.arg_constraints if k in self.__dict__] if self._repr_shows_parameters else []
        args = ", ".join(
            f"{k}: {self.__dict__[k] if self.__dict__[k].numel() == 1 else ad.Size(self.__dict__[k].shape)}"
            for k in names
        )
        return f"{type(self).__name__}({args})"


def _log_normalizer_2pi():
    return 0.5 * math.log(2 * math.pi)
