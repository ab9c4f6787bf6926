# ruff: noqa: E501 - one case a line
"""The functionals added in session 15 (pdist, channel_shuffle, upsample_* aliases, the multilabel and
distance-function triplet losses, lp_pool, max_unpool, adaptive_max_pool3d, the *_with_indices names,
fractional_max_pool, embedding_bag, affine_grid, grid_sample, ctc_loss) and their Module classes, against torch
in float64: values and gradients (of ``sum(out * w)`` with fixed non-uniform ``w``), finite differences
(gradcheck / gradgradcheck on small inputs), and torch's exception classes.

Each case is ``(id, call, inputs)``: ``call(F, lib, *inputs)`` runs the same code on ``ad`` and on torch; float
numpy inputs become leaves requiring grad in both, integer ones constant index tensors.
"""


import numpy as np
import pytest
from test_nn_functional import _compare as _compare_with_torch  # (values and gradients of sum(out * w))

import ad
from ad.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

FA = ad.nn.functional
FT = torch.nn.functional
RNG = np.random.default_rng(0)


def _r(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, shape)


def _compare(call, inputs, rtol=1e-10, atol=1e-10):
    _compare_with_torch(call, inputs, rtol, atol)


_ROWS = _r(5, 3)
_ROWS[3] = _ROWS[1]  # coinciding rows: torch's zero gradient at a zero distance
_ML_TARGET = np.array([[3, 0, -1, 1, 2], [1, 2, 3, -1, 0], [4, 4, 1, -1, -1]])
_POS = _r(2, 3, 5, 6, lo=0.2, hi=2.0)  # (non-integer powers of negative numbers are NaN in both)
_INF = float("inf")

CASES = [
    ("pdist", lambda F, L, x: F.pdist(x), [_ROWS]),
    ("pdist_p1", lambda F, L, x: F.pdist(x, 1), [_ROWS]),
    ("pdist_p3.5", lambda F, L, x: F.pdist(x, 3.5), [_ROWS]),
    ("pdist_inf", lambda F, L, x: F.pdist(x, _INF), [_r(4, 3)]),
    ("pdist_one_row", lambda F, L, x: F.pdist(x), [_r(1, 3)]),
    ("channel_shuffle", lambda F, L, x: F.channel_shuffle(x, 3), [_r(2, 6, 3, 2)]),
    ("channel_shuffle_3d", lambda F, L, x: F.channel_shuffle(x, 2), [_r(2, 4, 3)]),
    ("upsample_bilinear", lambda F, L, x: F.upsample_bilinear(x, scale_factor=2), [_r(1, 2, 3, 2)]),
    ("upsample_bilinear_size", lambda F, L, x: F.upsample_bilinear(x, size=(5, 4)), [_r(1, 2, 3, 2)]),
    ("upsample_nearest", lambda F, L, x: F.upsample_nearest(x, size=(5, 3)), [_r(1, 2, 3, 2)]),
    ("multilabel_soft_margin", lambda F, L, x, y: F.multilabel_soft_margin_loss(x, y), [_r(3, 5), _r(3, 5, lo=0, hi=1)]),
    ("multilabel_soft_margin_weight", lambda F, L, x, y, w: F.multilabel_soft_margin_loss(x, y, w, reduction="none"), [_r(3, 5), _r(3, 5, lo=0, hi=1), _r(5, lo=0, hi=1)]),
    ("multilabel_soft_margin_sum_1d", lambda F, L, x, y: F.multilabel_soft_margin_loss(x, y, reduction="sum"), [_r(5), _r(5, lo=0, hi=1)]),
    ("multilabel_margin", lambda F, L, x, t: F.multilabel_margin_loss(x, t), [_r(3, 5), _ML_TARGET]),
    ("multilabel_margin_none", lambda F, L, x, t: F.multilabel_margin_loss(x, t, reduction="none"), [_r(3, 5), _ML_TARGET]),
    ("multilabel_margin_1d_sum", lambda F, L, x, t: F.multilabel_margin_loss(x, t, reduction="sum"), [_r(5), _ML_TARGET[2]]),
    ("triplet_distance", lambda F, L, a, p, n: F.triplet_margin_with_distance_loss(a, p, n), [_r(4, 3), _r(4, 3), _r(4, 3)]),
    ("triplet_distance_swap_cos", lambda F, L, a, p, n: F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda u, v: 1.0 - F.cosine_similarity(u, v), margin=0.5, swap=True, reduction="none"), [_r(4, 3), _r(4, 3), _r(4, 3)]),
    ("triplet_distance_sum", lambda F, L, a, p, n: F.triplet_margin_with_distance_loss(a, p, n, margin=2.0, reduction="sum"), [_r(4, 3), _r(4, 3), _r(4, 3)]),
    ("lp_pool1d", lambda F, L, x: F.lp_pool1d(x, 2, 2), [_r(2, 3, 7)]),
    ("lp_pool1d_stride_ceil", lambda F, L, x: F.lp_pool1d(x, 3, 3, stride=2, ceil_mode=True), [_r(2, 3, 8, lo=0.1)]),
    ("lp_pool2d", lambda F, L, x: F.lp_pool2d(x, 1.5, (2, 3), stride=1), [_POS]),
    ("lp_pool2d_unbatched", lambda F, L, x: F.lp_pool2d(x, 2, 2, ceil_mode=True), [_r(3, 5, 5)]),
    ("lp_pool2d_inf", lambda F, L, x: F.lp_pool2d(x, _INF, 2), [_r(2, 3, 4, 4)]),
    ("lp_pool2d_minus_inf", lambda F, L, x: F.lp_pool2d(x, -_INF, 2), [_r(2, 3, 4, 4)]),
    ("lp_pool3d", lambda F, L, x: F.lp_pool3d(x, 2, 2), [_r(1, 2, 4, 5, 4)]),
    ("max_unpool1d", lambda F, L, x: F.max_unpool1d(*F.max_pool1d(x, 2, return_indices=True), 2), [_r(2, 3, 8)]),
    ("max_unpool1d_output_size", lambda F, L, x: F.max_unpool1d(*F.max_pool1d(x, 2, return_indices=True), 2, output_size=[7]), [_r(3, 7)]),
    ("max_unpool2d", lambda F, L, x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2), [_r(2, 3, 6, 4)]),
    ("max_unpool2d_padding", lambda F, L, x: F.max_unpool2d(*F.max_pool2d(x, 2, 2, 1, return_indices=True), 2, 2, 1, output_size=(1, 2, 5, 6)), [_r(1, 2, 5, 6)]),
    ("max_unpool3d", lambda F, L, x: F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True), 2), [_r(1, 2, 4, 6, 4)]),
    ("max_unpool3d_unbatched", lambda F, L, x: F.max_unpool3d(*F.max_pool3d(x, (1, 2, 2), return_indices=True), (1, 2, 2), output_size=(3, 5, 5)), [_r(2, 3, 4, 4)]),
    ("adaptive_max_pool3d", lambda F, L, x: F.adaptive_max_pool3d(x, (2, 3, None), return_indices=True), [_r(2, 2, 5, 7, 3)]),
    ("adaptive_max_pool3d_unbatched", lambda F, L, x: F.adaptive_max_pool3d(x, 2), [_r(2, 5, 4, 3)]),
    ("adaptive_max_pool1d_with_indices", lambda F, L, x: F.adaptive_max_pool1d_with_indices(x, 3), [_r(2, 3, 7)]),
    ("adaptive_max_pool2d_with_indices", lambda F, L, x: F.adaptive_max_pool2d_with_indices(x, (3, 2)), [_r(2, 3, 7, 5)]),
    ("adaptive_max_pool3d_with_indices", lambda F, L, x: F.adaptive_max_pool3d_with_indices(x, 2), [_r(1, 3, 4, 5, 3)]),
    ("max_pool3d_with_indices", lambda F, L, x: F.max_pool3d_with_indices(x, 2, 1, 1), [_r(1, 2, 4, 3, 4)]),
    ("affine_grid", lambda F, L, t: F.affine_grid(t, [2, 3, 4, 5], align_corners=False), [_r(2, 2, 3)]),
    ("affine_grid_corners", lambda F, L, t: F.affine_grid(t, [2, 3, 1, 5], align_corners=True), [_r(2, 2, 3)]),
    ("affine_grid_3d", lambda F, L, t: F.affine_grid(t, [1, 1, 3, 4, 2], align_corners=False), [_r(1, 3, 4)]),
    ("affine_grid_3d_corners", lambda F, L, t: F.affine_grid(t, [2, 1, 3, 2, 4], align_corners=True), [_r(2, 3, 4)]),
    ("grid_sample_affine", lambda F, L, x, t: F.grid_sample(x, F.affine_grid(t, [2, 3, 4, 6], align_corners=False), align_corners=False), [_r(2, 3, 5, 4), _r(2, 2, 3, lo=-1, hi=1)]),
    ("grid_sample_default_align", lambda F, L, x, g: F.grid_sample(x, g), [_r(1, 2, 3, 4), _r(1, 3, 2, 2, lo=-1.3, hi=1.3)]),
]
_EB_WEIGHT = _r(6, 3)
_EB_INDEX = np.array([1, 2, 4, 4, 0, 3, 5, 1])
_EB_OFFSETS = np.array([0, 3, 3, 5])  # (an empty bag)
for _mode in ("sum", "mean", "max"):
    for _padding in (None, 4, -2):
        for _last in (False, True):
            CASES.append((f"embedding_bag_{_mode}_{_padding}_{_last}", lambda F, L, w, i, o, m=_mode, p=_padding, c=_last: F.embedding_bag(i, w, o, mode=m, padding_idx=p, include_last_offset=c), [_EB_WEIGHT, _EB_INDEX, _EB_OFFSETS]))
    CASES.append((f"embedding_bag_2d_{_mode}", lambda F, L, w, i, m=_mode: F.embedding_bag(i, w, mode=m), [_EB_WEIGHT, _EB_INDEX.reshape(2, 4)]))
