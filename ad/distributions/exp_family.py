"""``ExponentialFamily``: the base class of the distributions whose density (with respect to a base measure) is

    p(x) = h(x) exp(<eta, T(x)> - A(eta))

with natural parameters ``eta``, sufficient statistics ``T``, carrier measure ``h`` and log normalizer ``A``. A
subclass gives ``_natural_params`` (a tuple of tensors, each of shape ``batch_shape`` followed by that parameter's
own dims), ``_log_normalizer(*eta)`` (``A``, of shape ``batch_shape``, written with ad ops so that it can be
differentiated) and ``_mean_carrier_measure`` (``E_p[log h(x)]``). From these alone, since ``grad A(eta) =
E_p[T(x)]``:

- ``entropy() = A(eta) - <eta, grad A(eta)> - E_p[log h(x)]``;
- ``kl_divergence(p, q)`` for ``p`` and ``q`` of the same family is the Bregman divergence of ``A``:
  ``A(eta_q) - A(eta_p) - <eta_q - eta_p, grad A(eta_p)>`` (registered in kl.py for the pair
  ``(ExponentialFamily, ExponentialFamily)``: closed forms registered for a concrete pair take precedence).

``grad A`` is taken with ``ad.autograd.grad(..., create_graph=True)`` at the natural parameters themselves, so both
results differentiate in the distribution's parameters (torch's entropy differentiates at detached copies: its
gradient to the parameters is missing).
"""

import ad

from .distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """Base class of the exponential families (see the module's docstring): ``Bernoulli``, ``Beta``, ``Chi2``,
    ``ContinuousBernoulli``, ``Dirichlet``, ``Exponential``, ``Gamma``, ``Normal``, ``Poisson``, ``Wishart``, as in
    torch. Its ``entropy()`` is the generic one, from the log normalizer (the subclasses override it with their
    closed forms, which it equals).

    Raises: NotImplementedError from ``entropy()`` where the mean carrier measure has no closed form (``Poisson``:
    ``E[log x!]``), as torch.
    """

    @property
    def _natural_params(self):
        """The natural parameters ``eta``: a tuple of tensors, each ``batch_shape`` + its own dims."""
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        """``A(eta)``, of shape ``batch_shape``: the log of the integral of ``h(x) exp(<eta, T(x)>)``."""
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        """``E_p[log h(x)]`` (a tensor of ``batch_shape``, or 0 where ``h`` is 1)."""
        raise NotImplementedError

    def entropy(self):
        """``A(eta) - <eta, E[T(x)]> - E[log h(x)]``, with ``E[T(x)] = grad A(eta)`` by autograd."""
        carrier = self._mean_carrier_measure  # (first: raises before any work where it has no closed form)
        etas, log_norm, grads, tracked = _log_normalizer_and_gradient(self)
        result = log_norm - carrier
        for eta, g in zip(etas, grads):
            result = result - _sum_own_dims(eta * g, len(self._batch_shape))
        return _finish(result, tracked)


def _log_normalizer_and_gradient(dist):
    """(eta, A(eta), grad A(eta), whether any eta depends on a tensor that requires grad) of ``dist``; ``grad A``
    has a graph, so that results built from it differentiate in ``dist``'s parameters. A natural parameter that
    does not require grad is differentiated at a fresh leaf (whose graph ``_finish`` then drops)."""
    with ad.enable_grad():
        etas = list(dist._natural_params)
        tracked = any(eta.requires_grad for eta in etas)
        etas = [eta if eta.requires_grad else eta.detach().requires_grad_() for eta in etas]
        log_norm = dist._log_normalizer(*etas)
        grads = ad.autograd.grad(log_norm.sum(), etas, create_graph=True, allow_unused=True)
    grads = [ad.zeros_like(eta) if g is None else g for eta, g in zip(etas, grads)]
    return etas, log_norm, grads, tracked


def _finish(result, tracked):
    """``result``, detached when no parameter it came from requires grad (its graph then leads only to the fresh
    leaves of ``_log_normalizer_and_gradient``) or when the caller's grad mode is off."""
    if not tracked or not ad.is_grad_enabled():
        return result.detach()
    return result


def _sum_own_dims(value, batch_ndim):
    """``value`` (``batch_shape`` + a parameter's own dims) summed over the dims past the batch dims."""
    if value.dim() <= batch_ndim:
        return value
    return value.reshape(tuple(value.shape[:batch_ndim]) + (-1,)).sum(-1)


def _bregman_kl(p, q):
    """KL(p || q) between two members of one exponential family: the Bregman divergence of the log normalizer."""
    if type(p) is not type(q):
        raise NotImplementedError(
            "The cross KL-divergence between different exponential families cannot be computed using Bregman "
            "divergences"
        )
    etas_p, log_norm_p, grads, tracked = _log_normalizer_and_gradient(p)
    with ad.enable_grad():
        etas_q = list(q._natural_params)
        tracked = tracked or any(eta.requires_grad for eta in etas_q)
        result = q._log_normalizer(*etas_q) - log_norm_p
        batch_ndim = len(ad.broadcast_shapes(p.batch_shape, q.batch_shape))
        for eta_p, eta_q, g in zip(etas_p, etas_q, grads):
            result = result - _sum_own_dims((eta_q - eta_p) * g, batch_ndim)
    return _finish(result, tracked)
