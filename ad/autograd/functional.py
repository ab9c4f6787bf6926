"""``ad.autograd.functional``: ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``hvp`` and ``vhp``, as torch's.

Each function takes ``func`` (tensors in, a tensor or a tuple of tensors out) and ``inputs`` (a tensor or a
tuple of tensors) and returns torch's structures: a single tensor where ``inputs`` (or the outputs) was a
single tensor, a tuple where it was a tuple, and for ``jacobian`` / ``hessian`` a tuple of tuples indexed
``[output][input]`` when both are tuples. Shapes follow torch: a Jacobian block has shape
``output.shape + input.shape``.

How it works (where to start reading: ``vjp``):

- ``_grad_preprocess`` makes the tensors ``func`` sees: detached aliases (same data, new leaves) with
  ``requires_grad=True``, or, under ``create_graph=True`` for an input that already requires grad, a recorded
  copy of it so that the results stay differentiable with respect to the caller's tensors.
- Everything is built from ``ad.autograd.grad`` (``_autograd_grad``). ``jvp`` and ``hvp`` use the double
  backward trick, as torch's do: with a leaf ``u`` of zeros, ``g(u) = J^T u`` is linear in ``u``, and the VJP
  of ``g`` with cotangent ``v`` is ``J v``; except ``hvp`` without ``create_graph`` or ``strict``, which takes
  the tangent of the gradient along ``v`` (forward over reverse: one forward pass with tangents and one
  compiled sweep, ``_hvp_forward_over_reverse``) where ``func``'s ops all have forward rules.
- ``_fill_in_zeros`` turns the ``None`` of an input the outputs do not depend on into zeros, or raises under
  ``strict=True``; ``_grad_postprocess`` detaches the results unless ``create_graph``.

``strategy="forward-mode"`` (``jacobian``) and ``outer_jacobian_strategy="forward-mode"`` (``hessian``, forward
over reverse) use ``ad.autograd.forward_ad`` with batched tangents: one forward pass whose tangents are the rows
of the identity (torch batches the same passes with vmap over jvp), return lists where torch does, and raise
torch's errors for the combinations torch rejects (``vectorize=False``, ``strict=True``, ``create_graph=True``).
``vectorize=True`` in reverse mode computes all rows in one ``grad(..., is_grads_batched=True)`` call: one
compiled sweep whose cotangent arena carries the identity's rows as a batch (``ad/batched.py``); so does
``vectorize=False`` when neither ``strict`` nor ``create_graph`` is set (the numbers are those of torch's
row-by-row loop). ``hessian`` is the Jacobian of the recorded gradient, so its outer Jacobian is that batched
sweep over the second-order graph (batched double backward); ``outer_jacobian_strategy="forward-mode"`` runs
that recorded gradient once, on inputs that carry the identity as batched tangents (forward over reverse).
"""

import contextlib

import numpy as np

from .. import observe, ops
from ..batched import RetainGradInBatch
from ..grad_mode import enable_grad, is_grad_enabled, set_grad_enabled
from ..tensor import Tensor, wrap_array
from . import _identity_rows, grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# ---------------------------------------------------------------------------------------------------------
# helpers (torch's, same names and messages)


def _as_tuple_nocheck(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _as_tuple(inp, arg_name=None, fn_name=None):
    """``(is_tuple, tuple_of_tensors)``; a non-tensor element raises torch's ``TypeError``."""
    if arg_name is None and fn_name is None:
        return _as_tuple_nocheck(inp)
    is_inp_tuple = True
    if not isinstance(inp, tuple):
        inp = (inp,)
        is_inp_tuple = False
    for i, el in enumerate(inp):
        if not isinstance(el, Tensor):
            if is_inp_tuple:
                raise TypeError(
                    f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but the"
                    f" value at index {i} has type {type(el)}."
                )
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but the"
                f" given {arg_name} has type {type(el)}."
            )
    return is_inp_tuple, inp


