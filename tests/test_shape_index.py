"""Shape and indexing ops against torch: values, every option, dtypes, gradients at special points (ties,
repeated indices, zeros), error classes, ``out=``, Tensor methods and in-place variants.

Each case is ``fn(L, *tensors)`` run once with ``L = ad`` and once with ``L = torch`` on the same data; float
inputs require grad, and the gradients of ``sum(out * w)`` are compared too (values and gradients from torch,
never hard-coded).
"""

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X34 = RNG.standard_normal((3, 4))
X234 = RNG.standard_normal((2, 3, 4))
TIES = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 2.0, -1.0], [0.0, -1.0, 4.0, 4.0]])
NANS = np.array([[1.0, np.nan, 0.0, np.nan], [np.nan, -2.0, 5.0, 5.0]])
INTS = np.array([[3, 1, 2, 3], [0, 0, 5, 1], [2, 2, 2, 7]], dtype=np.int64)


def _lib_tensor(L, a, grad):
    if L is ad:
        return ad.tensor(a.copy(), requires_grad=grad)
    return torch.tensor(a.copy(), requires_grad=grad)


def _np(t):
    if isinstance(t, ad.Tensor):
        return t.detach().numpy()
    return t.detach().numpy()


def _outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for part in out for o in _outputs(part)]
    return [out]


def _run(L, fn, arrays):
    ts = [_lib_tensor(L, a, a.dtype.kind == "f") for a in arrays]
    return ts, _outputs(fn(L, *ts))


def check(fn, *arrays, grad=True, rtol=1e-10, atol=1e-12):
    """Values (and dtypes) of ``fn`` under ad and torch agree, and so do the gradients of a weighted sum."""
    ta, oa = _run(ad, fn, arrays)
    tt, ot = _run(torch, fn, arrays)
    assert len(oa) == len(ot)
    for a, t in zip(oa, ot):
        assert tuple(a.shape) == tuple(t.shape)
        assert str(a.dtype).replace("torch.", "") == str(t.dtype).replace("torch.", ""), (a.dtype, t.dtype)
        np.testing.assert_allclose(_np(a), _np(t), rtol=rtol, atol=atol, equal_nan=True)
    if not grad:
        return
    diff = [(a, t) for a, t in zip(oa, ot) if t.requires_grad]
    assert [a.requires_grad for a in oa] == [t.requires_grad for t in ot]
    if not diff:
        return
    ws = [np.linspace(0.5, 1.5, t.numel()).reshape(tuple(t.shape)) for _, t in diff]
    loss_a = sum((a * ad.tensor(w)).sum() for (a, _), w in zip(diff, ws))
    loss_t = sum((t * torch.tensor(w)).sum() for (_, t), w in zip(diff, ws))
    wrt_a = [x for x in ta if x.requires_grad]
    wrt_t = [x for x in tt if x.requires_grad]
    ga = ad.autograd.grad(loss_a, wrt_a, allow_unused=True, materialize_grads=True)
    gt = torch.autograd.grad(loss_t, wrt_t, allow_unused=True, materialize_grads=True)
    for a, t in zip(ga, gt):
        np.testing.assert_allclose(_np(a), _np(t), rtol=rtol, atol=atol)


def _idx(L, v):
    return L.tensor(v)


