"""``gradcheck`` and ``gradgradcheck``: analytical Jacobians against central finite differences.

Same arguments and tolerances as torch (``eps=1e-6, atol=1e-5, rtol=1e-3``). The analytical Jacobian is
built row by row with ``ad.autograd.grad`` (one vector-Jacobian product per output element); the numerical
one perturbs each input element by ``±eps`` in place under ``no_grad``.
"""

import warnings

import numpy as np

from ..tensor import Tensor, wrap_array


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` / ``gradgradcheck`` when the Jacobians differ (as torch's)."""


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _outputs(func, inputs, differentiable_only=True):
    """The tensor outputs of ``func``; by default only those that require grad (torch ignores the others)."""
    out = _as_tuple(func(*inputs))
    return tuple(o for o in out if isinstance(o, Tensor) and (o.requires_grad or not differentiable_only))


def _flat_outputs(func, inputs):
    outs = _outputs(func, inputs)
    if not outs:
        return np.zeros(0)
    return np.concatenate([np.asarray(o._data, np.float64).reshape(-1) for o in outs])


def _numerical_jacobians(func, inputs, eps):
    """``jac[i][j]``: (numel of input j, numel of output i) by central differences."""
    outs = _outputs(func, inputs)  # grad mode as the caller's: gradgradcheck's function differentiates
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    jac = [[None] * len(inputs) for _ in outs]
    for j in diff_idx:
        x = inputs[j]
        flat = x._data.reshape(-1)
        if not np.shares_memory(flat, x._data):
            raise ValueError("gradcheck needs inputs whose data can be perturbed in place (contiguous arrays)")
        cols = np.zeros((flat.size, sum(o._data.size for o in outs)))
        for e in range(flat.size):
            orig = flat[e].item()
            flat[e] = orig + eps  # raw numpy writes: no version bump, the graph of the caller is untouched
            plus = _flat_outputs(func, inputs)
            flat[e] = orig - eps
            minus = _flat_outputs(func, inputs)
            flat[e] = orig
            cols[e] = (plus - minus) / (2 * eps)
        start = 0
        for i, o in enumerate(outs):
            jac[i][j] = cols[:, start : start + o._data.size]
            start += o._data.size
    return outs, diff_idx, jac


def _analytical_jacobians(func, inputs, diff_idx):
    from . import grad

    outs = _outputs(func, inputs)
    jac = [[None] * len(inputs) for _ in outs]
    diff_inputs = [inputs[j] for j in diff_idx]
    for i, o in enumerate(outs):
        for j in diff_idx:
            jac[i][j] = np.zeros((inputs[j]._data.size, o._data.size))
        if not o.requires_grad:
            continue
        for e in range(o._data.size):
            seed = np.zeros(o._data.size, o._data.dtype)
            seed[e] = 1.0
            grads = grad(o, diff_inputs, wrap_array(seed.reshape(o.shape)), retain_graph=True, allow_unused=True)
            for j, g in zip(diff_idx, grads):
                if g is not None:
                    if g.shape != inputs[j].shape:
                        raise GradcheckError(f"Gradient has incorrect shape for input {j}: {g.shape}")
                    jac[i][j][:, e] = np.asarray(g._data, np.float64).reshape(-1)
    return jac


def gradcheck(
    func,
    inputs,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    raise_exception=True,
    nondet_tol=0.0,
    check_undefined_grad=True,
    check_grad_dtypes=False,
    check_batched_grad=False,
    check_batched_forward_grad=False,
    check_forward_ad=False,
    check_backward_ad=True,
    fast_mode=False,
    masked=None,
):
    """Check the gradients of ``func`` at ``inputs`` against central finite differences.

    Args:
        func: a function of tensors returning a tensor or a tuple of tensors.
        inputs: a tensor or tuple of tensors; those with ``requires_grad=True`` are checked (use float64).
        eps, atol, rtol: finite-difference step and tolerances (torch's defaults).
        raise_exception: raise ``GradcheckError`` on mismatch instead of returning False.
        check_forward_ad: also compare forward-mode JVPs (needs ``ad.autograd.forward_ad``).
        check_backward_ad: compare reverse-mode VJPs (default).

    Returns:
        True if all Jacobians match.

    Example:
        >>> x = ad.tensor([0.3, 0.7], requires_grad=True)
        >>> ad.autograd.gradcheck(lambda x: (x.sin() * x).sum(), (x,))
        True
    """
    inputs = _as_tuple(inputs)
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of them have requires_grad=True."
        )
    for k, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            warnings.warn(
                f"Input #{k} requires gradient and is not a double precision floating point or complex. This "
                "check will likely fail if all the inputs are not of double precision floating point or complex.",
                UserWarning,
                stacklevel=2,
            )
    outs, diff_idx, numerical = _numerical_jacobians(func, inputs, eps)

    def fail(msg):
        if raise_exception:
            raise GradcheckError(msg)
        return False

    if check_backward_ad:
        analytical = _analytical_jacobians(func, inputs, diff_idx)
        for i in range(len(outs)):
            for j in diff_idx:
                a = analytical[i][j]
                n = numerical[i][j]
                if not np.allclose(a, n, rtol=rtol, atol=atol):
                    return fail(
                        f"Jacobian mismatch for output {i} with respect to input {j},\nnumerical:{n}\nanalytical:{a}\n"
                    )
    if check_forward_ad:
        from .forward_ad import jacobian_by_jvp

        forward = jacobian_by_jvp(func, inputs, diff_idx)
        for i in range(len(outs)):
            for j in diff_idx:
                if not np.allclose(forward[i][j], numerical[i][j], rtol=rtol, atol=atol):
                    return fail(
                        f"Jacobian computed with forward mode mismatch for output {i} with respect to input {j},\n"
                        f"numerical:{numerical[i][j]}\nanalytical:{forward[i][j]}\n"
                    )
    return True


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    gen_non_contig_grad_outputs=False,
    raise_exception=True,
    nondet_tol=0.0,
    check_undefined_grad=True,
    check_grad_dtypes=False,
    check_batched_grad=False,
    check_fwd_over_rev=False,
    check_rev_over_rev=True,
    fast_mode=False,
    masked=False,
):
    """Check second derivatives: ``gradcheck`` of the function ``(inputs, v) -> VJP(func, inputs, v)``.

    ``grad_outputs`` (the ``v``) are random float64 tensors requiring grad when not given, as torch.

    Example:
        >>> x = ad.tensor([0.3, 0.7], requires_grad=True)
        >>> ad.autograd.gradgradcheck(lambda x: x.sin() * x, (x,))
        True
    """
    from . import grad

    inputs = _as_tuple(inputs)
    outs = _outputs(func, inputs)
    rng = np.random.default_rng(0)
    if grad_outputs is None:
        grad_outputs = tuple(wrap_array(rng.standard_normal(o.shape).astype(o.dtype), requires_grad=True) for o in outs)
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_derivative(*args):
        xs = args[:n_in]
        vs = args[n_in:]
        out = _outputs(func, xs)
        diff_inputs = [xs[k] for k in diff_idx]
        pairs = [(o, v) for o, v in zip(out, vs) if o.requires_grad]
        grads = grad([o for o, _ in pairs], diff_inputs, [v for _, v in pairs], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        first_derivative,
        inputs + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
    )
