"""ad.linalg and the products (einsum, tensordot, bmm, ...) against torch: values, gradients, options and
defaults, batching, dtypes, named tuples, special points (singular, degenerate, zero, empty), second order and
forward mode (nested levels too). API semantics (errors, ``out=``, methods, in-place) are in
tests/test_linalg_api.py; the generic derivative checks (finite differences, both sweeps, forward mode,
second order, float32) run over tests/cases_linalg.py in tests/test_op_table.py.
"""

import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

L = ad.linalg
RNG = np.random.default_rng(1234)


def _rand(*shape):
    return RNG.standard_normal(shape)


def _spd(n, batch=()):
    a = _rand(*batch, n, n)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _pair(a, rg=True):
    return ad.tensor(a, requires_grad=rg), torch.tensor(a, requires_grad=rg)


def _close(x, y, tol=1e-9):
    xa = x.detach().numpy() if isinstance(x, ad.Tensor) else np.asarray(x)
    ya = y.detach().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    assert xa.shape == ya.shape, (xa.shape, ya.shape)
    np.testing.assert_allclose(xa, ya, rtol=tol, atol=tol)


def _same_error(fa, ft, cls=RuntimeError, torch_cls=RuntimeError):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(cls) as ea:
        fa()
    assert isinstance(et.value, torch_cls)
    assert str(ea.value) == str(et.value), (str(ea.value), str(et.value))


def _check_vs_torch(fa, ft, *arrays, tol=1e-9):
    """Values and gradients (with a random cotangent) of ``fa`` on ad tensors and ``ft`` on torch tensors."""
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
# values and gradients against torch


