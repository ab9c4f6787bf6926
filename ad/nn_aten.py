"""torch's top-level (aten) forms of ``nn`` functions: ``torch.channel_shuffle``, ``ctc_loss`` (integer
``reduction``), ``grid_sampler`` (integer modes), ``affine_grid_generator``, ``embedding_bag`` (with torch's
bookkeeping outputs), ``native_layer_norm`` / ``native_batch_norm`` / ``native_group_norm`` (the result with the
saved statistics), ``native_dropout`` (the result with its mask), the in-place and feature dropouts, and the
recurrent layers and cells as functions of their weights (``rnn_tanh``, ``rnn_relu``, ``lstm``, ``gru``,
``*_cell``).

Each delegates to the ``ad.nn.functional`` code (``recurrent.layer`` for the recurrent ones), so reverse and forward
mode come from there; the statistics are composites of ad ops with torch's shapes.
"""

import numpy as np

from . import ops
from .nn import functional as F
from .nn.functional import recurrent
from .ops.out import with_out
from .tensor import Tensor

__all__ = [
    "affine_grid_generator", "alpha_dropout_", "channel_shuffle", "ctc_loss", "dropout_", "embedding_bag",
    "feature_alpha_dropout_", "feature_dropout", "feature_dropout_", "grid_sampler", "grid_sampler_2d",
    "grid_sampler_3d", "gru", "gru_cell", "lstm", "lstm_cell", "native_batch_norm", "native_channel_shuffle",
    "native_dropout", "native_group_norm", "native_layer_norm", "rnn_relu", "rnn_relu_cell", "rnn_tanh",
    "rnn_tanh_cell",
]  # fmt: skip

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}
_INTERPOLATION = {0: "bilinear", 1: "nearest", 2: "bicubic"}
_PADDING = {0: "zeros", 1: "border", 2: "reflection"}


def channel_shuffle(input, groups):  # noqa: A002 - torch's names
    """``torch.channel_shuffle``: ``F.channel_shuffle``."""
    return F.channel_shuffle(input, groups)


native_channel_shuffle = channel_shuffle


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1, zero_infinity=False):
    """``torch.ctc_loss``: ``F.ctc_loss`` with torch's integer ``reduction`` (0 none, 1 mean, 2 sum)."""
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _REDUCTIONS[int(reduction)],
                      zero_infinity)  # fmt: skip


def grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners):  # noqa: A002
    """``torch.grid_sampler``: ``F.grid_sample`` with integer modes (interpolation 0 bilinear, 1 nearest,
    2 bicubic; padding 0 zeros, 1 border, 2 reflection)."""
    return F.grid_sample(input, grid, _INTERPOLATION[int(interpolation_mode)], _PADDING[int(padding_mode)],
                         bool(align_corners))  # fmt: skip


def grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners):  # noqa: A002
    """``torch.grid_sampler_2d``: ``grid_sampler`` of a 4-d input."""
    if input.ndim != 4:
        raise RuntimeError(f"grid_sampler_2d(): expected 4D input, but got input with sizes {list(input.shape)}")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


def grid_sampler_3d(input, grid, interpolation_mode, padding_mode, align_corners):  # noqa: A002
    """``torch.grid_sampler_3d``: ``grid_sampler`` of a 5-d input."""
    if input.ndim != 5:
        raise RuntimeError(f"grid_sampler_3d(): expected 5D input, but got input with sizes {list(input.shape)}")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


def affine_grid_generator(theta, size, align_corners):
    """``torch.affine_grid_generator``: ``F.affine_grid``."""
    return F.affine_grid(theta, list(size), bool(align_corners))


_BAG_MODES = {0: "sum", 1: "mean", 2: "max"}


def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None):  # fmt: skip
    """``torch.embedding_bag``: ``(output, offset2bag, bag_size, max_indices)``: ``F.embedding_bag``'s result
    (integer ``mode``: 0 sum, 1 mean, 2 max) and the int64 bookkeeping torch's CPU kernel returns with it: the bag
    of each index, the number of non-padding indices of each bag, and for max mode the row that gave each bag's
    maximum per feature (mean mode: the bag sizes again). Sum mode returns what torch's kernels do there: no bag
    per index for float32 weights without ``padding_idx`` (its fast path), zeros for the other two (one per bag
    when ``weight`` requires grad, else one per offset).

    Raises:
        TypeError: ``offsets`` is not a tensor (torch's message).
    """
    if not isinstance(offsets, Tensor):
        raise TypeError(
            f"embedding_bag(): argument 'offsets' (position 3) must be Tensor, not {type(offsets).__name__}"
        )
    output = F.embedding_bag(indices, weight, offsets, None, 2, scale_grad_by_freq, _BAG_MODES[int(mode)], sparse,
                             per_sample_weights, include_last_offset, padding_idx)  # fmt: skip
    idx = indices.detach().cpu().numpy().reshape(-1).astype(np.int64)
    off = offsets.detach().cpu().numpy().reshape(-1).astype(np.int64)
    bags = off.size - 1 if include_last_offset else off.size
    bag_of = np.searchsorted(off[:bags], np.arange(idx.size), side="right") - 1
    valid = np.ones(idx.size, bool)
    if padding_idx is not None:
        valid = idx != (padding_idx + weight.shape[0] if padding_idx < 0 else padding_idx)
    counts = np.bincount(bag_of[valid], minlength=bags).astype(np.int64)
    if mode == 0:
        fast = weight.dtype == np.float32 and padding_idx is None
        offset2bag = np.zeros(0, np.int64) if fast else bag_of
        bag_size = max_indices = np.zeros(bags if weight.requires_grad else off.size, np.int64)
    elif mode == 1:
        offset2bag, bag_size, max_indices = bag_of, counts, counts
    else:
        offset2bag, bag_size = bag_of, counts
        rows = weight.detach().cpu().numpy()
        max_indices = np.zeros((bags, rows.shape[1]), np.int64)
        for b in range(bags):
            members = idx[(bag_of == b) & valid]
            if members.size:
                max_indices[b] = members[np.argmax(rows[members], axis=0)]
    extras = tuple(ops.wrap_array(a.astype(np.int64)).to(weight.device) for a in (offset2bag, bag_size, max_indices))
    return (output, *extras)


