"""``ad.autograd.gradcheck`` and ``gradgradcheck``: they pass on correct gradients and catch wrong ones.

Each expectation was checked against torch 2.13 (``torch.autograd.gradcheck`` with the default dtype float64):
the same functions pass, the same wrong gradients fail with ``GradcheckError`` (a ``RuntimeError``), a
float32 input warns, and no input requiring grad is a ``ValueError``.

Wrong gradients are made in two ways: a hook on an intermediate tensor that doubles its gradient (the
analytical Jacobian is then twice the numerical one), and a custom ``ad.autograd.Function`` whose backward is
wrong, or right to first order but not differentiable (so only ``gradgradcheck`` notices).

Where to start: ``test_passes_on_correct_functions``.
"""

import sys
import warnings

import numpy as np
import pytest

import ad
from ad.autograd import GradcheckError, gradcheck, gradgradcheck


def _leaf(*values):
    return ad.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def _matrix(rows, cols, seed):
    return ad.tensor(np.random.default_rng(seed).uniform(0.5, 1.5, size=(rows, cols)), requires_grad=True)


def _doubled(y):
    """``y`` with a hook that doubles its gradient: every gradient through it is twice the true one."""
    y.register_hook(lambda g: g * 2.0)
    return y


class _Square(ad.autograd.Function):
    """x ** 2 with a correct first derivative; ``second_order_ok=False`` detaches it (wrong second order)."""

    second_order_ok = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2.0 * (x if _Square.second_order_ok else x.detach())


