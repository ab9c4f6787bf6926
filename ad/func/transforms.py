"""``ad.func``'s differentiation transforms: ``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``,
``hessian`` and ``linearize``, with torch.func's signatures, pytrees, errors and messages.

How they run (start reading at ``_vjp_core``):

- Reverse mode (``grad``, ``grad_and_value``, ``vjp``, ``jacrev``): the differentiated arguments (``argnums``)
  are flattened (``_pytree``), replaced by fresh leaves -- ``ad.autograd.functional._grad_preprocess``'s detached
  aliases that require grad, or recorded views where the result must stay connected to the caller's graph --
  ``func`` runs under ``enable_grad``, and ``ad.autograd.grad`` (functional's ``_autograd_grad``, which skips
  outputs that do not require grad) takes the gradient; an unused input gets zeros, as torch.func's.
- ``create_graph``: torch.func always records the gradient computation (its levels keep transforms apart). Here
  the sweep records only where something can differentiate the result (in grad mode): inside another transform
  of this module (``_nesting``), under an active forward-mode level, when an argument requires grad, or when
  ``func``'s graph reaches a tensor of the caller's that requires grad (a closure, a module's parameters:
  ``_closes_over_grad`` walks the nodes ``func`` recorded). Then the results are differentiable with respect to
  those tensors, as torch's; elsewhere the compiled first-order sweep runs and the results are detached.
- ``jacrev``: one ``grad(..., is_grads_batched=True)`` sweep whose cotangents are the identity's rows
  (functional's ``_standard_basis``), ``chunk_size`` rows at a time; the rows are split per output by
  functional's ``_split_rows``.
- Forward mode (``jvp``, ``jacfwd``): a new ``forward_ad`` dual level per call (levels nest, so ``jvp`` of
  ``jvp`` and ``jacfwd`` of ``jacfwd`` keep their perturbations apart); ``jacfwd`` is one forward pass with the
  identity's rows as a batch of tangents (``make_dual(..., is_batched=True)``, as functional.jacobian's
  ``strategy="forward-mode"``), falling back to one pass per row where batched tangents are not available.
- ``hessian`` is ``jacfwd(jacrev(func, argnums), argnums)``, as torch defines it; ``linearize`` returns a
  ``jvp_fn`` that runs ``jvp`` again at each call (no traced graph: ``func`` runs once per call).
"""

import functools
import threading
import weakref

from .. import ops
from ..autograd import forward_ad as fwAD
from ..autograd.functional import _autograd_grad, _grad_preprocess, _split_rows, _standard_basis
from ..batched import RetainGradInBatch
from ..creation import zeros
from ..engine import _inputs_of
from ..forward import _fw
from ..grad_mode import enable_grad, is_grad_enabled
from ..ops.view_ops import movedim
from ..tensor import Tensor
from ._pytree import tree_flatten, tree_map, tree_unflatten

__all__ = [
    "grad",
    "grad_and_value",
    "vjp",
    "jvp",
    "jacrev",
    "jacfwd",
    "hessian",
    "linearize",
    "functionalize",
    "debug_unwrap",
]

class _Nesting(threading.local):
    """How many transforms of this module are running ``func`` now, in this thread: inside one, results must
    stay differentiable (the outer transform differentiates them)."""

    depth = 0


_nesting = _Nesting()

_JVP_STR = "jvp(f, primals, tangents)"


# ---------------------------------------------------------------------------------------------------------
# argnums (torch's helpers and messages)


def _validate_and_wrap_argnum(argnum, num_args):
    if not isinstance(argnum, int):
        raise RuntimeError(f"argnum must be int, got: {type(argnum)}")
    if 0 <= argnum < num_args:
        return argnum
    if -num_args <= argnum < 0:
        return argnum + num_args
    raise RuntimeError(f"Got argnum={argnum}, but only {num_args} positional inputs")


