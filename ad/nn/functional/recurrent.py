"""One recurrent layer (one direction) over a packed sequence: the ad-op composite and a one-row fast path.

Where to start: ``layer`` (called by ``RNNBase.forward`` per layer and direction, and by the cells as a layer
of one step). Its input ``data`` is time-major and packed, ``(sum of batch sizes, features)``, step ``t`` in
rows ``offsets[t]:offsets[t + 1]``; sequences are sorted by decreasing length, so those still running at step
``t`` are the first ``batch_sizes[t]`` rows of the ``(B, P)`` state (a padded batch is the case of equal batch
sizes). Every step's input projection is one product over all steps (``data W_ih^T + b_ih``, as cuDNN and
torch do); the recurrence then runs in one of two forms:

- ``_Recurrent`` (a Python-swept primitive: one tape row for the layer, projection included): the forward
  loops over the steps in numpy (one GEMM per step into preallocated ``(N, ...)`` buffers; per LSTM step one
  numpy exp of the whole negated gate block, the g gate's doubled so that ``tanh(g) = 2 sigmoid(2g) - 1``, one
  tanh of the cell state, and the arithmetic between them in small kernels of kernels/rnn.py) and keeps the
  gate activations; the backward is one compiled kernel per mode (the gate derivatives of every step and the
  per-step ``dg_t @ W_hh``), after which each weight gradient is one GEMM over all steps. A 2-layer LSTM of 50
  steps records 2 rows instead of about 15 per step and layer, and its backward makes 2 kernel calls.
- ``scan`` (ad ops: matmul, sigmoid, tanh, slicing, cat), the differentiable form: the fast path's backward
  recomputes and differentiates it when the backward itself must be differentiable (``create_graph=True``,
  a dual cotangent in forward over reverse), and ``layer`` uses it directly where the fast path does not
  apply (CUDA tensors, inputs carrying forward-mode tangents, mixed dtypes). Tests compare both forms with
  torch's and with each other.
"""

import numpy as np

from kernels import rnn as krnn

from ... import blas_threads, ops
from ...autograd.function import Function
from ...forward import _fw, visible_levels_of
from ...grad_mode import enable_grad, is_grad_enabled
from ...tensor import wrap_array
from .linear import linear

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def cell(mode, xw, h, c, w_hh_t, b_hh, w_hr_t):
    """One step of ``mode`` for a batch, as ad ops: ``xw`` is the input's projection (``x W_ih^T + b_ih``),
    ``w_hh_t`` and ``w_hr_t`` transposed weights. Returns ``(h', c')`` (``c'`` is ``None`` but for LSTM)."""
    gh = h @ w_hh_t
    if b_hh is not None:
        gh = gh + b_hh
    if mode == "GRU":
        i_r, i_z, i_n = xw.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = (i_r + h_r).sigmoid()
        z = (i_z + h_z).sigmoid()
        n = (i_n + r * h_n).tanh()
        return n + z * (h - n), None
    gates = xw + gh
    if mode == "RNN_TANH":
        return gates.tanh(), None
    if mode == "RNN_RELU":
        return gates.relu(), None
    i, f, g, o = gates.chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    if w_hr_t is not None:
        h = h @ w_hr_t
    return h, c


