"""Argument helpers shared by the layers: ``_single``/``_pair``/``_triple`` expand an int to a tuple, and
``_factory`` makes the empty parameter arrays that ``reset_parameters`` then fills."""

import collections.abc
from itertools import repeat

import numpy as np

from ...creation import empty


def _ntuple(n, name):
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")


def _reverse_repeat_tuple(t, n):
    return tuple(x for x in reversed(t) for _ in range(n))


def _factory(shape, dtype=None, device=None):
    """An uninitialised float tensor of ``shape`` in ``dtype`` (default: ``ad.get_default_dtype()``)."""
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"parameters must be floating point, got dtype={np.dtype(dtype)}")
    return empty(*shape, dtype=dtype, device=device)
