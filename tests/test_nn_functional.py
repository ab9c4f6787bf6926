# ruff: noqa: E501, B023 - one case a line; the comprehensions bind their loop variables through an outer lambda
"""``ad.nn.functional`` against torch: values and gradients (float64) for every function and its options,
the special points (kinks, bounds, ties, zeros) with torch's conventions, error classes, in-place variants,
running statistics, dropout's randomness and the conv benchmark's shapes.

Each case is ``(id, call)`` where ``call(F, lib, *inputs)`` runs the same code on ``ad`` and on torch
(``F`` is the library's ``nn.functional``, ``lib`` the library), and the inputs are numpy arrays that become
leaves requiring grad in both. Gradients are those of ``sum(out * w)`` with fixed non-uniform ``w``.
"""

import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

FA = ad.nn.functional
FT = torch.nn.functional
RNG = np.random.default_rng(0)


def _r(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, shape)


def _kinks(*values):
    return np.array(values, dtype=np.float64)


def _to_ad(a, rg=True):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return ad.tensor(a, requires_grad=rg)
    return ad.tensor(a) if isinstance(a, np.ndarray) else a


def _to_torch(a, rg=True):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return torch.tensor(a, requires_grad=rg)
    return torch.tensor(a) if isinstance(a, np.ndarray) else a


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _compare(call, inputs, rtol=1e-7, atol=1e-10):  # (torch rounds a few constants, hardsigmoid 1/6, to float32)
    xa = [_to_ad(a) for a in inputs]
    xt = [_to_torch(a) for a in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oa = _outputs(call(FA, ad, *xa))
        ot = _outputs(call(FT, torch, *xt))
    assert len(oa) == len(ot)
    loss_a = loss_t = None
    for a, t in zip(oa, ot):
        assert tuple(a.shape) == tuple(t.shape)
        np.testing.assert_allclose(a.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
        if t.dtype.is_floating_point and t.requires_grad:
            w = np.linspace(0.5, 1.5, max(t.numel(), 1))[: t.numel()].reshape(tuple(t.shape))
            la = (a * ad.tensor(w)).sum()
            lt = (t * torch.tensor(w)).sum()
            loss_a = la if loss_a is None else loss_a + la
            loss_t = lt if loss_t is None else loss_t + lt
        elif t.dtype == torch.int64:  # (index outputs: int64 in both)
            assert a.dtype == np.int64
    if loss_t is None:
        return
    diff_a = [x for x in xa if isinstance(x, ad.Tensor) and x.requires_grad]
    diff_t = [x for x in xt if isinstance(x, torch.Tensor) and x.requires_grad]
    ga = ad.autograd.grad(loss_a, diff_a, allow_unused=True)
    gt = torch.autograd.grad(loss_t, diff_t, allow_unused=True)
    for g_a, g_t in zip(ga, gt):
        if g_a is None and g_t is not None:  # (ad: not connected; torch: zeros)
            assert not g_t.any()
            continue
        if g_t is None:
            assert g_a is None or not np.any(g_a.numpy())
            continue
        np.testing.assert_allclose(g_a.numpy(), g_t.numpy(), rtol=rtol, atol=atol)


_IDX = np.array([1, 0, 3, 2, 0])
_BCE_W = _r(3, 4, lo=0.5, hi=1.5)
_KL_T = np.array([[0.0, 0.2, 0.3, 0.5]] * 3)
_W4 = np.array([1.0, 2.0, 0.5, 1.5])

CASES = [
    # activations, at random points and at their kinks / bounds
    ("relu", lambda F, L, x: F.relu(x), [_kinks(-1.0, 0.0, 2.0)]),
    ("relu6", lambda F, L, x: F.relu6(x), [_kinks(-1.0, 0.0, 3.0, 6.0, 7.0)]),
    ("hardtanh", lambda F, L, x: F.hardtanh(x, -0.5, 1.5), [_kinks(-1.0, -0.5, 0.0, 1.5, 2.0)]),
    ("leaky_relu", lambda F, L, x: F.leaky_relu(x, 0.3), [_kinks(-1.0, 0.0, 2.0)]),
    ("leaky_relu_default", lambda F, L, x: F.leaky_relu(x), [_r(7)]),
    ("elu", lambda F, L, x: F.elu(x, 0.5), [_kinks(-800.0, -1.0, 0.0, 2.0, 800.0)]),
    ("selu", lambda F, L, x: F.selu(x), [_kinks(-1.0, 0.0, 2.0)]),
    ("celu", lambda F, L, x: F.celu(x, 2.0), [_kinks(-1.0, 0.0, 2.0)]),
    ("gelu", lambda F, L, x: F.gelu(x), [_r(7)]),
    ("gelu_tanh", lambda F, L, x: F.gelu(x, approximate="tanh"), [_r(7)]),
    ("silu", lambda F, L, x: F.silu(x), [_r(7)]),
    ("mish", lambda F, L, x: F.mish(x), [_kinks(-50.0, -1.0, 0.0, 2.0, 30.0)]),
    ("softplus", lambda F, L, x: F.softplus(x), [_kinks(-800.0, -1.0, 0.0, 19.0, 21.0, 800.0)]),
    ("softplus_beta", lambda F, L, x: F.softplus(x, beta=2.0, threshold=5.0), [_kinks(-3.0, 0.0, 2.5, 3.0)]),
    ("softsign", lambda F, L, x: F.softsign(x), [_kinks(-2.0, 0.0, 3.0)]),
    ("hardsigmoid", lambda F, L, x: F.hardsigmoid(x), [_kinks(-4.0, -3.0, 0.0, 3.0, 4.0)]),
    ("hardswish", lambda F, L, x: F.hardswish(x), [_kinks(-4.0, -3.0, 0.0, 3.0, 4.0)]),
    ("logsigmoid", lambda F, L, x: F.logsigmoid(x), [_kinks(-800.0, -1.0, 0.0, 2.0, 800.0)]),
    ("tanhshrink", lambda F, L, x: F.tanhshrink(x), [_r(7)]),
    ("softshrink", lambda F, L, x: F.softshrink(x, 0.5), [_kinks(-1.0, -0.5, 0.0, 0.5, 1.0)]),
    ("hardshrink", lambda F, L, x: F.hardshrink(x, 0.5), [_kinks(-1.0, -0.5, 0.0, 0.5, 1.0)]),
    ("threshold", lambda F, L, x: F.threshold(x, 0.5, -3.0), [_kinks(-1.0, 0.5, 1.0)]),
    ("prelu", lambda F, L, x, w: F.prelu(x, w), [_r(2, 3, 2), _r(3)]),
    ("prelu_single", lambda F, L, x, w: F.prelu(x, w), [_r(2, 3), _r(1)]),
    ("rrelu_eval", lambda F, L, x: F.rrelu(x, 0.1, 0.3), [_kinks(-2.0, 0.0, 1.0)]),
    ("softmin", lambda F, L, x: F.softmin(x, dim=0), [_r(3, 4)]),
    ("glu", lambda F, L, x: F.glu(x), [_r(3, 4)]),
    ("glu_dim0", lambda F, L, x: F.glu(x, 0), [_r(4, 3)]),
    # linear and distances
    ("bilinear", lambda F, L, a, b, w, c: F.bilinear(a, b, w, c), [_r(2, 3, 2), _r(2, 3, 4), _r(5, 2, 4), _r(5)]),
    ("normalize", lambda F, L, x: F.normalize(x), [np.vstack([_r(4), np.zeros(4), _r(4)]).T.copy()]),
    ("normalize_p1", lambda F, L, x: F.normalize(x, p=1.0, dim=0), [_r(3, 4)]),
    ("cosine_similarity", lambda F, L, a, b: F.cosine_similarity(a, b), [_r(3, 4), _r(3, 4)]),
    ("cosine_similarity_bcast", lambda F, L, a, b: F.cosine_similarity(a, b, dim=-1), [_r(3, 4), _r(1, 4)]),
    ("pairwise_distance", lambda F, L, a, b: F.pairwise_distance(a, b), [_r(3, 4), _r(3, 4)]),
    ("pairwise_distance_p", lambda F, L, a, b: F.pairwise_distance(a, b, p=1.0, eps=0.0, keepdim=True),
     [_r(3, 4), _r(3, 4)]),
    ("cdist", lambda F, L, a, b: L.cdist(a, b), [_r(3, 2), _r(4, 2)]),
    ("cdist_p1_batched", lambda F, L, a, b: L.cdist(a, b, p=1.0), [_r(2, 3, 2), _r(2, 4, 2)]),
    ("cdist_inf", lambda F, L, a, b: L.cdist(a, b, p=float("inf")), [_r(3, 2), _r(4, 2)]),
    ("cdist_zero_distance", lambda F, L, a: L.cdist(a, a), [_r(3, 2)]),
    # losses, every reduction
    *[(f"l1_{red}", (lambda red: lambda F, L, x, y: F.l1_loss(x, y, reduction=red))(red), [_r(3, 4), _r(3, 4)])
      for red in ("mean", "sum", "none")],
    ("mse", lambda F, L, x, y: F.mse_loss(x, y), [_r(3, 4), _r(3, 4)]),
    ("smooth_l1", lambda F, L, x, y: F.smooth_l1_loss(x, y, beta=0.5, reduction="none"),
     [_kinks(0.0, 0.5, 1.0, -2.0), _kinks(0.0, 0.0, 0.2, 1.0)]),
    ("smooth_l1_beta0", lambda F, L, x, y: F.smooth_l1_loss(x, y, beta=0.0), [_r(5), _r(5)]),
    ("huber", lambda F, L, x, y: F.huber_loss(x, y, delta=0.5, reduction="sum"), [_r(3, 4), _r(3, 4)]),
    ("nll", lambda F, L, x: F.nll_loss(x, L.tensor(_IDX)), [_r(5, 4)]),
    *[(f"nll_{red}_w_ignore", (lambda red: lambda F, L, x: F.nll_loss(
        x, L.tensor(_IDX), weight=L.tensor(_W4), ignore_index=0, reduction=red))(red), [_r(5, 4)])
      for red in ("mean", "sum", "none")],
    ("nll_kdim", lambda F, L, x: F.nll_loss(x, L.tensor(np.array([[0, 1, 2], [2, 2, 0]]))), [_r(2, 3, 3)]),
    ("nll_1d", lambda F, L, x: F.nll_loss(x, L.tensor(np.array(2))), [_r(4)]),
    *[(f"ce_{red}_w{w}_ig{ig}_ls{ls}", (lambda red, w, ig, ls: lambda F, L, x: F.cross_entropy(
        x, L.tensor(_IDX), weight=L.tensor(_W4) if w else None, ignore_index=ig, reduction=red,
        label_smoothing=ls))(red, w, ig, ls), [_r(5, 4)])
      for red in ("mean", "sum", "none") for w in (False, True) for ig in (-100, 0) for ls in (0.0, 0.3)],
    ("ce_kdim_smoothing", lambda F, L, x: F.cross_entropy(x, L.tensor(np.array([[0, 1, 2], [2, 2, 0]])),
                                                          label_smoothing=0.2, weight=L.tensor(_W4[:3])), [_r(2, 3, 3)]),
    ("ce_unbatched", lambda F, L, x: F.cross_entropy(x, L.tensor(np.array(1)), label_smoothing=0.1), [_r(4)]),
    *[(f"ce_probs_{red}_w{w}_ls{ls}", (lambda red, w, ls: lambda F, L, x, t: F.cross_entropy(
        x, F.softmax(t, 1), weight=L.tensor(_W4) if w else None, reduction=red, label_smoothing=ls))(red, w, ls),
       [_r(5, 4), _r(5, 4)])
      for red in ("mean", "sum", "none") for w in (False, True) for ls in (0.0, 0.25)],
    ("ce_probs_kdim", lambda F, L, x, t: F.cross_entropy(x, F.softmax(t, 1)), [_r(2, 4, 3), _r(2, 4, 3)]),
    ("bce", lambda F, L, x, t: F.binary_cross_entropy(x, t), [_r(3, 4, lo=0.05, hi=0.95), _r(3, 4, lo=0, hi=1)]),
    ("bce_weight_sum", lambda F, L, x, t: F.binary_cross_entropy(x, t, weight=L.tensor(_BCE_W), reduction="sum"),
     [_r(3, 4, lo=0.05, hi=0.95), _r(3, 4, lo=0, hi=1)]),
    ("bce_logits", lambda F, L, x, t: F.binary_cross_entropy_with_logits(x, t), [_r(3, 4, lo=-30, hi=30), _r(3, 4, lo=0, hi=1)]),
    ("bce_logits_pos_weight", lambda F, L, x, t: F.binary_cross_entropy_with_logits(
        x, t, pos_weight=L.tensor(np.array([0.5, 3.0, 1.0, 2.0])), weight=L.tensor(np.array([1.0, 2.0, 0.5, 1.0])),
        reduction="none"), [_r(3, 4), _r(3, 4, lo=0, hi=1)]),
    # zero targets: constants here (torch's gradient in the target is nan there, ad's finite: see the report)
    ("kl_div_zero_target", lambda F, L, x: F.kl_div(x, L.tensor(_KL_T), reduction="batchmean"), [_r(3, 4, hi=0)]),
    *[(f"kl_div_{red}_log{lt}", (lambda red, lt: lambda F, L, x, t: F.kl_div(x, t, reduction=red, log_target=lt))(red, lt),
       [_r(3, 4, hi=0), _r(3, 4, lo=0.1, hi=1)]) for red in ("mean", "sum", "none", "batchmean") for lt in (False, True)],
    ("poisson_nll", lambda F, L, x, t: F.poisson_nll_loss(x, t), [_r(6), _r(6, lo=0, hi=3)]),
    ("poisson_nll_full", lambda F, L, x: F.poisson_nll_loss(x, L.tensor(_kinks(0.0, 0.5, 1.0, 1.5, 2.0, 4.0)),
                                                            log_input=False, full=True, reduction="sum"),
     [_r(6, lo=0.1, hi=3)]),
    ("poisson_nll_full_target_grad", lambda F, L, x, t: F.poisson_nll_loss(x, t, full=True), [_r(6), _r(6, lo=0.2, hi=3)]),
    ("gaussian_nll", lambda F, L, x, t, v: F.gaussian_nll_loss(x, t, v), [_r(3, 4), _r(3, 4), _r(3, 4, lo=0.1, hi=2)]),
    ("gaussian_nll_clamped_full", lambda F, L, x, t, v: F.gaussian_nll_loss(x, t, v, full=True, eps=0.5, reduction="none"),
     [_r(3, 4), _r(3, 4), _r(3, lo=0.0, hi=1)]),
    ("gaussian_nll_var_last1", lambda F, L, x, t, v: F.gaussian_nll_loss(x, t, v, reduction="sum"),
     [_r(3, 4), _r(3, 4), _r(3, 1, lo=0.1, hi=2)]),
    ("margin_ranking", lambda F, L, a, b: F.margin_ranking_loss(a, b, L.tensor(np.array([1.0, -1.0, 1.0, -1.0])), 0.2),
     [_r(4), _r(4)]),
    ("hinge_embedding", lambda F, L, x: F.hinge_embedding_loss(x, L.tensor(np.array([1.0, -1.0, 1.0, -1.0])),
                                                               reduction="none"), [_r(4)]),
    ("cosine_embedding", lambda F, L, a, b: F.cosine_embedding_loss(a, b, L.tensor(np.array([1.0, -1.0, 1.0])), 0.1),
     [_r(3, 4), _r(3, 4)]),
    ("triplet", lambda F, L, a, p, n: F.triplet_margin_loss(a, p, n), [_r(3, 4), _r(3, 4), _r(3, 4)]),
    ("triplet_swap_p1", lambda F, L, a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, p=1, swap=True, reduction="none"),
     [_r(3, 4), _r(3, 4), _r(3, 4)]),
    # convolutions
    ("conv1d", lambda F, L, x, w, b: F.conv1d(x, w, b, stride=2, padding=2, dilation=2), [_r(2, 3, 9), _r(4, 3, 3), _r(4)]),
    ("conv1d_unbatched_same", lambda F, L, x, w: F.conv1d(x, w, padding="same"), [_r(3, 8), _r(2, 3, 4)]),
    ("conv2d", lambda F, L, x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)), [_r(2, 3, 6, 5), _r(4, 3, 3, 2), _r(4)]),
    ("conv2d_groups_valid", lambda F, L, x, w: F.conv2d(x, w, padding="valid", groups=3, dilation=2),
     [_r(2, 6, 7, 7), _r(6, 2, 2, 3)]),
    ("conv2d_same_even", lambda F, L, x, w: F.conv2d(x, w, padding="same"), [_r(1, 2, 5, 4), _r(3, 2, 2, 4)]),
    ("conv3d", lambda F, L, x, w, b: F.conv3d(x, w, b, padding=1, stride=2), [_r(1, 2, 4, 5, 3), _r(3, 2, 3, 3, 2), _r(3)]),
    ("conv_transpose1d", lambda F, L, x, w, b: F.conv_transpose1d(x, w, b, stride=3, padding=1, output_padding=2),
     [_r(2, 2, 5), _r(2, 3, 4), _r(3)]),
    ("conv_transpose2d", lambda F, L, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1,
                                                                  groups=2, dilation=(1, 2)),
     [_r(2, 4, 3, 4), _r(4, 3, 3, 2), _r(6)]),
    ("conv_transpose2d_unbatched", lambda F, L, x, w: F.conv_transpose2d(x, w), [_r(2, 3, 3), _r(2, 1, 2, 2)]),
    ("unfold", lambda F, L, x: F.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), [_r(2, 3, 5, 6)]),
    ("fold", lambda F, L, x: F.fold(x, (4, 5), 2, padding=1, stride=2), [_r(2, 8, 9)]),
    # pooling
    ("max_pool1d", lambda F, L, x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True, return_indices=True), [_r(2, 3, 8)]),
    ("max_pool2d", lambda F, L, x: F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True), [_r(2, 2, 7, 6)]),
    ("max_pool2d_dilation_ceil", lambda F, L, x: F.max_pool2d(x, (2, 3), (2, 1), dilation=(2, 1), ceil_mode=True),
     [_r(1, 2, 8, 6)]),
    ("max_pool2d_ties", lambda F, L, x: F.max_pool2d(x, 2, 1, return_indices=True), [np.ones((1, 1, 3, 3))]),
    ("max_pool2d_unbatched", lambda F, L, x: F.max_pool2d(x, 2), [_r(3, 4, 4)]),
    ("avg_pool1d", lambda F, L, x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [_r(2, 3, 8)]),
    ("avg_pool2d", lambda F, L, x: F.avg_pool2d(x, 3, 2, 1), [_r(2, 2, 7, 6)]),
    ("avg_pool2d_ceil_nopad", lambda F, L, x: F.avg_pool2d(x, (3, 2), 2, (1, 1), ceil_mode=True, count_include_pad=False),
     [_r(1, 2, 6, 7)]),
    ("avg_pool2d_ceil_pad", lambda F, L, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [_r(1, 2, 6, 6)]),
    ("avg_pool2d_divisor", lambda F, L, x: F.avg_pool2d(x, 2, divisor_override=3), [_r(1, 2, 4, 4)]),
    ("adaptive_avg_pool1d", lambda F, L, x: F.adaptive_avg_pool1d(x, 3), [_r(2, 3, 7)]),
    ("adaptive_avg_pool2d", lambda F, L, x: F.adaptive_avg_pool2d(x, (3, None)), [_r(2, 2, 7, 5)]),
    ("adaptive_avg_pool2d_up", lambda F, L, x: F.adaptive_avg_pool2d(x, 5), [_r(1, 2, 3, 4)]),
    ("adaptive_max_pool2d", lambda F, L, x: F.adaptive_max_pool2d(x, (3, 2), return_indices=True), [_r(2, 2, 7, 5)]),
    # normalization
    ("layer_norm", lambda F, L, x, w, b: F.layer_norm(x, (3, 4), w, b, eps=1e-3), [_r(2, 3, 4), _r(3, 4), _r(3, 4)]),
    ("layer_norm_plain", lambda F, L, x: F.layer_norm(x, [4]), [_r(2, 3, 4)]),
    ("group_norm", lambda F, L, x, w, b: F.group_norm(x, 2, w, b), [_r(2, 4, 3, 2), _r(4), _r(4)]),
    ("batch_norm_train", lambda F, L, x, w, b: F.batch_norm(x, None, None, w, b, training=True), [_r(4, 3, 5), _r(3), _r(3)]),
    ("batch_norm_eval", lambda F, L, x, w, b: F.batch_norm(
        x, L.tensor(np.array([0.1, 0.2, -0.3])), L.tensor(np.array([1.0, 2.0, 0.5])), w, b), [_r(4, 3), _r(3), _r(3)]),
    ("instance_norm", lambda F, L, x, w, b: F.instance_norm(x, weight=w, bias=b), [_r(2, 3, 4, 2), _r(3), _r(3)]),
    ("local_response_norm", lambda F, L, x: F.local_response_norm(x, 3, alpha=0.1), [_r(2, 5, 4)]),
    ("local_response_norm_4d", lambda F, L, x: F.local_response_norm(x, 2), [_r(2, 4, 3, 2)]),
    # embedding, one_hot, pad, interpolate, pixel shuffle, attention
    ("embedding", lambda F, L, w: F.embedding(L.tensor(np.array([[0, 2], [2, 3]])), w), [_r(5, 3)]),
    ("embedding_padding_freq", lambda F, L, w: F.embedding(L.tensor(np.array([[0, 2, 2], [2, 3, 1]])), w,
                                                           padding_idx=3, scale_grad_by_freq=True), [_r(5, 3)]),
    *[(f"pad_{mode}", (lambda mode: lambda F, L, x: F.pad(x, (2, 1, 1, 2), mode=mode))(mode), [_r(1, 2, 3, 4)])
      for mode in ("constant", "reflect", "replicate", "circular")],
    ("pad_constant_value_crop", lambda F, L, x: F.pad(x, (1, -1, -1, 2, 1, 0), value=2.5), [_r(2, 3, 4)]),
    ("pad_reflect_1d", lambda F, L, x: F.pad(x, (3, 3), mode="reflect"), [_r(2, 2, 4)]),
    ("pad_replicate_3d", lambda F, L, x: F.pad(x, (1, 0, 0, 2, 1, 1), mode="replicate"), [_r(1, 1, 2, 3, 2)]),
    *[(f"interp_{mode}_{ac}", (lambda mode, ac: lambda F, L, x: F.interpolate(
        x, size=(5, 7), mode=mode, align_corners=ac))(mode, ac), [_r(2, 2, 3, 4)])
      for mode, ac in (("bilinear", False), ("bilinear", True))],
    ("interp_nearest", lambda F, L, x: F.interpolate(x, size=(5, 7)), [_r(2, 2, 3, 4)]),
    ("interp_nearest_scale", lambda F, L, x: F.interpolate(x, scale_factor=2.5, mode="nearest"), [_r(1, 2, 3)]),
    ("interp_nearest_down", lambda F, L, x: F.interpolate(x, scale_factor=0.5), [_r(1, 2, 5, 6)]),
    ("interp_linear", lambda F, L, x: F.interpolate(x, scale_factor=1.7, mode="linear"), [_r(1, 2, 5)]),
    ("interp_linear_ac", lambda F, L, x: F.interpolate(x, size=3, mode="linear", align_corners=True), [_r(1, 2, 5)]),
    *[(f"interp_{name}", (lambda kw: lambda F, L, x: F.interpolate(x, **kw))(kw), [_r(2, 2, 9, 11)]) for name, kw in (
        ("bicubic_up", dict(size=(13, 14), mode="bicubic")),
        ("bicubic_down_ac", dict(size=(4, 6), mode="bicubic", align_corners=True)),
        ("bicubic_scale", dict(scale_factor=(1.7, 0.6), mode="bicubic")),
        ("bilinear_aa_down", dict(size=(3, 4), mode="bilinear", antialias=True)),
        ("bilinear_aa_mixed_ac", dict(size=(3, 17), mode="bilinear", antialias=True, align_corners=True)),
        ("bicubic_aa_down", dict(scale_factor=0.37, mode="bicubic", antialias=True)),
        ("lanczos_down", dict(size=(4, 5), mode="lanczos", antialias=True)),
        ("lanczos_up", dict(size=(12, 20), mode="lanczos", antialias=True)),
        ("area_2d", dict(scale_factor=0.45, mode="area")),
    )],
    ("interp_area_1d", lambda F, L, x: F.interpolate(x, size=4, mode="area"), [_r(2, 3, 11)]),
    ("interp_area_3d", lambda F, L, x: F.interpolate(x, size=(2, 3, 4), mode="area"), [_r(1, 2, 5, 6, 7)]),
    ("pixel_shuffle", lambda F, L, x: F.pixel_shuffle(x, 2), [_r(2, 8, 2, 3)]),
    ("pixel_unshuffle", lambda F, L, x: F.pixel_unshuffle(x, 2), [_r(2, 3, 4, 6)]),
    ("sdpa", lambda F, L, q, k, v: F.scaled_dot_product_attention(q, k, v), [_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 3)]),
    ("sdpa_causal_scale", lambda F, L, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.5),
     [_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 3)]),
    ("sdpa_bool_mask", lambda F, L, q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=L.tensor(np.array([[True, False, True, True, False]] * 3))),
     [_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 3)]),
    ("sdpa_float_mask", lambda F, L, q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
     [_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 3), _r(3, 5)]),
    ("sdpa_gqa", lambda F, L, q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
     [_r(1, 4, 3, 2), _r(1, 2, 3, 2), _r(1, 2, 3, 2)]),
]


