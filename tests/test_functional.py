"""``ad.autograd.functional``: vjp, jvp, jacobian, hessian, hvp and vhp against analytic values, with
torch's return structures, errors and detaching rules.

Each expectation (value, structure, ``requires_grad`` of the results, error class and message) was checked
against ``torch.autograd.functional`` 2.13 with the default dtype float64. Values are compared with closed
forms: the Jacobian of ``x -> A @ x`` is ``A``, the Hessian of ``sum(x ** 3)`` is ``diag(6 x)``, the
Hessian of ``x @ A @ x`` is ``A + A.T``, the JVP of ``sin`` is ``cos(x) * v``.

Where to start: ``test_jacobian_of_a_linear_map_is_its_matrix``.
"""

import numpy as np
import pytest

import ad
from ad.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 2))
Q = RNG.standard_normal((4, 4))  # not symmetric: the Hessian of x @ Q @ x is Q + Q.T
X = RNG.uniform(-1.0, 1.0, 4)
Y = RNG.uniform(-1.0, 1.0, 2)


def _t(a, **kw):
    return ad.tensor(np.array(a, dtype=kw.pop("dtype", np.float64)), **kw)


def _np(t):
    return t.detach().numpy()


def _close(t, expected):
    assert isinstance(t, ad.Tensor)
    np.testing.assert_allclose(_np(t), expected, rtol=1e-12, atol=1e-12)


# --- jacobian -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_of_a_linear_map_is_its_matrix(vectorize):
    J = jacobian(lambda x: _t(A) @ x, _t(X), vectorize=vectorize)
    assert J.shape == (3, 4)
    _close(J, A)
    assert not J.requires_grad


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_tuple_of_inputs_gives_a_tuple(vectorize):
    J = jacobian(lambda x, y: _t(A) @ x + _t(B) @ y, (_t(X), _t(Y)), vectorize=vectorize)
    assert isinstance(J, tuple) and len(J) == 2
    _close(J[0], A)
    _close(J[1], B)


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_tuple_of_outputs_and_inputs_is_nested(vectorize):
    x, y = X[:2], Y

    def f(x, y):
        return x * y, x.sum(), (y * y).reshape(2, 1)

    J = jacobian(f, (_t(x), _t(y)), vectorize=vectorize)
    assert isinstance(J, tuple) and len(J) == 3 and all(isinstance(row, tuple) and len(row) == 2 for row in J)
    assert [[b.shape for b in row] for row in J] == [[(2, 2), (2, 2)], [(2,), (2,)], [(2, 1, 2), (2, 1, 2)]]
    _close(J[0][0], np.diag(y))
    _close(J[0][1], np.diag(x))
    _close(J[1][0], np.ones(2))
    _close(J[1][1], np.zeros(2))  # independent: zeros (strict=False)
    _close(J[2][0], np.zeros((2, 1, 2)))
    _close(J[2][1], np.diag(2 * y).reshape(2, 1, 2))


def test_jacobian_tuple_of_outputs_single_input():
    J = jacobian(lambda x: (x * 2.0, x.sum()), _t(X))
    assert isinstance(J, tuple) and len(J) == 2
    _close(J[0], 2.0 * np.eye(4))
    _close(J[1], np.ones(4))


def test_jacobian_shape_is_output_shape_then_input_shape():
    x = RNG.uniform(-1.0, 1.0, (2, 3))
    J = jacobian(lambda x: x.sin(), _t(x))
    assert J.shape == (2, 3, 2, 3)
    expected = np.zeros((2, 3, 2, 3))
    for i in range(2):
        for j in range(3):
            expected[i, j, i, j] = np.cos(x[i, j])
    _close(J, expected)


def test_jacobian_of_a_scalar_function_has_the_input_shape():
    J = jacobian(lambda x: (x**2).sum(), _t(X))
    assert J.shape == (4,)
    _close(J, 2 * X)


def test_jacobian_forward_mode_strategy():
    J = jacobian(lambda x: _t(A) @ x.sin(), _t(X), vectorize=True, strategy="forward-mode")
    _close(J, A * np.cos(X))
    J = jacobian(lambda x, y: (x.exp().sum(), x[:2] * y.sum()), (_t(X), _t(Y)), vectorize=True, strategy="forward-mode")
    assert isinstance(J, list) and all(isinstance(row, list) for row in J)  # as torch's forward-mode path
    _close(J[0][0], np.exp(X))
    _close(J[0][1], np.zeros(2))
    _close(J[1][0], np.eye(2, 4) * Y.sum())
    _close(J[1][1], np.outer(X[:2], np.ones(2)))


