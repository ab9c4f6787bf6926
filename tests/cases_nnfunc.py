# ruff: noqa: E501 - one case a line
"""Op-table cases of ``ad.nn.functional`` (issue 13): see the docstring of tests/test_op_table.py.

Inputs are drawn from each case's ``domain`` away from the kinks (the kinks and other special points are
tested against torch's values in tests/test_nn_functional.py). Integer targets and other non-differentiable
arguments are constants inside the lambdas.
"""

import numpy as np

import ad

F = ad.nn.functional


def _c(*shape, lo=0.5, hi=1.5, seed=0):
    """A constant tensor (float64; cast to the inputs' dtype where the case needs it)."""
    return np.random.default_rng(seed).uniform(lo, hi, shape)


def _like(x, a):
    return ad.tensor(np.asarray(a, dtype=x.dtype))


_T3 = ad.tensor(np.array([1, 0, 3]))
_PROBS = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.1, 0.3], [0.25, 0.25, 0.25, 0.25]])
_SIGNS = np.array([1.0, -1.0, 1.0])

CASES = {
    # activations
    "nn_relu6": (lambda x: F.relu6(x * 4.0), [(6,)], {"domain": (-1.9, 1.9)}),
    "nn_leaky_relu": (lambda x: F.leaky_relu(x, 0.2), [(6,)]),
    "nn_elu": (lambda x: F.elu(x, 0.7), [(6,)]),
    "nn_selu": (lambda x: F.selu(x), [(6,)]),
    "nn_celu": (lambda x: F.celu(x, 1.3), [(6,)]),
    "nn_gelu": (lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"), [(6,)]),
    "nn_silu": (lambda x: F.silu(x), [(6,)]),
    "nn_mish": (lambda x: F.mish(x), [(6,)]),
    "nn_softplus": (lambda x: F.softplus(x) + F.softplus(x * 3.0, beta=2.0, threshold=3.0), [(6,)]),
    "nn_softsign": (lambda x: F.softsign(x), [(6,)]),
    "nn_hardtanh": (lambda x: F.hardtanh(x, -1.5, 1.2), [(6,)]),
    "nn_hardsigmoid": (lambda x: F.hardsigmoid(x * 2.0), [(6,)]),
    "nn_hardswish": (lambda x: F.hardswish(x * 2.0), [(6,)]),
    "nn_logsigmoid": (lambda x: F.logsigmoid(x * 3.0), [(6,)]),
    "nn_tanhshrink": (lambda x: F.tanhshrink(x), [(6,)]),
    "nn_softshrink": (lambda x: F.softshrink(x, 0.3), [(6,)]),
    "nn_hardshrink": (lambda x: F.hardshrink(x, 0.3), [(6,)]),
    "nn_threshold": (lambda x: F.threshold(x, 0.1, -2.0), [(6,)]),
    "nn_prelu": (lambda x, w: F.prelu(x, w), [(2, 3, 2), (3,)]),
    "nn_rrelu_eval": (lambda x: F.rrelu(x), [(6,)]),
    "nn_softmin": (lambda x: F.softmin(x, 1), [(2, 4)]),
    "nn_glu": (lambda x: F.glu(x, 1), [(2, 4)]),
    # linear, distances
    "nn_bilinear": (lambda x1, x2, w, b: F.bilinear(x1, x2, w, b), [(2, 3), (2, 4), (5, 3, 4), (5,)]),
    "nn_normalize": (lambda x: F.normalize(x, dim=1) + F.normalize(x, p=1, dim=0), [(3, 4)]),
    "nn_cosine_similarity": (lambda x, y: F.cosine_similarity(x, y), [(3, 4), (3, 4)]),
    "nn_pairwise_distance": (lambda x, y: F.pairwise_distance(x, y) + F.pairwise_distance(x, y, p=3.0), [(3, 4), (3, 4)]),
    "cdist": (lambda x, y: ad.cdist(x, y) + ad.cdist(x, y, p=1.0) * 0.5, [(3, 2), (4, 2)]),
    # losses
    "nn_l1_loss": (lambda x, y: F.l1_loss(x, y), [(3, 4), (3, 4)]),
    "nn_smooth_l1_loss": (lambda x, y: F.smooth_l1_loss(x, y, beta=0.5, reduction="sum"), [(3, 4), (3, 4)]),
    "nn_huber_loss": (lambda x, y: F.huber_loss(x, y, reduction="none", delta=0.7), [(3, 4), (3, 4)]),
    "nn_nll_loss": (
        lambda x: F.nll_loss(x, _T3, weight=_like(x, [1.0, 2.0, 0.5, 1.5]), ignore_index=0),
        [(3, 4)],
    ),
    "nn_cross_entropy_combined": (
        lambda x: F.cross_entropy(x, _T3, weight=_like(x, [1.0, 2.0, 0.5, 1.5]), ignore_index=0,
                                  label_smoothing=0.2)
        + F.cross_entropy(x, _T3, reduction="sum", label_smoothing=0.1),
        [(3, 4)],
    ),
    "nn_cross_entropy_probs": (
        lambda x, t: F.cross_entropy(x, F.softmax(t, 1), weight=_like(x, [1.0, 2.0, 0.5, 1.5]), label_smoothing=0.1),
        [(3, 4), (3, 4)],
    ),
    "nn_cross_entropy_kdim": (lambda x: F.cross_entropy(x, ad.tensor(np.array([[1, 0], [2, 2]]))), [(2, 3, 2)]),
    "nn_binary_cross_entropy": (
        lambda x, t: F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(t), weight=_like(x, _c(3, 2))),
        [(3, 2), (3, 2)],
    ),
    "nn_bce_with_logits": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, F.sigmoid(t), pos_weight=_like(x, [2.0, 0.5])),
        [(3, 2), (3, 2)],
    ),
    "nn_kl_div": (
        lambda x, t: F.kl_div(F.log_softmax(x, 1), F.softmax(t, 1), reduction="batchmean")
        + F.kl_div(x, t, reduction="sum", log_target=True),
        [(2, 3), (2, 3)],
    ),
    "nn_poisson_nll_loss": (
        lambda x, t: F.poisson_nll_loss(x, t * 2.0, full=True) + F.poisson_nll_loss(x + 3.0, t, log_input=False),
        [(5,), (5,)],
        {"domain": (0.2, 1.8)},
    ),
    "nn_gaussian_nll_loss": (lambda x, t, v: F.gaussian_nll_loss(x, t, v + 2.5, full=True), [(3, 2), (3, 2), (3, 2)]),
    "nn_margin_ranking_loss": (
        lambda x, y: F.margin_ranking_loss(x, y, _like(x, _SIGNS), margin=0.1), [(3,), (3,)],
    ),
    "nn_hinge_embedding_loss": (lambda x: F.hinge_embedding_loss(x, _like(x, _SIGNS)), [(3,)]),
    "nn_cosine_embedding_loss": (
        lambda x, y: F.cosine_embedding_loss(x, y, _like(x, _SIGNS), margin=-0.5), [(3, 4), (3, 4)],
    ),
    "nn_triplet_margin_loss": (
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0, swap=True), [(3, 4), (3, 4), (3, 4)],
    ),
    # convolutions
    "nn_conv1d": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2), [(2, 2, 7), (3, 2, 3), (3,)]),
    "nn_conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2), [(2, 4, 4, 3), (4, 2, 3, 2), (4,)]),
    "nn_conv2d_same": (lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 2)), [(1, 2, 4, 5), (2, 2, 2, 2)]),
    "nn_conv3d": (lambda x, w: F.conv3d(x, w, stride=(1, 2, 1)), [(1, 2, 3, 4, 3), (2, 2, 2, 2, 2)]),
    "nn_conv_transpose1d": (
        lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1), [(2, 2, 4), (2, 3, 3), (3,)],
    ),
    "nn_conv_transpose2d": (
        lambda x, w: F.conv_transpose2d(x, w, stride=(2, 1), groups=2, dilation=(1, 2)), [(1, 4, 3, 3), (4, 1, 2, 2)],
    ),
    "nn_unfold_fold": (
        lambda x: F.fold(F.unfold(x, 2, stride=1, padding=1) * 1.5, (3, 4), 2, padding=1), [(2, 2, 3, 4)],
    ),
    # pooling
    "nn_max_pool1d": (lambda x: F.max_pool1d(x, 3, stride=2, padding=1, ceil_mode=True), [(2, 2, 6)]),
    "nn_max_pool2d": (lambda x: F.max_pool2d(x, (2, 3), stride=1, dilation=(2, 1)), [(1, 2, 5, 5)]),
    "nn_avg_pool1d": (lambda x: F.avg_pool1d(x, 3, 2, padding=1, count_include_pad=False), [(2, 2, 7)]),
    "nn_avg_pool2d": (lambda x: F.avg_pool2d(x, 2, padding=1, ceil_mode=True) + F.avg_pool2d(x, 3, divisor_override=2).sum(), [(1, 2, 5, 4)]),
    "nn_adaptive_avg_pool": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)) + F.adaptive_avg_pool1d(x[0], 2).sum(), [(2, 3, 5, 4)]),
    "nn_adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (2, 3)), [(2, 2, 5, 4)]),
    # normalization
    "nn_layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 2), w, b), [(2, 3, 2), (3, 2), (3, 2)]),
    "nn_group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    "nn_batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(4, 3, 2), (3,), (3,)]),
    "nn_batch_norm_eval": (
        lambda x, w: F.batch_norm(x, _like(x, [0.1, -0.2, 0.3]), _like(x, [1.5, 0.5, 2.0]), w), [(4, 3), (3,)],
    ),
    "nn_instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [(2, 3, 4), (3,), (3,)]),
    "nn_local_response_norm": (lambda x: F.local_response_norm(x, 3, alpha=0.1), [(2, 4, 3)]),
    # the layouts of kernels/norm.py: parameters absent, one of them, per element of a row; data far from zero
    "nn_norm_layouts": (
        lambda x, w: (
            F.layer_norm(x, (3,), w[:3]) * F.group_norm(x, 4, None, w)
            + F.batch_norm(x[:, :, 0] + 50.0, None, None, None, w, training=True)[:, :, None]
            + F.group_norm(x, 1) * F.instance_norm(x)[:, :, :1]
        ),
        [(2, 4, 3), (4,)],
    ),
    # lookups, resampling, attention
    "nn_embedding": (
        lambda w: F.embedding(ad.tensor(np.array([[0, 2], [2, 3]])), w),
        [(4, 3)],
    ),
    "nn_pad": (
        lambda x: F.pad(x, (1, 2, 0, 1), value=0.5) + F.pad(x, (1, 2, 0, 1), mode="reflect")
        + F.pad(x, (1, 2, 0, 1), mode="replicate") + F.pad(x, (1, 2, 0, 1), mode="circular"),
        [(1, 2, 3, 4)],
    ),
    "nn_interpolate": (
        lambda x: F.interpolate(x, size=(5, 3), mode="bilinear")
        + F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True)
        + F.interpolate(x, size=(5, 3)),
        [(1, 2, 3, 4)],
    ),
    "nn_interpolate_linear": (lambda x: F.interpolate(x, scale_factor=1.5, mode="linear"), [(1, 2, 4)]),
    "nn_interpolate_cubic_antialias_area": (
        lambda x: F.interpolate(x, size=(3, 7), mode="bicubic")
        + F.interpolate(x, size=(3, 7), mode="bicubic", align_corners=True)
        + F.interpolate(x, size=(3, 7), mode="bilinear", antialias=True)
        + F.interpolate(x, size=(3, 7), mode="bicubic", antialias=True)
        + F.interpolate(x, size=(3, 7), mode="lanczos", antialias=True)
        + F.interpolate(x, size=(3, 7), mode="area"),
        [(1, 2, 5, 4)],
    ),
    "nn_pixel_shuffle": (lambda x: F.pixel_unshuffle(F.pixel_shuffle(x, 2) * 2.0, 1) * 1.5, [(1, 8, 2, 3)]),
    "nn_sdpa": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
        + F.scaled_dot_product_attention(q, k, v, attn_mask=ad.tensor(np.array([[True, False, True]] * 3)), scale=0.3),
        [(2, 3, 4), (2, 3, 4), (2, 3, 2)],
    ),
    # session 15 (nnfunc): torch's remaining functionals, composites of gather/scatter maps and ad ops
    "nn_grid_sample": (
        lambda x, g: F.grid_sample(x, g, "bilinear", "border", False) + F.grid_sample(x, g, "bicubic", "reflection", True)
        + F.grid_sample(x, g, "nearest", "zeros", False),
        [(1, 1, 3, 3), (1, 2, 2, 2)], {"domain": (-1.3, 1.3)},
    ),
    "nn_affine_grid_sample_3d": (
        lambda x, t: F.grid_sample(x, F.affine_grid(t, [1, 1, 2, 2, 2], align_corners=False), "bilinear", "zeros", False),
        [(1, 1, 2, 3, 2), (1, 3, 4)], {"domain": (-0.9, 0.9)},
    ),
    "nn_ctc_loss": (
        lambda x: F.ctc_loss(F.log_softmax(x, 2), ad.tensor([[1, 1], [2, 0]]), ad.tensor([4, 3]), ad.tensor([2, 1]))
        + F.ctc_loss(x - 2.0, ad.tensor([1, 2, 1]), (4, 4), (1, 2), blank=1, reduction="sum"),
        [(4, 2, 3)],
    ),
    "nn_embedding_bag": (
        lambda w, p: F.embedding_bag(ad.tensor([0, 2, 2, 1, 3]), w, ad.tensor([0, 3, 3]), mode="sum", per_sample_weights=p)
        + F.embedding_bag(ad.tensor([0, 2, 2, 1, 3]), w, ad.tensor([0, 3, 3]), padding_idx=1)
        + F.embedding_bag(ad.tensor([[0, 2], [3, 1], [2, 2]]), w * 3.0, mode="max"),
        [(4, 3), (5,)],
    ),
    "nn_pdist_lp_pool": (
        lambda x: F.pdist(x) + F.pdist(x, 1.5) + F.lp_pool1d(ad.unsqueeze(x, 0), 2.5, 2).sum() * F.lp_pool2d(ad.unsqueeze(x, 0), 2, (2, 3)).sum(),
        [(4, 3)], {"domain": (0.5, 1.5)},
    ),
    "nn_max_unpool_fractional": (
        lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2, output_size=(5, 4))
        + F.interpolate(F.fractional_max_pool2d(x, 2, (2, 2), _random_samples=_like(x, [[[0.3, 0.8]], [[0.6, 0.1]]])), size=(5, 4))
        + F.interpolate(F.adaptive_max_pool3d(ad.unsqueeze(x, 1), (1, 2, 2)).squeeze(1), size=(5, 4)),
        [(2, 1, 5, 4)],
    ),
    "nn_multilabel_losses": (
        lambda x, y: F.multilabel_margin_loss(x, ad.tensor([[3, 0, -1, 1], [1, 2, 3, -1]]))
        + F.multilabel_soft_margin_loss(x, F.sigmoid(y), weight=_like(x, _c(4)))
        + F.triplet_margin_with_distance_loss(x, y, x * 0.5, distance_function=lambda a, b: (a - b).abs().sum(1), margin=3.0),
        [(2, 4), (2, 4)], {"domain": (-0.4, 0.4)},
    ),
    "nn_channel_shuffle": (lambda x: F.channel_shuffle(x, 2) * 1.5, [(1, 4, 2, 2)]),
}
