"""ad.linalg and the products: API semantics against torch: error classes and messages, ``out=``, Tensor
methods and in-place variants, broadcasting of batched solves, and the custom-Function machinery the
LAPACK rows rely on (values and derivatives: tests/test_linalg.py).
"""

import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

L = ad.linalg
RNG = np.random.default_rng(4321)


def _rand(*shape):
    return RNG.standard_normal(shape)


def _pair(a, rg=True):
    return ad.tensor(a, requires_grad=rg), torch.tensor(a, requires_grad=rg)


def _close(x, y, tol=1e-9):
    xa = x.detach().numpy() if isinstance(x, ad.Tensor) else np.asarray(x)
    ya = y.detach().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    assert xa.shape == ya.shape, (xa.shape, ya.shape)
    np.testing.assert_allclose(xa, ya, rtol=tol, atol=tol)


def _check_vs_torch(fa, ft, *arrays, tol=1e-9):
    pa = [_pair(a) for a in arrays]
    out_a = fa(*[p[0] for p in pa])
    out_t = ft(*[p[1] for p in pa])
    _close(out_a, out_t, tol)
    w = _rand(*out_t.shape)
    ga = ad.autograd.grad((out_a * ad.tensor(w)).sum(), [p[0] for p in pa])
    gt = torch.autograd.grad((out_t * torch.tensor(w)).sum(), [p[1] for p in pa])
    for x, y in zip(ga, gt):
        _close(x, y, tol)


# ---------------------------------------------------------------------------------------------------------
# errors


def _same_error(fa, ft, cls=RuntimeError, torch_cls=RuntimeError):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(cls) as ea:
        fa()
    assert isinstance(et.value, torch_cls)
    assert str(ea.value) == str(et.value), (str(ea.value), str(et.value))


@pytest.mark.parametrize(
    "name,fa,ft",
    [
        (
            "inv singular",
            lambda: L.inv(ad.zeros(3, 3, dtype=ad.float64)),
            lambda: torch.linalg.inv(torch.zeros(3, 3, dtype=torch.float64)),
        ),
        (
            "inv singular batch",
            lambda: L.inv(ad.tensor(np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]]))),
            lambda: torch.linalg.inv(torch.tensor(np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]]))),
        ),
        (
            "solve singular",
            lambda: L.solve(ad.zeros(3, 3, dtype=ad.float64), ad.ones(3, dtype=ad.float64)),
            lambda: torch.linalg.solve(torch.zeros(3, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)),
        ),
        (
            "cholesky not pd",
            lambda: L.cholesky(ad.tensor(np.diag([1.0, -1.0, 1.0]))),
            lambda: torch.linalg.cholesky(torch.tensor(np.diag([1.0, -1.0, 1.0]))),
        ),
        (
            "cholesky not pd batch",
            lambda: L.cholesky(ad.tensor(np.stack([np.eye(2), -np.eye(2)]))),
            lambda: torch.linalg.cholesky(torch.tensor(np.stack([np.eye(2), -np.eye(2)]))),
        ),
    ],
)
def test_linalg_errors_are_linalgerror_with_torchs_message(name, fa, ft):
    _same_error(fa, ft, L.LinAlgError, torch.linalg.LinAlgError)
    assert issubclass(L.LinAlgError, RuntimeError)