CASES += [
    ("embedding_bag_per_sample_weights", lambda F, L, w, i, o, p: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=p, padding_idx=4), [_EB_WEIGHT, _EB_INDEX, _EB_OFFSETS, _r(8)]),
    ("embedding_bag_per_sample_weights_2d", lambda F, L, w, i, p: F.embedding_bag(i, w, mode="sum", per_sample_weights=p), [_EB_WEIGHT, _EB_INDEX.reshape(4, 2), _r(4, 2)]),
    ("embedding_bag_default_mean_int32", lambda F, L, w, i, o: F.embedding_bag(i, w, o), [_EB_WEIGHT, _EB_INDEX.astype(np.int32), _EB_OFFSETS.astype(np.int32)]),
    ("embedding_bag_scale_grad_by_freq_distinct", lambda F, L, w, i, o: F.embedding_bag(i, w, o, mode="sum", scale_grad_by_freq=True), [_EB_WEIGHT, np.array([1, 2, 4, 3, 0, 5]), _EB_OFFSETS]),
]
_CTC_LOGITS = _r(7, 3, 5)
_CTC_TARGETS = np.array([[1, 2, 2], [3, 1, 0], [4, 4, 4]])
_CTC_IN, _CTC_TGT = np.array([7, 5, 6]), np.array([3, 2, 0])  # (an empty target)
CASES += [
    # torch's gradient is that of the loss through log_softmax (see ad/nn/functional/ctc.py): compared there
    ("ctc_loss_mean", lambda F, L, x, t, i, n: F.ctc_loss(F.log_softmax(x, 2), t, i, n), [_CTC_LOGITS, _CTC_TARGETS, _CTC_IN, _CTC_TGT]),
    ("ctc_loss_sum_blank", lambda F, L, x, t, i, n: F.ctc_loss(F.log_softmax(x, 2), t, i, n, blank=3, reduction="sum"), [_CTC_LOGITS, _CTC_TARGETS, _CTC_IN, _CTC_TGT]),
    ("ctc_loss_none", lambda F, L, x, t, i, n: F.ctc_loss(F.log_softmax(x, 2), t, i, n, reduction="none"), [_CTC_LOGITS, _CTC_TARGETS, _CTC_IN, _CTC_TGT]),
    ("ctc_loss_concatenated_tuples", lambda F, L, x, t: F.ctc_loss(F.log_softmax(x, 2), t, (7, 5, 6), (3, 2, 0)), [_CTC_LOGITS, np.array([1, 2, 2, 3, 1])]),
    ("ctc_loss_unbatched", lambda F, L, x, t: F.ctc_loss(F.log_softmax(x[:, 0], 1), t, L.tensor([6]), L.tensor([3])), [_CTC_LOGITS, _CTC_TARGETS[0]]),
    ("ctc_loss_zero_infinity", lambda F, L, x, t, i, n: F.ctc_loss(F.log_softmax(x, 2), t, i, n, reduction="none", zero_infinity=True), [_CTC_LOGITS, _CTC_TARGETS, np.array([2, 5, 0]), _CTC_TGT]),
    ("ctc_loss_float32_targets_int32", lambda F, L, x, t, i, n: F.ctc_loss(F.log_softmax(x, 2), t, i, n), [_CTC_LOGITS, _CTC_TARGETS.astype(np.int32), _CTC_IN, _CTC_TGT]),
]
_FMP_SAMPLES2, _FMP_SAMPLES3 = _r(2, 3, 2, lo=0, hi=1), _r(2, 2, 3, lo=0, hi=1)
CASES += [
    ("fractional_max_pool2d", lambda F, L, x: F.fractional_max_pool2d(x, 2, (4, 5), return_indices=True, _random_samples=L.tensor(_FMP_SAMPLES2)), [_r(2, 3, 9, 8)]),
    ("fractional_max_pool2d_ratio", lambda F, L, x: F.fractional_max_pool2d(x, (3, 2), output_ratio=(0.5, 0.7), _random_samples=L.tensor(_FMP_SAMPLES2)), [_r(2, 3, 9, 8)]),
    ("fractional_max_pool2d_unbatched", lambda F, L, x: F.fractional_max_pool2d_with_indices(x, 2, 3, _random_samples=L.tensor(_FMP_SAMPLES2[:1])), [_r(3, 7, 6)]),
    ("fractional_max_pool2d_single_output", lambda F, L, x: F.fractional_max_pool2d(x, 2, (1, 1), _random_samples=L.tensor(_FMP_SAMPLES2)), [_r(2, 3, 5, 5)]),
    ("fractional_max_pool3d", lambda F, L, x: F.fractional_max_pool3d(x, (2, 3, 1), (3, 3, 4), return_indices=True, _random_samples=L.tensor(_FMP_SAMPLES3)), [_r(2, 2, 7, 6, 8)]),
    ("fractional_max_pool3d_ratio_unbatched", lambda F, L, x: F.fractional_max_pool3d_with_indices(x, 2, output_ratio=(0.5, 0.6, 0.5), _random_samples=L.tensor(_FMP_SAMPLES3[:1])), [_r(2, 7, 6, 8)]),
]
_GS_INPUT = _r(2, 2, 4, 5)
_GS_GRID = _r(2, 3, 4, 2, lo=-1.4, hi=1.4)  # (outside [-1, 1] too: the padding modes)
_GS3_INPUT = _r(1, 2, 3, 4, 3)
_GS3_GRID = _r(1, 2, 3, 2, 3, lo=-1.4, hi=1.4)
for _mode in ("bilinear", "nearest", "bicubic"):
    for _padding in ("zeros", "border", "reflection"):
        for _align in (False, True):
            CASES.append((f"grid_sample_{_mode}_{_padding}_{_align}", lambda F, L, x, g, m=_mode, p=_padding, a=_align: F.grid_sample(x, g, m, p, a), [_GS_INPUT, _GS_GRID]))
            if _mode != "bicubic":
                CASES.append((f"grid_sample_5d_{_mode}_{_padding}_{_align}", lambda F, L, x, g, m=_mode, p=_padding, a=_align: F.grid_sample(x, g, m, p, a), [_GS3_INPUT, _GS3_GRID]))