def test_jacobian_strategy_errors():
    f = lambda x: x * 2.0  # noqa: E731
    with pytest.raises(AssertionError, match='Expected strategy to be either "forward-mode" or "reverse-mode"'):
        jacobian(f, _t(X), strategy="sideways")
    with pytest.raises(NotImplementedError, match="only implemented for `vectorize=True`"):
        jacobian(f, _t(X), strategy="forward-mode")
    with pytest.raises(NotImplementedError, match='`create_graph=True` and `strategy="forward-mode"`'):
        jacobian(f, _t(X), strategy="forward-mode", vectorize=True, create_graph=True)
    with pytest.raises(RuntimeError, match='`strict=True` and `strategy="forward-mode"`'):
        jacobian(f, _t(X), strategy="forward-mode", vectorize=True, strict=True)
    with pytest.raises(RuntimeError, match="`strict=True` and `vectorized=True` are not supported together"):
        jacobian(f, _t(X), vectorize=True, strict=True)


def test_jacobian_strict():
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent of input 1"):
        jacobian(lambda x, y: x * 2.0, (_t(X), _t(Y)), strict=True)
    with pytest.raises(RuntimeError, match="The jacobian of the user-provided function is independent of input 0. "):
        jacobian(lambda x: x * 2.0, _t(X), strict=True, create_graph=True)  # linear: constant Jacobian
    J = jacobian(lambda x, y: x * 2.0, (_t(X), _t(Y)))
    _close(J[1], np.zeros((4, 2)))


def test_jacobian_create_graph_is_differentiable_wrt_the_callers_input():
    x = _t(X, requires_grad=True)
    J = jacobian(lambda x: x.sin(), x, create_graph=True)
    assert J.requires_grad
    J.sum().backward()  # d/dx sum(diag(cos x)) = -sin x
    _close(x.grad, -np.sin(X))


def test_jacobian_keeps_float32():
    J = jacobian(lambda x: x * x, _t(X, dtype=np.float32))
    assert J.dtype == np.float32
    np.testing.assert_allclose(_np(J), np.diag(2 * X), rtol=1e-6, atol=1e-6)


# --- hessian --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vectorize", [False, True])
def test_hessian_of_sum_of_cubes_is_diagonal(vectorize):
    H = hessian(lambda x: (x**3).sum(), _t(X), vectorize=vectorize)
    assert H.shape == (4, 4)
    _close(H, np.diag(6 * X))
    assert not H.requires_grad


def test_hessian_of_a_quadratic_form():
    _close(hessian(lambda x: x @ _t(Q) @ x, _t(X)), Q + Q.T)


def test_hessian_of_a_matrix_input_has_doubled_shape():
    x = RNG.uniform(0.5, 1.5, (2, 2))
    H = hessian(lambda x: (x * x * x).sum(), _t(x))
    assert H.shape == (2, 2, 2, 2)
    _close(H.reshape(4, 4), np.diag(6 * x.reshape(-1)))


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_hessian_tuple_of_inputs_is_nested(strategy):
    def f(x, y):
        return (x**2).sum() * y.sum()

    H = hessian(f, (_t(X), _t(Y)), vectorize=strategy == "forward-mode", outer_jacobian_strategy=strategy)
    container = list if strategy == "forward-mode" else tuple  # torch's forward-mode path returns lists
    assert isinstance(H, container) and all(isinstance(row, container) and len(row) == 2 for row in H)
    assert [[b.shape for b in row] for row in H] == [[(4, 4), (4, 2)], [(2, 4), (2, 2)]]
    _close(H[0][0], 2 * Y.sum() * np.eye(4))
    _close(H[0][1], np.outer(2 * X, np.ones(2)))
    _close(H[1][0], np.outer(np.ones(2), 2 * X))
    _close(H[1][1], np.zeros((2, 2)))


