"""Parity table of ad.nn.functional (activations, losses, normalization) for tests/test_torch_parity.py.

Inputs are moved off kinks (relu's 0, hardtanh's +-1, ...) by an offset no multiple of 0.001 hits; losses
with probabilities take sigmoids; normalizations work on ``x`` broadcast to (2, 3). Results broadcast to (2, 3).
"""

from test_torch_parity import OpSpec

_OFF = 0.000371


def _k(x):
    return x * 1.3 + _OFF


def _full(L, x):
    return x + L.zeros(2, 3, dtype=L.float64)


def _F(L):  # noqa: N802 - torch's alias
    return L.nn.functional


PARITY_OPS = [
    # ---- activations
    OpSpec("relu", 1, lambda L, x: _F(L).relu(_k(x))),
    OpSpec("relu6", 1, lambda L, x: _F(L).relu6(_k(x) * 4)),
    OpSpec("gelu", 1, lambda L, x: _F(L).gelu(x)),
    OpSpec("gelu_tanh", 1, lambda L, x: _F(L).gelu(x, approximate="tanh")),
    OpSpec("silu", 1, lambda L, x: _F(L).silu(x), forward_ad=False),  # torch 2.13: no forward AD of silu_backward
    OpSpec("mish", 1, lambda L, x: _F(L).mish(x), forward_ad=False),  # torch 2.13: no forward AD of mish_backward
    OpSpec("softplus", 1, lambda L, x: _F(L).softplus(x, beta=2.0)),
    OpSpec("elu", 1, lambda L, x: _F(L).elu(_k(x), alpha=0.7)),
    OpSpec("selu", 1, lambda L, x: _F(L).selu(_k(x))),
    OpSpec("celu", 1, lambda L, x: _F(L).celu(_k(x), alpha=1.5)),
    OpSpec("leaky_relu", 1, lambda L, x: _F(L).leaky_relu(_k(x), 0.1)),
    OpSpec("hardtanh", 1, lambda L, x: _F(L).hardtanh(_k(x))),
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32 (a 3e-8 relative error in float64
    # gradients, which later products and sums can magnify past RTOL); ad's slope is the float64 1/6
    OpSpec("hardsigmoid", 1, lambda L, x: _F(L).hardsigmoid(_k(x) * 3), rtol=1e-6),
    OpSpec("hardswish", 1, lambda L, x: _F(L).hardswish(_k(x) * 3)),
    OpSpec("hardshrink", 1, lambda L, x: _F(L).hardshrink(_k(x), 0.5)),
    OpSpec("softshrink", 1, lambda L, x: _F(L).softshrink(_k(x), 0.5)),
    OpSpec("tanhshrink", 1, lambda L, x: _F(L).tanhshrink(x)),
    OpSpec("softsign", 1, lambda L, x: _F(L).softsign(x)),
    OpSpec("logsigmoid", 1, lambda L, x: _F(L).logsigmoid(x)),
    OpSpec("threshold", 1, lambda L, x: _F(L).threshold(_k(x), 0.2, -1.0)),
    OpSpec("prelu", 2, lambda L, x, y: _F(L).prelu(_full(L, _k(x)), y.reshape(-1)[:1])),
    OpSpec("glu", 1, lambda L, x: _F(L).glu(_full(L, x).repeat(1, 2), dim=-1)),
    OpSpec("softmax", 1, lambda L, x: _F(L).softmax(x, dim=-1)),
    OpSpec("log_softmax", 1, lambda L, x: _F(L).log_softmax(x, dim=0)),
    OpSpec("softmin", 1, lambda L, x: _F(L).softmin(x, dim=-1)),
    OpSpec("normalize", 1, lambda L, x: _F(L).normalize(_full(L, x) + 0.1, dim=-1)),
    OpSpec(
        "cosine_similarity",
        2,
        lambda L, x, y: _F(L).cosine_similarity(_full(L, x) + 0.1, _full(L, y) - 0.2, dim=-1).unsqueeze(-1),
    ),
    OpSpec(
        "pairwise_distance", 2, lambda L, x, y: _F(L).pairwise_distance(_full(L, x), _full(L, y) + 0.5).unsqueeze(-1)
    ),
    OpSpec("linear", 2, lambda L, x, y: _F(L).linear(_full(L, x), _full(L, y).mT @ _full(L, y) * 0.3, _full(L, y)[0])),
    OpSpec("bilinear_like", 2, lambda L, x, y: _F(L).linear(_full(L, x), _full(L, y)).sum(-1, keepdim=True)),
    # ---- normalization (torch 2.13: no forward-mode formula of their backward, so not in dual modes)
    OpSpec(
        "layer_norm",
        2,
        lambda L, x, y: _F(L).layer_norm(_full(L, x) + L.tensor([0.0, 0.5, 1.0]), (3,), _full(L, y)[0], _full(L, y)[1]),
        forward_ad=False,
    ),
    OpSpec("rms_norm", 1, lambda L, x: _F(L).rms_norm(_full(L, x) + 0.1, (3,)), forward_ad=False),
    OpSpec(
        "group_norm", 1, lambda L, x: _F(L).group_norm(_full(L, x) + L.tensor([0.0, 0.5, 1.0]), 1), forward_ad=False
    ),
    OpSpec(
        "batch_norm",
        1,
        lambda L, x: _F(L).batch_norm(
            _full(L, x) + L.tensor([[0.0, 0.5, 1.0], [1.0, 0.0, 0.2]]), None, None, training=True
        ),
        forward_ad=False,
    ),
    # ---- losses (reduction 'none' keeps shapes; 'mean' / 'sum' give scalars)
    OpSpec("mse_loss", 2, lambda L, x, y: _F(L).mse_loss(_full(L, x), _full(L, y))),
    OpSpec("mse_loss_none", 2, lambda L, x, y: _F(L).mse_loss(_full(L, x), _full(L, y), reduction="none")),
    OpSpec("l1_loss", 2, lambda L, x, y: _F(L).l1_loss(_full(L, x), _full(L, y) + _OFF, reduction="sum")),
    OpSpec("huber_loss", 2, lambda L, x, y: _F(L).huber_loss(_full(L, x), _full(L, y) + _OFF, delta=0.5)),
    OpSpec(
        "smooth_l1_loss",
        2,
        lambda L, x, y: _F(L).smooth_l1_loss(_full(L, x), _full(L, y) + _OFF, beta=0.5, reduction="none"),
    ),
    OpSpec("bce", 2, lambda L, x, y: _F(L).binary_cross_entropy(x.sigmoid(), (y * 0.7).sigmoid())),
    OpSpec(
        "bce_logits",
        2,
        lambda L, x, y: _F(L).binary_cross_entropy_with_logits(
            _full(L, x), (_full(L, y)).sigmoid(), pos_weight=L.tensor([1.0, 2.0, 0.5])
        ),
    ),
    OpSpec(
        "kl_div",
        2,
        lambda L, x, y: _F(L).kl_div(
            _F(L).log_softmax(_full(L, x), -1), _F(L).softmax(_full(L, y), -1), reduction="batchmean"
        ),
    ),
    OpSpec("cross_entropy", 2, lambda L, x, y: _F(L).cross_entropy(_full(L, x), _F(L).softmax(_full(L, y), -1))),
    OpSpec(
        "cross_entropy_idx",
        1,
        lambda L, x: _F(L).cross_entropy(_full(L, x), L.tensor([2, 0], dtype=L.int64), label_smoothing=0.1),
    ),
    OpSpec(
        "nll_loss",
        1,
        lambda L, x: _F(L).nll_loss(
            _F(L).log_softmax(_full(L, x), -1), L.tensor([1, 1], dtype=L.int64), reduction="sum"
        ),
    ),
    OpSpec("gaussian_nll", 2, lambda L, x, y: _F(L).gaussian_nll_loss(_full(L, x), _full(L, y), _full(L, y * y + 0.5))),
    OpSpec("poisson_nll", 2, lambda L, x, y: _F(L).poisson_nll_loss(_full(L, x), y * y)),
    OpSpec(
        "margin_ranking",
        2,
        lambda L, x, y: _F(L).margin_ranking_loss(
            _full(L, x), _full(L, y) + _OFF, L.tensor([[1.0, -1.0, 1.0]] * 2), margin=0.1
        ),
    ),
    OpSpec("hinge_embedding", 1, lambda L, x: _F(L).hinge_embedding_loss(_k(_full(L, x)), L.tensor([1.0, -1.0, -1.0]))),
    OpSpec(
        "cosine_embedding",
        2,
        lambda L, x, y: _F(L).cosine_embedding_loss(_full(L, x) + 0.1, _full(L, y) - 0.2, L.tensor([1.0, -1.0])),
    ),
    OpSpec(
        "triplet_margin",
        2,
        lambda L, x, y: _F(L).triplet_margin_loss(_full(L, x), _full(L, y) + 0.3, _full(L, y) - 0.4, margin=5.0),
    ),
    # ---- added for issue 17 (the rest of the op table). Convolutions: ad's forward over reverse through conv
    # raises NotImplementedError (README, deliberate: AD_NO_FWD_OVER_REV)
    OpSpec("conv1d", 2, lambda L, x, y: _F(L).conv1d(_full(L, x)[None], _full(L, y)[None], padding=1)[0]),
    OpSpec(
        "conv2d",
        2,
        lambda L, x, y: _F(L).conv2d(_full(L, x)[None, None], _full(L, y)[None, None, :, :2], padding=1)[0, 0, :2, :3],
    ),
    OpSpec(
        "conv_transpose1d",
        2,
        lambda L, x, y: _F(L).conv_transpose1d(_full(L, x)[None], _full(L, y)[:, None, :2])[0, :, :3],
    ),
    OpSpec(
        "unfold_fold",
        1,
        lambda L, x: _F(L).fold(
            _F(L).unfold(_full(L, x)[None, None], (2, 2), padding=1) * 0.5, (2, 3), (2, 2), padding=1
        )[0, 0],
    ),
    OpSpec("max_pool1d", 1, lambda L, x: _F(L).max_pool1d(_spread(L, x)[None], 2, stride=1, padding=1)[0][:, :3]),
    OpSpec(
        "max_pool2d", 1, lambda L, x: _F(L).max_pool2d(_spread(L, x)[None, None], 2, stride=1, padding=1)[0, 0][:2, :3]
    ),
    OpSpec(
        "avg_pool1d",
        1,
        lambda L, x: _F(L).avg_pool1d(_full(L, x)[None], 2, stride=1, padding=1, count_include_pad=False)[0][:, :3],
    ),
    OpSpec("avg_pool2d", 1, lambda L, x: _F(L).avg_pool2d(_full(L, x)[None, None], 2, padding=1, ceil_mode=True)[0, 0]),
    OpSpec(
        "adaptive_avg_pool2d",
        1,
        lambda L, x: _F(L).adaptive_avg_pool2d(_full(L, x)[None], (2, 2))[0].sum(-1, keepdim=True),
    ),
    OpSpec(
        "adaptive_max_pool2d",
        1,
        lambda L, x: _F(L).adaptive_max_pool2d(_spread(L, x)[None], (2, 2))[0].sum(-1, keepdim=True),
    ),
    OpSpec("local_response_norm", 1, lambda L, x: _F(L).local_response_norm(_full(L, x)[None], 2, alpha=0.1)[0]),
    OpSpec("embedding", 1, lambda L, x: _F(L).embedding(L.tensor([1, 1, 0], dtype=L.int64), _full(L, x)).mT[:2]),
    OpSpec("pad_constant", 1, lambda L, x: _F(L).pad(_full(L, x), (1, 0), value=0.5)[:, :3]),
    OpSpec("pad_reflect", 1, lambda L, x: _F(L).pad(_full(L, x)[None], (1, 1), mode="reflect")[0][:, :3]),
    OpSpec(
        "interpolate_linear",
        1,
        lambda L, x: _F(L).interpolate(_full(L, x)[None], size=5, mode="linear", align_corners=False)[0][:, 1:4],
    ),
    OpSpec(
        "interpolate_nearest",
        1,
        lambda L, x: _F(L).interpolate(_full(L, x)[None, None], scale_factor=2.0, mode="nearest")[0, 0][1:3, 2:5],
    ),
    OpSpec(
        "pixel_shuffle",
        2,
        lambda L, x, y: _F(L).pixel_shuffle(L.cat([_full(L, x), _full(L, y)], 0).reshape(4, 1, 3), 2)[0][:, ::2],
    ),
    OpSpec(
        "sdpa",
        2,
        lambda L, x, y: _F(L).scaled_dot_product_attention(_full(L, x)[None], _full(L, y)[None], _full(L, x)[None])[0],
    ),
    OpSpec(
        "bilinear",
        2,
        lambda L, x, y: _F(L).bilinear(
            _full(L, x),
            _full(L, y),
            L.tensor([[[0.1, 0.2, 0.0], [0.3, -0.1, 0.2], [0.0, 0.4, -0.2]]], dtype=L.float64),
            L.tensor([0.1], dtype=L.float64),
        ),
    ),
    OpSpec("rrelu_eval", 1, lambda L, x: _F(L).rrelu(_k(x), training=False)),
    OpSpec(
        "cross_entropy_kdim",
        1,
        lambda L, x: _F(L).cross_entropy(_full(L, x)[None], L.tensor([[1, 0, 1]], dtype=L.int64)),
    ),
    OpSpec("relu_", 1, lambda L, x: _F(L).relu(_k(x)), inplace=lambda L, x, y: _F(L).relu_(x.add_(_OFF))),
    # ---- issue 17, session 7: the convolutions and norms not generated before
    OpSpec(
        "conv3d",
        2,
        lambda L, x, y: _F(L).conv3d(
            L.stack([_full(L, x), _full(L, y)])[None, None],
            L.stack([_full(L, y)[:, :2], _full(L, x)[:, 1:]])[None, None],
            padding=1,
        )[0, 0, 1, :2, :3],
    ),
    OpSpec(
        "conv_transpose2d",
        2,
        lambda L, x, y: _F(L).conv_transpose2d(
            L.stack([_full(L, x), _full(L, y)])[None],
            L.stack([_full(L, y)[:, :2], _full(L, x)[:, 1:]])[:, None],
            stride=(1, 2),
            padding=(0, 1),
        )[0, 0, :2, :3],
    ),
    OpSpec(
        "instance_norm",
        2,
        lambda L, x, y: _F(L).instance_norm(_full(L, x)[None], weight=_full(L, y)[:, 0], bias=_full(L, y)[:, 1])[0],
    ),
]


def _spread(L, x):
    """``x`` broadcast to (2, 3) with distinct entries (ties of max pooling are kinks)."""
    return _full(L, x) + L.tensor([[0.0, 0.000371, 0.000742], [0.000113, 0.000484, 0.000855]], dtype=L.float64)