def _tuple_postprocess(res, to_unpack):
    """Unwrap the 1-tuples that stand for a single tensor (``to_unpack``: is_tuple flags)."""
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _grad_preprocess(inputs, create_graph, need_graph):
    """The tensors ``func`` sees: a recorded view of an input that requires grad under ``create_graph`` (so
    that the result stays connected to it), else a detached alias with ``requires_grad=need_graph``."""
    res = []
    for inp in inputs:
        if create_graph and inp.requires_grad:
            res.append(ops.reshape(inp, inp.shape))
        else:
            res.append(inp.detach().requires_grad_(need_graph))
    return tuple(res)


def _grad_postprocess(inputs, create_graph):
    if isinstance(inputs[0], Tensor):
        if not create_graph:
            return tuple(inp.detach() for inp in inputs)
        return inputs
    return tuple(_grad_postprocess(inp, create_graph) for inp in inputs)


def _size_str(shape):
    return "torch.Size([" + ", ".join(str(s) for s in shape) + "])"


def _validate_v(v, other, is_other_tuple):
    if len(other) != len(v):
        if is_other_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for idx, (el_v, el_other) in enumerate(zip(v, other)):
        if el_v.shape != el_other.shape:
            prepend = f"Entry {idx} in " if is_other_tuple else ""
            raise RuntimeError(
                f"{prepend}v has invalid size: should be {_size_str(el_other.shape)} but got {_size_str(el_v.shape)}."
            )


def _check_requires_grad(inputs, input_type, strict):
    if not strict:
        return
    for i, inp in enumerate(inputs):
        if inp is None:
            raise RuntimeError(
                f"The output of the user-provided function is independent of input {i}."
                " This is not allowed in strict mode."
            )
        if not inp.requires_grad:
            if input_type == "hessian":
                raise RuntimeError(
                    f"The hessian of the user-provided function with respect to input {i}"
                    " is independent of the input. This is not allowed in strict mode."
                    " You should ensure that your function is thrice differentiable and that"
                    " the hessian depends on the inputs."
                )
            if input_type == "jacobian":
                raise RuntimeError(
                    "While computing the hessian, found that the jacobian of the user-provided"
                    f" function with respect to input {i} is independent of the input. This is not"
                    " allowed in strict mode. You should ensure that your function is twice"
                    " differentiable and that the jacobian depends on the inputs (this would be"
                    " violated by a linear function for example)."
                )
            if input_type == "grad_inputs":
                raise RuntimeError(
                    f"The gradient with respect to input {i} is independent of the inputs of the"
                    " user-provided function. This is not allowed in strict mode."
                )
            raise RuntimeError(
                f"Output {i} of the user-provided function does not require gradients."
                " The outputs must be computed in a differentiable manner from the input"
                " when running in strict mode."
            )


