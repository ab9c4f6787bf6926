"""Forward mode: ``ad.autograd.forward_ad`` (dual levels, ``make_dual`` / ``unpack_dual``) and its use.

What is checked:

- the API and its error paths, as torch 2.13 behaves (checked with ``ad`` aliased to ``torch`` and float64 as
  the default dtype), except where ``ad`` goes beyond torch: levels nest here (torch's eager mode refuses a
  second level), and a tangent of another dtype than its primal is an error here (torch accepts it);
- that exiting a level clears every tangent of that level (inputs and intermediates) and no other;
- JVPs against analytic derivatives, on both propagation paths: the compiled elementwise path (inputs that do
  not require grad) and the differentiable rules (inputs that require grad, or several active levels);
- higher derivatives by nested levels (second, third and mixed derivatives, to 1e-10);
- composition with reverse mode: reverse over forward, forward over reverse (Hessian-vector products),
  ``make_dual`` differentiable w.r.t. its primal, ``no_grad`` and ``detach``;
- forward against reverse mode on hand-written compositions (``u . (J v) == (J^T u) . v`` and
  ``w . (H v)`` computed four ways);
- float32 graphs keep float32 tangents.



Where to start: ``test_make_dual_and_unpack_dual``.
"""

import tracemalloc

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

# --- helpers ------------------------------------------------------------------------------------------------


def _t(values, dtype=np.float64, requires_grad=False):
    return ad.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy()


def _tangent(t, level=None):
    return fwAD.unpack_dual(t, level=level).tangent


def _jvp(fn, xs, vs, *, requires_grad=False):
    """``(primal, tangent)`` of ``fn(*xs)`` in direction ``vs``, as numpy arrays (tangent None if none)."""
    with fwAD.dual_level():
        duals = [fwAD.make_dual(_t(x, requires_grad=requires_grad), _t(v)) for x, v in zip(xs, vs)]
        primal, tangent = fwAD.unpack_dual(fn(*duals))
        return _np(primal), None if tangent is None else _np(tangent)


@pytest.fixture(autouse=True)
def _no_level_leaks():
    """Every test starts with no dual level active, and one that fails inside a level does not leak it."""
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(_t([1.0]), _t([1.0]))
    yield
    for _ in range(16):
        try:
            fwAD.exit_dual_level()
        except RuntimeError:
            break


RNG = np.random.default_rng(20261125)
BOTH_PATHS = pytest.mark.parametrize("requires_grad", [False, True], ids=["compiled", "rules"])


# --- levels -------------------------------------------------------------------------------------------------


def test_enter_dual_level_returns_nested_levels():
    assert fwAD.enter_dual_level() == 0
    assert fwAD.enter_dual_level() == 1
    assert fwAD.enter_dual_level() == 2
    fwAD.exit_dual_level(level=2)
    fwAD.exit_dual_level(level=1)
    assert fwAD.enter_dual_level() == 1  # numbers are reused once a level is gone
    fwAD.exit_dual_level()
    fwAD.exit_dual_level(level=0)
    assert fwAD.enter_dual_level() == 0
    fwAD.exit_dual_level()


def test_exit_of_a_level_that_is_not_the_innermost_raises():
    outer = fwAD.enter_dual_level()
    inner = fwAD.enter_dual_level()
    with pytest.raises(RuntimeError, match="not the last one"):
        fwAD.exit_dual_level(level=outer)
    with pytest.raises(RuntimeError, match="not the last one"):
        fwAD.exit_dual_level(level=5)
    # the failed exits changed nothing: both levels are still usable, and can be exited in order
    x = fwAD.make_dual(_t([1.0]), _t([2.0]), level=outer)
    assert _np(_tangent(x, level=outer)).tolist() == [2.0]
    fwAD.exit_dual_level(level=inner)
    fwAD.exit_dual_level(level=outer)


def test_exit_without_an_active_level_raises():
    with pytest.raises(RuntimeError):
        fwAD.exit_dual_level()
    with fwAD.dual_level():
        pass
    with pytest.raises(RuntimeError):
        fwAD.exit_dual_level()


def test_dual_level_context_manager_returns_its_level_and_exits_it():
    with fwAD.dual_level() as outer:
        assert outer == 0
        with fwAD.dual_level() as inner:
            assert inner == 1
        with fwAD.dual_level() as again:
            assert again == 1
    with pytest.raises(ValueError, match="boom"):
        with fwAD.dual_level() as level:
            assert level == 0
            raise ValueError("boom")
    with pytest.raises(RuntimeError, match="no level exists"):  # the exception exited the level
        fwAD.make_dual(_t([1.0]), _t([1.0]))


# --- make_dual / unpack_dual --------------------------------------------------------------------------------


def test_make_dual_and_unpack_dual():
    with fwAD.dual_level():
        x = fwAD.make_dual(_t([1.0, 2.0]), _t([3.0, 4.0]))
        unpacked = fwAD.unpack_dual(x)
        assert type(unpacked) is fwAD.UnpackedDualTensor
        assert type(unpacked).__name__ == "UnpackedDualTensor"
        assert isinstance(unpacked, tuple) and len(unpacked) == 2
        assert unpacked._fields == ("primal", "tangent")
        assert unpacked[0] is unpacked.primal and unpacked[1] is unpacked.tangent
        primal, tangent = unpacked
        assert _np(primal).tolist() == [1.0, 2.0]
        assert _np(tangent).tolist() == [3.0, 4.0]
        assert _tangent(primal) is None  # the primal is the value without the tangent
        assert _np(x).tolist() == [1.0, 2.0]  # a dual tensor reads as its primal


def test_unpack_dual_of_a_tensor_without_tangent():
    plain = _t([1.0, 2.0])
    with fwAD.dual_level():
        primal, tangent = fwAD.unpack_dual(plain)
        assert tangent is None
        assert _np(primal).tolist() == [1.0, 2.0]
        y = fwAD.make_dual(_t([1.0]), _t([1.0]))
    # outside any level: every tensor unpacks to (itself, None), as in torch
    assert fwAD.unpack_dual(plain).tangent is None
    assert fwAD.unpack_dual(y).tangent is None
    assert fwAD.unpack_dual(y, level=0).tangent is None


