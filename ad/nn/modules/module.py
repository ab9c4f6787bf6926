"""``Module``: the base class of layers, as ``torch.nn.Module``.

Data structures (torch's): each module holds ordered dicts ``_parameters`` (name -> ``Parameter`` or ``None``),
``_buffers`` (name -> ``Tensor`` or ``None``; names in ``_non_persistent_buffers_set`` stay out of the state
dict) and ``_modules`` (name -> child ``Module`` or ``None``). ``__setattr__`` routes assignments of
parameters, modules and registered buffers into those dicts and ``__getattr__`` finds them there, so that
``self.weight = Parameter(...)`` registers a parameter. ``named_*`` walk the tree depth first, in insertion
order, yielding each object once. Hooks live in ordered dicts keyed by handle id (``RemovableHandle``); the
global ones (``register_module_*``, torch's ``nn.modules.module`` functions) live in ``_global`` and run before
a module's own. A call with no hooks anywhere goes straight to ``forward``; backward hooks are in ``hooks.py``.

A module's ``state_dict`` maps dotted names to tensors sharing the parameters' data (detached), with torch's
``_metadata`` (prefix -> ``{"version": cls._version}``) attached; ``load_state_dict`` (``module_state.py``)
checks every key and shape first, then copies, so a failed load changes nothing.
"""

import itertools
import warnings
from collections import OrderedDict

import numpy as np

from ...grad_mode import no_grad
from ...methods import _bump
from ...tensor import Tensor, device
from ..parameter import Buffer, Parameter, is_lazy
from .module_state import EXTRA_STATE_KEY, load_own_state, load_state_dict

__all__ = [
    "Module",
    "register_module_forward_hook",
    "register_module_forward_pre_hook",
    "register_module_full_backward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_buffer_registration_hook",
    "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
]

