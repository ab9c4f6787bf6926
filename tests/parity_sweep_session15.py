"""Parity-sweep sections for session 15's surface (tests/test_parity_sweep.py registers them; same ``fn(L, T)``
cases, same ``_check``): sampling (grid_sample, affine_grid), pooling and unpooling (lp_pool, avg_pool with
NaN/inf, max_unpool, fractional_max_pool), sparse and sequence losses (embedding_bag, ctc_loss, multilabel
losses, pdist, channel_shuffle), interpolate's modes, attention with masked-out keys, the new nn modules
(``_module``: parameter names and shapes, values after loading the same state in both libraries), nn.utils and
the top-level names (windows, gradient, histogramdd, norms, geqrf/ormqr, cond).

``SECTIONS15`` maps a section to its cases; ``DELIBERATE15`` and ``FORWARD_DELIBERATE15`` list where ad differs
from torch on purpose (merged into the sweep's tables).
"""

import math

import numpy as np

_INF, _NAN = math.inf, math.nan


def _F(L):  # noqa: N802 - torch's alias
    return L.nn.functional


def _filled(L, module):
    """``module`` with every floating state entry set to fixed values (the same in both libraries), loaded
    through ``load_state_dict`` as a torch model's state converted to numpy would be."""
    state = {}
    for i, (key, value) in enumerate(module.state_dict().items()):
        if "int" in str(value.dtype):
            state[key] = value
            continue
        data = np.cos(np.arange(value.numel()) * 0.37 + i) * 0.5
        state[key] = L.tensor(data.reshape(tuple(value.shape)), dtype=value.dtype)
    module.load_state_dict(state)
    return module


def _module(make, *inputs, call=None, train=False):
    """A case: ``make(L)`` in float64 with ``_filled`` state, called on ``inputs`` (``(spec, dtype)``; float
    inputs are gradient leaves); the result is ``(output, [(state key, shape), ...])``."""

    def fn(L, T):
        L.manual_seed(0)
        module = _filled(L, make(L).double())
        module.train(train)
        args = [T(spec, dtype, grad=dtype.startswith("float")) for spec, dtype in inputs]
        out = call(module, *args) if call else module(*args)
        return out, [(k, tuple(v.shape)) for k, v in module.state_dict().items()]

    return fn


def _x(spec, dtype="float64"):
    return spec, dtype


def _logp(L, T, shape):
    return _F(L).log_softmax(T(shape, grad=True), -1)


_CTC_TARGETS = [[1, 2, 1], [3, 3, 0]]
_INFINITE_GRID = [[[[_INF, 0.0], [-_INF, 0.1], [0.5, -_INF]]]]

SAMPLING = {
    **{
        f"grid_sample-{mode}-{pad}-{corners}": lambda L, T, mode=mode, pad=pad, corners=corners: _F(L).grid_sample(
            T((1, 2, 3, 4), grad=True),
            T((1, 2, 3, 2), grad=True) * 1.6,
            mode=mode,
            padding_mode=pad,
            align_corners=corners,
        )
        for mode in ("bilinear", "bicubic")
        for pad in ("zeros", "border", "reflection")
        for corners in (False, True)
    },
    **{
        f"grid_sample-5d-{pad}-{corners}": lambda L, T, pad=pad, corners=corners: _F(L).grid_sample(
            T((1, 1, 2, 3, 2), grad=True),
            T((1, 2, 2, 2, 3), grad=True) * 1.6,
            padding_mode=pad,
            align_corners=corners,
        )
        for pad in ("zeros", "border", "reflection")
        for corners in (False, True)
    },
    "grid_sample-nearest-input": lambda L, T: _F(L).grid_sample(
        T((1, 2, 3, 4), grad=True), T((1, 2, 3, 2)) * 1.3, mode="nearest"
    ),
    "grid_sample-empty": lambda L, T: _F(L).grid_sample(T((0, 2, 3, 4), grad=True), T((0, 2, 3, 2), grad=True)),
    "grid_sample-noncontiguous": lambda L, T: _F(L).grid_sample(
        T((4, 3, 2, 1), grad=True).permute(3, 2, 1, 0), T((2, 3, 1, 1), grad=True).permute(3, 2, 1, 0)
    ),
    "grid_sample-far-reflection": lambda L, T: _F(L).grid_sample(
        T((1, 1, 3, 4), grad=True), T((1, 2, 3, 2), grad=True) * 9.3, padding_mode="reflection", align_corners=True
    ),
    "grid_sample-1px-reflection": lambda L, T: _F(L).grid_sample(
        T((1, 1, 1, 1), grad=True), T((1, 2, 3, 2), grad=True) * 2, padding_mode="reflection"
    ),
    **{
        f"grid_sample-infinite-border-{corners}": lambda L, T, corners=corners: _F(L).grid_sample(
            T((1, 1, 3, 4), grad=True), T(_INFINITE_GRID, grad=True), padding_mode="border", align_corners=corners
        )
        for corners in (False, True)
    },
    "grid_sample-f32": lambda L, T: _F(L).grid_sample(T((1, 2, 3, 4), "float32"), T((1, 2, 3, 2), "float32")),
    "grid_sample-int": lambda L, T: _F(L).grid_sample(T((1, 2, 3, 4), "int64"), T((1, 2, 3, 2))),
    "grid_sample-3d-input": lambda L, T: _F(L).grid_sample(T((2, 3, 4)), T((2, 3, 2))),
    "grid_sample-bad-mode": lambda L, T: _F(L).grid_sample(T((1, 2, 3, 4)), T((1, 2, 3, 2)), mode="linear"),
    "grid_sample-bad-padding": lambda L, T: _F(L).grid_sample(T((1, 2, 3, 4)), T((1, 2, 3, 2)), padding_mode="x"),
    "grid_sample-bad-grid": lambda L, T: _F(L).grid_sample(T((1, 2, 3, 4)), T((1, 2, 3, 3))),
    "grid_sample-bad-batch": lambda L, T: _F(L).grid_sample(T((2, 2, 3, 4)), T((1, 2, 3, 2))),
    "grid_sample-bicubic-5d": lambda L, T: _F(L).grid_sample(T((1, 1, 2, 3, 2)), T((1, 2, 2, 2, 3)), mode="bicubic"),
    **{
        f"affine_grid-{corners}-{nd}d": lambda L, T, corners=corners, nd=nd: _F(L).affine_grid(
            T((2, nd - 2, nd - 1), grad=True), (2, 3, 4, 5) if nd == 4 else (2, 3, 2, 4, 5), align_corners=corners
        )
        for corners in (False, True)
        for nd in (4, 5)
    },
    "affine_grid-1px": lambda L, T: _F(L).affine_grid(T((1, 2, 3), grad=True), (1, 1, 1, 3), align_corners=True),
    "affine_grid-empty": lambda L, T: _F(L).affine_grid(T((0, 2, 3), grad=True), (0, 1, 2, 3)),
    "affine_grid-f32": lambda L, T: _F(L).affine_grid(T((1, 2, 3), "float32"), (1, 1, 2, 3)),
    "affine_grid-bad-theta": lambda L, T: _F(L).affine_grid(T((1, 2, 3)), (1, 1, 1, 3, 4)),
    "affine_grid-bad-batch": lambda L, T: _F(L).affine_grid(T((2, 2, 3)), (1, 1, 2, 3)),
    "affine_grid-bad-size": lambda L, T: _F(L).affine_grid(T((1, 2, 3)), (1, 1, 2)),
}