@pytest.mark.parametrize("call, inputs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_against_torch(call, inputs):
    _compare(call, inputs)


# --- finite differences (first and second order) on small inputs


def _leaf(*shape, lo=-1.0, hi=1.0, seed=1):
    return ad.tensor(np.random.default_rng(seed).uniform(lo, hi, shape), requires_grad=True)


GRADCHECKS = [
    ("pdist", lambda x: FA.pdist(x), [(4, 3)]),
    ("pdist_p3", lambda x: FA.pdist(x, 3.0), [(3, 2)]),
    ("channel_shuffle", lambda x: FA.channel_shuffle(x, 2), [(1, 4, 3)]),
    ("multilabel_soft_margin", lambda x: FA.multilabel_soft_margin_loss(x, ad.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])), [(2, 3)]),
    ("multilabel_margin", lambda x: FA.multilabel_margin_loss(x * 0.1, ad.tensor([[2, 0, -1], [1, -1, 0]])), [(2, 3)]),
    ("triplet_distance", lambda a, p, n: FA.triplet_margin_with_distance_loss(a, p, n, margin=3.0), [(2, 3), (2, 3), (2, 3)]),
    ("lp_pool2d", lambda x: FA.lp_pool2d(x, 3, 2), [(1, 1, 4, 4)]),
    ("lp_pool1d_inf", lambda x: FA.lp_pool1d(x, _INF, 2), [(1, 2, 4)]),
    ("max_unpool2d", lambda x: FA.max_unpool2d(x, ad.tensor([[[[0, 3], [10, 13]]]]), 2), [(1, 1, 2, 2)]),
    # two values at one index: the last is written (torch's loop), so only it has a gradient
    ("max_unpool1d_repeated_index", lambda x: FA.max_unpool1d(x, ad.tensor([[1, 1, 2]]), 2, 1), [(1, 3)]),
    ("affine_grid", lambda t: FA.affine_grid(t, [1, 1, 2, 3], align_corners=False), [(1, 2, 3)]),
    ("grid_sample_bilinear_reflection", lambda x, g: FA.grid_sample(x, g * 1.5, "bilinear", "reflection", False), [(1, 2, 3, 3), (1, 2, 2, 2)]),
    ("grid_sample_bilinear_zeros", lambda x, g: FA.grid_sample(x, g * 1.2, "bilinear", "zeros", True), [(1, 1, 3, 4), (1, 2, 2, 2)]),
    ("grid_sample_bicubic_border", lambda x, g: FA.grid_sample(x, g * 1.2, "bicubic", "border", False), [(1, 1, 3, 3), (1, 2, 1, 2)]),
    ("grid_sample_trilinear", lambda x, g: FA.grid_sample(x, g, "bilinear", "border", False), [(1, 1, 2, 3, 2), (1, 1, 2, 1, 3)]),
    ("grid_sample_nearest", lambda x: FA.grid_sample(x, ad.tensor([[[[0.3, -0.8], [1.2, 0.1]]]]), "nearest", align_corners=False), [(1, 2, 3, 3)]),
    ("embedding_bag_mean", lambda w: FA.embedding_bag(ad.tensor([0, 2, 2, 1]), w, ad.tensor([0, 1, 1]), padding_idx=1), [(3, 2)]),
    ("embedding_bag_max", lambda w: FA.embedding_bag(ad.tensor([[0, 2], [1, 2]]), w, mode="max"), [(3, 2)]),
    ("embedding_bag_per_sample_weights", lambda w, p: FA.embedding_bag(ad.tensor([0, 2, 2, 1]), w, ad.tensor([0, 3]), mode="sum", per_sample_weights=p), [(3, 2), (4,)]),
    # the true derivative with respect to log_probs themselves (no log_softmax in between)
    ("ctc_loss_log_probs", lambda x: FA.ctc_loss(x, ad.tensor([[1, 1], [2, 0]]), ad.tensor([4, 3]), ad.tensor([2, 1]), reduction="sum"), [(4, 2, 3)]),
    ("ctc_loss_log_softmax", lambda x: FA.ctc_loss(FA.log_softmax(x, 1), ad.tensor([1, 2]), ad.tensor([4]), ad.tensor([2])), [(4, 3)]),
    ("fractional_max_pool2d", lambda x: FA.fractional_max_pool2d(x, 2, 2, _random_samples=ad.tensor([[[0.3, 0.7]]])), [(1, 1, 4, 4)]),
    ("fractional_max_pool3d", lambda x: FA.fractional_max_pool3d(x, 2, 2, _random_samples=ad.tensor([[[0.3, 0.7, 0.1]]])), [(1, 1, 4, 4, 4)]),
]