def test_make_dual_outside_any_level_raises():
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(_t([1.0]), _t([1.0]))
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(_t([1.0]), _t([1.0]), level=0)


def test_make_dual_errors():
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(_t([1.0, 2.0]), _t([1.0]))
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(_t([1.0, 2.0]), _t([[1.0, 2.0]]))
        # torch 2.13 accepts a tangent of another dtype; ad's make_dual documents it as an error
        with pytest.raises(RuntimeError):
            fwAD.make_dual(_t([1.0, 2.0]), _t([1.0, 2.0], dtype=np.float32))
        with pytest.raises(ValueError, match="floating point"):
            fwAD.make_dual(ad.tensor([1, 2]), ad.tensor([1, 2]))
        with pytest.raises(RuntimeError):
            fwAD.make_dual(_t([1.0]), _t([1.0]), level=1)
        with pytest.raises(RuntimeError):
            fwAD.make_dual(_t([1.0]), _t([1.0]), level=7)


def test_unpack_dual_at_a_level_that_does_not_exist_raises():
    with fwAD.dual_level():
        x = fwAD.make_dual(_t([1.0]), _t([1.0]))
        with pytest.raises(RuntimeError):
            fwAD.unpack_dual(x, level=1)


def test_make_dual_at_an_explicit_level_keeps_the_other_levels():
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        x = fwAD.make_dual(_t([1.0, 2.0]), _t([3.0, 4.0]), level=outer)
        assert _tangent(x) is None  # the default level is the innermost
        y = fwAD.make_dual(x, _t([5.0, 6.0]))
        assert _np(_tangent(y, level=outer)).tolist() == [3.0, 4.0]
        assert _np(_tangent(y, level=inner)).tolist() == [5.0, 6.0]
        primal = fwAD.unpack_dual(y, level=inner).primal
        assert _tangent(primal, level=inner) is None
        assert _np(_tangent(primal, level=outer)).tolist() == [3.0, 4.0]
        # make_dual at a level where the tensor already has a tangent replaces it in the result only
        z = fwAD.make_dual(y, _t([7.0, 8.0]), level=outer)
        assert _np(_tangent(z, level=outer)).tolist() == [7.0, 8.0]
        assert _np(_tangent(z, level=inner)).tolist() == [5.0, 6.0]
        assert _np(_tangent(y, level=outer)).tolist() == [3.0, 4.0]


# --- exiting a level clears its tangents --------------------------------------------------------------------


def test_exit_clears_the_tangents_of_that_level():
    with fwAD.dual_level():
        x = fwAD.make_dual(_t([0.5, 1.0]), _t([1.0, 1.0]))
        y = x.sin() * x  # an intermediate with a tangent
        assert _tangent(y) is not None
    with fwAD.dual_level() as level:  # the same number again: nothing may be left over from before
        assert level == 0
        assert _tangent(x) is None
        assert _tangent(y) is None
        assert _tangent(x * y + y.exp()) is None


def test_tangents_of_an_outer_level_survive_exiting_an_inner_one():
    with fwAD.dual_level() as outer:
        x = fwAD.make_dual(_t([1.0, 2.0]), _t([1.0, 1.0]), level=outer)
        with fwAD.dual_level() as inner:
            z = fwAD.make_dual(x, _t([5.0, 5.0]), level=inner)
            w = z.sin() * z
            assert _tangent(w, level=inner) is not None
            assert _tangent(_tangent(w, level=outer), level=inner) is not None
        x0 = np.array([1.0, 2.0])
        t_outer = _tangent(w, level=outer)
        np.testing.assert_allclose(_np(t_outer), np.cos(x0) * x0 + np.sin(x0), rtol=1e-14)
        np.testing.assert_allclose(_np(_tangent(x, level=outer)), [1.0, 1.0])
        with fwAD.dual_level() as inner_again:
            assert inner_again == inner
            for t in (w, z, t_outer):
                assert _tangent(t, level=inner_again) is None
            assert _tangent(w * 2.0, level=inner_again) is None
            np.testing.assert_allclose(_np(_tangent(w * 2.0, level=outer)), 2 * _np(t_outer), rtol=1e-14)


def test_no_stale_tangent_after_an_in_place_op_in_an_exited_level():
    a = _t([1.0, 2.0], requires_grad=True)
    with fwAD.dual_level():
        b = fwAD.make_dual(a * 1.0, _t([1.0, 1.0]))
        b.mul_(b * 1.0)  # (not b.mul_(b): torch saves the operand it overwrites, and backward then raises)
    with fwAD.dual_level():
        (g,) = ad.autograd.grad(b.sum(), a, create_graph=True)
        np.testing.assert_allclose(_np(g), [2.0, 4.0])
        assert _tangent(g) is None  # ad: [2., 2.], the tangent of the exited level


# --- JVPs against analytic derivatives ----------------------------------------------------------------------


