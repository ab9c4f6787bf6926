"""``Module.load_state_dict``'s body: check every key and shape first, then copy, so that a failed load changes
nothing (unless load post-hooks are registered: they see the loaded module, so then the copy comes first and the
strict check after them, as in torch).

A module that overrides ``_load_from_state_dict`` (to migrate old checkpoints: rename keys, reshape, set buffers)
expects torch's order, so when any module of the tree does, the load follows it instead (``_load_in_module_order``):
each module, parents first, gets its own ``_load_from_state_dict`` call on the keys under its prefix (a copy taken
after its parent's call, so the parent's renames reach it) and copies what it can; the errors are raised at the end,
after the copies, as torch's are. ``load_own_state`` is the base ``Module._load_from_state_dict``.

Data structures: ``targets`` maps each dotted key a module's ``state_dict`` would have to ``(owner module, store,
name)``, where ``store`` is the owner's ``_parameters`` or ``_buffers`` dict, or ``None`` for the owner's
``_extra_state`` (taken by ``set_extra_state``). Load pre-hooks run on a copy of the given dict before the checks;
``_metadata`` (each module prefix -> ``{"version": ...}``) travels with the copy and is handed to them.
"""

from collections import OrderedDict, namedtuple

import numpy as np

from ...grad_mode import no_grad
from ...methods import _bump
from ...tensor import Tensor
from ..parameter import Parameter, is_lazy

EXTRA_STATE_KEY = "_extra_state"


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _size_str(shape):
    return f"ad.Size({list(shape)})"


def _walk(module, prefix=""):
    """(prefix, module) over the tree, shared submodules once per place they appear, parents first."""
    yield prefix, module
    for name, child in module._modules.items():
        if child is not None:
            yield from _walk(child, prefix + name + ".")


def _own_targets(m, pre, out):
    """Add ``m``'s own entries (not its children's) under ``pre`` to ``out``."""
    from .module import Module

    for name, p in m._parameters.items():
        if p is not None:
            out[pre + name] = (m, m._parameters, name)
    for name, b in m._buffers.items():
        if b is not None and name not in m._non_persistent_buffers_set:
            out[pre + name] = (m, m._buffers, name)
    if type(m).set_extra_state is not Module.set_extra_state:
        out[pre + EXTRA_STATE_KEY] = (m, None, EXTRA_STATE_KEY)
    return out


def _state_targets(module):
    out = OrderedDict()
    for pre, m in _walk(module):
        _own_targets(m, pre, out)
    return out


def _materialize_lazy(targets, state_dict):
    for key, (_m, store, name) in targets.items():
        # a Lazy module's placeholder takes the shape of the tensor loaded into it (torch's lazy load hook)
        if store is not None and is_lazy(store[name]) and key in state_dict and not is_lazy(state_dict[key]):
            with no_grad():
                store[name].materialize(state_dict[key].shape)


def _check(targets, state_dict, errors):
    for key, (_m, store, name) in targets.items():
        if key not in state_dict or store is None:
            continue
        value = state_dict[key]
        if not isinstance(value, Tensor):
            errors.append(
                f'While copying the parameter named "{key}", expected Tensor or Tensor-like object from '
                f"checkpoint but received {type(value)}"
            )
            continue
        current = store[name]
        if is_lazy(current):  # both placeholders: nothing to check or copy
            continue
        if value.shape != current.shape:
            errors.append(
                f"size mismatch for {key}: copying a param with shape {_size_str(value.shape)} from checkpoint, "
                f"the shape in current model is {_size_str(current.shape)}."
            )


def _copy(targets, state_dict, assign):
    for key, (m, store, name) in targets.items():
        if key not in state_dict:
            continue
        value = state_dict[key]
        if store is None:
            m.set_extra_state(value)
            continue
        current = store[name]
        if is_lazy(current):
            continue
        if assign:
            if isinstance(current, Parameter) and not isinstance(value, Parameter):
                value = Parameter(value, requires_grad=current.requires_grad)
            store[name] = value
        elif value._data is not current._data and (current._dev is not None or value._dev is not None):
            # a CUDA parameter or value: a device copy into the parameter's storage (which keeps its identity)
            with no_grad():
                current.copy_(value.detach().to(current.device).to(current.dtype))
        elif value._data is not current._data:
            np.copyto(current._data, value._data, casting="unsafe")
            _bump(current)


def _strict_errors(module, missing, unexpected, errors):
    errors = list(errors)
    if unexpected:
        errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
    if missing:
        errors.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
    return errors


def _raise(module, errors):
    raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(module._get_name(), "\n\t".join(errors)))