@pytest.mark.parametrize("fn, shapes", [c[1:] for c in GRADCHECKS], ids=[c[0] for c in GRADCHECKS])
def test_finite_differences(fn, shapes):
    # positive inputs: a non-integer power of a negative window sum is NaN (in torch too)
    inputs = tuple(_leaf(*s, lo=0.1, hi=1.0, seed=i + 3) for i, s in enumerate(shapes))
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


# --- errors: torch's exception classes (and messages)

ERRORS = [
    ("pdist_1d", lambda F, L: F.pdist(L.ones(3))),
    ("pdist_int", lambda F, L: F.pdist(L.ones(3, 2, dtype=L.int64))),
    ("pdist_negative_p", lambda F, L: F.pdist(L.ones(3, 2), -1.0)),
    ("channel_shuffle_2d", lambda F, L: F.channel_shuffle(L.ones(2, 6), 2)),
    ("channel_shuffle_groups", lambda F, L: F.channel_shuffle(L.ones(2, 6, 3), 4)),
    ("channel_shuffle_zero_groups", lambda F, L: F.channel_shuffle(L.ones(2, 6, 3), 0)),
    ("multilabel_margin_shape", lambda F, L: F.multilabel_margin_loss(L.ones(2, 4), L.zeros(1, 4, dtype=L.int64))),
    ("multilabel_margin_range", lambda F, L: F.multilabel_margin_loss(L.ones(2, 4), L.full((2, 4), 4, dtype=L.int64))),
    ("multilabel_margin_dtype", lambda F, L: F.multilabel_margin_loss(L.ones(2, 4), L.zeros(2, 4, dtype=L.int32))),
    ("multilabel_margin_3d", lambda F, L: F.multilabel_margin_loss(L.ones(2, 3, 4), L.zeros(2, 3, 4, dtype=L.int64))),
    ("multilabel_margin_reduction", lambda F, L: F.multilabel_margin_loss(L.ones(2, 4), L.zeros(2, 4, dtype=L.int64), reduction="x")),
    ("multilabel_soft_margin_reduction", lambda F, L: F.multilabel_soft_margin_loss(L.ones(2, 4), L.ones(2, 4), reduction="x")),
    ("triplet_distance_margin", lambda F, L: F.triplet_margin_with_distance_loss(L.ones(2, 3), L.ones(2, 3), L.ones(2, 3), margin=0.0)),
    ("triplet_distance_reduction", lambda F, L: F.triplet_margin_with_distance_loss(L.ones(2, 3), L.ones(2, 3), L.ones(2, 3), reduction="x")),
    ("triplet_distance_ndim", lambda F, L: F.triplet_margin_with_distance_loss(L.ones(2, 3), L.ones(2, 3), L.ones(3))),
    ("max_unpool2d_index_range", lambda F, L: F.max_unpool2d(L.ones(1, 1, 2, 2), L.full((1, 1, 2, 2), 16, dtype=L.int64), 2)),
    ("max_unpool2d_negative_index", lambda F, L: F.max_unpool2d(L.ones(1, 1, 2, 2), L.full((1, 1, 2, 2), -1, dtype=L.int64), 2)),
    ("max_unpool1d_index_range", lambda F, L: F.max_unpool1d(L.ones(1, 1, 2), L.full((1, 1, 2), 9, dtype=L.int64), 2)),
    ("max_unpool3d_index_range", lambda F, L: F.max_unpool3d(L.ones(1, 1, 2, 2, 2), L.full((1, 1, 2, 2, 2), 64, dtype=L.int64), 2)),
    ("max_unpool2d_indices_shape", lambda F, L: F.max_unpool2d(L.ones(1, 1, 2, 2), L.zeros(1, 1, 2, 1, dtype=L.int64), 2)),
    ("max_unpool1d_indices_shape", lambda F, L: F.max_unpool1d(L.ones(1, 2), L.zeros(1, 1, dtype=L.int64), 2)),
    ("max_unpool2d_indices_dtype", lambda F, L: F.max_unpool2d(L.ones(1, 1, 2, 2), L.zeros(1, 1, 2, 2, dtype=L.int32), 2)),
    ("max_unpool2d_ndim", lambda F, L: F.max_unpool2d(L.ones(2, 2), L.zeros(2, 2, dtype=L.int64), 2)),
    ("max_unpool1d_ndim", lambda F, L: F.max_unpool1d(L.ones(2, 3, 4, 5), L.zeros(2, 3, 4, 5, dtype=L.int64), 2)),
    ("max_unpool3d_ndim", lambda F, L: F.max_unpool3d(L.ones(2, 2, 2), L.zeros(2, 2, 2, dtype=L.int64), 2)),
    ("max_unpool2d_output_size", lambda F, L: F.max_unpool2d(L.ones(1, 1, 2, 2), L.zeros(1, 1, 2, 2, dtype=L.int64), 2, output_size=(9, 9))),
    ("max_unpool2d_output_size_length", lambda F, L: F.max_unpool2d(L.ones(1, 1, 2, 2), L.zeros(1, 1, 2, 2, dtype=L.int64), 2, output_size=(1, 5, 5))),
    ("adaptive_max_pool3d_ndim", lambda F, L: F.adaptive_max_pool3d(L.ones(2, 3, 4), 2)),
    ("grid_sample_mode", lambda F, L: F.grid_sample(L.ones(1, 1, 2, 2), L.zeros(1, 1, 1, 2), mode="x", align_corners=False)),
    ("grid_sample_padding_mode", lambda F, L: F.grid_sample(L.ones(1, 1, 2, 2), L.zeros(1, 1, 1, 2), padding_mode="x", align_corners=False)),
    ("grid_sample_batch", lambda F, L: F.grid_sample(L.ones(2, 1, 2, 2), L.zeros(1, 1, 1, 2), align_corners=False)),
    ("grid_sample_last_dim", lambda F, L: F.grid_sample(L.ones(1, 1, 2, 2), L.zeros(1, 1, 1, 3), align_corners=False)),
    ("grid_sample_3d_input", lambda F, L: F.grid_sample(L.ones(2, 3, 4), L.zeros(2, 3, 2), align_corners=False)),
    ("grid_sample_bicubic_5d", lambda F, L: F.grid_sample(L.ones(1, 1, 2, 2, 2), L.zeros(1, 1, 1, 1, 3), mode="bicubic", align_corners=False)),
    ("grid_sample_empty", lambda F, L: F.grid_sample(L.ones(1, 1, 0, 2), L.zeros(1, 1, 1, 2), align_corners=False)),
    ("grid_sample_dtype", lambda F, L: F.grid_sample(L.ones(1, 1, 2, 2, dtype=L.float64), L.zeros(1, 1, 1, 2, dtype=L.float32), align_corners=False)),
    ("grid_sample_int", lambda F, L: F.grid_sample(L.ones(1, 1, 2, 2, dtype=L.int64), L.zeros(1, 1, 1, 2), align_corners=False)),
    ("affine_grid_int", lambda F, L: F.affine_grid(L.ones(1, 2, 3, dtype=L.int64), [1, 1, 2, 2], align_corners=False)),
    ("affine_grid_shape", lambda F, L: F.affine_grid(L.ones(1, 2, 3), [1, 1, 2, 2, 2], align_corners=False)),
    ("affine_grid_shape_2d", lambda F, L: F.affine_grid(L.ones(1, 3, 4), [1, 1, 2, 2], align_corners=False)),
    ("affine_grid_size", lambda F, L: F.affine_grid(L.ones(1, 2, 3), [1, 1, 2], align_corners=False)),
    ("affine_grid_zero_size", lambda F, L: F.affine_grid(L.ones(1, 2, 3), [1, 1, 0, 2], align_corners=False)),
    ("embedding_bag_first_offset", lambda F, L: F.embedding_bag(L.tensor([1, 2, 0]), L.ones(3, 2), L.tensor([1, 2]))),
    ("embedding_bag_last_offset", lambda F, L: F.embedding_bag(L.tensor([1, 2, 0]), L.ones(3, 2), L.tensor([0, 4]))),
    ("embedding_bag_index_range", lambda F, L: F.embedding_bag(L.tensor([1, 5, 0]), L.ones(3, 2), L.tensor([0, 2]))),
    ("embedding_bag_float_index", lambda F, L: F.embedding_bag(L.tensor([1.0, 2.0], dtype=L.float32), L.ones(3, 2), L.tensor([0]))),
    ("embedding_bag_mode", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2), L.tensor([0]), mode="x")),
    ("embedding_bag_max_freq", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2), L.tensor([0]), mode="max", scale_grad_by_freq=True)),
    ("embedding_bag_psw_mode", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2), L.tensor([0]), per_sample_weights=L.ones(2))),
    ("embedding_bag_psw_shape", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2), L.tensor([0]), mode="sum", per_sample_weights=L.ones(3))),
    ("embedding_bag_psw_dtype", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2, dtype=L.float64), L.tensor([0]), mode="sum", per_sample_weights=L.ones(2, dtype=L.float32))),
    ("embedding_bag_no_offsets", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2))),
    ("embedding_bag_2d_offsets", lambda F, L: F.embedding_bag(L.tensor([[1, 2]]), L.ones(3, 2), L.tensor([0]))),
    ("embedding_bag_2d_offset_tensor", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2), L.tensor([[0]]))),
    ("embedding_bag_weight_1d", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3), L.tensor([0]))),
    ("embedding_bag_3d_input", lambda F, L: F.embedding_bag(L.tensor([[[1, 2]]]), L.ones(3, 2))),
    ("embedding_bag_padding_idx", lambda F, L: F.embedding_bag(L.tensor([1, 2]), L.ones(3, 2), L.tensor([0]), padding_idx=3)),
    ("ctc_loss_target_length", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([4, 4]), L.tensor([3, 1]))),
    ("ctc_loss_input_length", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([5, 4]), L.tensor([2, 1]))),
    ("ctc_loss_negative_length", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([4, 4]), L.tensor([-1, 1]))),
    ("ctc_loss_blank", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([4, 4]), L.tensor([2, 1]), blank=3)),
    ("ctc_loss_input_lengths_size", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([4]), L.tensor([2, 1]))),
    ("ctc_loss_target_lengths_size", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([4, 4]), L.tensor([2]))),
    ("ctc_loss_concatenated_size", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, dtype=L.int64), L.tensor([4, 4]), L.tensor([2, 1]))),
    ("ctc_loss_reduction", lambda F, L: F.ctc_loss(L.zeros(4, 2, 3), L.ones(2, 2, dtype=L.int64), L.tensor([4, 4]), L.tensor([2, 1]), reduction="x")),
    ("fractional_max_pool2d_no_size", lambda F, L: F.fractional_max_pool2d(L.ones(1, 1, 5, 5), 2)),
    ("fractional_max_pool2d_too_large", lambda F, L: F.fractional_max_pool2d(L.ones(1, 1, 7, 6), 2, output_size=(7, 6))),
    ("fractional_max_pool2d_too_wide", lambda F, L: F.fractional_max_pool2d(L.ones(1, 1, 7, 6), (2, 3), output_size=(2, 6))),
    ("fractional_max_pool3d_too_large", lambda F, L: F.fractional_max_pool3d(L.ones(1, 1, 3, 7, 6), 2, output_size=(2, 3, 3))),
    ("fractional_max_pool2d_samples_size", lambda F, L: F.fractional_max_pool2d(L.ones(2, 3, 7, 6, dtype=L.float64), 2, 3, _random_samples=L.ones(2, 3, 3, dtype=L.float64))),
    ("fractional_max_pool2d_samples_batch", lambda F, L: F.fractional_max_pool2d(L.ones(2, 3, 7, 6, dtype=L.float64), 2, 3, _random_samples=L.ones(1, 3, 2, dtype=L.float64))),
    ("fractional_max_pool2d_samples_dtype", lambda F, L: F.fractional_max_pool2d(L.ones(2, 3, 7, 6, dtype=L.float64), 2, 3, _random_samples=L.ones(2, 3, 2, dtype=L.float32))),
    ("fractional_max_pool2d_empty", lambda F, L: F.fractional_max_pool2d(L.ones(2, 3, 0, 6), 2, 2)),
    ("fractional_max_pool2d_samples_grad", lambda F, L: F.fractional_max_pool2d(L.ones(1, 1, 5, 5), 2, 2, _random_samples=L.ones(1, 1, 2, requires_grad=True))),
]


