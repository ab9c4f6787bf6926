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


_quadruple = _ntuple(4, "_quadruple")


def consume_prefix_in_state_dict_if_present(state_dict, prefix):
    """Strip ``prefix`` from the keys of ``state_dict`` that start with it, in place (and from its ``_metadata``'s
    keys, where ``prefix`` without its trailing dot names the root), as torch's: a state dict saved from a wrapper
    (``"_orig_mod."`` of a compiled module, ``"module."`` of DataParallel) loads into the bare model.

    Example:
        >>> sd = ad.compile(ad.nn.Linear(2, 1)).state_dict()
        >>> consume_prefix_in_state_dict_if_present(sd, "_orig_mod."); list(sd)
        ['weight', 'bias']
    """
    for key in [k for k in state_dict if k.startswith(prefix)]:  # (renamed keys move to the end, as torch's)
        state_dict[key[len(prefix) :]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata):
            if key == prefix.rstrip(".") or key.startswith(prefix):
                metadata[key[len(prefix) :]] = metadata.pop(key)
