"""``Optimizer``: the base class of ``ad.optim``, as ``torch.optim.Optimizer``.

Data structures (torch's, so that code and saved state dicts carry over):

- ``param_groups``: a list of dicts, each holding ``"params"`` (a list of leaf tensors) and every
  hyperparameter of the optimizer (``lr``, ``momentum``, ...), filled from ``defaults`` where the group
  does not set it. Schedulers and users change ``group["lr"]`` between steps.
- ``state``: a ``defaultdict(dict)`` keyed by the parameter tensor itself, holding per-parameter buffers
  (``step``, ``exp_avg``, ``momentum_buffer``, ...) as ``ad`` tensors.
- ``state_dict()`` replaces parameters by their index in group order (``{"state": {0: {...}}, "param_groups":
  [{..., "params": [0, 1]}]}``); ``load_state_dict`` maps the indices back onto this optimizer's parameters.

Each subclass's ``step`` updates ``param._data`` (the numpy array behind the tensor) in place with numpy, in
the order of operations of torch's single-tensor (``foreach=False``) implementation, then bumps the
parameter's version counter as an in-place op would: a backward that saved the old value then raises.
Working on the arrays directly is an in-place update under ``no_grad`` without one Python tensor per
intermediate.
"""

import copy
import itertools
from collections import OrderedDict, defaultdict
from itertools import chain

import numpy as np

from ..grad_mode import enable_grad, no_grad
from ..methods import _bump
from ..tensor import Tensor, wrap_array

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _scalar_state(value, dtype=np.float64):
    return wrap_array(np.array(value, dtype=dtype))


def _step_state(group):
    """A new ``step`` counter: float32 under ``fused=True`` (torch's fused kernels keep it so, and its state dicts
    show it), the default float64 otherwise."""
    return _scalar_state(0.0, np.float32 if group.get("fused") else np.float64)


def _updated(p):
    """Record an in-place change of ``p``'s data (version counter, arena copies)."""
    _bump(p)


_ids = itertools.count(1)


class _Handle:
    def __init__(self, hooks, key):
        self.hooks, self.id = hooks, key

    def remove(self):
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _with_step_hooks(step):
    """Wrap a subclass's ``step`` so that the registered pre- and post-hooks run around it."""

    def wrapper(self, *args, **kwargs):
        for hook in list(self.__dict__.get("_step_pre_hooks", {}).values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{hook} must return None or a tuple of (new_args, new_kwargs), but got {result}."
                    )
                args, kwargs = result
        out = step(self, *args, **kwargs)
        for hook in list(self.__dict__.get("_step_post_hooks", {}).values()):
            hook(self, args, kwargs)
        self.__dict__["_opt_called"] = True  # read by lr_scheduler's call-order warning
        return out

    wrapper.__name__ = step.__name__
    wrapper.__doc__ = step.__doc__
    wrapper._hooked = True
    wrapper._records_call = True
    return wrapper


