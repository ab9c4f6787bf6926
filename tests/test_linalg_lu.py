"""LU, LDL, Householder products, solve_ex and the tensor inverses (ad/ops/linalg_lu.py, ad/linalg.py) against
torch: values, gradients, forward mode, named tuples, errors, singular inputs. Finite differences, both
sweeps, second order and float32 run over tests/cases_linalg.py (tests/test_op_table.py); forward over
reverse in tests/test_linalg_fwd_over_rev.py.
"""

import numpy as np
import pytest
from test_linalg import _check_vs_torch, _close, _same_error

import ad
import ad.autograd.forward_ad as fwAD

torch = pytest.importorskip("torch")
import torch.autograd.forward_ad as tfwAD  # noqa: E402

L, TL = ad.linalg, torch.linalg
RNG = np.random.default_rng(7)


def _weighted(outs, ws, lib):
    return sum((o * lib.tensor(w)).sum() for o, w in zip(outs, ws))


def _rand(*shape):
    return RNG.standard_normal(shape)


SHAPES = [(3, 3), (2, 4, 3), (3, 5), (2, 1, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_lu_and_lu_factor_match_torch(shape):
    a = _rand(*shape)
    for fa, ft in [
        (lambda x: L.lu(x).L * 2.0 + L.lu(x).P.sum() + 0.0, lambda x: TL.lu(x).L * 2.0 + TL.lu(x).P.sum()),
        (lambda x: L.lu(x).U, lambda x: TL.lu(x).U),
        (lambda x: L.lu_factor(x).LU, lambda x: TL.lu_factor(x).LU),
        (lambda x: L.lu_factor_ex(x).LU, lambda x: TL.lu_factor_ex(x).LU),
        (lambda x: ad.lu_unpack(*L.lu_factor(x)).L, lambda x: torch.lu_unpack(*TL.lu_factor(x)).L),
        (lambda x: ad.lu_unpack(*L.lu_factor(x)).U, lambda x: torch.lu_unpack(*TL.lu_factor(x)).U),
    ]:
        _check_vs_torch(fa, ft, a)
    ours, theirs = L.lu_factor_ex(ad.tensor(a)), TL.lu_factor_ex(torch.tensor(a))
    assert type(ours).__name__ == type(theirs).__name__ == "linalg_lu_factor_ex"
    assert ours.pivots.dtype == ad.int32 and ours.info.dtype == ad.int32
    np.testing.assert_array_equal(ours.pivots.numpy(), theirs.pivots.numpy())
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    np.testing.assert_array_equal(L.lu(ad.tensor(a)).P.numpy(), TL.lu(torch.tensor(a)).P.numpy())
    assert type(L.lu(ad.tensor(a))).__name__ == "linalg_lu"
    assert type(L.lu_factor(ad.tensor(a))).__name__ == "linalg_lu_factor"


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_matches_torch(left, adjoint):
    a = _rand(2, 3, 3) + 3 * np.eye(3)
    b = _rand(3, 2) if left else _rand(2, 3)

    def run(lib, x, y):
        return lib.linalg.lu_solve(*lib.linalg.lu_factor(x), y, left=left, adjoint=adjoint)

    _check_vs_torch(lambda x, y: run(ad, x, y), lambda x, y: run(torch, x, y), a, b)


@pytest.mark.filterwarnings("ignore:torch.lu")
def test_top_level_spellings_match_torch():
    a, b = _rand(3, 3), _rand(3, 2)
    with pytest.warns(UserWarning, match="torch.lu is deprecated"):
        ad.lu(ad.tensor(a))
    with pytest.warns(UserWarning, match="torch.lu_solve is deprecated"):
        ad.lu_solve(ad.tensor(b), *ad.linalg.lu_factor(ad.tensor(a)))
    _check_vs_torch(lambda x, y: y.lu_solve(*x.lu()), lambda x, y: y.lu_solve(*x.lu()), a, b)  # Tensor methods
    h, t = ad.tensor(_rand(4, 3)), ad.tensor([0.5, 0.2])
    _close(h.orgqr(t), TL.householder_product(torch.tensor(h.numpy()), torch.tensor(t.numpy())))
    _check_vs_torch(lambda x, y: ad.lu_solve(y, *ad.lu(x)), lambda x, y: torch.lu_solve(y, *torch.lu(x)), a, b)
    ours, theirs = ad.lu(ad.tensor(a)), torch.lu(torch.tensor(a))
    assert type(ours) is tuple and len(ours) == len(theirs) == 2
    with_info = ad.lu(ad.tensor(np.zeros((2, 2))), get_infos=True)  # does not raise for a singular matrix
    assert type(with_info).__name__ == "_lu_with_info" and int(with_info.info.item()) == 1
    t = _rand(2)
    _check_vs_torch(lambda x, y: ad.orgqr(x, y), lambda x, y: torch.orgqr(x, y), _rand(4, 3), t)
    LU, piv = L.lu_factor(ad.tensor(_rand(3, 2)))
    P, Lo, U = ad.lu_unpack(LU, piv, unpack_data=False)
    assert tuple(Lo.shape) == tuple(U.shape) == (0,) and tuple(P.shape) == (3, 3)
    P, Lo, U = ad.lu_unpack(LU, piv, unpack_pivots=False)
    assert tuple(P.shape) == (0,) and tuple(Lo.shape) == (3, 2) and tuple(U.shape) == (2, 2)


@pytest.mark.parametrize("shape, k", [((4, 3), 2), ((2, 3, 3), 3), ((4, 4), 4)])
def test_householder_product_matches_torch(shape, k):
    _check_vs_torch(L.householder_product, TL.householder_product, _rand(*shape), _rand(*shape[:-2], k))


def test_householder_product_of_no_reflector_is_the_identity_columns():
    a = ad.tensor(_rand(2, 5, 2), requires_grad=True)
    q = L.householder_product(a, ad.zeros(2, 0, dtype=ad.float64))
    _close(q, TL.householder_product(torch.tensor(a.detach().numpy()), torch.zeros(2, 0, dtype=torch.float64)))
    assert not q.requires_grad  # a constant (torch records a node, but a gradient says A is unused)


def test_householder_product_of_geqrf_is_q():
    a = _rand(5, 3)
    qr, tau = torch.geqrf(torch.tensor(a))
    q = L.householder_product(ad.tensor(qr.numpy()), ad.tensor(tau.numpy()))
    _close(q, TL.qr(torch.tensor(a)).Q)


def test_forward_mode_matches_torch():
    a, v = _rand(2, 4, 3), _rand(2, 4, 3)
    tau, vt = _rand(2, 2), _rand(2, 2)
    cases = [
        (lambda lib, x: lib.linalg.lu(x)[1:], (a,), (v,)),
        (lambda lib, x: lib.linalg.lu(x.mT)[1:], (a,), (v,)),
        (lambda lib, x: (lib.linalg.lu_factor(x[..., :3, :]).LU,), (a,), (v,)),
        (lambda lib, x, t: (lib.linalg.householder_product(x, t),), (a, tau), (v, vt)),
    ]
    for fn, primals, tangents in cases:
        res = []
        for lib, fw in ((ad, fwAD), (torch, tfwAD)):
            with fw.dual_level():
                duals = [fw.make_dual(lib.tensor(p), lib.tensor(t)) for p, t in zip(primals, tangents)]
                outs = fn(lib, *duals)
                res.append([fw.unpack_dual(o).tangent.numpy() for o in outs])
        for x, y in zip(*res):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-10)


def test_solve_ex_matches_torch_and_reports_singular_matrices():
    a, b = _rand(2, 3, 3) + 3 * np.eye(3), _rand(3, 2)
    _check_vs_torch(lambda x, y: L.solve_ex(x, y).result, lambda x, y: TL.solve_ex(x, y).result, a, b)
    _check_vs_torch(
        lambda x, y: L.solve_ex(x, y, left=False).result,
        lambda x, y: TL.solve_ex(x, y, left=False).result,
        a,
        _rand(4, 3),
    )
    a[1] = 0.0
    ours, theirs = L.solve_ex(ad.tensor(a), ad.tensor(b)), TL.solve_ex(torch.tensor(a), torch.tensor(b))
    assert type(ours).__name__ == "linalg_solve_ex"
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    _close(ours.result[0], theirs.result[0])
    assert np.isnan(ours.result[1].numpy()).all()
    with pytest.raises(ad.linalg.LinAlgError):
        L.solve_ex(ad.tensor(a), ad.tensor(b), check_errors=True)


def test_singular_lu_as_torch():
    s = np.zeros((2, 3, 3))
    s[0] = np.eye(3)
    s[1, 0, 1] = s[1, 1, 0] = 1.0
    ours, theirs = L.lu_factor_ex(ad.tensor(s)), TL.lu_factor_ex(torch.tensor(s))
    _close(ours.LU, theirs.LU)
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    np.testing.assert_array_equal(ours.pivots.numpy(), theirs.pivots.numpy())
    for name in ("lu_factor", "lu_factor_ex"):
        kwargs = {"check_errors": True} if name == "lu_factor_ex" else {}
        _same_error(
            lambda n=name, kw=kwargs: getattr(L, n)(ad.tensor(s), **kw),
            lambda n=name, kw=kwargs: getattr(TL, n)(torch.tensor(s), **kw),
        )


def test_errors_match_torch():
    x3, x2 = _rand(3, 3), _rand(3, 2)
    cases = [
        (lambda lib: lib.linalg.lu_factor(lib.tensor(x3), pivot=False), RuntimeError),
        (lambda lib: lib.linalg.lu(lib.tensor(x3), pivot=False), RuntimeError),
        (lambda lib: lib.linalg.lu_factor(lib.tensor([1.0, 2.0])), RuntimeError),
        (lambda lib: lib.linalg.householder_product(lib.tensor(x2.T), lib.tensor([1.0, 2.0])), RuntimeError),
        (lambda lib: lib.linalg.householder_product(lib.tensor(x2), lib.tensor([1.0, 2.0, 3.0])), RuntimeError),
        (lambda lib: lib.linalg.lu_solve(*lib.linalg.lu_factor(lib.tensor(x3)), lib.tensor(x2.T)), RuntimeError),
        (lambda lib: lib.linalg.ldl_factor(lib.tensor(x2)), RuntimeError),
        (lambda lib: lib.linalg.tensorinv(lib.tensor(_rand(2, 3, 3)), 1), RuntimeError),
        (lambda lib: lib.linalg.tensorinv(lib.tensor(x3), 0), RuntimeError),
    ]
    ints = (lambda lib: lib.ones(3, 3, dtype=lib.int64), lambda lib: lib.ones(2, dtype=lib.int64))
    for name in ("lu", "lu_factor", "lu_factor_ex"):
        cases.append((lambda lib, n=name: getattr(lib.linalg, n)(ints[0](lib)), NotImplementedError))
    cases.append((lambda lib: lib.linalg.householder_product(ints[0](lib), ints[1](lib)), NotImplementedError))
    cases.append((lambda lib: lib.linalg.solve_ex(ints[0](lib), ints[0](lib)), RuntimeError))
    for fn, cls in cases:
        _same_error(lambda fn=fn: fn(ad), lambda fn=fn: fn(torch), cls)


def test_ldl_matches_torch_and_is_not_differentiable():
    a = _rand(2, 4, 4)
    a = a + np.swapaxes(a, -1, -2)
    b = _rand(4, 3)
    ours, theirs = L.ldl_factor_ex(ad.tensor(a)), TL.ldl_factor_ex(torch.tensor(a))
    assert type(ours).__name__ == "linalg_ldl_factor_ex"
    _close(ours.LD, theirs.LD, 1e-10)
    np.testing.assert_array_equal(ours.pivots.numpy(), theirs.pivots.numpy())
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    x = L.ldl_solve(*L.ldl_factor(ad.tensor(a)), ad.tensor(b))
    _close(x, TL.ldl_solve(*TL.ldl_factor(torch.tensor(a)), torch.tensor(b)), 1e-10)
    _close(x, np.linalg.solve(a, b), 1e-10)
    for fa, ft in [
        (lambda x: L.ldl_factor(x).LD.sum().backward(), lambda x: TL.ldl_factor(x).LD.sum().backward()),
        (
            lambda x: L.ldl_solve(*L.ldl_factor(x.detach()), x[0]).sum().backward(),
            lambda x: TL.ldl_solve(*TL.ldl_factor(x.detach()), x[0]).sum().backward(),
        ),
    ]:
        _same_error(
            lambda f=fa: f(ad.tensor(a, requires_grad=True)), lambda f=ft: f(torch.tensor(a, requires_grad=True))
        )


def test_tensorinv_tensorsolve_and_diagonal_match_torch():
    _check_vs_torch(lambda x: L.tensorinv(x, 2), lambda x: TL.tensorinv(x, 2), _rand(2, 3, 6))
    _check_vs_torch(lambda x: L.tensorinv(x, 1), lambda x: TL.tensorinv(x, 1), _rand(4, 2, 2))
    b = _rand(2, 3)
    _check_vs_torch(L.tensorsolve, TL.tensorsolve, _rand(2, 3, 6), b)
    _check_vs_torch(
        lambda x, y: L.tensorsolve(x, y, dims=(0,)), lambda x, y: TL.tensorsolve(x, y, dims=(0,)), _rand(6, 2, 3), b
    )
    _check_vs_torch(lambda x: L.diagonal(x, offset=1), lambda x: TL.diagonal(x, offset=1), _rand(2, 3, 4))
    _check_vs_torch(lambda x: L.diagonal(x, dim1=0, dim2=2), lambda x: TL.diagonal(x, dim1=0, dim2=2), _rand(3, 2, 3))


def test_torch_linalg_names_are_all_present():
    """Every public torch.linalg function exists in ad.linalg; eig and eigvals (complex results: ad has no
    complex dtype) raise NotImplementedError saying so."""
    missing = {n for n in dir(TL) if not n.startswith("_") and callable(getattr(TL, n))} - set(dir(L))
    assert missing == set(), missing
    for name in ("eig", "eigvals"):
        with pytest.raises(NotImplementedError, match="complex"):
            getattr(L, name)(ad.tensor(np.eye(2)))


@pytest.mark.parametrize("shape", [(0, 0), (3, 0), (0, 3), (0, 2, 2), (2, 0, 0)])
def test_empty_inputs_as_torch(shape):
    x = ad.zeros(shape, dtype=ad.float64, requires_grad=True)
    ours, theirs = L.lu(x), TL.lu(torch.zeros(shape, dtype=torch.float64))
    assert [tuple(t.shape) for t in ours] == [tuple(t.shape) for t in theirs]
    ex, tex = L.lu_factor_ex(x), TL.lu_factor_ex(torch.zeros(shape, dtype=torch.float64))
    assert [tuple(t.shape) for t in ex] == [tuple(t.shape) for t in tex]
    (g,) = ad.autograd.grad(ours.L.sum() + ours.U.sum() + ex.LU.sum(), x)
    assert tuple(g.shape) == shape