@BOTH_PATHS
@pytest.mark.parametrize(
    "name, fn, derivative",
    [
        ("sin", lambda x: x.sin(), np.cos),
        ("exp", lambda x: x.exp(), np.exp),
        ("tanh", lambda x: x.tanh(), lambda x: 1.0 - np.tanh(x) ** 2),
        ("ad.sin", lambda x: ad.sin(x), np.cos),
    ],
)
def test_unary_jvp(name, fn, derivative, requires_grad):
    x = RNG.uniform(-2, 2, (3, 4))
    v = RNG.standard_normal((3, 4))
    primal, tangent = _jvp(fn, [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(primal, _np(fn(_t(x))), rtol=1e-15)
    np.testing.assert_allclose(tangent, derivative(x) * v, rtol=1e-13, atol=1e-15)


BINARY = [
    ("add", lambda x, y: x + y, lambda x, y, v, w: v + w),
    ("sub", lambda x, y: x - y, lambda x, y, v, w: v - w),
    ("mul", lambda x, y: x * y, lambda x, y, v, w: v * y + x * w),
    ("div", lambda x, y: x / y, lambda x, y, v, w: v / y - x * w / y**2),
]


@BOTH_PATHS
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3))])
@pytest.mark.parametrize("name, fn, jvp", BINARY, ids=[b[0] for b in BINARY])
def test_binary_jvp_with_broadcasting(name, fn, jvp, shapes, requires_grad):
    x = RNG.uniform(0.5, 2.0, shapes[0])
    y = RNG.uniform(0.5, 2.0, shapes[1])
    v = RNG.standard_normal(shapes[0])
    w = RNG.standard_normal(shapes[1])
    out_shape = np.broadcast_shapes(*shapes)
    primal, tangent = _jvp(fn, [x, y], [v, w], requires_grad=requires_grad)
    assert tangent.shape == out_shape
    np.testing.assert_allclose(primal, fn(x, y), rtol=1e-15)
    np.testing.assert_allclose(tangent, jvp(x, y, v, w), rtol=1e-13, atol=1e-14)
    # one operand dual, the other constant: the constant's tangent counts as zero
    with fwAD.dual_level():
        out = fn(fwAD.make_dual(_t(x, requires_grad=requires_grad), _t(v)), _t(y))
        np.testing.assert_allclose(_np(_tangent(out)), jvp(x, y, v, np.zeros_like(w)), rtol=1e-13, atol=1e-14)
        out = fn(_t(x), fwAD.make_dual(_t(y, requires_grad=requires_grad), _t(w)))
        np.testing.assert_allclose(_np(_tangent(out)), jvp(x, y, np.zeros_like(v), w), rtol=1e-13, atol=1e-14)


