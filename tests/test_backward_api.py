"""Semantics of reverse mode through ``Tensor.backward`` and ``ad.autograd.backward``.

Each test states torch's behaviour (checked against torch 2.13 with ``ad`` aliased to ``torch`` and the
default dtype set to float64) and compares gradients with analytic values. By design in ``ad``: the default
float dtype is float64, tensors are built from numpy data, ``t.numpy()`` works and ``t.grad`` is an ``ad``
Tensor. Tests read values through ``t.detach().numpy()`` so that the same assertions hold for torch.

Where to start: ``test_scalar_backward_implicit_gradient``; then the error paths, then the graph shapes at the
end.
"""

import numpy as np
import pytest

import ad

FREED = "Trying to backward through the graph a second time"
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
# torch warns that backward(create_graph=True) makes a reference cycle (leaf <-> its grad); ad need not.
CYCLE_WARNING = "ignore:Using backward\\(\\) with create_graph=True:UserWarning"


def _np(t):
    return t.detach().numpy()


def _leaf(*values):
    return ad.tensor(np.array(values, dtype=np.float64), requires_grad=True)


# --- Tensor.backward: the gradient argument -----------------------------------------------------------------


def test_scalar_backward_implicit_gradient():
    x = _leaf(1.0, 2.0, 3.0)
    y = (x * x).sum()
    assert y.backward() is None
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0, 6.0])


def test_grad_is_tensor_with_leaf_shape_and_dtype():
    x = ad.tensor(np.ones((2, 3)), requires_grad=True)
    (x * 2.0).sum().backward()
    assert isinstance(x.grad, ad.Tensor)
    assert tuple(x.grad.shape) == (2, 3)
    assert x.grad.dtype == ad.float64
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_float32_leaf_gets_float32_grad():
    x = ad.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == ad.float32
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0], rtol=1e-6)


def test_scalar_backward_with_explicit_gradient_scales():
    x = _leaf(1.0, 2.0)
    (x * x).sum().backward(ad.tensor(3.0))
    np.testing.assert_allclose(_np(x.grad), [6.0, 12.0])


def test_nonscalar_backward_without_gradient_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2.0).backward()
    assert x.grad is None


def test_nonscalar_backward_with_gradient_is_vjp():
    x = _leaf(1.0, 2.0, 3.0)
    v = ad.tensor(np.array([1.0, 10.0, 100.0]))
    (x * x).backward(v)
    np.testing.assert_allclose(_np(x.grad), [2.0, 40.0, 600.0])


@pytest.mark.parametrize("shape", [(3,), (1, 2), (2, 1), ()])
def test_gradient_shape_mismatch_raises(shape):
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * x).backward(ad.tensor(np.ones(shape)))
    assert x.grad is None


def test_scalar_output_with_vector_gradient_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * x).sum().backward(ad.tensor(np.ones(2)))


def test_backward_on_tensor_without_grad_raises():
    c = ad.tensor(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match=NO_GRAD_FN):
        (c * c).sum().backward()


def test_backward_on_detached_tensor_raises():
    x = _leaf(1.0, 2.0)
    d = x.detach()
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        (d * 2.0).sum().backward()
    assert x.grad is None


def test_backward_on_result_computed_under_no_grad_raises():
    x = _leaf(1.0, 2.0)
    with ad.no_grad():
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        y.backward()


# --- accumulation -------------------------------------------------------------------------------------------


def test_grad_accumulates_across_backward_calls():
    x = _leaf(1.0, 2.0)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [5.0, 7.0])


def test_grad_reset_to_none_restarts_accumulation():
    x = _leaf(1.0, 2.0)
    (x * x).sum().backward()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 3.0])


def test_leaf_broadcast_gradient_is_reduced_to_leaf_shape():
    x = ad.tensor(np.array([[1.0], [2.0]]), requires_grad=True)
    b = ad.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * b).sum().backward()
    assert tuple(x.grad.shape) == (2, 1)
    assert tuple(b.grad.shape) == (3,)
    np.testing.assert_allclose(_np(x.grad), [[6.0], [6.0]])
    np.testing.assert_allclose(_np(b.grad), [3.0, 3.0, 3.0])


# --- retain_graph -------------------------------------------------------------------------------------------


def test_retain_graph_allows_second_backward():
    x = _leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(_np(x.grad), [4.0, 8.0])


@pytest.mark.parametrize(
    "build",
    [
        lambda x, w: (x * w).sum(),
        lambda x, w: x.sin().sum(),
        lambda x, w: (x * x).sum(),
        lambda x, w: x.exp().sum() + (x * w).sum(),
    ],
    ids=["mul_of_two_leaves", "sin", "square_by_mul", "exp_plus_mul"],
)
def test_second_backward_through_freed_graph_raises(build):
    x = _leaf(0.5, 1.5)
    w = _leaf(2.0, 3.0)
    y = build(x, w)
    y.backward()
    with pytest.raises(RuntimeError, match=FREED):
        y.backward()