POOLING = {
    "avg_pool1d-nan-inf": lambda L, T: _F(L).avg_pool1d(T([[[_NAN, 1.0, 2.0, 3.0, _INF, 5.0]]], grad=True), 2),
    "avg_pool2d-nan-pad": lambda L, T: _F(L).avg_pool2d(
        T([[[[_NAN, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, -_INF]]]], grad=True),
        (1, 2),
        padding=(0, 1),
        count_include_pad=False,
    ),
    "avg_pool3d-inf": lambda L, T: _F(L).avg_pool3d(
        T([[[[[_INF, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]]]] * 2, grad=True)[:, :, :, :, :1], (1, 2, 1)
    ),
    "adaptive_avg_pool1d-nan": lambda L, T: _F(L).adaptive_avg_pool1d(T([[[_NAN, 1.0, 2.0, 3.0, 4.0]]], grad=True), 3),
    "adaptive_avg_pool2d-inf": lambda L, T: _F(L).adaptive_avg_pool2d(
        T([[[[_INF, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]]], grad=True), 2
    ),
    "interpolate-area-nan": lambda L, T: _F(L).interpolate(
        T([[[[_NAN, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]]]], grad=True), scale_factor=0.5, mode="area"
    ),
    "lp_pool1d": lambda L, T: _F(L).lp_pool1d(T((2, 3, 7), grad=True), 2, 3),
    "lp_pool1d-p3-negative-sums": lambda L, T: _F(L).lp_pool1d(T((2, 3, 7), grad=True), 3, 2, stride=1),
    "lp_pool1d-zero-window": lambda L, T: _F(L).lp_pool1d(T([[[0.0, 0.0, 1.0, 0.0]]], grad=True), 2, 2),
    "lp_pool1d-p1": lambda L, T: _F(L).lp_pool1d(T((1, 2, 6), grad=True), 1, 2),
    "lp_pool1d-unbatched": lambda L, T: _F(L).lp_pool1d(T((3, 7), grad=True), 2, 3),
    "lp_pool1d-ceil": lambda L, T: _F(L).lp_pool1d(T((2, 3, 7), grad=True), 2, 3, ceil_mode=True),
    "lp_pool2d": lambda L, T: _F(L).lp_pool2d(T((1, 2, 5, 6), grad=True), 2, (2, 3)),
    "lp_pool2d-ceil-fractional-p": lambda L, T: _F(L).lp_pool2d(T((1, 2, 5, 6), grad=True), 1.5, 2, ceil_mode=True),
    "lp_pool2d-inf": lambda L, T: _F(L).lp_pool2d(T((1, 2, 4, 6), grad=True), _INF, 2),
    "lp_pool3d": lambda L, T: _F(L).lp_pool3d(T((1, 2, 4, 4, 5), grad=True), 2, 2),
    "avg_pool1d-int64": lambda L, T: _F(L).avg_pool1d(T([[[-1, -2, 3, 4, -5, 7]]], "int64"), 3, 1, 1),
    "avg_pool2d-int64-divisor": lambda L, T: _F(L).avg_pool2d(
        T([[[[-1, -2, 3, 4, -5, 7]]]], "int64"), (1, 4), divisor_override=3, ceil_mode=True
    ),
    "avg_pool2d-int64-no-pad-count": lambda L, T: _F(L).avg_pool2d(
        T([[[[-1, -2, 3, 4, -5, 7]]]], "int64"), (1, 3), 1, (0, 1), count_include_pad=False
    ),
    "avg_pool3d-int64": lambda L, T: _F(L).avg_pool3d(T((1, 1, 3, 4, 5), "int64"), 2, ceil_mode=True),
    "avg_pool2d-int32": lambda L, T: _F(L).avg_pool2d(T((1, 1, 3, 4), "int32"), 2),
    "avg_pool1d-bool": lambda L, T: _F(L).avg_pool1d(T((1, 1, 4), "bool"), 2),
    "adaptive_avg_pool2d-int64": lambda L, T: _F(L).adaptive_avg_pool2d(T((1, 1, 3, 4), "int64"), 2),
    "lp_pool2d-int64": lambda L, T: _F(L).lp_pool2d(T((1, 1, 4, 4), "int64"), 2, 2),
    "lp_pool2d-int64-float-p": lambda L, T: _F(L).lp_pool2d(T((1, 1, 4, 4), "int64"), 2.0, 2),
    "pow-int64-2.0": lambda L, T: (T((2, 3), "int64") ** 2.0, L.pow(T((3,), "bool"), 2.0)),
    "lp_pool2d-too-small": lambda L, T: _F(L).lp_pool2d(T((1, 2, 1, 1)), 2, 2),
    "max_unpool1d": lambda L, T: _F(L).max_unpool1d(
        *_F(L).max_pool1d(T((1, 2, 7), grad=True), 3, stride=2, return_indices=True), 3, stride=2
    ),
    "max_unpool2d-output_size": lambda L, T: _F(L).max_unpool2d(
        *_F(L).max_pool2d(T((1, 2, 5, 5), grad=True), 2, return_indices=True), 2, output_size=(5, 5)
    ),
    "max_unpool2d-padding": lambda L, T: _F(L).max_unpool2d(
        *_F(L).max_pool2d(T((1, 2, 4, 4), grad=True), 2, padding=1, return_indices=True), 2, padding=1
    ),
    "max_unpool2d-unbatched": lambda L, T: _F(L).max_unpool2d(
        *_F(L).max_pool2d(T((2, 4, 4), grad=True), 2, return_indices=True), 2
    ),
    "max_unpool3d": lambda L, T: _F(L).max_unpool3d(
        *_F(L).max_pool3d(T((1, 1, 4, 4, 4), grad=True), 2, return_indices=True), 2
    ),
    "max_unpool2d-bad-size": lambda L, T: _F(L).max_unpool2d(
        *_F(L).max_pool2d(T((1, 2, 4, 4)), 2, return_indices=True), 2, output_size=(9, 9)
    ),
    "max_unpool2d-bad-index": lambda L, T: _F(L).max_unpool2d(T((1, 1, 2, 2)), T([[[[0, 1], [2, 99]]]], "int64"), 2),
    "max_unpool2d-float-index": lambda L, T: _F(L).max_unpool2d(T((1, 1, 2, 2)), T([[[[0.0, 1], [2, 3]]]]), 2),
    "fractional_max_pool2d": lambda L, T: _F(L).fractional_max_pool2d(
        T((1, 2, 7, 7), grad=True), 2, output_size=(3, 3), _random_samples=T([[[0.3, 0.6], [0.9, 0.1]]])
    ),
    "fractional_max_pool2d-ratio": lambda L, T: _F(L).fractional_max_pool2d(
        T((2, 2, 7, 8), grad=True),
        (2, 3),
        output_ratio=(0.5, 0.5),
        return_indices=True,
        _random_samples=T((2, 2, 2)).abs(),
    ),
    "fractional_max_pool2d-unbatched": lambda L, T: _F(L).fractional_max_pool2d(
        T((2, 7, 7), grad=True), 2, output_size=3, _random_samples=T((1, 2, 2)).abs()
    ),
    "fractional_max_pool3d": lambda L, T: _F(L).fractional_max_pool3d(
        T((1, 2, 5, 6, 7), grad=True), 2, output_size=(3, 3, 4), _random_samples=T((1, 2, 3)).abs()
    ),
    "fractional_max_pool2d-too-large": lambda L, T: _F(L).fractional_max_pool2d(
        T((1, 2, 7, 7)), 2, output_size=(7, 7), _random_samples=T((1, 2, 2)).abs()
    ),
    "fractional_max_pool2d-no-size": lambda L, T: _F(L).fractional_max_pool2d(
        T((1, 2, 7, 7)), 2, _random_samples=T((1, 2, 2)).abs()
    ),
    "fractional_max_pool2d-number-ratio": lambda L, T: _F(L).fractional_max_pool2d(
        T((1, 2, 7, 8)), 2, output_ratio=0.5, _random_samples=T((1, 2, 2)).abs()
    ),
}

SEQUENCE_LOSSES = {
    **{
        f"ctc_loss-{reduction}": lambda L, T, reduction=reduction: _F(L).ctc_loss(
            _logp(L, T, (5, 2, 4)),
            T(_CTC_TARGETS, "int64"),
            T([5, 4], "int64"),
            T([3, 2], "int64"),
            reduction=reduction,
        )
        for reduction in ("none", "sum", "mean")
    },
    "ctc_loss-concatenated": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T([1, 2, 1, 3, 3], "int64"), T([5, 4], "int64"), T([3, 2], "int64")
    ),
    "ctc_loss-unnormalized": lambda L, T: _F(L).ctc_loss(
        T((5, 2, 4), grad=True), T(_CTC_TARGETS, "int64"), T([5, 4], "int64"), T([3, 2], "int64")
    ),
    "ctc_loss-infeasible": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (2, 1, 4)), T([[1, 1, 1]], "int64"), T([2], "int64"), T([3], "int64"), reduction="none"
    ),
    "ctc_loss-zero_infinity": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (2, 2, 4)),
        T([[1, 1, 1], [1, 2, 0]], "int64"),
        T([2, 2], "int64"),
        T([3, 2], "int64"),
        zero_infinity=True,
    ),
    "ctc_loss-blank": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T([[0, 2, 1], [1, 1, 2]], "int64"), T([5, 4], "int64"), T([3, 2], "int64"), blank=3
    ),
    "ctc_loss-unbatched": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 4)), T([1, 2], "int64"), T(5, "int64"), T(2, "int64")
    ),
    "ctc_loss-tuple-lengths": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T(_CTC_TARGETS, "int64"), (5, 4), (3, 2)
    ),
    "ctc_loss-empty-target": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T(_CTC_TARGETS, "int64"), T([5, 4], "int64"), T([0, 2], "int64"), reduction="none"
    ),
    "ctc_loss-int32": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T(_CTC_TARGETS, "int32"), T([5, 4], "int32"), T([3, 2], "int32")
    ),
    "ctc_loss-f32": lambda L, T: _F(L).ctc_loss(
        _F(L).log_softmax(T((5, 2, 4), "float32"), -1), T(_CTC_TARGETS, "int64"), T([5, 4], "int64"), T([3, 2], "int64")
    ),
    "ctc_loss-bad-input-length": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T(_CTC_TARGETS, "int64"), T([6, 4], "int64"), T([3, 2], "int64")
    ),
    "ctc_loss-bad-target-length": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T(_CTC_TARGETS, "int64"), T([5, 4], "int64"), T([4, 2], "int64")
    ),
    "ctc_loss-bad-blank": lambda L, T: _F(L).ctc_loss(
        _logp(L, T, (5, 2, 4)), T(_CTC_TARGETS, "int64"), T([5, 4], "int64"), T([3, 2], "int64"), blank=4
    ),
    **{
        f"embedding_bag-{mode}": lambda L, T, mode=mode: _F(L).embedding_bag(
            T([1, 2, 4, 5, 4, 3, 2, 9], "int64"), T((10, 3), grad=True), T([0, 4], "int64"), mode=mode
        )
        for mode in ("sum", "mean", "max")
    },
    **{
        f"embedding_bag-{kind}-{mode}": lambda L, T, kind=kind, mode=mode: _F(L).embedding_bag(
            T([1, 2, 4, 5], "int64"),
            T((10, 3), grad=True),
            T([0, 0, 4] if kind == "empty-bag" else [0, 1, 4], "int64"),
            mode=mode,
            include_last_offset=kind == "last-offset",
            padding_idx=4 if kind == "padding" else None,
        )
        for kind in ("empty-bag", "last-offset", "padding")
        for mode in ("sum", "mean", "max")
    },
    "embedding_bag-2d": lambda L, T: _F(L).embedding_bag(T([[1, 2, 4], [5, 4, 3]], "int64"), T((10, 3), grad=True)),
    "embedding_bag-per-sample-weights": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 4, 5], "int64"),
        T((10, 3), grad=True),
        T([0, 1], "int64"),
        per_sample_weights=T((4,), grad=True),
        padding_idx=2,
    ),
    "embedding_bag-per-sample-weights-mean": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 4, 5], "int64"), T((10, 3)), T([0, 1], "int64"), mode="mean", per_sample_weights=T((4,))
    ),
    "embedding_bag-transposed-weight": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 1], "int64"), T((3, 10), grad=True, layout="t"), T([0, 1], "int64"), mode="max"
    ),
    "embedding_bag-negative-padding": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 4, 5], "int64"), T((10, 3), grad=True), T([0, 1], "int64"), padding_idx=-6, mode="mean"
    ),
    "embedding_bag-empty": lambda L, T: _F(L).embedding_bag(
        T((0,), "int64"), T((10, 3), grad=True), T([0, 0], "int64")
    ),
    "embedding_bag-bad-first-offset": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 4, 5], "int64"), T((10, 3)), T([1, 2], "int64")
    ),
    "embedding_bag-bad-index": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 4, 15], "int64"), T((10, 3)), T([0, 2], "int64")
    ),
    "embedding_bag-offsets-with-2d": lambda L, T: _F(L).embedding_bag(
        T([[1, 2], [4, 5]], "int64"), T((10, 3)), T([0, 2], "int64")
    ),
    "embedding_bag-float-index": lambda L, T: _F(L).embedding_bag(T([1.0, 2.0]), T((10, 3)), T([0], "int64")),
    "embedding_bag-offset-past-end": lambda L, T: _F(L).embedding_bag(
        T([1, 2, 4, 5], "int64"), T((10, 3)), T([0, 5], "int64")
    ),
    "multilabel_margin_loss": lambda L, T: _F(L).multilabel_margin_loss(
        T((3, 4), grad=True), T([[3, 0, -1, 1], [0, 1, 2, 3], [-1, 0, 0, 0]], "int64")
    ),
    "multilabel_margin_loss-repeated-none": lambda L, T: _F(L).multilabel_margin_loss(
        T((2, 4), grad=True), T([[1, 1, -1, 0], [2, 2, 2, 2]], "int64"), reduction="none"
    ),
    "multilabel_margin_loss-1d": lambda L, T: _F(L).multilabel_margin_loss(
        T((4,), grad=True), T([3, 0, -1, 1], "int64"), reduction="sum"
    ),
    "multilabel_margin_loss-0d": lambda L, T: _F(L).multilabel_margin_loss(T(0.3, grad=True), T(0, "int64")),
    "multilabel_margin_loss-empty": lambda L, T: _F(L).multilabel_margin_loss(T((0, 4), grad=True), T((0, 4), "int64")),
    "multilabel_margin_loss-bad-class": lambda L, T: _F(L).multilabel_margin_loss(
        T((2, 4)), T([[1, 5, -1, 0], [2, 2, 2, 2]], "int64")
    ),
    "multilabel_margin_loss-bad-shape": lambda L, T: _F(L).multilabel_margin_loss(
        T((2, 4)), T([[1, 2, -1], [2, 2, 2]], "int64")
    ),
    "multilabel_soft_margin_loss-weight": lambda L, T: _F(L).multilabel_soft_margin_loss(
        T((3, 4), grad=True), T((3, 4)).abs().round(), weight=T((4,)).abs()
    ),
    "multilabel_soft_margin_loss-target-grad": lambda L, T: _F(L).multilabel_soft_margin_loss(
        T((3, 4), grad=True), T((3, 4), grad=True).abs(), reduction="none"
    ),
    "multilabel_soft_margin_loss-large": lambda L, T: _F(L).multilabel_soft_margin_loss(
        T((2, 2), grad=True) * 1000, T((2, 2)).abs()
    ),
    "multilabel_soft_margin_loss-empty": lambda L, T: _F(L).multilabel_soft_margin_loss(
        T((0, 4), grad=True), T((0, 4))
    ),
    "multilabel_soft_margin_loss-bad": lambda L, T: _F(L).multilabel_soft_margin_loss(T((3, 4)), T((3, 3))),
    "triplet_margin_with_distance_loss-custom": lambda L, T: _F(L).triplet_margin_with_distance_loss(
        T((3, 4), grad=True),
        T((3, 4), grad=True) * 2,
        T((3, 4), grad=True) * -1,
        distance_function=lambda a, b: (a - b).abs().sum(-1),
        margin=0.5,
        swap=True,
        reduction="none",
    ),
    "triplet_margin_loss-p1-swap": lambda L, T: _F(L).triplet_margin_loss(
        T((3, 4), grad=True), T((3, 4), grad=True) * 2, T((3, 4), grad=True) * -1, p=1, swap=True
    ),
    "triplet_margin_loss-broadcast": lambda L, T: _F(L).triplet_margin_loss(
        T((2, 4), grad=True), T((1, 4), grad=True), T((2, 4))
    ),
    "triplet_margin_loss-bad": lambda L, T: _F(L).triplet_margin_loss(T((2, 4)), T((2, 3)), T((2, 4))),
    **{f"pdist-p{p}": lambda L, T, p=p: _F(L).pdist(T((4, 3), grad=True), p=p) for p in (0, 1, 2, 3, 0.5, _INF)},
    **{
        f"pdist-equal-rows-p{p}": lambda L, T, p=p: _F(L).pdist(T([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], grad=True), p=p)
        for p in (1, 2, 3, _INF)
    },
    "pdist-one-row": lambda L, T: _F(L).pdist(T((1, 3), grad=True)),
    "pdist-no-rows": lambda L, T: _F(L).pdist(T((0, 3))),  # (torch 2.13's backward of it crashes the process)
    "pdist-no-columns": lambda L, T: _F(L).pdist(T((3, 0), grad=True)),
    "pdist-transposed": lambda L, T: _F(L).pdist(T((3, 4), grad=True, layout="t")),
    "pdist-top-level": lambda L, T: L.pdist(T((3, 2), grad=True)),
    "pdist-3d": lambda L, T: _F(L).pdist(T((2, 3, 4))),
    "pdist-negative-p": lambda L, T: _F(L).pdist(T((3, 4)), p=-1),
    "pdist-int": lambda L, T: _F(L).pdist(T((3, 4), "int64")),
    "hinge_embedding_loss-ragged-target": lambda L, T: _F(L).hinge_embedding_loss(T((2, 2)), ([1.0, -1.0], [1.0])),
    "cosine_embedding_loss-ragged-target": lambda L, T: _F(L).cosine_embedding_loss(
        T((2, 2)), T((2, 2)), ([1], [1, 2])
    ),
    "nll_loss-ragged-target": lambda L, T: _F(L).nll_loss(T((2, 2)), ([0, 1], [1])),
    "rms_norm-tuple-input": lambda L, T: _F(L).rms_norm((1.0, 2.0), (2,)),
    "max_unpool2d-list-indices": lambda L, T: _F(L).max_unpool2d(T((1, 1, 2, 2)), [[[[0, 1], [2, 3]]]], 2),
    "channel_shuffle": lambda L, T: _F(L).channel_shuffle(T((2, 6, 2), grad=True), 3),
    "channel_shuffle-5d": lambda L, T: _F(L).channel_shuffle(T((1, 4, 1, 2, 2), grad=True), 2),
    "channel_shuffle-int": lambda L, T: _F(L).channel_shuffle(T((2, 6, 2), "int64"), 2),
    "channel_shuffle-bad-groups": lambda L, T: _F(L).channel_shuffle(T((2, 5, 2)), 3),
    "channel_shuffle-zero-groups": lambda L, T: _F(L).channel_shuffle(T((2, 6, 2)), 0),
    "channel_shuffle-1d": lambda L, T: _F(L).channel_shuffle(T((6,)), 3),
    "native_channel_shuffle": lambda L, T: _F(L).native_channel_shuffle(T((2, 6, 2), grad=True), 3),
}