def _slice_argnums(args, argnums, as_tuple=True):
    """The arguments picked by ``argnums`` (a tuple of them; for an int ``argnums`` and ``as_tuple=False``, the
    argument itself); raises torch's errors for a bad ``argnums``."""
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if isinstance(argnums, int):
        argnums = _validate_and_wrap_argnum(argnums, len(args))
        return (args[argnums],) if as_tuple else args[argnums]
    argnums = tuple(_validate_and_wrap_argnum(a, len(args)) for a in argnums)
    if len(argnums) == 0:
        raise RuntimeError("argnums must be non-empty")
    if len(set(argnums)) != len(argnums):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return tuple(args[i] for i in argnums)


def _replace_args(args, new_args, argnums):
    """``args`` with the ones picked by ``argnums`` replaced by ``new_args`` (a tuple, in ``argnums``' order)."""
    if argnums is None:
        return tuple(new_args)
    if isinstance(argnums, int):
        argnums = (argnums,)
    wrapped = [a % len(args) for a in argnums]
    out = list(args)
    for i, new in zip(wrapped, new_args):
        out[i] = new
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------
# shared pieces


def _needs_graph(*trees):
    """Whether the gradient computation must be recorded: see the module docstring."""
    if not is_grad_enabled():
        return False
    if _nesting.depth or _fw.levels:
        return True
    for tree in trees:
        for leaf in tree if type(tree) is list else tree_flatten(tree)[0]:
            if isinstance(leaf, Tensor) and leaf._rg:
                return True
    return False


# the leaves this module made (weakly): a walk that meets one has not met a tensor of the caller's
_ours = weakref.WeakValueDictionary()


def _closes_over_grad(*trees):
    """Whether the recorded graph of the tensors in ``trees`` reaches a tensor that requires grad other than the
    leaves this module made: ``func`` used a tensor of the caller's graph (a closure, a module's parameters), so
    the result must stay differentiable with respect to it, as torch's does. A walk over the nodes ``func``
    recorded (about a microsecond each, beside the several it took to record them)."""
    stack = [t for tree in trees for t in tree_flatten(tree)[0] if isinstance(t, Tensor) and t._rg]
    seen = {id(t) for t in stack}
    ours, inputs_of = _ours, _inputs_of
    while stack:
        t = stack.pop()
        if t._op is None:
            if ours.get(id(t)) is not t:
                return True
            continue
        for inp in inputs_of(t):
            if inp is not None and inp._rg:
                key = id(inp)
                if key not in seen:
                    seen.add(key)
                    stack.append(inp)
    return False


def _fresh_leaves(flat, graph):
    """The tensors ``func`` sees in place of ``flat``: see ``_grad_preprocess``. Under an active dual level with
    ``graph``, a recorded view made to require grad, so that the input's tangents reach the gradient (forward
    over reverse: ``hessian``'s jacfwd over jacrev) -- a detached alias would drop them."""
    for x in flat:
        if not isinstance(x, Tensor):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    if graph and _fw.levels:
        res = []
        for x in flat:
            v = ops.reshape(x, x.shape)
            res.append(v if v.requires_grad else v.requires_grad_())
    else:
        res = _grad_preprocess(flat, create_graph=graph, need_graph=True)
    for v in res:
        if v._op is None:
            _ours[id(v)] = v
    return tuple(res)


class _Nested:
    """Counts a running ``func`` in ``_nesting``."""

    def __enter__(self):
        _nesting.depth += 1

    def __exit__(self, *exc):
        _nesting.depth -= 1
        return False


_nested = _Nested()


def _call(func, args, kwargs):
    """``func(*args, **kwargs)`` in grad mode, counted as running inside a transform."""
    with enable_grad(), _nested:
        return func(*args, **kwargs)


def _zeros_like(t):
    return ops.zeros_like(t)


def _basis(tensors, numels, transposed=False):
    """functional's ``_standard_basis`` (host arrays), each block on its tensor's device."""
    blocks = _standard_basis(tensors, numels, transposed=transposed)
    return tuple(b if t._dev is None else b.to(t.device) for b, t in zip(blocks, tensors))


def _fill(grads, refs):
    return tuple(_zeros_like(r) if g is None else g for g, r in zip(grads, refs))