def test_graph_is_freed_by_last_backward_without_retain_graph():
    x = _leaf(1.0, 2.0)
    y = x.sin().sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=False)
    with pytest.raises(RuntimeError, match=FREED):
        y.backward()
    np.testing.assert_allclose(_np(x.grad), 2.0 * np.cos([1.0, 2.0]))


@pytest.mark.filterwarnings(CYCLE_WARNING)
def test_retain_graph_defaults_to_create_graph():
    # create_graph=True implies retain_graph=True, so a second plain backward still works.
    x = _leaf(1.0, 2.0)
    y = (x**3).sum()
    y.backward(create_graph=True)
    y.backward()
    np.testing.assert_allclose(_np(x.grad), [6.0, 24.0])


# --- create_graph -------------------------------------------------------------------------------------------


def test_without_create_graph_grad_has_no_graph():
    x = _leaf(1.0, 2.0)
    (x**3).sum().backward()
    assert x.grad.requires_grad is False
    assert x.grad.grad_fn is None


@pytest.mark.filterwarnings(CYCLE_WARNING)
def test_create_graph_makes_grad_differentiable_and_allows_double_backward():
    x = _leaf(1.0, 2.0)
    y = (x**3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    assert g.grad_fn is not None
    np.testing.assert_allclose(_np(g), [3.0, 12.0])
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(_np(x.grad), [6.0, 12.0])


@pytest.mark.filterwarnings(CYCLE_WARNING)
def test_create_graph_double_backward_mixed_variables():
    # f = x^2 * w ; df/dx = 2 x w ; d/dw (df/dx . 1) = 2 x
    x = _leaf(1.0, 3.0)
    w = _leaf(2.0, 5.0)
    (x * x * w).sum().backward(create_graph=True)
    gx = x.grad
    np.testing.assert_allclose(_np(gx), [4.0, 30.0])
    x.grad = None
    w.grad = None
    gx.sum().backward(inputs=[w])
    np.testing.assert_allclose(_np(w.grad), [2.0, 6.0])
    assert x.grad is None


# --- inputs -------------------------------------------------------------------------------------------------


def test_inputs_accumulates_only_into_listed_leaves():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    (x * w).sum().backward(inputs=[x])
    np.testing.assert_allclose(_np(x.grad), [3.0, 4.0])
    assert w.grad is None


def test_inputs_may_be_a_single_tensor():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    (x * w).sum().backward(inputs=w)
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])
    assert x.grad is None


def test_inputs_nonleaf_gets_grad_and_leaves_do_not():
    x = _leaf(1.0, 2.0)
    y = x * 3.0
    (y * y).sum().backward(inputs=[y])
    np.testing.assert_allclose(_np(y.grad), [6.0, 12.0])
    assert x.grad is None


def test_inputs_nonleaf_grad_accumulates():
    x = _leaf(1.0, 2.0)
    y = x * 3.0
    z = (y * y).sum()
    z.backward(inputs=[y], retain_graph=True)
    z.backward(inputs=[y])
    np.testing.assert_allclose(_np(y.grad), [12.0, 24.0])


def test_inputs_leaf_and_nonleaf_together():
    x = _leaf(1.0, 2.0)
    y = x * 3.0
    (y * y).sum().backward(inputs=[x, y])
    np.testing.assert_allclose(_np(y.grad), [6.0, 12.0])
    np.testing.assert_allclose(_np(x.grad), [18.0, 36.0])


def test_inputs_unused_leaf_keeps_grad_none():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    (x * 2.0).sum().backward(inputs=[w])
    assert w.grad is None
    assert x.grad is None


def test_empty_inputs_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="argument to `backward\\(\\)` cannot be empty"):
        (x * x).sum().backward(inputs=[])
    assert x.grad is None


# --- ad.autograd.backward -----------------------------------------------------------------------------------


def test_autograd_backward_single_tensor():
    x = _leaf(1.0, 2.0)
    assert ad.autograd.backward((x * x).sum()) is None
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])


def test_autograd_backward_single_tensor_with_grad_tensor():
    x = _leaf(1.0, 2.0)
    ad.autograd.backward(x * x, ad.tensor(np.array([1.0, 0.5])))
    np.testing.assert_allclose(_np(x.grad), [2.0, 2.0])


def test_autograd_backward_several_outputs_with_none_for_scalars():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    v = ad.tensor(np.array([1.0, 10.0]))
    ad.autograd.backward([(x * w).sum(), x * 3.0], [None, v])
    np.testing.assert_allclose(_np(x.grad), [3.0 + 3.0, 4.0 + 30.0])
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])