INTERPOLATE = {
    **{
        f"interpolate-{mode}-{corners}-{aa}": lambda L, T, mode=mode, corners=corners, aa=aa: _F(L).interpolate(
            T((1, 2, 5, 6), grad=True), size=(3, 8), mode=mode, align_corners=corners, antialias=aa
        )
        for mode in ("bilinear", "bicubic")
        for corners in (False, True)
        for aa in (False, True)
    },
    **{
        f"interpolate-scale-{mode}-{corners}": lambda L, T, mode=mode, corners=corners: _F(L).interpolate(
            T((1, 2, 5, 6), grad=True), scale_factor=(0.6, 1.7), mode=mode, align_corners=corners
        )
        for mode in ("bilinear", "bicubic")
        for corners in (False, True)
    },
    **{
        f"interpolate-recompute-{mode}": lambda L, T, mode=mode: _F(L).interpolate(
            T((1, 2, 5, 6), grad=True), scale_factor=(0.6, 1.7), mode=mode, recompute_scale_factor=True
        )
        for mode in ("bilinear", "bicubic", "nearest", "nearest-exact", "area")
    },
    "interpolate-area": lambda L, T: _F(L).interpolate(T((1, 2, 5, 7), grad=True), size=(2, 3), mode="area"),
    "interpolate-area-up": lambda L, T: _F(L).interpolate(T((1, 2, 2, 3), grad=True), size=(5, 7), mode="area"),
    "interpolate-area-1d": lambda L, T: _F(L).interpolate(T((1, 2, 7), grad=True), scale_factor=0.5, mode="area"),
    "interpolate-area-3d": lambda L, T: _F(L).interpolate(T((1, 1, 3, 4, 5), grad=True), size=(2, 2, 2), mode="area"),
    "interpolate-lanczos": lambda L, T: _F(L).interpolate(T((1, 2, 5, 6), grad=True), size=(3, 8), mode="lanczos"),
    "interpolate-lanczos-antialias": lambda L, T: _F(L).interpolate(
        T((1, 2, 5, 6), grad=True), size=(3, 4), mode="lanczos", antialias=True
    ),
    "interpolate-antialias-down": lambda L, T: _F(L).interpolate(
        T((1, 2, 9, 11), grad=True), size=(3, 4), mode="bilinear", antialias=True
    ),
    "interpolate-antialias-bicubic-corners": lambda L, T: _F(L).interpolate(
        T((1, 2, 9, 11), grad=True), size=(3, 4), mode="bicubic", antialias=True, align_corners=True
    ),
    "interpolate-antialias-scale": lambda L, T: _F(L).interpolate(
        T((1, 2, 9, 11), grad=True), scale_factor=0.37, mode="bilinear", antialias=True
    ),
    "interpolate-antialias-nearest": lambda L, T: _F(L).interpolate(
        T((1, 2, 9, 11)), scale_factor=0.37, mode="nearest", antialias=True
    ),
    "interpolate-antialias-linear": lambda L, T: _F(L).interpolate(
        T((1, 2, 9)), scale_factor=0.37, mode="linear", antialias=True
    ),
    "interpolate-bicubic-uint8": lambda L, T: _F(L).interpolate(T((1, 2, 5, 6), "uint8"), size=(3, 8), mode="bicubic"),
    "interpolate-bilinear-uint8-antialias": lambda L, T: _F(L).interpolate(
        T((1, 2, 5, 6), "uint8"), size=(3, 4), mode="bilinear", antialias=True
    ),
    "interpolate-bicubic-int64": lambda L, T: _F(L).interpolate(T((1, 2, 5, 6), "int64"), size=(3, 8), mode="bicubic"),
    "interpolate-linear-uint8": lambda L, T: _F(L).interpolate(T((1, 2, 5), "uint8"), size=3, mode="linear"),
    "interpolate-area-int64": lambda L, T: _F(L).interpolate(T((1, 2, 5, 6), "int64"), size=(3, 4), mode="area"),
    "interpolate-bicubic-noncontiguous": lambda L, T: _F(L).interpolate(
        T((6, 5, 2, 1), grad=True).permute(3, 2, 1, 0), size=(3, 8), mode="bicubic"
    ),
    "interpolate-bicubic-1px": lambda L, T: _F(L).interpolate(
        T((1, 1, 1, 1), grad=True), size=(3, 2), mode="bicubic", align_corners=True
    ),
    "interpolate-bicubic-to-1px": lambda L, T: _F(L).interpolate(
        T((1, 1, 4, 3), grad=True), size=(1, 1), mode="bicubic"
    ),
    "interpolate-bicubic-empty": lambda L, T: _F(L).interpolate(
        T((0, 1, 4, 3), grad=True), size=(2, 2), mode="bicubic"
    ),
    "interpolate-bicubic-3d": lambda L, T: _F(L).interpolate(T((1, 4, 3)), size=(2,), mode="bicubic"),
    "interpolate-bad-mode": lambda L, T: _F(L).interpolate(T((1, 1, 4, 3)), size=(2, 2), mode="cubic"),
    "interpolate-nearest-corners": lambda L, T: _F(L).interpolate(
        T((1, 1, 4, 3)), size=(2, 2), mode="nearest", align_corners=True
    ),
    "interpolate-size-and-scale": lambda L, T: _F(L).interpolate(T((1, 1, 4, 3)), size=(2, 2), scale_factor=2),
    "interpolate-no-size": lambda L, T: _F(L).interpolate(T((1, 1, 4, 3))),
    "interpolate-size-length": lambda L, T: _F(L).interpolate(T((1, 1, 4, 3)), size=(2, 2, 2)),
    "interpolate-area-antialias": lambda L, T: _F(L).interpolate(
        T((1, 1, 4, 3)), size=(2, 2), mode="area", antialias=True
    ),
    "upsample_bilinear": lambda L, T: _F(L).upsample_bilinear(T((1, 2, 3, 4), grad=True), scale_factor=2),
    "upsample_nearest": lambda L, T: _F(L).upsample_nearest(T((1, 2, 3, 4), grad=True), size=(5, 5)),
    "upsample-bicubic": lambda L, T: _F(L).upsample(T((1, 2, 3, 4), grad=True), size=(5, 5), mode="bicubic"),
}

