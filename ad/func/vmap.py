"""``ad.func.vmap``: torch.func.vmap's signature, arguments, errors and results, computed by a loop.

``ad`` has no batching-rule interpreter: ``vmap(f)(x)`` runs ``f`` once per example (on ``x.select(in_dim, i)``)
and stacks the results with ``ad.stack`` along ``out_dims``. The results are torch's (up to rounding), and the
loop is differentiable, so ``grad(vmap(f))`` and ``vmap(grad(f))`` -- per-example gradients -- work; its cost is
``batch size`` calls of ``f``, not one batched trace. ``chunk_size`` is checked and otherwise changes nothing.
``randomness``: ``"error"`` raises torch's error when ``f`` draws from ad's default generator; ``"different"``
lets each example draw its own numbers; ``"same"`` restores the generator's state before each example, so
every example draws the same numbers.
"""

import functools

import numpy as np

from .. import creation
from ..ops.indexing import stack
from ..ops.view_ops import select
from ..tensor import Tensor
from ._pytree import broadcast_prefix, tree_flatten, tree_unflatten

__all__ = ["vmap"]


def _check_randomness_arg(randomness):
    if randomness not in ["error", "different", "same"]:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")


def _get_name(func):
    if hasattr(func, "__name__"):
        return func.__name__
    if isinstance(func, functools.partial):
        return f"functools.partial({_get_name(func.func)}, ...)"
    return repr(func)


def _check_out_dims(out_dims, func):
    flat, _ = tree_flatten(out_dims)
    if isinstance(out_dims, int) or all(d is None or isinstance(d, int) for d in flat):
        return
    raise ValueError(
        f"vmap({_get_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python collection "
        "of ints representing where in the outputs the vmapped dimension should appear."
    )


def _process_inputs(in_dims, args, func):
    """torch's ``_process_batched_inputs``: the batch size, the in_dim of each flat argument (None: not mapped)."""
    name = _get_name(func)
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(
            f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a (potentially "
            f"nested) tuple matching the structure of inputs, got: {type(in_dims)}."
        )
    if len(args) == 0:
        raise ValueError(
            f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are trying to vmap over "
            "a function with no inputs. The latter is unsupported."
        )
    flat_args, args_spec = tree_flatten(args)
    flat_in_dims = broadcast_prefix(in_dims, args_spec)
    if flat_in_dims is None:
        raise ValueError(
            f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the structure of "
            f"`inputs`. in_dims has structure {tree_flatten(in_dims)[1]} but inputs has structure {args_spec}."
        )
    for i, (arg, in_dim) in enumerate(zip(flat_args, flat_in_dims)):
        if not isinstance(in_dim, int) and in_dim is not None:
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={in_dim} for an input but in_dim must "
                "be either an integer dimension or None."
            )
        if isinstance(in_dim, int) and not isinstance(arg, Tensor):
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={in_dim} for an input but the input is "
                f"of type {type(arg)}. We cannot vmap over non-Tensor arguments, please use None as the respective "
                "in_dim"
            )
        if in_dim is not None and (in_dim < -arg.dim() or in_dim >= arg.dim()):
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={in_dim} for some input, but that input "
                f"is a Tensor of dimensionality {arg.dim()} so expected in_dim to satisfy "
                f"-{arg.dim()} <= in_dim < {arg.dim()}."
            )
        if in_dim is not None and in_dim < 0:
            flat_in_dims[i] = in_dim % arg.dim()
    batch_sizes = [arg.shape[d] for arg, d in zip(flat_args, flat_in_dims) if d is not None]
    if len(batch_sizes) == 0:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(size != batch_sizes[0] for size in batch_sizes):
        raise ValueError(
            "vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
            f"{batch_sizes} for the mapped dimension"
        )
    return batch_sizes[0], flat_in_dims, flat_args, args_spec


def _rng_state():
    rng = creation._rng
    return rng, rng.bit_generator.state