@pytest.mark.parametrize(
    "name,fa,ft",
    [
        ("inv non-square", lambda: L.inv(ad.zeros(2, 3)), lambda: torch.linalg.inv(torch.zeros(2, 3))),
        (
            "inv int",
            lambda: L.inv(ad.tensor(np.zeros((3, 3), np.int64))),
            lambda: torch.linalg.inv(torch.zeros(3, 3, dtype=torch.long)),
        ),
        ("det 1-d", lambda: L.det(ad.zeros(3)), lambda: torch.linalg.det(torch.zeros(3))),
        ("eigh non-square", lambda: L.eigh(ad.zeros(2, 3)), lambda: torch.linalg.eigh(torch.zeros(2, 3))),
        ("eigh UPLO", lambda: L.eigh(ad.zeros(2, 2), UPLO="x"), lambda: torch.linalg.eigh(torch.zeros(2, 2), UPLO="x")),
        ("qr mode", lambda: L.qr(ad.zeros(2, 2), mode="x"), lambda: torch.linalg.qr(torch.zeros(2, 2), mode="x")),
        (
            "solve dtype",
            lambda: L.solve(ad.zeros(3, 3, dtype=ad.float64), ad.ones(3, dtype=ad.float32)),
            lambda: torch.linalg.solve(torch.zeros(3, 3, dtype=torch.float64), torch.ones(3)),
        ),
        (
            "norm 3-d ord",
            lambda: L.norm(ad.zeros(2, 2, 2), ord=2),
            lambda: torch.linalg.norm(torch.zeros(2, 2, 2), ord=2),
        ),
        (
            "matrix_norm ord",
            lambda: L.matrix_norm(ad.zeros(2, 2), ord=3),
            lambda: torch.linalg.matrix_norm(torch.zeros(2, 2), ord=3),
        ),
        ("mv", lambda: ad.mv(ad.zeros(2, 3), ad.zeros(2, 3)), lambda: torch.mv(torch.zeros(2, 3), torch.zeros(2, 3))),
        ("mv size", lambda: ad.mv(ad.zeros(2, 3), ad.zeros(2)), lambda: torch.mv(torch.zeros(2, 3), torch.zeros(2))),
        (
            "bmm 2-d",
            lambda: ad.bmm(ad.zeros(2, 3), ad.zeros(2, 3)),
            lambda: torch.bmm(torch.zeros(2, 3), torch.zeros(2, 3)),
        ),
        (
            "bmm batch2",
            lambda: ad.bmm(ad.zeros(2, 2, 3), ad.zeros(3, 3)),
            lambda: torch.bmm(torch.zeros(2, 2, 3), torch.zeros(3, 3)),
        ),
        (
            "bmm sizes",
            lambda: ad.bmm(ad.zeros(2, 2, 3), ad.zeros(2, 4, 3)),
            lambda: torch.bmm(torch.zeros(2, 2, 3), torch.zeros(2, 4, 3)),
        ),
        (
            "vdot 2-d",
            lambda: ad.vdot(ad.zeros(2, 3), ad.zeros(2, 3)),
            lambda: torch.vdot(torch.zeros(2, 3), torch.zeros(2, 3)),
        ),
        (
            "addmm shapes",
            lambda: ad.addmm(ad.zeros(2, 2), ad.zeros(2, 3), ad.zeros(2, 2)),
            lambda: torch.addmm(torch.zeros(2, 2), torch.zeros(2, 3), torch.zeros(2, 2)),
        ),
        (
            "addmm input",
            lambda: ad.addmm(ad.zeros(3), ad.zeros(2, 3), ad.zeros(3, 2)),
            lambda: torch.addmm(torch.zeros(3), torch.zeros(2, 3), torch.zeros(3, 2)),
        ),
        (
            "linalg.cross len",
            lambda: L.cross(ad.zeros(2, 4), ad.zeros(2, 4)),
            lambda: torch.linalg.cross(torch.zeros(2, 4), torch.zeros(2, 4)),
        ),
        (
            "cross no dim 3",
            lambda: ad.cross(ad.zeros(2, 4), ad.zeros(2, 4)),
            lambda: torch.cross(torch.zeros(2, 4), torch.zeros(2, 4)),
        ),
        (
            "tensordot sizes",
            lambda: ad.tensordot(ad.zeros(2, 3), ad.zeros(4, 4), dims=1),
            lambda: torch.tensordot(torch.zeros(2, 3), torch.zeros(4, 4), dims=1),
        ),
        (
            "tensordot negative",
            lambda: ad.tensordot(ad.zeros(2, 3), ad.zeros(3, 4), dims=-1),
            lambda: torch.tensordot(torch.zeros(2, 3), torch.zeros(3, 4), dims=-1),
        ),
        (
            "inner",
            lambda: ad.inner(ad.zeros(2, 3), ad.zeros(4)),
            lambda: torch.inner(torch.zeros(2, 3), torch.zeros(4)),
        ),
        (
            "multi_dot",
            lambda: L.multi_dot([ad.zeros(2, 3), ad.zeros(2, 3)]),
            lambda: torch.linalg.multi_dot([torch.zeros(2, 3), torch.zeros(2, 3)]),
        ),
        ("vander N", lambda: L.vander(ad.zeros(3), N=0), lambda: torch.linalg.vander(torch.zeros(3), N=0)),
    ],
)
def test_errors_match_torch(name, fa, ft):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same_error(fa, ft)


def test_matrix_power_needs_an_int():
    with pytest.raises(TypeError, match="must be int, not float"):
        L.matrix_power(ad.zeros(2, 2), 1.5)
    with pytest.raises(TypeError):
        torch.linalg.matrix_power(torch.zeros(2, 2), 1.5)


def test_vector_norm_ord_must_be_a_number():
    with pytest.raises(TypeError, match="argument 'ord' must be Number, not str"):
        L.vector_norm(ad.zeros(2), ord="fro")