LOSSES = {
    "margin_ranking_loss-kink": lambda L, T: _F(L).margin_ranking_loss(
        T([0.5, 0.5], grad=True), T([0.5, 0.5], grad=True), T([1.0, -1.0])
    ),
    "margin_ranking_loss-broadcast": lambda L, T: _F(L).margin_ranking_loss(
        T((3,), grad=True), T((1,), grad=True), T([1.0, -1.0, 1.0])
    ),
    "margin_ranking_loss-bad": lambda L, T: _F(L).margin_ranking_loss(T((3,)), T((2,)), T((3,))),
    "hinge_embedding_loss-kink": lambda L, T: _F(L).hinge_embedding_loss(
        T([0.5, 0.2], grad=True), T([-1.0, -1.0]), margin=0.5
    ),
    "hinge_embedding_loss-broadcast": lambda L, T: _F(L).hinge_embedding_loss(
        T((2, 3), grad=True), T([1.0, -1.0, 1.0]), margin=0.2, reduction="sum"
    ),
    "triplet_margin_loss-kink": lambda L, T: _F(L).triplet_margin_loss(
        T([[0.0, 0.0]], grad=True), T([[1.0, 0.0]], grad=True), T([[2.0, 0.0]], grad=True), eps=0.0
    ),
    "cosine_embedding_loss-kink": lambda L, T: _F(L).cosine_embedding_loss(
        T([[1.0, 0.0]], grad=True), T([[2.0, 0.0]], grad=True), T([-1.0]), margin=1.0
    ),
    "cosine_embedding_loss-zero-vector": lambda L, T: _F(L).cosine_embedding_loss(
        T([[0.0, 0.0, 0.0]], grad=True), T((1, 3), grad=True), T([1.0])
    ),
    "cosine_embedding_loss-0d-target": lambda L, T: _F(L).cosine_embedding_loss(T((2, 3)), T((2, 3)), T(1.0)),
    "gaussian_nll_loss-var-per-row": lambda L, T: _F(L).gaussian_nll_loss(
        T((3, 4), grad=True), T((3, 4), grad=True), T((3,), grad=True).abs() + 0.1
    ),
    "gaussian_nll_loss-var-number": lambda L, T: _F(L).gaussian_nll_loss(T((3, 4), grad=True), T((3, 4)), 0.5),
    "gaussian_nll_loss-var-tiny-number": lambda L, T: _F(L).gaussian_nll_loss(T((3, 4), grad=True), T((3, 4)), 1e-9),
    "gaussian_nll_loss-var-negative-number": lambda L, T: _F(L).gaussian_nll_loss(T((3, 4)), T((3, 4)), -0.5),
    "gaussian_nll_loss-var-0d": lambda L, T: _F(L).gaussian_nll_loss(T((3, 4)), T((3, 4)), T(0.5)),
    "gaussian_nll_loss-bad-var": lambda L, T: _F(L).gaussian_nll_loss(T((3, 4)), T((3, 4)), T((2,)).abs()),
    "gaussian_nll_loss-none-full": lambda L, T: _F(L).gaussian_nll_loss(
        T((3, 4), grad=True), T((3, 4)), T((3, 4), grad=True).abs(), reduction="none", full=True
    ),
    "poisson_nll_loss-zero-target": lambda L, T: _F(L).poisson_nll_loss(
        T((4,), grad=True).abs(), T([0.0, 1.0, 2.0, 5.0]), log_input=False, full=True, reduction="none"
    ),
    "poisson_nll_loss-full-target-grad": lambda L, T: _F(L).poisson_nll_loss(
        T((4,), grad=True), T([0.0, 1.0, 2.0, 5.0], grad=True), full=True
    ),
    "rms_norm-weight-eps": lambda L, T: _F(L).rms_norm(T((2, 3), grad=True), (3,), T((3,), grad=True), eps=1e-3),
    "rms_norm-f32": lambda L, T: _F(L).rms_norm(T((2, 3), "float32"), (3,)),
    "rms_norm-bad-shape": lambda L, T: _F(L).rms_norm(T((2, 3)), (2,)),
    "rrelu-eval": lambda L, T: _F(L).rrelu(T((2, 3), grad=True), 0.1, 0.3, training=False),
    "rrelu-bad-bounds": lambda L, T: _F(L).rrelu(T((2, 3)), 0.5, 0.3, training=False),
    "local_response_norm-empty": lambda L, T: _F(L).local_response_norm(T((0, 3, 2), grad=True), 2),
    "local_response_norm-1-channel": lambda L, T: _F(L).local_response_norm(T((2, 1, 3), grad=True), 3),
    "local_response_norm-2d": lambda L, T: _F(L).local_response_norm(T((2, 3)), 2),
    "unfold-transposed": lambda L, T: _F(L).unfold(T((5, 4, 3, 1), grad=True).permute(3, 2, 1, 0), 2, stride=(1, 2)),
    "unfold-padding-dilation": lambda L, T: _F(L).unfold(
        T((1, 2, 5, 5), grad=True), (2, 3), dilation=(2, 1), padding=(1, 0), stride=2
    ),
    "unfold-too-small": lambda L, T: _F(L).unfold(T((1, 2, 2, 2)), 3),
    "fold-bad-blocks": lambda L, T: _F(L).fold(T((1, 8, 4)), (2, 2), 2),
    "pixel_shuffle-5d": lambda L, T: _F(L).pixel_shuffle(T((2, 1, 4, 2, 2), grad=True), 2),
    "pixel_unshuffle-bad": lambda L, T: _F(L).pixel_unshuffle(T((1, 1, 3, 4)), 2),
    "cosine_similarity-broadcast": lambda L, T: _F(L).cosine_similarity(T((2, 1, 3), grad=True), T((4, 3), grad=True)),
    "feature_alpha_dropout-eval": lambda L, T: _F(L).feature_alpha_dropout(
        T((2, 3, 4), grad=True), 0.4, training=False
    ),
}