def _autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None, is_grads_batched=False):
    """``ad.autograd.grad`` over the outputs that require grad; ``None`` for every input if none does."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    new_outputs = ()
    new_grad_outputs = ()
    for out, grad_out in zip(outputs, grad_outputs):
        if out is not None and out.requires_grad:
            new_outputs += (out,)
            new_grad_outputs += (grad_out,)
    if len(new_outputs) == 0:
        return (None,) * len(inputs)
    return grad(
        new_outputs,
        inputs,
        new_grad_outputs,
        allow_unused=True,
        create_graph=create_graph,
        retain_graph=retain_graph,
        is_grads_batched=is_grads_batched,
    )


def _zeros_like(t):
    return wrap_array(np.zeros(t.shape, t.dtype))


def _fill_in_zeros(grads, refs, strict, create_graph, stage):
    res = ()
    for i, grads_i in enumerate(grads):
        if grads_i is None:
            if strict:
                if stage == "back":
                    raise RuntimeError(
                        "The output of the user-provided function is independent of "
                        f"input {i}. This is not allowed in strict mode."
                    )
                if stage == "back_trick":
                    raise RuntimeError(
                        f"The gradient with respect to the input is independent of entry {i}"
                        " in the grad_outputs when using the double backward trick to compute"
                        " forward mode gradients. This is not allowed in strict mode."
                    )
                if stage == "double_back":
                    raise RuntimeError(
                        "The jacobian of the user-provided function is independent of "
                        f"input {i}. This is not allowed in strict mode."
                    )
                raise RuntimeError(
                    "The hessian of the user-provided function is independent of "
                    f"entry {i} in the grad_jacobian. This is not allowed in strict "
                    "mode as it prevents from using the double backward trick to "
                    "replace forward mode AD."
                )
            grads_i = _zeros_like(refs[i])
        elif strict and create_graph and not grads_i.requires_grad:
            if "double" not in stage:
                raise RuntimeError(
                    "The jacobian of the user-provided function is independent of "
                    f"input {i}. This is not allowed in strict mode when create_graph=True."
                )
            raise RuntimeError(
                "The hessian of the user-provided function is independent of "
                f"input {i}. This is not allowed in strict mode when create_graph=True."
            )
        res += (grads_i,)
    return res


# ---------------------------------------------------------------------------------------------------------
# public API


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """The vector-Jacobian product ``v^T J`` of ``func`` at ``inputs``.

    Args:
        func: a function of tensors returning a tensor or a tuple of tensors.
        inputs: a tensor or a tuple of tensors, the point at which to differentiate.
        v: the vector, shaped like ``func``'s output(s); may be omitted only when ``func`` returns a single
            tensor with a single element (then it is ``1``).
        create_graph: compute the outputs and the result differentiably (with respect to ``inputs`` that
            require grad).
        strict: raise if an output does not depend on the inputs, or if all outputs are independent of some
            input, instead of returning zeros for it.

    Returns:
        ``(func_output, vjp)``: ``func(*inputs)`` and the product, shaped like ``inputs`` (a tensor or a
        tuple, as ``inputs`` was); both detached unless ``create_graph``.

    Raises:
        TypeError: ``inputs``, ``v`` or the outputs are not tensors or tuples of tensors.
        RuntimeError: ``v`` omitted for a non-scalar output; ``v`` of the wrong length or shape; a
            ``strict`` violation.

    Example:
        >>> x = ad.tensor([0.0, 1.0])
        >>> out, g = ad.autograd.functional.vjp(lambda x: (x * x).sum(), x)
        >>> g
        tensor([0., 2.])
    """
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "vjp")
        _check_requires_grad(outputs, "outputs", strict=strict)
        if v is not None:
            _, v = _as_tuple(v, "v", "vjp")
            v = _grad_preprocess(v, create_graph=create_graph, need_graph=False)
            _validate_v(v, outputs, is_outputs_tuple)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the user-provided function returns a single Tensor with a "
                "single element."
            )
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        grad_res = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(grad_res, inputs, strict, create_graph, "back")
    outputs = _grad_postprocess(outputs, create_graph)
    result = _grad_postprocess(result, create_graph)
    return _tuple_postprocess(outputs, is_outputs_tuple), _tuple_postprocess(result, is_inputs_tuple)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """The Jacobian-vector product ``J v`` of ``func`` at ``inputs`` (by the double backward trick).

    Args:
        func: a function of tensors returning a tensor or a tuple of tensors.
        inputs: a tensor or a tuple of tensors.
        v: the vector, shaped like ``inputs``; may be omitted only when ``inputs`` is a single tensor with a
            single element.
        create_graph: compute the outputs and the result differentiably.
        strict: raise if the result would be zeros because an output is independent of the inputs.

    Returns:
        ``(func_output, jvp)``: ``func(*inputs)`` and the product, shaped like the output(s).

    Raises:
        TypeError: ``inputs``, ``v`` or the outputs are not tensors or tuples of tensors.
        RuntimeError: ``v`` omitted for a non-scalar input; ``v`` of the wrong length or shape; a ``strict``
            violation.

    Example:
        >>> x = ad.tensor([0.0, 1.0])
        >>> out, t = ad.autograd.functional.jvp(ad.sin, x, ad.ones(2))
        >>> t  # cos(x)
        tensor([1.    , 0.5403])
    """
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        if v is not None:
            _, v = _as_tuple(v, "v", "jvp")
            v = _grad_preprocess(v, create_graph=create_graph, need_graph=False)
            _validate_v(v, inputs, is_inputs_tuple)
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a single Tensor "
                "with a single element."
            )
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "jvp")
        _check_requires_grad(outputs, "outputs", strict=strict)
        grad_outputs = tuple(_zeros_like(out).requires_grad_() for out in outputs)
        grad_inputs = _autograd_grad(outputs, inputs, grad_outputs, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict=strict)
    with enable_grad() if create_graph else contextlib.nullcontext():
        grad_res = _autograd_grad(grad_inputs, grad_outputs, v, create_graph=create_graph)
        result = _fill_in_zeros(grad_res, outputs, strict, create_graph, "back_trick")
    outputs = _grad_postprocess(outputs, create_graph)
    result = _grad_postprocess(result, create_graph)
    return _tuple_postprocess(outputs, is_outputs_tuple), _tuple_postprocess(result, is_outputs_tuple)


def _standard_basis(tensors, numels, transposed=False):
    """One block of the identity per tensor, shaped ``(sum(numels),) + tensor.shape``: the batched seeds (or
    tangents) whose entry ``j`` is the ``j``-th unit vector of all the tensors' elements taken together.
    ``transposed``: a block for a 1-D tensor is an F-ordered view (the batched sweep's ``(n, B)`` slots take
    its transpose as one contiguous add; elsewhere numpy reads it as any other layout)."""
    total = sum(numels)
    chunks = []
    start = 0
    for t, n in zip(tensors, numels):
        shape = (total,) + tuple(t.shape)
        if transposed and len(shape) == 2:
            block = np.eye(n, total, start, t.dtype).T  # (ones at [i, start + i])
        else:  # (ones at [start + i, i]: np.eye's diagonal ``k`` below the main one)
            block = np.eye(total, n, -start, t.dtype).reshape(shape)
        chunks.append(observe.created(wrap_array(block)))  # (ad.compile: a constant of the shapes alone)
        start += n
    return tuple(chunks)


def _jacfwd(func, inputs, strict=False, vectorize=False):
    """``strategy="forward-mode"``: the whole Jacobian from one forward pass with batched tangents
    (``ad.autograd.forward_ad.make_dual(..., is_batched=True)``)."""
    if strict:
        raise RuntimeError(
            "torch.autograd.functional.jacobian: `strict=True` "
            'and `strategy="forward-mode"` are not supported together (yet). '
            "Please either set `strict=False` or "
            '`strategy="reverse-mode"`.'
        )
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    if not vectorize:
        raise NotImplementedError(
            "Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
            "only implemented for `vectorize=True`."
        )
    from . import forward_ad as fwAD

    # one forward pass whose tangents are the whole identity, as a batch: input j's batched tangent is its
    # block of columns (``_standard_basis``), so the output's tangent row k is d output / d element k of the
    # inputs taken together (torch runs the same pass with vmap over jvp)
    numels = [inp.numel() for inp in inputs]
    total = sum(numels)
    if total == 0:  # every input is empty: one plain pass for the output structure
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs")
        tangents = [None] * len(outputs)
    else:
        with fwAD.dual_level():
            basis = _standard_basis(inputs, numels)
            duals = [fwAD.make_dual(inp, block, is_batched=True) for inp, block in zip(inputs, basis)]
            is_outputs_tuple, dual_outputs = _as_tuple(func(*duals), "outputs")
            outputs, tangents = [], []
            for out in dual_outputs:
                primal, tangent = fwAD.unpack_dual(out)
                outputs.append(primal)
                tangents.append(None if tangent is None else np.asarray(tangent._data))
    jac = []
    for out, tangent in zip(outputs, tangents):
        row = []
        start = 0
        for inp, n in zip(inputs, numels):
            if tangent is None or n == 0:
                data = np.zeros(out.shape + inp.shape, out.dtype)
            else:  # rows start..start+n of the tangent, moved behind the output's dims
                rows = tangent[start : start + n]
                data = rows.transpose(tuple(range(1, rows.ndim)) + (0,)).reshape(out.shape + inp.shape)
            start += n
            # (np.ascontiguousarray would make a 0-d Jacobian 1-d)
            row.append(wrap_array(np.array(data, dtype=out.dtype, order="C")))
        jac.append(row)
    # lists, not tuples, where torch's forward-mode path returns lists
    return _tuple_postprocess(jac, (is_outputs_tuple, is_inputs_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``.

    Args:
        func: a function of tensors returning a tensor or a tuple of tensors.
        inputs: a tensor or a tuple of tensors.
        create_graph: compute the Jacobian differentiably (for higher derivatives).
        strict: raise if some output is independent of some input instead of returning zeros.
        vectorize: compute all rows with one ``grad(..., is_grads_batched=True)`` call.
        strategy: ``"reverse-mode"`` (default) or ``"forward-mode"`` (needs ``vectorize=True``, and neither
            ``strict`` nor ``create_graph``, as torch).

    Returns:
        A tensor of shape ``output.shape + input.shape`` for one output and one input; a tuple over the
        inputs (or the outputs) where one of them was a tuple; a tuple (outputs) of tuples (inputs) where
        both were.

    Raises:
        AssertionError: an unknown ``strategy`` (as torch).
        NotImplementedError: ``strategy="forward-mode"`` with ``create_graph=True`` or ``vectorize=False``.
        RuntimeError: a ``strict`` violation; ``strict`` together with ``vectorize``.

    Example:
        >>> A = ad.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> ad.autograd.functional.jacobian(lambda x: A @ x, ad.tensor([1.0, 1.0]))
        tensor([[1., 2.],
                [3., 4.]])
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more performant. '
            'Otherwise, prefer to use "reverse-mode".'
        )
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` "
                'and `strategy="forward-mode"` are not supported together (yet). '
                "Please either set `create_graph=False` or "
                '`strategy="reverse-mode"`.'
            )
        return _jacfwd(func, inputs, strict, vectorize)

    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "jacobian")
        _check_requires_grad(outputs, "outputs", strict=strict)

        # vectorize=False without strict or create_graph gives the same numbers as the row-by-row loop torch
        # runs, so it takes the batched sweep too (one compiled pass instead of one backward per output
        # element); an output without elements keeps the loop, which raises torch's error for it
        routed = not vectorize and not strict and not create_graph and all(out.numel() for out in outputs)
        vj = _batched_rows(outputs, inputs, create_graph, vectorize, strict, routed)
        if vj is not None:
            result = _split_rows(vj, outputs, inputs, create_graph)
            return _tuple_postprocess(result, (is_outputs_tuple, is_inputs_tuple))

        result = ()
        for i, out in enumerate(outputs):
            jac_i = tuple([] for _ in range(len(inputs)))
            flat = ops.reshape(out, (-1,))
            for j in range(out.numel()):
                vj = _autograd_grad((flat[j],), inputs, retain_graph=True, create_graph=create_graph)
                for el_idx, (jac_i_el, vj_el, inp_el) in enumerate(zip(jac_i, vj, inputs)):
                    if vj_el is not None:
                        if strict and create_graph and not vj_el.requires_grad:
                            raise RuntimeError(
                                "The jacobian of the user-provided function is "
                                f"independent of input {i}. This is not allowed in "
                                "strict mode when create_graph=True."
                            )
                        jac_i_el.append(vj_el)
                    else:
                        if strict:
                            raise RuntimeError(
                                f"Output {i} of the user-provided function is "
                                f"independent of input {el_idx}. This is not allowed in "
                                "strict mode."
                            )
                        jac_i_el.append(_zeros_like(inp_el))
            result += (
                tuple(
                    # an output with no elements: stack raises a RuntimeError, as torch's
                    ops.reshape(ops.stack(jac_i_el, 0), out.shape + inputs[el_idx].shape)
                    for el_idx, jac_i_el in enumerate(jac_i)
                ),
            )
        result = _grad_postprocess(result, create_graph)
        return _tuple_postprocess(result, (is_outputs_tuple, is_inputs_tuple))


def _batched_rows(outputs, inputs, create_graph, vectorize, strict, routed):
    """All rows of the Jacobian in one ``grad(..., is_grads_batched=True)`` (a list over the inputs), or None
    for the row-by-row loop: ``vectorize`` is off and the call was not ``routed`` to the batched sweep, or it
    was routed and the graph holds a ``retain_grad`` tensor (which the batched sweep refuses; the loop fills
    its ``.grad`` as torch's does)."""
    if not vectorize and not routed:
        return None
    if strict:
        raise RuntimeError(
            "torch.autograd.functional.jacobian: `strict=True` "
            "and `vectorized=True` are not supported together. "
            "Please either set `strict=False` or "
            "`vectorize=False`."
        )
    try:
        if not create_graph:  # the identity seeds go straight to the batched sweep (no tensors around them)
            rows = _identity_rows(outputs, inputs, routed or None)
            if rows is not None:
                return [None if r is None else wrap_array(r) for r in rows]
        # the seeds are shaped like the outputs (no flattening reshape recorded on the graph to seed through)
        grad_outputs = _standard_basis(outputs, tuple(out.numel() for out in outputs), transposed=not create_graph)
        return list(
            _autograd_grad(
                outputs,
                inputs,
                grad_outputs,
                create_graph=create_graph,
                retain_graph=routed or None,
                is_grads_batched=True,
            )
        )
    except RetainGradInBatch:
        if not routed:
            raise
        return None


def _split_rows(vj, outputs, inputs, create_graph):
    """The Jacobian's blocks ``[output][input]`` from the batched rows: ``vj[k]`` (or None, for zeros) holds
    ``(sum of the outputs' numels,) + inputs[k].shape``; output ``i``'s rows reshape to ``out.shape + inp.shape``
    (views of one array, as torch's ``split`` and ``view``). Recorded ops only under ``create_graph``."""
    total = sum(out.numel() for out in outputs)
    on_host = all(v is None or v._dev is None for v in vj)
    result = []
    lo = 0
    for out in outputs:
        hi = lo + out.numel()
        row = []
        for k, inp in enumerate(inputs):
            shape = tuple(out.shape) + tuple(inp.shape)
            rows = vj[k]
            if rows is None:
                rows = wrap_array(np.zeros((total,) + tuple(inp.shape), inp.dtype))
            if create_graph or not on_host:
                row.append(ops.reshape(rows[lo:hi], shape))
            else:  # (fresh arrays of this call: the results take them over, as torch's detached views)
                row.append(wrap_array(rows._data[lo:hi].reshape(shape)))
        result.append(tuple(row))
        lo = hi
    return _grad_postprocess(tuple(result), create_graph) if create_graph or not on_host else tuple(result)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of the scalar function ``func`` at ``inputs``.

    Args:
        func: a function of tensors returning a tensor with a single element.
        inputs: a tensor or a tuple of tensors.
        create_graph: compute the Hessian differentiably.
        strict: raise if the Hessian with respect to some input is independent of the inputs (e.g. ``func``
            linear in it) instead of returning zeros.
        vectorize: compute the rows of the outer Jacobian with one batched ``grad`` call.
        outer_jacobian_strategy: ``"reverse-mode"`` or ``"forward-mode"`` for the outer Jacobian.

    Returns:
        A tensor of shape ``input.shape + input.shape`` for a single input; for a tuple of inputs, a tuple of
        tuples where ``H[i][j]`` has shape ``inputs[i].shape + inputs[j].shape``.

    Raises:
        RuntimeError: ``func`` returns a tuple or a tensor with more than one element; a ``strict``
            violation.

    Example:
        >>> x = ad.tensor([1.0, 2.0])
        >>> ad.autograd.functional.hessian(lambda x: (x ** 3).sum(), x)
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def ensure_single_output_function(*inp):
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict=strict)
        if is_out_tuple or not isinstance(out, Tensor):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single element")
        return ops.squeeze(out)

    def jac_func(*inp):
        if outer_jacobian_strategy == "forward-mode":
            # dual inputs that require grad: the inner jacobian then keeps them (and their tangents) in the graph
            inp = tuple(t.requires_grad_(True) for t in inp)
        jac = jacobian(ensure_single_output_function, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict=strict)
        return jac

    res = jacobian(
        jac_func,
        inputs,
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy=outer_jacobian_strategy,
    )
    return _tuple_postprocess(res, (is_inputs_tuple, is_inputs_tuple))


