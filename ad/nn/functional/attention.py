"""``scaled_dot_product_attention``: ``softmax(q k^T * scale + mask) v`` as a composite (torch's math path)."""

import math

import numpy as np

from ... import composites, ops
from ... import cuda as _cuda
from ...tensor import Tensor, wrap_array
from .dropout import dropout


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