_KEYS_DEAD = [[True] * 5, [False] * 5, [True, False, True, False, False]]
_SCORES_DEAD = [[0.0] * 5, [-_INF] * 5, [0.0, -_INF, 0.0, 1.0, 2.0]]


def _transformer_layer(L):
    return L.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)


def _padding_and_causal(module, x):
    return module(x, src_mask=x.new_ones(3, 3).triu(1) * -1e9, src_key_padding_mask=x[..., 0] > 0.5)


MODULES = {
    "sdpa-masked-out-row": lambda L, T: _F(L).scaled_dot_product_attention(
        T((2, 3, 4), grad=True), T((2, 5, 4), grad=True), T((2, 5, 3), grad=True), attn_mask=T(_KEYS_DEAD, "bool")
    ),
    "sdpa-masked-out-row-float": lambda L, T: _F(L).scaled_dot_product_attention(
        T((2, 3, 4), grad=True), T((2, 5, 4), grad=True), T((2, 5, 3), grad=True), attn_mask=T(_SCORES_DEAD)
    ),
    "TransformerEncoderLayer": _module(lambda L: L.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), _x((3, 2, 4))),
    "TransformerEncoderLayer-norm-first-gelu": _module(
        lambda L: L.nn.TransformerEncoderLayer(
            4, 2, 8, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        ),
        _x((2, 3, 4)),
    ),
    "TransformerEncoderLayer-padded-sequence": _module(_transformer_layer, _x((2, 3, 4)), call=_padding_and_causal),
    "TransformerDecoderLayer": _module(
        lambda L: L.nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, norm_first=True, bias=False),
        _x((3, 2, 4)),
        _x((5, 2, 4)),
    ),
    "TransformerEncoder-norm": _module(
        lambda L: L.nn.TransformerEncoder(
            L.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), 2, norm=L.nn.LayerNorm(4), enable_nested_tensor=False
        ),
        _x((3, 2, 4)),
    ),
    "Transformer-unbatched": _module(lambda L: L.nn.Transformer(4, 2, 1, 1, 8, dropout=0.0), _x((3, 4)), _x((5, 4))),
    "MultiheadAttention-kdim-vdim-bias_kv-zero_attn": _module(
        lambda L: L.nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True),
        _x((3, 2, 4)),
        _x((5, 2, 3)),
        _x((5, 2, 5)),
    ),
    "MultiheadAttention-batch_first-no-bias": _module(
        lambda L: L.nn.MultiheadAttention(4, 2, kdim=3, vdim=5, batch_first=True, bias=False),
        _x((2, 3, 4)),
        _x((2, 5, 3)),
        _x((2, 5, 5)),
    ),
    "MultiheadAttention-per-head-weights": _module(
        lambda L: L.nn.MultiheadAttention(4, 2, add_bias_kv=True),
        _x((3, 2, 4)),
        _x((5, 2, 4)),
        _x((5, 2, 4)),
        call=lambda m, q, k, v: m(q, k, v, average_attn_weights=False),
    ),
    "MultiheadAttention-masked-out-query": _module(
        lambda L: L.nn.MultiheadAttention(4, 2),
        _x((3, 2, 4)),
        _x((5, 2, 4)),
        _x((5, 2, 4)),
        call=lambda m, q, k, v: m(q, k, v, key_padding_mask=k[..., 0].t() > -5, need_weights=False),
    ),
    "MultiheadAttention-masked-out-query-weights": _module(
        lambda L: L.nn.MultiheadAttention(4, 2),
        _x((3, 2, 4)),
        _x((5, 2, 4)),
        _x((5, 2, 4)),
        call=lambda m, q, k, v: m(q, k, v, key_padding_mask=k[..., 0].t() > 0.5),
    ),
    "MultiheadAttention-unbatched": _module(
        lambda L: L.nn.MultiheadAttention(4, 2, kdim=3, vdim=3), _x((3, 4)), _x((5, 3)), _x((5, 3))
    ),
    "AdaptiveLogSoftmaxWithLoss": _module(
        lambda L: L.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 6], div_value=2.0, head_bias=True),
        _x((5, 4)),
        _x([1, 4, 7, 9, 0], "int64"),
    ),
    "AdaptiveLogSoftmaxWithLoss-log_prob-predict": _module(
        lambda L: L.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 6]),
        _x((5, 4)),
        call=lambda m, x: (m.log_prob(x), m.predict(x)),
    ),
    "AdaptiveLogSoftmaxWithLoss-unbatched": _module(
        lambda L: L.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 6]), _x((4,)), _x(7, "int64")
    ),
    "AdaptiveLogSoftmaxWithLoss-bad-target": _module(
        lambda L: L.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 6]), _x((5, 4)), _x([1, 4, 7, 10, 0], "int64")
    ),
    "AdaptiveLogSoftmaxWithLoss-bad-cutoffs": lambda L, T: L.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [6, 3]),
    "Fold": _module(lambda L: L.nn.Fold((4, 5), (2, 2), stride=(1, 2), padding=1, dilation=(1, 2)), _x((2, 12, 12))),
    "Unfold": _module(lambda L: L.nn.Unfold((2, 2), stride=(1, 2), padding=1, dilation=(1, 2)), _x((2, 3, 4, 5))),
    "Fold-unbatched": _module(lambda L: L.nn.Fold((3, 3), 2), _x((8, 4))),
    "Fold-bad-blocks": _module(lambda L: L.nn.Fold((3, 3), 2), _x((1, 7, 4))),
    "ReflectionPad2d": _module(lambda L: L.nn.ReflectionPad2d((1, 2, 0, 1)), _x((1, 2, 3, 4))),
    "ReflectionPad1d-too-wide": _module(lambda L: L.nn.ReflectionPad1d(3), _x((1, 2, 3))),
    "ReplicationPad1d-unbatched": _module(lambda L: L.nn.ReplicationPad1d((3, 1)), _x((2, 3))),
    "CircularPad2d": _module(lambda L: L.nn.CircularPad2d((1, 2, 2, 0)), _x((1, 1, 3, 3))),
    **{
        f"CircularPad1d-{left}-{right}": _module(lambda L, pads=(left, right): L.nn.CircularPad1d(pads), _x((1, 1, 5)))
        for left, right in ((-1, 2), (2, -1), (-2, 3), (3, -2), (-3, 4))
    },
    "CircularPad2d-negative": _module(lambda L: L.nn.CircularPad2d((-1, 2, 1, -1)), _x((1, 1, 3, 4))),
    "ZeroPad2d-negative": _module(lambda L: L.nn.ZeroPad2d((-1, 1, 2, -1)), _x((1, 1, 3, 4))),
    "ConstantPad3d": _module(lambda L: L.nn.ConstantPad3d((1, 0, 0, 1, 1, 0), 2.5), _x((1, 1, 2, 2, 2))),
    "RMSNorm": _module(lambda L: L.nn.RMSNorm([3, 4]), _x((2, 3, 4))),
    "RMSNorm-no-affine": _module(lambda L: L.nn.RMSNorm(4, eps=1e-3, elementwise_affine=False), _x((2, 4))),
    "RMSNorm-zeros": _module(lambda L: L.nn.RMSNorm(2), _x([[0.0, 0.0]])),
    "LocalResponseNorm": _module(lambda L: L.nn.LocalResponseNorm(3), _x((2, 5, 3))),
    "LocalResponseNorm-4d": _module(lambda L: L.nn.LocalResponseNorm(2, alpha=0.1, beta=0.5, k=2.0), _x((2, 5, 3, 2))),
    "PixelShuffle-bad": _module(lambda L: L.nn.PixelShuffle(2), _x((1, 6, 2, 3))),
    "Upsample-bicubic-corners": _module(
        lambda L: L.nn.Upsample(scale_factor=1.5, mode="bicubic", align_corners=True), _x((1, 2, 3, 4))
    ),
    "Softmax2d-bad": _module(lambda L: L.nn.Softmax2d(), _x((2, 3))),
    "AdaptiveAvgPool3d-none": _module(lambda L: L.nn.AdaptiveAvgPool3d((1, None, 2)), _x((1, 2, 3, 4, 5))),
    "AdaptiveMaxPool3d-indices": _module(lambda L: L.nn.AdaptiveMaxPool3d(2, return_indices=True), _x((1, 2, 3, 4, 5))),
    "LPPool2d": _module(lambda L: L.nn.LPPool2d(2, 2), _x((1, 2, 4, 4))),
    "MaxUnpool2d": _module(lambda L: L.nn.MaxUnpool2d(2), _x((1, 1, 2, 2)), _x([[[[0, 3], [9, 14]]]], "int64")),
    "CTCLoss": _module(
        lambda L: L.nn.CTCLoss(reduction="sum", zero_infinity=True),
        _x((5, 2, 4)),
        _x(_CTC_TARGETS, "int64"),
        _x([5, 4], "int64"),
        _x([3, 2], "int64"),
        call=lambda m, x, *rest: m(x.log_softmax(-1), *rest),
    ),
    "EmbeddingBag-from_pretrained": lambda L, T: L.nn.EmbeddingBag.from_pretrained(
        T((5, 3), grad=True), freeze=False, mode="mean"
    )(T([1, 2, 4], "int64"), T([0, 1], "int64")),
    "GaussianNLLLoss-full": _module(lambda L: L.nn.GaussianNLLLoss(full=True), _x((3, 4)), _x((3, 4)), _x((3, 1))),
    "GaussianNLLLoss-negative-var": _module(lambda L: L.nn.GaussianNLLLoss(), _x((3, 4)), _x((3, 4)), _x((3, 4))),
    "PoissonNLLLoss-full": _module(lambda L: L.nn.PoissonNLLLoss(log_input=False, full=True), _x((3, 4)), _x((3, 4))),
    "MarginRankingLoss": _module(lambda L: L.nn.MarginRankingLoss(0.2, reduction="none"), _x((3,)), _x((3,)), _x((3,))),
    "HingeEmbeddingLoss": _module(lambda L: L.nn.HingeEmbeddingLoss(0.3), _x((3, 4)), _x([[1.0, -1.0, 1.0, -1.0]] * 3)),
    "CosineEmbeddingLoss": _module(lambda L: L.nn.CosineEmbeddingLoss(0.1), _x((3, 4)), _x((3, 4)), _x([1.0, -1, 1])),
    "CosineEmbeddingLoss-1d": _module(lambda L: L.nn.CosineEmbeddingLoss(0.1), _x((4,)), _x((4,)), _x(-1.0)),
    "TripletMarginLoss": _module(
        lambda L: L.nn.TripletMarginLoss(margin=0.3, p=3, eps=1e-3, swap=True), _x((3, 4)), _x((3, 4)), _x((3, 4))
    ),
    "NLLLoss2d": _module(
        lambda L: L.nn.NLLLoss2d(ignore_index=1), _x((2, 3, 2, 2)), _x([[[0, 1], [2, 0]], [[1, 1], [2, 2]]], "int64")
    ),
    "FeatureAlphaDropout-eval": _module(lambda L: L.nn.FeatureAlphaDropout(0.3), _x((2, 3, 4))),
}