# --- normalizations with their saved statistics


def native_layer_norm(input, normalized_shape, weight, bias, eps):  # noqa: A002
    """``torch.native_layer_norm``: ``(F.layer_norm(...), mean, rstd)``, the statistics over the normalized
    dimensions, kept as size-1 dimensions (``rstd = 1 / sqrt(var + eps)``, biased variance)."""
    out = F.layer_norm(input, list(normalized_shape), weight, bias, eps)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    mean = input.mean(dims, keepdim=True)
    rstd = (input.var(dims, unbiased=False, keepdim=True) + eps).rsqrt()
    return out, mean, rstd


@with_out
def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):  # noqa: A002
    """``torch.native_batch_norm``: ``(F.batch_norm(...), save_mean, save_invstd)``: the batch's per-channel
    mean and ``1 / sqrt(var + eps)`` when training (the running statistics are updated as ``F.batch_norm``
    does), empty tensors otherwise."""
    out = F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if not training:
        empty = ops.wrap_array(np.zeros(0, input.dtype))
        return out, empty.to(input.device), empty.to(input.device)
    dims = (0, *range(2, input.ndim))
    mean = input.mean(dims)
    invstd = (input.var(dims, unbiased=False) + eps).rsqrt()
    return out, mean, invstd


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):  # noqa: A002, N803 - torch's names
    """``torch.native_group_norm``: ``(F.group_norm(...), mean, rstd)``, the statistics of shape ``(N, group)``."""
    out = F.group_norm(input, int(group), weight, bias, eps)
    grouped = input.reshape(int(N), int(group), -1)
    mean = grouped.mean(2)
    rstd = (grouped.var(2, unbiased=False) + eps).rsqrt()
    return out, mean, rstd


# --- dropouts


def native_dropout(input, p, train):  # noqa: A002
    """``torch.native_dropout``: ``(output, mask)``: when ``train`` (None counts as True) each element kept with
    probability ``1 - p`` and scaled by ``1 / (1 - p)``; otherwise the input and an all-true mask."""
    if train is False:
        return input.clone(), ops.wrap_array(np.ones(input.shape, bool)).to(input.device)
    from .random import bernoulli

    keep = bernoulli(ops.wrap_array(np.full(input.shape, 1.0 - p)))
    mask = keep.to(np.bool_)
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    return input * keep.to(input.dtype).to(input.device) * scale, mask.to(input.device)


def dropout_(input, p, train):  # noqa: A002
    """``torch.dropout_``: ``F.dropout(input, p, train, inplace=True)``."""
    return F.dropout(input, p, train, True)


def feature_dropout(input, p, train):  # noqa: A002
    """``torch.feature_dropout``: whole channels (dim 1) dropped: ``F.dropout2d`` semantics on any rank."""
    return _feature(input, p, train, False)


def feature_dropout_(input, p, train):  # noqa: A002
    """``torch.feature_dropout_``: ``feature_dropout`` in place."""
    return _feature(input, p, train, True)


def alpha_dropout_(input, p, train):  # noqa: A002
    """``torch.alpha_dropout_``: ``F.alpha_dropout(input, p, train, inplace=True)``."""
    return F.alpha_dropout(input, p, train, True)


def feature_alpha_dropout_(input, p, train):  # noqa: A002
    """``torch.feature_alpha_dropout_``: ``F.feature_alpha_dropout(input, p, train, inplace=True)``."""
    return F.feature_alpha_dropout(input, p, train, True)


def _feature(input, p, train, inplace):  # noqa: A002
    if not train or p == 0:
        return input
    from .random import bernoulli

    shape = (*input.shape[:2], *(1,) * (input.ndim - 2))
    keep = bernoulli(ops.wrap_array(np.full(shape, 1.0 - p, dtype=input.dtype))).to(input.device)
    scaled = keep * (0.0 if p >= 1 else 1.0 / (1.0 - p))
    return input.mul_(scaled) if inplace else input * scaled