@BOTH_PATHS
def test_scalar_operands_jvp(requires_grad):
    x = RNG.uniform(0.5, 2.0, (5,))
    v = RNG.standard_normal(5)
    _, tangent = _jvp(lambda a: 3.0 * a - 1.0 + 2.0 / a + a**3 + 2.0**a, [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, (3.0 - 2.0 / x**2 + 3 * x**2 + np.log(2.0) * 2.0**x) * v, rtol=1e-13)


@BOTH_PATHS
def test_matmul_jvp(requires_grad):
    a = RNG.standard_normal((5, 3))
    b = RNG.standard_normal((3, 2))
    x = RNG.standard_normal(3)
    v = RNG.standard_normal(3)
    _, tangent = _jvp(lambda x_: _t(a) @ x_, [x], [v], requires_grad=requires_grad)
    # (atol: primal and tangent may come from one BLAS call, [x, v] at once, which sums in another order)
    np.testing.assert_allclose(tangent, a @ v, rtol=1e-13, atol=1e-14)  # J v = A v
    da = RNG.standard_normal(a.shape)
    db = RNG.standard_normal(b.shape)
    _, tangent = _jvp(lambda p, q: p @ q, [a, b], [da, db], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, da @ b + a @ db, rtol=1e-13, atol=1e-14)
    _, tangent = _jvp(lambda p, q: ad.mm(p, q), [a, b], [da, db], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, da @ b + a @ db, rtol=1e-13, atol=1e-14)
    for xs, ts in (((4, 3), (3, 2)), ((3,), (3, 2)), ((4, 3), (3,)), ((3,), (3,))):  # fused: one operand dual
        p0, q0, t0 = RNG.standard_normal(xs), RNG.standard_normal(ts), RNG.standard_normal(xs)
        primal, tangent = _jvp(lambda p, q0=q0: p @ _t(q0), [p0], [t0], requires_grad=requires_grad)
        np.testing.assert_allclose(primal, p0 @ q0, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(tangent, t0 @ q0, rtol=1e-13, atol=1e-14)
        assert primal.shape == tangent.shape == np.shape(p0 @ q0)
        t1 = RNG.standard_normal(ts)
        primal, tangent = _jvp(lambda q, p0=p0: _t(p0) @ q, [q0], [t1], requires_grad=requires_grad)
        np.testing.assert_allclose(primal, p0 @ q0, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(tangent, p0 @ t1, rtol=1e-13, atol=1e-14)


@BOTH_PATHS
def test_reduction_jvp(requires_grad):
    x = RNG.standard_normal((2, 3, 4))
    v = RNG.standard_normal((2, 3, 4))
    cases = [
        (lambda t: t.sum(), lambda u: u.sum()),
        (lambda t: t.sum(1), lambda u: u.sum(1)),
        (lambda t: t.sum((0, 2), keepdim=True), lambda u: u.sum((0, 2), keepdims=True)),
        (lambda t: t.mean(), lambda u: u.mean()),
        (lambda t: t.mean(-1), lambda u: u.mean(-1)),
        (lambda t: t.mean(0, keepdim=True), lambda u: u.mean(0, keepdims=True)),
    ]
    for fn, linear in cases:
        primal, tangent = _jvp(fn, [x], [v], requires_grad=requires_grad)
        np.testing.assert_allclose(primal, linear(x), rtol=1e-14)
        assert tangent.shape == linear(v).shape
        np.testing.assert_allclose(tangent, linear(v), rtol=1e-13, atol=1e-15)


@BOTH_PATHS
def test_indexing_jvp(requires_grad):
    x = RNG.standard_normal((4, 3))
    v = RNG.standard_normal((4, 3))
    cases = [
        lambda t: t[1],
        lambda t: t[1:, ::-2],
        lambda t: t[..., -1],
        lambda t: t[None, 2, 1:],
        lambda t: t[[0, 2, 2, 1]],
        lambda t: t[[3, 0], [1, 1]],
    ]
    for key_fn in cases:
        _, tangent = _jvp(key_fn, [x], [v], requires_grad=requires_grad)
        np.testing.assert_allclose(tangent, key_fn(v), rtol=0)
    mask = x > 0
    _, tangent = _jvp(lambda t: t[ad.tensor(mask)], [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, v[mask], rtol=0)
    _, tangent = _jvp(lambda t: t.index_select(0, ad.tensor([2, 0, 2])), [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, v[[2, 0, 2]], rtol=0)
    idx = np.array([[0, 2], [1, 1], [2, 0], [0, 0]])
    _, tangent = _jvp(lambda t: t.gather(1, ad.tensor(idx)), [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, np.take_along_axis(v, idx, 1), rtol=0)


@BOTH_PATHS
def test_cat_and_stack_jvp(requires_grad):
    x = RNG.standard_normal((2, 3))
    y = RNG.standard_normal((2, 3))
    v = RNG.standard_normal((2, 3))
    w = RNG.standard_normal((2, 3))
    _, tangent = _jvp(lambda a, b: ad.cat([a, b, a], 1), [x, y], [v, w], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, np.concatenate([v, w, v], 1), rtol=0)
    _, tangent = _jvp(lambda a, b: ad.stack([a, b]), [x, y], [v, w], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, np.stack([v, w]), rtol=0)
    # an operand without tangent contributes zeros
    with fwAD.dual_level():
        a = fwAD.make_dual(_t(x, requires_grad=requires_grad), _t(v))
        np.testing.assert_allclose(_np(_tangent(ad.cat([_t(y), a]))), np.concatenate([np.zeros((2, 3)), v]))
        np.testing.assert_allclose(_np(_tangent(ad.stack([a, _t(y)], 1))), np.stack([v, np.zeros((2, 3))], 1))


@BOTH_PATHS
def test_softmax_jvp(requires_grad):
    x = RNG.standard_normal((3, 5))
    v = RNG.standard_normal((3, 5))
    s = np.exp(x - x.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    primal, tangent = _jvp(lambda t: ad.softmax(t, 1), [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(primal, s, rtol=1e-14)
    np.testing.assert_allclose(tangent, s * (v - (s * v).sum(1, keepdims=True)), rtol=1e-12, atol=1e-15)
    s0 = np.exp(x) / np.exp(x).sum(0, keepdims=True)
    _, tangent = _jvp(lambda t: t.softmax(0), [x], [v], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, s0 * (v - (s0 * v).sum(0, keepdims=True)), rtol=1e-12, atol=1e-15)


@BOTH_PATHS
def test_where_and_maximum_jvp(requires_grad):
    x = RNG.standard_normal((3, 4))
    y = RNG.standard_normal((4,))
    v = RNG.standard_normal((3, 4))
    w = RNG.standard_normal((4,))
    cond = ad.tensor(x > 0.2)
    _, tangent = _jvp(lambda a, b: ad.where(cond, a, b), [x, y], [v, w], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, np.where(x > 0.2, v, w), rtol=0)
    _, tangent = _jvp(lambda a, b: ad.where(a > 0, a * b, 0.5), [x, y], [v, w], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, np.where(x > 0, v * y + x * w, 0.0), rtol=1e-14)
    # torch's forward rule for maximum / minimum, ``w + (v - w) * m`` (bit for bit: tests/test_selection_grads.py)
    _, tangent = _jvp(lambda a, b: ad.maximum(a, b), [x, y], [v, w], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, w + (v - w) * (x > y), rtol=0)
    _, tangent = _jvp(lambda a, b: ad.minimum(a, b), [x, y], [v, w], requires_grad=requires_grad)
    np.testing.assert_allclose(tangent, w + (v - w) * (x < y), rtol=0)


def test_ops_on_tensors_without_tangent_give_none_inside_a_level():
    with fwAD.dual_level():
        x = fwAD.make_dual(_t([1.0, 2.0]), _t([1.0, 1.0]))
        c = _t([3.0, 4.0])
        assert _tangent(c.sin() * c + c.sum()) is None
        assert _tangent(x.detach() * 2.0) is None
        assert _tangent(x * 2.0) is not None


# --- nested levels: higher derivatives ----------------------------------------------------------------------


def _sin_exp(x):
    return x.sin() * x.exp()


SCALAR_FUNCTIONS = [
    # f, f', f'', f''' (numpy)
    (
        "sin*exp",
        _sin_exp,
        lambda x: np.exp(x) * (np.sin(x) + np.cos(x)),
        lambda x: 2 * np.exp(x) * np.cos(x),
        lambda x: 2 * np.exp(x) * (np.cos(x) - np.sin(x)),
    ),
    ("x**4", lambda x: x**4, lambda x: 4 * x**3, lambda x: 12 * x**2, lambda x: 24 * x),
    ("x*x*x*x", lambda x: x * x * x * x, lambda x: 4 * x**3, lambda x: 12 * x**2, lambda x: 24 * x),
    (
        "tanh",
        lambda x: x.tanh(),
        lambda x: 1 - np.tanh(x) ** 2,
        lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
        lambda x: -2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2),
    ),
    ("1/x", lambda x: 1.0 / x, lambda x: -(x**-2), lambda x: 2 * x**-3, lambda x: -6 * x**-4),
]
SCALAR_IDS = [f[0] for f in SCALAR_FUNCTIONS]
POINTS = np.array([0.7, -0.4, 1.3])


@pytest.mark.parametrize("name, f, d1, d2, d3", SCALAR_FUNCTIONS, ids=SCALAR_IDS)
def test_second_derivative_by_two_levels(name, f, d1, d2, d3):
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        x = fwAD.make_dual(fwAD.make_dual(_t(POINTS), _t(np.ones(3)), level=outer), _t(np.ones(3)), level=inner)
        y = f(x)
        np.testing.assert_allclose(_np(y), _np(f(_t(POINTS))), rtol=1e-15)
        first_inner = _tangent(y, level=inner)
        first_outer = _tangent(y, level=outer)
        np.testing.assert_allclose(_np(first_inner), d1(POINTS), rtol=1e-10)
        np.testing.assert_allclose(_np(first_outer), d1(POINTS), rtol=1e-10)
        # the first derivative of each level is dual at the other level: its tangent is f''
        np.testing.assert_allclose(_np(_tangent(first_inner, level=outer)), d2(POINTS), rtol=1e-10)
        np.testing.assert_allclose(_np(_tangent(first_outer, level=inner)), d2(POINTS), rtol=1e-10)
        # the primal at one level keeps the tangent of the other
        primal_inner = fwAD.unpack_dual(y, level=inner).primal
        np.testing.assert_allclose(_np(_tangent(primal_inner, level=outer)), d1(POINTS), rtol=1e-10)


@pytest.mark.parametrize("name, f, d1, d2, d3", SCALAR_FUNCTIONS, ids=SCALAR_IDS)
def test_third_derivative_by_three_levels(name, f, d1, d2, d3):
    with fwAD.dual_level() as l0, fwAD.dual_level() as l1, fwAD.dual_level() as l2:
        x = _t(POINTS)
        for level in (l0, l1, l2):
            x = fwAD.make_dual(x, _t(np.ones(3)), level=level)
        y = f(x)
        for order in [(l2, l1, l0), (l0, l1, l2), (l1, l0, l2), (l2, l0, l1)]:
            t = y
            for k, level in enumerate(order):
                t = _tangent(t, level=level)
                np.testing.assert_allclose(_np(t), (d1, d2, d3)[k](POINTS), rtol=1e-10, err_msg=str(order))


def test_second_derivative_with_different_directions():
    """Levels 0 and 1 with different tangents on a vector function: w^T H v of sum(tanh(A x))."""
    a = RNG.standard_normal((4, 3))
    x0 = RNG.standard_normal(3)
    v = RNG.standard_normal(3)
    w = RNG.standard_normal(3)
    th = np.tanh(a @ x0)
    hessian = a.T @ np.diag(-2 * th * (1 - th**2)) @ a
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        x = fwAD.make_dual(fwAD.make_dual(_t(x0), _t(v), level=outer), _t(w), level=inner)
        y = (_t(a) @ x).tanh().sum()
        d_outer = _tangent(y, level=outer)
        np.testing.assert_allclose(_np(d_outer), a.T @ (1 - th**2) @ v, rtol=1e-12)
        np.testing.assert_allclose(_np(_tangent(d_outer, level=inner)), w @ hessian @ v, rtol=1e-10)


def test_mixed_partial_with_one_variable_per_level():
    """f(x, y) = x * y * sin(x): x dual at level 0, y at level 1; d2f/dxdy = sin(x) + x cos(x)."""
    x0 = np.array([0.7, -1.1])
    y0 = np.array([1.3, 0.4])
    with fwAD.dual_level() as lx, fwAD.dual_level() as ly:
        x = fwAD.make_dual(_t(x0), _t(np.ones(2)), level=lx)
        y = fwAD.make_dual(_t(y0), _t(np.ones(2)), level=ly)
        f = x * y * x.sin()
        df_dx = _tangent(f, level=lx)
        df_dy = _tangent(f, level=ly)
        np.testing.assert_allclose(_np(df_dx), y0 * (np.sin(x0) + x0 * np.cos(x0)), rtol=1e-12)
        np.testing.assert_allclose(_np(df_dy), x0 * np.sin(x0), rtol=1e-12)
        mixed = np.sin(x0) + x0 * np.cos(x0)
        np.testing.assert_allclose(_np(_tangent(df_dx, level=ly)), mixed, rtol=1e-10)
        np.testing.assert_allclose(_np(_tangent(df_dy, level=lx)), mixed, rtol=1e-10)
        # x has no tangent at level ly, y none at level lx: those second derivatives do not exist
        assert _tangent(x, level=ly) is None
        assert _tangent(_tangent(x * x, level=lx), level=ly) is None


def test_nested_levels_with_inputs_that_require_grad():
    """The same second derivative when the input also records for reverse mode (the rule path)."""
    x0 = np.array([0.7, -0.4])
    leaf = _t(x0, requires_grad=True)
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        x = fwAD.make_dual(fwAD.make_dual(leaf, _t(np.ones(2)), level=outer), _t(np.ones(2)), level=inner)
        y = _sin_exp(x)
        d2 = _tangent(_tangent(y, level=inner), level=outer)
        np.testing.assert_allclose(_np(d2), 2 * np.exp(x0) * np.cos(x0), rtol=1e-10)
        # and reverse over that: d/dx f''(x) = f'''(x)
        (g,) = ad.autograd.grad(d2.sum(), leaf)
        np.testing.assert_allclose(_np(g), 2 * np.exp(x0) * (np.cos(x0) - np.sin(x0)), rtol=1e-10)


# --- composition with reverse mode --------------------------------------------------------------------------


def test_reverse_over_forward():
    x0 = RNG.uniform(-2, 2, 5)
    v0 = RNG.standard_normal(5)
    x = _t(x0, requires_grad=True)
    v = _t(v0, requires_grad=True)
    with fwAD.dual_level():
        tangent = _tangent(fwAD.make_dual(x, v).sin())
        np.testing.assert_allclose(_np(tangent), np.cos(x0) * v0, rtol=1e-14)
        assert tangent.requires_grad
        gx, gv = ad.autograd.grad(tangent.sum(), [x, v])
    np.testing.assert_allclose(_np(gx), -np.sin(x0) * v0, rtol=1e-13)  # d/dx (cos(x) v)
    np.testing.assert_allclose(_np(gv), np.cos(x0), rtol=1e-13)  # d/dv (cos(x) v)


def test_reverse_over_forward_with_a_constant_tangent():
    x0 = RNG.uniform(-2, 2, 5)
    v0 = RNG.standard_normal(5)
    x = _t(x0, requires_grad=True)
    with fwAD.dual_level():
        tangent = _tangent(fwAD.make_dual(x, _t(v0)).sin())
        (gx,) = ad.autograd.grad(tangent, x, grad_outputs=_t(np.ones(5)))
    np.testing.assert_allclose(_np(gx), -np.sin(x0) * v0, rtol=1e-13)


def _tanh_hessian_case():
    a = RNG.standard_normal((4, 3))
    x0 = RNG.standard_normal(3)
    v0 = RNG.standard_normal(3)
    th = np.tanh(a @ x0)
    grad = a.T @ (1 - th**2)
    hv = a.T @ np.diag(-2 * th * (1 - th**2)) @ a @ v0
    return a, x0, v0, grad, hv


def test_forward_over_reverse_hessian_vector_product():
    a, x0, v0, grad, hv = _tanh_hessian_case()
    with fwAD.dual_level():
        x = fwAD.make_dual(_t(x0, requires_grad=True), _t(v0))
        (g,) = ad.autograd.grad((_t(a) @ x).tanh().sum(), x, create_graph=True)
        primal, tangent = fwAD.unpack_dual(g)
        np.testing.assert_allclose(_np(primal), grad, rtol=1e-12)
        np.testing.assert_allclose(_np(tangent), hv, rtol=1e-10)


def test_forward_over_reverse_through_broadcasting():
    cases = [
        lambda x: (x * x.sum()).sum(),  # (sum x)^2: H = 2
        lambda x: (x.unsqueeze(0) * x.unsqueeze(1)).sum(),  # (sum x)^2
        lambda x: (ad.ones(3, 2) * x * x).sum() / 3.0,  # sum x^2: H = 2 I
    ]
    expected = [[2.0, 2.0], [2.0, 2.0], [2.0, 0.0]]
    for fn, hv in zip(cases, expected):
        with fwAD.dual_level():
            x = fwAD.make_dual(_t([1.0, 2.0], requires_grad=True), _t([1.0, 0.0]))
            (g,) = ad.autograd.grad(fn(x), x, create_graph=True)
            tangent = _tangent(g)
            assert tangent is not None
            np.testing.assert_allclose(_np(tangent), hv, rtol=1e-12)


def test_forward_over_reverse_without_create_graph():
    a, x0, v0, grad, hv = _tanh_hessian_case()
    with fwAD.dual_level():
        x = fwAD.make_dual(_t(x0, requires_grad=True), _t(v0))
        (g,) = ad.autograd.grad((_t(a) @ x).tanh().sum(), x)
        np.testing.assert_allclose(_np(g), grad, rtol=1e-12)
        tangent = _tangent(g)
        assert tangent is not None
        np.testing.assert_allclose(_np(tangent), hv, rtol=1e-10)


def test_make_dual_is_differentiable_with_respect_to_its_primal():
    x0 = RNG.uniform(-2, 2, 4)
    x = _t(x0, requires_grad=True)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, _t(RNG.standard_normal(4)))
        assert d.requires_grad
        assert not d.is_leaf
        (d.sin() * d).sum().backward()
        np.testing.assert_allclose(_np(x.grad), np.cos(x0) * x0 + np.sin(x0), rtol=1e-13)
        # and through the primal of unpack_dual
        x.grad = None
        primal = fwAD.unpack_dual(d).primal
        assert primal.requires_grad
        (primal * primal).sum().backward()
        np.testing.assert_allclose(_np(x.grad), 2 * x0, rtol=1e-14)
        # a primal that does not require grad gives a dual tensor that does not either
        assert not fwAD.make_dual(_t(x0), _t(x0)).requires_grad


def test_forward_mode_under_no_grad():
    x0 = RNG.uniform(-2, 2, 4)
    v0 = RNG.standard_normal(4)
    with ad.no_grad(), fwAD.dual_level():
        x = fwAD.make_dual(_t(x0, requires_grad=True), _t(v0, requires_grad=True))
        assert x.requires_grad and x.is_leaf  # a view made under no_grad of a tensor that requires grad (torch 2.13)
        y = x.exp() * x
        assert not y.requires_grad
        tangent = _tangent(y)
        assert not tangent.requires_grad
        np.testing.assert_allclose(_np(tangent), np.exp(x0) * (x0 + 1) * v0, rtol=1e-13)


def test_detach_drops_tangents():
    with fwAD.dual_level() as outer, fwAD.dual_level():
        x = fwAD.make_dual(_t([1.0, 2.0]), _t([3.0, 4.0]), level=outer)
        x = fwAD.make_dual(x, _t([5.0, 6.0]))
        d = x.detach()
        assert _tangent(d) is None
        assert _tangent(d, level=outer) is None
        assert _tangent(d.sin()) is None
        assert _np(d).tolist() == [1.0, 2.0]
        assert _tangent(x) is not None  # detach leaves the original alone


def test_recorded_in_place_op_on_a_dual_tensor():
    x0 = np.array([0.3, 0.5, -1.0])
    v0 = np.array([1.0, 2.0, 3.0])
    with fwAD.dual_level():
        b = fwAD.make_dual(_t(x0, requires_grad=True), _t(v0)) * 1.0
        b.mul_(2.0)
        np.testing.assert_allclose(_np(_tangent(b)), 2 * v0)
        b.add_(b)
        np.testing.assert_allclose(_np(_tangent(b)), 4 * v0)


IN_PLACE = [
    ("mul_", lambda x: x.mul_(2.0), lambda v: 2 * v),
    ("add_ dual into plain", None, lambda v: v),
    ("setitem", lambda x: x.__setitem__(0, 5.0), lambda v: np.array([0.0, *v[1:]])),
    ("zero_", lambda x: x.zero_(), np.zeros_like),
    ("clamp_", lambda x: x.clamp_(0.0, 0.4), lambda v: np.array([v[0], 0.0, 0.0])),
]


@pytest.mark.parametrize("name, op, expected", IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_in_place_op_updates_the_tangent(name, op, expected):
    x0 = np.array([0.3, 0.5, -1.0])
    v0 = np.array([1.0, 2.0, 3.0])
    with fwAD.dual_level():
        x = fwAD.make_dual(_t(x0), _t(v0))
        if op is None:
            target = _t(x0)
            target.add_(x)
        else:
            target = x
            op(x)
        tangent = _tangent(target)
        assert tangent is not None
        np.testing.assert_allclose(_np(tangent), expected(v0))


# --- forward against reverse on compositions ----------------------------------------------------------------

COMPOSITIONS = [
    ("mlp", lambda x, w: (x @ w).tanh() @ w.T + x, [(4, 3), (3, 5)]),
    ("softmax_ce", lambda x, w: ad.nn.functional.cross_entropy(x @ w, ad.tensor([0, 4, 2, 1])), [(4, 3), (3, 5)]),
    ("norm_div", lambda x, w: x / (x * x).sum(1, keepdim=True).sqrt() * w.sum(), [(4, 3), (3, 5)]),
    ("where_max", lambda x, w: ad.where(x > 0, x.exp(), x.sigmoid()) * ad.maximum(x, w[:, 0]), [(4, 3), (3, 5)]),
    ("reduce_index", lambda x, w: (x[[0, 2, 3]] ** 2).mean(0) * w[:, 1:4].prod(1) - x.amax(0), [(4, 3), (3, 5)]),
    (
        "cat_stack",
        lambda x, w: ad.stack([ad.cat([x, x.sin()], 1), ad.cat([x.cos(), x * x], 1)]).logsumexp(0) * w.var(1).sum(),
        [(4, 3), (3, 5)],
    ),
    (
        "transpose_reshape",
        lambda x, w: (x.T.reshape(2, 6) @ x.reshape(6, 2)).log_softmax(1) + w.std(),
        [(4, 3), (3, 5)],
    ),
]
COMPOSITION_IDS = [c[0] for c in COMPOSITIONS]


def _composition_inputs(shapes, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    ws = [rng.standard_normal(s) for s in shapes]
    return xs, vs, ws


@BOTH_PATHS
@pytest.mark.parametrize("name, fn, shapes", COMPOSITIONS, ids=COMPOSITION_IDS)
def test_forward_agrees_with_reverse(name, fn, shapes, requires_grad):
    """``u . (J v)`` by forward mode equals ``(J^T u) . v`` by reverse mode."""
    xs, vs, _ = _composition_inputs(shapes, seed=len(name))
    primal, jv = _jvp(fn, xs, vs, requires_grad=requires_grad)
    u = np.random.default_rng(1).standard_normal(primal.shape)
    leaves = [_t(x, requires_grad=True) for x in xs]
    out = fn(*leaves)
    np.testing.assert_allclose(_np(out), primal, rtol=1e-14)
    grads = ad.autograd.grad(out, leaves, grad_outputs=_t(u))
    reverse = sum(float((_np(g) * v).sum()) for g, v in zip(grads, vs))
    np.testing.assert_allclose(float((jv * u).sum()), reverse, rtol=1e-11)


def _weighted(out, u):
    return (out * _t(u)).sum()


@pytest.mark.parametrize("name, fn, shapes", COMPOSITIONS, ids=COMPOSITION_IDS)
def test_second_order_forward_over_forward_and_reverse_over_forward_agree_with_reverse_over_reverse(name, fn, shapes):
    """``w . (H v)`` of ``u . fn``: reverse over reverse, forward over forward, reverse over forward."""
    xs, vs, ws = _composition_inputs(shapes, seed=len(name) + 1)
    u = np.random.default_rng(2).standard_normal(_np(fn(*[_t(x) for x in xs])).shape)

    leaves = [_t(x, requires_grad=True) for x in xs]
    grads = ad.autograd.grad(_weighted(fn(*leaves), u), leaves, create_graph=True)
    gv = sum((g * _t(v)).sum() for g, v in zip(grads, vs))
    hv = ad.autograd.grad(gv, leaves)
    reference = sum(float((_np(h) * w).sum()) for h, w in zip(hv, ws))

    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        duals = [
            fwAD.make_dual(fwAD.make_dual(_t(x), _t(v), level=outer), _t(w), level=inner) for x, v, w in zip(xs, vs, ws)
        ]
        d1 = _tangent(_weighted(fn(*duals), u), level=outer)
        forward_forward = float(_np(_tangent(d1, level=inner)))
    np.testing.assert_allclose(forward_forward, reference, rtol=1e-10)

    leaves = [_t(x, requires_grad=True) for x in xs]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(leaf, _t(v)) for leaf, v in zip(leaves, vs)]
        jv = _tangent(_weighted(fn(*duals), u))
        hv = ad.autograd.grad(jv, leaves)
    reverse_forward = sum(float((_np(h) * w).sum()) for h, w in zip(hv, ws))
    np.testing.assert_allclose(reverse_forward, reference, rtol=1e-10)


@pytest.mark.parametrize("name, fn, shapes", COMPOSITIONS)
def test_second_order_forward_over_reverse_agrees_with_reverse_over_reverse(name, fn, shapes):
    """Forward over reverse (H v by a JVP of the gradient) against reverse over reverse."""
    xs, vs, ws = _composition_inputs(shapes, seed=len(name) + 2)
    u = np.random.default_rng(3).standard_normal(_np(fn(*[_t(x) for x in xs])).shape)
    leaves = [_t(x, requires_grad=True) for x in xs]
    grads = ad.autograd.grad(_weighted(fn(*leaves), u), leaves, create_graph=True)
    hv = ad.autograd.grad(sum((g * _t(v)).sum() for g, v in zip(grads, vs)), leaves)
    with fwAD.dual_level():
        duals = [fwAD.make_dual(_t(x, requires_grad=True), _t(v)) for x, v in zip(xs, vs)]
        grads = ad.autograd.grad(_weighted(fn(*duals), u), duals, create_graph=True)
        for g, h in zip(grads, hv):
            np.testing.assert_allclose(_np(_tangent(g)), _np(h), rtol=1e-10, atol=1e-12)


# --- float32 ------------------------------------------------------------------------------------------------


@BOTH_PATHS
def test_float32_graph_has_float32_tangents(requires_grad):
    rng = np.random.default_rng(5)
    x0 = rng.uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    v0 = rng.standard_normal((3, 4)).astype(np.float32)
    a = ad.tensor(rng.standard_normal((4, 2)).astype(np.float32))
    fns = [
        lambda x: x.sin(),
        lambda x: x * x[0] / (x + 1.0),
        lambda x: 2.0 * x - 1.0,
        lambda x: x @ a,
        lambda x: x.sum(1),
        lambda x: x.mean(),
        lambda x: ad.softmax(x, 1),
        lambda x: ad.where(x > 1.0, x, x.exp()),
        lambda x: ad.maximum(x, x.T.mean(1)),
        lambda x: ad.cat([x, x.tanh()])[[0, 4]],
        lambda x: x.var(0) + x.norm(),
    ]
    with fwAD.dual_level():
        x = fwAD.make_dual(ad.tensor(x0, requires_grad=requires_grad), ad.tensor(v0))
        for k, fn in enumerate(fns):
            primal, tangent = fwAD.unpack_dual(fn(x))
            assert primal.dtype == ad.float32, k
            assert tangent is not None and tangent.dtype == ad.float32, k
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        x = fwAD.make_dual(ad.tensor(x0, requires_grad=requires_grad), ad.tensor(v0), level=outer)
        x = fwAD.make_dual(x, ad.tensor(v0), level=inner)
        y = (x.sin() * x).sum()
        second = _tangent(_tangent(y, level=inner), level=outer)
        assert second.dtype == ad.float32
        x64 = x0.astype(np.float64)
        np.testing.assert_allclose(float(second), ((2 * np.cos(x64) - x64 * np.sin(x64)) * v0 * v0).sum(), rtol=1e-4)
    _, t64 = _jvp(lambda t: (t.exp() * t).sum(), [x0], [v0])  # _jvp builds float64 tensors
    with fwAD.dual_level():
        x = fwAD.make_dual(ad.tensor(x0), ad.tensor(v0))
        tangent = _tangent((x.exp() * x).sum())
        assert tangent.dtype == ad.float32
        np.testing.assert_allclose(float(tangent), float(t64), rtol=1e-5)


# --- memory -------------------------------------------------------------------------------------------------


def test_memory_stays_flat_in_a_loop_inside_one_level():
    with fwAD.dual_level():
        x = fwAD.make_dual(_t([1.0, 2.0]), _t([1.0, 1.0]))
        for _ in range(200):  # warm up
            x.sin()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(20000):
                x.sin()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 500_000, f"{grown} bytes kept after 20000 ops whose results are all dead"


def test_write_under_no_grad_into_the_dual_of_a_non_leaf_keeps_its_tangent():
    """make_dual of a non-leaf is a view of it; a write under no_grad regenerates the views of the written storage
    for reverse mode, and the dual keeps its own tangent (forward mode ignores no_grad), as torch's."""
    t = ad.tensor([1.0, 2.0], requires_grad=True)
    with fwAD.dual_level():
        x = fwAD.make_dual(t.clone(), ad.tensor([1.0, 1.0]))
        with ad.no_grad():
            x.mul_(1.5)
        np.testing.assert_array_equal(fwAD.unpack_dual(x).tangent.numpy(), [1.5, 1.5])
        y = x[1:]
        with ad.no_grad():
            y.mul_(2.0)
        np.testing.assert_array_equal(fwAD.unpack_dual(x).tangent.numpy(), [1.5, 3.0])
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), [3.0])


@pytest.mark.parametrize("name", ["var", "std", "var_mean", "std_mean"])
def test_variance_tangent_with_an_infinite_entry_matches_torch(name):
    """torch's forward rule for var, ``2 sum((x - mean) t) / (n - correction)``: an infinite tangent entry gives
    +-inf (the composite's ``t - mean(t)`` gave NaN), and a huge one does not overflow to inf; nested levels (the
    second derivative) and forward over reverse (the Hessian-vector product) keep the composite's exact rules."""
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 2.0, 4.0], [3.0, -1.0, 0.5]])
    inf = np.inf
    tangents = [[[inf, 0, 0], [1.0, inf, -inf]], [[1e308, -1e308, 0], [0.5, 2.0, -1.0]]]
    for t in map(np.array, tangents):
        for kwargs in ({}, {"dim": 1, "keepdim": True}, {"dim": 0, "correction": 0}):
            with torch.autograd.forward_ad.dual_level():
                dual = torch.autograd.forward_ad.make_dual(torch.tensor(x), torch.tensor(t))
                out = getattr(torch, name)(dual, **kwargs)
                want = [torch.autograd.forward_ad.unpack_dual(o).tangent.numpy() for o in _tuple(out)]
            with fwAD.dual_level():
                out = getattr(ad, name)(fwAD.make_dual(ad.tensor(x), ad.tensor(t)), **kwargs)
                got = [fwAD.unpack_dual(o).tangent.numpy() for o in _tuple(out)]
            if np.abs(t).max() == 1e308:  # (the mean's tangent, 1e308 - 1e308 + small terms, hangs on the sum's order)
                got, want = got[:1], want[:1]
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-13, err_msg=f"{t} {kwargs}")
    u, v = np.array([0.3, -0.2, 0.7]), np.array([1.0, 2.0, -0.5])
    centering = np.eye(3) - 1.0 / 3  # var's Hessian: 2 (I - 11^T / n) / (n - 1)
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:  # forward over forward: u^T H v
        d = fwAD.make_dual(fwAD.make_dual(ad.tensor(x[0]), ad.tensor(u), level=outer), ad.tensor(v), level=inner)
        first = fwAD.unpack_dual(ad.var(d), level=inner).tangent
        second = fwAD.unpack_dual(first, level=outer).tangent
    assert np.isclose(float(second), u @ centering @ v)
    leaf = ad.tensor(x[0], requires_grad=True)
    with fwAD.dual_level():  # forward over reverse: H v
        (g,) = ad.autograd.grad(ad.var(fwAD.make_dual(leaf, ad.tensor(v))), leaf)
        np.testing.assert_allclose(fwAD.unpack_dual(g).tangent.numpy(), centering @ v, rtol=1e-13)


def _tuple(out):
    return out if isinstance(out, tuple) else (out,)