def _detach_tree(tree, graph):
    """``tree`` with its tensors detached unless ``graph`` (torch.func unwraps them from its level)."""
    if graph:
        return tree
    if isinstance(tree, Tensor):
        return tree.detach()
    return tree_map(lambda x: x.detach() if isinstance(x, Tensor) else x, tree)


def _unwrap_aux(aux, graph):
    """``aux`` detached unless ``graph``; torch.func accepts only tensors there."""
    for leaf in tree_flatten(aux)[0]:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(leaf)}")
    return _detach_tree(aux, graph)


def _check_outputs(flat_out, api):
    """torch's ``assert_non_empty_tensor_output``."""
    if (len(flat_out) == 1 and flat_out[0] is None) or len(flat_out) < 1:
        raise RuntimeError(f"{api}: Expected f to be a function that has non-empty output (got output = {flat_out})")
    for o in flat_out:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got unsupported type {type(o)}")


def _check_float_outputs(flat_out):
    for o in flat_out:
        if not o.is_floating_point():
            raise RuntimeError(
                "vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got Tensor with dtype "
                f"{o.dtype}"
            )


def _split_aux(out, has_aux, api):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return out


class _VjpState:
    """What a reverse-mode call keeps between running ``func`` and taking gradients."""

    __slots__ = ("output", "flat_out", "out_spec", "leaves", "diff_spec", "aux", "graph")


def _vjp_core(func, args, kwargs, argnums, has_aux, api):
    """Run ``func`` on fresh leaves in place of the differentiated arguments (``argnums``; None: all, as a tuple)."""
    diff = args if argnums is None else _slice_argnums(args, argnums)
    flat_diff, diff_spec = tree_flatten(diff)
    # (the other arguments need no look here: the walk below sees them where func used them)
    graph = _needs_graph(flat_diff)
    leaves = _fresh_leaves(flat_diff, graph)
    new_args = _replace_args(args, tree_unflatten(leaves, diff_spec), argnums)
    out, aux = _split_aux(_call(func, new_args, kwargs), has_aux, api)
    if not graph and is_grad_enabled() and _closes_over_grad(out, aux):
        graph = True
    st = _VjpState()
    st.output, st.aux, st.graph = out, aux, graph
    st.flat_out, st.out_spec = tree_flatten(out)
    st.leaves, st.diff_spec = leaves, diff_spec
    return st


# ---------------------------------------------------------------------------------------------------------
# reverse mode


def grad_and_value(func, argnums=0, has_aux=False):
    """``func``'s gradient with respect to the arguments ``argnums`` picks, and ``func``'s value.

    Args:
        func: a function returning a 0-d tensor (with ``has_aux``: a pair ``(0-d tensor, aux)``).
        argnums: an int or a tuple of ints: the positional arguments to differentiate (each a tensor or a
            pytree -- tuples, lists, dicts -- of tensors).
        has_aux: ``func`` returns ``(output, aux)``; ``aux`` is returned beside, not differentiated.

    Returns:
        A function of ``func``'s arguments returning ``(grad, value)``, or ``(grad, (value, aux))``. ``grad`` has
        the structure of the argument (a tuple of them for a tuple ``argnums``).

    Raises:
        RuntimeError: a bad ``argnums``; ``func`` returns a non-tensor or a tensor with dims; a ``has_aux``
            output that is not a pair.
        ValueError: a differentiated argument holds something other than tensors.

    Example:
        >>> g, v = ad.func.grad_and_value(lambda x: (x ** 2).sum())(ad.tensor([1.0, 2.0]))
        >>> g, v
        (tensor([2., 4.]), tensor(5.))
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return _grad_and_value(func, argnums, has_aux, args, kwargs)

    return wrapper


def _grad_and_value(func, argnums, has_aux, args, kwargs):
    api = "grad_and_value(f)(*args)"
    st = _vjp_core(func, args, kwargs, argnums, has_aux, api)
    out = st.output
    if not isinstance(out, Tensor):
        raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
    if out.ndim != 0:
        raise RuntimeError(
            f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with {out.ndim} dims. Maybe you wanted "
            "to use the vjp or jacrev APIs instead?"
        )
    grads = _fill(_autograd_grad((out,), st.leaves, create_graph=st.graph), st.leaves)
    g = tree_unflatten(grads, st.diff_spec)
    if isinstance(argnums, int):
        g = g[0]
    out = _detach_tree(out, st.graph)
    if has_aux:
        return g, (out, _unwrap_aux(st.aux, st.graph))
    return g, out


def grad(func, argnums=0, has_aux=False):
    """The gradient of ``func`` (a function returning a 0-d tensor) with respect to the arguments ``argnums``
    picks: torch.func.grad. Transforms compose (``grad(grad(f))``, ``vmap(grad(f))``, ``jacrev(grad(f))``).

    Args:
        func: a function returning a 0-d tensor (with ``has_aux``: ``(0-d tensor, aux)``).
        argnums: an int or a tuple of ints (each argument a tensor or a pytree of tensors).
        has_aux: ``func`` returns ``(output, aux)``; the result is then ``(grad, aux)``.

    Returns:
        A function of ``func``'s arguments returning the gradient (shaped as the argument; a tuple for a tuple
        ``argnums``), or ``(grad, aux)``.

    Raises:
        RuntimeError / ValueError: as ``grad_and_value``.

    Example:
        >>> ad.func.grad(lambda x: x.sin().sum())(ad.tensor([0.0, 1.0]))  # cos(x)
        tensor([1.    , 0.5403])
        >>> ad.func.grad(ad.func.grad(lambda x: x.sin()))(ad.tensor(0.5))  # -sin(0.5)
        tensor(-0.4794)
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = _grad_and_value(func, argnums, has_aux, args, kwargs)
        if has_aux:
            return g, value[1]
        return g

    return wrapper