def _weight_norm(L, T):
    m = L.nn.utils.weight_norm(_filled(L, L.nn.Linear(3, 2).double()), dim=0)
    return m(T((4, 3), grad=True)), sorted((k, tuple(v.shape)) for k, v in m.state_dict().items())


def _weight_norm_conv(L, T):
    m = L.nn.utils.weight_norm(_filled(L, L.nn.Conv1d(2, 3, 2).double()), dim=None)
    return m(T((1, 2, 5), grad=True)), sorted((k, tuple(v.shape)) for k, v in m.state_dict().items())


def _fused(kind):
    def fn(L, T):
        conv = {
            "conv": lambda: L.nn.Conv2d(2, 3, 2),
            "transpose": lambda: L.nn.ConvTranspose2d(2, 3, 2),
            "linear": lambda: L.nn.Linear(2, 3),
            "no-bias": lambda: L.nn.Conv2d(2, 3, 2, bias=False),
        }[kind]()
        conv = _filled(L, conv.double()).eval()
        bn = _filled(L, L.nn.BatchNorm1d(3) if kind == "linear" else L.nn.BatchNorm2d(3, affine=kind != "no-bias"))
        bn = bn.double().eval()
        bn.running_var.data = bn.running_var.data.abs() + 0.1
        fusion = L.nn.utils.fusion
        fused = (
            fusion.fuse_linear_bn_eval(conv, bn)
            if kind == "linear"
            else fusion.fuse_conv_bn_eval(conv, bn, transpose=kind == "transpose")
        )
        x = T((4, 2) if kind == "linear" else (1, 2, 4, 4), grad=True)
        return fused(x), bn(conv(x))

    return fn