@pytest.mark.parametrize("call", [c[1] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_as_torch(call):
    with pytest.raises(Exception) as expected:
        call(FT, torch)
    with pytest.raises(Exception) as got:
        call(FA, ad)
    assert type(got.value) is type(expected.value)
    if "offsets of type" in str(got.value):  # (names the class: ad's Tensor, torch's)
        return
    # (torch appends the printed value of a tensor to a few messages: "\n[ torch.LongTensor{} ]")
    assert str(expected.value).split("\n[")[0] == str(got.value)


def test_align_corners_warnings_as_torch():
    x, theta = ad.ones(1, 1, 2, 2), ad.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        grid = FA.affine_grid(theta, [1, 1, 2, 2])
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        out = FA.grid_sample(x, grid)
    np.testing.assert_allclose(out.numpy(), x.numpy())  # the identity map samples the pixel centres
    with pytest.warns(UserWarning, match="for unit-size grids when align_corners=True"):
        FA.affine_grid(theta, [1, 1, 1, 2], align_corners=True)


def test_grid_sample_empty_output_and_nearest_grid_gradient():
    x = ad.tensor(_r(2, 1, 3, 3), requires_grad=True)
    empty_grid = ad.zeros(2, 0, 4, 2, requires_grad=True)
    out = FA.grid_sample(x, empty_grid, align_corners=False)
    assert out.shape == (2, 1, 0, 4)
    gx, gg = ad.autograd.grad(out.sum(), [x, empty_grid])  # (connected to both, as torch)
    assert gx.shape == (2, 1, 3, 3) and not gx.numpy().any() and gg.shape == (2, 0, 4, 2)
    no_channels = ad.tensor(_r(2, 0, 3, 3), requires_grad=True)
    grid = ad.tensor(_r(2, 1, 4, 2, lo=-1, hi=1), requires_grad=True)
    out = FA.grid_sample(no_channels, grid, align_corners=False)
    assert out.shape == (2, 0, 1, 4)
    gx, gg = ad.autograd.grad(out.sum(), [no_channels, grid])
    assert gx.shape == (2, 0, 3, 3) and gg.shape == (2, 1, 4, 2) and not gg.numpy().any()
    grid = ad.tensor(_r(2, 2, 2, 2, lo=-1, hi=1), requires_grad=True)
    (gg,) = ad.autograd.grad(FA.grid_sample(x, grid, "nearest", align_corners=True).sum(), [grid])
    # (nearest does not depend on the grid continuously: torch's zero gradient, not an unconnected grid)
    assert gg.shape == grid.shape and not gg.numpy().any()


def test_embedding_bag_scale_grad_by_freq():
    # each row's gradient divided by its count in the input: here all ones (torch 2.13's CPU kernel scales the
    # rows by the counts of other indices when an index repeats: [1, 1, 0.5, 1, 2, 0.5] for this input)
    w = ad.tensor(_r(6, 3), requires_grad=True)
    for mode, expected in (("sum", np.ones((6, 3))), ("mean", None)):
        out = FA.embedding_bag(ad.tensor([1, 2, 4, 4, 0, 3, 5, 1]), w, ad.tensor([0, 3, 3, 5]), mode=mode,
                               scale_grad_by_freq=True)
        (g,) = ad.autograd.grad(out.sum(), [w])
        if expected is not None:
            np.testing.assert_allclose(g.numpy(), expected)
        plain = FA.embedding_bag(ad.tensor([1, 2, 4, 4, 0, 3, 5, 1]), w, ad.tensor([0, 3, 3, 5]), mode=mode)
        np.testing.assert_allclose(out.detach().numpy(), plain.detach().numpy())


def test_embedding_bag_module_as_torch():
    w = _r(6, 3)
    for mode in ("sum", "mean", "max"):
        mod_a = ad.nn.EmbeddingBag.from_pretrained(ad.tensor(w), freeze=False, mode=mode, padding_idx=2)
        mod_t = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), freeze=False, mode=mode, padding_idx=2)
        assert repr(mod_a) == repr(mod_t)
        out_a = mod_a(ad.tensor(_EB_INDEX), ad.tensor(_EB_OFFSETS))
        out_t = mod_t(torch.tensor(_EB_INDEX), torch.tensor(_EB_OFFSETS))
        np.testing.assert_allclose(out_a.detach().numpy(), out_t.detach().numpy(), atol=1e-12)
        out_a.sum().backward()
        out_t.sum().backward()
        np.testing.assert_allclose(mod_a.weight.grad.numpy(), mod_t.weight.grad.numpy(), atol=1e-12)
    frozen = ad.nn.EmbeddingBag.from_pretrained(ad.tensor(w))
    assert not frozen.weight.requires_grad
    bag = ad.nn.EmbeddingBag(5, 2, padding_idx=-1, mode="sum")
    assert bag.padding_idx == 4 and not bag.weight.detach().numpy()[4].any()
    assert repr(bag) == repr(torch.nn.EmbeddingBag(5, 2, padding_idx=-1, mode="sum"))
    assert list(bag.state_dict()) == ["weight"]
    with pytest.raises(AssertionError):
        ad.nn.EmbeddingBag(3, 2, padding_idx=3)