def test_failed_op_leaves_no_state():
    a = ad.tensor(np.zeros((2, 2)), requires_grad=True)
    with pytest.raises(L.LinAlgError):
        L.inv(a)
    assert a.grad is None and a.grad_fn is None
    b = ad.tensor(_rand(2, 2) + 3 * np.eye(2), requires_grad=True)
    L.inv(b).sum().backward()
    assert b.grad is not None


# ---------------------------------------------------------------------------------------------------------
# out=, Tensor methods, in-place variants


def test_out_writes_in_place_and_refuses_autograd():
    a = _rand(3, 3) + 3 * np.eye(3)
    out = ad.empty(0, dtype=ad.float64)
    r = L.inv(ad.tensor(a), out=out)
    assert r is out
    _close(out, torch.linalg.inv(torch.tensor(a)))
    sign, logabs = ad.empty(0, dtype=ad.float64), ad.empty(0, dtype=ad.float64)
    L.slogdet(ad.tensor(a), out=(sign, logabs))
    _close(logabs, torch.linalg.slogdet(torch.tensor(a)).logabsdet)
    out = ad.empty(0, dtype=ad.float64)
    ad.bmm(ad.tensor(_rand(2, 2, 3)), ad.tensor(_rand(2, 3, 1)), out=out)
    assert out.shape == (2, 2, 1)
    _same_error(
        lambda: L.inv(ad.tensor(a, requires_grad=True), out=ad.empty(0, dtype=ad.float64)),
        lambda: torch.linalg.inv(torch.tensor(a, requires_grad=True), out=torch.empty(0, dtype=torch.float64)),
    )
    _same_error(
        lambda: L.inv(ad.tensor(a), out=ad.empty(0, dtype=ad.float32)),
        lambda: torch.linalg.inv(torch.tensor(a), out=torch.empty(0, dtype=torch.float32)),
    )


def test_tensor_methods():
    a, b = _rand(3, 3) + 3 * np.eye(3), _rand(3, 3)
    x, xt = torch.tensor(a), torch.tensor(a)
    y, yt = ad.tensor(b), torch.tensor(b)
    x = ad.tensor(a)
    pairs = [
        (x.det(), xt.det()),
        (x.logdet(), torch.tensor(a @ a.T).logdet()) if False else (x.inverse(), xt.inverse()),
        (x.matrix_exp(), xt.matrix_exp()),
        (x.matrix_power(3), xt.matrix_power(3)),
        (x.mv(y[0]), xt.mv(yt[0])),
        (x.inner(y), xt.inner(yt)),
        (x.kron(y), xt.kron(yt)),
        (x.cross(y, dim=0), xt.cross(yt, dim=0)),
        (x.addmm(x, y), xt.addmm(xt, yt)),
        (x[0].addmv(x, y[1]), xt[0].addmv(xt, yt[1])),
        (x.unsqueeze(0).bmm(y.unsqueeze(0)), xt.unsqueeze(0).bmm(yt.unsqueeze(0))),
        (
            x.unsqueeze(0).baddbmm(x.unsqueeze(0), y.unsqueeze(0)),
            xt.unsqueeze(0).baddbmm(xt.unsqueeze(0), yt.unsqueeze(0)),
        ),
        (x.addbmm(x.unsqueeze(0), y.unsqueeze(0)), xt.addbmm(xt.unsqueeze(0), yt.unsqueeze(0))),
        (x[0].vdot(y[0]), xt[0].vdot(yt[0])),
        (x[0].outer(y[1]), xt[0].outer(yt[1])),
        (x.pinverse(), xt.pinverse()),
        (x.slogdet()[1], xt.slogdet()[1]),
        ((x @ x.mT).cholesky(), torch.linalg.cholesky(xt @ xt.mT)),
    ]
    for mine, theirs in pairs:
        _close(mine, theirs)