def test_hessian_errors():
    with pytest.raises(RuntimeError, match="should contain a single element"):
        hessian(lambda x: x * x, _t(X))
    with pytest.raises(RuntimeError, match="The function given to hessian should return a single Tensor"):
        hessian(lambda x: ((x * x).sum(),), _t(X))
    with pytest.raises(AssertionError, match='Expected strategy to be either "forward-mode" or "reverse-mode".'):
        hessian(lambda x: (x * x).sum(), _t(X), outer_jacobian_strategy="sideways")
    with pytest.raises(
        RuntimeError, match="jacobian of the user-provided function with respect to input 0 is independent"
    ):
        hessian(lambda x: x.sum() * 2.0, _t(X), strict=True)  # linear: the Hessian is zero
    _close(hessian(lambda x: x.sum() * 2.0, _t(X)), np.zeros((4, 4)))


def test_hessian_create_graph():
    x = _t(X, requires_grad=True)
    H = hessian(lambda x: (x**3).sum(), x, create_graph=True)
    assert H.requires_grad
    H.sum().backward()  # d/dx sum(diag(6 x)) = 6
    _close(x.grad, np.full(4, 6.0))


# --- vjp / jvp ------------------------------------------------------------------------------------------------


def test_vjp_of_a_linear_map():
    v = RNG.standard_normal(3)
    out, g = vjp(lambda x: _t(A) @ x, _t(X), _t(v))
    _close(out, A @ X)
    _close(g, A.T @ v)
    assert not out.requires_grad and not g.requires_grad


def test_vjp_scalar_output_needs_no_v():
    out, g = vjp(lambda x: (x * x).sum(), _t(X))
    _close(out, np.sum(X * X))
    _close(g, 2 * X)


def test_vjp_tuples():
    v = (_t(2.0), _t(Y))
    out, g = vjp(lambda x, y: (x.exp().sum(), x[:2] * y.sum()), (_t(X), _t(Y)), v)
    assert isinstance(out, tuple) and isinstance(g, tuple) and len(g) == 2
    expected_x = 2.0 * np.exp(X)
    expected_x[:2] += Y * Y.sum()
    _close(g[0], expected_x)
    _close(g[1], np.full(2, np.dot(X[:2], Y)))


def test_vjp_independent_input_gives_zeros_or_raises_when_strict():
    out, g = vjp(lambda x, y: x.sum(), (_t(X), _t(Y)))
    _close(g[1], np.zeros(2))
    with pytest.raises(RuntimeError, match="The output of the user-provided function is independent of input 1"):
        vjp(lambda x, y: x.sum(), (_t(X), _t(Y)), strict=True)
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function does not require gradients"):
        vjp(lambda x: _t(1.0), _t(X), strict=True)


def test_vjp_v_errors():
    with pytest.raises(RuntimeError, match="The vector v can only be None if the user-provided function returns"):
        vjp(lambda x: x * 2.0, _t(X))
    with pytest.raises(RuntimeError, match=r"v has invalid size: should be torch.Size\(\[4\]\) but got"):
        vjp(lambda x: x * 2.0, _t(X), _t(Y))
    with pytest.raises(RuntimeError, match="The given v should contain a single Tensor."):
        vjp(lambda x: x * 2.0, _t(X), (_t(X), _t(X)))
    with pytest.raises(RuntimeError, match="v is a tuple of invalid length: should be 2 but got 1."):
        vjp(lambda x: (x, x), _t(X), (_t(X),))
    with pytest.raises(RuntimeError, match=r"Entry 1 in v has invalid size"):
        vjp(lambda x: (x, x), _t(X), (_t(X), _t(Y)))


def test_type_errors():
    with pytest.raises(TypeError, match="The inputs given to vjp must be either a Tensor or a tuple of Tensors"):
        vjp(lambda x: x.sum(), [_t(X)])
    with pytest.raises(TypeError, match="The outputs of the user-provided function given to jacobian must be"):
        jacobian(lambda x: 3.0, _t(X))
    with pytest.raises(TypeError, match="value at index 1 has type"):
        jvp(lambda x, y: x, (_t(X), 2.0), (_t(X), _t(X)))


def test_jvp_of_sin():
    v = RNG.standard_normal(4)
    out, t = jvp(lambda x: x.sin(), _t(X), _t(v))
    _close(out, np.sin(X))
    _close(t, np.cos(X) * v)
    assert not out.requires_grad and not t.requires_grad