def test_fractional_max_pool_draws_from_ads_generator():
    x = ad.tensor(_r(2, 3, 9, 8))
    ad.manual_seed(5)
    first, idx = FA.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5), return_indices=True)
    ad.manual_seed(5)
    again = FA.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5))
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    ad.manual_seed(5)
    samples = ad.rand(2, 3, 2)  # the draw the call made: the same windows
    fixed = FA.fractional_max_pool2d(x, 2, (4, 4), _random_samples=samples)
    np.testing.assert_array_equal(first.numpy(), fixed.numpy())
    assert idx.dtype == np.int64 and first.shape == (2, 3, 4, 4)


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_max_pool_modules_as_torch(nd):
    samples = _r(2, 2, nd, lo=0, hi=1)
    kwargs = {"output_size": 3, "return_indices": True}
    mod_a = getattr(ad.nn, f"FractionalMaxPool{nd}d")(2, _random_samples=ad.tensor(samples), **kwargs)
    mod_t = getattr(torch.nn, f"FractionalMaxPool{nd}d")(2, _random_samples=torch.tensor(samples), **kwargs)
    assert repr(mod_a) == repr(mod_t)
    assert list(mod_a.state_dict()) == list(mod_t.state_dict()) == ["_random_samples"]
    _compare(lambda F, L, x: (mod_a if L is ad else mod_t)(x), [_r(2, 2, *([6] * nd))])
    for kwargs in ({}, {"output_size": 2, "output_ratio": 0.5}, {"output_ratio": 1.5}):
        with pytest.raises(ValueError):
            getattr(ad.nn, f"FractionalMaxPool{nd}d")(2, **kwargs)