_handle_ids = itertools.count(1)
# how many times any module's ``training`` was set: a compiled module re-reads its modes when this moved
MODE_CHANGES = [0]
_STATE_DICT_HOOK_STORES = (
    "_state_dict_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


class RemovableHandle:
    """Returned by ``register_*_hook``: ``remove()`` unregisters the hook (also as a context manager)."""

    def __init__(self, *hook_dicts):
        self.hooks_dicts = hook_dicts
        self.id = next(_handle_ids)

    def remove(self):
        for d in self.hooks_dicts:
            if isinstance(d, set):
                d.discard(self.id)
            else:
                d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _GlobalHooks:
    """The hooks ``register_module_*`` installs on every module; each call of a module runs them before its own."""

    def __init__(self):
        self.forward_pre = OrderedDict()
        self.forward = OrderedDict()
        self.forward_with_kwargs = set()
        self.forward_always_called = set()
        self.backward = OrderedDict()
        self.backward_pre = OrderedDict()
        self.buffer_registration = OrderedDict()
        self.module_registration = OrderedDict()
        self.parameter_registration = OrderedDict()

    def registered(self, kind, module, name, value):
        """``value`` after the ``kind`` registration hooks (each may return a replacement)."""
        for hook in getattr(self, kind + "_registration").values():
            out = hook(module, name, value)
            if out is not None:
                value = out
        return value


_global = _GlobalHooks()


def register_module_forward_pre_hook(hook):
    """``hook(module, args)`` before every module's ``forward`` (before the module's own pre-hooks); a returned
    value replaces the positional arguments. Returns a handle whose ``remove()`` unregisters it."""
    handle = RemovableHandle(_global.forward_pre)
    _global.forward_pre[handle.id] = hook
    return handle


def register_module_forward_hook(hook, *, with_kwargs=False, always_call=False):
    """``hook(module, args, output)`` (``hook(module, args, kwargs, output)`` with ``with_kwargs``) after every
    module's ``forward``, before the module's own forward hooks; a returned value replaces the output."""
    handle = RemovableHandle(_global.forward, _global.forward_with_kwargs, _global.forward_always_called)
    _global.forward[handle.id] = hook
    if with_kwargs:
        _global.forward_with_kwargs.add(handle.id)
    if always_call:
        _global.forward_always_called.add(handle.id)
    return handle


def register_module_full_backward_hook(hook):
    """``hook(module, grad_input, grad_output)`` for every module, as ``Module.register_full_backward_hook``,
    before the module's own."""
    handle = RemovableHandle(_global.backward)
    _global.backward[handle.id] = hook
    return handle


def _registration_hook(kind, hook):
    store = getattr(_global, kind + "_registration")
    handle = RemovableHandle(store)
    store[handle.id] = hook
    return handle


def register_module_buffer_registration_hook(hook):
    """``hook(module, name, buffer)`` whenever any module registers (or reassigns) a buffer; a returned tensor
    replaces the buffer."""
    return _registration_hook("buffer", hook)


def register_module_module_registration_hook(hook):
    """``hook(module, name, submodule)`` whenever any module registers a child; a returned module replaces it."""
    return _registration_hook("module", hook)


def register_module_parameter_registration_hook(hook):
    """``hook(module, name, param)`` whenever any module registers a (non-None) parameter; a returned
    parameter replaces it."""
    return _registration_hook("parameter", hook)


def register_module_full_backward_pre_hook(hook):
    """``hook(module, grad_output)`` for every module, as ``Module.register_full_backward_pre_hook``, before the
    module's own."""
    handle = RemovableHandle(_global.backward_pre)
    _global.backward_pre[handle.id] = hook
    return handle


def _addindent(s, n):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


def _check_name(kind, name, module, exists_ok):
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if hasattr(module, name) and not exists_ok:
        raise KeyError(f"attribute '{name}' already exists")


class Module:
    """Base class for all neural network modules; subclasses define ``forward`` and assign submodules and
    parameters as attributes in ``__init__`` (after calling ``super().__init__()``).

    Example:
        >>> class MLP(ad.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = ad.nn.Linear(2, 3)
        ...     def forward(self, x):
        ...         return self.fc(x).relu()
        >>> [n for n, _ in MLP().named_parameters()]
        ['fc.weight', 'fc.bias']
    """

    training: bool
    dump_patches = False
    _version = 1
    call_super_init = False  # (torch's switch for passing __init__ arguments up the MRO; ad's __init__ takes none)

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments: {args} {kwargs} "
                "(Module.__init__ takes none)"
            )
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_hooks_with_kwargs"] = set()
        d["_forward_hooks_always_called"] = set()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_pre_hooks_with_kwargs"] = set()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        for store in _STATE_DICT_HOOK_STORES:
            d[store] = OrderedDict()

    def forward(self, *input):  # noqa: A002
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # ------------------------------------------------------------------ registration
    def register_buffer(self, name, tensor, persistent=True):
        """Register ``tensor`` (or ``None``) as buffer ``name``: module state that is not a parameter."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name, self, name in self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor or None required)"
            )
        self._buffers[name] = _global.registered("buffer", self, name, tensor)
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name, param):
        """Register ``param`` (a ``Parameter`` or ``None``) as parameter ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name, self, name in self._parameters)
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(ad.nn.Parameter or None required)"
            )
        if param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be created "
                "explicitly. To express '{name}' as a function of another Tensor, compute the value in the "
                "forward() method."
            )
        self._parameters[name] = _global.registered("parameter", self, name, param)

    def add_module(self, name, module):
        """Register ``module`` (or ``None``) as child ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", name, self, name in self._modules)
        self._modules[name] = _global.registered("module", self, name, module)

    register_module = add_module

    def get_submodule(self, target):
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    def set_submodule(self, target, module, strict=False):
        """Set the submodule at dotted path ``target`` to ``module``; its parent must exist, and the last name
        must already be a submodule with ``strict`` (else an attribute that is not a module must not hold it)."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError("`module` is not an nn.Module, found " + str(type(module)))
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and not hasattr(parent, name):
            raise AttributeError(parent._get_name() + " has no attribute `" + name + "`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module):
            raise AttributeError("`" + name + "` is not an nn.Module")
        setattr(parent, name, module)

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        if name not in mod._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return mod._buffers[name]

    # ------------------------------------------------------------------ attribute routing
    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")

        def remove_from(*stores):
            for s in stores:
                if isinstance(s, set):
                    s.discard(name)
                elif s is not None and name in s:
                    del s[name]

        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            remove_from(d, d["_buffers"], d["_modules"], d["_non_persistent_buffers_set"])
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' (ad.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            modules = d.get("_modules")
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            remove_from(d, d["_parameters"], d["_buffers"], d["_non_persistent_buffers_set"])
            modules[name] = _global.registered("module", self, name, value)
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (ad.nn.Module or None expected)"
                )
            d["_modules"][name] = _global.registered("module", self, name, value)
        elif isinstance(value, Buffer):
            if d.get("_buffers") is None:
                raise AttributeError("cannot assign buffer before Module.__init__() call")
            remove_from(d, d["_parameters"], d["_modules"])
            self.register_buffer(name, value, persistent=getattr(value, "_buffer_persistent", True))
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            d["_buffers"][name] = _global.registered("buffer", self, name, value)
        else:
            if name == "training":  # (compiled calls are keyed by the modes: module_extras._ModeKeyedCall)
                MODE_CHANGES[0] += 1
            object.__setattr__(self, name, value)

    def __delattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if name in d.get(store, ()):
                del d[store][name]
                d["_non_persistent_buffers_set"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = set(dir(type(self))) | set(self.__dict__)
        keys |= set(self._parameters) | set(self._modules) | set(self._buffers)
        return sorted(k for k in keys if not k[0].isdigit())

    def __setstate__(self, state):
        self.__dict__.update(state)
        for store in _STATE_DICT_HOOK_STORES:  # (modules pickled before these hooks existed)
            self.__dict__.setdefault(store, OrderedDict())
        self.__dict__.setdefault("_forward_hooks_always_called", set())

    # ------------------------------------------------------------------ traversal
    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        memo = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for k, v in get_members(module):
                if v is None or (remove_duplicate and id(v) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (module_prefix + ("." if module_prefix else "") + k, v)

    def parameters(self, recurse=True):
        """The parameters of this module (and, with ``recurse``, of its descendants), each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_children(self):
        memo = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in memo:
                memo.add(id(m))
                yield name, m

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    # ------------------------------------------------------------------ modes and in-place changes
    def train(self, mode=True):
        """Set training mode (``Dropout``, ``BatchNorm`` behave differently) here and below; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the parameters' gradients: to ``None`` (default) or to zeros in place."""
        for p in self.parameters():
            if p._grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                if p._grad._op is not None:
                    p._grad = p._grad.detach()
                p._grad._data[...] = 0
                _bump(p._grad)

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, children first, then on ``self``; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn):
        """Replace every parameter's and buffer's data by ``fn(tensor)``, keeping the Parameter objects."""
        for m in self.children():
            m._apply(fn)
        with no_grad():
            for p in self._parameters.values():
                if p is None:
                    continue
                if is_lazy(p):
                    p._apply_to_placeholder(fn)
                    continue
                new = fn(p)
                if new is not p:
                    p._data = new._data
                    p._dev = new._dev  # (.cuda() / .cpu(): the array and its device move together)
                    _bump(p)
                if p._grad is not None:
                    g = fn(p._grad)
                    p._grad = g if g is not p._grad else p._grad
            for k, b in self._buffers.items():
                if is_lazy(b):
                    b._apply_to_placeholder(fn)
                elif b is not None:
                    self._buffers[k] = fn(b)
        return self

    def to(self, *args, **kwargs):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(tensor)``: floating point parameters
        and buffers take the dtype (integer buffers keep theirs). In place; returns self."""
        dtype = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)  # (accepted as torch's: a layout hint that changes no value)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, (str, device)):
                dev = a
            elif isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif isinstance(a, bool):
                continue  # non_blocking
            else:
                dtype = a
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}")

        def convert(t):
            if dev is not None:
                t = t.to(dev)
            if dtype is not None and t.dtype.kind == "f" and t.dtype != dtype:
                return Tensor(t._data.astype(dtype))
            return t

        return self._apply(convert)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def type(self, dst_type):
        return self.to(dst_type)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda")

    # ------------------------------------------------------------------ state dicts
    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """An ordered dict of dotted names to parameters and persistent buffers (detached, sharing data), plus
        ``<prefix>_extra_state`` where ``get_extra_state`` is overridden; ``._metadata`` maps each module's
        prefix to ``{"version": cls._version}`` as torch's does. State-dict pre-hooks run before a module's
        entries are written, post-hooks after its children's."""
        if args:  # torch's deprecated positional form (destination, prefix, keep_vars)
            destination = args[0] if len(args) > 0 else destination
            prefix = args[1] if len(args) > 1 else prefix
            keep_vars = args[2] if len(args) > 2 else keep_vars
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            if hook(self, destination, prefix, local_metadata) is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Write this module's own entries (not its children's) into ``destination``."""
        for name, p in self._parameters.items():
            if p is not None:  # (a Lazy module's placeholder is saved as it is, as torch)
                destination[prefix + name] = p if keep_vars or is_lazy(p) else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars or is_lazy(b) else b.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + EXTRA_STATE_KEY] = self.get_extra_state()

    def get_extra_state(self):
        """Override (with ``set_extra_state``) to add a picklable value to the state dict as ``_extra_state``."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called: override it together "
            "with set_extra_state() to save extra state."
        )

    def set_extra_state(self, state):
        """Override (with ``get_extra_state``) to restore the value ``get_extra_state`` saved."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called: override it together "
            "with get_extra_state() to load extra state."
        )

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy the tensors of ``state_dict`` into this module's parameters and buffers.

        Args:
            state_dict (dict): dotted names to tensors, as ``state_dict()`` returns.
            strict (bool): missing or unexpected keys raise (default); else they are reported.
            assign (bool): take the given tensors instead of copying into the existing ones.

        Returns:
            ``(missing_keys, unexpected_keys)`` as a named tuple.

        Raises:
            TypeError: ``state_dict`` is not a mapping. RuntimeError: shape mismatches, or with ``strict``
            missing or unexpected keys; then nothing was changed (unless load-state-dict post-hooks are
            registered, which see the loaded module, or a module overrides ``_load_from_state_dict``: then the
            copies come first, as in torch).
        """
        return load_state_dict(self, state_dict, strict, assign)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Load this module's own entries (not its children's) from the keys of ``state_dict`` under ``prefix``,
        appending to the three lists rather than raising; this module's load pre-hooks run first. Override it
        (calling ``super()._load_from_state_dict``) to migrate old checkpoints: rename keys in ``state_dict``,
        reshape, set buffers; ``local_metadata["version"]`` is the saved ``_version``. While any module of a tree
        overrides it, ``load_state_dict`` loads in torch's order (each module as it is reached, errors raised
        after the copies); otherwise it checks every key before copying any."""
        load_own_state(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def register_state_dict_pre_hook(self, hook):
        """``hook(module, prefix, keep_vars)`` before ``state_dict`` writes this module's entries."""
        return self._add_hook(self._state_dict_pre_hooks, hook)

    def register_state_dict_post_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata)`` after this module's (and its children's) entries
        are written; it edits ``state_dict`` in place and returns None."""
        return self._add_hook(self._state_dict_hooks, hook)

    def register_load_state_dict_pre_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)``
        before this module's entries are loaded; it may edit the (copied) ``state_dict`` and the lists."""
        return self._add_hook(self._load_state_dict_pre_hooks, hook)

    def register_load_state_dict_post_hook(self, hook):
        """``hook(module, incompatible_keys)`` after loading; it may edit ``incompatible_keys``' lists in place
        (clearing them forgives the keys under ``strict``) and returns None."""
        return self._add_hook(self._load_state_dict_post_hooks, hook)

    @staticmethod
    def _add_hook(store, hook):
        handle = RemovableHandle(store)
        store[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ calling and hooks
    def __call__(self, *args, **kwargs):
        d = self.__dict__
        compiled = d.get("_compiled_call_impl")  # (``Module.compile``: module_extras.py)
        if compiled is not None:
            return compiled(*args, **kwargs)
        if not (
            d["_forward_pre_hooks"]
            or d["_forward_hooks"]
            or d["_backward_hooks"]
            or d["_backward_pre_hooks"]
            or _global.forward_pre
            or _global.forward
            or _global.backward
            or _global.backward_pre
        ):  # no hooks anywhere: the common case, kept cheap (a training step calls many modules)
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args, kwargs):
        # the global hooks (register_module_*) run before this module's own, as torch orders them
        pre_hooks = [*_global.forward_pre.items(), *self._forward_pre_hooks.items()]
        for hook_id, hook in pre_hooks:
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), but got {result}."
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        post_hooks = [*_global.forward.items(), *self._forward_hooks.items()]
        try:
            if self._backward_hooks or self._backward_pre_hooks or _global.backward or _global.backward_pre:
                from .hooks import call_with_backward_hooks

                out = call_with_backward_hooks(self, args, kwargs)
            else:
                out = self.forward(*args, **kwargs)
        except BaseException:
            # forward raised: the hooks registered with always_call=True still run (with output None), and the
            # forward's exception is the one that propagates
            for hook_id, hook in post_hooks:
                if hook_id in self._forward_hooks_always_called or hook_id in _global.forward_always_called:
                    try:
                        self._call_forward_hook(hook_id, hook, args, kwargs, None)
                    except Exception as e:  # noqa: BLE001 - reported, as torch does, not raised over the original
                        warnings.warn(
                            f"forward hook with ``always_call=True`` raised an exception that was silenced as "
                            f"another error was raised in forward: {e}",
                            stacklevel=2,
                        )
            raise
        for hook_id, hook in post_hooks:
            result = self._call_forward_hook(hook_id, hook, args, kwargs, out)
            if result is not None:
                out = result
        return out

    def _call_forward_hook(self, hook_id, hook, args, kwargs, out):
        if hook_id in self._forward_hooks_with_kwargs or hook_id in _global.forward_with_kwargs:
            return hook(self, args, kwargs, out)
        return hook(self, args, out)

    def _call_impl(self, *args, **kwargs):
        """The call without ``Module.compile``'s compiled path: forward and hooks (what ``compile`` compiles)."""
        if not (
            self._forward_pre_hooks
            or self._forward_hooks
            or self._backward_hooks
            or self._backward_pre_hooks
            or _global.forward_pre
            or _global.forward
            or _global.backward
            or _global.backward_pre
        ):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, args)`` before ``forward``; a returned value replaces the positional arguments."""
        handle = RemovableHandle(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """``hook(module, args, output)`` after ``forward``; a returned value replaces the output. With
        ``always_call`` the hook also runs (with output ``None``) when ``forward`` raises."""
        handle = RemovableHandle(
            self._forward_hooks, self._forward_hooks_with_kwargs, self._forward_hooks_always_called
        )
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend=False):
        """``hook(module, grad_input, grad_output)`` once the gradients of the module's tensor inputs are
        computed; a returned tuple replaces ``grad_input``."""
        from .module_extras import claim_backward_hook_kind

        claim_backward_hook_kind(self, full=True)
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """``hook(module, grad_output)`` before the module's gradients are computed; a returned tuple replaces
        ``grad_output``."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------------ printing
    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(m), 2) for key, m in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"
