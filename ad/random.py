"""``ad.Generator``: torch's random-number generator object, around a ``numpy.random.Generator``.

``ad.manual_seed`` reseeds the module-level generator (``creation._rng``) that every draw uses by default;
a ``Generator`` passed as ``generator=`` (``ad.rand``, ``ad.randn``, ``ad.randint``, the dropouts) draws
from its own stream instead. It delegates the draws (``random``, ``standard_normal``, ``integers``,
``uniform``) to its numpy generator, so anything that accepts a numpy generator accepts it.
"""

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
