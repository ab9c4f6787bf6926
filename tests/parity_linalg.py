"""Parity table of linear algebra (ad/linalg.py, ad/ops/products.py) for tests/test_torch_parity.py.

A program value ``x`` (any shape that broadcasts to (2, 3)) becomes a (2, 3) matrix ``E`` by an addition; the
square inputs are well conditioned by construction: ``_spd(E) = 0.1 E E^T + 2 I`` (symmetric positive definite,
eigenvalues in [2, 2 + 0.1 |E|^2]) and ``_sq(E) = 2 I + 0.2 E[:, :2]`` (diagonally dominant for |x| <= 2 within
chains that stay bounded: inputs pass through tanh). Results come back as (2, 3), (3,), (2, 1) or () values.
Decompositions whose factors have a sign freedom (eigenvectors, singular vectors, QR) are used through
sign-invariant products (``Q R``, ``U diag(S) U^T``).
"""

from test_torch_parity import OpSpec


def _e(L, x):
    return x.tanh() + L.zeros(2, 3, dtype=L.float64)


def _eye(L, n=2):
    return L.eye(n, dtype=L.float64)


def _spd(L, x):
    e = _e(L, x)
    return 0.1 * (e @ e.mT) + 2 * _eye(L)


def _sq(L, x):
    return 2 * _eye(L) + 0.2 * _e(L, x)[:, :2]