def scan(mode, xw, offsets, batch_sizes, h0, c0, w_hh, b_hh, w_hr, reverse):
    """The recurrence over packed ``xw`` as ad ops. Returns ``(output data, h_n, c_n)``."""
    w_hh_t = w_hh.T
    w_hr_t = None if w_hr is None else w_hr.T
    steps = len(batch_sizes)
    outs = [None] * steps
    if not reverse:
        # sequences that end leave the batch: their final state is set aside (rows bs_t and up)
        h, c, done_h, done_c = h0, c0, [], []
        for t in range(steps):
            n = int(batch_sizes[t])
            if n < h.shape[0]:
                done_h.append(h[n:])
                h = h[:n]
                if c is not None:
                    done_c.append(c[n:])
                    c = c[:n]
            h, c = cell(mode, xw[offsets[t] : offsets[t + 1]], h, c, w_hh_t, b_hh, w_hr_t)
            outs[t] = h
        h_n = ops.cat([h, *done_h[::-1]]) if done_h else h
        c_n = None if c is None else (ops.cat([c, *done_c[::-1]]) if done_c else c)
    else:
        # backwards in time, sequences join the batch (from their initial state) at their last step
        n = int(batch_sizes[-1]) if steps else h0.shape[0]
        h = h0[:n] if n < h0.shape[0] else h0
        c = None if c0 is None else (c0[:n] if n < c0.shape[0] else c0)
        for t in range(steps - 1, -1, -1):
            m = int(batch_sizes[t])
            if m > h.shape[0]:
                h = ops.cat([h, h0[h.shape[0] : m]])
                if c is not None:
                    c = ops.cat([c, c0[c.shape[0] : m]])
            h, c = cell(mode, xw[offsets[t] : offsets[t + 1]], h, c, w_hh_t, b_hh, w_hr_t)
            outs[t] = h
        h_n, c_n = h, c
    return ops.cat(outs) if steps > 1 else outs[0], h_n, c_n