def test_autograd_backward_tuple_of_outputs_without_grad_tensors():
    x = _leaf(1.0, 2.0)
    ad.autograd.backward(((x * x).sum(), (x * 3.0).sum()))
    np.testing.assert_allclose(_np(x.grad), [5.0, 7.0])


def test_autograd_backward_grad_tensors_count_mismatch_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="got 2 tensors and 1 gradients"):
        ad.autograd.backward([(x * 2.0).sum(), (x * 3.0).sum()], [ad.tensor(1.0)])
    assert x.grad is None


def test_autograd_backward_none_for_nonscalar_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        ad.autograd.backward([(x * x).sum(), x * 3.0], [None, None])
    assert x.grad is None


def test_autograd_backward_inputs_keyword():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    ad.autograd.backward([(x * w).sum()], inputs=[w])
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])
    assert x.grad is None


def test_autograd_backward_retain_graph():
    x = _leaf(1.0, 2.0)
    y = x.sin().sum()
    ad.autograd.backward([y], retain_graph=True)
    ad.autograd.backward([y])
    np.testing.assert_allclose(_np(x.grad), 2.0 * np.cos([1.0, 2.0]))
    with pytest.raises(RuntimeError, match=FREED):
        ad.autograd.backward([y])


# --- graph shapes -------------------------------------------------------------------------------------------


def test_diamond_graph_sums_both_paths():
    x = ad.tensor(3.0, requires_grad=True)
    c = (x * x) * x.sin()
    c.backward()
    expected = 2 * 3.0 * np.sin(3.0) + 9.0 * np.cos(3.0)
    np.testing.assert_allclose(x.grad.item(), expected)


def test_same_leaf_twice_in_one_op():
    x = _leaf(1.0, 2.0)
    (x + x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 2.0])


def test_nonleaf_reused():
    # y = x^2, z = y^2 + y, dz/dx = (2y + 1) * 2x
    x = _leaf(1.0, 2.0)
    y = x * x
    (y * y + y).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [(2 * 1 + 1) * 2.0, (2 * 4 + 1) * 4.0])


def test_leaf_shared_by_two_graphs_backward_each():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    y1 = (x * w).sum()
    y2 = (x * x).sum()
    y1.backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 4.0])
    y2.backward()
    np.testing.assert_allclose(_np(x.grad), [3.0 + 2.0, 4.0 + 4.0])
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])


def test_leaf_shared_by_two_graphs_backward_together():
    x = _leaf(1.0, 2.0)
    y1 = x.sin().sum()
    y2 = (x * x).sum()
    ad.autograd.backward([y1, y2])
    np.testing.assert_allclose(_np(x.grad), np.cos([1.0, 2.0]) + [2.0, 4.0])


def test_two_independent_graphs_interleaved():
    a = _leaf(1.0, 2.0)
    b = _leaf(5.0, 7.0)
    a1 = a * a
    b1 = b.sin()
    a2 = a1 * a
    b2 = b1 * b
    ya = a2.sum()
    yb = b2.sum()
    yb.backward()
    assert a.grad is None
    np.testing.assert_allclose(_np(b.grad), np.cos([5.0, 7.0]) * [5.0, 7.0] + np.sin([5.0, 7.0]))
    ya.backward()
    np.testing.assert_allclose(_np(a.grad), [3.0, 12.0])
    np.testing.assert_allclose(_np(b.grad), np.cos([5.0, 7.0]) * [5.0, 7.0] + np.sin([5.0, 7.0]))


def test_graph_built_then_other_graph_backward_does_not_free_it():
    x = _leaf(1.0, 2.0)
    y1 = x.sin().sum()
    y2 = x.cos().sum()
    y2.backward()
    y1.backward()
    np.testing.assert_allclose(_np(x.grad), np.cos([1.0, 2.0]) - np.sin([1.0, 2.0]))


def test_long_chain():
    x = _leaf(1.0, 2.0)
    y = x
    for _ in range(50):
        y = y * 1.1
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), [1.1**50, 1.1**50])


def test_backward_from_intermediate_of_larger_graph():
    x = _leaf(1.0, 2.0)
    y = x * x
    z = y.sin()
    y.sum().backward(retain_graph=True)
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])
    x.grad = None
    z.sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.cos([1.0, 4.0]) * [2.0, 4.0])


def test_inputs_nonleaf_that_also_retains_grad_gets_it_once():
    for create_graph in (False, True):
        x = _leaf(1.0, 2.0)
        y = x * 3.0
        y.retain_grad()
        (y * y).sum().backward(inputs=[y], create_graph=create_graph)
        np.testing.assert_allclose(_np(y.grad), [6.0, 12.0])


def test_in_place_change_after_use_raises_with_create_graph():
    x = _leaf(1.0, 2.0)
    y = x * 2.0
    z = y.sin()  # saves y
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ad.autograd.grad(z.sum(), x, create_graph=True)