def test_ctc_loss_module_as_torch():
    mod_a, mod_t = _module_pair("CTCLoss", blank=4, reduction="sum", zero_infinity=True)
    assert repr(mod_a) == repr(mod_t)
    _compare(lambda F, L, x, t, i, n: (mod_a if L is ad else mod_t)(F.log_softmax(x, 2), t, i, n),
             [_r(6, 2, 5), np.array([[1, 2], [3, 3]]), np.array([6, 4]), np.array([2, 2])])


def test_ctc_loss_analytic_and_impossible_alignments():
    # T = 1, target [1]: the only alignment emits class 1
    lp = ad.tensor(np.log([[[0.2, 0.8]]]), requires_grad=True)
    loss = FA.ctc_loss(lp, ad.tensor([[1]]), ad.tensor([1]), ad.tensor([1]), reduction="sum")
    np.testing.assert_allclose(loss.item(), -np.log(0.8))
    (g,) = ad.autograd.grad(loss, [lp])
    np.testing.assert_allclose(g.numpy(), [[[0.0, -1.0]]])  # d(-lp[0, 0, 1]) / d lp
    # T = 2, target [1, 1]: needs a blank between the repeats, 3 steps: impossible -> inf (or 0), no gradient
    lp2 = ad.tensor(np.log(np.full((2, 1, 2), 0.5)), requires_grad=True)
    for zero_infinity, expected in ((False, np.inf), (True, 0.0)):
        loss = FA.ctc_loss(lp2, ad.tensor([[1, 1]]), ad.tensor([2]), ad.tensor([2]), reduction="sum",
                           zero_infinity=zero_infinity)
        assert loss.item() == expected
        (g,) = ad.autograd.grad(loss, [lp2])
        assert not g.numpy().any()
    # an empty input aligns only the empty target
    empty = FA.ctc_loss(lp2, ad.tensor([[1]]), ad.tensor([0]), ad.tensor([0]), reduction="none")
    assert empty.tolist() == [0.0]