def layer(mode, data, offsets, batch_sizes, h0, c0, weights, reverse):
    """One direction of one layer over packed ``data``. Returns ``(output data, h_n, c_n)``."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    args = (data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr)
    if (
        len(batch_sizes) == 0
        or any(a is not None and (a._dev is not None or a.dtype != data.dtype) for a in args)
        or (_fw.levels and visible_levels_of(*[a for a in args if a is not None]))
    ):
        xw = linear(data, w_ih, b_ih)  # every step's input projection in one product
        return scan(mode, xw, offsets, batch_sizes, h0, c0, w_hh, b_hh, w_hr, reverse)
    res = _Recurrent.apply(*args, mode, offsets, batch_sizes, reverse)
    return res if mode == "LSTM" else (res[0], res[1], None)


# ---------------------------------------------------------------------------------------------------------
# the fast path


def _forward(mode, data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr, offsets, batch_sizes, reverse):
    """The recurrence in numpy (per step: one GEMM, numpy's SIMD exp / tanh on contiguous blocks, the
    arithmetic between them in kernels/rnn.py). Returns ``(out, h_n, c_n, saved)``: ``saved`` holds the
    activations the backward kernel reads (see kernels/rnn.py)."""
    steps = len(batch_sizes)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    n_rows = data.shape[0]
    gates = w_ih.shape[0]
    dt = data.dtype
    h = np.array(h0, dtype=dt, order="C")
    width = h.shape[1]
    out = np.empty((n_rows, width), dt)
    saved = {}
    if mode == "LSTM":
        hid = gates // 4
        x = data @ w_ih.T
        for b in (b_ih, b_hh):
            if b is not None:
                x += b
        w_t = np.ascontiguousarray(w_hh.T)  # (a transposed view: small products 1.5-2.5x slower)
        c = np.array(c0, dtype=dt, order="C")
        act = np.empty((n_rows, gates), dt)
        cs = np.empty((n_rows, hid), dt)
        tc = np.empty((n_rows, hid), dt)
        project = w_hr is not None
        hpre = np.empty((n_rows, hid), dt) if project else out
        w_hr_t = np.ascontiguousarray(w_hr.T) if project else None
        e = np.empty((h.shape[0], gates), dt)
        for t in order:
            n, r0, r1 = batch_sizes[t], offsets[t], offsets[t + 1]
            en = np.matmul(h[:n], w_t, out=e[:n])
            krnn.lstm_preact(en, x[r0:r1])
            np.exp(en, out=en)
            krnn.lstm_gates(en, c, act[r0:r1], cs[r0:r1])
            tct = np.tanh(cs[r0:r1], out=tc[r0:r1])
            krnn.lstm_output(act[r0:r1], tct, hpre[r0:r1], h, project)
            if project:
                h[:n] = np.matmul(hpre[r0:r1], w_hr_t, out=out[r0:r1])
        saved.update(act=act, c=cs, tc=tc, hpre=hpre)
        return out, h, c, saved
    if mode == "GRU":
        hid = gates // 3
        x = data @ w_ih.T
        if b_ih is not None:
            x += b_ih
        if b_hh is not None:
            x[:, : 2 * hid] += b_hh[: 2 * hid]
        b_hn = b_hh[2 * hid :] if b_hh is not None else np.zeros(hid, dt)
        w_t = np.ascontiguousarray(w_hh.T)
        act = np.empty((n_rows, 4 * hid), dt)  # r, z, n, hn
        gh = np.empty((h.shape[0], gates), dt)
        e = np.empty((h.shape[0], 2 * hid), dt)
        npre = np.empty((h.shape[0], hid), dt)
        for t in order:
            n, r0, r1 = batch_sizes[t], offsets[t], offsets[t + 1]
            a = act[r0:r1]
            g = np.matmul(h[:n], w_t, out=gh[:n])
            en = e[:n]
            krnn.gru_gates(g, x[r0:r1], b_hn, en, a)
            np.exp(en, out=en)
            nt = npre[:n]
            krnn.gru_candidate(en, x[r0:r1], a, nt)
            np.tanh(nt, out=nt)
            krnn.gru_output(nt, a, h, out[r0:r1])
        saved.update(act=act)
        return out, h, None, saved
    x = data @ w_ih.T
    for b in (b_ih, b_hh):
        if b is not None:
            x += b
    w_t = np.ascontiguousarray(w_hh.T)
    relu = mode == "RNN_RELU"
    for t in order:
        n, r0, r1 = batch_sizes[t], offsets[t], offsets[t + 1]
        o = np.matmul(h[:n], w_t, out=out[r0:r1])
        o += x[r0:r1]
        if relu:
            np.maximum(o, 0, out=o)
        else:
            np.tanh(o, out=o)
        h[:n] = o
    return out, h, None, saved


_ONES = {}


def _column_sums(a):
    """``a.sum(0)`` as one BLAS matrix-vector product (numpy's axis-0 sum is several times slower)."""
    ones = _ONES.get(a.dtype)
    if ones is None or ones.shape[0] < a.shape[0]:
        ones = _ONES[a.dtype] = np.ones(max(a.shape[0], 256), a.dtype)
    return ones[: a.shape[0]] @ a


def _backward(ctx, g_out, g_h, g_c):
    """The cotangents of ``(data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr)`` as numpy arrays (BPTT in
    kernels/rnn.py, then one GEMM per weight over all steps)."""
    mode, offsets, batch_sizes, reverse = ctx.mode, ctx.offsets, ctx.batch_sizes, ctx.reverse
    data, w_ih, h0, c0, w_hh, w_hr = ctx.arrays
    s, out = ctx.saved, ctx.out
    dt = out.dtype
    g_out = np.ascontiguousarray(g_out, dtype=dt)
    dh = np.array(g_h, dtype=dt, order="C")
    n_rows = out.shape[0]
    hprev = np.empty_like(out)
    krnn.gather_prev(out, h0, offsets, batch_sizes, reverse, hprev)
    d_c0 = d_w_hr = None
    dg = np.empty((n_rows, w_hh.shape[0]), dt)  # the cotangent of the hidden side's gates
    dx = dg  # and of the input side's (they differ in GRU's n gate)
    if mode == "LSTM":
        dc = np.array(g_c, dtype=dt, order="C")
        dh_rows = np.empty_like(out)
        proj = w_hr is not None
        w_hr_c = w_hr if proj else np.empty((1, 1), dt)
        krnn.lstm_backward(
            s["act"], s["c"], s["tc"], c0, w_hh, w_hr_c, proj, g_out, offsets, batch_sizes, reverse, dh, dc, dg, dh_rows
        )
        d_c0 = dc
        if proj:
            d_w_hr = dh_rows.T @ s["hpre"]
    elif mode == "GRU":
        dx = np.empty_like(dg)
        krnn.gru_backward(s["act"], hprev, w_hh, g_out, offsets, batch_sizes, reverse, dh, dx, dg)
    else:
        krnn.rnn_backward(out, mode == "RNN_RELU", w_hh, g_out, offsets, batch_sizes, reverse, dh, dg)
    needs = ctx.needs_input_grad
    d_data = dx @ w_ih if needs[0] else None
    d_w_ih = dx.T @ data if needs[1] else None
    d_b_ih = _column_sums(dx) if needs[2] else None
    d_w_hh = dg.T @ hprev if needs[5] else None
    d_b_hh = (d_b_ih if dx is dg and d_b_ih is not None else _column_sums(dg)) if needs[6] else None
    return d_data, d_w_ih, d_b_ih, dh, d_c0, d_w_hh, d_b_hh, d_w_hr


def _array(t, dt):
    return None if t is None else np.ascontiguousarray(t._data, dtype=dt)


class _Recurrent(Function):
    """One layer and direction as one primitive: inputs ``(data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr)``
    (``c0``, the biases and ``w_hr`` may be None), outputs ``(output data, h_n[, c_n])``. Its first-order
    backward is numpy + kernels/rnn.py; with grad mode on (``create_graph=True``) or a dual cotangent or input
    (forward over reverse), it differentiates ``scan`` instead, which is differentiable again."""

    _backward_carries_tangents = True  # (the differentiable form is taken whenever a tangent is around)
    _backward_borrows_cotangent = True  # (backward reads the cotangents and returns new arrays)

    @staticmethod
    def forward(ctx, data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr, mode, offsets, batch_sizes, reverse):
        dt = data.dtype
        arrays = [_array(a, dt) for a in (data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr)]
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        batch_sizes = np.ascontiguousarray(batch_sizes, dtype=np.int64)
        # exp of very negative pre-activations: inf, whose sigmoid is 0; BLAS on the calling thread: a loop of
        # small GEMMs pays a thread wake-up per call otherwise (ad/blas_threads.py)
        with np.errstate(over="ignore"), blas_threads.single_threaded():
            out, h_n, c_n, saved = _forward(mode, *arrays, offsets, batch_sizes, reverse)
        ctx.save_for_backward(data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr)
        ctx.mode, ctx.offsets, ctx.batch_sizes, ctx.reverse = mode, offsets, batch_sizes, reverse
        ctx.arrays = [arrays[k] for k in (0, 1, 3, 4, 5, 7)]  # data, w_ih, h0, c0, w_hh, w_hr
        ctx.out, ctx.saved = out, saved
        res = (wrap_array(out), wrap_array(h_n))
        return res + (wrap_array(c_n),) if mode == "LSTM" else res

    @staticmethod
    def backward(ctx, g_out, g_h, g_c=None):
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad[:8]
        grads = [g_out, g_h] + ([g_c] if ctx.mode == "LSTM" else [])
        if is_grad_enabled() or (_fw.levels and visible_levels_of(*grads, *[a for a in inputs if a is not None])):
            return _differentiable_backward(ctx, inputs, needs, grads) + (None,) * 4
        with blas_threads.single_threaded():  # (as in forward)
            res = _backward(ctx, g_out._data, g_h._data, None if g_c is None else g_c._data)
        return tuple(wrap_array(r) if r is not None and need else None for r, need in zip(res, needs)) + (None,) * 4


def _differentiable_backward(ctx, inputs, needs, grads):
    """The cotangents of the inputs as ad ops: ``scan`` recomputed from the saved inputs, differentiated with
    ``create_graph=True`` (so the result is differentiable again and carries tangents)."""
    from ...autograd import grad

    data, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr = inputs
    with enable_grad():
        xw = linear(data, w_ih, b_ih)
        out, h_n, c_n = scan(ctx.mode, xw, ctx.offsets, ctx.batch_sizes, h0, c0, w_hh, b_hh, w_hr, ctx.reverse)
    outs = [out, h_n] + ([c_n] if ctx.mode == "LSTM" else [])
    wanted = [a for a, need in zip(inputs, needs) if need]
    found = iter(grad(outs, wanted, grads, create_graph=True, allow_unused=True))
    return tuple(next(found) if need else None for need in needs)
