"""``gradcheck`` and ``gradgradcheck``: analytical Jacobians against central finite differences, as torch's.

Same arguments, defaults, checks, order of checks and messages as ``torch.autograd.gradcheck`` (torch 2.x);
every flag is honoured. The data structures:

- Jacobians are numpy arrays ``jac[i][j]`` of shape ``(numel of input j, numel of output i)`` (torch's layout:
  one row per input element), for ``i`` over the outputs that require grad and ``j`` over all inputs (``None``
  for the inputs that do not require grad).
- The numerical Jacobian perturbs one input element at a time by ``+-eps``, writing into the input's array
  under the hood (no version bump, so the caller's graph stays usable), and checks that the outputs keep
  their shape and dtype. Fast mode (``fast_mode=True``) instead compares the scalars ``v^T J u`` for random
  unit vectors ``u`` (per input) and ``v`` (per output): one finite difference and one VJP (or JVP) each.
- The analytical Jacobian (slow mode) is built twice, one VJP per output element, so that a backward that
  gives different values on identical calls is caught ("Backward is not reentrant", within ``nondet_tol``).

Then, as torch: forward mode (``check_forward_ad``) against the same numerical Jacobian, batched gradients
(``check_batched_grad``, through ``grad(..., is_grads_batched=True)``; ``check_batched_forward_grad``, through
batched tangents: ``make_dual(..., is_batched=True)``), zero grad_outputs give zero grads of
the right dtype and shape ("backward not multiplied by grad_output"), and undefined grad_outputs (``ad`` has
no undefined-gradient tensor: an output left out of the ``grad`` call is the equivalent) give zero grads.
"""

import itertools
import warnings

import numpy as np

from ..tensor import Tensor, wrap_array

FAILED_NONDET_MSG = """

NOTE: If your op relies on non-deterministic operations, this failure might be expected. Call
gradcheck/gradgradcheck with `nondet_tol=<tol>` as a keyword argument.
"""

FAILED_BATCHED_GRAD_MSG = """
gradcheck or gradgradcheck failed while testing batched gradient computation.
Call gradcheck/gradgradcheck with `check_batched_grad=False` as a keyword argument to skip this check.
""".strip()

FAILED_BATCHED_GRAD_MSG_FWD_AD = """
gradcheck failed while testing batched gradient computation with forward-mode AD.
Call gradcheck with `check_batched_forward_grad=False` as a keyword argument to skip this check.
""".strip()