def test_deprecated_upsample_aliases_warn_as_torch():
    x = ad.ones(1, 1, 2, 2)
    for fn in ("upsample_bilinear", "upsample_nearest"):
        with pytest.warns(UserWarning, match=f"`nn.functional.{fn}` is deprecated"):
            getattr(FA, fn)(x, scale_factor=2)


# --- modules against torch's


def _module_pair(name, *args, **kwargs):
    return getattr(ad.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


MODULES = [
    ("LPPool1d", (2, 3), {"stride": 2}, [_r(2, 3, 8)]),
    ("LPPool2d", (1.5, 2), {"ceil_mode": True}, [_r(2, 3, 5, 5, lo=0.1, hi=2.0)]),
    ("LPPool3d", (2, (1, 2, 2)), {}, [_r(1, 2, 3, 4, 4)]),
    ("MultiLabelMarginLoss", (), {"reduction": "sum"}, [_r(3, 5), _ML_TARGET]),
    ("MultiLabelSoftMarginLoss", (), {}, [_r(3, 5), _r(3, 5, lo=0, hi=1)]),
    ("TripletMarginWithDistanceLoss", (), {"margin": 0.5, "swap": True, "distance_function": None}, [_r(4, 3), _r(4, 3), _r(4, 3)]),
    ("ChannelShuffle", (3,), {}, [_r(2, 6, 2, 2)]),
    ("AdaptiveMaxPool3d", ((2, 1, 2),), {"return_indices": True}, [_r(1, 2, 3, 4, 5)]),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_modules_as_torch(nd):
    pool_a, pool_t = _module_pair(f"MaxPool{nd}d", 2, return_indices=True)
    mod_a, mod_t = _module_pair(f"MaxUnpool{nd}d", 2)
    assert repr(mod_a) == repr(mod_t)
    x = _r(1, 2, *([4] * nd))
    size = [5] * nd
    _compare(lambda F, L, x: (mod_a if L is ad else mod_t)(*(pool_a if L is ad else pool_t)(x), output_size=size), [x])


@pytest.mark.parametrize("name, args, kwargs, inputs", MODULES, ids=[m[0] for m in MODULES])
def test_modules_as_torch(name, args, kwargs, inputs):
    mod_a, mod_t = _module_pair(name, *args, **kwargs)
    assert repr(mod_a) == repr(mod_t)
    assert [n for n, _ in mod_a.named_modules()] == [n for n, _ in mod_t.named_modules()]
    _compare(lambda F, L, *xs: (mod_a if L is ad else mod_t)(*xs), inputs)


def test_module_weights_as_torch():
    w = _r(5, lo=0.1, hi=1.0)
    mod_a = ad.nn.MultiLabelSoftMarginLoss(weight=ad.tensor(w), reduction="none")
    mod_t = torch.nn.MultiLabelSoftMarginLoss(weight=torch.tensor(w), reduction="none")
    assert list(mod_a.state_dict()) == list(mod_t.state_dict()) == ["weight"]
    _compare(lambda F, L, *xs: (mod_a if L is ad else mod_t)(*xs), [_r(3, 5), _r(3, 5, lo=0, hi=1)])
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        ad.nn.TripletMarginWithDistanceLoss(margin=-1.0)


def test_triplet_with_distance_default_is_a_pairwise_distance_module():
    """torch's default distance is a ``PairwiseDistance()`` child (p=2, eps=1e-6), shown in repr; a lambda stays a
    plain attribute (no child); setting the child to None keeps the name in the repr, as torch."""
    anchor, positive, negative = _r(4, 3), _r(4, 3), _r(4, 3)
    mod_a, mod_t = _module_pair("TripletMarginWithDistanceLoss")
    assert isinstance(mod_a.distance_function, ad.nn.PairwiseDistance)
    assert (mod_a.distance_function.norm, mod_a.distance_function.eps, mod_a.distance_function.keepdim) == (
        mod_t.distance_function.norm,
        mod_t.distance_function.eps,
        mod_t.distance_function.keepdim,
    )
    assert repr(mod_a) == repr(mod_t)
    assert list(mod_a.state_dict()) == list(mod_t.state_dict()) == []
    _compare(lambda F, L, *xs: (mod_a if L is ad else mod_t)(*xs), [anchor, positive, negative])
    def l1(x, y):
        return (x - y).abs().sum(-1)

    mod_a, mod_t = _module_pair("TripletMarginWithDistanceLoss", distance_function=l1)
    assert repr(mod_a) == repr(mod_t) == "TripletMarginWithDistanceLoss()"
    assert [n for n, _ in mod_a.named_modules()] == [""]
    _compare(lambda F, L, *xs: (mod_a if L is ad else mod_t)(*xs), [anchor, positive, negative])
    mod_a, mod_t = _module_pair("TripletMarginWithDistanceLoss")
    mod_a.distance_function = None
    mod_t.distance_function = None
    assert repr(mod_a) == repr(mod_t)