def test_jvp_tuples():
    vx, vy = RNG.standard_normal(2), RNG.standard_normal(2)
    out, t = jvp(lambda x, y: (x * y, (x * y).sum()), (_t(X[:2]), _t(Y)), (_t(vx), _t(vy)))
    assert isinstance(t, tuple) and len(t) == 2
    _close(t[0], Y * vx + X[:2] * vy)
    _close(t[1], np.sum(Y * vx + X[:2] * vy))


def test_jvp_single_element_input_needs_no_v():
    out, t = jvp(lambda x: x**3, _t(0.5))
    _close(t, 3 * 0.25)
    with pytest.raises(RuntimeError, match="The vector v can only be None if the input to the user-provided function"):
        jvp(lambda x: x**3, _t(X))


def test_jvp_strict():
    with pytest.raises(RuntimeError, match="The output of the user-provided function is independent of input 1"):
        jvp(lambda x, y: x * 2.0, (_t(X), _t(Y)), (_t(X), _t(Y)), strict=True)
    out, t = jvp(lambda x, y: x * 2.0, (_t(X), _t(Y)), (_t(X), _t(Y)))
    _close(t, 2 * X)


def test_jvp_create_graph():
    x = _t(X, requires_grad=True)
    out, t = jvp(lambda x: x.sin(), x, _t(np.ones(4)), create_graph=True)
    assert out.requires_grad and t.requires_grad
    t.sum().backward()
    _close(x.grad, -np.sin(X))


# --- hvp / vhp ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("product", [hvp, vhp])
def test_hessian_vector_products_of_a_quadratic_form(product):
    v = RNG.standard_normal(4)
    out, hv = product(lambda x: x @ _t(Q) @ x, _t(X), _t(v))
    _close(out, X @ Q @ X)
    _close(hv, (Q + Q.T) @ v)
    assert not out.requires_grad and not hv.requires_grad


def test_hvp_equals_vhp_and_the_hessian_times_v():
    v = RNG.standard_normal(4)

    def f(x):
        return (x.sin() * x.exp()).sum() * x.sum()

    H = _np(hessian(f, _t(X)))
    _close(hvp(f, _t(X), _t(v))[1], H @ v)
    _close(vhp(f, _t(X), _t(v))[1], v @ H)


@pytest.mark.parametrize("product", [hvp, vhp])
def test_hessian_vector_products_tuples(product):
    def f(x, y):
        return (x**2).sum() * y.sum()

    vx, vy = RNG.standard_normal(4), RNG.standard_normal(2)
    out, hv = product(f, (_t(X), _t(Y)), (_t(vx), _t(vy)))
    assert isinstance(hv, tuple) and len(hv) == 2
    _close(hv[0], 2 * Y.sum() * vx + 2 * X * vy.sum())
    _close(hv[1], np.full(2, 2 * X @ vx))


@pytest.mark.parametrize("product", [hvp, vhp])
def test_hessian_vector_product_errors(product):
    name = product.__name__
    with pytest.raises(RuntimeError, match="should contain a single element"):
        product(lambda x: x * x, _t(X), _t(X))
    with pytest.raises(RuntimeError, match=f"The function given to {name} should return a single Tensor"):
        product(lambda x: ((x * x).sum(),), _t(X), _t(X))
    with pytest.raises(RuntimeError, match="The vector v can only be None if the input"):
        product(lambda x: (x * x).sum(), _t(X))
    with pytest.raises(RuntimeError, match="v has invalid size"):
        product(lambda x: (x * x).sum(), _t(X), _t(Y))
    with pytest.raises(RuntimeError, match="jacobian of the user-provided function with respect to input 0"):
        product(lambda x: x.sum(), _t(X), _t(X), strict=True)
    with pytest.raises(RuntimeError, match="The hessian of the user-provided function is independent of input 0"):
        product(lambda x: (x * x).sum(), _t(X), _t(X), strict=True, create_graph=True)  # constant Hessian


def test_hvp_single_element_input_needs_no_v():
    out, hv = hvp(lambda x: x**3, _t(0.5))
    _close(hv, 6 * 0.5)