def _clip_norm(norm_type):
    def fn(L, T):
        a, b = T((2, 3), grad=True), T((4,), grad=True)
        (a.sum() * 3 + (b * b).sum()).backward()
        return L.nn.utils.clip_grad_norm_([a, b], 0.5, norm_type=norm_type), a.grad, b.grad

    return fn


def _clip_nonfinite(L, T):
    a = T((2, 3), grad=True)
    (a * _INF).sum().backward()
    return L.nn.utils.clip_grad_norm_([a], 0.5, error_if_nonfinite=True)


def _cond(pred):
    def fn(L, T):
        # (torch.cond's first call turns torch.distributions' argument validation off for the whole process, which
        # tests/test_distributions.py then finds off when a worker ran this case before it: restored here)
        validate = L.distributions.Distribution._validate_args
        try:
            return L.cond(pred(L, T), lambda x: x.sin(), lambda x: x.cos(), (T((3,), grad=True),))
        finally:
            L.distributions.Distribution.set_default_validate_args(validate)

    return fn


_FULL_RANK = [[0.9, -0.2, 0.4, 0.1], [0.3, 0.8, -0.5, 0.2], [-0.6, 0.1, 0.7, 1.1]]

TOP_LEVEL = {
    "nn.utils.weight_norm": _weight_norm,
    "nn.utils.weight_norm-conv-dim-none": _weight_norm_conv,
    **{f"nn.utils.fusion-{kind}": _fused(kind) for kind in ("conv", "transpose", "linear", "no-bias")},
    **{f"nn.utils.clip_grad_norm_-{p}": _clip_norm(p) for p in (2.0, 3.0, "inf")},
    "nn.utils.clip_grad_norm_-nonfinite": _clip_nonfinite,
    **{
        f"{window}_window-{n}-{periodic}": lambda L, T, window=window, n=n, periodic=periodic: getattr(
            L, f"{window}_window"
        )(n, periodic=periodic)
        for window in ("hann", "hamming", "blackman", "bartlett")
        for n in (0, 1, 5)
        for periodic in (True, False)
    },
    "kaiser_window": lambda L, T: L.kaiser_window(6, False, beta=3.0),
    "hann_window-f32": lambda L, T: L.hann_window(4, dtype=L.float32),
    "hann_window-negative": lambda L, T: L.hann_window(-1),
    "finfo": lambda L, T: (
        L.finfo(L.float32).eps,
        L.finfo(L.float32).max,
        L.finfo(L.float32).tiny,
        L.finfo(L.float64).resolution,
        L.finfo(L.float16).smallest_normal,
        L.finfo().bits,
        L.finfo(L.float32).dtype,
    ),
    "iinfo": lambda L, T: (L.iinfo(L.int8).min, L.iinfo(L.uint8).max, L.iinfo(L.int64).bits, L.iinfo(L.int32).dtype),
    "iinfo-float": lambda L, T: L.iinfo(L.float32),
    "finfo-int": lambda L, T: L.finfo(L.int32),
    "gradient": lambda L, T: L.gradient(T((5,), grad=True)),
    "gradient-spacing-edge2": lambda L, T: L.gradient(T((4, 5), grad=True), spacing=2.0, dim=1, edge_order=2),
    "gradient-coordinates": lambda L, T: L.gradient(
        T((4, 5), grad=True), spacing=(T([0.0, 1.0, 1.5, 3.0]), T([0.0, 1, 2, 4, 7])), edge_order=2
    ),
    "gradient-spacing-list": lambda L, T: L.gradient(T((4, 5), grad=True), spacing=[1.5, 2.0]),
    "gradient-int": lambda L, T: L.gradient(T((5,), "int64")),
    "gradient-too-short": lambda L, T: L.gradient(T((2,)), edge_order=2),
    "histogramdd": lambda L, T: L.histogramdd(T((10, 2)), bins=3),
    "histogramdd-weight-density": lambda L, T: L.histogramdd(
        T((10, 2)), bins=[2, 3], weight=T((10,)).abs(), density=True
    ),
    "histogramdd-range": lambda L, T: L.histogramdd(T((10, 2)), bins=2, range=[-1.0, 1.0, 0.0, 1.0]),
    "histogramdd-edges": lambda L, T: L.histogramdd(T((10, 2)), bins=[T([-1.0, 0.0, 1.0]), T([-1.0, 0.2, 0.5, 1.0])]),
    "histogramdd-3d": lambda L, T: L.histogramdd(T((2, 5, 2)), bins=2),
    "nuclear_norm": lambda L, T: L.nuclear_norm(T(_FULL_RANK, grad=True)),
    "frobenius_norm": lambda L, T: L.frobenius_norm(T((3, 4), grad=True), dim=(0, 1)),
    "norm_except_dim": lambda L, T: L.norm_except_dim(T((3, 4, 2), grad=True), 3, 0),
    "norm_except_dim-all": lambda L, T: L.norm_except_dim(T((3, 4), grad=True), 2, -1),
    "geqrf-wide": lambda L, T: L.geqrf(T(_FULL_RANK)),
    "ormqr": lambda L, T: L.ormqr(*L.geqrf(T(_FULL_RANK).t()), T((4, 2), grad=True), left=True, transpose=True),
    "ormqr-right": lambda L, T: L.ormqr(*L.geqrf(T(_FULL_RANK).t()), T((2, 4)), left=False),
    "cond": _cond(lambda L, T: T(1.0) > 0),
    "cond-python-bool": _cond(lambda L, T: False),
    "cond-bad-predicate": _cond(lambda L, T: T([1.0, 0.0]) > 0),
    "constant_pad_nd": lambda L, T: L.constant_pad_nd(T((2, 3), grad=True), (1, -1), 2.0),
    "convolution-transposed": lambda L, T: L.convolution(
        T((1, 2, 5), grad=True), T((2, 3, 2), grad=True), None, (2,), (1,), (1,), True, (1,), 1
    ),
    "nonzero_static": lambda L, T: L.nonzero_static(T([[0.0, 1.0], [2.0, 0.0]]), size=3, fill_value=-5),
    "nonzero_static-truncated": lambda L, T: L.nonzero_static(T([[0.0, 1.0], [2.0, 3.0]]), size=1),
}