def vjp(func, *primals, has_aux=False):
    """``func(*primals)`` and a function computing vector-Jacobian products at ``primals``: torch.func.vjp.

    Args:
        func: a function of ``primals`` returning a tensor or a pytree of tensors (with ``has_aux``: a pair
            ``(output, aux)``).
        *primals: the point; tensors or pytrees of tensors, all differentiated.
        has_aux: ``func`` returns ``(output, aux)``; ``aux`` is returned third.

    Returns:
        ``(output, vjp_fn)`` or ``(output, vjp_fn, aux)``. ``vjp_fn(cotangents, retain_graph=True,
        create_graph=None)`` takes cotangents with the output's structure and shapes and returns a tuple with
        one entry per primal (zeros for a primal the output does not depend on); it may be called many times.

    Raises:
        RuntimeError: an output that is not a tensor, or not floating point; no output; cotangents whose
            structure differs from the output's (``vjp_fn``).
        ValueError: a primal that is not a tensor.

    Example:
        >>> out, vjp_fn = ad.func.vjp(ad.sin, ad.tensor([0.0, 1.0]))
        >>> vjp_fn(ad.ones(2))
        (tensor([1.    , 0.5403]),)
    """
    st = _vjp_core(func, primals, {}, None, has_aux, "vjp(f, *primals)")
    _check_outputs(st.flat_out, "vjp(f, *primals)")
    _check_float_outputs(st.flat_out)

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        flat_cot, cot_spec = tree_flatten(cotangents)
        if cot_spec != st.out_spec:
            raise RuntimeError(
                "Expected pytree structure of cotangents to be the same as pytree structure of outputs to the "
                f"function. cotangents: {cot_spec}, primal output: {st.out_spec}"
            )
        if create_graph is None:
            create_graph = st.graph or _needs_graph(flat_cot)
        grads = _autograd_grad(
            tuple(st.flat_out), st.leaves, tuple(flat_cot), create_graph=create_graph, retain_graph=retain_graph
        )
        return tree_unflatten(_fill(grads, st.leaves), st.diff_spec)

    out = _detach_tree(st.output, st.graph)
    if has_aux:
        return out, vjp_fn, _unwrap_aux(st.aux, st.graph)
    return out, vjp_fn