def test_inplace_variants():
    a, b, c = _rand(2, 3), _rand(2, 4), _rand(4, 3)
    x = ad.tensor(a)
    r = x.addmm_(ad.tensor(b), ad.tensor(c), beta=0.5, alpha=2)
    assert r is x
    _close(x, torch.tensor(a).addmm_(torch.tensor(b), torch.tensor(c), beta=0.5, alpha=2))
    v = ad.tensor(a[0])
    v.addmv_(ad.tensor(c.T), ad.tensor(b[0]))
    _close(v, torch.tensor(a[0]).addmv_(torch.tensor(c.T), torch.tensor(b[0])))
    # recorded when part of a graph: the gradient flows to the operands and through the old value
    leaf = ad.tensor(a, requires_grad=True)
    m1 = ad.tensor(b, requires_grad=True)
    h = leaf * 2.0
    h.addmm_(m1, ad.tensor(c))
    h.sum().backward()
    lt = torch.tensor(a, requires_grad=True)
    m1t = torch.tensor(b, requires_grad=True)
    ht = lt * 2.0
    ht.addmm_(m1t, torch.tensor(c))
    ht.sum().backward()
    _close(leaf.grad, lt.grad)
    _close(m1.grad, m1t.grad)
    bt = ad.tensor(_rand(2, 2, 3))
    bt.baddbmm_(ad.tensor(_rand(2, 2, 4)), ad.tensor(_rand(2, 4, 3)))
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        ad.tensor(_rand(3)).addmm_(ad.tensor(b), ad.tensor(c))


def test_batched_broadcasting_of_solves():
    a = _rand(2, 1, 3, 3) + 3 * np.eye(3)
    b = _rand(4, 3, 2)
    _check_vs_torch(lambda x, y: L.solve(x, y), lambda x, y: torch.linalg.solve(x, y), a, b)
    _check_vs_torch(
        lambda x, y: L.solve_triangular(x, y, upper=False),
        lambda x, y: torch.linalg.solve_triangular(x, y, upper=False),
        a,
        b,
    )


# ---------------------------------------------------------------------------------------------------------
# the custom-Function machinery the LAPACK rows rely on (ad/autograd/function.py)


class _TwoOutputs(ad.autograd.Function):
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x * 2.0, x * 3.0

    @staticmethod
    def backward(ctx, a, b):
        _TwoOutputs.calls += 1
        return a * 2.0 + b * 3.0


def test_function_with_only_a_later_output_used_reaches_its_input():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    for pick, expected in ((0, 2.0), (1, 3.0)):
        out = _TwoOutputs.apply(x)[pick]
        (g,) = ad.autograd.grad(out, x, ad.tensor([1.0, 1.0]))  # seeded directly at the output's own row
        np.testing.assert_array_equal(g.numpy(), [expected, expected])
        (g,) = ad.autograd.grad(out.sum(), x, create_graph=True)
        np.testing.assert_array_equal(g.numpy(), [expected, expected])


def test_function_not_reached_by_a_sweep_does_not_run():
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    kept = _TwoOutputs.apply(x)  # recorded, never used below: its backward must not run (nor be freed)
    _TwoOutputs.calls = 0
    (g,) = ad.autograd.grad((x * 5.0).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [5.0, 5.0])
    assert _TwoOutputs.calls == 0
    (g,) = ad.autograd.grad(kept[1].sum(), x)
    np.testing.assert_array_equal(g.numpy(), [3.0, 3.0])
    assert _TwoOutputs.calls == 1


def test_forward_over_reverse_through_a_python_swept_primitive_is_finite_differences_of_the_gradient():
    """The tangent of det's gradient came out wrong once (the primitive's backward read saved values without
    tangents; then it raised): now it is the Hessian-vector product (more in tests/test_linalg_fwd_over_rev.py)."""
    import ad.autograd.forward_ad as fwAD

    rng = np.random.default_rng(0)
    a = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    v = rng.standard_normal((3, 3))
    p = ad.tensor(a, requires_grad=True)
    with fwAD.dual_level():
        d = fwAD.make_dual(p, ad.tensor(v))
        (g,) = ad.autograd.grad(ad.linalg.det(d), p)
        tangent = fwAD.unpack_dual(g).tangent.numpy()

    def grad_at(x):
        t = ad.tensor(x, requires_grad=True)
        return ad.autograd.grad(ad.linalg.det(t), t)[0].numpy()

    finite = (grad_at(a + 1e-6 * v) - grad_at(a - 1e-6 * v)) / 2e-6
    np.testing.assert_allclose(tangent, finite, atol=1e-7)
    _, hv = ad.autograd.functional.hvp(ad.linalg.det, ad.tensor(a), ad.tensor(v))
    np.testing.assert_allclose(hv.numpy(), finite, atol=1e-7)


@pytest.mark.parametrize("name", ["eig", "eigvals"])
def test_complex_results_raise_not_implemented(name):
    """torch's linalg.eig / eigvals return complex tensors; ad has no complex dtype, and says so."""
    with pytest.raises(NotImplementedError, match="complex dtype.*eigh|complex dtype.*eigvalsh"):
        getattr(ad.linalg, name)(ad.eye(3))