def _scalar_func_setup(func, inputs, v, create_graph, strict, name):
    """The shared first half of ``vhp`` / ``hvp``: preprocessed inputs and ``v``, the output, its gradient."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
    if v is not None:
        _, v = _as_tuple(v, "v", name)
        v = _grad_preprocess(v, create_graph=create_graph, need_graph=False)
        _validate_v(v, inputs, is_inputs_tuple)
    elif len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError(
            "The vector v can only be None if the input to the user-provided function is a single Tensor "
            "with a single element."
        )
    outputs = func(*inputs)
    is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", name)
    _check_requires_grad(outputs, "outputs", strict=strict)
    if is_outputs_tuple or not isinstance(outputs[0], Tensor):
        raise RuntimeError(f"The function given to {name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {name} should contain a single element")
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict=strict)
    return is_inputs_tuple, is_outputs_tuple, inputs, v, outputs, jac


def _hvp_forward_over_reverse(func, inputs, v):
    """``hvp`` without ``create_graph`` or ``strict``: ``H v`` as the tangent, along ``v``, of the gradient (forward
    over reverse: one forward pass whose inputs carry ``v`` as tangents, then one ``grad``, which the compiled
    sweep of ``ad/second_order.py`` runs) instead of the double backward trick's three sweeps. Both compute the
    directional derivative of the gradient, so no symmetry of ``H`` is assumed (``vhp``, ``v^T H``, keeps the
    trick). Arguments are checked and errors raised as in ``_scalar_func_setup``. Returns ``hvp``'s result, or
    None where this path does not apply: an active dual level, CUDA or empty inputs, a ``v`` of another dtype,
    or an op of ``func`` without a forward-mode rule (``NotImplementedError``: ``func`` then runs again, on the
    trick's path)."""
    from ..forward import _fw
    from . import forward_ad as fwAD
    from . import grad

    if _fw.levels:
        return None
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hvp")
    if v is not None:
        _, v = _as_tuple(v, "v", "hvp")
        _validate_v(v, inputs, is_inputs_tuple)
    elif len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError(
            "The vector v can only be None if the input to the user-provided function is a single Tensor "
            "with a single element."
        )
    else:
        v = (ops.ones_like(inputs[0]),)
    for inp, vi in zip(inputs, v):
        if inp._dev is not None or vi._dev is not None or inp.numel() == 0 or vi.dtype != inp.dtype:
            return None
    try:
        with enable_grad(), fwAD.dual_level():
            # duals of detached values, made leaves that require grad: the gradient is taken at leaves (no
            # make_dual row to step over), as _grad_preprocess's aliases are
            duals = tuple(fwAD.make_dual(inp.detach(), vi.detach()).requires_grad_() for inp, vi in zip(inputs, v))
            outputs = func(*duals)
            is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "hvp")
            if is_outputs_tuple or not isinstance(outputs[0], Tensor):
                raise RuntimeError("The function given to hvp should return a single Tensor")
            if outputs[0].numel() != 1:
                raise RuntimeError("The Tensor returned by the function given to hvp should contain a single element")
            out = outputs[0]
            grads = grad(out, duals, allow_unused=True) if out.requires_grad else (None,) * len(duals)
            tangents = [None if g is None else fwAD.unpack_dual(g).tangent for g in grads]
            result = tuple(
                _zeros_like(inp) if t is None else wrap_array(np.array(t._data, copy=True))
                for inp, t in zip(inputs, tangents)
            )
    except NotImplementedError:
        return None
    return _tuple_postprocess((out.detach(),), is_outputs_tuple), _tuple_postprocess(result, is_inputs_tuple)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """The vector-Hessian product ``v^T H`` of the scalar function ``func`` at ``inputs``.

    Args:
        func: a function of tensors returning a tensor with a single element.
        inputs: a tensor or a tuple of tensors.
        v: the vector, shaped like ``inputs``; may be omitted only for a single one-element input.
        create_graph: compute the output and the result differentiably.
        strict: raise if the result would be zeros because of an independence (see ``hessian``).

    Returns:
        ``(func_output, vhp)``: the output of ``func`` and the product, shaped like ``inputs``.

    Raises:
        RuntimeError: ``func`` returns a tuple or more than one element; ``v`` missing or misshapen; a
            ``strict`` violation.

    Example:
        >>> x = ad.tensor([1.0, 2.0])
        >>> ad.autograd.functional.vhp(lambda x: (x ** 3).sum(), x, ad.ones(2))[1]
        tensor([ 6., 12.])
    """
    with enable_grad():
        is_inputs_tuple, is_outputs_tuple, inputs, v, outputs, jac = _scalar_func_setup(
            func, inputs, v, create_graph, strict, "vhp"
        )
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        grad_res = _autograd_grad(jac, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(grad_res, inputs, strict, create_graph, "double_back")
    outputs = _grad_postprocess(outputs, create_graph)
    result = _grad_postprocess(result, create_graph)
    return _tuple_postprocess(outputs, is_outputs_tuple), _tuple_postprocess(result, is_inputs_tuple)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """The Hessian-vector product ``H v`` of the scalar function ``func`` at ``inputs``.

    Computed as the tangent of the gradient along ``v`` (forward over reverse, one compiled sweep) when neither
    ``create_graph`` nor ``strict`` is set and every op of ``func`` has a forward rule; otherwise by the double
    backward trick, as torch's ``hvp`` (a ``func`` that stops forward mode, with an op that has no forward rule,
    is then called a second time). For twice-differentiable functions ``H`` is
    symmetric and ``hvp`` equals ``vhp``.

    Args:
        func: a function of tensors returning a tensor with a single element.
        inputs: a tensor or a tuple of tensors.
        v: the vector, shaped like ``inputs``; may be omitted only for a single one-element input.
        create_graph: compute the output and the result differentiably.
        strict: raise if the result would be zeros because of an independence (see ``hessian``).

    Returns:
        ``(func_output, hvp)``: the output of ``func`` and the product, shaped like ``inputs``.

    Raises:
        RuntimeError: as ``vhp``.

    Example:
        >>> x = ad.tensor([1.0, 2.0])
        >>> ad.autograd.functional.hvp(lambda x: (x ** 3).sum(), x, ad.ones(2))[1]
        tensor([ 6., 12.])
    """
    if not create_graph and not strict:
        fast = _hvp_forward_over_reverse(func, inputs, v)
        if fast is not None:
            return fast
    with enable_grad():
        is_inputs_tuple, is_outputs_tuple, inputs, v, outputs, jac = _scalar_func_setup(
            func, inputs, v, create_graph, strict, "hvp"
        )
        grad_jac = tuple(_zeros_like(inp).requires_grad_() for inp in inputs)
        double_back = _autograd_grad(jac, inputs, grad_jac, create_graph=True)
        _check_requires_grad(jac, "hessian", strict=strict)
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        grad_res = _autograd_grad(double_back, grad_jac, v, create_graph=create_graph)
        result = _fill_in_zeros(grad_res, inputs, strict, create_graph, "double_back_trick")
    outputs = _grad_postprocess(outputs, create_graph)
    result = _grad_postprocess(result, create_graph)
    return _tuple_postprocess(outputs, is_outputs_tuple), _tuple_postprocess(result, is_inputs_tuple)