class _WrongCube(ad.autograd.Function):
    """x ** 3 with the derivative of x ** 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2.0 * x


# --- correct gradients pass ---------------------------------------------------------------------------------

CORRECT = {
    "elementwise": (lambda x: x.sin() * x.exp() + x.tanh() / (x * x + 1.0), lambda: (_leaf(0.3, -0.7, 1.1),)),
    "two inputs, broadcasting": (
        lambda x, y: x * y - y.sigmoid() + (x / y).log(),
        lambda: (_leaf(0.5, 1.5), _matrix(3, 2, 0)),
    ),
    "matmul and reductions": (
        lambda a, b: (a @ b).sum(0) + (a @ b).mean(1, keepdim=True).T.reshape(-1)[:1],
        lambda: (_matrix(2, 3, 1), _matrix(3, 2, 2)),
    ),
    "multiple outputs": (
        lambda x, y: (x * y, (x.sin() @ y).reshape(1), ad.cat([x, y]).amax()),
        lambda: (_leaf(0.2, 0.9, -0.4), _leaf(1.0, -0.5, 0.3)),
    ),
    "indexing and views": (
        lambda x: x[[0, 2, 2]].unsqueeze(1).expand(3, 2).permute(1, 0) * x[None, ::2].sum(),
        lambda: (_leaf(0.5, -1.0, 2.0),),
    ),
    "composites": (
        lambda x: (ad.softmax(x, 0) * ad.logsumexp(x, 0) + x.var() + x.std()).sum(),
        lambda: (_leaf(0.1, 0.8, -0.6, 1.3),),
    ),
    "non-tensor argument": (lambda x, k: x**k, lambda: (_leaf(0.5, 1.5), 3.0)),
    "input without grad": (lambda x, w: (x * w).sum(), lambda: (_leaf(0.5, 1.5), ad.tensor([2.0, 3.0]))),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_passes_on_correct_functions(name):
    func, make_inputs = CORRECT[name]
    assert gradcheck(func, make_inputs()) is True


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_gradgradcheck_passes_on_correct_functions(name):
    func, make_inputs = CORRECT[name]
    assert gradgradcheck(func, make_inputs()) is True


def test_inputs_may_be_a_single_tensor_or_a_list():
    assert gradcheck(lambda x: x.sin(), _leaf(0.3, 0.4)) is True
    assert gradcheck(lambda x, y: x * y, [_leaf(0.3), _leaf(0.4)]) is True


def test_gradgradcheck_with_given_grad_outputs():
    x = _leaf(0.3, -0.8)
    v = ad.tensor([1.0, -2.0], requires_grad=True)
    assert gradgradcheck(lambda x: x**3, (x,), (v,)) is True


def test_custom_function_with_correct_backward():
    x = _leaf(0.3, -0.8, 1.2)
    assert gradcheck(_Square.apply, (x,)) is True
    assert gradgradcheck(_Square.apply, (x,)) is True


def test_inputs_are_left_as_they_were():
    x = _leaf(0.3, -0.8)
    before = x.detach().numpy().copy()
    gradcheck(lambda x: x.exp(), (x,))
    np.testing.assert_array_equal(x.detach().numpy(), before)
    assert x.grad is None


# --- wrong gradients fail -----------------------------------------------------------------------------------


def test_error_class_is_a_runtime_error():
    assert issubclass(GradcheckError, RuntimeError)


def test_doubled_gradient_of_an_intermediate_fails():
    x = _leaf(0.3, 0.7)
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(lambda x: _doubled(x.sin()).sum(), (x,))


def test_wrong_gradient_returns_false_without_raise_exception():
    x = _leaf(0.3, 0.7)
    assert gradcheck(lambda x: _doubled(x.sin()).sum(), (x,), raise_exception=False) is False


def test_wrong_gradient_names_the_output_and_the_input():
    x = _leaf(0.3, 0.7)
    y = _leaf(1.5, -0.5)

    def func(x, y):
        return x * y, _doubled(y.exp()) + x

    with pytest.raises(GradcheckError, match="for output 1 with respect to input 1"):
        gradcheck(func, (x, y))


def test_hook_on_one_path_of_a_fan_out_fails():
    x = _leaf(0.3, 0.7, -1.2)
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: x.sin() * _doubled(x * 1.0), (x,))


def test_wrong_custom_backward_fails():
    x = _leaf(0.3, 0.7)
    with pytest.raises(GradcheckError):
        gradcheck(_WrongCube.apply, (x,))
    assert gradcheck(_WrongCube.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = _leaf(0.3, 0.7)
    _Square.second_order_ok = False
    try:
        assert gradcheck(_Square.apply, (x,)) is True  # the first derivative is right
        with pytest.raises(GradcheckError):
            gradgradcheck(_Square.apply, (x,))
        assert gradgradcheck(_Square.apply, (x,), raise_exception=False) is False
    finally:
        _Square.second_order_ok = True


def test_gradgradcheck_checks_second_order_only():
    # as torch: a wrong but differentiable first derivative is consistent with its own derivative
    x = _leaf(0.3, 0.7)
    assert gradgradcheck(_WrongCube.apply, (x,)) is True


def test_tolerances_are_used():
    x = _leaf(0.3, 0.7)
    # a coarse step: central differences of sin are off by about eps**2 / 6
    assert gradcheck(lambda x: x.sin(), (x,), eps=1e-1, atol=1e-5, rtol=1e-3, raise_exception=False) is False
    assert gradcheck(lambda x: x.sin(), (x,), eps=1e-1, atol=1e-2, rtol=1e-2) is True


# --- argument errors and warnings ---------------------------------------------------------------------------


def test_no_input_requires_grad_is_an_error():
    with pytest.raises(ValueError, match="gradcheck expects at least one input tensor to require gradient"):
        gradcheck(lambda x: x * 2.0, (ad.tensor([1.0, 2.0]),))
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        gradcheck(lambda x, k: x * k, (ad.tensor([1.0]), 2.0))


def test_float32_input_warns():
    x = ad.tensor(np.array([0.3, 0.7], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double precision"):
        gradcheck(lambda x: x * 2.0, (x,), atol=1e-2, rtol=1e-2)


def test_float64_inputs_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(lambda x: x * 2.0, (_leaf(0.3, 0.7),)) is True


def test_float32_warning_names_the_input():
    x = _leaf(0.3)
    y = ad.tensor(np.array([0.5], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="Input #1 requires gradient"):
        gradcheck(lambda x, y: x * y.double(), (x, y), atol=1e-2, rtol=1e-2)


# --- behaviours where an earlier version differed from torch (regression tests) ----------------------------


def test_gradgradcheck_of_a_function_that_registers_a_hook():
    # the doubled gradient is consistent in the first derivative, so its derivative checks out (as torch)
    assert gradgradcheck(lambda x: _doubled(x.sin()), (_leaf(0.3, 0.7),)) is True


def test_outputs_that_do_not_require_grad_are_not_checked():
    assert gradcheck(lambda x: (x.sin(), x.detach() * 2.0), (_leaf(0.3, 0.7),)) is True


def test_no_input_requires_grad_message_is_torchs():
    with pytest.raises(ValueError, match="but none of them have requires_grad=True"):
        gradcheck(lambda x: x * 2.0, (ad.tensor([1.0, 2.0]),))


# --- every flag and check of torch's gradcheck (issue 9 item 6, issue 16 item 5) ---------------------------
#
# Each scenario is written once for both libraries (``lib`` is ``ad`` or ``torch``), so that the exception
# class and message checked for ``ad`` are, when torch is installed, also checked to be torch's.


def _function_class(lib, backward):
    """A custom Function computing ``x ** 2`` with the given ``backward(ctx, g, x)``."""

    class Fn(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return backward(ctx, g, x)

    return Fn


def _nondeterministic(lib):
    calls = []

    def backward(ctx, g, x):
        calls.append(1)
        return g * (2.0 * x + 1e-9 * len(calls))  # drifts by 1e-9 per call: within tolerance, not reentrant

    return _function_class(lib, backward).apply


def _ignores_grad_output(lib):
    """``sum(x ** 2)`` whose backward ignores its cotangent: right for the cotangent 1 (the scalar output's only
    Jacobian row), wrong for a zero cotangent."""

    class SumSquares(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x * x).sum()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2.0 * x

    return SumSquares.apply


def _grad_in_float32(lib):
    return _function_class(lib, lambda ctx, g, x: (g * 2.0 * x).to(lib.float32)).apply


def _leaf_of(lib, *values):
    return lib.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def _stride0_leaf(lib):
    data = np.broadcast_to(np.array([0.5]), (3,))
    t = lib.from_numpy(data) if lib is ad else lib.from_numpy(np.array([0.5])).expand(3)
    return t.requires_grad_() if lib is ad else t.detach().requires_grad_()


def _shape_changes(x):
    return x[: 1 + int(float(x.detach()[0]) > 0.5)] * 1.0


def _dtype_changes(lib):
    return lambda x: (x.to(lib.float32) if float(x.detach()[0]) > 0.5 else x) * 1.0


# name -> (lib -> (func, inputs, kwargs), exception class, message fragment)
FAILING = {
    "not reentrant": (
        lambda lib: (lambda x: _nondeterministic(lib)(x), (_leaf_of(lib, 0.3, 0.7),), {}),
        GradcheckError,
        "Backward is not reentrant, i.e., running backward with same input and grad_output multiple times",
    ),
    "backward not multiplied by grad_output": (
        lambda lib: (lambda x: _ignores_grad_output(lib)(x), (_leaf_of(lib, 0.3, 0.7),), {}),
        GradcheckError,
        "backward not multiplied by grad_output",
    ),
    "non-differentiable output with a numerical gradient": (
        lambda lib: (lambda x: x.detach() * 2.0, (_leaf_of(lib, 0.3, 0.7),), {}),
        GradcheckError,
        "Numerical gradient for function expected to be zero",
    ),
    "non-differentiable output, fast mode": (
        lambda lib: (lambda x: x.detach() * 2.0, (_leaf_of(lib, 0.3, 0.7),), {"fast_mode": True}),
        GradcheckError,
        "Numerical gradient for function expected to be zero",
    ),
    "stride-0 input": (
        lambda lib: (lambda x: x * 2.0, (_stride0_leaf(lib),), {}),
        RuntimeError,
        "The 0th input has a dimension with stride 0. gradcheck only supports inputs that are non-overlapping",
    ),
    "shape depends on the values": (
        lambda lib: (_shape_changes, (_leaf_of(lib, 0.5, 0.2),), {}),
        AssertionError,
        "Expected `func` to return outputs with the same shape when inputs are perturbed on index (0,) by 1e-06",
    ),
    "dtype depends on the values": (
        lambda lib: (_dtype_changes(lib), (_leaf_of(lib, 0.5, 0.2),), {}),
        AssertionError,
        "Expected `func` to return outputs with the same dtype when inputs are perturbed on index (0,) by 1e-06",
    ),
    "neither forward nor backward": (
        lambda lib: (lambda x: x * 2.0, (_leaf_of(lib, 0.3),), {"check_backward_ad": False}),
        AssertionError,
        "Expected at least one of check_forward_ad or check_backward_ad to be True",
    ),
    "batched grad without backward": (
        lambda lib: (
            lambda x: x * 2.0,
            (_leaf_of(lib, 0.3),),
            {"check_backward_ad": False, "check_forward_ad": True, "check_batched_grad": True},
        ),
        AssertionError,
        "Setting check_batched_grad=True requires check_backward_ad to be True",
    ),
    "batched forward grad without forward": (
        lambda lib: (lambda x: x * 2.0, (_leaf_of(lib, 0.3),), {"check_batched_forward_grad": True}),
        AssertionError,
        "Setting check_batched_forward_grad=True requires check_forward_ad to be True",
    ),
    "doubled gradient, fast mode": (
        lambda lib: (lambda x: _doubled_any(x.sin()), (_leaf_of(lib, 0.3, 0.7),), {"fast_mode": True}),
        GradcheckError,
        "Jacobian mismatch for output 0 with respect to input 0",
    ),
}


def _doubled_any(y):
    y.register_hook(lambda g: g * 2.0)
    return y


@pytest.mark.parametrize("name", sorted(FAILING))
def test_failing_check_raises_torchs_error(name):
    make, cls, message = FAILING[name]
    func, inputs, kwargs = make(ad)
    with pytest.raises(cls) as info:
        gradcheck(func, inputs, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("name", sorted(FAILING))
def test_failing_check_is_torchs(name):
    torch = pytest.importorskip("torch")
    make, cls, message = FAILING[name]
    func, inputs, kwargs = make(torch)
    expected = sys.modules["torch.autograd.gradcheck"].GradcheckError if cls is GradcheckError else cls
    with pytest.raises(expected) as info:
        torch.autograd.gradcheck(func, inputs, **kwargs)
    assert message in " ".join(str(info.value).split())


def test_raise_exception_false_returns_false_only_for_gradcheck_errors():
    make, _, _ = FAILING["backward not multiplied by grad_output"]
    func, inputs, _ = make(ad)
    assert gradcheck(func, inputs, raise_exception=False) is False
    with pytest.raises(AssertionError):
        gradcheck(func, inputs, raise_exception=False, check_backward_ad=False)


def test_nondet_tol_accepts_a_small_nondeterminism():
    assert gradcheck(lambda x: _nondeterministic(ad)(x), (_leaf(0.3, 0.7),), nondet_tol=1e-6) is True


def test_a_float32_grad_is_cast_to_the_input_dtype_as_torch():
    # the engine casts a custom backward's gradient to its input's dtype, so check_grad_dtypes has nothing to see
    assert gradcheck(lambda x: _grad_in_float32(ad)(x), (_leaf(0.3, 0.7),), check_grad_dtypes=True) is True


def test_a_float32_grad_is_cast_by_torch_too():
    torch = pytest.importorskip("torch")
    x = _leaf_of(torch, 0.3, 0.7)
    assert torch.autograd.gradcheck(lambda x: _grad_in_float32(torch)(x), (x,), check_grad_dtypes=True) is True


def test_wrong_gradient_under_check_undefined_grad_false_still_fails():
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradcheck(lambda x: _doubled(x.sin()), (_leaf(0.3, 0.7),), check_undefined_grad=False)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_every_flag_passes_on_correct_functions(name):
    func, make_inputs = CORRECT[name]
    assert gradcheck(
        func,
        make_inputs(),
        check_forward_ad=True,
        check_batched_grad=True,
        check_batched_forward_grad=True,
        check_grad_dtypes=True,
    )
    assert gradcheck(func, make_inputs(), fast_mode=True, check_forward_ad=True)
    assert gradcheck(func, make_inputs(), check_forward_ad=True, check_backward_ad=False, masked=True)


def test_fast_mode_failure_recomputes_the_slow_jacobians():
    with pytest.raises(GradcheckError, match="Below, we recompute numerical and analytical jacobians in slow mode"):
        gradcheck(lambda x: _doubled(x.sin()), (_leaf(0.3, 0.7),), fast_mode=True)


def test_forward_ad_catches_a_wrong_tangent():
    class WrongJvp(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("not called: only forward mode is checked")

        @staticmethod
        def jvp(ctx, t):
            return t * 3.0

    with pytest.raises(GradcheckError, match="Jacobian computed with forward mode mismatch for output 0"):
        gradcheck(WrongJvp.apply, (_leaf(0.3, 0.7),), check_forward_ad=True, check_backward_ad=False)
    with pytest.raises(GradcheckError, match="Jacobian computed with forward mode mismatch"):
        gradcheck(WrongJvp.apply, (_leaf(0.3, 0.7),), check_forward_ad=True, check_backward_ad=False, fast_mode=True)


def test_check_batched_forward_grad_catches_a_batch_that_comes_back_permuted(monkeypatch):
    from ad.autograd import forward_ad as fwAD

    x, w = _leaf(0.3, 0.7), _matrix(3, 2, seed=4)
    func = lambda x, w: (ad.tanh(w @ x), (w * w).sum(0))  # noqa: E731
    assert gradcheck(func, (x, w), check_forward_ad=True, check_batched_forward_grad=True)
    unpack = fwAD.unpack_dual

    def permuted(t, *args, **kwargs):  # a batched forward that hands back its JVPs in the wrong order
        primal, tangent = unpack(t, *args, **kwargs)
        if tangent is not None and tangent.ndim > primal.ndim:
            tangent = tangent.flip(0)
        return fwAD.UnpackedDualTensor(primal, tangent)

    monkeypatch.setattr(fwAD, "unpack_dual", permuted)
    with pytest.raises(GradcheckError, match="batched gradient computation with forward-mode AD"):
        gradcheck(func, (x, w), check_forward_ad=True, check_batched_forward_grad=True)


def test_two_outputs_with_undefined_grads_pass():
    assert gradcheck(lambda x: (x.sin(), x * x), (_leaf(0.3, 0.7),), check_undefined_grad=True) is True


def test_gradgradcheck_flag_errors_are_torchs():
    x = _leaf(0.3)
    with pytest.raises(AssertionError, match="Expected at least one of check_fwd_over_rev or check_rev_over_rev"):
        gradgradcheck(lambda x: x * x, (x,), check_rev_over_rev=False)
    with pytest.raises(AssertionError, match="Setting check_undefined_grad=True requires check_rev_over_rev"):
        gradgradcheck(lambda x: x * x, (x,), check_rev_over_rev=False, check_fwd_over_rev=True)
    with pytest.raises(AssertionError, match="Setting check_batched_grad=True requires check_rev_over_rev"):
        gradgradcheck(
            lambda x: x * x,
            (x,),
            check_rev_over_rev=False,
            check_fwd_over_rev=True,
            check_undefined_grad=False,
            check_batched_grad=True,
        )


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_gradgradcheck_forward_over_reverse_passes_on_correct_functions(name):
    func, make_inputs = CORRECT[name]
    assert gradgradcheck(func, make_inputs(), check_fwd_over_rev=True, gen_non_contig_grad_outputs=True)


class _SquareDetachedBackward(ad.autograd.Function):
    """x ** 2 with right first derivatives (backward and jvp) whose backward detaches x: its derivative, in
    reverse or forward mode, misses the 2 g term."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, g):
        return g * 2.0 * ctx.x.detach()

    @staticmethod
    def jvp(ctx, t):
        return 2.0 * ctx.x * t