CASES = {
    "inv": (lambda a: L.inv(a), lambda a: torch.linalg.inv(a), [(2, 3, 3)]),
    "inverse": (lambda a: ad.inverse(a), lambda a: torch.inverse(a), [(3, 3)]),
    "det": (lambda a: L.det(a), lambda a: torch.linalg.det(a), [(2, 3, 3)]),
    "torch.det": (lambda a: ad.det(a), lambda a: torch.det(a), [(3, 3)]),
    "slogdet": (lambda a: L.slogdet(a).logabsdet, lambda a: torch.linalg.slogdet(a).logabsdet, [(2, 3, 3)]),
    "slogdet.sign": (
        lambda a: L.slogdet(a)[0] * a,
        lambda a: torch.linalg.slogdet(a)[0][..., None, None] * a if False else torch.linalg.slogdet(a)[0] * a,
        [(3, 3)],
    ),
    "solve": (lambda a, b: L.solve(a, b), lambda a, b: torch.linalg.solve(a, b), [(2, 3, 3), (3, 2)]),
    "solve.vector": (lambda a, b: L.solve(a, b), lambda a, b: torch.linalg.solve(a, b), [(2, 3, 3), (2, 3)]),
    "solve.left_false": (
        lambda a, b: L.solve(a, b, left=False),
        lambda a, b: torch.linalg.solve(a, b, left=False),
        [(3, 3), (1, 4, 3)],
    ),
    "matrix_exp": (lambda a: L.matrix_exp(a), lambda a: torch.linalg.matrix_exp(a), [(2, 3, 3)]),
    "torch.matrix_exp": (lambda a: ad.matrix_exp(a), lambda a: torch.matrix_exp(a), [(3, 3)]),
    "pinv": (lambda a: L.pinv(a), lambda a: torch.linalg.pinv(a), [(2, 4, 3)]),
    "pinv.hermitian": (
        lambda a: L.pinv(a + a.mT, hermitian=True),
        lambda a: torch.linalg.pinv(a + a.mT, hermitian=True),
        [(3, 3)],
    ),
    "pinverse": (lambda a: ad.pinverse(a), lambda a: torch.pinverse(a), [(2, 3)]),
    "lstsq": (lambda a, b: L.lstsq(a, b).solution, lambda a, b: torch.linalg.lstsq(a, b).solution, [(5, 3), (5, 2)]),
    "matrix_power": (lambda a: L.matrix_power(a, 4), lambda a: torch.linalg.matrix_power(a, 4), [(2, 3, 3)]),
    "matrix_power.neg": (lambda a: L.matrix_power(a, -3), lambda a: torch.linalg.matrix_power(a, -3), [(3, 3)]),
    "matrix_power.zero": (lambda a: L.matrix_power(a, 0) * a, lambda a: torch.linalg.matrix_power(a, 0) * a, [(3, 3)]),
    "svdvals": (lambda a: L.svdvals(a), lambda a: torch.linalg.svdvals(a), [(2, 3, 5)]),
    "svd.reconstruct": (
        lambda a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh + (u @ u.mT).sum(-1, keepdim=True))(
            *L.svd(a, full_matrices=False)
        ),
        lambda a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh + (u @ u.mT).sum(-1, keepdim=True))(
            *torch.linalg.svd(a, full_matrices=False)
        ),
        [(2, 4, 3)],
    ),
    "svd.vectors_squared": (
        lambda a: L.svd(a, False).U ** 2 * 1.0,
        lambda a: torch.linalg.svd(a, False).U ** 2,
        [(3, 5)],
    ),
    "eigh": (
        lambda a: (lambda w, v: v**2 * w.unsqueeze(-2))(*L.eigh(a + a.mT)),
        lambda a: (lambda w, v: v**2 * w.unsqueeze(-2))(*torch.linalg.eigh(a + a.mT)),
        [(2, 4, 4)],
    ),
    "eigh.U": (
        lambda a: L.eigh(a + a.mT, UPLO="U").eigenvalues,
        lambda a: torch.linalg.eigh(a + a.mT, UPLO="U").eigenvalues,
        [(4, 4)],
    ),
    "eigvalsh": (lambda a: L.eigvalsh(a), lambda a: torch.linalg.eigvalsh(a), [(3, 3)]),
    "eigvalsh.U": (lambda a: L.eigvalsh(a, "U"), lambda a: torch.linalg.eigvalsh(a, "U"), [(3, 3)]),
    "qr": (
        lambda a: (lambda q, r: q * 3.0 + r.sum())(*L.qr(a)),
        lambda a: (lambda q, r: q * 3.0 + r.sum())(*torch.linalg.qr(a)),
        [(2, 5, 3)],
    ),
    "qr.wide": (
        lambda a: (lambda q, r: q.sum() + r)(*L.qr(a)),
        lambda a: (lambda q, r: q.sum() + r)(*torch.linalg.qr(a)),
        [(3, 5)],
    ),
    "qr.complete": (lambda a: L.qr(a, mode="complete").R, lambda a: torch.linalg.qr(a, mode="complete").R, [(3, 3)]),
    "vector_norm": (lambda a: L.vector_norm(a), lambda a: torch.linalg.vector_norm(a), [(2, 3)]),
    "vector_norm.ords": (
        lambda a: (
            L.vector_norm(a, 3.5, 1)
            + L.vector_norm(a, 0.5, 1)
            + L.vector_norm(a, 1, 1)
            + L.vector_norm(a, float("inf"), 1)
            + L.vector_norm(a, -float("inf"), 1)
            + L.vector_norm(a, 0, 1)
            + L.vector_norm(a, -1.5, 1)
        ),
        lambda a: (
            torch.linalg.vector_norm(a, 3.5, 1)
            + torch.linalg.vector_norm(a, 0.5, 1)
            + torch.linalg.vector_norm(a, 1, 1)
            + torch.linalg.vector_norm(a, float("inf"), 1)
            + torch.linalg.vector_norm(a, -float("inf"), 1)
            + torch.linalg.vector_norm(a, 0, 1)
            + torch.linalg.vector_norm(a, -1.5, 1)
        ),
        [(3, 4)],
    ),
    "vector_norm.keepdim": (
        lambda a: L.vector_norm(a, 2, (0, 2), True),
        lambda a: torch.linalg.vector_norm(a, 2, (0, 2), True),
        [(2, 3, 2)],
    ),
    "matrix_norm": (
        lambda a: sum(L.matrix_norm(a, o) for o in ("fro", "nuc", 1, -1, 2, -2, float("inf"), -float("inf"))),
        lambda a: sum(
            torch.linalg.matrix_norm(a, o) for o in ("fro", "nuc", 1, -1, 2, -2, float("inf"), -float("inf"))
        ),
        [(2, 3, 4)],
    ),
    "matrix_norm.dims_keepdim": (
        lambda a: L.matrix_norm(a, 1, dim=(2, 0), keepdim=True) + L.matrix_norm(a, "nuc", (0, 2), True),
        lambda a: (
            torch.linalg.matrix_norm(a, 1, dim=(2, 0), keepdim=True) + torch.linalg.matrix_norm(a, "nuc", (0, 2), True)
        ),
        [(3, 2, 4)],
    ),
    "norm": (
        lambda a: (
            L.norm(a)
            + L.norm(a, "fro")
            + L.norm(a, 2)
            + L.norm(a[0], 3)
            + L.norm(a, dim=1).sum()
            + L.norm(a, -1, dim=(0, 1))
        ),
        lambda a: (
            torch.linalg.norm(a)
            + torch.linalg.norm(a, "fro")
            + torch.linalg.norm(a, 2)
            + torch.linalg.norm(a[0], 3)
            + torch.linalg.norm(a, dim=1).sum()
            + torch.linalg.norm(a, -1, dim=(0, 1))
        ),
        [(3, 3)],
    ),
    # (torch's own backward of cond(a, 1) fails: its inverse is modified in place)
    "cond": (lambda a: L.cond(a) + L.cond(a, -2), lambda a: torch.linalg.cond(a) + torch.linalg.cond(a, -2), [(3, 3)]),
    "multi_dot": (
        lambda a, b, c: L.multi_dot([a, b, c]),
        lambda a, b, c: torch.linalg.multi_dot([a, b, c]),
        [(4,), (4, 2), (2, 3)],
    ),
    "multi_dot.vecs": (
        lambda a, b: L.multi_dot([a, b, a]),
        lambda a, b: torch.linalg.multi_dot([a, b, a]),
        [(3,), (3, 3)],
    ),
    "vander": (lambda x: L.vander(x), lambda x: torch.linalg.vander(x), [(2, 3)]),
    "vecdot": (lambda x, y: L.vecdot(x, y, dim=0), lambda x, y: torch.linalg.vecdot(x, y, dim=0), [(3, 2), (3, 1)]),
    "linalg.cross": (lambda x, y: L.cross(x, y), lambda x, y: torch.linalg.cross(x, y), [(2, 3), (1, 3)]),
    "cross.dim": (lambda x, y: ad.cross(x, y, dim=0), lambda x, y: torch.cross(x, y, dim=0), [(3, 4), (3, 4)]),
    "cholesky_solve": (
        lambda b, a: ad.cholesky_solve(b, L.cholesky(a @ a.mT + 3 * ad.eye(3, dtype=a.dtype))),
        lambda b, a: torch.cholesky_solve(b, torch.linalg.cholesky(a @ a.mT + 3 * torch.eye(3, dtype=a.dtype))),
        [(2, 3, 2), (3, 3)],
    ),
    "cholesky_solve.upper": (
        lambda b, a: ad.cholesky_solve(b, L.cholesky(a @ a.mT + 3 * ad.eye(3, dtype=a.dtype), upper=True), True),
        lambda b, a: torch.cholesky_solve(
            b, torch.linalg.cholesky(a @ a.mT + 3 * torch.eye(3, dtype=a.dtype), upper=True), True
        ),
        [(3, 2), (3, 3)],
    ),
    "cholesky_inverse": (
        lambda a: ad.cholesky_inverse(L.cholesky(a @ a.mT + 3 * ad.eye(3, dtype=a.dtype))),
        lambda a: torch.cholesky_inverse(torch.linalg.cholesky(a @ a.mT + 3 * torch.eye(3, dtype=a.dtype))),
        [(3, 3)],
    ),
    "solve_triangular": (
        lambda a, b: L.solve_triangular(a + 4 * ad.eye(3, dtype=a.dtype), b, upper=True),
        lambda a, b: torch.linalg.solve_triangular(a + 4 * torch.eye(3, dtype=a.dtype), b, upper=True),
        [(2, 3, 3), (3, 2)],
    ),
    "solve_triangular.right_unit": (
        lambda a, b: L.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        lambda a, b: torch.linalg.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        [(3, 3), (2, 3)],
    ),
    "cholesky": (
        lambda a: L.cholesky(a @ a.mT + ad.eye(3, dtype=a.dtype)) + L.cholesky(a @ a.mT + ad.eye(3), upper=True),
        lambda a: (
            torch.linalg.cholesky(a @ a.mT + torch.eye(3, dtype=a.dtype))
            + torch.linalg.cholesky(a @ a.mT + torch.eye(3, dtype=a.dtype), upper=True)
        ),
        [(2, 3, 3)],
    ),
    "logdet": (lambda a: ad.logdet(a @ a.mT), lambda a: torch.logdet(a @ a.mT), [(2, 3, 3)]),
    "bmm": (lambda a, b: ad.bmm(a, b), lambda a, b: torch.bmm(a, b), [(2, 3, 4), (2, 4, 1)]),
    "mv": (lambda a, b: ad.mv(a, b), lambda a, b: torch.mv(a, b), [(3, 4), (4,)]),
    "vdot": (lambda a, b: ad.vdot(a, b), lambda a, b: torch.vdot(a, b), [(4,), (4,)]),
    "inner": (lambda a, b: ad.inner(a, b), lambda a, b: torch.inner(a, b), [(2, 3, 4), (5, 4)]),
    "inner.scalar": (lambda a, b: ad.inner(a, b), lambda a, b: torch.inner(a, b), [(), (2, 2)]),
    "outer": (lambda a, b: ad.outer(a, b), lambda a, b: torch.outer(a, b), [(3,), (2,)]),
    "addmm": (lambda c, a, b: ad.addmm(c, a, b), lambda c, a, b: torch.addmm(c, a, b), [(2, 3), (2, 4), (4, 3)]),
    "addmm.scaled": (
        lambda c, a, b: ad.addmm(c, a, b, beta=0.3, alpha=-2),
        lambda c, a, b: torch.addmm(c, a, b, beta=0.3, alpha=-2),
        [(3,), (2, 4), (4, 3)],
    ),
    "addmv": (
        lambda c, a, b: ad.addmv(c, a, b, beta=2),
        lambda c, a, b: torch.addmv(c, a, b, beta=2),
        [(2,), (2, 4), (4,)],
    ),
    "addbmm": (
        lambda c, a, b: ad.addbmm(c, a, b, alpha=0.5),
        lambda c, a, b: torch.addbmm(c, a, b, alpha=0.5),
        [(2, 3), (4, 2, 5), (4, 5, 3)],
    ),
    "baddbmm": (
        lambda c, a, b: ad.baddbmm(c, a, b),
        lambda c, a, b: torch.baddbmm(c, a, b),
        [(2, 1, 3), (2, 2, 5), (2, 5, 3)],
    ),
    "tensordot": (
        lambda a, b: ad.tensordot(a, b, dims=([1, 0], [0, 2])),
        lambda a, b: torch.tensordot(a, b, dims=([1, 0], [0, 2])),
        [(2, 3, 4), (3, 5, 2)],
    ),
    "tensordot.int": (
        lambda a, b: ad.tensordot(a, b, dims=2),
        lambda a, b: torch.tensordot(a, b, dims=2),
        [(2, 3, 4), (3, 4, 2)],
    ),
    "tensordot.zero": (
        lambda a, b: ad.tensordot(a, b, dims=0),
        lambda a, b: torch.tensordot(a, b, dims=0),
        [(2,), (3,)],
    ),
    "kron": (lambda a, b: ad.kron(a, b), lambda a, b: torch.kron(a, b), [(2, 3), (4, 1, 2)]),
}

EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (2,)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
    ("...ij,jk", [(2, 2, 3), (3, 2)]),
    ("i...->...", [(2, 3, 4)]),
    ("ab,bc,cd->da", [(2, 3), (3, 4), (4, 2)]),
    ("ab,cd,bc->", [(2, 3), (4, 2), (3, 4)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
    ("ijk,kji", [(2, 3, 4), (4, 3, 2)]),
    ("ij,j->i", [(2, 1), (3,)]),
    ("BaA,aB->A", [(2, 3, 4), (3, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),
    ("i,i", [(), ()]) if False else ("ij,kl->ijkl", [(2, 1), (3, 2)]),
]


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name):
    fa, ft, shapes = CASES[name]
    arrays = [_rand(*s) for s in shapes]
    _check_vs_torch(fa, ft, *arrays)


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_matches_torch(eq, shapes):
    arrays = [_rand(*s) for s in shapes]
    _check_vs_torch(lambda *xs: ad.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), *arrays)
    _check_vs_torch(lambda *xs: ad.einsum(eq, list(xs)), lambda *xs: torch.einsum(eq, list(xs)), *arrays)


def test_einsum_sublist_form():
    a, b = _rand(2, 3), _rand(3, 4)
    _check_vs_torch(
        lambda x, y: ad.einsum(x, [0, 1], y, [1, 2], [2, 0]),
        lambda x, y: torch.einsum(x, [0, 1], y, [1, 2], [2, 0]),
        a,
        b,
    )
    _check_vs_torch(lambda x: ad.einsum(x, [Ellipsis, 1]), lambda x: torch.einsum(x, [Ellipsis, 1]), a)


def test_einsum_contracts_through_matmul_rows():
    """The contraction is a MATMUL row (BLAS), not a loop of products."""
    a = ad.tensor(_rand(3, 4), requires_grad=True)
    b = ad.tensor(_rand(4, 5), requires_grad=True)
    out = ad.einsum("ij,jk->ik", a, b)
    names = set()
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None:
            continue
        names.add(fn.name())
        stack.extend(f for f, _ in fn.next_functions)
    assert any(
        n.startswith("Mm") or n.startswith("Bmm") or n.startswith("Matmul") or n.startswith("Mv") for n in names
    ), names


@pytest.mark.parametrize(
    "eq,shapes,message",
    [
        ("ij,jk", [(2, 3)], "fewer operands were provided than specified in the equation"),
        ("ij", [(2, 3), (3,)], "more operands were provided than specified in the equation"),
        (
            "ij,jk",
            [(2, 3), (4, 4)],
            "subscript j has size 4 for operand 1 which does not broadcast with previously seen size 3",
        ),
        (
            "ijk",
            [(2, 3)],
            "the number of subscripts in the equation (3) does not match the number of dimensions (2) "
            "for operand 0 and no ellipsis was given",
        ),
        ("ij->ii", [(2, 3)], "output subscript i appears more than once in the output"),
        ("ij->k", [(2, 3)], "output subscript k does not appear in the equation for any input operand"),
        (
            "i1->i",
            [(2, 3)],
            "invalid subscript given at index 1 in the equation string, subscripts must be in [a-zA-Z]",
        ),
    ],
)
def test_einsum_errors_match_torch(eq, shapes, message):
    xs_t = [torch.zeros(s) for s in shapes]
    with pytest.raises(RuntimeError) as et:
        torch.einsum(eq, *xs_t)
    assert message in str(et.value)
    with pytest.raises(
        RuntimeError,
        match="einsum\\(\\): "
        + message.replace("(", "\\(").replace(")", "\\)").replace("[", "\\[").replace("]", "\\]"),
    ):
        ad.einsum(eq, *[ad.zeros(s) for s in shapes])


# ---------------------------------------------------------------------------------------------------------
# named tuples, defaults, options


def test_named_tuples_as_torch():
    a = _rand(3, 3)
    s = a + a.T
    spd = _spd(3)
    checks = [
        (L.slogdet(ad.tensor(a)), torch.linalg.slogdet(torch.tensor(a)), ("sign", "logabsdet")),
        (L.eigh(ad.tensor(s)), torch.linalg.eigh(torch.tensor(s)), ("eigenvalues", "eigenvectors")),
        (L.svd(ad.tensor(a)), torch.linalg.svd(torch.tensor(a)), ("U", "S", "Vh")),
        (L.qr(ad.tensor(a)), torch.linalg.qr(torch.tensor(a)), ("Q", "R")),
        (L.inv_ex(ad.tensor(a)), torch.linalg.inv_ex(torch.tensor(a)), ("inverse", "info")),
        (L.cholesky_ex(ad.tensor(spd)), torch.linalg.cholesky_ex(torch.tensor(spd)), ("L", "info")),
    ]
    for mine, theirs, fields in checks:
        assert mine._fields == fields
        assert type(mine).__name__ == type(theirs).__name__
        assert len(theirs) == len(fields)
        for f in fields:
            if f in ("U", "Vh", "Q", "eigenvectors"):  # determined up to sign: compare magnitudes
                _close(abs(getattr(mine, f)), getattr(theirs, f).abs())
            else:
                _close(getattr(mine, f), getattr(theirs, f))
    r = L.lstsq(ad.tensor(_rand(5, 3)), ad.tensor(_rand(5, 2)))
    assert r._fields == ("solution", "residuals", "rank", "singular_values")


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
def test_lstsq_outputs_per_driver(driver):
    a, b = _rand(2, 5, 3), _rand(2, 5, 2)
    mine = L.lstsq(ad.tensor(a), ad.tensor(b), driver=driver)
    theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    for f in mine._fields:
        _close(getattr(mine, f), getattr(theirs, f), 1e-8)
        assert getattr(mine, f).dtype == np.dtype(str(getattr(theirs, f).dtype).replace("torch.", ""))


def test_lstsq_rank_deficient_and_rcond():
    a = _rand(5, 2) @ _rand(2, 3)  # rank 2
    b = _rand(5, 2)
    mine = L.lstsq(ad.tensor(a), ad.tensor(b), driver="gelsd")
    theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver="gelsd")
    _close(mine.solution, theirs.solution, 1e-8)
    assert int(mine.rank) == int(theirs.rank) == 2
    assert mine.residuals.shape == theirs.residuals.shape == (0,)
    _close(
        L.lstsq(ad.tensor(a), ad.tensor(b), rcond=0.5, driver="gelsd").rank,
        torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), rcond=0.5, driver="gelsd").rank,
    )


