"""``ad.func.functional_call``: run an ``ad.nn.Module`` with other parameters and buffers, as torch's.

The given tensors are put in the modules' ``_parameters`` / ``_buffers`` dicts (or set as plain attributes, for
names the module does not have) for the duration of the call, and the originals are put back afterwards, also
when the call raises. With ``tie_weights`` (the default), a value given for one name of tied tensors (one
parameter reachable under several names) is used for all of them, as torch's.
"""

from collections.abc import Sequence

from ..ops.indexing import stack

__all__ = ["functional_call", "stack_module_state"]

_MISSING = object()


def _untie_named_tensors_map(module, parameters_and_buffers):
    """torch's: a value given for one of several names of the same tensor applies to all of them."""
    all_named = {}
    all_named.update(module.named_parameters(remove_duplicate=False))
    all_named.update(module.named_buffers(remove_duplicate=False))
    names_of = {}
    for name, tensor in all_named.items():
        names_of.setdefault(id(tensor), set()).add(name)
    tied_names_map = {}
    for tied in names_of.values():
        if len(tied) > 1:
            for name in tied:
                tied_names_map[name] = tied
    given = set(parameters_and_buffers)
    given_tied = {name for name in given if name in tied_names_map}
    for name in given_tied:
        tied = tied_names_map[name]
        if len(tied & given_tied) > 1 and len({id(parameters_and_buffers[n]) for n in tied & given_tied}) != 1:
            raise ValueError(
                f"functional_call got multiple values for keys {sorted(tied)}, which are tied. Consider using "
                "tie_weights=False"
            )
    untied = dict(parameters_and_buffers)
    for name in given_tied:
        for tied_name in tied_names_map[name]:
            untied[tied_name] = parameters_and_buffers[name]
    return untied


def _swap(module, name, value):
    """Put ``value`` under ``name`` (dotted); returns what ``_restore`` needs to put the old one back."""
    path, _, attr = name.rpartition(".")
    d = module.get_submodule(path).__dict__
    for store in ("_parameters", "_buffers"):
        if attr in d[store]:
            old = d[store][attr]
            d[store][attr] = value
            return d, store, attr, old
    old = d.get(attr, _MISSING)  # a name the module does not have: a plain attribute for the call (torch's too)
    d[attr] = value
    return d, None, attr, old


def _restore(d, store, attr, old):
    if store is not None:
        d[store][attr] = old
    elif old is _MISSING:
        d.pop(attr, None)
    else:
        d[attr] = old


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """``module(*args, **kwargs)`` with its parameters and buffers replaced by the given tensors:
    torch.func.functional_call.

    Args:
        module: an ``ad.nn.Module``.
        parameter_and_buffer_dicts: a dict from dotted names (as ``named_parameters`` / ``named_buffers`` give
            them) to tensors, or a list or tuple of such dicts (no name in two of them).
        args: the positional arguments (a tuple; anything else is one argument).
        kwargs: the keyword arguments.
        tie_weights: a value given for one name of a tied tensor is used for all its names.
        strict: every parameter and buffer must be given, and no other name.

    Returns:
        What ``module`` returns. Afterwards the module holds its own parameters and buffers again (also when the
        call raised).

    Raises:
        ValueError: dicts that are not dicts, a name in two dicts, different values for tied names.
        RuntimeError: ``strict`` with missing or unexpected names.

    Example:
        >>> lin = ad.nn.Linear(2, 1)
        >>> params = {"weight": ad.ones(1, 2), "bias": ad.zeros(1)}
        >>> ad.func.functional_call(lin, params, (ad.tensor([[1.0, 2.0]]),))
        tensor([[3.]])
    """
    if isinstance(parameter_and_buffer_dicts, dict):
        parameters_and_buffers = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, Sequence) and not isinstance(parameter_and_buffer_dicts, str):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        counts = {}
        for d in parameter_and_buffer_dicts:
            for k in d:
                counts[k] = counts.get(k, 0) + 1
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
        parameters_and_buffers = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError(
            "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
            f"{type(parameter_and_buffer_dicts)}"
        )
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    values = _untie_named_tensors_map(module, parameters_and_buffers) if tie_weights else parameters_and_buffers
    if strict:
        keys = {n for n, _ in module.named_parameters(remove_duplicate=False)}
        keys |= {n for n, _ in module.named_buffers(remove_duplicate=False)}
        missing = sorted(keys - set(values))
        unexpected = sorted(set(values) - keys)
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            sep = "\n\t"
            raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:{sep}{sep.join(msgs)}")
    swapped = []
    try:
        for name, value in values.items():
            swapped.append(_swap(module, name, value))
        return module(*args, **kwargs)
    finally:
        for record in reversed(swapped):
            _restore(*record)


def _stacked_leaf(tensors, name):
    all_requires_grad = all(t.requires_grad for t in tensors)
    if not all_requires_grad and any(t.requires_grad for t in tensors):
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    result = stack(tensors)
    return result.detach().requires_grad_() if all_requires_grad else result


def stack_module_state(models):
    """The parameters and buffers of same-class ``models``, each stacked along a new first dimension (fresh
    leaves where the originals require grad): torch.func.stack_module_state, for ensembles run with
    ``vmap(functional_call)``.

    Returns:
        ``(params, buffers)``: dicts from names to stacked tensors.

    Raises:
        RuntimeError: no model; models of different classes or training modes; a name whose tensors disagree
            on ``requires_grad``.

    Example:
        >>> models = [ad.nn.Linear(2, 1) for _ in range(3)]
        >>> params, buffers = ad.func.stack_module_state(models)
        >>> params["weight"].shape
        (3, 1, 2)
    """
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if not all(type(m) is type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    params = {k: _stacked_leaf(tuple(p[k] for p in all_params), k) for k in all_params[0]}
    all_buffers = [dict(m.named_buffers()) for m in models]
    buffers = {k: _stacked_leaf(tuple(b[k] for b in all_buffers), k) for k in all_buffers[0]}
    return params, buffers
