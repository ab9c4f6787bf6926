"""Autograd state on a tensor: is_leaf, requires_grad, detach, grad_fn, retain_grad, the .grad setter, hooks.

Each assertion was checked against torch 2.13 with ``ad`` aliased to ``torch`` (default dtype float64, which
is ``ad``'s default by design). Node names (``MulBackward0`` ...) are torch's. Values are read through
``t.detach().numpy()`` so the same assertions hold for torch, where ``numpy()`` refuses tensors requiring
grad.

Where to start: ``test_is_leaf``; hooks are at the end.
"""

import warnings

import numpy as np
import pytest

import ad


def _np(t):
    return t.detach().numpy()


def _leaf(*values):
    return ad.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def _const(*values):
    return ad.tensor(np.array(values, dtype=np.float64))


# --- is_leaf and requires_grad ------------------------------------------------------------------------------


def test_is_leaf():
    x = _leaf(1.0, 2.0)
    c = _const(1.0, 2.0)
    assert x.is_leaf
    assert c.is_leaf
    assert not (x * 2.0).is_leaf
    assert (c * 2.0).is_leaf  # results of ops on constants are leaves
    assert x.detach().is_leaf
    with ad.no_grad():
        assert (x * 2.0).is_leaf


def test_requires_grad_propagates_from_any_input():
    x = _leaf(1.0, 2.0)
    c = _const(3.0, 4.0)
    assert x.requires_grad
    assert not c.requires_grad
    assert (x * c).requires_grad
    assert (c * x).requires_grad
    assert (c + x).sum().requires_grad
    assert not (c * c).requires_grad
    assert not c.sin().requires_grad


def test_tensor_constructor_requires_grad_default_false():
    assert ad.tensor(np.array([1.0])).requires_grad is False
    assert ad.tensor(np.array([1.0]), requires_grad=True).requires_grad is True


def test_requires_grad_underscore_returns_self_and_sets_flag():
    t = _const(1.0, 2.0)
    out = t.requires_grad_()
    assert out is t
    assert t.requires_grad
    assert t.is_leaf
    (t * t).sum().backward()
    np.testing.assert_allclose(_np(t.grad), [2.0, 4.0])
    t.requires_grad_(False)
    assert t.requires_grad is False


def test_requires_grad_underscore_on_float32():
    t = ad.tensor(np.array([1.0], dtype=np.float32)).requires_grad_()
    assert t.requires_grad


def test_requires_grad_underscore_on_integer_raises():
    t = ad.tensor(np.array([1, 2]))
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        t.requires_grad_()
    assert t.requires_grad is False
    assert t.requires_grad_(False).requires_grad is False


def test_integer_tensor_constructor_with_requires_grad_raises():
    # torch's wording here is "Only Tensors of floating point and complex dtype can require gradients".
    with pytest.raises(RuntimeError, match="floating point .*can require gradients"):
        ad.tensor(np.array([1, 2]), requires_grad=True)


def test_requires_grad_false_on_nonleaf_raises():
    y = _leaf(1.0, 2.0) * 2.0
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    assert y.requires_grad


# --- detach -------------------------------------------------------------------------------------------------


def test_detach_has_no_grad_and_shares_data():
    x = _leaf(1.0, 2.0)
    d = x.detach()
    assert d.requires_grad is False
    assert d.is_leaf
    assert d.grad_fn is None
    assert x.requires_grad
    d.add_(1.0)
    np.testing.assert_allclose(_np(x), [2.0, 3.0])


def test_detach_stops_gradient():
    # y = x^2 + stop(x) x ; dy/dx = 2x + x = 3x
    x = _leaf(1.0, 2.0)
    (x * x + x.detach() * x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 6.0])


def test_detached_nonleaf_can_start_a_new_graph():
    x = _leaf(1.0, 2.0)
    d = (x * 3.0).detach().requires_grad_()
    assert d.is_leaf
    (d * d).sum().backward()
    np.testing.assert_allclose(_np(d.grad), [6.0, 12.0])
    assert x.grad is None


def test_detach_underscore_on_nonleaf():
    x = _leaf(1.0, 2.0)
    y = x * 2.0
    out = y.detach_()
    assert out is y
    assert y.requires_grad is False
    assert y.is_leaf
    assert y.grad_fn is None
    np.testing.assert_allclose(_np(y), [2.0, 4.0])


def test_detach_underscore_on_leaf():
    x = _leaf(1.0, 2.0)
    x.detach_()
    assert x.requires_grad is False
    assert x.is_leaf