def test_pinv_tolerances():
    u, _ = np.linalg.qr(_rand(4, 4))
    a = (u * np.array([3.0, 1.0, 1e-3, 1e-9])) @ u.T
    for kw in ({}, {"atol": 1e-2}, {"rtol": 1e-2}, {"atol": 1e-5, "rtol": 1e-1}, {"hermitian": True}):
        _close(L.pinv(ad.tensor(a), **kw), torch.linalg.pinv(torch.tensor(a), **kw), 1e-6)


def test_svd_full_matrices_shapes_and_values():
    a = _rand(2, 4, 3)
    for full in (True, False):
        u, s, vh = L.svd(ad.tensor(a), full_matrices=full)
        tu, ts, tvh = torch.linalg.svd(torch.tensor(a), full_matrices=full)
        assert u.shape == tuple(tu.shape) and vh.shape == tuple(tvh.shape)
        _close(s, ts)
        k = 3
        np.testing.assert_allclose(
            (u.numpy()[..., :k] * s.numpy()[..., None, :]) @ vh.numpy()[..., :k, :], a, atol=1e-12
        )


def test_qr_modes_shapes():
    a = _rand(5, 3)
    for mode in ("reduced", "complete", "r"):
        q, r = L.qr(ad.tensor(a), mode=mode)
        tq, tr = torch.linalg.qr(torch.tensor(a), mode=mode)
        assert q.shape == tuple(tq.shape) and r.shape == tuple(tr.shape)
        _close(abs(r), tr.abs())


