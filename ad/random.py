"""``ad.Generator``: torch's random-number generator object, around a ``numpy.random.Generator``.

``ad.manual_seed`` reseeds the module-level generator (``creation._rng``) that every draw uses by default;
a ``Generator`` passed as ``generator=`` (``ad.rand``, ``ad.randn``, ``ad.randint``, the dropouts) draws
from its own stream instead. It delegates the draws (``random``, ``standard_normal``, ``integers``,
``uniform``) to its numpy generator, so anything that accepts a numpy generator accepts it.
"""

import contextlib

import numpy as np

_DEFAULT_SEED = 67280421310721  # torch's default_rng_seed_val


class Generator:
    """A seeded stream of random numbers (``manual_seed``, ``seed``, ``initial_seed``, ``get_state``,
    ``set_state``), as ``torch.Generator`` (CPU only).

    Example:
        >>> g = ad.Generator().manual_seed(0)
        >>> a = ad.rand(2, generator=g); b = ad.rand(2, generator=g.manual_seed(0)); bool((a == b).all())
        True
    """

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"ad.Generator: only the cpu device is supported, got {device}")
        self.device = device
        self._seed = _DEFAULT_SEED
        self._np = np.random.default_rng(self._seed)

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            seed += 1 << 64
        self._seed = seed
        self._np = np.random.default_rng(seed)
        return self

    def seed(self):
        self._seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self._np = np.random.default_rng(self._seed)
        return self._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self._np.bit_generator.state

    def set_state(self, state):
        self._np.bit_generator.state = state
        return self

    def __getattr__(self, name):  # random, standard_normal, integers, uniform, ...: the numpy generator's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._np, name)


def _rng_of(generator):
    """The numpy generator to draw from: ``generator``'s, else the one ``ad.manual_seed`` resets."""
    from .observe import value_read

    value_read("a random draw")
    if generator is None:
        from . import creation

        return creation._rng
    return generator._np if isinstance(generator, Generator) else generator


# ---------------------------------------------------------------------------------------------------------
# torch's samplers: the in-place ``Tensor.uniform_`` family and the top-level ``bernoulli``, ``multinomial``,
# ``normal``, ``poisson``, ``randperm``, ``randint_like`` and the default generator's state.
#
# An in-place sampler writes through ``copy_``, so it is recorded as torch's (the old value keeps a zero gradient;
# a leaf that requires grad refuses it in grad mode). A sample drawn from tensor parameters (``bernoulli(p)``,
# ``normal(mean, std)``, ``poisson(rate)``) is connected to them with a zero gradient, as torch's.


def _check_float(t, kernel):
    if t.dtype.kind != "f":
        from .ops.linalg import torch_dtype_name

        raise NotImplementedError(f'"{kernel}" not implemented for \'{torch_dtype_name(t.dtype)}\'')


def _check_continuous(t, distribution, long_name):
    """torch's error for a continuous sampler on an integer tensor (``long_name``: how its message names int64)."""
    if t.dtype.kind != "f":
        from .ops.linalg import torch_dtype_name

        name = long_name if t.dtype == np.int64 else torch_dtype_name(t.dtype)
        raise RuntimeError(
            f"{distribution} distribution is a continuous probability distribution. dtype must be a floating point "
            f"but you specified {name}"
        )


def _write_sample(t, values):
    from .tensor import wrap_array

    return t.copy_(wrap_array(np.asarray(values).astype(t.dtype, copy=False)))


def uniform_(self, from_=0.0, to=1.0, *, generator=None):
    """Fill with draws from U(from_, to) (torch's ``uniform_(from, to)``)."""
    _check_float(self, "check_uniform_bounds")
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
    return _write_sample(self, _rng_of(generator).uniform(from_, to, self.shape))


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with draws from N(mean, std^2)."""
    _check_float(self, "normal_kernel_cpu")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _write_sample(self, _rng_of(generator).normal(mean, std, self.shape))


def _random_limit(dtype):
    """``random_()``'s exclusive upper bound: every integer the dtype holds exactly (torch's rule)."""
    if dtype.kind == "f":
        return (1 << (np.finfo(dtype).nmant + 1)) + 1
    if dtype.kind == "b":
        return 2
    return int(np.iinfo(dtype).max) + 1


def random_(self, from_=0, to=None, *, generator=None):
    """Fill with integers drawn uniformly from [from_, to); ``random_(to)``: [0, to); ``random_()``: [0, the
    largest integer the dtype holds exactly]."""
    if to is None and from_ != 0:
        from_, to = 0, from_
    if to is None:
        to = _random_limit(self.dtype)
    if from_ >= to:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={from_} >= to={to}")
    return _write_sample(self, _rng_of(generator).integers(from_, to, self.shape, dtype=np.int64, endpoint=False))


def _check_probability(p, name):
    if not 0 <= p <= 1:
        raise RuntimeError(f"{name} expects p to be in [0, 1], but got p={p}")


def bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 1 (probability ``p``, a number or a tensor broadcast to ``self``) or 0."""
    from .tensor import Tensor

    rng = _rng_of(generator)
    if isinstance(p, Tensor):
        probs = np.broadcast_to(p.detach().cpu()._data, self.shape)
        if probs.size and (np.nanmin(probs) < 0 or np.nanmax(probs) > 1 or np.isnan(probs).any()):
            raise RuntimeError("bernoulli_ expects p to be in [0, 1]")
    else:
        _check_probability(float(p), "bernoulli_")
        probs = float(p)
    return _write_sample(self, rng.random(self.shape) < probs)