@pytest.mark.parametrize("name,call,inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch(name, call, inputs):
    _compare(call, inputs)


def test_one_hot_matches_torch():
    idx = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(FA.one_hot(ad.tensor(idx)).numpy(), FT.one_hot(torch.tensor(idx)).numpy())
    assert FA.one_hot(ad.tensor(idx), 6).shape == (2, 2, 6)
    assert FA.one_hot(ad.tensor(idx)).dtype == ad.int64
    with pytest.raises(RuntimeError, match="non-negative"):
        FA.one_hot(ad.tensor(np.array([-1, 0])))
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        FA.one_hot(ad.tensor(np.array([3])), 2)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_updates_running_statistics_as_torch(training):
    x = _r(6, 3, 4)
    rm_a, rv_a = ad.tensor(np.array([0.1, 0.2, 0.3])), ad.tensor(np.array([1.0, 2.0, 3.0]))
    rm_t, rv_t = torch.tensor(rm_a.numpy()), torch.tensor(rv_a.numpy())
    out_a = FA.batch_norm(ad.tensor(x), rm_a, rv_a, training=training, momentum=0.3)
    out_t = FT.batch_norm(torch.tensor(x), rm_t, rv_t, training=training, momentum=0.3)
    np.testing.assert_allclose(out_a.numpy(), out_t.numpy(), rtol=1e-10)
    np.testing.assert_allclose(rm_a.numpy(), rm_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv_a.numpy(), rv_t.numpy(), rtol=1e-12)


def test_instance_norm_updates_running_statistics_as_torch():
    x = _r(2, 3, 5)
    rm_a, rv_a = ad.zeros(3), ad.ones(3)
    rm_t, rv_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    FA.instance_norm(ad.tensor(x), rm_a, rv_a)
    FT.instance_norm(torch.tensor(x), rm_t, rv_t)
    np.testing.assert_allclose(rm_a.numpy(), rm_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv_a.numpy(), rv_t.numpy(), rtol=1e-12)
    out_a = FA.instance_norm(ad.tensor(x), rm_a, rv_a, use_input_stats=False)
    out_t = FT.instance_norm(torch.tensor(x), rm_t, rv_t, use_input_stats=False)
    np.testing.assert_allclose(out_a.numpy(), out_t.numpy(), rtol=1e-10)


def test_embedding_max_norm_renormalizes_rows_in_place_as_torch():
    w = _r(5, 3) * 3
    wa, wt = ad.tensor(w.copy()), torch.tensor(w.copy())
    idx = np.array([0, 2, 2])
    out_a = FA.embedding(ad.tensor(idx), wa, max_norm=1.0)
    out_t = FT.embedding(torch.tensor(idx), wt, max_norm=1.0)
    np.testing.assert_allclose(out_a.numpy(), out_t.numpy(), rtol=1e-7)
    np.testing.assert_allclose(wa.numpy(), wt.numpy(), rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------
# in-place variants, dropout
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu_", "elu_", "leaky_relu_", "hardtanh_", "selu_", "celu_", "rrelu_"])
def test_inplace_variants_overwrite_their_input_and_stay_differentiable(name):
    x = _r(6)
    a = ad.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    ya = a * 1.0
    yt = t * 1.0
    ra = getattr(FA, name)(ya)
    getattr(FT, name)(yt)
    assert ra is ya
    np.testing.assert_allclose(ya.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    (ya * ad.tensor(np.arange(6.0))).sum().backward()
    (yt * torch.tensor(np.arange(6.0))).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_inplace_flag_on_a_plain_tensor():
    x = ad.tensor(np.array([-1.0, 0.5, 7.0]))
    assert FA.relu6(x, inplace=True) is x
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.5, 6.0])
    assert FA.threshold(x, 1.0, -1.0, inplace=True) is x
    np.testing.assert_array_equal(x.numpy(), [-1.0, -1.0, 6.0])


def test_inplace_on_a_leaf_requiring_grad_raises_as_torch():
    with pytest.raises(RuntimeError, match="leaf Variable"):
        FA.relu(ad.tensor([1.0, -1.0], requires_grad=True), inplace=True)


def test_dropout_identity_when_not_training_and_seeded_masks():
    x = ad.tensor(_r(4, 5), requires_grad=True)
    for fn in (FA.dropout, FA.dropout1d, FA.alpha_dropout, FA.feature_alpha_dropout):
        assert fn(x, 0.5, training=False) is x
    ad.manual_seed(3)
    a = FA.dropout(x, 0.4)
    ad.manual_seed(3)
    b = FA.dropout(x, 0.4)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    kept = a.detach().numpy() != 0
    np.testing.assert_allclose(a.detach().numpy()[kept], x.detach().numpy()[kept] / 0.6)
    a.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.6)
    g = ad.Generator().manual_seed(5)
    c = FA.dropout(x, 0.4, generator=g)
    d = FA.dropout(x, 0.4, generator=ad.Generator().manual_seed(5))
    np.testing.assert_array_equal(c.detach().numpy(), d.detach().numpy())
    assert g.initial_seed() == 5