def load_state_dict(module, state_dict, strict=True, assign=False):
    """``module.load_state_dict(state_dict, strict, assign)``: see ``Module.load_state_dict``."""
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "items"):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    metadata = getattr(state_dict, "_metadata", None)
    state_dict = OrderedDict(state_dict)  # pre-hooks may rename keys: the caller's dict stays as it was
    if metadata is not None:
        state_dict._metadata = metadata
    if any(_overrides_load(m) for _p, m in _walk(module)):
        return _load_in_module_order(module, state_dict, metadata, strict, assign)
    missing, unexpected, errors = [], [], []
    for pre, m in _walk(module):
        local_metadata = {} if metadata is None else metadata.get(pre[:-1], {})
        _upgrade(m, state_dict, pre, local_metadata, errors)
        for hook in m._load_state_dict_pre_hooks.values():
            hook(m, state_dict, pre, local_metadata, strict, missing, unexpected, errors)

    targets = _state_targets(module)
    _materialize_lazy(targets, state_dict)
    missing += [k for k in targets if k not in state_dict and k not in missing]
    unexpected += [k for k in state_dict if k not in targets and k not in unexpected]
    _check(targets, state_dict, errors)
    post_hooks = [(m, h) for _p, m in _walk(module) for h in m._load_state_dict_post_hooks.values()]
    if errors or (strict and not post_hooks and (missing or unexpected)):
        _raise(module, _strict_errors(module, missing, unexpected, errors) if strict else errors)
    _copy(targets, state_dict, assign)
    keys = _IncompatibleKeys(missing, unexpected)
    for m, hook in reversed(post_hooks):  # (children's hooks first, as torch runs them after each child's load)
        _run_post_hook(m, hook, keys)
    if strict and (missing or unexpected):
        _raise(module, _strict_errors(module, missing, unexpected, []))
    return keys


def _run_post_hook(m, hook, keys):
    if hook(m, keys) is not None:
        raise AssertionError(
            "Hooks registered with ``register_load_state_dict_post_hook`` are not expected to return new "
            "values, if incompatible_keys need to be modified, it should be done inplace."
        )


def _overrides_load(m):
    from .module import Module

    return type(m)._load_from_state_dict is not Module._load_from_state_dict


def _upgrade(module, state_dict, prefix, local_metadata, errors):
    """A layer's migration of a checkpoint saved by an older version of it (``_upgrade_state_dict(state_dict,
    prefix, version, errors)``, ``version`` from the state dict's ``_metadata``, ``None`` for a plain dict; it may
    append to ``errors``), before its load pre-hooks: what torch's layers do in their ``_load_from_state_dict``
    overrides, without leaving the checked-then-copied load for them."""
    upgrade = getattr(module, "_upgrade_state_dict", None)
    if upgrade is not None:
        upgrade(state_dict, prefix, local_metadata.get("version"), errors)


def load_own_state(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
    """The base ``Module._load_from_state_dict``: run ``module``'s load pre-hooks, then copy each of its own
    entries found under ``prefix`` (a wrong type or shape is appended to ``errors`` and that entry skipped); with
    ``strict``, its absent entries are appended to ``missing`` and the keys under ``prefix`` that name neither an
    entry nor a child module to ``unexpected``. ``local_metadata["assign_to_params_buffers"]`` is ``assign``."""
    _upgrade(module, state_dict, prefix, local_metadata, errors)
    for hook in module._load_state_dict_pre_hooks.values():
        hook(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors)
    own = _own_targets(module, prefix, OrderedDict())
    assign = local_metadata.get("assign_to_params_buffers", False)
    for key, target in own.items():
        if key not in state_dict:
            if strict:
                missing.append(key)
            continue
        one = {key: target}
        _materialize_lazy(one, state_dict)
        found = []
        _check(one, state_dict, found)
        if found:
            errors.extend(found)
            continue
        _copy(one, state_dict, assign)
    if strict:
        for key in state_dict:
            if key.startswith(prefix) and key not in own and key[len(prefix) :].split(".", 1)[0] not in module._modules:
                unexpected.append(key)


def _load_in_module_order(module, state_dict, metadata, strict, assign):
    """torch's order, taken when a module overrides ``_load_from_state_dict`` (see the module docstring): the
    copies are made as each module is reached, so a failed load may leave some entries loaded, as in torch."""
    missing, unexpected, errors = [], [], []

    def load(m, local_state, prefix):
        local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
        if assign:
            local_metadata["assign_to_params_buffers"] = True
        # strict=True in every call (torch's too): missing and unexpected keys are reported even when not strict
        m._load_from_state_dict(local_state, prefix, local_metadata, True, missing, unexpected, errors)
        for name, child in m._modules.items():
            if child is not None:
                child_prefix = prefix + name + "."
                child_state = OrderedDict((k, v) for k, v in local_state.items() if k.startswith(child_prefix))
                load(child, child_state, child_prefix)
        keys = _IncompatibleKeys(missing, unexpected)
        for hook in m._load_state_dict_post_hooks.values():
            _run_post_hook(m, hook, keys)

    load(module, state_dict, "")
    if strict:
        errors = _strict_errors(module, missing, unexpected, errors)
    if errors:
        _raise(module, errors)
    return _IncompatibleKeys(missing, unexpected)