def exponential_(self, lambd=1.0, *, generator=None):
    """Fill with draws from the exponential distribution of rate ``lambd``."""
    _check_continuous(self, "Exponential", "Long")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    return _write_sample(self, _rng_of(generator).exponential(1.0 / lambd, self.shape))


def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """Fill with draws from the Cauchy distribution."""
    _check_continuous(self, "Cauchy", "long int")
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    return _write_sample(self, median + sigma * _rng_of(generator).standard_cauchy(self.shape))


def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """Fill with ``exp`` of draws from N(mean, std^2)."""
    _check_float(self, "log_normal_cpu")
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    return _write_sample(self, _rng_of(generator).lognormal(mean, std, self.shape))


def geometric_(self, p, *, generator=None):
    """Fill with the number of Bernoulli(p) trials up to the first success (1, 2, ...)."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    return _write_sample(self, _rng_of(generator).geometric(p, self.shape))


def _zero_grad_sample(values, *params):
    """``values`` (a numpy sample) as a tensor connected to the tensor ``params`` with a zero gradient, as torch's
    samplers are (their derivative is zero)."""
    from . import ops
    from .tensor import Tensor, wrap_array

    out = wrap_array(values)
    device = next((p.device for p in params if isinstance(p, Tensor) and p._dev is not None), None)
    if device is not None:
        out = out.to(device)  # (joined to device parameters on their device)
    for p in params:
        if isinstance(p, Tensor) and p.requires_grad:
            out = ops.overwritten(ops.expand(p, values.shape), out)
    return out


def bernoulli(input, p=None, *, generator=None, out=None):
    """0/1 draws with the probabilities ``input`` (or the number ``p`` for every element), in ``input``'s dtype."""
    from .ops.out import write_result

    rng = _rng_of(generator)
    probs = input.detach().cpu()._data
    if p is not None:
        _check_probability(float(p), "bernoulli")
        probs = np.full(probs.shape, float(p))
    elif probs.size and (np.isnan(probs).any() or probs.min() < 0 or probs.max() > 1):
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    values = (rng.random(probs.shape) < probs).astype(input.dtype)
    return write_result("bernoulli", _zero_grad_sample(values, input).to(input.device), out, warn_resize=False)


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    """Indices drawn from the categories of each row of ``input`` (1-D or 2-D non-negative weights), int64.
    Without replacement each row's draws are distinct (an exponential race: weight-proportional, in order)."""
    from .ops.out import write_result
    from .tensor import wrap_array

    w = input.detach().cpu()._data.astype(np.float64)
    if w.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > w.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if not np.isfinite(w).all() or (w < 0).any():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    rows = w.reshape(-1, w.shape[-1])
    if (rows.sum(axis=1) <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rng = _rng_of(generator)
    if replacement:
        cdf = np.cumsum(rows, axis=1)
        u = rng.random((rows.shape[0], num_samples)) * cdf[:, -1:]
        idx = np.stack([np.searchsorted(c, r, side="right") for c, r in zip(cdf, u)])
        idx = np.minimum(idx, rows.shape[1] - 1)
    else:
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=rows.shape) / rows  # zero weight: inf, drawn last
        idx = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    idx = idx.astype(np.int64).reshape(w.shape[:-1] + (num_samples,))
    return write_result("multinomial", wrap_array(idx).to(input.device), out, same_dtype=True, warn_resize=False)


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None, device=None,
           pin_memory=False, requires_grad=False):
    """Draws from N(mean, std^2): ``mean`` and ``std`` tensors (broadcast) or numbers (then ``size`` is needed)."""
    from . import creation
    from .ops.out import write_result
    from .tensor import Tensor, wrap_array

    rng = _rng_of(generator)
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal() received an invalid combination of arguments: give size with number mean and std")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        dt = np.dtype(dtype) if dtype is not None else creation._default_float
        t = wrap_array(rng.normal(mean, std, tuple(size)).astype(dt))
        device = creation.or_default_device(device)
        t = t.to(device) if device is not None else t
        if requires_grad:
            t.requires_grad_(True)
        return write_result("normal", t, out)
    m = mean.detach().cpu()._data if isinstance(mean, Tensor) else np.float64(mean)
    s = std.detach().cpu()._data if isinstance(std, Tensor) else np.float64(std)
    if isinstance(std, Tensor) and std.dtype.kind == "f" and s.size and (s < 0).any():
        raise RuntimeError(f"normal expects all elements of std >= 0.0, but found std {s.min()}")
    if not isinstance(std, Tensor) and s < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    try:
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
    except ValueError:
        raise RuntimeError(
            f"The size of tensor a ({np.shape(m)[-1]}) must match the size of tensor b ({np.shape(s)[-1]}) at "
            "non-singleton dimension 0"
        ) from None
    dt = tensors[0].dtype
    values = rng.normal(np.broadcast_to(m, shape), np.broadcast_to(s, shape)).astype(dt)
    return write_result("normal", _zero_grad_sample(values, mean, std).to(tensors[0].device), out)