def test_dropout_rate_and_channel_masks():
    ad.manual_seed(0)
    out = FA.dropout(ad.ones(200, 200), 0.3).numpy()
    assert abs((out == 0).mean() - 0.3) < 0.01
    out2 = FA.dropout2d(ad.ones(8, 16, 3, 3), 0.5).numpy()
    per_channel = out2.reshape(8, 16, -1)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # a whole channel is kept or dropped
    assert set(np.unique(out2)) <= {0.0, 2.0}
    assert np.all(FA.dropout(ad.ones(3), 1.0).numpy() == 0)


def test_alpha_dropout_keeps_moments():
    ad.manual_seed(1)
    x = ad.randn(400, 400)
    out = FA.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1.0) < 0.02


def test_rrelu_training_draws_slopes_between_bounds():
    ad.manual_seed(0)
    x = ad.tensor(-np.ones(1000))
    slopes = -FA.rrelu(x, 0.1, 0.3, training=True).numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03


# ---------------------------------------------------------------------------------------------------------
# errors: torch's classes
# ---------------------------------------------------------------------------------------------------------

ERRORS = [
    ("reduction", lambda F, L: F.l1_loss(L.ones(2), L.ones(2), reduction="avg"), ValueError),
    ("glu_odd", lambda F, L: F.glu(L.ones(2, 3)), RuntimeError),
    ("bce_range", lambda F, L: F.binary_cross_entropy(L.tensor([1.5]), L.tensor([1.0])), RuntimeError),
    ("nll_bounds", lambda F, L: F.nll_loss(L.zeros(2, 3), L.tensor([0, 3])), IndexError),
    ("nll_batch", lambda F, L: F.nll_loss(L.zeros(2, 3), L.tensor([0, 1, 1])), ValueError),
    ("ce_probs_ignore", lambda F, L: F.cross_entropy(L.zeros(2, 3), L.ones(2, 3) / 3, ignore_index=1), RuntimeError),
    ("gaussian_var", lambda F, L: F.gaussian_nll_loss(L.ones(3), L.ones(3), -L.ones(3)), ValueError),
    ("gaussian_var_shape", lambda F, L: F.gaussian_nll_loss(L.ones(3, 2), L.ones(3, 2), L.ones(2, 3)), ValueError),
    ("conv_channels", lambda F, L: F.conv2d(L.zeros(1, 3, 4, 4), L.zeros(2, 2, 3, 3)), RuntimeError),
    ("conv_small", lambda F, L: F.conv2d(L.zeros(1, 1, 2, 2), L.zeros(1, 1, 3, 3)), RuntimeError),
    ("conv_same_strided", lambda F, L: F.conv2d(L.zeros(1, 1, 4, 4), L.zeros(1, 1, 3, 3), padding="same", stride=2),
     RuntimeError),
    ("conv_padding_string", lambda F, L: F.conv1d(L.zeros(1, 1, 4), L.zeros(1, 1, 3), padding="full"), RuntimeError),
    ("conv_input_dims", lambda F, L: F.conv2d(L.zeros(4, 4), L.zeros(1, 1, 3, 3)), RuntimeError),
    ("pool_padding", lambda F, L: F.max_pool2d(L.zeros(1, 1, 4, 4), 2, padding=2), RuntimeError),
    ("pad_odd", lambda F, L: F.pad(L.zeros(2, 2), (1,)), RuntimeError),
    ("pad_reflect_big", lambda F, L: F.pad(L.zeros(1, 1, 3), (3, 0), mode="reflect"), RuntimeError),
    ("dropout_p", lambda F, L: F.dropout(L.zeros(2), 1.5), ValueError),
    ("layer_norm_shape", lambda F, L: F.layer_norm(L.zeros(2, 3), (2,)), RuntimeError),
    ("group_norm_groups", lambda F, L: F.group_norm(L.zeros(2, 3, 2), 2), RuntimeError),
    ("batch_norm_single", lambda F, L: F.batch_norm(L.zeros(1, 3), None, None, training=True), ValueError),
    ("embedding_range", lambda F, L: F.embedding(L.tensor([5]), L.zeros(3, 2)), IndexError),
    ("sdpa_causal_mask", lambda F, L: F.scaled_dot_product_attention(
        L.zeros(1, 2, 2), L.zeros(1, 2, 2), L.zeros(1, 2, 2), attn_mask=L.ones(2, 2), is_causal=True), RuntimeError),
    ("interp_both", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, scale_factor=2.0), ValueError),
    ("interp_neither", lambda F, L: F.interpolate(L.zeros(1, 1, 4)), ValueError),
    ("interp_recompute_size", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, recompute_scale_factor=True),
     ValueError),
    ("interp_float_size", lambda F, L: F.interpolate(L.zeros(1, 1, 4, 4), size=(2.0, 2)), TypeError),
    ("interp_area_align", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, mode="area", align_corners=True),
     ValueError),
    ("interp_aa_linear", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, mode="linear", antialias=True),
     ValueError),
    ("interp_lanczos_no_aa", lambda F, L: F.interpolate(L.zeros(1, 1, 4, 4), size=2, mode="lanczos"), ValueError),
    ("interp_lanczos_ac", lambda F, L: F.interpolate(L.zeros(1, 1, 4, 4), size=2, mode="lanczos", antialias=True,
                                                     align_corners=True), ValueError),
    ("interp_bicubic_3d", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, mode="bicubic"), NotImplementedError),
    ("interp_bilinear_3d", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, mode="bilinear"),
     NotImplementedError),
    ("interp_unknown_mode", lambda F, L: F.interpolate(L.zeros(1, 1, 4), size=2, mode="cubic"), NotImplementedError),
    ("pixel_shuffle_channels", lambda F, L: F.pixel_shuffle(L.zeros(1, 3, 2, 2), 2), RuntimeError),
    ("fold_blocks", lambda F, L: F.fold(L.zeros(1, 4, 5), (3, 3), 2), RuntimeError),
    ("cdist_columns", lambda F, L: L.cdist(L.zeros(2, 3), L.zeros(2, 4)), RuntimeError),
]


