"""Op-table cases of the shape and indexing ops (ad/ops/shape_index.py, scatter_ops.py); see tests/test_op_table.py.

Inputs are random and distinct, so sort / topk / amax never meet a tie here (ties are tested against torch in
tests/test_shape_index.py).
"""

import numpy as np

import ad


def _w(like, *shape):
    """Constant weights 1, 2, 3, ... of ``shape`` in the dtype of ``like``."""
    n = int(np.prod(shape))
    return ad.tensor(np.arange(1, n + 1, dtype=like.dtype).reshape(shape))


_I = ad.tensor  # integer index tensors


CASES = {
    # primitives over the GATHER_MAP row (their own grad_fn names)
    "flip": (lambda x: ad.flip(x, [0, 2]) * _w(x, 2, 3, 2), [(2, 3, 2)]),
    "roll": (lambda x: x.roll(1, 0) * _w(x, 3, 4) + x.roll((2, -1), (1, 0)) + ad.roll(x, 5), [(3, 4)]),
    "rot90": (lambda x: x.rot90() * _w(x, 4, 3) + ad.rot90(x, -1, [1, 0]).sum() + x.rot90(2).sum(0).sum(), [(3, 4)]),
    "repeat": (lambda x: x.repeat(2, 1, 2) * _w(x, 2, 2, 6), [(2, 3)]),
    "take": (lambda x: ad.take(x, _I([[0, 5], [-1, 5]])) * x.take(_I([2])), [(2, 3)]),
    "masked_select": (lambda x: x.masked_select(_I([True, False, True])) * _w(x, 4), [(2, 3)]),
    "diag": (lambda x: x.diag() * x.diag(1).sum() + ad.diag(x, -1).sum(), [(3, 3)]),
    "sort": (lambda x: x.sort(1)[0] * _w(x, 3, 4) + ad.sort(x, 0, descending=True).values, [(3, 4)]),
    "topk": (lambda x: x.topk(2).values * _w(x, 3, 2) + x.topk(1, 0, largest=False)[0].sum(), [(3, 4)]),
    "kthvalue": (lambda x: x.kthvalue(2)[0] * _w(x, 3) + x.kthvalue(3, 0, keepdim=True).values.sum(), [(3, 4)]),
    # composites
    "fliplr_flipud": (lambda x: ad.fliplr(x) * _w(x, 2, 3) + x.flipud(), [(2, 3)]),
    "tile": (lambda x: ad.tile(x, (2,)) * _w(x, 2, 6) + x.tile((2, 1, 1)).sum(), [(2, 3)]),
    "repeat_interleave": (
        lambda x: x.repeat_interleave(2) * _w(x, 12) + ad.repeat_interleave(x, _I([1, 0, 2]), 1).sum(),
        [(2, 3)],
    ),
    "scatter_src": (
        lambda x, s: ad.scatter(x, 1, _I([[2, 0], [1, 3]]), s) * _w(x, 2, 4),
        [(2, 4), (2, 3)],
    ),
    "scatter_value_method": (lambda x: x.scatter(0, _I([[1, 0, 1]]), 2.5) * x, [(2, 3)]),
    "scatter_add": (
        lambda x, s: x.scatter_add(0, _I([[1, 0], [1, 1]]), s) * _w(x, 2, 3),
        [(2, 3), (3, 3)],
    ),
    "scatter_reduce_sum_mean": (
        lambda x, s: (
            x.scatter_reduce(1, _I([[0, 0, 2]]), s, "sum") * _w(x, 2, 3)
            + x.scatter_reduce(1, _I([[0, 0, 2]]), s, "mean", include_self=False)
            + x.scatter_reduce(1, _I([[1, 1, 1]]), s, "mean")
        ),
        [(2, 3), (1, 3)],
    ),
    "scatter_reduce_prod": (
        lambda x, s: (
            x.scatter_reduce(0, _I([[0, 1], [0, 0]]), s, "prod") * _w(x, 2, 2)
            + x.scatter_reduce(0, _I([[0, 1], [0, 0]]), s, "prod", include_self=False)
        ),
        [(2, 2), (2, 2)],
        {"domain": (0.5, 1.5)},
    ),
    "scatter_reduce_amax_amin": (
        lambda x, s: (
            x.scatter_reduce(1, _I([[0, 0, 2, 0]]), s, "amax") * _w(x, 2, 3)
            + x.scatter_reduce(1, _I([[0, 0, 2, 0]]), s, "amin", include_self=False)
        ),
        [(2, 3), (1, 4)],
    ),
    "scatter_multiply": (lambda x, s: ad.scatter(x, 0, _I([[1, 1]]), s, reduce="multiply"), [(2, 2), (1, 2)]),
    "index_add": (
        lambda x, s: x.index_add(0, _I([2, 0, 2]), s, alpha=2.0) * _w(x, 3, 2),
        [(3, 2), (3, 2)],
    ),
    "index_copy": (lambda x, s: ad.index_copy(x, 1, _I([2, 0]), s) * _w(x, 2, 3), [(2, 3), (2, 2)]),
    "index_fill": (
        lambda x, v: x.index_fill(1, _I([0, 2]), v.sum()) * _w(x, 2, 3) + ad.index_fill(x, 0, _I([1]), -1.0),
        [(2, 3), (2,)],
    ),
    "index_put": (
        lambda x, v: (
            x.index_put((_I([0, 1, 0]), _I([2, 0, 1])), v) * _w(x, 2, 3)
            + ad.index_put(x, (_I([1, 1]),), v[:2, None], accumulate=True)
        ),
        [(2, 3), (3,)],
    ),
    "masked_fill": (
        lambda x, v: x.masked_fill(_I([[True, False, True]]), v.sum()) * _w(x, 2, 3) + x.masked_fill(x > 10.0, 0.0),
        [(2, 3), (2,)],
    ),
    "masked_scatter": (
        lambda x, s: x.masked_scatter(_I([[True, False], [True, True]]), s) * _w(x, 2, 2),
        [(2, 2), (4,)],
    ),
    "take_along_dim": (
        lambda x: (
            ad.take_along_dim(x, _I([[0], [2]]), 1) * x.take_along_dim(_I([[1, 0, 1]]), 0).sum()
            + x.take_along_dim(_I([5, 0])).sum()
        ),
        [(2, 3)],
    ),
    "tril_triu": (lambda x: x.tril() * _w(x, 2, 3, 3) + ad.triu(x, 1) + x.tril(-1) * x, [(2, 3, 3)]),
    "diag_embed": (
        lambda x: ad.diag_embed(x) * _w(x, 2, 3, 3) + x.diag_embed(1, 0, 2).sum(1).sum(),
        [(2, 3)],
    ),
    "diag_vector": (lambda x: ad.diag(x) * _w(x, 3, 3) + x.diag(-2).sum(), [(3,)]),
    "trace": (lambda x: ad.trace(x) * x, [(3, 4)]),
    "broadcast_tensors": (
        lambda x, y: (lambda a, b: a * b * _w(x, 2, 3))(*ad.broadcast_tensors(x, y)),
        [(2, 1), (3,)],
    ),
    "meshgrid": (
        lambda x, y: (
            (lambda a, b: a * b + a * _w(x, 2, 3))(*ad.meshgrid(x, y, indexing="ij"))
            + ad.meshgrid([y, x], indexing="xy")[0] * _w(x, 2, 3)
        ),
        [(2,), (3,)],
    ),
    "stacks": (
        lambda x, y: (
            ad.hstack([x, y]).sum(1) * ad.vstack([x, y]).sum()
            + ad.dstack([x, y]).sum((0, 1))
            + ad.column_stack([x[0], y[0]]).sum(1)
            + ad.row_stack((x, y)).sum(0)
        ),
        [(2, 2), (2, 2)],
    ),
    "msort": (lambda x: ad.msort(x) * _w(x, 3, 2), [(3, 2)]),
    "clone_function": (lambda x: ad.clone(x) * x, [(3,)]),
    # torch's wider surface (ad/shape_composites.py, ad/logic.py): compositions, no rules of their own
    "tensor_split_hsplit": (
        lambda x: ad.cat([p * (k + 1) for k, p in enumerate(x.tensor_split(3, 1))], 1) + ad.vsplit(x, [1])[1].sum(),
        [(2, 5)],
    ),
    "unfold_windows": (lambda x: x.unfold(1, 3, 2) * _w(x, 2, 2, 3) + x.unfold(0, 1, 1).sum(), [(2, 5)]),
    "diagflat_block_diag": (
        lambda x, y: ad.diagflat(x, 1).sum(0).sum() * 2 + ad.block_diag(x, y, y[0]).sum(1) * _w(x, 4), [(2,), (2, 3)]
    ),
    "cartesian_combinations": (
        lambda x, y: ad.cartesian_prod(x, y).prod(1) + ad.combinations(ad.cat([x, y]), 2).prod(1)[:6],
        [(2,), (3,)],
    ),
    "scatters_into_copy": (
        lambda x, s: (
            ad.select_scatter(x, s[0], 0, 1) * _w(x, 3, 3)
            + ad.slice_scatter(x, s, 0, 0, 3, 1) * x
            + ad.diagonal_scatter(x, s[1], 0)
        ),
        [(3, 3), (3, 3)],
    ),
    "sum_to_size_diff": (
        lambda x: x.sum_to_size(1, 4) * _w(x, 1, 4) + ad.diff(x, 2, 1, append=x[:, :1]).sum(), [(3, 4)]
    ),
    "fill_diagonal_inplace": (lambda x: (x * 1.0).fill_diagonal_(0.5, wrap=True) * x, [(5, 2)]),
    "logic_composites": (
        lambda x, y: (
            ad.logaddexp2(x, y) + ad.ldexp(x, ad.tensor([1, -1, 2, 0])) + ad.clamp_min(x, -0.3) * ad.clamp_max(y, 0.4)
        ),
        [(4,), (4,)],
    ),
    # statistics (ad/statistics.py): compositions
    "quantile_nanquantile": (
        lambda x: (
            ad.quantile(x, 0.3, 1) * _w(x, 3)
            + ad.quantile(x, ad.tensor([0.2, 0.9], dtype=x.dtype), 1, keepdim=True, interpolation="midpoint").sum()
            + ad.nanquantile(x, 0.5)
        ),
        [(3, 4)],
    ),
    "cov_corrcoef": (
        lambda x: ad.cov(x) * _w(x, 2, 2) + ad.corrcoef(x) + ad.cov(x, aweights=_w(x, 4), correction=0), [(2, 4)]
    ),
    "mode_trapezoid_renorm": (
        lambda x: (
            ad.mode(ad.cat([x, x[:, :1]], 1)).values.sum()
            + ad.trapezoid(x, _w(x, 4), dim=1) * _w(x, 3)
            + ad.cumulative_trapezoid(x, dx=0.5).sum(1)
            + ad.renorm(x, 2, 0, 1.0).sum(1)
            + ad.std_mean(x, 1)[0]
        ),
        [(3, 4)],
    ),
}