def test_gradgradcheck_forward_over_reverse_catches_a_wrong_second_derivative():
    assert gradcheck(_SquareDetachedBackward.apply, (_leaf(0.3, 0.7),), check_forward_ad=True)
    with pytest.raises(GradcheckError, match="Jacobian computed with forward mode mismatch"):
        gradgradcheck(
            _SquareDetachedBackward.apply,
            (_leaf(0.3, 0.7),),
            check_fwd_over_rev=True,
            check_rev_over_rev=False,
            check_undefined_grad=False,
        )


def test_gradgradcheck_fast_mode_catches_a_wrong_second_derivative():
    _Square.second_order_ok = False
    try:
        assert gradgradcheck(_Square.apply, (_leaf(0.3, 0.7),), fast_mode=True, raise_exception=False) is False
    finally:
        _Square.second_order_ok = True


def test_gen_non_contig_grad_outputs_are_strided():
    seen = []

    def func(x):
        y = x * x
        y.register_hook(lambda g: seen.append(g.detach().numpy().flags.c_contiguous) or g)
        return y

    x = ad.tensor(np.array([[0.3, 0.7], [1.1, -0.4]]), requires_grad=True)
    assert gradgradcheck(func, (x,), gen_non_contig_grad_outputs=True)
    assert seen