SECTIONS15 = {
    "nn_sampling": SAMPLING,
    "nn_pooling": POOLING,
    "nn_sequence_losses": SEQUENCE_LOSSES,
    "nn_interpolate": INTERPOLATE,
    "nn_losses15": LOSSES,
    "nn_modules15": MODULES,
    "top_level15": TOP_LEVEL,
}

_TORCH_CTC_GRADIENT = (
    "ctc_loss's gradient is the derivative of its value (torch's assumes normalized log_probs: through "
    "log_softmax the two agree)"
)
DELIBERATE15 = {
    "ctc_loss-unnormalized": _TORCH_CTC_GRADIENT,
    "ctc_loss-infeasible": "an infeasible target's loss is +inf whatever log_probs are: its gradient is 0 "
    "(torch's: NaN)",
    "fractional_max_pool2d-number-ratio": "a number output_ratio is accepted, as torch documents (torch 2.13's "
    "functional raises TypeError on it; its module accepts it)",
    "poisson_nll_loss-full-target-grad": "the target's gradient where the target is 0 is finite (torch's NaN "
    "comes through the masked-out Stirling term)",
    "native_channel_shuffle": "differentiable, as channel_shuffle (torch 2.13 has no derivative for it)",
    "multilabel_margin_loss-empty": "the mean over no samples is NaN (torch 2.13 returns uninitialized memory)",
    **{
        f"pdist-equal-rows-p{_INF}": "at a tie of |x_i - x_j|'s largest coordinates the gradient is shared, as "
        "torch's vector_norm (torch's pdist gives each tied coordinate the full gradient: twice the derivative "
        "along the tie)",
    },
}
FORWARD_DELIBERATE15 = {
    "cond": "the taken branch's tangent (torch 2.13's cond drops forward-mode tangents)",
}