PARITY_OPS = [
    OpSpec("matmul", 2, lambda L, x, y: _e(L, x) @ _e(L, y).mT @ _e(L, x) * 0.3),
    OpSpec("mm", 2, lambda L, x, y: L.mm(_e(L, x).mT, _e(L, y)).sum(0) * 0.3),
    OpSpec("mv", 2, lambda L, x, y: L.mv(_e(L, x), _e(L, y)[0]).unsqueeze(-1)),
    OpSpec("dot", 2, lambda L, x, y: L.dot(_e(L, x)[0], _e(L, y)[1])),
    OpSpec("vdot", 2, lambda L, x, y: L.vdot(_e(L, x)[1], _e(L, y)[1])),
    OpSpec("inner", 2, lambda L, x, y: L.inner(_e(L, x), _e(L, y)).sum(-1, keepdim=True)),
    OpSpec("outer", 2, lambda L, x, y: L.outer(_e(L, x)[:, 0], _e(L, y)[0])),
    OpSpec("bmm", 2, lambda L, x, y: L.bmm(_e(L, x)[None], _e(L, y).mT[None])[0].sum(-1, keepdim=True)),
    OpSpec("addmm", 2, lambda L, x, y: L.addmm(_e(L, x), _sq(L, y), _e(L, x), beta=0.5, alpha=2.0)),
    OpSpec("einsum", 2, lambda L, x, y: L.einsum("ij,kj->ik", _e(L, x), _e(L, y)).sum(-1, keepdim=True)),
    OpSpec("tensordot", 2, lambda L, x, y: L.tensordot(_e(L, x), _e(L, y), dims=([1], [1])).sum(-1, keepdim=True)),
    OpSpec("trace", 1, lambda L, x: L.trace(_e(L, x))),
    OpSpec("multi_dot", 2, lambda L, x, y: L.linalg.multi_dot([_sq(L, x), _sq(L, y), _e(L, x)])),
    OpSpec("cross", 2, lambda L, x, y: L.linalg.cross(_e(L, x), _e(L, y) + 0.5)),
    OpSpec("vecdot", 2, lambda L, x, y: L.linalg.vecdot(_e(L, x), _e(L, y)).unsqueeze(-1)),
    OpSpec("det", 1, lambda L, x: L.linalg.det(_sq(L, x))),
    OpSpec("slogdet", 1, lambda L, x: L.linalg.slogdet(_spd(L, x)).logabsdet),
    OpSpec("logdet", 1, lambda L, x: L.logdet(_spd(L, x))),
    OpSpec("inv", 1, lambda L, x: L.linalg.inv(_sq(L, x)) @ _e(L, x)),
    OpSpec("solve", 2, lambda L, x, y: L.linalg.solve(_sq(L, x), _e(L, y))),
    OpSpec("solve_triangular", 2, lambda L, x, y: L.linalg.solve_triangular(_sq(L, x), _e(L, y), upper=True)),
    OpSpec("cholesky", 1, lambda L, x: L.linalg.cholesky(_spd(L, x)) @ _e(L, x)),
    OpSpec("cholesky_solve", 2, lambda L, x, y: L.cholesky_solve(_e(L, y), L.linalg.cholesky(_spd(L, x)))),
    OpSpec("qr", 1, lambda L, x: (lambda q, r: q @ r.mT @ r)(*L.linalg.qr(_sq(L, x).mT))[:, :1]),
    OpSpec("eigh", 1, lambda L, x: L.linalg.eigh(_spd(L, x)).eigenvalues.unsqueeze(-1)),
    OpSpec("eigh_vectors", 1, lambda L, x: (lambda w, v: (v * v) @ _e(L, x) * w[:1])(*L.linalg.eigh(_spd(L, x)))),
    OpSpec("eigvalsh", 1, lambda L, x: L.linalg.eigvalsh(_spd(L, x)).sum()),
    OpSpec("svdvals", 1, lambda L, x: L.linalg.svdvals(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]])).unsqueeze(-1)),
    OpSpec(
        "svd",
        1,
        lambda L, x: (lambda u, s, vh: (u * s) @ u.mT)(
            *L.linalg.svd(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]]), full_matrices=False)
        ).sum(0)[:1],
    ),
    OpSpec("pinv", 1, lambda L, x: L.linalg.pinv(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]])).mT),
    OpSpec(
        "lstsq",
        2,
        lambda L, x, y: L.linalg.lstsq(_e(L, x).mT + L.tensor([[2.0, 0], [0, 1.0], [0, 0]]), _e(L, y).mT).solution[
            :, :1
        ],
        forward_ad=False,
    ),  # (torch 2.13: no fwd-over-rev)
    OpSpec("matrix_exp", 1, lambda L, x: L.linalg.matrix_exp(_sq(L, x) * 0.3) @ _e(L, x)),
    OpSpec("matrix_power", 1, lambda L, x: L.linalg.matrix_power(_sq(L, x), 3) @ _e(L, x)),
    OpSpec("matrix_power_neg", 1, lambda L, x: L.linalg.matrix_power(_sq(L, x), -2) @ _e(L, x)),
    OpSpec("vector_norm", 1, lambda L, x: L.linalg.vector_norm(x * x + 0.1, ord=3, dim=-1, keepdim=True)),
    OpSpec("matrix_norm", 1, lambda L, x: L.linalg.matrix_norm(_e(L, x) + 0.01)),
    OpSpec(
        "matrix_norm_nuc",
        1,
        lambda L, x: L.linalg.matrix_norm(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]]), ord="nuc"),
    ),
    OpSpec("norm_2", 1, lambda L, x: L.linalg.norm(_e(L, x) + 0.01, dim=-1, keepdim=True)),
    OpSpec("cond", 1, lambda L, x: L.linalg.cond(_spd(L, x))),
    # (no cdist: torch 2.13 has neither its forward-mode formula nor a double backward of _cdist_backward)
    OpSpec("vander", 1, lambda L, x: L.linalg.vander(_e(L, x)[0])[:2]),
    OpSpec("lu", 1, lambda L, x: (lambda p, lo, u: lo @ u.mT + u)(*L.linalg.lu(_sq(L, x))) @ _e(L, x)),
    OpSpec("lu_solve", 2, lambda L, x, y: L.linalg.lu_solve(*L.linalg.lu_factor(_sq(L, x)), _e(L, y), adjoint=True)),
    OpSpec(
        "householder_product",
        2,
        lambda L, x, y: L.linalg.householder_product(_e(L, x).mT, _e(L, y)[0, :2] * 0.5).mT,
    ),
    # ---- added for issue 17 (the rest of the op table)
    OpSpec("addmv", 2, lambda L, x, y: L.addmv(_e(L, x)[:, 0], _e(L, y), _e(L, x)[1], alpha=-1.5).unsqueeze(-1)),
    OpSpec(
        "baddbmm",
        2,
        lambda L, x, y: L.baddbmm(_sq(L, x)[None], _e(L, x)[None], _e(L, y).mT[None], beta=2.0)[0].sum(
            -1, keepdim=True
        ),
    ),
    OpSpec("addbmm", 2, lambda L, x, y: L.addbmm(_sq(L, x), _e(L, x)[None], _e(L, y).mT[None]) @ _e(L, y)),
    OpSpec("tensordot_int", 2, lambda L, x, y: L.tensordot(_e(L, x), _e(L, y).mT, dims=1).sum(-1, keepdim=True)),
    OpSpec("einsum_diag", 1, lambda L, x: L.einsum("ii->i", _sq(L, x)).unsqueeze(-1)),
    OpSpec("einsum_ellipsis", 2, lambda L, x, y: L.einsum("...j,...j->...", _e(L, x), _e(L, y)).unsqueeze(-1)),
    OpSpec(
        "lu_factor_unpack",
        1,
        lambda L, x: (lambda p, lo, u: lo @ u)(*L.lu_unpack(*L.linalg.lu_factor(_sq(L, x)))) @ _e(L, x),
    ),
    OpSpec("solve_ex", 2, lambda L, x, y: L.linalg.solve_ex(_sq(L, x), _e(L, y)).result),
    OpSpec("solve_left_false", 2, lambda L, x, y: L.linalg.solve(_sq(L, x), _e(L, y).mT, left=False).mT),
    OpSpec(
        "solve_triangular_right",
        2,
        lambda L, x, y: L.linalg.solve_triangular(_sq(L, x), _e(L, y).mT, upper=False, left=False).mT,
    ),
    OpSpec("tensorinv", 1, lambda L, x: L.linalg.tensorinv(_sq(L, x).reshape(2, 1, 2), ind=2).reshape(2, 2) @ _e(L, x)),
    OpSpec("tensorsolve", 2, lambda L, x, y: L.linalg.tensorsolve(_sq(L, x), _e(L, y)[:, 0]).unsqueeze(-1)),
    OpSpec(
        "matrix_norm_2", 1, lambda L, x: L.linalg.matrix_norm(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]]), ord=2)
    ),
    # (the offsets in float64: a 0-d float64 x plus a float32 vector is float32 by torch's promotion, float64 by
    # numpy's, which ad follows: DESIGN.md)
    OpSpec(
        "vector_norm_inf",
        1,
        lambda L, x: L.linalg.vector_norm(
            x + L.tensor([0.0, 0.000371, 0.000742], dtype=L.float64) + 3.0, ord=float("inf"), dim=-1, keepdim=True
        ),
    ),
    OpSpec("vector_norm_half", 1, lambda L, x: L.linalg.vector_norm(x * x + 0.1, ord=0.5, dim=-1, keepdim=True)),
    OpSpec(
        "qr_wide", 1, lambda L, x: (lambda q, r: q @ r)(*L.linalg.qr(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]])))
    ),
    OpSpec(
        "eigh_upper", 1, lambda L, x: L.linalg.eigh(_spd(L, x) + 0.1 * _sq(L, x), UPLO="U").eigenvalues.unsqueeze(-1)
    ),
    OpSpec(
        "svd_full",
        1,
        lambda L, x: (lambda u, s, vh: (vh[:2].mT * s) @ vh[:2])(
            *L.linalg.svd(_e(L, x) + L.tensor([[2.0, 0, 0], [0, 1.0, 0]]), full_matrices=True)
        )[:2],
    ),
    OpSpec(
        "householder_product_batched",
        2,
        lambda L, x, y: (
            L.linalg.householder_product(
                L.stack([_e(L, x).mT, _e(L, y).mT]), L.stack([_e(L, y)[0, :2], _e(L, x)[1, 1:]]) * 0.5
            )
            .sum(0)
            .mT
        ),
    ),
    # torch 2.13 has neither cdist's forward-mode formula nor a double backward of _cdist_backward (TORCH_NO_GRAD3)
    OpSpec("cdist", 2, lambda L, x, y: L.cdist(_e(L, x), _e(L, y) + 0.5).sum(-1, keepdim=True), forward_ad=False),
]