class Optimizer:
    """Base class: holds ``param_groups`` and ``state``; subclasses implement ``step``.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (parameter groups).
        defaults: the default hyperparameters of each group.

    Raises:
        TypeError: ``params`` is a single tensor or holds something other than tensors.
        ValueError: an empty parameter list, or a parameter in more than one group.
    """

    # whether every tensor in ``state[p]`` (but ``step``) has ``p``'s shape, checked on load; LBFGS keeps flat
    # vectors over all parameters in its first parameter's state
    _per_element_state = True

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + type(params).__name__
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _with_step_hooks(step)

    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` before each ``step``; may return new ``(args, kwargs)``."""
        hooks = self.__dict__.setdefault("_step_pre_hooks", {})
        key = next(_ids)
        hooks[key] = hook
        return _Handle(hooks, key)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` after each ``step``."""
        hooks = self.__dict__.setdefault("_step_post_hooks", {})
        key = next(_ids)
        hooks[key] = hook
        return _Handle(hooks, key)

    def _register(self, kind, hook, prepend):
        hooks = self.__dict__.setdefault(kind, OrderedDict())
        key = next(_ids)
        hooks[key] = hook
        if prepend:
            hooks.move_to_end(key, last=False)
        return _Handle(hooks, key)

    def _hooks(self, kind):
        return list(self.__dict__.get(kind, {}).values())

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """``hook(optimizer)`` before ``state_dict`` builds the dict (first with ``prepend``); returns a handle."""
        return self._register("_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """``hook(optimizer, state_dict)`` after ``state_dict``; a dict it returns replaces the result."""
        return self._register("_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """``hook(optimizer, state_dict)`` before ``load_state_dict``; a dict it returns is loaded instead."""
        return self._register("_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """``hook(optimizer)`` after ``load_state_dict``."""
        return self._register("_load_state_dict_post_hooks", hook, prepend)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group):
        """Add a group (a dict with ``"params"`` and optional hyperparameters) to ``param_groups``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors "
                "in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        names = None
        if params and isinstance(params[0], tuple):
            names = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is " + type(p).__name__)
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
        if len({id(p) for p in params}) != len(params):
            import warnings

            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this will cause "
                "an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        param_group["params"] = params
        if names is not None:
            param_group["param_names"] = names
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to ``None`` (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    g = p._grad
                    if g._op is not None:
                        p._grad = g.detach()
                        g = p._grad
                    if g._dev is not None:
                        from ..cuda.ops import write

                        write(g, 0.0)
                    else:
                        g._data[...] = 0
                    _updated(g)

    def _call_closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def step(self, closure=None):
        raise NotImplementedError

    # ------------------------------------------------------------------ saving and loading
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` (tensors shared), through
        the registered state-dict hooks."""
        for hook in self._hooks("_state_dict_pre_hooks"):
            hook(self)
        state_dict = self._state_dict()
        for hook in self._hooks("_state_dict_post_hooks"):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def _state_dict(self):
        index = {}
        start = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = list(range(start, start + len(group["params"])))
            for i, p in zip(ids, group["params"]):
                index.setdefault(id(p), i)
            packed["params"] = ids
            start += len(ids)
            groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load hyperparameters and buffers saved by ``state_dict`` (possibly from another optimizer
        instance over parameters of the same shapes), through the registered load hooks. Raises ``ValueError``
        if the groups do not match."""
        for hook in self._hooks("_load_state_dict_pre_hooks"):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        self._load_state_dict(state_dict)
        for hook in self._hooks("_load_state_dict_post_hooks"):
            hook(self)

    def _load_state_dict(self, state_dict):
        state_dict = state_dict.copy()
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        saved_ids = chain.from_iterable(s["params"] for s in saved_groups)
        id_map = dict(zip(saved_ids, chain.from_iterable(g["params"] for g in groups)))
        new_state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k not in id_map:
                new_state[k] = v
                continue
            p = id_map[k]
            new_state[p] = {key: self._cast_state(p, key, value) for key, value in v.items()}
        for key, value in new_state.items():
            if isinstance(key, Tensor) and self._per_element_state:
                for name, t in value.items():
                    if isinstance(t, Tensor) and t.ndim and t.shape != self._state_shape(key, name):
                        raise ValueError(
                            f"loaded state for a parameter of shape {list(key.shape)} holds '{name}' of shape "
                            f"{list(t.shape)}"
                        )
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            new_groups.append(saved)
        self.state = new_state
        self.param_groups = new_groups

    def _state_shape(self, p, name):
        """The shape of per-element state ``name`` of parameter ``p`` (what a loaded state dict must hold)."""
        return p.shape

    @staticmethod
    def _cast_state(param, key, value):
        """A copy of a saved buffer on the parameter's device, in its dtype (``step`` keeps its own dtype; it and
        the other 0-d host scalars stay on the host)."""
        if isinstance(value, (list, tuple)):  # LBFGS's old_dirs and old_stps, as torch's _cast recurses
            return type(value)(Optimizer._cast_state(param, key, v) for v in value)
        if not isinstance(value, Tensor):
            return copy.deepcopy(value)
        if key == "step":
            return wrap_array(value.detach().cpu()._data.copy())
        dtype = param.dtype if value.dtype.kind == "f" else value.dtype
        # host scalars (NAdam's mu_product, ASGD's eta and mu) stay on the host, where the steps read them
        if value._dev is None and (param._dev is None or value.ndim == 0):
            return wrap_array(value._data.astype(dtype, copy=True))
        with no_grad():
            out = value.detach().to(dtype).to(param.device)
            # a buffer already of that dtype on that device comes back as itself: the state gets its own copy
            return out.clone() if out is value or out._data is value._data else out


def _lr(group):
    """The group's learning rate as a Python float: torch accepts a 0-d tensor ``lr`` (kept in the group, so that
    a scheduler's or user's in-place change shows), and the numpy updates need its value."""
    lr = group["lr"]
    return float(lr.item()) if isinstance(lr, Tensor) else lr


def _params_with_grad(group):
    """The group's parameters that have a gradient, with their gradient arrays."""
    out = []
    for p in group["params"]:
        g = p._grad
        if g is not None:
            out.append((p, g._data))
    return out


def _put(t, value):
    """Store ``value`` (what the update computed from ``_values``) into state or parameter tensor ``t`` in place:
    a numpy copy for a CPU tensor, a device write for a CUDA one (the storage keeps its identity)."""
    if t._dev is not None:
        from ..cuda.ops import write

        write(t, value)
    else:
        np.copyto(t._data, value)


def _maximum_(t, other):
    """``t = max(t, other)`` in place for state tensor ``t`` (numpy's ``out=`` on the CPU: no temporary)."""
    if t._dev is None:
        np.maximum(t._data, other, out=t._data)
    else:
        from ..ops import maximum

        _put(t, maximum(t.detach(), other))


def _values(t):
    """What an update computes with: a CPU tensor's numpy array (numpy's speed, no tensor per intermediate), a
    CUDA tensor detached (``ad`` ops, each a device kernel; call under ``no_grad``)."""
    return t._data if t._dev is None else t.detach()


_DEVICE_OPS = None


def _xp(p):
    """The functions an update calls on ``_values``: numpy's for a CPU parameter, ``ad``'s same-named ones for
    a CUDA parameter, so one update serves both devices."""
    global _DEVICE_OPS
    if p._dev is None:
        return np
    if _DEVICE_OPS is None:
        from types import SimpleNamespace

        from .. import ops
        from ..creation import ones_like

        _DEVICE_OPS = SimpleNamespace(
            sqrt=ops.sqrt,
            abs=ops.abs,
            sign=ops.sign,
            maximum=ops.maximum,
            where=ops.where,
            clip=ops.clamp,
            ones_like=ones_like,
        )
    return _DEVICE_OPS


def _check_range(name, value, low=0.0):
    if name == "learning rate" and isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not low <= value:
        raise ValueError(f"Invalid {name}: {value}")


def _check_fused(fused, foreach):
    """``fused=True`` (torch's one-kernel CPU/CUDA update) is accepted: ad's update is the same arithmetic, run
    as one compiled pass where the arrays are big enough (adam.py's ``FUSED_MIN``) and in numpy otherwise."""
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