def test_matrix_norm_and_norm_defaults():
    a = _rand(2, 3, 4)
    _close(L.matrix_norm(ad.tensor(a)), torch.linalg.matrix_norm(torch.tensor(a)))
    _close(L.norm(ad.tensor(a)), torch.linalg.norm(torch.tensor(a)))
    _close(L.vector_norm(ad.tensor(a)), torch.linalg.vector_norm(torch.tensor(a)))
    a32 = a.astype(np.float32)
    _close(
        L.vector_norm(ad.tensor(a32), dtype=ad.float64),
        torch.linalg.vector_norm(torch.tensor(a32), dtype=torch.float64),
    )
    assert L.vector_norm(ad.tensor(a32), dtype=ad.float64).dtype == ad.float64
    _same_error(
        lambda: L.vector_norm(ad.tensor(a), dtype=ad.float32),
        lambda: torch.linalg.vector_norm(torch.tensor(a), dtype=torch.float32),
    )
    _close(L.vector_norm(ad.tensor(3.0)), torch.linalg.vector_norm(torch.tensor(3.0)))


def test_norm_gradients_at_zero_are_torchs_subgradients():
    for ord_ in (2, 1, 3, 0.5, float("inf")):  # (ord=0 has no gradient: tests/test_parity_gaps20.py)
        x = ad.tensor(np.zeros(3), requires_grad=True)
        xt = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        (g,) = ad.autograd.grad(L.vector_norm(x, ord_), x)
        (gt,) = torch.autograd.grad(torch.linalg.vector_norm(xt, ord_), xt)
        _close(g, gt)


def test_inf_norm_ties_share_the_gradient():
    v = np.array([1.0, -3.0, 3.0, 2.0])
    x, xt = _pair(v)
    (g,) = ad.autograd.grad(L.vector_norm(x, float("inf")), x)
    (gt,) = torch.autograd.grad(torch.linalg.vector_norm(xt, float("inf")), xt)
    _close(g, gt)


