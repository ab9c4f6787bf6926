"""Op-table cases for linear algebra (``ad.linalg``, einsum, products): see tests/test_op_table.py.

Inputs are uniform in (-2, 2) unless a ``domain`` says otherwise; each case maps them to where the op is
smooth: ``_spd`` makes symmetric positive-definite matrices, ``_well`` adds a multiple of the identity (an
invertible, well-conditioned matrix), ``_sym`` symmetrises (eigh reads one triangle; torch's gradient assumes
symmetric input). Spectral functions are used gauge-invariantly (products like ``U diag(S) U^T``, or squares
of eigenvector entries), since singular vectors and eigenvectors are defined up to sign.
"""

import ad

L = ad.linalg


def _eye(x, n):
    return ad.eye(n, dtype=x.dtype)


def _well(x, k=4.0):
    return x + k * _eye(x, x.shape[-1])


def _spd(x):
    return x @ x.mT + _eye(x, x.shape[-1])


def _sym(x):
    return x + x.mT


CASES = {
    # products and contractions (composites of matmul)
    "bmm": (lambda x, y: ad.bmm(x, y), [(2, 2, 3), (2, 3, 2)]),
    "mv": (lambda x, y: ad.mv(x, y), [(2, 3), (3,)]),
    "vdot": (lambda x, y: ad.vdot(x, y), [(4,), (4,)]),
    "inner": (lambda x, y: ad.inner(x, y), [(2, 3), (4, 3)]),
    "addmm": (lambda b, x, y: ad.addmm(b, x, y, beta=0.5, alpha=2.0), [(2,), (3, 2), (2, 2)]),
    "addmv": (lambda b, x, y: ad.addmv(b, x, y, alpha=-1.5), [(3,), (3, 2), (2,)]),
    "baddbmm": (lambda b, x, y: ad.baddbmm(b, x, y, beta=2.0), [(1, 2, 2), (3, 2, 3), (3, 3, 2)]),
    "addbmm": (lambda b, x, y: ad.addbmm(b, x, y), [(2, 2), (3, 2, 3), (3, 3, 2)]),
    "tensordot": (lambda x, y: ad.tensordot(x, y, dims=([0, 2], [1, 0])), [(2, 3, 4), (4, 2, 2)]),
    "tensordot_int": (lambda x, y: ad.tensordot(x, y, 1), [(2, 3), (3, 2)]),
    "kron": (lambda x, y: ad.kron(x, y), [(2, 3), (2, 1, 2)]),
    "cross": (lambda x, y: ad.linalg.cross(x, y) + ad.cross(x, y, dim=1), [(3, 3), (1, 3)]),
    "multi_dot": (lambda a, b, c: L.multi_dot([a, b, c]), [(3,), (3, 4), (4, 2)]),
    "chain_like_multi_dot": (lambda a, b, c, d: L.multi_dot([a, b, c, d]), [(2, 5), (5, 1), (1, 4), (4, 3)]),
    "vander": (lambda x: L.vander(x, N=4), [(2, 3)]),
    "vecdot": (lambda x, y: L.vecdot(x, y), [(2, 3), (3,)]),
    "einsum_matmul": (lambda x, y: ad.einsum("ij,jk->ik", x, y), [(2, 3), (3, 4)]),
    "einsum_trace_diag": (lambda x: ad.einsum("ii", x) * ad.einsum("ii->i", x), [(3, 3)]),
    "einsum_batch_ellipsis": (lambda x, y: ad.einsum("...ij,...jk", x, y), [(2, 2, 3), (3, 2)]),
    "einsum_three": (lambda x, y, z: ad.einsum("ab,bc,ca->", x, y, z), [(2, 3), (3, 4), (4, 2)]),
    "einsum_repeated_across": (lambda x, y: ad.einsum("iij,jk->ik", x, y), [(3, 3, 2), (2, 2)]),
    "einsum_sublist": (lambda x, y: ad.einsum(x, [0, 1], y, [1, 2], [2, 0]), [(2, 3), (3, 2)]),
    "einsum_hadamard_sum": (lambda x, y: ad.einsum("ij,ij->j", x, y), [(2, 3), (2, 3)]),
    "einsum_broadcast_one": (lambda x, y: ad.einsum("ij,j->i", x, y), [(2, 1), (3,)]),
    # LAPACK primitives
    "linalg_inv": (lambda x: L.inv(_well(x)), [(2, 3, 3)]),
    "linalg_solve": (lambda a, b: L.solve(_well(a), b), [(2, 3, 3), (3, 2)]),
    "linalg_solve_vector_left_false": (
        lambda a, b: L.solve(_well(a), b) + L.solve(_well(a), b, left=False),
        [(3, 3), (3,)],
    ),
    "linalg_det": (lambda x: L.det(_well(x, 2.0)), [(2, 3, 3)]),
    "linalg_slogdet": (lambda x: L.slogdet(x)[1] * 1.0, [(3, 3)]),
    "logdet": (lambda x: ad.logdet(_spd(x)), [(3, 3)]),
    "linalg_cholesky": (lambda x: L.cholesky(_spd(x)) + L.cholesky(_spd(x), upper=True), [(2, 3, 3)]),
    "cholesky_solve": (lambda b, x: ad.cholesky_solve(b, L.cholesky(_spd(x))), [(3, 2), (3, 3)]),
    "linalg_solve_triangular": (
        lambda a, b: (
            L.solve_triangular(_well(a), b, upper=True)
            + L.solve_triangular(_well(a), b, upper=False, unitriangular=True)
        ),
        [(3, 3), (3, 2)],
    ),
    "linalg_solve_triangular_right": (
        lambda a, b: L.solve_triangular(_well(a), b, upper=False, left=False),
        [(3, 3), (2, 3)],
    ),
    "linalg_eigh": (
        lambda x: L.eigh(_sym(x))[0] * (L.eigh(_sym(x))[1] ** 2).sum(0),
        [(3, 3)],
        {"domain": (-1.0, 1.0), "atol": 1e-5, "rtol": 1e-4},
    ),
    "linalg_eigh_upper_batched": (
        lambda x: (L.eigh(_sym(x), UPLO="U")[1] ** 2) + L.eigvalsh(_sym(x)).unsqueeze(-1),
        [(2, 3, 3)],
    ),
    "linalg_svd": (
        lambda x: (lambda u, s, vh: ((u * s.unsqueeze(-2)) @ u.mT).sum() + vh.mT @ (vh * s.unsqueeze(-1)))(
            *L.svd(x, False)
        ),
        [(4, 3)],
    ),
    "linalg_svd_wide_full": (
        lambda x: (lambda u, s, vh: u[..., :2] @ vh[..., :2, :] + s.unsqueeze(-1))(*L.svd(x)),
        [(2, 2, 3)],
    ),
    "linalg_svdvals": (lambda x: L.svdvals(x), [(2, 4, 3)]),
    "linalg_qr": (lambda x: (lambda q, r: q * 2.0 + r.sum())(*L.qr(x)), [(4, 3)]),
    "linalg_qr_square_batched": (lambda x: (lambda q, r: q @ r.mT + r)(*L.qr(_well(x))), [(2, 3, 3)]),
    "linalg_qr_wide": (lambda x: (lambda q, r: q.sum() + r)(*L.qr(x)), [(2, 4)]),
    "linalg_matrix_exp": (lambda x: L.matrix_exp(x * 0.5), [(2, 3, 3)]),
    "linalg_pinv": (lambda x: L.pinv(x), [(4, 3)]),
    "linalg_pinv_wide": (lambda x: L.pinv(x), [(2, 3)]),
    "linalg_lstsq": (lambda a, b: L.lstsq(a, b).solution, [(4, 2), (4, 3)]),
    "linalg_matrix_power": (lambda x: L.matrix_power(x, 3) + L.matrix_power(_well(x), -2), [(3, 3)]),
    # norms
    "linalg_vector_norm": (
        lambda x: L.vector_norm(x) * L.vector_norm(x, 3, dim=1) + L.vector_norm(x, 1.5, (0, 1), keepdim=True),
        [(2, 3)],
    ),
    "linalg_vector_norm_small_ord": (lambda x: L.vector_norm(x, 0.5, 0) + L.vector_norm(x, 1, -1).sum(), [(3, 2)]),
    "linalg_vector_norm_inf": (
        lambda x: L.vector_norm(x, float("inf"), 1) + L.vector_norm(x, float("-inf"), 1),
        [(2, 4)],
    ),
    "linalg_matrix_norm": (
        lambda x: L.matrix_norm(x) + L.matrix_norm(x, 1) + L.matrix_norm(x, float("-inf")),
        [(2, 3, 3)],
    ),
    "linalg_matrix_norm_spectral": (
        lambda x: L.matrix_norm(x, "nuc") + L.matrix_norm(x, 2) + L.matrix_norm(x, -2, dim=(0, 1)).sum(),
        [(3, 2)],
    ),
    "linalg_norm": (lambda x: L.norm(x) + L.norm(x, dim=(0, 1)) + L.norm(x, float("inf")), [(3, 3)]),
    "linalg_cond": (lambda x: L.cond(_well(x)), [(3, 3)]),
    # LU, Householder products, tensor inverses (ad/ops/linalg_lu.py)
    "linalg_lu": (lambda x: (lambda p, lo, u: p @ lo * 2.0 + lo.sum() + u)(*L.lu(_well(x))), [(2, 3, 3)]),
    "linalg_lu_tall": (lambda x: (lambda p, lo, u: lo + u.sum(-2, keepdim=True))(*L.lu(x)), [(4, 2)]),
    "linalg_lu_wide": (lambda x: (lambda p, lo, u: lo.sum(-1, keepdim=True) + u)(*L.lu(x)), [(2, 4)]),
    "linalg_lu_factor": (lambda x: L.lu_factor(_well(x)).LU + L.lu_factor_ex(x + 3.0).LU, [(3, 3)]),
    "linalg_lu_solve": (
        lambda x, b: (
            L.lu_solve(*L.lu_factor(_well(x)), b)
            + L.lu_solve(*L.lu_factor(_well(x)), b, adjoint=True)
            + L.lu_solve(*L.lu_factor(_well(x)), b.mT, left=False).mT
        ),
        [(2, 3, 3), (3, 2)],
    ),
    "lu_unpack": (lambda x: (lambda p, lo, u: lo @ u)(*ad.lu_unpack(*L.lu_factor(_well(x)))), [(3, 3)]),
    "linalg_householder_product": (lambda a, t: L.householder_product(a, t), [(4, 3), (2,)]),
    "linalg_householder_product_batched": (lambda a, t: L.householder_product(a, t), [(2, 3, 3), (2, 3)]),
    "linalg_solve_ex": (lambda a, b: L.solve_ex(_well(a), b).result, [(3, 3), (3, 2)]),
    "linalg_tensorinv": (lambda x: L.tensorinv(x + 3 * ad.eye(4, dtype=x.dtype).reshape(2, 2, 4), 2), [(2, 2, 4)]),
    "linalg_tensorsolve": (
        lambda a, b: L.tensorsolve(a + 3 * ad.eye(6, dtype=a.dtype).reshape(6, 2, 3), b, dims=(0,)),
        [(6, 2, 3), (2, 3)],
    ),
    "linalg_diagonal": (lambda x: L.diagonal(x, offset=-1), [(2, 3, 3)]),
}