def _batched_vjp_rows(flat_out, leaves, basis, graph, retain_graph=True):
    """``grad`` of ``flat_out`` with the batch of cotangents ``basis`` (one block per output, leading dim the
    batch): one batched sweep, or, where the graph holds a ``retain_grad`` tensor (which the batched sweep
    refuses), one sweep per row. Returns one tensor or None per leaf, shaped ``(batch,) + leaf.shape``."""
    try:
        return _autograd_grad(
            tuple(flat_out), leaves, basis, create_graph=graph, retain_graph=retain_graph, is_grads_batched=True
        )
    except RetainGradInBatch:  # (raised before the sweep: the graph is still there)
        pass
    rows = [
        _autograd_grad(tuple(flat_out), leaves, tuple(b[i] for b in basis), create_graph=graph, retain_graph=True)
        for i in range(basis[0].shape[0])
    ]
    return tuple(
        None if all(r[k] is None for r in rows) else ops.stack(_fill([r[k] for r in rows], [leaf] * len(rows)))
        for k, leaf in enumerate(leaves)
    )


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """The Jacobian of ``func`` with respect to the arguments ``argnums`` picks, by reverse mode: torch.func.jacrev.

    All rows come from one ``grad(..., is_grads_batched=True)`` sweep with the identity as cotangents (or
    ``chunk_size`` rows per sweep).

    Args:
        func: a function returning a tensor or a pytree of tensors (with ``has_aux``: ``(output, aux)``).
        argnums: an int or a tuple of ints.
        has_aux: ``func`` returns ``(output, aux)``; the result is then ``(jacobian, aux)``.
        chunk_size: how many rows each sweep computes (None: all at once).

    Returns:
        A function returning the Jacobian: for each output leaf (in the output's structure), the argument's
        structure (a tuple for a tuple ``argnums``) of blocks shaped ``output.shape + input.shape``.

    Raises:
        ValueError: ``chunk_size`` not positive; a differentiated argument that is not a tensor.
        RuntimeError: as ``vjp``, and for a bad ``argnums``.

    Example:
        >>> ad.func.jacrev(ad.sin)(ad.tensor([0.0, 1.0]))
        tensor([[1.    , 0.    ],
                [0.    , 0.5403]])
    """
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper_fn(*args):
        st = _vjp_core(func, args, {}, argnums, has_aux, "vjp(f, *primals)")
        _check_outputs(st.flat_out, "vjp(f, *primals)")
        _check_float_outputs(st.flat_out)
        numels = [o.numel() for o in st.flat_out]
        total = sum(numels)
        if total == 0:
            vj = [None] * len(st.leaves)
        elif total == 1:  # one row (a scalar output, as in hessian's inner jacrev): a plain sweep, no batch
            seeds = tuple(ops.ones_like(o) for o in st.flat_out)
            grads = _autograd_grad(tuple(st.flat_out), st.leaves, seeds, create_graph=st.graph)
            vj = [None if g is None else ops.reshape(g, (1,) + tuple(g.shape)) for g in grads]
        else:
            step = total if chunk_size is None else min(chunk_size, total)
            # (the 1-D blocks transposed, as functional.jacobian's: the batched sweep adds them in one piece)
            basis = _basis(st.flat_out, numels, transposed=not st.graph and step == total)
            # the last sweep frees the graph unless the results are differentiable (as functional.jacobian's)
            chunks = [
                _batched_vjp_rows(
                    st.flat_out,
                    st.leaves,
                    basis if step == total else tuple(b[lo : lo + step] for b in basis),
                    st.graph,
                    retain_graph=st.graph or lo + step < total,
                )
                for lo in range(0, total, step)
            ]
            vj = []
            for k, leaf in enumerate(st.leaves):
                parts = [c[k] for c in chunks]
                if all(p is None for p in parts):
                    vj.append(None)
                elif len(parts) == 1:
                    vj.append(parts[0])
                else:
                    n = [min(step, total - lo) for lo in range(0, total, step)]
                    vj.append(
                        ops.cat(
                            [
                                zeros((m,) + tuple(leaf.shape), dtype=leaf.dtype, device=leaf.device)
                                if p is None
                                else p
                                for p, m in zip(parts, n)
                            ]
                        )
                    )
        vj = [  # (zeros here, not in _split_rows: on the leaf's device)
            zeros((total,) + tuple(leaf.shape), dtype=leaf.dtype, device=leaf.device) if v is None else v
            for v, leaf in zip(vj, st.leaves)
        ]
        blocks = _split_rows(vj, st.flat_out, st.leaves, st.graph)  # [output][input]
        per_out = [tree_unflatten(row, st.diff_spec) for row in blocks]
        if isinstance(argnums, int):
            per_out = [p[0] for p in per_out]
        jac = tree_unflatten(per_out, st.out_spec)
        if has_aux:
            return jac, _unwrap_aux(st.aux, st.graph)
        return jac

    return wrapper_fn