def test_multi_dot_picks_the_cheap_order_with_the_same_value():
    a, b, c = _rand(10, 2), _rand(2, 10), _rand(10, 1)
    _check_vs_torch(lambda x, y, z: L.multi_dot([x, y, z]), lambda x, y, z: torch.linalg.multi_dot([x, y, z]), a, b, c)


def test_chain_matmul_warns_and_matches():
    a, b = _rand(2, 3), _rand(3, 3)
    with pytest.warns(UserWarning, match="chain_matmul is deprecated"):
        r = ad.chain_matmul(ad.tensor(a), ad.tensor(b))
    _close(r, torch.tensor(a) @ torch.tensor(b))


def test_cross_default_dim_warns_and_takes_first_dim_of_size_3():
    a, b = _rand(2, 3, 3), _rand(2, 3, 3)
    with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
        mine = ad.cross(ad.tensor(a), ad.tensor(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.cross(torch.tensor(a), torch.tensor(b))
    _close(mine, theirs)


def test_addmm_beta_zero_ignores_nan_input():
    c = np.full((2, 2), np.nan)
    a, b = _rand(2, 3), _rand(3, 2)
    _close(
        ad.addmm(ad.tensor(c), ad.tensor(a), ad.tensor(b), beta=0),
        torch.addmm(torch.tensor(c), torch.tensor(a), torch.tensor(b), beta=0),
    )


def test_logdet_negative_and_singular():
    for a in (np.diag([-1.0, 2.0]), np.zeros((2, 2))):
        _close(ad.logdet(ad.tensor(a)), torch.logdet(torch.tensor(a)))
    s = L.slogdet(ad.tensor(np.zeros((2, 2))))
    ts = torch.linalg.slogdet(torch.tensor(np.zeros((2, 2))))
    _close(s.sign, ts.sign)
    _close(s.logabsdet, ts.logabsdet)


def test_inv_ex_and_cholesky_ex_report_info_without_raising():
    a = np.stack([np.eye(2), np.zeros((2, 2))])
    mine = L.inv_ex(ad.tensor(a))
    theirs = torch.linalg.inv_ex(torch.tensor(a))
    _close(mine.info, theirs.info)
    _close(mine.inverse[0], theirs.inverse[0])
    assert mine.info.dtype == np.int32
    with pytest.raises(L.LinAlgError, match="Batch element 1"):
        L.inv_ex(ad.tensor(a), check_errors=True)
    s = np.stack([np.eye(2), -np.eye(2)])
    mine = L.cholesky_ex(ad.tensor(s))
    theirs = torch.linalg.cholesky_ex(torch.tensor(s))
    _close(mine.info, theirs.info)
    _close(mine.L[0], theirs.L[0])
    with pytest.raises(L.LinAlgError, match="leading minor of order 1"):
        L.cholesky_ex(ad.tensor(s), check_errors=True)


def test_float32_stays_float32():
    a = _rand(3, 3).astype(np.float32)
    s = (a @ a.T + 3 * np.eye(3)).astype(np.float32)
    x = ad.tensor(a, requires_grad=True)
    y = ad.tensor(s, requires_grad=True)
    outs = [
        L.inv(y),
        L.det(y),
        L.slogdet(y)[1],
        L.cholesky(y),
        L.eigh(y)[0],
        L.svd(x)[1],
        L.qr(x)[1],
        L.matrix_exp(x),
        L.pinv(x),
        L.solve(y, x),
        L.solve_triangular(y, x, upper=True),
        L.vector_norm(x),
        L.matrix_norm(x, "nuc"),
        ad.einsum("ij,jk", x, x),
        L.lstsq(y, x).solution,
    ]
    for out in outs:
        assert out.dtype == ad.float32
        (g,) = ad.autograd.grad(out.sum(), [x, y], allow_unused=True)[:1] if False else (None,)
    gx, gy = ad.autograd.grad(sum(o.sum() for o in outs), [x, y])
    assert gx.dtype == gy.dtype == ad.float32


# ---------------------------------------------------------------------------------------------------------
# second order and forward mode (beyond the op table): eigh and svd, against torch


def test_eigh_and_svd_second_order_match_torch():
    a = _rand(3, 3)

    def f_ad(x):
        w, v = L.eigh(x + x.mT)
        return (w * (v**2).sum(0)).sum() + L.svdvals(x).sum() + (L.svd(x)[0] ** 2 * w).sum()

    def f_t(x):
        w, v = torch.linalg.eigh(x + x.mT)
        return (w * (v**2).sum(0)).sum() + torch.linalg.svdvals(x).sum() + (torch.linalg.svd(x)[0] ** 2 * w).sum()

    x, xt = _pair(a)
    (g,) = ad.autograd.grad(f_ad(x), x, create_graph=True)
    (gt,) = torch.autograd.grad(f_t(xt), xt, create_graph=True)
    _close(g, gt)
    w = _rand(3, 3)
    (h,) = ad.autograd.grad((g * ad.tensor(w)).sum(), x)
    (ht,) = torch.autograd.grad((gt * torch.tensor(w)).sum(), xt)
    _close(h, ht, 1e-7)


def test_forward_mode_matches_torch():
    import torch.autograd.forward_ad as tfw

    import ad.autograd.forward_ad as fwAD

    a, t = _rand(2, 3, 3), _rand(2, 3, 3)
    fns = [
        (lambda x: L.inv(x), lambda x: torch.linalg.inv(x)),
        (lambda x: L.det(x), lambda x: torch.linalg.det(x)),
        (lambda x: L.matrix_exp(x), lambda x: torch.linalg.matrix_exp(x)),
        (lambda x: L.eigh(x + x.mT).eigenvalues, lambda x: torch.linalg.eigh(x + x.mT).eigenvalues),
        (lambda x: L.svdvals(x), lambda x: torch.linalg.svdvals(x)),
        (lambda x: L.cholesky(x @ x.mT + ad.eye(3)), lambda x: torch.linalg.cholesky(x @ x.mT + torch.eye(3))),
        (lambda x: L.pinv(x), lambda x: torch.linalg.pinv(x)),
        (lambda x: L.qr(x).R, lambda x: torch.linalg.qr(x).R),
        (lambda x: L.vector_norm(x, 3, -1), lambda x: torch.linalg.vector_norm(x, 3, -1)),
    ]
    for fa, ft in fns:
        with fwAD.dual_level():
            mine = fwAD.unpack_dual(fa(fwAD.make_dual(ad.tensor(a), ad.tensor(t)))).tangent
        with tfw.dual_level():
            theirs = tfw.unpack_dual(ft(tfw.make_dual(torch.tensor(a), torch.tensor(t)))).tangent
        _close(mine, theirs, 1e-8)


def test_grad_fn_names_are_torchs():
    a = ad.tensor(_rand(3, 3), requires_grad=True)
    assert L.inv(a).grad_fn.name() == "LinalgInvExBackward0"
    assert L.det(a).grad_fn.name() == "LinalgDetBackward0"
    assert L.eigh(a).eigenvalues.grad_fn.name() == "LinalgEighBackward0"
    assert L.svdvals(a).grad_fn.name() == "LinalgSvdBackward0"
    assert L.matrix_exp(a).grad_fn.name() == "LinalgMatrixExpBackward0"
    assert L.slogdet(a).logabsdet.grad_fn.name() == "LinalgSlogdetBackward0"
    assert L.slogdet(a).sign.grad_fn is None


def test_qr_derivative_errors_as_torch():
    a = ad.tensor(_rand(4, 3), requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > ncols"):
        L.qr(a, mode="complete").Q.sum().backward()
    with pytest.raises(RuntimeError, match="depends on Q, which is not computed when mode='r'"):
        L.qr(a, mode="r").R.sum().backward()


@pytest.mark.parametrize(
    "m", [[[1.0, 2.0], [2.0, 4.0]], [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 5.0]], np.zeros((3, 3))]
)
def test_det_gradient_of_singular_matrices_is_the_adjugate(m):
    x, xt = _pair(np.array(m))
    (g,) = ad.autograd.grad(L.det(x), x, create_graph=True)
    (gt,) = torch.autograd.grad(torch.linalg.det(xt), xt, create_graph=True)
    _close(g, gt, 1e-12)
    (k,) = ad.autograd.grad(L.det(x), x)
    _close(k, gt, 1e-12)
    if np.linalg.matrix_rank(np.array(m)) == len(m) - 1:  # a simple zero singular value: second order too
        (h,) = ad.autograd.grad(g.sum(), x)
        (ht,) = torch.autograd.grad(gt.sum(), xt)
        _close(h, ht, 1e-10)


def test_older_top_level_apis():
    a = _rand(4, 3)
    for some in (True, False):
        for compute_uv in (True, False):
            mine = ad.svd(ad.tensor(a), some=some, compute_uv=compute_uv)
            theirs = torch.svd(torch.tensor(a), some=some, compute_uv=compute_uv)
            assert mine._fields == ("U", "S", "V")
            for x, y in zip(mine, theirs):
                _close(abs(x), y.abs())
        with pytest.warns(UserWarning, match="torch.qr is deprecated"):
            q, r = ad.qr(ad.tensor(a), some)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tq, tr = torch.qr(torch.tensor(a), some)
        _close(abs(q), tq.abs())
        _close(abs(r), tr.abs())
    s = _spd(3)
    with pytest.warns(UserWarning, match="torch.cholesky is deprecated"):
        mine = ad.cholesky(ad.tensor(s), upper=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _close(mine, torch.cholesky(torch.tensor(s), upper=True))
    x, xt = _pair(a)
    u, s_, v = ad.svd(x)
    ut, st, vt = torch.svd(xt)
    (g,) = ad.autograd.grad((u * s_ @ v.mT).sum() + s_.sum(), x)
    (gt,) = torch.autograd.grad((ut * st @ vt.mT).sum() + st.sum(), xt)
    _close(g, gt)


def test_matrix_rank_matches_torch():
    a = np.stack([_rand(4, 2) @ _rand(2, 3), _rand(4, 3), np.zeros((4, 3))])
    s = a[1].T @ a[1]
    for kw in ({}, {"atol": 1.0}, {"rtol": 0.3}, {"atol": 0.1, "rtol": 0.01}):
        mine = L.matrix_rank(ad.tensor(a), **kw)
        theirs = torch.linalg.matrix_rank(torch.tensor(a), **kw)
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
        assert mine.dtype == np.int64
    assert int(L.matrix_rank(ad.tensor(s), hermitian=True)) == int(
        torch.linalg.matrix_rank(torch.tensor(s), hermitian=True)
    )


@pytest.mark.parametrize(
    "name,f",
    [
        ("inv", lambda m: m.linalg.inv(m.zeros(0, 0, dtype=m.float64))),
        ("det", lambda m: m.linalg.det(m.zeros(0, 0, dtype=m.float64))),
        ("det empty batch", lambda m: m.linalg.det(m.zeros(0, 2, 2, dtype=m.float64))),
        ("svdvals", lambda m: m.linalg.svdvals(m.zeros(0, 3, dtype=m.float64))),
        ("eigvalsh", lambda m: m.linalg.eigvalsh(m.zeros(0, 0, dtype=m.float64))),
        ("vector_norm", lambda m: m.linalg.vector_norm(m.zeros(0, dtype=m.float64))),
        ("matrix_norm", lambda m: m.linalg.matrix_norm(m.zeros(0, 0, dtype=m.float64))),
        ("einsum", lambda m: m.einsum("ij,jk->ik", m.zeros(2, 0, dtype=m.float64), m.zeros(0, 3, dtype=m.float64))),
        ("cholesky", lambda m: m.linalg.cholesky(m.zeros(0, 0, dtype=m.float64))),
        ("qr", lambda m: m.linalg.qr(m.zeros(0, 2, dtype=m.float64))[1]),
        ("matrix_exp", lambda m: m.linalg.matrix_exp(m.zeros(0, 0, dtype=m.float64))),
        ("pinv", lambda m: m.linalg.pinv(m.zeros(0, 2, dtype=m.float64))),
    ],
)
def test_empty_inputs_as_torch(name, f):
    _close(f(ad), f(torch))


NESTED = {
    "inv": lambda x: L.inv(x + 3 * ad.eye(3)),
    "det": lambda x: L.det(x),
    "slogdet": lambda x: L.slogdet(x + 3 * ad.eye(3))[1],
    "solve": lambda x: L.solve(x + 3 * ad.eye(3), x),
    "solve_triangular": lambda x: L.solve_triangular(x + 3 * ad.eye(3), x, upper=True),
    "cholesky": lambda x: L.cholesky(x @ x.mT + ad.eye(3)),
    "eigh": lambda x: (lambda w, v: v**2 * w.unsqueeze(-2))(*L.eigh(x + x.mT)),
    "svd": lambda x: L.svdvals(x) + (L.svd(x)[0] ** 2).sum(0),
    "qr": lambda x: L.qr(x)[1] + L.qr(x)[0] * 2,
    "matrix_exp": lambda x: L.matrix_exp(x * 0.5),
    "pinv": lambda x: L.pinv(x[:, :2]),
    "vector_norm": lambda x: L.vector_norm(x, 3, 1),
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_nested_forward_levels_give_second_derivatives(name):
    """Forward over forward (two dual levels) equals reverse over reverse: T . H(w . f) . T."""
    import ad.autograd.forward_ad as fwAD

    f = NESTED[name]
    a, t = _rand(3, 3), _rand(3, 3)
    with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
        x = fwAD.make_dual(fwAD.make_dual(ad.tensor(a), ad.tensor(t), level=outer), ad.tensor(t), level=inner)
        d1 = fwAD.unpack_dual(f(x), level=inner).tangent
        d2 = fwAD.unpack_dual(d1, level=outer).tangent
    x = ad.tensor(a, requires_grad=True)
    out = f(x)
    w = ad.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(out.shape))
    (g,) = ad.autograd.grad((out * w).sum(), x, create_graph=True)
    (h,) = ad.autograd.grad((g * ad.tensor(t)).sum(), x)
    np.testing.assert_allclose(float((d2.numpy() * w.numpy()).sum()), float((h.numpy() * t).sum()), rtol=1e-8)


def test_degenerate_spectra_as_torch():
    """Repeated eigen/singular values: the gradient of the values alone is finite; through the vectors it is
    not (torch neither raises nor warns for real inputs)."""
    for fa, ft in (
        (lambda x: L.eigh(x).eigenvalues.sum(), lambda x: torch.linalg.eigh(x).eigenvalues.sum()),
        (lambda x: L.eigvalsh(x).sum(), lambda x: torch.linalg.eigvalsh(x).sum()),
        (lambda x: L.svdvals(x).sum(), lambda x: torch.linalg.svdvals(x).sum()),
        (lambda x: L.matrix_norm(x, "nuc"), lambda x: torch.linalg.matrix_norm(x, "nuc")),
    ):
        x, xt = _pair(np.eye(3))
        (g,) = ad.autograd.grad(fa(x), x)
        (gt,) = torch.autograd.grad(ft(xt), xt)
        _close(g, gt)
        (g,) = ad.autograd.grad(fa(x), x, create_graph=True)
        _close(g, gt)
    x, xt = _pair(np.eye(3))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (g,) = ad.autograd.grad((L.eigh(x).eigenvectors ** 2).sum(), x)
    (gt,) = torch.autograd.grad((torch.linalg.eigh(xt).eigenvectors ** 2).sum(), xt)
    assert np.isnan(g.numpy()).all() and torch.isnan(gt).all()