# name -> (fn(L, *tensors), arrays)
VALUE_CASES = {
    "flip": (lambda L, x: L.flip(x, [0, 2]), [X234]),
    "flip_int_dim_method": (lambda L, x: (x.flip(-1), x.flip(0, 1), L.flip(x, dims=(1,))), [X34]),
    "flip_empty_dims": (lambda L, x: L.flip(x, []), [X34]),
    "fliplr": (lambda L, x: L.fliplr(x), [X234]),
    "flipud": (lambda L, x: x.flipud(), [X34]),
    "roll_flat": (lambda L, x: L.roll(x, 5), [X34]),
    "roll_dims": (lambda L, x: x.roll((1, -2), (0, 1)), [X34]),
    "roll_negative_dim": (lambda L, x: L.roll(x, 7, -1), [X234]),
    "rot90_default": (lambda L, x: L.rot90(x), [X34]),
    "rot90_k": (lambda L, x: (x.rot90(2), x.rot90(-1), x.rot90(3, [1, 0]), L.rot90(x, 4)), [X34]),
    "rot90_3d": (lambda L, x: L.rot90(x, 1, [0, 2]), [X234]),
    "repeat": (lambda L, x: x.repeat(2, 1, 3), [X34]),
    "repeat_zero": (lambda L, x: x.repeat(0, 2), [X34]),
    "tile": (lambda L, x: (L.tile(x, (2,)), x.tile((2, 1, 1, 2)), x.tile(2, 1), L.tile(x, dims=[3])), [X34]),
    "repeat_interleave_int": (lambda L, x: L.repeat_interleave(x, 2), [X34]),
    "repeat_interleave_dim": (lambda L, x: x.repeat_interleave(_idx(L, [1, 0, 3]), dim=0), [X34]),
    "repeat_interleave_tensor1": (lambda L, x: x.repeat_interleave(_idx(L, [2]), dim=1), [X34]),
    "repeat_interleave_output_size": (lambda L, x: L.repeat_interleave(x, 2, 0, output_size=6), [X34]),
    "repeat_interleave_counts": (lambda L: L.repeat_interleave(_idx(L, [2, 0, 1])), []),
    "scatter_src": (lambda L, x, s: L.scatter(x, 1, _idx(L, [[2, 0], [1, 3]]), s), [X34, X34[:2, :2]]),
    "scatter_value": (lambda L, x: x.scatter(0, _idx(L, [[1, 0, 2]]), -7.5), [X34]),
    "scatter_value_kw": (lambda L, x: L.scatter(x, 0, _idx(L, [[1, 0, 2]]), value=3), [X34]),
    "scatter_add": (lambda L, x, s: L.scatter_add(x, 0, _idx(L, [[1, 0], [1, 1], [2, 1]]), s), [X34, X234[0, :, :2]]),
    "scatter_add_int": (lambda L, x: x.scatter_add(1, _idx(L, [[0, 0], [3, 3]]), x), [INTS]),
    "index_add": (lambda L, x, s: x.index_add(1, _idx(L, [3, 0, 3]), s), [X34, X34[:, :3]]),
    "index_add_alpha": (lambda L, x, s: L.index_add(x, 0, _idx(L, [2, 0]), s, alpha=-2.5), [X34, X34[:2]]),
    "index_add_int": (lambda L, x: x.index_add(0, _idx(L, [0, 0]), x[:2]), [INTS]),
    "index_copy": (lambda L, x, s: x.index_copy(1, _idx(L, [3, 0]), s), [X34, X34[:, :2]]),
    "index_fill": (lambda L, x: (x.index_fill(1, _idx(L, [0, 2]), 1.5), L.index_fill(x, 0, _idx(L, [-1]), 2)), [X34]),
    "index_fill_tensor_value": (lambda L, x, v: x.index_fill(1, _idx(L, [1]), v.sum()), [X34, X34[0]]),
    "index_put": (lambda L, x, v: x.index_put((_idx(L, [0, 2]), _idx(L, [1, 3])), v), [X34, X34[0, :2]]),
    "index_put_bool": (lambda L, x, v: L.index_put(x, (_idx(L, [True, False, True]),), v), [X34, X34[0]]),
    "index_put_accumulate": (
        lambda L, x, v: x.index_put((_idx(L, [0, 0, 2]),), v, accumulate=True),
        [X34, X234[0]],
    ),
    "masked_fill": (lambda L, x: x.masked_fill(x > 0.2, -1.0), [X34]),
    "masked_fill_broadcast_mask": (lambda L, x: L.masked_fill(x, _idx(L, [True, False, False, True]), 0), [X34]),
    "masked_fill_tensor_value": (lambda L, x, v: x.masked_fill(x < 0, v.sum()), [X34, X34[0]]),
    "masked_fill_int": (lambda L, x: x.masked_fill(x == 2, 9), [INTS]),
    "masked_scatter": (lambda L, x, s: x.masked_scatter(x > 0, s), [X34, X234.reshape(-1)]),
    "masked_scatter_broadcast": (
        lambda L, x, s: L.masked_scatter(x, _idx(L, [[True], [False], [True]]), s),
        [X34, X234],
    ),
    "masked_select": (lambda L, x: L.masked_select(x, x > 0), [X34]),
    "masked_select_broadcast": (lambda L, x: x.masked_select(_idx(L, [[True, False, True, True]])), [X234]),
    "take": (lambda L, x: L.take(x, _idx(L, [[0, -1], [5, 11]])), [X34]),
    "take_method": (lambda L, x: x.take(_idx(L, 3)), [X34]),
    "take_along_dim": (lambda L, x: L.take_along_dim(x, _idx(L, [[0, 3], [1, 1], [2, 0]]), 1), [X34]),
    "take_along_dim_broadcast": (lambda L, x: x.take_along_dim(_idx(L, [[[0]], [[2]]]), 2), [X234]),
    "take_along_dim_flat": (lambda L, x: L.take_along_dim(x, _idx(L, [1, 7, 1])), [X34]),
    "take_along_dim_argsort": (lambda L, x: L.take_along_dim(x, L.argsort(x, 1), 1), [X34]),
    "tril_triu": (lambda L, x: (L.tril(x), x.triu(), L.tril(x, 1), x.triu(-1), L.triu(x, 5), L.tril(x, -5)), [X234]),
    "tril_inf": (lambda L, x: L.tril(x * float("inf")), [X34]),
    "tril_int": (lambda L, x: (x.tril(), L.triu(x, 1)), [INTS]),
    "diag_matrix": (lambda L, x: (L.diag(x), x.diag(1), x.diag(-2), x.diag(7)), [X34]),
    "diag_vector": (lambda L, x: (L.diag(x), x.diag(2), L.diag(x, -1)), [X34[0]]),
    "diag_embed": (lambda L, x: (L.diag_embed(x), x.diag_embed(1), L.diag_embed(x, -1, 0, 2)), [X234]),
    "diag_embed_dims": (lambda L, x: L.diag_embed(x, 0, -1, 0), [X34]),
    "trace": (lambda L, x: (L.trace(x), x.trace()), [X34]),
    "trace_int": (lambda L, x: L.trace(x), [INTS]),
    "broadcast_tensors": (lambda L, x, y: L.broadcast_tensors(x, y), [X34[:, :1], X34[0]]),
    "meshgrid_ij": (lambda L, x, y: L.meshgrid(x, y, indexing="ij"), [X34[0], X34[:, 0]]),
    "meshgrid_xy": (lambda L, x, y, z: L.meshgrid([x, y, z], indexing="xy"), [X34[0], X34[:, 0], X34[1, :2]]),
    "hstack": (lambda L, x, y: (L.hstack([x, y]), L.hstack((x[0], y[1]))), [X34, X34]),
    "vstack": (lambda L, x, y: (L.vstack([x, y]), L.vstack([x[0], y[1]]), L.row_stack([x, y[0]])), [X34, X34]),
    "dstack": (lambda L, x, y: (L.dstack([x, y]), L.dstack([x[0], y[1]]), L.dstack([x[0, 0], y[1, 1]])), [X34, X34]),
    "column_stack": (lambda L, x, y: (L.column_stack([x, y]), L.column_stack([x[0], y[1], x.T[:, :2]])), [X34, X34]),
    "atleast": (lambda L, x: (L.atleast_1d(x[0, 0]), L.atleast_2d(x[0]), L.atleast_3d(x), L.atleast_3d(x[0])), [X34]),
    "sort": (lambda L, x: L.sort(x), [X234]),
    "sort_dim_descending": (lambda L, x: x.sort(0, descending=True), [X34]),
    "sort_stable_ties": (lambda L, x: (L.sort(x, stable=True), L.sort(x, descending=True, stable=True)), [TIES]),
    "sort_kw": (lambda L, x: L.sort(x, dim=0, stable=True, descending=True), [TIES]),
    "sort_nan": (lambda L, x: (x.sort(stable=True), x.sort(descending=True, stable=True)), [NANS]),
    "sort_int": (lambda L, x: L.sort(x, dim=1, stable=True), [INTS]),
    "argsort": (lambda L, x: (L.argsort(x, stable=True), x.argsort(dim=0, descending=True, stable=True)), [TIES]),
    "msort": (lambda L, x: L.msort(x), [X34]),
    "topk": (lambda L, x: (L.topk(x, 2), x.topk(3, 0), x.topk(1, largest=False)), [X34]),
    "topk_nan": (lambda L, x: x.topk(1), [NANS]),
    "kthvalue": (lambda L, x: (L.kthvalue(x, 2), x.kthvalue(1, 0), x.kthvalue(3, 1, True)), [X34]),
    "clone": (lambda L, x: L.clone(x), [X34]),
    "unique": (lambda L, x: (L.unique(x), x.unique(return_inverse=True, return_counts=True)), [INTS]),
    "unique_dim": (lambda L, x: L.unique(x, return_inverse=True, return_counts=True, dim=1), [INTS[:, [0, 1, 0, 2]]]),
    "unique_consecutive": (
        lambda L, x: (L.unique_consecutive(x), L.unique_consecutive(x, return_inverse=True, return_counts=True)),
        [np.array([1, 1, 2, 2, 3, 1, 1, 2])],
    ),
    "unique_consecutive_dim": (
        lambda L, x: L.unique_consecutive(x, True, True, dim=0),
        [np.array([[1, 2], [1, 2], [3, 4], [1, 2]])],
    ),
    "nonzero": (lambda L, x: (L.nonzero(x), x.nonzero(as_tuple=True), L.argwhere(x)), [INTS - 2]),
    "where_one_arg": (lambda L, x: L.where(x > 2), [INTS]),
    "searchsorted": (
        lambda L, s, v: (L.searchsorted(s, v), L.searchsorted(s, v, right=True), L.searchsorted(s, v, side="right")),
        [np.array([0.0, 1.0, 1.0, 3.0]), np.array([[1.0, -2.0], [3.0, 4.0]])],
    ),
    "searchsorted_nd_int32": (
        lambda L, s, v: L.searchsorted(s, v, out_int32=True),
        [np.sort(X34, 1), X34[:, :2]],
    ),
    "searchsorted_sorter": (
        lambda L, s, v: L.searchsorted(s, v, sorter=L.argsort(s)),
        [np.array([3.0, 1.0, 2.0]), np.array([2.5, 0.0])],
    ),
    "searchsorted_scalar": (lambda L, s: L.searchsorted(s, 1.0), [np.array([0.0, 1.0, 2.0])]),
    "bucketize": (
        lambda L, x, b: (L.bucketize(x, b), L.bucketize(x, b, right=True), L.bucketize(x, b, out_int32=True)),
        [np.array([[1.0, 0.5], [3.0, 9.0]]), np.array([1.0, 3.0, 5.0])],
    ),
}


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_values_and_gradients_match_torch(name):
    fn, arrays = VALUE_CASES[name]
    check(fn, *arrays)