# ---------------------------------------------------------------------------------------------------------
# forward mode


def _check_tensor_list(flat, argname):
    if len(flat) == 0:
        raise RuntimeError(f"{_JVP_STR}: Expected {argname} to contain at least one Tensor.")
    for x in flat:
        if not isinstance(x, Tensor):
            raise RuntimeError(f"{_JVP_STR}: Expected {argname} to only contain Tensors, got {type(x)}")


def _strip(tree, level):
    """``tree`` with the tangents of ``level`` taken off its tensors (``aux`` leaves the level untouched)."""
    return tree_map(lambda x: fwAD.unpack_dual(x, level=level).primal if isinstance(x, Tensor) else x, tree)


def _unpack_outputs(result, level, strict):
    flat, spec = tree_flatten(result)
    _check_outputs_jvp(flat)
    primals, tangents = [], []
    for out in flat:
        primal, tangent = fwAD.unpack_dual(out, level=level)
        if tangent is None:
            if strict:
                raise RuntimeError(
                    "jvp(f, primals, tangents, strict=True): The output of f is independent of the inputs. This is "
                    "not allowed with strict=True."
                )
        primals.append(primal)
        tangents.append(tangent)
    return primals, tangents, spec


def _check_outputs_jvp(flat):
    if (len(flat) == 1 and flat[0] is None) or len(flat) < 1:
        raise RuntimeError(f"{_JVP_STR}: Expected f to be a function that has non-empty output (got output = {flat})")
    for o in flat:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{_JVP_STR}: expected f(*args) to return only tensors, got unsupported type {type(o)}")


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``func(*primals)`` and its Jacobian-vector product with ``tangents``, by forward mode: torch.func.jvp.

    Args:
        func: a function returning a tensor or a pytree of tensors (with ``has_aux``: ``(output, aux)``).
        primals: a tuple of the arguments (tensors or pytrees of tensors).
        tangents: the tangents, with the structure and shapes of ``primals``.
        strict: raise if an output does not depend on the inputs (else its tangent is zeros).
        has_aux: ``func`` returns ``(output, aux)``; ``aux`` is returned third.

    Returns:
        ``(output, jvp_out)`` or ``(output, jvp_out, aux)``, ``jvp_out`` with the output's structure.

    Raises:
        RuntimeError: ``primals`` not a tuple; ``tangents`` of another structure; non-tensor inputs or outputs;
            a ``strict`` violation.

    Example:
        >>> ad.func.jvp(ad.sin, (ad.tensor([0.0, 1.0]),), (ad.ones(2),))[1]
        tensor([1.    , 0.5403])
    """
    return _jvp_with_argnums(func, primals, tangents, None, strict=strict, has_aux=has_aux)


def _jvp_with_argnums(func, primals, tangents, argnums, *, strict=False, has_aux=False):
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{_JVP_STR}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    diff_args = primals if argnums is None else _slice_argnums(primals, argnums)
    flat_primals, primals_spec = tree_flatten(diff_args)
    flat_tangents, tangents_spec = tree_flatten(tangents)
    if primals_spec != tangents_spec:
        raise RuntimeError(
            f"{_JVP_STR}: Expected primals and tangents to have the same python structure. For example, if primals "
            f"is a tuple of 3 tensors, tangents also must be. Got primals with structure {primals_spec} and "
            f"tangents with structure {tangents_spec}"
        )
    _check_tensor_list(flat_primals, "primals")
    _check_tensor_list(flat_tangents, "tangents")
    graph = _needs_graph(primals, tangents)
    with fwAD.dual_level() as level:
        duals = tuple(fwAD.make_dual(p, t, level=level) for p, t in zip(flat_primals, flat_tangents))
        args = _replace_args(primals, tree_unflatten(duals, primals_spec), argnums)
        out, aux = _split_aux(_call(func, args, {}), has_aux, _JVP_STR)
        prim, tang, spec = _unpack_outputs(out, level, strict)
        tang = [_zeros_like(p) if t is None else t for p, t in zip(prim, tang)]
        if has_aux:
            aux = _strip(aux, level)
    if not graph and is_grad_enabled() and _closes_over_grad(prim, tang, aux):
        graph = True
    result = (_detach_tree(tree_unflatten(prim, spec), graph), _detach_tree(tree_unflatten(tang, spec), graph))
    return result + (_unwrap_aux(aux, graph),) if has_aux else result


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """The Jacobian of ``func`` with respect to the arguments ``argnums`` picks, by forward mode:
    torch.func.jacfwd. One forward pass whose tangents are the identity's rows, as one batch.

    Args:
        func: a function returning a tensor or a pytree of tensors (with ``has_aux``: ``(output, aux)``).
        argnums: an int or a tuple of ints.
        has_aux: ``func`` returns ``(output, aux)``; the result is then ``(jacobian, aux)``.
        randomness: ``"error"``, ``"different"`` or ``"same"`` (torch's ``vmap`` flag; ``func`` runs once here,
            so its random draws are shared by all rows whatever the flag).

    Returns:
        A function returning the Jacobian, structured as ``jacrev``'s.

    Raises:
        RuntimeError: as ``jvp``; a bad ``argnums`` or ``randomness``.

    Example:
        >>> ad.func.jacfwd(lambda x: x ** 2)(ad.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    from .vmap import _check_randomness_arg

    @functools.wraps(func)
    def wrapper_fn(*args):
        _check_randomness_arg(randomness)
        primals = _slice_argnums(args, argnums)
        flat_primals, primals_spec = tree_flatten(primals)
        _check_tensor_list(flat_primals, "primals")
        numels = [p.numel() for p in flat_primals]
        total = sum(numels)
        graph = _needs_graph(args)
        basis = _basis(flat_primals, numels)
        try:
            outs, tangents, spec, aux = _push_tangents(func, args, argnums, flat_primals, primals_spec, basis, has_aux)
        except NotImplementedError:  # an op without a batched forward rule: one forward pass per row
            outs, tangents, spec, aux = _push_rows(func, args, argnums, flat_primals, primals_spec, basis, has_aux)
        per_out = []
        for out, tangent in zip(outs, tangents):
            row = []
            start = 0
            for p, n in zip(flat_primals, numels):
                shape = tuple(out.shape) + tuple(p.shape)
                if tangent is None or n == 0 or total == 0:
                    row.append(zeros(shape, dtype=out.dtype, device=out.device))
                else:  # rows start..start+n of the tangent, moved behind the output's dims
                    row.append(ops.reshape(movedim(tangent[start : start + n], 0, -1), shape))
                start += n
            per_out.append(tree_unflatten(row, primals_spec))
        if isinstance(argnums, int):
            per_out = [r[0] for r in per_out]
        if not graph and is_grad_enabled() and _closes_over_grad(per_out, aux):
            graph = True
        jac = _detach_tree(tree_unflatten(per_out, spec), graph)
        return (jac, _unwrap_aux(aux, graph)) if has_aux else jac

    return wrapper_fn


def _push_tangents(func, args, argnums, flat_primals, primals_spec, basis, has_aux):
    """One forward pass with ``basis`` as batched tangents: the outputs, their batched tangents (or None), the
    output structure and ``aux``."""
    if sum(p.numel() for p in flat_primals) == 0:  # nothing to push: one plain pass for the outputs
        out, aux = _split_aux(_call(func, args, {}), has_aux, _JVP_STR)
        flat, spec = tree_flatten(out)
        _check_outputs_jvp(flat)
        return flat, [None] * len(flat), spec, aux
    with fwAD.dual_level() as level:
        duals = tuple(fwAD.make_dual(p, b, level=level, is_batched=True) for p, b in zip(flat_primals, basis))
        new_args = _replace_args(args, tree_unflatten(duals, primals_spec), argnums)
        out, aux = _split_aux(_call(func, new_args, {}), has_aux, _JVP_STR)
        prim, tang, spec = _unpack_outputs(out, level, False)
        if has_aux:
            aux = _strip(aux, level)
    return prim, tang, spec, aux


def _push_rows(func, args, argnums, flat_primals, primals_spec, basis, has_aux):
    """``_push_tangents`` by one ``jvp`` per row of ``basis``."""
    rows = []
    for i in range(basis[0].shape[0]):
        tangents = tree_unflatten([b[i] for b in basis], primals_spec)
        rows.append(_jvp_with_argnums(func, args, tangents, argnums, has_aux=has_aux))
    prim, spec = tree_flatten(rows[0][0])
    tang = [ops.stack([tree_flatten(r[1])[0][k] for r in rows]) for k in range(len(prim))]
    return prim, tang, spec, rows[0][2] if has_aux else None


def hessian(func, argnums=0):
    """The Hessian of ``func`` (returning a tensor; usually 0-d) with respect to ``argnums``: torch.func.hessian,
    defined as ``jacfwd(jacrev(func, argnums), argnums)`` (forward over reverse).

    Example:
        >>> ad.func.hessian(lambda x: (x ** 3).sum())(ad.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)


def linearize(func, *primals):
    """``func(*primals)`` and ``jvp_fn``, the Jacobian-vector product at ``primals``: torch.func.linearize.

    ``ad`` traces no graph: each ``jvp_fn(*tangents)`` call runs ``jvp(func, primals, tangents)`` (``func`` runs
    again), which gives torch's numbers.

    Raises (from ``jvp_fn``):
        RuntimeError: tangents of another structure, shape or dtype than ``primals``.

    Example:
        >>> out, jvp_fn = ad.func.linearize(ad.sin, ad.tensor([0.0, 1.0]))
        >>> jvp_fn(ad.ones(2))
        tensor([1.    , 0.5403])
    """
    output = func(*primals)
    flat_primals, primals_spec = tree_flatten(primals)

    def jvp_fn(*tangents):
        flat_tangents, tangent_spec = tree_flatten(tangents)
        if tangent_spec != primals_spec:
            raise RuntimeError(
                f"Expected the tangents {tangent_spec} to have the same argspec as the primals {primals_spec}"
            )
        for idx, (t, p) in enumerate(zip(flat_tangents, flat_primals)):
            pairs = (("shape", t.shape, p.shape), ("device", t.device, p.device), ("dtype", t.dtype, p.dtype))
            for what, tv, pv in pairs:
                if tv != pv:
                    raise RuntimeError(
                        f"tangent:{idx} with {what} {tv} in flattened pytree doesn't match the {what} {pv} of the "
                        "corresponding primal."
                    )
        return jvp(func, primals, tangents)[1]

    return output, jvp_fn


def functionalize(func, *, remove="mutations"):
    """torch.func.functionalize: ``func`` with its mutations removed. ``ad`` runs no traced program whose
    mutations a later pass could trip on, and its in-place ops already give the results their out-of-place
    forms give (gradients included), so the returned function calls ``func`` unchanged.

    Raises:
        RuntimeError: ``remove`` other than ``"mutations"`` or ``"mutations_and_views"`` (torch's message).

    Example:
        >>> ad.func.functionalize(lambda x: x.clone().add_(1))(ad.zeros(2))
        tensor([1., 1.])
    """
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(
            f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. Valid options "
            "are:\n     remove='mutations': all inplace and out= operators will be removed from the program, and "
            "replaced with their out-of-place equivalents.\n     remove='mutations_and_views': In addition to the "
            "above, all aliasing operators {view} will be replaced with their non-aliasing counterparts, "
            "{view}_copy.\n"
        )

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapped


def debug_unwrap(tensor, *, recurse=True):
    """torch.func.debug_unwrap: the tensor under a transform's wrappers; ``ad``'s transforms wrap nothing, so
    ``tensor`` itself."""
    return tensor