class _CubeNoJvp(ad.autograd.Function):
    """x**3 without a forward-mode rule: forward over reverse raises NotImplementedError through it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


@pytest.mark.parametrize(
    "case",
    [
        (lambda x: (x.sin() * x.exp()).sum() * x.sum(), (X,), True),
        (lambda x, y: (x**2).sum() * y.sum() + (x @ _t(Q) @ x), (X, Y), True),
        (lambda x, y: (x**3).sum(), (X, Y), True),  # y unused: zeros
        (lambda x: (x * 2.0).sum(), (X,), True),  # a gradient independent of x: zeros
        (lambda x: _t(3.0), (X,), True),  # an output that does not require grad: zeros
        (lambda x: _CubeNoJvp.apply(x).sum(), (X,), False),  # no jvp: the double backward trick (fallback)
        (lambda x: x.tanh().sum(), (X.astype(np.float32),), True),
    ],
)
def test_hvp_forward_over_reverse_equals_the_double_backward_trick(case, monkeypatch):
    """Without create_graph or strict, ``hvp`` is the tangent of the gradient (forward over reverse, one compiled
    sweep: ``functional._hvp_forward_over_reverse``): the same output and product as torch's double backward trick,
    and the same structures; a function with an op without forward rule falls back to the trick."""
    import ad.autograd.functional as F

    fn, xs, fast = case
    vs = [RNG.standard_normal(x.shape).astype(x.dtype) for x in xs]
    single = len(xs) == 1
    args = (_t(xs[0]), _t(vs[0])) if single else (tuple(_t(x) for x in xs), tuple(_t(v) for v in vs))
    taken = []
    real = F._hvp_forward_over_reverse
    monkeypatch.setattr(F, "_hvp_forward_over_reverse", lambda *a: taken.append(real(*a)) or taken[-1])
    out, hv = F.hvp(fn, *args)
    assert (taken[0] is not None) == fast
    monkeypatch.setattr(F, "_hvp_forward_over_reverse", lambda *a: None)
    out2, hv2 = F.hvp(fn, *args)
    np.testing.assert_allclose(out.numpy(), out2.numpy(), rtol=1e-6 if xs[0].dtype == np.float32 else 1e-12)
    for h, h2, x in zip(*((hv, hv2, xs) if not single else ((hv,), (hv2,), xs))):
        assert h.dtype == h2.dtype and h.shape == h2.shape and not h.requires_grad
        np.testing.assert_allclose(h.numpy(), h2.numpy(), rtol=1e-5 if x.dtype == np.float32 else 1e-10, atol=1e-12)


def test_hvp_inside_a_dual_level_takes_the_double_backward_trick():
    from ad.autograd import forward_ad as fwAD

    with fwAD.dual_level():
        out, hv = hvp(lambda x: (x**3).sum(), _t(X), _t(np.ones(4)))
    _close(hv, 6 * X)


def test_hvp_create_graph():
    x = _t(X, requires_grad=True)
    out, hv = hvp(lambda x: (x**3).sum(), x, _t(np.ones(4)), create_graph=True)
    assert hv.requires_grad
    hv.sum().backward()  # d/dx sum(6 x) = 6
    _close(x.grad, np.full(4, 6.0))


# --- detaching and grad mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda x: vjp(lambda x: x.sin().sum(), x),
        lambda x: jvp(lambda x: x.sin(), x, _t(np.ones(4))),
        lambda x: (jacobian(lambda x: x.sin(), x),),
        lambda x: (hessian(lambda x: x.sin().sum(), x),),
        lambda x: hvp(lambda x: x.sin().sum(), x, _t(np.ones(4))),
        lambda x: vhp(lambda x: x.sin().sum(), x, _t(np.ones(4))),
    ],
    ids=["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"],
)
def test_results_are_detached_and_the_input_is_untouched(call):
    x = _t(X, requires_grad=True)
    for r in call(x):
        assert not r.requires_grad
    assert x.grad is None and x.requires_grad and x.is_leaf
    y = _t(X)
    call(y)
    assert not y.requires_grad


def test_works_under_no_grad():
    with ad.no_grad():
        out, g = vjp(lambda x: (x * x).sum(), _t(X))
        J = jacobian(lambda x: x * x, _t(X))
        assert not ad.is_grad_enabled()
    _close(g, 2 * X)
    _close(J, np.diag(2 * X))
    assert not g.requires_grad and not J.requires_grad


def test_create_graph_results_require_grad_even_for_inputs_without_grad():
    # as torch: the function is differentiated at detached copies that require grad
    out, g = vjp(lambda x: (x**3).sum(), _t(X), create_graph=True)
    assert out.requires_grad and g.requires_grad