FAST_FAIL_SLOW_OK_MSG = """
Fast gradcheck failed but element-wise differences are small. This means that the
test might've passed in slow_mode!

Call gradcheck/gradgradcheck with `fast_mode=False` as a keyword argument.
"""


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` / ``gradgradcheck`` when a check fails (as torch's)."""


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _is_float_tensor(t):
    return isinstance(t, Tensor) and np.dtype(t.dtype).kind == "f"


def _differentiable_outputs(func_out):
    return tuple(o for o in _as_tuple(func_out) if isinstance(o, Tensor) and o.requires_grad)


def _outputs(func, inputs, differentiable_only=True):
    """The tensor outputs of ``func``; by default only those that require grad (``forward_ad.jacobian_by_jvp``)."""
    out = _as_tuple(func(*inputs))
    return tuple(o for o in out if isinstance(o, Tensor) and (o.requires_grad or not differentiable_only))


def _diff_indices(inputs):
    return [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]


def _check_inputs(inputs):
    any_requires_grad = False
    for idx, inp in enumerate(inputs):
        if isinstance(inp, Tensor) and inp.requires_grad:
            if inp.dtype != np.float64:
                warnings.warn(
                    f"Input #{idx} requires gradient and is not a double precision floating point or complex. "
                    "This check will likely fail if all the inputs are not of double precision floating point "
                    "or complex. ",
                    UserWarning,
                    stacklevel=4,
                )
            data = inp._data
            if not all(st > 0 or sz <= 1 for st, sz in zip(data.strides, data.shape)):
                raise RuntimeError(
                    f"The {idx}th input has a dimension with stride 0. gradcheck only supports inputs that are "
                    "non-overlapping to be able to compute the numerical gradients correctly. You should call "
                    ".contiguous on the input before passing it to gradcheck."
                )
            any_requires_grad = True
    if not any_requires_grad:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of them have requires_grad=True."
        )


# ---------------------------------------------------------------------------------------------------------
# numerical derivatives


def _float_outputs(func, inputs):
    """Every floating-point tensor output of ``func`` (torch differentiates numerically all of them)."""
    return [o for o in _as_tuple(func(*inputs)) if _is_float_tensor(o)]


def _check_same_dtype_and_shape(shape_a, dtype_a, shape_b, dtype_b, eps, idx=None):
    on_index = f"on index {idx} " if idx is not None else ""
    if shape_a != shape_b:
        raise AssertionError(
            f"Expected `func` to return outputs with the same shape when inputs are perturbed {on_index}by {eps}, "
            f"but got: shapes {shape_a} and {shape_b}."
        )
    if dtype_a != dtype_b:
        raise AssertionError(
            f"Expected `func` to return outputs with the same dtype when inputs are perturbed {on_index}by {eps}, "
            f"but got: dtypes {dtype_a} and {dtype_b}."
        )


def _central_difference(func, inputs, write, eps, idx):
    """``(f(x + d) - f(x - d)) / (2 eps)`` per float output, where ``write(sign)`` moves the input by ``sign * d``
    in place (raw numpy writes: no version bump, the caller's graph is untouched). Outputs are copied at once:
    ``func`` may return an input itself (``grad`` returns the cotangent of an add), which the next write moves."""

    def snapshot():
        return [(o.shape, o.dtype, np.array(o._data, np.float64)) for o in _float_outputs(func, inputs)]

    try:
        write(+1.0)
        plus = snapshot()
        write(-1.0)
        minus = snapshot()
    finally:
        write(0.0)
    for (sa, da, _), (sb, db, _) in zip(minus, plus):
        _check_same_dtype_and_shape(sa, da, sb, db, eps, idx)
    return [(b - a).reshape(-1) / (2 * eps) for (_, _, a), (_, _, b) in zip(minus, plus)]


def _numerical_jacobians(func, inputs, eps):
    """``jac[i][j]`` for every float output ``i`` (requiring grad or not) and every input ``j`` requiring grad."""
    n_out = len(_float_outputs(func, inputs))
    jac = [[None] * len(inputs) for _ in range(n_out)]
    for j in _diff_indices(inputs):
        data = inputs[j]._data
        cols = []
        for idx in itertools.product(*[range(m) for m in data.shape]):
            orig = data[idx].item()

            def write(sign, idx=idx, orig=orig, data=data):
                data[idx] = orig + sign * eps

            cols.append(_central_difference(func, inputs, write, eps, idx))
        for i in range(n_out):
            size = cols[0][i].size if cols else 0
            jac[i][j] = np.stack([c[i] for c in cols]) if cols else np.zeros((0, size))
    return jac


def _numerical_jvps(func, inputs, j, u, eps):
    """``J u`` per float output, by a central difference along the unit vector ``u`` of input ``j``."""
    data = inputs[j]._data
    orig = data.copy()
    step = u.reshape(data.shape).astype(data.dtype) * eps

    def write(sign):
        np.copyto(data, orig + sign * step if sign else orig)

    return _central_difference(func, inputs, write, eps, None)


# ---------------------------------------------------------------------------------------------------------
# analytical derivatives


def _vjp(output, diff_inputs, seed):
    from . import grad

    return grad(output, diff_inputs, wrap_array(seed), retain_graph=True, allow_unused=True)


def _analytical_jacobian_rows(inputs, output, diff_idx, seeds):
    """One VJP per seed: ``rows[j]`` is (number of seeds, numel of input j); grads that are None give zeros.
    Also whether every grad had its input's dtype and shape."""
    diff_inputs = [inputs[j] for j in diff_idx]
    rows = {j: np.zeros((len(seeds), inputs[j]._data.size)) for j in diff_idx}
    types_ok = sizes_ok = True
    for e, seed in enumerate(seeds):
        for j, g in zip(diff_idx, _vjp(output, diff_inputs, seed)):
            if g is None:
                continue
            if g.dtype != inputs[j].dtype:
                types_ok = False
            if g.shape != inputs[j].shape:
                sizes_ok = False
                continue
            rows[j][e] = np.asarray(g._data, np.float64).reshape(-1)
    return rows, types_ok, sizes_ok


def _check_analytical_attributes(inputs, output, diff_idx, seeds, nondet_tol, check_grad_dtypes):
    """The rows of ``seeds^T J`` for one output, computed twice (reentrancy), with torch's attribute checks."""
    rows1, types_ok, sizes_ok = _analytical_jacobian_rows(inputs, output, diff_idx, seeds)
    rows2, _, _ = _analytical_jacobian_rows(inputs, output, diff_idx, seeds)
    reentrant = all(rows1[j].size == 0 or np.abs(rows1[j] - rows2[j]).max() <= nondet_tol for j in diff_idx)
    if not types_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    if not reentrant:
        raise GradcheckError(
            "Backward is not reentrant, i.e., running backward with same input and grad_output multiple times "
            "gives different values, although analytical gradient matches numerical gradient."
            f"The tolerance for nondeterminism was {nondet_tol}." + FAILED_NONDET_MSG
        )
    return rows1


def _basis(output):
    n = output._data.size
    eye = np.eye(n, dtype=output._data.dtype)
    return [eye[e].reshape(output.shape) for e in range(n)]


def _forward_jvps(func, inputs, j, tangent):
    """The tangent of every float output for the tangent ``tangent`` (an array) on input ``j`` (None: no tangent
    at all, the input passed plain), the other inputs plain; None for an output without a tangent."""
    from . import forward_ad as fwAD

    with fwAD.dual_level():
        dual_inputs = [t.detach() if isinstance(t, Tensor) else t for t in inputs]
        if tangent is not None:
            dual_inputs[j] = fwAD.make_dual(dual_inputs[j], wrap_array(tangent.reshape(inputs[j].shape)))
        res = []
        for o in _as_tuple(func(*dual_inputs)):
            if not _is_float_tensor(o):
                continue
            t = fwAD.unpack_dual(o).tangent
            res.append(None if t is None else np.asarray(t._data, np.float64).reshape(-1).copy())
    return res


def _forward_jacobians(func, inputs, diff_idx, check_grad_dtypes):
    n_out = len(_float_outputs(func, inputs))
    jac = [[None] * len(inputs) for _ in range(n_out)]
    for j in diff_idx:
        x = inputs[j]
        cols = [[] for _ in range(n_out)]
        for e in range(x._data.size):
            seed = np.zeros(x._data.size, x.dtype)
            seed[e] = 1.0
            for i, t in enumerate(_forward_jvps(func, inputs, j, seed)):
                cols[i].append(np.zeros(0) if t is None else t)
        for i, o in enumerate(_float_outputs(func, inputs)):
            m = o._data.size
            jac[i][j] = np.stack([c if c.size else np.zeros(m) for c in cols[i]]) if cols[i] else np.zeros((0, m))
    return jac


# ---------------------------------------------------------------------------------------------------------
# the checks


def _notallclose_msg(analytical, numerical, output_idx, input_idx, is_forward_ad=False):
    mode = "computed with forward mode " if is_forward_ad else ""
    return (
        f"Jacobian {mode}mismatch for output {output_idx:d} with respect to input {input_idx:d},\n"
        f"numerical:{numerical}\nanalytical:{analytical}\n"
    )


def _check_no_differentiable_outputs(func, inputs, eps):
    for per_output in _numerical_jacobians(func, inputs, eps):
        for jac in per_output:
            if jac is not None and np.any(jac != 0):
                raise GradcheckError("Numerical gradient for function expected to be zero")


def _requires_grad_mask(func, inputs):
    """For each float output: whether it requires grad (the numerical Jacobians cover all float outputs)."""
    return [o.requires_grad for o in _float_outputs(func, inputs)]


def _slow_gradcheck(func, inputs, outputs, eps, rtol, atol, check_grad_dtypes, nondet_tol, use_forward_ad):
    if not outputs:
        return _check_no_differentiable_outputs(func, inputs, eps)
    diff_idx = _diff_indices(inputs)
    keep = _requires_grad_mask(func, inputs)
    numerical = [n for n, k in zip(_numerical_jacobians(func, inputs, eps), keep) if k]
    if use_forward_ad:
        forward = [f for f, k in zip(_forward_jacobians(func, inputs, diff_idx, check_grad_dtypes), keep) if k]
        for i, per_output in enumerate(numerical):
            for j in diff_idx:
                a, n = forward[i][j], per_output[j]
                if not np.allclose(a, n, rtol=rtol, atol=atol):
                    raise GradcheckError(_notallclose_msg(a, n, i, j, is_forward_ad=True))
        return True
    for i, o in enumerate(outputs):
        rows = _check_analytical_attributes(inputs, o, diff_idx, _basis(o), nondet_tol, check_grad_dtypes)
        for j in diff_idx:
            a, n = rows[j].T, numerical[i][j]  # rows: (out numel, in numel); torch's layout is (in, out)
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                raise GradcheckError(_notallclose_msg(a, n, i, j))
    return True


def _unit_vector(rng, n, dtype):
    v = rng.random(n)
    norm = np.linalg.norm(v)
    return (v / norm if norm else v).astype(dtype)


def _fast_gradcheck(func, inputs, outputs, eps, rtol, atol, check_grad_dtypes, nondet_tol, use_forward_ad):
    """torch's fast mode: ``v^T J u`` (reverse) or ``J u`` (forward), against one central difference along u."""
    rng = np.random.default_rng(0)  # its own generator: the user's random state is left alone
    diff_idx = _diff_indices(inputs)
    us = {j: _unit_vector(rng, inputs[j]._data.size, inputs[j].dtype) for j in diff_idx}
    keep = _requires_grad_mask(func, inputs)
    if not outputs and not use_forward_ad:
        for j in diff_idx:
            if any(np.any(ju != 0) for ju in _numerical_jvps(func, inputs, j, us[j], eps)):
                raise GradcheckError("Numerical gradient for function expected to be zero")
        return True
    vs = [_unit_vector(rng, o._data.size, o.dtype) for o in outputs]
    for j in diff_idx:
        numerical_ju = [ju for ju, k in zip(_numerical_jvps(func, inputs, j, us[j], eps), keep) if k]
        if use_forward_ad:
            forward = [t for t, k in zip(_forward_jvps(func, inputs, j, us[j]), keep) if k]
            for i, (n, a) in enumerate(zip(numerical_ju, forward)):
                a = np.zeros_like(n) if a is None else a
                if not np.allclose(a, n, rtol=rtol, atol=atol * float(us[j].sum())):
                    raise GradcheckError(
                        _notallclose_msg(a, n, i, j, is_forward_ad=True)
                        + _slow_mode_msg(func, inputs, i, j, rtol, atol, eps, True)
                    )
            continue
        for i, (o, v) in enumerate(zip(outputs, vs)):
            n = float(v.astype(np.float64) @ numerical_ju[i])
            rows = _check_analytical_attributes(
                inputs, o, diff_idx, [v.reshape(o.shape)], nondet_tol, check_grad_dtypes
            )
            a = float(rows[j][0] @ us[j].astype(np.float64))
            if not np.allclose(a, n, rtol=rtol, atol=atol * float(us[j].sum()) * float(v.sum())):
                raise GradcheckError(
                    _notallclose_msg(a, n, i, j) + _slow_mode_msg(func, inputs, i, j, rtol, atol, eps, False)
                )
    return True


def _slow_mode_msg(func, inputs, output_idx, input_idx, rtol, atol, eps, is_forward_ad):
    """The full Jacobians of the failing pair, for the message of a fast-mode failure (as torch's)."""
    keep = _requires_grad_mask(func, inputs)
    numerical = [n for n, k in zip(_numerical_jacobians(func, inputs, eps), keep) if k][output_idx][input_idx]
    if is_forward_ad:
        forward = _forward_jacobians(func, inputs, [input_idx], False)
        analytical = [f for f, k in zip(forward, keep) if k][output_idx][input_idx]
    else:
        o = _differentiable_outputs(func(*inputs))[output_idx]
        analytical = _analytical_jacobian_rows(inputs, o, [input_idx], _basis(o))[0][input_idx].T
    msg = (
        "\nThe above quantities relating the numerical and analytical jacobians are computed \n"
        "in fast mode. Below, we recompute numerical and analytical jacobians in slow mode:\n\n"
        f"Numerical:\n {numerical}\n"
        f"Analytical:\n{analytical}\n\n"
        f"The max per-element difference (slow mode) is: {np.abs(numerical - analytical).max()}.\n"
    )
    if np.allclose(analytical, numerical, rtol=rtol, atol=atol):
        msg += FAST_FAIL_SLOW_OK_MSG
    return msg


def _test_undefined_forward_mode(func, inputs):
    """A zero tangent and no tangent at all must give the same output tangents."""
    for j in _diff_indices(inputs):
        zero = _forward_jvps(func, inputs, j, np.zeros(inputs[j]._data.size, inputs[j].dtype))
        none = _forward_jvps(func, inputs, j, None)
        for i, (r1, r2) in enumerate(zip(zero, none)):
            if r1 is not None and r2 is not None and not np.allclose(r1, r2):
                raise GradcheckError(
                    f"Mismatch in tangent values for output with index: {i} when input: {inputs[j]} has an "
                    f"undefined tangent value.  Got: {r1} but expected: {r2}"
                )
    return True


def _test_batched_grad(inputs, output, output_idx):
    """Two VJPs in one batched sweep (``is_grads_batched``) against two separate ones."""
    from . import grad

    diff_inputs = [inputs[j] for j in _diff_indices(inputs)]
    rng = np.random.default_rng(1)
    cotangents = rng.standard_normal((2, *output.shape)).astype(output.dtype)

    def vjp(v):
        gs = grad(output, diff_inputs, wrap_array(v), retain_graph=True, allow_unused=True)
        return [np.zeros(x.shape) if g is None else np.asarray(g._data, np.float64) for g, x in zip(gs, diff_inputs)]

    expected = [np.stack(shards) for shards in zip(*[vjp(v) for v in cotangents])]
    try:
        result = grad(
            output, diff_inputs, wrap_array(cotangents), retain_graph=True, allow_unused=True, is_grads_batched=True
        )
    except RuntimeError as ex:
        raise GradcheckError(f"While computing batched gradients, got: {ex}\n\n{FAILED_BATCHED_GRAD_MSG}") from ex
    for input_idx, (res, exp) in enumerate(zip(result, expected)):
        res = np.zeros_like(exp) if res is None else np.asarray(res._data, np.float64)
        if res.shape == exp.shape and np.allclose(res, exp):
            continue
        raise GradcheckError(
            f"For output {output_idx} and input {input_idx}:\n\n{FAILED_BATCHED_GRAD_MSG}\n\nGot:\n{res}\n\n"
            f"Expected:\n{exp}"
        )
    return True


def _jvps(func, inputs, input_idx, tangent, batched):
    """The tangents (float64 arrays) of ``func``'s tensor outputs for ``tangent`` on input ``input_idx`` alone."""
    from . import forward_ad as fwAD

    with fwAD.dual_level():
        dual = fwAD.make_dual(inputs[input_idx].detach(), tangent, is_batched=batched)
        args = [dual if k == input_idx else (x.detach() if isinstance(x, Tensor) else x) for k, x in enumerate(inputs)]
        res = []
        for out in _as_tuple(func(*args)):
            if isinstance(out, Tensor):
                primal, tangent_out = fwAD.unpack_dual(out)
                shape = (len(tangent), *primal.shape) if batched else primal.shape
                res.append(np.zeros(shape) if tangent_out is None else np.asarray(tangent_out._data, np.float64))
        return res


def _test_batched_grad_forward_ad(func, inputs):
    """Per input that requires grad: two JVPs in one forward pass with batched tangents against two passes
    (torch's vmap over jvp), the other inputs detached."""
    rng = np.random.default_rng(2)
    for input_idx, current in enumerate(inputs):
        if not (isinstance(current, Tensor) and current.requires_grad):
            continue
        tangents = rng.standard_normal((2, *current.shape)).astype(current.dtype)
        looped = [_jvps(func, inputs, input_idx, wrap_array(t), False) for t in tangents]
        expected = [np.stack(shards) for shards in zip(*looped)]
        try:
            result = _jvps(func, inputs, input_idx, wrap_array(tangents), True)
        except RuntimeError as ex:
            raise GradcheckError(
                f"While computing batched gradients, got: {ex}\n\n{FAILED_BATCHED_GRAD_MSG_FWD_AD}"
            ) from ex
        for output_idx, (res, exp) in enumerate(zip(result, expected)):
            if res.shape == exp.shape and np.allclose(res, exp):
                continue
            raise GradcheckError(
                f"For output {output_idx} and input {input_idx}:\n\n{FAILED_BATCHED_GRAD_MSG_FWD_AD}\n\nGot:\n{res}"
                f"\n\nExpected:\n{exp}"
            )
    return True


def _test_backward_mul_by_grad_output(outputs, inputs, masked):
    from . import grad

    diff_inputs = [inputs[j] for j in _diff_indices(inputs)]
    zeros = [wrap_array(np.zeros(o.shape, o.dtype)) for o in outputs]
    grads = grad(list(outputs), diff_inputs, zeros, allow_unused=True)
    for gi, di in zip(grads, diff_inputs):
        if gi is None:
            continue
        data = np.asarray(gi._data)
        if masked:
            if not np.allclose(data, 0.0):
                raise GradcheckError("backward not multiplied by grad_output")
        elif not np.all(data == 0):
            raise GradcheckError("backward not multiplied by grad_output")
        if gi.dtype != di.dtype:
            raise GradcheckError("grad is incorrect type")
        if gi.shape != di.shape:
            raise GradcheckError("grad is incorrect size")
    return True


def _warn_bc_breaking():
    warnings.warn(
        "Backwards compatibility: New undefined gradient support checking feature is enabled by default, but it "
        "may break existing callers of this function. If this is true for you, you can call this function with "
        '"check_undefined_grad=False" to disable the feature',
        UserWarning,
        stacklevel=5,
    )


def _test_undefined_backward_mode(func, inputs):
    """Each output's gradient left undefined in turn (``ad`` has no undefined-gradient tensor: the output is left
    out of the ``grad`` call, the others get zeros): the input grads must be None or zero, and nothing raises."""
    from . import grad

    diff_inputs = [inputs[j] for j in _diff_indices(inputs)]
    outputs = _differentiable_outputs(func(*inputs))
    if len(outputs) < 2:
        return True  # with every output undefined there is nothing to call backward on
    for undefined in range(len(outputs)):
        outputs = _differentiable_outputs(func(*inputs))
        kept = [o for k, o in enumerate(outputs) if k != undefined]
        try:
            grads = grad(kept, diff_inputs, [wrap_array(np.zeros(o.shape, o.dtype)) for o in kept], allow_unused=True)
        except RuntimeError as e:
            _warn_bc_breaking()
            raise GradcheckError(
                'Expected backward function to handle undefined output grads. Please look at "Notes about '
                'undefined output gradients" in "tools/autograd/derivatives.yaml"'
            ) from e
        for gi in grads:
            if gi is not None and not np.all(np.asarray(gi._data) == 0):
                _warn_bc_breaking()
                raise GradcheckError(
                    "Expected all input grads to be undefined or zero when all output grads are undefined or zero. "
                    'Please look at "Notes about undefined output gradients" in "tools/autograd/derivatives.yaml"'
                )
    return True


def _gradcheck_helper(
    func,
    inputs,
    eps,
    atol,
    rtol,
    nondet_tol,
    check_undefined_grad,
    check_grad_dtypes,
    check_batched_grad,
    check_batched_forward_grad,
    check_forward_ad,
    check_backward_ad,
    fast_mode,
    masked,
):
    inputs = _as_tuple(inputs)
    _check_inputs(inputs)
    outputs = _differentiable_outputs(func(*inputs))
    check = _fast_gradcheck if fast_mode else _slow_gradcheck
    if check_backward_ad:
        check(func, inputs, outputs, eps, rtol, atol, check_grad_dtypes, nondet_tol, False)
    if check_forward_ad:
        check(func, inputs, outputs, eps, rtol, atol, check_grad_dtypes, nondet_tol, True)
        if check_undefined_grad:
            _test_undefined_forward_mode(func, inputs)
    if check_batched_forward_grad:
        _test_batched_grad_forward_ad(func, inputs)
    if not check_backward_ad:
        return True
    if check_batched_grad:
        for i, o in enumerate(outputs):
            _test_batched_grad(inputs, o, i)
    if outputs:
        _test_backward_mul_by_grad_output(outputs, inputs, masked)
    if check_undefined_grad:
        _test_undefined_backward_mode(func, inputs)
    return True


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
        nondet_tol: how far two backward passes with the same input may differ ("Backward is not reentrant").
        check_undefined_grad: zero or undefined grad_outputs (and zero tangents) must give zero gradients.
        check_grad_dtypes: a gradient whose dtype differs from its input's is an error.
        check_batched_grad: ``grad(..., is_grads_batched=True)`` must agree with separate VJPs.
        check_batched_forward_grad: a batch of tangents for one input (``make_dual(..., is_batched=True)``, one
            forward pass) must give the same JVPs as separate forward passes; needs ``check_forward_ad``.
        check_forward_ad: compare forward-mode JVPs with the numerical Jacobian.
        check_backward_ad: compare reverse-mode VJPs (default); False skips every check that needs backward.
        fast_mode: compare ``v^T J u`` for random ``u``, ``v`` instead of whole Jacobians.
        masked: only matters for sparse tensors, which ``ad`` does not have; with True, "backward not
            multiplied by grad_output" tolerates rounding (``allclose`` to zero), as torch's.

    Returns:
        True if every check passes (False on failure when ``raise_exception=False``).

    Raises:
        GradcheckError (a RuntimeError): a check failed, with torch's message.
        ValueError: no input requires grad. RuntimeError: an input has a stride-0 dimension.
        AssertionError: contradictory flags, or outputs whose shape or dtype change under perturbation.

    Example:
        >>> x = ad.tensor([0.3, 0.7], requires_grad=True)
        >>> ad.autograd.gradcheck(lambda x: (x.sin() * x).sum(), (x,))
        True
    """
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be True")
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires check_forward_ad to be True")
    args = (
        func,
        inputs,
        eps,
        atol,
        rtol,
        nondet_tol,
        check_undefined_grad,
        check_grad_dtypes,
        check_batched_grad,
        check_batched_forward_grad,
        check_forward_ad,
        check_backward_ad,
        fast_mode,
        masked,
    )
    if not raise_exception:
        try:
            return _gradcheck_helper(*args)
        except GradcheckError:
            return False
    return _gradcheck_helper(*args)


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

    ``grad_outputs`` (the ``v``) are random float64 tensors in [-1, 1) requiring grad when not given, as torch
    (non-contiguous with ``gen_non_contig_grad_outputs``). ``check_rev_over_rev`` checks the VJP's reverse-mode
    derivative, ``check_fwd_over_rev`` its forward-mode derivative (forward over reverse); the other flags are
    passed to ``gradcheck``.

    Example:
        >>> x = ad.tensor([0.3, 0.7], requires_grad=True)
        >>> ad.autograd.gradgradcheck(lambda x: x.sin() * x, (x,))
        True
    """
    from . import grad

    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev to be True")
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_undefined_grad=True requires check_rev_over_rev to be True")
    if check_batched_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_batched_grad=True requires check_rev_over_rev to be True")
    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        outs = _differentiable_outputs(func(*inputs))
        made = []
        for o in outs:
            dtype = o.dtype if np.dtype(o.dtype).kind == "f" else np.float64
            if gen_non_contig_grad_outputs:
                # every other element of a twice-as-long last axis: a strided, non-contiguous array
                wide = rng.uniform(-1.0, 1.0, size=(*o.shape[:-1], 2 * o.shape[-1]) if o.shape else (2,))
                data = wide[..., ::2] if o.shape else wide[0:1].reshape(())
            else:
                data = rng.uniform(-1.0, 1.0, size=o.shape)
            made.append(wrap_array(data.astype(dtype, copy=False), requires_grad=True))
        grad_outputs = tuple(made)
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_out = len(grad_outputs)
    diff_input_idx = {k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad}
    diff_grad_output_idx = {k for k, t in enumerate(grad_outputs) if isinstance(t, Tensor) and t.requires_grad}

    def new_func(*args):
        # restore requires_grad: forward-mode gradcheck hands in detached (dual) inputs
        xs = tuple(
            x.requires_grad_() if k in diff_input_idx and not x.requires_grad else x
            for k, x in enumerate(args[:-n_out])
        )
        out = _differentiable_outputs(func(*xs))
        vs = tuple(
            v.requires_grad_() if k in diff_grad_output_idx and not v.requires_grad else v
            for k, v in enumerate(args[-n_out:])
        )
        diff_xs = [x for k, x in enumerate(xs) if k in diff_input_idx]
        grads = grad(list(out), diff_xs, list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        new_func,
        inputs + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        check_undefined_grad=check_undefined_grad,
        check_grad_dtypes=check_grad_dtypes,
        check_batched_grad=check_batched_grad,
        fast_mode=fast_mode,
        check_forward_ad=check_fwd_over_rev,
        check_backward_ad=check_rev_over_rev,
        masked=masked,
    )