@pytest.mark.parametrize("name,call,exc", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_raise_torchs_exception_class(name, call, exc):
    with pytest.raises(exc):
        call(FT, torch)
    with pytest.raises(exc):
        call(FA, ad)


def test_float32_stays_float32():
    x = ad.tensor(_r(2, 3, 6, 6).astype(np.float32), requires_grad=True)
    w = ad.tensor(_r(4, 3, 3, 3).astype(np.float32), requires_grad=True)
    out = FA.max_pool2d(FA.gelu(FA.conv2d(x, w, padding=1)), 2)
    out = FA.layer_norm(out, (3, 3))
    assert out.dtype == ad.float32
    out.sum().backward()
    assert x.grad.dtype == ad.float32 and w.grad.dtype == ad.float32


def test_conv2d_benchmark_shapes_match_torch_float32():
    """The W8 benchmark's network, forward and backward, in float32."""
    x = _r(4, 3, 12, 12).astype(np.float32)
    params = [_r(16, 3, 3, 3).astype(np.float32) * 0.3, _r(16).astype(np.float32),
              _r(32, 16, 3, 3).astype(np.float32) * 0.1, _r(32).astype(np.float32)]

    def run(F, L, x, w1, b1, w2, b2):
        return F.conv2d(L.tanh(F.conv2d(x, w1, b1, padding=1)), w2, b2, padding=1)

    pa = [ad.tensor(p, requires_grad=True) for p in params]
    pt = [torch.tensor(p, requires_grad=True) for p in params]
    oa = run(FA, ad, ad.tensor(x), *pa)
    ot = run(FT, torch, torch.tensor(x), *pt)
    np.testing.assert_allclose(oa.detach().numpy(), ot.detach().numpy(), rtol=1e-4, atol=1e-4)
    oa.sum().backward()
    ot.sum().backward()
    for a, t in zip(pa, pt):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_conv_grad_fn_names():
    x = ad.tensor(_r(1, 1, 4, 4), requires_grad=True)
    assert FA.conv2d(x, ad.ones(1, 1, 2, 2)).grad_fn.name() == "ConvolutionBackward0"
    assert FA.unfold(x, 2).grad_fn.name() == "Im2ColBackward0"


def test_conv_retained_graph_second_backward_recomputes_the_columns():
    """Each backward rebuilds the columns from the saved input: a second one (retain_graph) gives the same grads."""
    x = ad.tensor(_r(2, 4, 7, 6), requires_grad=True)
    w = ad.tensor(_r(6, 2, 3, 2), requires_grad=True)
    out = FA.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    seed = ad.tensor(_r(*out.shape))
    (gx1, gw1) = ad.autograd.grad(out, (x, w), seed, retain_graph=True)
    (gx2, gw2) = ad.autograd.grad(out, (x, w), seed)
    np.testing.assert_array_equal(gw1.numpy(), gw2.numpy())
    np.testing.assert_array_equal(gx1.numpy(), gx2.numpy())
    xt, wt = torch.tensor(x.detach().numpy(), requires_grad=True), torch.tensor(w.detach().numpy(), requires_grad=True)
    ot = FT.conv2d(xt, wt, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    gxt, gwt = torch.autograd.grad(ot, (xt, wt), torch.tensor(seed.numpy()))
    np.testing.assert_allclose(gw2.numpy(), gwt.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gx2.numpy(), gxt.numpy(), rtol=1e-10, atol=1e-10)


def test_conv_results_kept_alive_are_not_overwritten_by_later_convolutions():
    """Outputs and gradients sit in recycled buffers: one still referenced must never be handed out again."""
    w = ad.tensor(_r(3, 2, 3, 3), requires_grad=True)
    xs = [ad.tensor(_r(4, 2, 9, 9), requires_grad=True) for _ in range(3)]
    outs, grads = [], []
    for x in xs:
        out = FA.conv2d(x, w, padding=1)
        out.sum().backward()
        outs.append(out)
        grads.append(x.grad)
    for x, out, g in zip(xs, outs, grads):
        xt = torch.tensor(x.detach().numpy(), requires_grad=True)
        ot = FT.conv2d(xt, torch.tensor(w.detach().numpy()), padding=1)
        ot.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), ot.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(g.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
