"""Semantics of ``ad.autograd.grad``: returned gradients, unused inputs, grad_outputs, higher order.

Each assertion was checked against torch 2.13 with ``ad`` aliased to ``torch`` and the default dtype set to
float64; values are compared with analytic derivatives. By design in ``ad``: the default float dtype is
float64, tensors are built from numpy data and results are ``ad`` Tensors (read here through
``t.detach().numpy()``).

Where to start: ``test_returns_tuple_and_does_not_touch_grad``.
"""

import numpy as np
import pytest

import ad

FREED = "Trying to backward through the graph a second time"
UNUSED = "appears to not have been used in the graph"
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"


def _np(t):
    return t.detach().numpy()


def _leaf(*values):
    return ad.tensor(np.array(values, dtype=np.float64), requires_grad=True)


# --- return value and .grad ---------------------------------------------------------------------------------


def test_returns_tuple_and_does_not_touch_grad():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    w.grad = ad.tensor(np.array([100.0, 100.0]))
    result = ad.autograd.grad((x * w).sum(), [x, w])
    assert isinstance(result, tuple)
    assert len(result) == 2
    gx, gw = result
    np.testing.assert_allclose(_np(gx), [3.0, 4.0])
    np.testing.assert_allclose(_np(gw), [1.0, 2.0])
    assert x.grad is None
    np.testing.assert_allclose(_np(w.grad), [100.0, 100.0])


def test_single_tensor_input_returns_one_tuple():
    x = _leaf(1.0, 2.0)
    result = ad.autograd.grad((x * x).sum(), x)
    assert isinstance(result, tuple)
    assert len(result) == 1
    np.testing.assert_allclose(_np(result[0]), [2.0, 4.0])


def test_tuple_inputs():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    gx, gw = ad.autograd.grad((x * w).sum(), (x, w))
    np.testing.assert_allclose(_np(gx), [3.0, 4.0])
    np.testing.assert_allclose(_np(gw), [1.0, 2.0])


def test_result_shape_and_dtype_follow_input():
    x = ad.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    (g,) = ad.autograd.grad((x * 2.0).sum(), x)
    assert tuple(g.shape) == (2, 3)
    assert g.dtype == ad.float32
    np.testing.assert_allclose(_np(g), np.full((2, 3), 2.0))


def test_grad_wrt_nonleaf_intermediate():
    x = _leaf(1.0, 2.0)
    y = x * 3.0
    z = (y * y).sum()
    (gy,) = ad.autograd.grad(z, y)
    np.testing.assert_allclose(_np(gy), [6.0, 12.0])
    assert x.grad is None


def test_grad_wrt_leaf_and_intermediate():
    x = _leaf(1.0, 2.0)
    y = x * 3.0
    gx, gy = ad.autograd.grad((y * y).sum(), [x, y])
    np.testing.assert_allclose(_np(gx), [18.0, 36.0])
    np.testing.assert_allclose(_np(gy), [6.0, 12.0])


def test_grad_through_diamond():
    x = ad.tensor(0.7, requires_grad=True)
    (g,) = ad.autograd.grad(x.sin() * x.exp(), x)
    np.testing.assert_allclose(g.item(), np.cos(0.7) * np.exp(0.7) + np.sin(0.7) * np.exp(0.7))


# --- unused inputs ------------------------------------------------------------------------------------------


def test_unused_input_raises():
    x = _leaf(1.0, 2.0)
    u = _leaf(5.0)
    with pytest.raises(RuntimeError, match=UNUSED):
        ad.autograd.grad((x * 2.0).sum(), [x, u])


def test_unused_input_error_mentions_allow_unused():
    x = _leaf(1.0, 2.0)
    u = _leaf(5.0)
    with pytest.raises(RuntimeError, match="Set allow_unused=True if this is the desired behavior"):
        ad.autograd.grad((x * 2.0).sum(), [u])


def test_allow_unused_gives_none():
    x = _leaf(1.0, 2.0)
    u = _leaf(5.0)
    gx, gu = ad.autograd.grad((x * 2.0).sum(), [x, u], allow_unused=True)
    np.testing.assert_allclose(_np(gx), [2.0, 2.0])
    assert gu is None


def test_materialize_grads_gives_zeros_of_input_shape():
    x = _leaf(1.0, 2.0)
    u = ad.tensor(np.ones((2, 3)), requires_grad=True)
    gx, gu = ad.autograd.grad((x * 2.0).sum(), [x, u], materialize_grads=True)
    np.testing.assert_allclose(_np(gx), [2.0, 2.0])
    assert gu is not None
    assert tuple(gu.shape) == (2, 3)
    np.testing.assert_array_equal(_np(gu), np.zeros((2, 3)))