# --- grad_fn ------------------------------------------------------------------------------------------------


def test_leaves_have_no_grad_fn():
    assert _leaf(1.0).grad_fn is None
    assert _const(1.0).grad_fn is None
    assert (_const(1.0) * 2.0).grad_fn is None


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda x, w: x * w, "MulBackward0"),
        (lambda x, w: x + w, "AddBackward0"),
        (lambda x, w: x - w, "SubBackward0"),
        (lambda x, w: x / w, "DivBackward0"),
        (lambda x, w: -x, "NegBackward0"),
        (lambda x, w: x**2, "PowBackward0"),
        (lambda x, w: x.sin(), "SinBackward0"),
        (lambda x, w: x.cos(), "CosBackward0"),
        (lambda x, w: x.exp(), "ExpBackward0"),
        (lambda x, w: x.log(), "LogBackward0"),
        (lambda x, w: x.sqrt(), "SqrtBackward0"),
        (lambda x, w: x.tanh(), "TanhBackward0"),
        (lambda x, w: x.sigmoid(), "SigmoidBackward0"),
        (lambda x, w: x.abs(), "AbsBackward0"),
        (lambda x, w: x.sum(), "SumBackward0"),
        (lambda x, w: x.mean(), "MeanBackward0"),
        (lambda x, w: x.reshape(2, 2).sum(dim=0), "SumBackward1"),
        (lambda x, w: x.reshape(2, 2) @ w.reshape(2, 2), "MmBackward0"),
    ],
)
def test_grad_fn_names(build, name):
    x = _leaf(1.0, 2.0, 3.0, 4.0)
    w = _leaf(0.5, 1.5, 2.5, 3.5)
    assert build(x, w).grad_fn.name() == name


def test_next_functions_point_to_accumulate_grad_for_leaves_and_none_for_constants():
    x = _leaf(1.0, 2.0)
    c = _const(3.0, 4.0)
    nf = (x * c).grad_fn.next_functions
    assert isinstance(nf, tuple)
    assert len(nf) == 2
    (acc, acc_index), (const_fn, _) = nf
    assert "AccumulateGrad" in acc.name()
    assert acc.variable is x
    assert acc_index == 0
    assert const_fn is None
    (const_fn, _), (acc, _) = (c * x).grad_fn.next_functions
    assert const_fn is None
    assert acc.variable is x


def test_next_functions_chain():
    x = _leaf(1.0, 2.0)
    y = (x.sin() * x.exp()).sum()
    ((mul, _),) = y.grad_fn.next_functions
    assert mul.name() == "MulBackward0"
    names = [fn.name() for fn, _ in mul.next_functions]
    assert names == ["SinBackward0", "ExpBackward0"]
    for fn, _ in mul.next_functions:
        ((acc, _),) = fn.next_functions
        assert acc.variable is x


def test_next_functions_of_same_leaf_twice():
    x = _leaf(1.0, 2.0)
    nf = (x * x).grad_fn.next_functions
    assert len(nf) == 2
    assert nf[0][0].variable is x
    assert nf[1][0].variable is x


# --- retain_grad and .grad of non-leaves --------------------------------------------------------------------


def test_nonleaf_grad_is_none_with_warning():
    x = _leaf(1.0, 2.0)
    y = x * 2.0
    (y * y).sum().backward()
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert y.grad is None
    np.testing.assert_allclose(_np(x.grad), [8.0, 16.0])


def test_retain_grad_populates_nonleaf_grad():
    x = _leaf(1.0, 2.0)
    y = x * 2.0
    assert y.retains_grad is False
    assert y.retain_grad() is None
    y.retain_grad()  # idempotent
    assert y.retains_grad is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert y.grad is None  # no warning once retained, and None until a backward
    (y * y).sum().backward()
    np.testing.assert_allclose(_np(y.grad), [4.0, 8.0])
    assert y.grad.requires_grad is False
    np.testing.assert_allclose(_np(x.grad), [8.0, 16.0])


def test_retain_grad_accumulates():
    x = _leaf(1.0, 2.0)
    y = x * x
    y.retain_grad()
    z = (y * y).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(_np(y.grad), [4.0, 16.0])


def test_retain_grad_on_leaf_is_a_no_op():
    x = _leaf(1.0, 2.0)
    x.retain_grad()
    assert x.retains_grad is False
    (x * x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])


def test_retain_grad_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        _const(1.0).retain_grad()


# --- the .grad setter ---------------------------------------------------------------------------------------


