"""``scaled_dot_product_attention``: ``softmax(q k^T * scale + mask) v`` as a composite (torch's math path), and
``multi_head_attention_forward``, torch's functional multi-head attention (``nn.MultiheadAttention`` calls it):
the projections, the optional bias key/value and zero-attention positions, the masks and the output projection,
all as ``ad`` ops, so it differentiates like any composite.

Layouts inside ``multi_head_attention_forward`` (torch's): inputs (L, N, E) / (S, N, E); per-head tensors
(N * H, L, D) with the batch-major head index ``n * H + h``; masks as additive float tensors (a boolean mask,
True: not allowed, becomes ``-inf``), ``attn_mask`` (N * H, L, S) or (1, L, S), ``key_padding_mask`` (N, S).
"""

import math
import warnings

import numpy as np

from ... import composites, creation, ops
from ... import cuda as _cuda
from ...tensor import Tensor, wrap_array
from .dropout import dropout
from .linear import linear


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """Attention of ``query`` (..., L, E) over ``key`` (..., S, E) and ``value`` (..., S, Ev).

    Args:
        attn_mask: boolean (True: take part) or float (added to the scores), broadcast to (..., L, S).
        dropout_p: dropout on the attention weights (drawn from ``ad.manual_seed``'s generator).
        is_causal: mask out keys after the query position (top-left aligned); not with ``attn_mask``.
        scale: the scores' factor (default ``1 / sqrt(E)``).
        enable_gqa: key / value heads shared by groups of query heads (dim -3).
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if query.shape[-1] != key.shape[-1]:
        raise RuntimeError(f"Expected query and key to have the same embedding size, got {query.shape[-1]} and "
                           f"{key.shape[-1]}")
    L, S = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key = _repeat_heads(key, rep)
        value = _repeat_heads(value, rep)
    scores = ops.matmul(query, ops.transpose(key, -2, -1)) * factor
    if is_causal:
        attn_mask = wrap_array(np.tril(np.ones((L, S), bool)))
    if attn_mask is not None:
        m = _cuda.host_copy(attn_mask._data) if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
        if m.dtype == np.bool_:
            scores = ops.where(wrap_array(m), scores, _cuda.index_tensor(np.asarray(-np.inf, scores.dtype), scores))
        else:
            mask = attn_mask if isinstance(attn_mask, Tensor) else _cuda.index_tensor(m.astype(scores.dtype), scores)
            scores = scores + mask
    if attn_mask is None:
        weights = composites.softmax(scores, -1)
    else:
        weights = safe_softmax(scores)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return ops.matmul(weights, value)


def safe_softmax(scores):
    """softmax over the last dim with a row of -inf scores (every key masked out) attending to nothing: zero
    weights and a zero gradient, as torch 2.13's attention (a plain softmax gives NaN there, and the NaN would
    reach the query's and key's gradients). The row's scores are replaced before the softmax, so its backward
    never meets the NaN."""
    dead = ops.amax(scores.detach(), -1, keepdim=True) == float("-inf")
    zero = _cuda.index_tensor(np.zeros((), scores.dtype), scores)
    return ops.where(dead, zero, composites.softmax(ops.where(dead, zero, scores), -1))


def _repeat_heads(t, rep):
    """(..., H, S, E) -> (..., H * rep, S, E), each head repeated ``rep`` times in place."""
    shape = t.shape
    expanded = ops.expand(ops.unsqueeze(t, -3), *(shape[:-2] + (rep,) + shape[-2:]))
    return ops.reshape(expanded, shape[:-3] + (shape[-3] * rep,) + shape[-2:])


def _additive_mask(mask, like, name):
    """``mask`` as an additive float mask on ``like``'s device and dtype: a boolean one (True: not allowed) as
    ``-inf`` / 0, a float one as it is; an array is copied to the device once.

    Raises:
        AssertionError: neither a boolean nor a floating mask (torch's class and message).
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = _cuda.index_tensor(np.asarray(mask), like)
    if mask.dtype == np.bool_:
        return ops.zeros_like(mask, dtype=like.dtype).masked_fill(mask, -math.inf)
    if mask.dtype.kind != "f":
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask.to(like.dtype)


def _matched_masks(key_padding_mask, attn_mask, like, names=("key_padding_mask", "attn_mask")):
    """The two masks, both made additive float masks with torch's deprecation warning when one is boolean and the
    other not (``names``: how the caller calls them); unchanged otherwise."""
    if key_padding_mask is None or attn_mask is None:
        return key_padding_mask, attn_mask
    if (np.dtype(key_padding_mask.dtype) == np.bool_) == (np.dtype(attn_mask.dtype) == np.bool_):
        return key_padding_mask, attn_mask
    warnings.warn(f"Support for mismatched {names[0]} and {names[1]} is deprecated. Use same type for both instead.",
                  UserWarning, stacklevel=3)
    return _additive_mask(key_padding_mask, like, names[0]), _additive_mask(attn_mask, like, names[1])


def _shape_str(shape):
    return f"ad.Size({list(shape)})"


def _check_batched(query, key, value, key_padding_mask, attn_mask, num_heads):
    """torch's rank rules; True for a batched (3-D) call."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                f"{key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if key_padding_mask is not None and np.ndim(key_padding_mask) != 2:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but found "
                f"{np.ndim(key_padding_mask)}-D tensor instead"
            )
        if attn_mask is not None and np.ndim(attn_mask) not in (2, 3):
            raise AssertionError(
                "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                f"{np.ndim(attn_mask)}-D tensor instead"
            )
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                f"{key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if key_padding_mask is not None and np.ndim(key_padding_mask) != 1:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but found "
                f"{np.ndim(key_padding_mask)}-D tensor instead"
            )
        if attn_mask is not None:
            if np.ndim(attn_mask) not in (2, 3):
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                    f"{np.ndim(attn_mask)}-D tensor instead"
                )
            if np.ndim(attn_mask) == 3 and np.shape(attn_mask) != (num_heads, query.shape[0], key.shape[0]):
                raise AssertionError(
                    f"Expected `attn_mask` shape to be {(num_heads, query.shape[0], key.shape[0])} but got "
                    f"{tuple(np.shape(attn_mask))}"
                )
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")


def _project(query, key, value, embed_dim, in_proj_weight, in_proj_bias, use_separate_proj_weight, q_proj_weight,
             k_proj_weight, v_proj_weight):
    """The input projections: ``in_proj_weight``'s three row blocks, or the three separate weights (whose key
    and value widths may differ from ``embed_dim``)."""
    e = embed_dim
    b = in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        w = in_proj_weight
        return linear(query, w[:e], bq), linear(key, w[e : 2 * e], bk), linear(value, w[2 * e :], bv)
    for name, w in (("q", q_proj_weight), ("k", k_proj_weight), ("v", v_proj_weight)):
        if w is None:
            raise AssertionError(f"use_separate_proj_weight is True but {name}_proj_weight is None")
    for what, w, x in (("query", q_proj_weight, query), ("key", k_proj_weight, key), ("value", v_proj_weight, value)):
        if tuple(w.shape) != (e, x.shape[-1]):
            raise AssertionError(
                f"expecting {what} weights shape of {(e, x.shape[-1])}, but got {_shape_str(w.shape)}"
            )
    return linear(query, q_proj_weight, bq), linear(key, k_proj_weight, bk), linear(value, v_proj_weight, bv)


def _heads(t, length, bsz, num_heads, head_dim):
    """(length, N, E) -> (N * H, length, D)."""
    return ops.transpose(ops.reshape(t, (length, bsz * num_heads, head_dim)), 0, 1)


def _static(static, name, bsz, num_heads, head_dim):
    if static.shape[0] != bsz * num_heads:
        raise AssertionError(f"expecting {name}.size(0) of {bsz * num_heads}, but got {static.shape[0]}")
    if static.shape[2] != head_dim:
        raise AssertionError(f"expecting {name}.size(2) of {head_dim}, but got {static.shape[2]}")
    return static


def _pad_key_column(mask):
    """A mask with one more key column that masks nothing (an appended bias or zero key)."""
    from .vision import pad

    return None if mask is None else pad(mask, (0, 1))


def multi_head_attention_forward(
    query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v,
    add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training=True, key_padding_mask=None,
    need_weights=True, attn_mask=None, use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
    v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True, is_causal=False,
):
    """Multi-head attention, as ``torch.nn.functional.multi_head_attention_forward`` (``nn.MultiheadAttention``'s
    computation, with its parameters passed in).

    Args:
        query, key, value: (L, N, E), (S, N, Ek), (S, N, Ev), or unbatched (L, E), (S, Ek), (S, Ev).
        embed_dim_to_check (int): E, checked against ``query``. num_heads (int): H (E divisible by H).
        in_proj_weight, in_proj_bias: (3E, E) and (3E,): the query, key and value projections stacked (or the
            bias alone with ``use_separate_proj_weight`` and ``q/k/v_proj_weight`` (E, E), (E, Ek), (E, Ev)).
        bias_k, bias_v: (1, 1, E) appended as one more key / value position (both or neither).
        add_zero_attn (bool): append a zero key and value per head. dropout_p (float): dropout on the attention
            weights when ``training``.
        out_proj_weight, out_proj_bias: the output projection.
        key_padding_mask: (N, S) (unbatched (S,)); boolean (True: ignore the key) or float (added).
        need_weights (bool): also return the attention weights (averaged over heads with
            ``average_attn_weights``, else (N, H, L, S)). attn_mask: (L, S) or (N * H, L, S), boolean or float.
        static_k, static_v: (N * H, S, D) keys / values used instead of the projected ones.
        is_causal (bool): a hint that ``attn_mask`` is the causal mask (required with it).

    Returns:
        ``(output (L, N, E), weights or None)``.

    Raises:
        AssertionError: torch's shape, rank and dtype checks (its class and messages). RuntimeError: a mask of the
            wrong shape, or ``is_causal`` without ``attn_mask``.

    Example:
        >>> mha = ad.nn.MultiheadAttention(4, 2)
        >>> x = ad.randn(3, 1, 4)
        >>> out, w = F.multi_head_attention_forward(x, x, x, 4, 2, mha.in_proj_weight, mha.in_proj_bias, None,
        ...                                         None, False, 0.0, mha.out_proj.weight, mha.out_proj.bias)
        >>> out.shape, w.shape
        ((3, 1, 4), (1, 3, 3))
    """
    batched = _check_batched(query, key, value, key_padding_mask, attn_mask, num_heads)
    if isinstance(key_padding_mask, Tensor) and isinstance(attn_mask, Tensor):
        key_padding_mask, attn_mask = _matched_masks(key_padding_mask, attn_mask, query)
    if not batched:
        query, key, value = (ops.unsqueeze(t, 1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = ops.unsqueeze(_additive_mask(key_padding_mask, query, "key_padding_mask"), 0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if key_padding_mask is not None:
        for axis, want in ((0, bsz), (1, src_len)):
            if np.shape(key_padding_mask)[axis] != want:
                raise AssertionError(
                    f"Expected key_padded_mask.shape[{axis}] to be {want}, but got {np.shape(key_padding_mask)[axis]}"
                )
    key_padding_mask = _additive_mask(key_padding_mask, query, "key_padding_mask")
    if is_causal and attn_mask is None:
        raise RuntimeError(
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
            "`generate_square_subsequent_mask` to create this mask."
        )
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint alone: the causal mask of scaled_dot_product_attention, as torch
    else:
        attn_mask = _additive_mask(attn_mask, query, "attn_mask")
        if key_padding_mask is not None:
            is_causal = False  # the masks are merged below; the hint is dropped, as torch
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(
                f"key's sequence and batch dims {_shape_str(key.shape[:2])} do not match value's "
                f"{_shape_str(value.shape[:2])}"
            )
    elif tuple(key.shape) != tuple(value.shape):
        raise AssertionError(f"key shape {_shape_str(key.shape)} does not match value shape {_shape_str(value.shape)}")
    q, k, v = _project(query, key, value, embed_dim, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                       q_proj_weight, k_proj_weight, v_proj_weight)
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(
                    f"The shape of the 2D attn_mask is {_shape_str(attn_mask.shape)}, but should be "
                    f"{(tgt_len, src_len)}."
                )
            attn_mask = ops.unsqueeze(attn_mask, 0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(
                    f"The shape of the 3D attn_mask is {_shape_str(attn_mask.shape)}, but should be "
                    f"{(bsz * num_heads, tgt_len, src_len)}."
                )
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = ops.cat([k, ops.expand(bias_k, (1, bsz, embed_dim))], 0)
        v = ops.cat([v, ops.expand(bias_v, (1, bsz, embed_dim))], 0)
        attn_mask, key_padding_mask = _pad_key_column(attn_mask), _pad_key_column(key_padding_mask)
    elif bias_k is not None or bias_v is not None:
        raise AssertionError("bias_k and bias_v must both be given or both be None")
    q = _heads(q, tgt_len, bsz, num_heads, head_dim)
    if static_k is None:
        k = _heads(k, k.shape[0], bsz, num_heads, head_dim)
    else:
        k = _static(static_k, "static_k", bsz, num_heads, head_dim)
    if static_v is None:
        v = _heads(v, v.shape[0], bsz, num_heads, head_dim)
    else:
        v = _static(static_v, "static_v", bsz, num_heads, head_dim)
    if add_zero_attn:
        zeros = creation.zeros((bsz * num_heads, 1, head_dim), dtype=q.dtype, device=q.device)
        k, v = ops.cat([k, zeros], 1), ops.cat([v, zeros], 1)
        attn_mask, key_padding_mask = _pad_key_column(attn_mask), _pad_key_column(key_padding_mask)
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(
                f"expecting key_padding_mask shape of {(bsz, src_len)}, but got {_shape_str(key_padding_mask.shape)}"
            )
        padding = ops.reshape(
            ops.expand(ops.reshape(key_padding_mask, (bsz, 1, 1, src_len)), (bsz, num_heads, 1, src_len)),
            (bsz * num_heads, 1, src_len),
        )
        attn_mask = padding if attn_mask is None else attn_mask + padding
    if not training:
        dropout_p = 0.0
    if need_weights:
        scores = ops.matmul(q * math.sqrt(1.0 / head_dim), ops.transpose(k, -2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = composites.softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p, training=True)
        out = ops.matmul(weights, v)  # (N * H, L, D)
        out = ops.reshape(ops.transpose(out, 0, 1), (tgt_len * bsz, embed_dim))
        out = ops.reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, embed_dim))
        weights = ops.reshape(weights, (bsz, num_heads, tgt_len, src_len))
        if average_attn_weights:
            weights = ops.mean(weights, 1)
        if not batched:
            out, weights = ops.squeeze(out, 1), ops.squeeze(weights, 0)
        return out, weights
    # without the weights: torch's attention kernel (a query whose every key is masked attends to nothing)
    if attn_mask is not None:
        if attn_mask.shape[0] == 1:
            attn_mask = ops.unsqueeze(attn_mask, 0)
        else:
            attn_mask = ops.reshape(attn_mask, (bsz, num_heads, -1, src_len))
    q, k, v = (ops.reshape(t, (bsz, num_heads, t.shape[1], head_dim)) for t in (q, k, v))
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = ops.reshape(ops.permute(out, (2, 0, 1, 3)), (bsz * tgt_len, embed_dim))
    out = ops.reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, embed_dim))
    if not batched:
        out = ops.squeeze(out, 1)
    return out, None