# --- recurrent layers and cells as functions of their weights


def _cell(mode, input, hx, w_ih, w_hh, b_ih, b_hh):  # noqa: A002
    h, c = (hx[0], hx[1]) if mode == "LSTM" else (hx, None)
    batched = input.ndim == 2
    if not batched:
        input, h, c = input.unsqueeze(0), h.unsqueeze(0), None if c is None else c.unsqueeze(0)
    xw = F.linear(input, w_ih, b_ih)
    h, c = recurrent.cell(mode, xw, h, c, w_hh.t(), b_hh, None)
    if not batched:
        h, c = h.squeeze(0), None if c is None else c.squeeze(0)
    return (h, c) if mode == "LSTM" else h


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.rnn_tanh_cell``: ``tanh(input W_ih^T + b_ih + hx W_hh^T + b_hh)``."""
    return _cell("RNN_TANH", input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.rnn_relu_cell``: ``relu(input W_ih^T + b_ih + hx W_hh^T + b_hh)``."""
    return _cell("RNN_RELU", input, hx, w_ih, w_hh, b_ih, b_hh)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.lstm_cell``: one LSTM step; ``hx`` is ``(h, c)``; returns ``(h', c')`` (gates i, f, g, o)."""
    return _cell("LSTM", input, hx, w_ih, w_hh, b_ih, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.gru_cell``: one GRU step (gates r, z, n, as ``nn.GRUCell``)."""
    return _cell("GRU", input, hx, w_ih, w_hh, b_ih, b_hh)


def _layers(mode, input, h0, c0, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: A002
    """The recurrent layers of ``nn.RNN``/``LSTM``/``GRU`` with the weights in torch's flat order (per layer and
    direction ``w_ih, w_hh[, b_ih, b_hh]``). Returns ``(output, h_n, c_n)``."""
    if input.ndim != 3:
        raise RuntimeError(f"{mode.lower()}: expected a 3-d input (time, batch, features), got {input.ndim}-d")
    directions = 2 if bidirectional else 1
    per = 4 if has_biases else 2
    if len(params) != num_layers * directions * per:
        raise RuntimeError(
            f"{mode.lower()}: expected {num_layers * directions * per} parameters for {num_layers} layers, got "
            f"{len(params)}"
        )
    x = input.transpose(0, 1) if batch_first else input
    steps, batch = x.shape[0], x.shape[1]
    data = x.reshape(steps * batch, x.shape[2])
    batch_sizes = np.full(steps, batch, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for direction in range(directions):
            k = layer * directions + direction
            w = params[k * per : (k + 1) * per]
            weights = (w[0], w[1], w[2] if has_biases else None, w[3] if has_biases else None, None)
            out, h, c = recurrent.layer(
                mode, data, offsets, batch_sizes, h0[k], None if c0 is None else c0[k], weights, direction == 1
            )
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        data = ops.cat(outs, 1) if directions == 2 else outs[0]
        if dropout and train and layer < num_layers - 1:
            data = F.dropout(data, dropout, True)
    output = data.reshape(steps, batch, data.shape[1])
    if batch_first:
        output = output.transpose(0, 1)
    return output, ops.stack(h_n), ops.stack(c_n) if c0 is not None else None


def rnn_tanh(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: A002
    """``torch.rnn_tanh``: ``nn.RNN``'s layers (tanh) as a function; returns ``(output, h_n)``."""
    out, h, _ = _layers("RNN_TANH", input, hx, None, list(params), has_biases, num_layers, dropout, train,
                        bidirectional, batch_first)  # fmt: skip
    return out, h


def rnn_relu(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: A002
    """``torch.rnn_relu``: ``nn.RNN``'s layers (relu) as a function; returns ``(output, h_n)``."""
    out, h, _ = _layers("RNN_RELU", input, hx, None, list(params), has_biases, num_layers, dropout, train,
                        bidirectional, batch_first)  # fmt: skip
    return out, h


def gru(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: A002
    """``torch.gru``: ``nn.GRU``'s layers as a function; returns ``(output, h_n)``."""
    out, h, _ = _layers("GRU", input, hx, None, list(params), has_biases, num_layers, dropout, train, bidirectional,
                        batch_first)  # fmt: skip
    return out, h


def lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: A002
    """``torch.lstm``: ``nn.LSTM``'s layers as a function; ``hx`` is ``(h_0, c_0)``; returns
    ``(output, h_n, c_n)``."""
    if not isinstance(hx, (tuple, list)) or len(hx) != 2 or not all(isinstance(t, Tensor) for t in hx):
        raise RuntimeError("lstm: hx must be a pair of tensors (h_0, c_0)")
    return _layers("LSTM", input, hx[0], hx[1], list(params), has_biases, num_layers, dropout, train, bidirectional,
                   batch_first)  # fmt: skip