def poisson(input, generator=None):
    """Draws from the Poisson distributions of the rates ``input`` (non-negative), in ``input``'s dtype."""
    rate = input.detach().cpu()._data
    if rate.size and (np.isnan(rate).any() or rate.min() < 0):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    values = _rng_of(generator).poisson(rate).astype(input.dtype)
    return _zero_grad_sample(values, input).to(input.device)


def binomial(count, prob, generator=None):
    """Draws from the binomial distributions of ``count`` trials with success probability ``prob`` (floating
    tensors of one shape), in ``count``'s dtype. Not differentiable: torch's backward raises for it, so the result
    does not require grad.

    Raises:
        ValueError: ``count`` or ``prob`` is not floating (torch's class and message).
    """
    from .ops.linalg import torch_dtype_name
    from .tensor import wrap_array

    for t in (count, prob):
        if t.dtype.kind != "f":
            name = torch_dtype_name(t.dtype)
            raise ValueError(f"binomial only supports floating-point dtypes for {'count' if t is count else 'prob'}, "
                               f"got: {name}")
    n = count.detach().cpu()._data
    p = np.clip(prob.detach().cpu()._data, 0.0, 1.0)
    values = _rng_of(generator).binomial(np.maximum(n, 0).astype(np.int64), p).astype(count.dtype)
    return wrap_array(values).to(count.device)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None, pin_memory=False,
             requires_grad=False):
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype``)."""
    from . import creation
    from .ops.out import write_result
    from .tensor import wrap_array

    n = int(n)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    t = wrap_array(_rng_of(generator).permutation(n).astype(np.dtype(dtype) if dtype is not None else np.int64))
    device = creation.or_default_device(device)
    t = t.to(device) if device is not None else t
    if requires_grad:
        t.requires_grad_(True)
    return write_result("randperm", t, out, warn_resize=False)


def randint_like(input, low=0, high=None, *, dtype=None, layout=None, device=None, requires_grad=False,
                 memory_format=None, generator=None):
    """Integers from [low, high) (``randint_like(input, high)``: [0, high)) in ``input``'s shape and dtype."""
    from . import creation

    if high is None:
        low, high = 0, low
    return creation.randint(
        low, high, tuple(input.shape), generator=generator, dtype=dtype or input.dtype,
        device=device if device is not None else input.device, requires_grad=requires_grad,
    )


def manual_seed(seed):
    """``torch.random.manual_seed``: ``ad.manual_seed`` (seeds the default generator)."""
    from . import creation

    return creation.manual_seed(seed)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type=None):
    """``torch.random.fork_rng()``: a block whose random draws leave the default generator as it was: on exit the
    generator (and its seed, even after ``manual_seed`` inside the block) is restored. ad draws for every device
    from that one generator, so ``devices`` and ``device_type`` name nothing more to save. ``enabled=False``: a
    no-op.

    Example:
        >>> with ad.random.fork_rng():
        ...     noise = ad.randn(3)  # the draws after the block are those without it
    """
    from . import creation

    if not enabled:
        yield
        return
    rng, state, seed = creation._rng, creation._rng.bit_generator.state, creation._seed
    try:
        yield
    finally:
        rng.bit_generator.state = state
        creation._rng, creation._seed = rng, seed


def get_rng_state():
    """The default generator's state as a uint8 tensor (``set_rng_state`` takes it back)."""
    import json

    from . import creation
    from .tensor import wrap_array

    blob = json.dumps(creation._rng.bit_generator.state).encode()
    return wrap_array(np.frombuffer(blob, np.uint8).copy())


def set_rng_state(new_state):
    """Restore the default generator's state from ``get_rng_state()``."""
    import json

    from . import creation

    data = new_state.detach().cpu()._data
    if data.dtype != np.uint8 or data.ndim != 1:
        raise TypeError("set_rng_state(): expected a uint8 tensor from get_rng_state()")
    creation._rng.bit_generator.state = json.loads(data.tobytes().decode())


def initial_seed():
    """The seed of the default generator (``manual_seed``'s argument, or the seed drawn at import)."""
    from . import creation

    return creation._seed


def seed():
    """Reseed the default generator from the operating system's entropy; returns the seed."""
    from . import creation

    new_seed = int(np.random.SeedSequence().entropy % (1 << 63))
    creation.manual_seed(new_seed)
    return new_seed


def bind():
    """``Tensor``'s samplers."""
    from .tensor import Tensor

    for fn in (uniform_, normal_, random_, bernoulli_, exponential_, cauchy_, log_normal_, geometric_):
        setattr(Tensor, fn.__name__, fn)
    Tensor.bernoulli = lambda self, p=None, *, generator=None: bernoulli(self, p, generator=generator)
    Tensor.multinomial = multinomial