def test_materialize_grads_with_allow_unused_true():
    x = _leaf(1.0, 2.0)
    u = _leaf(5.0)
    _, gu = ad.autograd.grad((x * 2.0).sum(), [x, u], allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(_np(gu), [0.0])


def test_materialize_grads_with_allow_unused_false_raises_value_error():
    x = _leaf(1.0, 2.0)
    u = _leaf(5.0)
    with pytest.raises(ValueError, match="allow_unused"):
        ad.autograd.grad((x * 2.0).sum(), [x, u], allow_unused=False, materialize_grads=True)


def test_input_that_does_not_require_grad_raises():
    x = _leaf(1.0, 2.0)
    c = ad.tensor(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors does not require grad"):
        ad.autograd.grad((x * c).sum(), [x, c])


def test_output_that_does_not_require_grad_raises():
    x = _leaf(1.0, 2.0)
    c = ad.tensor(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match=NO_GRAD_FN):
        ad.autograd.grad((c * c).sum(), x)


# --- grad_outputs -------------------------------------------------------------------------------------------


def test_nonscalar_output_without_grad_outputs_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        ad.autograd.grad(x * x, x)


def test_grad_outputs_gives_vector_jacobian_product():
    x = _leaf(1.0, 2.0, 3.0)
    v = ad.tensor(np.array([1.0, 10.0, 100.0]))
    (g,) = ad.autograd.grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(_np(g), [2.0, 40.0, 600.0])


def test_grad_outputs_on_matrix_function():
    # y = A x ; v^T J = A^T v
    a = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 4.0]])
    x = _leaf(1.0, 2.0, 3.0)
    v = np.array([2.0, -3.0])
    y = ad.tensor(a) @ x
    (g,) = ad.autograd.grad(y, x, grad_outputs=ad.tensor(v))
    np.testing.assert_allclose(_np(g), a.T @ v)


def test_several_outputs_sum_their_vjps_with_none_for_scalars():
    x = _leaf(1.0, 2.0)
    v = ad.tensor(np.array([1.0, 10.0]))
    (g,) = ad.autograd.grad([(x * 2.0).sum(), x * x], x, grad_outputs=[None, v])
    np.testing.assert_allclose(_np(g), [2.0 + 2.0, 2.0 + 40.0])


def test_grad_outputs_shape_mismatch_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        ad.autograd.grad(x * x, x, grad_outputs=ad.tensor(np.ones(3)))


def test_grad_outputs_count_mismatch_raises():
    x = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="got 2 tensors and 1 gradients"):
        ad.autograd.grad([(x * 2.0).sum(), (x * 3.0).sum()], x, grad_outputs=[ad.tensor(1.0)])


def test_is_grads_batched_computes_jacobian_rows():
    x = _leaf(1.0, 2.0)
    c = ad.tensor(np.array([3.0, 4.0]))
    (jac,) = ad.autograd.grad(x * c * x, x, grad_outputs=ad.tensor(np.eye(2)), is_grads_batched=True)
    np.testing.assert_allclose(_np(jac), [[6.0, 0.0], [0.0, 16.0]])


# --- retain_graph -------------------------------------------------------------------------------------------


def test_second_grad_through_freed_graph_raises():
    x = _leaf(1.0, 2.0)
    y = (x * x).sum()
    ad.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match=FREED):
        ad.autograd.grad(y, x)


def test_retain_graph_allows_second_grad():
    x = _leaf(1.0, 2.0)
    y = x.sin().sum()
    (a,) = ad.autograd.grad(y, x, retain_graph=True)
    (b,) = ad.autograd.grad(y, x)
    np.testing.assert_allclose(_np(a), np.cos([1.0, 2.0]))
    np.testing.assert_allclose(_np(b), np.cos([1.0, 2.0]))
    assert x.grad is None


def test_grad_then_backward_on_retained_graph():
    x = _leaf(1.0, 2.0)
    y = (x * x).sum()
    ad.autograd.grad(y, x, retain_graph=True)
    y.backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])


# --- higher order -------------------------------------------------------------------------------------------


def test_without_create_graph_result_has_no_graph():
    x = ad.tensor(2.0, requires_grad=True)
    (g,) = ad.autograd.grad(x**3, x)
    assert g.requires_grad is False
    assert g.grad_fn is None