def test_grad_setter_none_resets():
    x = _leaf(1.0, 2.0)
    (x * x).sum().backward()
    x.grad = None
    assert x.grad is None


def test_grad_setter_then_backward_accumulates_onto_it():
    x = _leaf(1.0, 2.0)
    x.grad = _const(1.0, 1.0)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [4.0, 4.0])


def test_grad_setter_on_tensor_without_grad():
    c = _const(1.0, 2.0)
    c.grad = _const(5.0, 6.0)
    np.testing.assert_allclose(_np(c.grad), [5.0, 6.0])


@pytest.mark.parametrize("shape", [(3,), (2, 1), ()])
def test_grad_setter_wrong_shape_raises(shape):
    x = _leaf(1.0, 2.0)
    x.grad = _const(7.0, 8.0)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient of size"):
        x.grad = ad.tensor(np.ones(shape))
    np.testing.assert_allclose(_np(x.grad), [7.0, 8.0])


def test_grad_setter_non_tensor_raises_type_error():
    x = _leaf(1.0, 2.0)
    with pytest.raises(TypeError, match="expected to be a Tensor or None"):
        x.grad = 3.0


# --- hooks --------------------------------------------------------------------------------------------------


def test_leaf_hook_return_value_replaces_gradient():
    x = _leaf(1.0, 2.0)
    x.register_hook(lambda g: g * 10.0)
    (x * x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [20.0, 40.0])


def test_hook_returning_none_keeps_gradient_and_sees_it_before_accumulation():
    x = _leaf(1.0, 2.0)
    x.grad = _const(100.0, 100.0)
    seen = []
    x.register_hook(lambda g: seen.append(_np(g).copy()))
    (x * x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [2.0, 4.0])
    np.testing.assert_allclose(_np(x.grad), [102.0, 104.0])


def test_hook_runs_once_with_the_summed_gradient():
    x = _leaf(1.0, 2.0)
    seen = []
    x.register_hook(lambda g: seen.append(_np(g).copy()))
    (x * x + x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 5.0])


def test_handle_remove_stops_hook():
    x = _leaf(1.0, 2.0)
    handle = x.register_hook(lambda g: g * 10.0)
    handle.remove()
    handle.remove()  # removing twice is harmless
    (x * x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])


def test_handle_remove_between_backwards():
    x = _leaf(1.0, 2.0)
    handle = x.register_hook(lambda g: g * 10.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(_np(x.grad), [20.0, 40.0])
    handle.remove()
    y.backward()
    np.testing.assert_allclose(_np(x.grad), [22.0, 44.0])


def test_hooks_chain_in_registration_order():
    x = _leaf(1.0, 2.0)
    x.register_hook(lambda g: g + 1.0)
    x.register_hook(lambda g: g * 10.0)
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [20.0, 20.0])


def test_nonleaf_hook_changes_gradient_flowing_upstream():
    x = _leaf(1.0, 2.0)
    y = x * x
    y.register_hook(lambda g: g * 10.0)
    (y * 3.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [60.0, 120.0])


def test_nonleaf_hook_runs_once_with_the_summed_gradient():
    x = _leaf(1.0, 2.0)
    y = x * 3.0
    seen = []
    y.register_hook(lambda g: seen.append(_np(g).copy()))
    (y * y + y).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [7.0, 13.0])


def test_nonleaf_hook_and_retain_grad_in_either_order():
    # retain_grad stores the gradient after the tensor's hooks, whichever was registered first.
    for retain_first in (True, False):
        x = _leaf(1.0, 2.0)
        y = x * x
        if retain_first:
            y.retain_grad()
        y.register_hook(lambda g: g * 10.0)
        if not retain_first:
            y.retain_grad()
        (y * 3.0).sum().backward()
        np.testing.assert_allclose(_np(y.grad), [30.0, 30.0])
        np.testing.assert_allclose(_np(x.grad), [60.0, 120.0])


def test_leaf_hook_applies_to_autograd_grad_result():
    x = _leaf(1.0, 2.0)
    x.register_hook(lambda g: g * 10.0)
    (g,) = ad.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(_np(g), [20.0, 40.0])
    assert x.grad is None


def test_nonleaf_hook_applies_to_autograd_grad_of_upstream_input():
    x = _leaf(1.0, 2.0)
    y = x * x
    y.register_hook(lambda g: g * 10.0)
    (g,) = ad.autograd.grad((y * 3.0).sum(), x)
    np.testing.assert_allclose(_np(g), [60.0, 120.0])


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require"):
        _const(1.0).register_hook(lambda g: g)