def test_float32_keeps_dtype():
    x = X34.astype(np.float32)
    for fn in (
        lambda L, x: L.flip(x, [0]),
        lambda L, x: x.scatter_reduce(1, _idx(L, [[0, 0]]), x[:1, :2], "amax"),
        lambda L, x: L.sort(x)[0],
        lambda L, x: x.tril(),
        lambda L, x: x.masked_fill(x > 0, 1.0),
        lambda L, x: x.index_fill(0, _idx(L, [1]), 2.0),
    ):
        check(fn, x, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# scatter_reduce: every reduction with and without include_self, ties and repeated indices

SRC = np.array([[1.0, 5.0, 5.0, -2.0], [0.5, 0.5, 3.0, 3.0]])
SELF = np.array([[5.0, 0.0, 1.0], [0.5, 2.0, -4.0]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_torch(reduce, include_self):
    if reduce == "amax" and not include_self:
        # SELF[0, 0] ties with the maximum of its group but is left out: torch still counts it when splitting
        # the gradient (the group's gradient sums to 2/3); ad splits it between the included ties (sums to 1)
        return _scatter_reduce_amax_excluded_self()
    index = [[0, 0, 0, 2], [1, 1, 2, 2]]
    check(lambda L, x, s: x.scatter_reduce(1, _idx(L, index), s, reduce, include_self=include_self), SELF, SRC)
    index = [[1, 0, 1], [0, 0, 1]]
    check(
        lambda L, x, s: L.scatter_reduce(x, 0, _idx(L, index), s, reduce, include_self=include_self), SELF, SRC[:, :3]
    )


def _scatter_reduce_amax_excluded_self():
    index = [[0, 0, 0, 2], [1, 1, 2, 2]]
    x = ad.tensor(SELF, requires_grad=True)
    src = ad.tensor(SRC, requires_grad=True)
    out = x.scatter_reduce(1, ad.tensor(index), src, "amax", include_self=False)
    expected = torch.tensor(SELF).scatter_reduce(1, torch.tensor(index), torch.tensor(SRC), "amax", include_self=False)
    np.testing.assert_array_equal(out.detach().numpy(), expected.numpy())
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(src.grad.numpy(), [[0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 0.5, 0.5]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "amax", "amin"])
def test_scatter_reduce_integers(reduce):
    check(lambda L, x: x.scatter_reduce(1, _idx(L, [[0, 0, 1, 1]] * 3), x, reduce, include_self=False), INTS)


def test_scatter_reduce_mean_integers_floors():
    check(lambda L, x, s: x.scatter_reduce(1, _idx(L, [[0, 0, 1, 1]] * 3), s, "mean"), INTS, INTS - 4)


def test_scatter_with_reduce_matches_torch_values():
    # torch has no derivative for scatter(reduce=...) (ad's is scatter_reduce's): compare values only
    check(lambda L, x, s: L.scatter(x, 1, _idx(L, [[0, 0, 2]]), s, reduce="multiply"), SELF, SRC[:, :3], grad=False)
    check(lambda L, x, s: x.scatter(1, _idx(L, [[0, 0, 1]]), s, reduce="add"), SELF, SRC[:1, :3], grad=False)


def test_repeated_indices_accumulate_where_torch_adds():
    check(lambda L, x, s: x.index_add(0, _idx(L, [1, 1, 1]), s), X34, X34)
    check(lambda L, x, v: L.index_put(x, (_idx(L, [1, 1]), _idx(L, [2, 2])), v, accumulate=True), X34, X34[0, :2])


def test_repeated_indices_overwrite_last_write_wins():
    # torch's CPU loop writes in index order; the gradient goes to the element that was written last
    x = ad.tensor(np.zeros(3), requires_grad=True)
    src = ad.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    out = x.index_copy(0, ad.tensor([1, 1, 0]), src)
    np.testing.assert_array_equal(out.detach().numpy(), [3.0, 2.0, 0.0])
    out.sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])
    t = torch.zeros(3).index_copy(0, torch.tensor([1, 1, 0]), torch.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(out.detach().numpy(), t.numpy())


def test_topk_kthvalue_gradients_at_ties_go_to_the_chosen_index():
    a = ad.tensor(TIES, requires_grad=True)
    values, indices = a.topk(2)
    values.sum().backward()
    expected = np.zeros_like(TIES)
    np.put_along_axis(expected, indices.numpy(), 1.0, axis=1)
    np.testing.assert_array_equal(a.grad.numpy(), expected)
    t = torch.tensor(TIES)
    np.testing.assert_array_equal(values.detach().numpy(), t.topk(2).values.numpy())


def test_scatter_reduce_amax_splits_the_gradient_between_ties():
    check(
        lambda L, x, s: x.scatter_reduce(1, _idx(L, [[0, 0, 0, 0]]), s, "amax"),
        np.array([[5.0, 1.0]]),
        np.array([[5.0, 2.0, 5.0, 1.0]]),
    )


# ---------------------------------------------------------------------------------------------------------
# grad_fn names, out=, in-place variants


def test_grad_fn_names_follow_torch():
    x = ad.tensor(X34, requires_grad=True)
    names = {
        "FlipBackward0": x.flip(0),
        "RollBackward0": x.roll(1),
        "Rot90Backward0": x.rot90(),
        "RepeatBackward0": x.tile((2,)),
        "TakeBackward0": x.take(ad.tensor([0])),
        "MaskedSelectBackward0": x.masked_select(x > 0),
        "SortBackward0": x.sort()[0],
        "TopkBackward0": x.topk(1)[0],
        "KthvalueBackward0": x.kthvalue(1)[0],
        "GatherBackward0": x.take_along_dim(ad.tensor([[0]]), 1),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name


OUT_CASES = {
    "scatter": lambda L, x, out: L.scatter(x, 0, _idx(L, [[1, 0]]), x[:1, :2], out=out),
    "scatter_add": lambda L, x, out: L.scatter_add(x, 0, _idx(L, [[1, 0]]), x, out=out),
    "scatter_reduce": lambda L, x, out: L.scatter_reduce(x, 0, _idx(L, [[1, 0]]), x, "amax", out=out),
    "index_add": lambda L, x, out: L.index_add(x, 0, _idx(L, [1]), x[:1], out=out),
    "index_copy": lambda L, x, out: L.index_copy(x, 0, _idx(L, [1]), x[:1], out=out),
    "masked_select": lambda L, x, out: L.masked_select(x, x > 0, out=out),
    "take": lambda L, x, out: L.take(x, _idx(L, [2, 1]), out=out),
    "take_along_dim": lambda L, x, out: L.take_along_dim(x, _idx(L, [[1], [0], [0]]), 1, out=out),
    "tril": lambda L, x, out: L.tril(x, out=out),
    "triu": lambda L, x, out: L.triu(x, 1, out=out),
    "diag": lambda L, x, out: L.diag(x, out=out),
    "hstack": lambda L, x, out: L.hstack([x, x], out=out),
    "vstack": lambda L, x, out: L.vstack([x, x], out=out),
    "dstack": lambda L, x, out: L.dstack([x, x], out=out),
    "column_stack": lambda L, x, out: L.column_stack([x, x], out=out),
    "msort": lambda L, x, out: L.msort(x, out=out),
}


@pytest.mark.parametrize("name", sorted(OUT_CASES))
def test_out_matches_torch(name):
    fn = OUT_CASES[name]
    out_a, out_t = ad.zeros(0), torch.zeros(0, dtype=torch.float64)
    ra = fn(ad, ad.tensor(X34), out_a)
    fn(torch, torch.tensor(X34), out_t)
    assert ra is out_a
    np.testing.assert_allclose(out_a.numpy(), out_t.numpy())


def test_out_with_tuples_and_integer_results():
    va, ia = ad.zeros(0), ad.zeros(0, dtype=ad.int64)
    vt, it = torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
    for fa, ft in (
        (
            lambda o: ad.sort(ad.tensor(TIES), dim=1, stable=True, out=o),
            lambda o: torch.sort(torch.tensor(TIES), dim=1, stable=True, out=o),
        ),
        (lambda o: ad.topk(ad.tensor(X34), 2, out=o), lambda o: torch.topk(torch.tensor(X34), 2, out=o)),
        (lambda o: ad.kthvalue(ad.tensor(X34), 2, out=o), lambda o: torch.kthvalue(torch.tensor(X34), 2, out=o)),
    ):
        ra = fa((va, ia))
        ft((vt, it))
        assert ra.values is va and ra.indices is ia
        np.testing.assert_allclose(va.numpy(), vt.numpy())
        np.testing.assert_array_equal(ia.numpy(), it.numpy())
    oa, ot = ad.zeros(0, dtype=ad.int64), torch.zeros(0, dtype=torch.int64)
    ad.nonzero(ad.tensor(INTS - 2), out=oa)
    torch.nonzero(torch.tensor(INTS - 2), out=ot)
    np.testing.assert_array_equal(oa.numpy(), ot.numpy())
    ad.searchsorted(ad.tensor([1.0, 2.0]), ad.tensor([1.5, 3.0]), out=oa)
    torch.searchsorted(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 3.0]), out=ot)
    np.testing.assert_array_equal(oa.numpy(), ot.numpy())
    ad.bucketize(ad.tensor([1.5, 3.0]), ad.tensor([1.0, 2.0]), out=oa)
    torch.bucketize(torch.tensor([1.5, 3.0]), torch.tensor([1.0, 2.0]), out=ot)
    np.testing.assert_array_equal(oa.numpy(), ot.numpy())


def test_out_refuses_inputs_that_require_grad():
    x = ad.tensor(X34, requires_grad=True)
    with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
        ad.tril(x, out=ad.zeros(3, 4))
    with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
        ad.sort(x, out=(ad.zeros(0), ad.zeros(0, dtype=ad.int64)))
    with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
        ad.hstack([ad.tensor(X34), x], out=ad.zeros(0))


INPLACE_CASES = {
    "scatter_": (lambda L, x, s: x.scatter_(1, _idx(L, [[2, 0], [1, 3]]), s[:2, :2]), [X34, X34]),
    "scatter_value_": (lambda L, x: x.scatter_(0, _idx(L, [[1, 0, 2]]), 4.0), [X34]),
    "scatter_add_": (lambda L, x, s: x.scatter_add_(0, _idx(L, [[1, 0, 1]]), s), [X34, X34[:1, :3]]),
    "scatter_reduce_": (
        lambda L, x, s: x.scatter_reduce_(1, _idx(L, [[0, 0, 2]]), s, "amin", include_self=False),
        [X34, -X34[:1, :3]],
    ),
    "index_add_": (lambda L, x, s: x.index_add_(0, _idx(L, [2, 2]), s[:2], alpha=3), [X34, X34]),
    "index_copy_": (lambda L, x, s: x.index_copy_(1, _idx(L, [1, 3]), s[:, :2]), [X34, X34]),
    "index_fill_": (lambda L, x: x.index_fill_(1, _idx(L, [1, 3]), -2.0), [X34]),
    "index_put_": (lambda L, x, v: x.index_put_((_idx(L, [0, 2]),), v[0], accumulate=True), [X34, X34]),
    "masked_fill_": (lambda L, x: x.masked_fill_(_idx(L, [True, False, True, False]), 7.0), [X34]),
    "masked_scatter_": (lambda L, x, s: x.masked_scatter_(_idx(L, [[True], [False], [True]]), s), [X34, X34]),
    "tril_": (lambda L, x: x.tril_(1), [X34]),
    "triu_": (lambda L, x: x.triu_(-1), [X34]),
}


@pytest.mark.parametrize("name", sorted(INPLACE_CASES))
def test_inplace_matches_torch(name):
    fn, arrays = INPLACE_CASES[name]
    # on a non-leaf in the graph (recorded, gradient flows through the old value)
    check(lambda L, x, *rest: (lambda y: (fn(L, y, *rest), y)[1])(x * 1.0), *arrays)
    # on a plain tensor: modified in place, returns self, version bumped
    xa = ad.tensor(arrays[0].copy())
    xt = torch.tensor(arrays[0].copy())
    rest_a = [ad.tensor(a) for a in arrays[1:]]
    rest_t = [torch.tensor(a) for a in arrays[1:]]
    version = xa._version
    assert fn(ad, xa, *rest_a) is xa
    fn(torch, xt, *rest_t)
    assert xa._version > version
    np.testing.assert_allclose(xa.numpy(), xt.numpy())


def test_inplace_on_leaf_that_requires_grad_raises():
    x = ad.tensor(X34, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.masked_fill_(x > 0, 0.0)


def test_inplace_masked_fill_cannot_broadcast_self():
    with pytest.raises(RuntimeError):
        torch.zeros(4).masked_fill_(torch.zeros(3, 4, dtype=torch.bool), 1.0)
    with pytest.raises(RuntimeError):
        ad.zeros(4).masked_fill_(ad.zeros(3, 4, dtype=ad.bool), 1.0)


def test_forward_mode_through_inplace_and_sort():
    import ad.autograd.forward_ad as fwAD

    x = X34
    v = RNG.standard_normal(x.shape)
    with fwAD.dual_level():
        d = fwAD.make_dual(ad.tensor(x), ad.tensor(v))
        tan = fwAD.unpack_dual(d.sort(1).values).tangent
        y = d * 1.0
        y.masked_fill_(ad.tensor(x > 0), 0.0)
        tan_fill = fwAD.unpack_dual(y).tangent
    order = np.argsort(x, 1, kind="stable")
    np.testing.assert_allclose(tan.numpy(), np.take_along_axis(v, order, 1))
    np.testing.assert_allclose(tan_fill.numpy(), np.where(x > 0, 0.0, v))


def test_unique_is_a_constant():
    x = ad.tensor([3.0, 1.0, 3.0], requires_grad=True)
    u = ad.unique(x)
    assert not u.requires_grad
    np.testing.assert_array_equal(u.numpy(), torch.unique(torch.tensor([3.0, 1.0, 3.0])).numpy())


def test_broadcast_shapes_and_meshgrid_default():
    assert ad.broadcast_shapes((2, 1), (3,), 1) == tuple(torch.broadcast_shapes((2, 1), (3,), 1))
    assert ad.broadcast_shapes() == tuple(torch.broadcast_shapes())
    with pytest.warns(UserWarning, match="indexing"):
        grids = ad.meshgrid(ad.tensor([1.0, 2.0]), ad.tensor([3.0, 4.0, 5.0]))
    assert grids[0].shape == (2, 3)


# ---------------------------------------------------------------------------------------------------------
# errors: torch's exception classes

ERROR_CASES = {
    "flip_repeated_dim": lambda L, x: L.flip(x, [0, 0]),
    "flip_dim_out_of_range": lambda L, x: L.flip(x, [2]),
    "fliplr_1d": lambda L, x: L.fliplr(x[0]),
    "flipud_0d": lambda L, x: L.flipud(x[0, 0]),
    "roll_misaligned": lambda L, x: L.roll(x, (1, 2), (0,)),
    "rot90_one_dim": lambda L, x: L.rot90(x, 1, [0]),
    "rot90_same_dims": lambda L, x: L.rot90(x, 1, [1, 1]),
    "rot90_1d": lambda L, x: L.rot90(x[0]),
    "repeat_too_few": lambda L, x: x.repeat(2),
    "repeat_interleave_negative": lambda L, x: L.repeat_interleave(x, -1),
    "repeat_interleave_size": lambda L, x: L.repeat_interleave(x, _idx(L, [1, 2]), 0),
    "scatter_float_index": lambda L, x: x.scatter(0, _idx(L, [[0.0]]), x),
    "scatter_index_oob": lambda L, x: x.scatter(0, _idx(L, [[5]]), x),
    "scatter_index_ndim": lambda L, x: x.scatter(0, _idx(L, [0]), x),
    "scatter_index_too_big": lambda L, x: x.scatter(1, _idx(L, [[0, 0, 0, 0, 0]]), x),
    "scatter_dtype": lambda L, x: x.scatter(0, _idx(L, [[0]]), x.float()),
    "scatter_bad_reduce": lambda L, x: x.scatter(0, _idx(L, [[0]]), x, reduce="max"),
    "scatter_reduce_bad": lambda L, x: x.scatter_reduce(0, _idx(L, [[0]]), x, "mul"),
    "index_add_oob": lambda L, x: x.index_add(0, _idx(L, [3]), x[:1]),
    "index_fill_2d_index": lambda L, x: x.index_fill(0, _idx(L, [[0]]), 1.0),
    "index_fill_vector_value": lambda L, x: x.index_fill(0, _idx(L, [0]), x[0]),
    "masked_fill_float_mask": lambda L, x: x.masked_fill(x, 1.0),
    "masked_fill_vector_value": lambda L, x: x.masked_fill(x > 0, x[0]),
    "masked_select_float_mask": lambda L, x: x.masked_select(x),
    "take_oob": lambda L, x: x.take(_idx(L, [12])),
    "take_along_dim_ndim": lambda L, x: L.take_along_dim(x, _idx(L, [0]), 1),
    "take_along_dim_no_broadcast": lambda L, x: L.take_along_dim(x, _idx(L, [[0], [1]]), 1),
    "tril_1d": lambda L, x: L.tril(x[0]),
    "diag_3d": lambda L, x: L.diag(x[None]),
    "trace_1d": lambda L, x: L.trace(x[0]),
    "diag_embed_same_dims": lambda L, x: L.diag_embed(x, 0, 1, 1),
    "broadcast_tensors_mismatch": lambda L, x: L.broadcast_tensors(x, x[:2]),
    "broadcast_shapes_mismatch": lambda L, x: L.broadcast_shapes((2,), (3,)),
    "meshgrid_bad_indexing": lambda L, x: L.meshgrid(x[0], indexing="yx"),
    "meshgrid_2d": lambda L, x: L.meshgrid(x, indexing="ij"),
    "hstack_empty": lambda L, x: L.hstack([]),
    "hstack_tensor": lambda L, x: L.hstack(x),
    "topk_k_too_big": lambda L, x: x.topk(5),
    "kthvalue_k_too_big": lambda L, x: x.kthvalue(5),
    "sort_dim": lambda L, x: x.sort(2),
    "searchsorted_opposite_side": lambda L, x: L.searchsorted(x[0], x[0], right=True, side="left"),
    "searchsorted_bad_side": lambda L, x: L.searchsorted(x[0], x[0], side="middle"),
    "searchsorted_shape": lambda L, x: L.searchsorted(x, x[0]),
    "bucketize_2d": lambda L, x: L.bucketize(x[0], x),
    "index_put_too_many": lambda L, x: x.index_put((_idx(L, [0]),) * 3, x[0, 0]),
    "index_put_shape": lambda L, x: x.index_put((_idx(L, [0, 1]),), x[:3]),
}


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_errors_raise_torchs_exception_class(name):
    fn = ERROR_CASES[name]
    with pytest.raises(Exception) as et:
        fn(torch, torch.tensor(X34))
    with pytest.raises(type(et.value)):
        fn(ad, ad.tensor(X34))


def test_bad_input_leaves_inplace_target_unchanged():
    x = ad.tensor(X34.copy())
    with pytest.raises(RuntimeError):
        x.scatter_(0, ad.tensor([[7]]), 1.0)
    np.testing.assert_array_equal(x.numpy(), X34)


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_gradient_is_exact_at_zeros(include_self):
    src = np.array([[1.0, 0.0, 5.0, -2.0], [0.5, 0.0, 0.0, 3.0]])
    index = [[0, 0, 0, 2], [1, 1, 2, 2]]
    check(lambda L, x, s: x.scatter_reduce(1, _idx(L, index), s, "prod", include_self=include_self), SELF, src)


# ---------------------------------------------------------------------------------------------------------
# edge cases (0-d, empty, offsets past the end, dtype mixes) against torch: values, dtypes, exception classes

EDGE_CASES = {
    "flip0d": lambda L: L.flip(L.tensor(2.0), []),
    "flip0d_dim0": lambda L: L.flip(L.tensor(2.0), [0]),
    "flip_empty": lambda L: L.flip(L.zeros(0, 3), [0, 1]),
    "roll0d": lambda L: L.roll(L.tensor(2.0), 1),
    "roll_empty": lambda L: L.roll(L.zeros(0, 3), 1, 0),
    "repeat0d": lambda L: L.tensor(2.0).repeat(3, 2),
    "tile0d": lambda L: L.tile(L.tensor(2.0), (3,)),
    "tile_empty": lambda L: L.tile(L.zeros(2, 0), (2, 2)),
    "ri_0d": lambda L: L.repeat_interleave(L.tensor(2.0), 3),
    "ri_empty": lambda L: L.repeat_interleave(L.zeros(0), 3),
    "scatter_empty_index": lambda L: L.tensor(X34).scatter(0, L.zeros(0, 4, dtype=L.int64), L.tensor(X34)),
    "scatter_0d": lambda L: L.tensor(1.0).scatter(0, L.tensor(0), L.tensor(5.0)),
    "scatter_add_0d": lambda L: L.tensor(1.0).scatter_add(0, L.tensor(0), L.tensor(5.0)),
    "index_add_0d": lambda L: L.tensor(1.0).index_add(0, L.tensor(0), L.tensor(5.0)),
    "index_add_0d_index": lambda L: L.tensor(X34).index_add(0, L.tensor(1), L.tensor(X34[:1])),
    "index_fill_0d_index": lambda L: L.tensor(X34).index_fill(1, L.tensor(1), 0.0),
    "index_fill_empty": lambda L: L.tensor(X34).index_fill(1, L.zeros(0, dtype=L.int64), 0.0),
    "masked_select_0d": lambda L: L.masked_select(L.tensor(2.0), L.tensor(True)),
    "masked_fill_0d": lambda L: L.tensor(2.0).masked_fill(L.tensor(True), 1.0),
    "masked_fill_broadcast_self": lambda L: L.tensor(X34[0]).masked_fill(L.tensor(X34 > 0), 1.0),
    "masked_scatter_none": lambda L: L.tensor(X34).masked_scatter(L.tensor(X34 > 100), L.zeros(0)),
    "take_0d": lambda L: L.take(L.tensor(2.0), L.tensor(0)),
    "take_empty": lambda L: L.take(L.tensor(X34), L.zeros(0, dtype=L.int64)),
    "tad_neg": lambda L: L.take_along_dim(L.tensor(X34), L.tensor([[-1], [0], [1]]), 1),
    "tril_empty": lambda L: L.tril(L.zeros(0, 3)),
    "diag_empty": lambda L: L.diag(L.zeros(0)),
    "diag_big_offset": lambda L: L.diag(L.tensor(X34), 10),
    "diag_embed_0d": lambda L: L.diag_embed(L.tensor(X34[0])),
    "trace_empty": lambda L: L.trace(L.zeros(0, 3)),
    "trace_f32": lambda L: L.trace(L.tensor(X34.astype(np.float32))),
    "trace_int32": lambda L: L.trace(L.tensor(X34.astype(np.int32))),
    "sort0d": lambda L: L.sort(L.tensor(2.0)),
    "sort_empty": lambda L: L.sort(L.zeros(0)),
    "argsort0d": lambda L: L.argsort(L.tensor(2.0)),
    "topk0d": lambda L: L.topk(L.tensor(2.0), 1),
    "topk_k0": lambda L: L.topk(L.tensor(X34), 0),
    "topk_unsorted": lambda L: L.topk(L.tensor(X34), 2, sorted=False),
    "kth0d": lambda L: L.kthvalue(L.tensor(2.0), 1),
    "kth0d_keep": lambda L: L.kthvalue(L.tensor(2.0), 1, keepdim=True),
    "msort1d": lambda L: L.msort(L.tensor(X34[0])),
    "unique_empty": lambda L: L.unique(L.zeros(0)),
    "unique_float_nan": lambda L: L.unique(L.tensor([1.0, float("nan"), 1.0])),
    "uc_empty": lambda L: L.unique_consecutive(L.zeros(0), return_counts=True),
    "nonzero0d": lambda L: L.nonzero(L.tensor(2.0)),
    "nonzero0d_false": lambda L: L.nonzero(L.tensor(0.0)),
    "nonzero0d_tuple": lambda L: L.nonzero(L.tensor(2.0), as_tuple=True),
    "nonzero_bool": lambda L: L.nonzero(L.tensor(X34 > 0)),
    "searchsorted_0d_values": lambda L: L.searchsorted(L.tensor([1.0, 2.0]), L.tensor(1.5)),
    "searchsorted_int_float": lambda L: L.searchsorted(L.tensor([1, 2, 3]), L.tensor([1.5, 2.0])),
    "bucketize_scalar": lambda L: L.bucketize(1.5, L.tensor([1.0, 2.0])),
    "meshgrid_0d": lambda L: L.meshgrid(L.tensor(1.0), L.tensor([1.0, 2.0]), indexing="xy"),
    "meshgrid_one": lambda L: L.meshgrid(L.tensor([1.0, 2.0]), indexing="xy"),
    "bt_one": lambda L: L.broadcast_tensors(L.tensor(X34)),
    "hstack_0d": lambda L: L.hstack([L.tensor(1.0), L.tensor(2.0)]),
    "column_stack_0d": lambda L: L.column_stack([L.tensor(1.0), L.tensor(2.0)]),
    "rot90_neg": lambda L: L.rot90(L.tensor(X34), -3, [-1, -2]),
    "scatter_value_int": lambda L: L.tensor([1, 2, 3]).scatter(0, L.tensor([1]), 2.7),
    "masked_fill_int_float": lambda L: L.tensor([1, 2, 3]).masked_fill(L.tensor([True, False, False]), 2.7),
    "index_fill_int_float": lambda L: L.tensor([1, 2, 3]).index_fill(0, L.tensor([1]), 2.7),
    "scatter_reduce_mean_int_self": lambda L: L.tensor([1, 2, 3]).scatter_reduce(
        0, L.tensor([0, 0]), L.tensor([4, 5]), "mean", include_self=False
    ),
    "index_put_neg": lambda L: L.tensor(X34).index_put((L.tensor([-1]),), L.tensor(0.0)),
    "index_put_scalar_value": lambda L: L.tensor(X34).index_put((L.tensor([0]), L.tensor([1])), L.tensor(5.0)),
    "repeat_interleave_neg_dim": lambda L: L.tensor(X34).repeat_interleave(2, dim=-1),
    "sort_bool": lambda L: L.sort(L.tensor([True, False, True])),
    "topk_int": lambda L: L.topk(L.tensor([3, 1, 2]), 2),
    "masked_select_int": lambda L: L.masked_select(L.tensor([3, 1, 2]), L.tensor([True, False, True])),
}


def _flat(o):
    if isinstance(o, (tuple, list)):
        return [x for p in o for x in _flat(p)]
    return [o]


@pytest.fixture
def torch_float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_match_torch(name, torch_float64):
    fn = EDGE_CASES[name]
    try:
        expected = _flat(fn(torch))
    except Exception as e:  # noqa: BLE001 - whatever torch raises, ad raises the same class
        with pytest.raises(type(e)):
            fn(ad)
        return
    got = _flat(fn(ad))
    assert len(got) == len(expected)
    for a, t in zip(got, expected):
        assert tuple(a.shape) == tuple(t.shape)
        assert str(a.dtype) == str(t.dtype).replace("torch.", "")
        np.testing.assert_allclose(a.numpy(), t.numpy(), equal_nan=True)


def test_setitem_on_a_tensor_that_requires_grad_overwrites_inf_and_nan():
    # (was self * (1 - mask) + placed: inf * 0 = nan stayed in the written position)
    h = ad.tensor([2.0, 3.0, 4.0], requires_grad=True)
    r = h * ad.tensor([float("inf"), float("nan"), 1.0])
    r[ad.tensor([True, True, False])] = 5.0
    assert r.tolist() == [5.0, 5.0, 4.0]
    r.sum().backward()
    assert h.grad.tolist()[2] == 1.0