def test_second_and_third_derivative_of_cube():
    x = ad.tensor(2.0, requires_grad=True)
    y = x**3
    (g1,) = ad.autograd.grad(y, x, create_graph=True)
    assert g1.requires_grad
    assert g1.grad_fn is not None
    (g2,) = ad.autograd.grad(g1, x, create_graph=True)
    (g3,) = ad.autograd.grad(g2, x, create_graph=True)
    np.testing.assert_allclose(g1.item(), 12.0)
    np.testing.assert_allclose(g2.item(), 12.0)
    np.testing.assert_allclose(g3.item(), 6.0)


def test_elementwise_higher_derivatives_of_cube():
    x = _leaf(1.0, 2.0, -3.0)
    (g1,) = ad.autograd.grad((x**3).sum(), x, create_graph=True)
    (g2,) = ad.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = ad.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(_np(g1), [3.0, 12.0, 27.0])
    np.testing.assert_allclose(_np(g2), [6.0, 12.0, -18.0])
    np.testing.assert_allclose(_np(g3), [6.0, 6.0, 6.0])


def test_second_derivative_of_sin():
    x = _leaf(0.3, 1.2)
    (g1,) = ad.autograd.grad(x.sin().sum(), x, create_graph=True)
    (g2,) = ad.autograd.grad(g1.sum(), x)
    np.testing.assert_allclose(_np(g1), np.cos([0.3, 1.2]))
    np.testing.assert_allclose(_np(g2), -np.sin([0.3, 1.2]))


def test_mixed_partials_of_two_variables():
    # f = x^3 y^2 at (2, 3): f_x = 3x^2y^2 = 108, f_y = 2x^3y = 48,
    # f_xy = f_yx = 6x^2y = 72, f_xx = 6xy^2 = 108
    x = ad.tensor(2.0, requires_grad=True)
    y = ad.tensor(3.0, requires_grad=True)
    f = x**3 * y**2
    fx, fy = ad.autograd.grad(f, [x, y], create_graph=True)
    np.testing.assert_allclose(fx.item(), 108.0)
    np.testing.assert_allclose(fy.item(), 48.0)
    fxx, fxy = ad.autograd.grad(fx, [x, y], retain_graph=True)
    (fyx,) = ad.autograd.grad(fy, x)
    np.testing.assert_allclose(fxx.item(), 108.0)
    np.testing.assert_allclose(fxy.item(), 72.0)
    np.testing.assert_allclose(fyx.item(), 72.0)


def test_hessian_rows_by_grad_of_grad():
    # f = sum(x^3) + x0 x1 ; H = diag(6x) + [[0, 1], [1, 0]]
    x = _leaf(1.0, 2.0)
    f = (x**3).sum() + x[0] * x[1]
    (g,) = ad.autograd.grad(f, x, create_graph=True)
    np.testing.assert_allclose(_np(g), [3.0 + 2.0, 12.0 + 1.0])
    (row0,) = ad.autograd.grad(g[0], x, retain_graph=True)
    (row1,) = ad.autograd.grad(g[1], x)
    np.testing.assert_allclose(_np(row0), [6.0, 1.0])
    np.testing.assert_allclose(_np(row1), [1.0, 12.0])


def test_create_graph_retains_graph_by_default():
    x = ad.tensor(1.5, requires_grad=True)
    y = x**3
    (g,) = ad.autograd.grad(y, x, create_graph=True)
    (again,) = ad.autograd.grad(y, x)
    np.testing.assert_allclose(again.item(), 3 * 1.5**2)
    g.backward()
    np.testing.assert_allclose(x.grad.item(), 6 * 1.5)


def test_derivative_of_linear_function_is_unused_at_next_order():
    # f = x w: df/dx = w does not depend on x, so the next grad finds x unused.
    x = ad.tensor(1.0, requires_grad=True)
    w = ad.tensor(2.0, requires_grad=True)
    (g1,) = ad.autograd.grad(x * w, x, create_graph=True)
    np.testing.assert_allclose(g1.item(), 2.0)
    assert g1.requires_grad
    (g2,) = ad.autograd.grad(g1, x, allow_unused=True, retain_graph=True)
    assert g2 is None
    (g2,) = ad.autograd.grad(g1, x, materialize_grads=True, retain_graph=True)
    np.testing.assert_allclose(g2.item(), 0.0)
    (gw,) = ad.autograd.grad(g1, w)
    np.testing.assert_allclose(gw.item(), 1.0)


def test_create_graph_on_constant_derivative_gives_tensor_without_graph():
    # The seed does not require grad and d(2x)/dx involves no tensor that does: torch returns a plain tensor.
    x = ad.tensor(1.0, requires_grad=True)
    (g1,) = ad.autograd.grad(x * 2.0, x, create_graph=True)
    np.testing.assert_allclose(g1.item(), 2.0)
    assert g1.requires_grad is False
