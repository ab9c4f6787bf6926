"""``MultiheadAttention`` with torch's parameters (``in_proj_weight`` (3E, E), or ``q_proj_weight`` (E, E),
``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim) when ``kdim`` / ``vdim`` differ from E; ``in_proj_bias``,
``out_proj``; ``bias_k`` / ``bias_v`` (1, 1, E) with ``add_bias_kv``), initialisation and call signature,
written with ``ad`` ops (matmul, softmax, reshape), so it differentiates like any composite. Masks are
constants: a boolean mask (True: not allowed) becomes ``-inf`` added to the scores, a float mask is added as
it is."""

import math

import numpy as np

from ... import composites, creation, ops
from ... import cuda as _cuda
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..functional.attention import safe_softmax
from ..parameter import Parameter
from .linear import Linear
from .module import Module
from .utils import _factory

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """torch's name for the output projection (a ``Linear``)."""


def _mask_tensor(mask, like):
    """``mask`` as an additive mask on ``like``'s device, in its dtype: a boolean one (True: not allowed) as
    ``-inf`` / 0, a float one as it is. A mask given as an array is copied to the device once; a mask tensor
    stays where it is (a CUDA mask never visits the host)."""
    if not isinstance(mask, Tensor):
        mask = _cuda.index_tensor(np.asarray(mask), like)
    if mask.dtype == np.bool_:
        return ops.zeros_like(mask, dtype=like.dtype).masked_fill(mask, -math.inf)
    return mask.to(like.dtype)


def _pad_last(mask, n):
    """A mask with ``n`` more key columns that mask nothing (the appended bias / zero keys)."""
    return None if mask is None else F.pad(mask, (0, n))


class MultiheadAttention(Module):
    """Multi-head attention, as ``torch.nn.MultiheadAttention``.

    ``add_bias_kv`` appends the learnt ``bias_k`` / ``bias_v`` as one more key / value position after the
    projection; ``add_zero_attn`` appends a zero key and value per head (a position every query can attend to).
    Masks get a column for each appended position that masks nothing (as torch)."""

    def __init__(
        self,
        embed_dim,
        num_heads,
        dropout=0.0,
        bias=True,
        add_bias_kv=False,
        add_zero_attn=False,
        kdim=None,
        vdim=None,
        batch_first=False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and num_heads={num_heads} "
                "instead"
            )
        if embed_dim % num_heads != 0:
            raise AssertionError("embed_dim must be divisible by num_heads")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(_factory((3 * embed_dim, embed_dim), dtype, device))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(_factory((embed_dim, embed_dim), dtype, device))
            self.k_proj_weight = Parameter(_factory((embed_dim, self.kdim), dtype, device))
            self.v_proj_weight = Parameter(_factory((embed_dim, self.vdim), dtype, device))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(_factory((3 * embed_dim,), dtype, device))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(_factory((1, 1, embed_dim), dtype, device))
            self.bias_v = Parameter(_factory((1, 1, embed_dim), dtype, device))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=True,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (ops.unsqueeze(t, 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = ops.unsqueeze(_mask_tensor(key_padding_mask, query), 0)
        elif self.batch_first:
            query, key, value = (ops.transpose(t, 0, 1) for t in (query, key, value))
        tgt_len, bsz, e = query.shape
        src_len = key.shape[0]
        if e != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {e}")
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:e], w[e : 2 * e], w[2 * e :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        q = F.linear(query, wq, bq)
        k = F.linear(key, wk, bk)
        v = F.linear(value, wv, bv)
        h, d = self.num_heads, self.head_dim
        dtype = q.dtype
        if is_causal and attn_mask is None:
            attn_mask = np.triu(np.ones((tgt_len, src_len), bool), 1)
        attn_mask = None if attn_mask is None else _mask_tensor(attn_mask, q)
        key_padding_mask = None if key_padding_mask is None else _mask_tensor(key_padding_mask, q)
        if self.bias_k is not None:  # one more key / value position, the same for the whole batch
            k = ops.cat([k, ops.expand(self.bias_k, (1, bsz, e))], 0)
            v = ops.cat([v, ops.expand(self.bias_v, (1, bsz, e))], 0)
            attn_mask, key_padding_mask = _pad_last(attn_mask, 1), _pad_last(key_padding_mask, 1)
            src_len += 1
        # (L, N, E) -> (N, H, L, D)
        q = ops.permute(ops.reshape(q, (tgt_len, bsz, h, d)), (1, 2, 0, 3))
        k = ops.permute(ops.reshape(k, (src_len, bsz, h, d)), (1, 2, 0, 3))
        v = ops.permute(ops.reshape(v, (src_len, bsz, h, d)), (1, 2, 0, 3))
        if self.add_zero_attn:  # a zero key and value per head
            zeros = creation.zeros((bsz, h, 1, d), dtype=dtype, device=q.device)
            k, v = ops.cat([k, zeros], 2), ops.cat([v, zeros], 2)
            attn_mask, key_padding_mask = _pad_last(attn_mask, 1), _pad_last(key_padding_mask, 1)
            src_len += 1
        scores = ops.matmul(q, ops.transpose(k, -2, -1)) * (1.0 / math.sqrt(d))
        if attn_mask is not None:
            if attn_mask.ndim == 3:  # (N * H, L, S)
                attn_mask = ops.reshape(attn_mask, (bsz, h, tgt_len, src_len))
            scores = scores + attn_mask
        if key_padding_mask is not None:
            scores = scores + ops.reshape(key_padding_mask, (bsz, 1, 1, src_len))
        if need_weights or (attn_mask is None and key_padding_mask is None):
            attn = composites.softmax(scores, -1)
        else:  # torch's attention kernel: a query whose every key is masked out attends to nothing (not NaN)
            attn = safe_softmax(scores)
        if self.dropout > 0.0 and self.training:
            attn = F.dropout(attn, p=self.dropout)
        out = ops.matmul(attn, v)  # (N, H, L, D)
        out = ops.reshape(ops.permute(out, (2, 0, 1, 3)), (tgt_len, bsz, e))
        out = self.out_proj(out)
        if unbatched:
            out = ops.squeeze(out, 1)
        elif self.batch_first:
            out = ops.transpose(out, 0, 1)
        if not need_weights:
            return out, None
        weights = ops.mean(attn, 1) if average_attn_weights else attn
        if unbatched:
            weights = ops.squeeze(weights, 0)
        return out, weights