def _same_tensor(a, b):
    if a is b:
        return True
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy(), equal_nan=True))


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``func`` mapped over a batch dimension of its arguments: torch.func.vmap's signature and results.

    Not a batched trace: the returned function runs ``func`` once per example (a Python loop over the batch)
    and stacks the results with ``ad.stack`` (differentiable, so ``grad`` of ``vmap`` and ``vmap`` of ``grad``
    -- per-example gradients -- give torch's numbers). Its cost is the batch size times one call of ``func``.

    Args:
        func: a function of tensors (or pytrees of them) returning a tensor or a pytree of tensors.
        in_dims: the mapped dimension of each positional argument: an int for all, or a (nested) tuple with the
            arguments' structure whose entries are ints or None (not mapped). Keyword arguments are not mapped.
        out_dims: where the mapped dimension goes in each output: an int, None (the output is the same for every
            example and is returned once), or a tuple with the outputs' structure.
        randomness: ``"error"`` (a draw from ad's default generator inside ``func`` raises), ``"different"``
            (each example draws its own numbers) or ``"same"`` (every example draws the same numbers).
        chunk_size: torch's memory knob; checked (None or > 0), without effect on a loop.

    Returns:
        The mapped function.

    Raises:
        ValueError: bad ``in_dims`` / ``out_dims`` (structure, type, range), mapped sizes that differ, no
            mapped tensor, a non-tensor output with an ``out_dim``, an ``out_dims=None`` output that differs
            between examples, ``chunk_size`` not positive.
        RuntimeError: an unknown ``randomness``; a random draw under ``randomness="error"``.

    Example:
        >>> x = ad.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> ad.func.vmap(lambda row: row.sum())(x)
        tensor([3., 7.])
        >>> ad.func.vmap(ad.func.grad(lambda w, xi: (w * xi).sum() ** 2), in_dims=(None, 0))(ad.ones(2), x)
        tensor([[ 6., 12.],
                [42., 56.]])
    """
    _check_randomness_arg(randomness)
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        _check_out_dims(out_dims, func)
        batch_size, flat_in_dims, flat_args, args_spec = _process_inputs(in_dims, args, func)
        if batch_size == 0:
            return _empty_batch(func, flat_args, flat_in_dims, args_spec, kwargs, out_dims)
        results = []
        state = _rng_state() if randomness != "different" else None
        for b in range(batch_size):
            if randomness == "same":
                creation._rng = state[0]
                state[0].bit_generator.state = state[1]
            flat = [a if d is None else select(a, d, b) for a, d in zip(flat_args, flat_in_dims)]
            results.append(func(*tree_unflatten(flat, args_spec), **kwargs))
            if randomness == "error":
                now = _rng_state()
                if now[0] is not state[0] or now[1] != state[1]:
                    raise RuntimeError(
                        "vmap: called random operation while in randomness error mode. Please either use the 'same' "
                        "or 'different' randomness flags on vmap or perform the randomness operation out of vmap"
                    )
        return _stack_outputs(results, out_dims, func)

    return wrapped


def _empty_batch(func, flat_args, flat_in_dims, args_spec, kwargs, out_dims):
    """A batch of size 0: ``func`` runs once on zeros shaped like one example (for the outputs' structure and
    shapes; its values are discarded) and each output gets a mapped dimension of size 0."""
    from ..creation import zeros

    flat = []
    for a, d in zip(flat_args, flat_in_dims):
        flat.append(a if d is None else zeros(a.shape[:d] + a.shape[d + 1 :], dtype=a.dtype))
    with np.errstate(all="ignore"):
        one = _stack_outputs([func(*tree_unflatten(flat, args_spec), **kwargs)], out_dims, func)
    flat_out, spec = tree_flatten(one)
    flat_dims = [out_dims] if isinstance(one, Tensor) and not isinstance(out_dims, tuple) else None
    if flat_dims is None:
        flat_dims = [out_dims[0]] if isinstance(one, Tensor) else broadcast_prefix(out_dims, spec)
    out = []
    for o, d in zip(flat_out, flat_dims):
        out.append(o if d is None else o.narrow(d, 0, 0).detach())
    return tree_unflatten(out, spec)


def _stack_outputs(results, out_dims, func):
    name = _get_name(func)
    flat0, spec = tree_flatten(results[0])

    def incompatible():
        raise ValueError(
            f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the structure of "
            f"`outputs`. out_dims has structure {tree_flatten(out_dims)[1]} but outputs has structure {spec}."
        )

    if isinstance(results[0], Tensor):
        if isinstance(out_dims, int) or out_dims is None:
            flat_out_dims = [out_dims]
        elif isinstance(out_dims, tuple) and len(out_dims) == 1:
            flat_out_dims = list(out_dims)
        else:
            incompatible()
    else:
        flat_out_dims = broadcast_prefix(out_dims, spec)
        if flat_out_dims is None:
            incompatible()
    flats = [flat0]
    for r in results[1:]:
        flat, s = tree_flatten(r)
        if s != spec:
            raise ValueError(
                f"vmap({name}, ...): `{name}` returned outputs of different structures for different examples "
                f"({spec} and {s}); ad's vmap runs func per example and needs one structure"
            )
        flats.append(flat)
    out = []
    for k, d in enumerate(flat_out_dims):
        items = [f[k] for f in flats]
        if d is None:
            if any(not _same_tensor(items[0], it) for it in items[1:]):
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            out.append(items[0])
            continue
        if not isinstance(items[0], Tensor):
            raise ValueError(
                f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(items[0])}. Did you mean to "
                "set out_dims= to None for output?"
            )
        out.append(stack(items, d))
    return tree_unflatten(out, spec)
