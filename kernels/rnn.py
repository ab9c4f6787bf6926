"""Backward through time of one recurrent layer (one direction), CPU ``@njit``: LSTM, GRU, Elman RNN.

Data layout (``ad/nn/functional/recurrent.py`` writes it in the forward): a sequence is packed time-major, step
``t`` in rows ``offsets[t]:offsets[t + 1]`` of every ``(N, ...)`` array, its ``batch_sizes[t]`` rows the
sequences still running (sorted by decreasing length, so they are the leading rows of the ``(B, ...)`` state).
A padded batch is the case of equal batch sizes. ``reverse`` layers ran their steps from the last to the first.

Saved per row (what the forward computed for that row at its step):
- LSTM: ``act`` ``(N, 4H)`` the gate activations ``i, f, g, o`` (torch's order; ``lstm_gates`` writes them),
  ``c`` ``(N, H)`` the new cell state, ``tc`` ``tanh(c)``;
- GRU: ``act`` ``(N, 4H)``: ``r, z, n`` and ``hn = h W_hn^T + b_hn`` (torch's order of the first three);
- RNN: ``out`` itself (``tanh`` or ``relu`` of the pre-activation).
``out`` ``(N, P)`` is the layer's output (the state after each step, projected for LSTM with ``proj_size``).

Each kernel runs the steps in the reverse of the forward's order, keeping the cotangent of the ``(B, P)``
state (and of the cell state) in ``dh`` (``dc``): rows that did not run at a step keep theirs, which is how
sequences that ended (or, in a reverse layer, had not started) pass through. It writes the cotangent of
every step's pre-activation gates ``dg`` (``(N, G)``, torch's order of the gates) and the state each
row started its step from, ``hprev``; the caller turns those into the weight gradients with one GEMM each
(``dg^T @ hprev``) instead of one small product per step. The per-step product ``dg_t @ W_hh`` (the state's
cotangent) is the only matrix product inside: ``np.dot`` on contiguous rows, BLAS.

Why compiled: the per-step gate derivatives are ~15 elementwise operations on (batch, hidden) blocks; as numpy
calls they cost more in call overhead than in arithmetic. No transcendental functions appear (every
derivative is written with the saved activations), so the loops vectorize without libm calls.
"""

import numpy as np
from numba import njit

# as cpu.KERNEL (not imported: a kernel and its callees stay in one module, see kernels/__init__.py); numpy's
# error model lets the divisions of the forward steps vectorize (no zero-division test per element)
_KERNEL = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_KERNEL)
def _prev_row(t, b, offsets, batch_sizes, reverse):
    """The row holding the state that row ``b`` of step ``t`` started from, or -1 for the initial state."""
    steps = batch_sizes.shape[0]
    p = t + 1 if reverse else t - 1
    if p < 0 or p >= steps or b >= batch_sizes[p]:
        return -1
    return offsets[p] + b


@njit(**_KERNEL)
def gather_prev(out, h0, offsets, batch_sizes, reverse, hprev):
    """``hprev[r]``: the state row ``r`` started its step from (a row of ``out``, or of ``h0``)."""
    steps = batch_sizes.shape[0]
    width = out.shape[1]
    for t in range(steps):
        for b in range(batch_sizes[t]):
            p = _prev_row(t, b, offsets, batch_sizes, reverse)
            r = offsets[t] + b
            if p < 0:
                for j in range(width):
                    hprev[r, j] = h0[b, j]
            else:
                for j in range(width):
                    hprev[r, j] = out[p, j]


@njit(**_KERNEL)
def lstm_backward(act, c, tc, c0, w_hh, w_hr, proj, g_out, offsets, batch_sizes, reverse, dh, dc, dg, dh_rows):
    """LSTM (``act``, ``dg`` and ``w_hh`` ``(4H, P)`` in torch's gate order ``i, f, g, o``).
    With ``proj``, ``w_hr`` ``(P, H)`` maps ``o * tanh(c)`` to the state, and ``dh_rows[r]`` receives the
    cotangent of the projected state of row ``r`` (for ``w_hr``'s gradient)."""
    steps = batch_sizes.shape[0]
    hid = c.shape[1]
    width = dh.shape[1]
    for k in range(steps):
        t = k if reverse else steps - 1 - k
        n = batch_sizes[t]
        r0 = offsets[t]
        for b in range(n):
            for j in range(width):
                dh_rows[r0 + b, j] = dh[b, j] + g_out[r0 + b, j]
        if proj:
            dhp = np.dot(dh_rows[r0 : r0 + n], w_hr)
        else:
            dhp = dh_rows[r0 : r0 + n]
        for b in range(n):
            r = r0 + b
            p = _prev_row(t, b, offsets, batch_sizes, reverse)
            for j in range(hid):
                i = act[r, j]
                f = act[r, hid + j]
                g = act[r, 2 * hid + j]
                o = act[r, 3 * hid + j]
                tcj = tc[r, j]
                d = dhp[b, j]
                dcj = dc[b, j] + d * o * (1.0 - tcj * tcj)
                cp = c0[b, j] if p < 0 else c[p, j]
                dg[r, j] = dcj * g * i * (1.0 - i)
                dg[r, hid + j] = dcj * cp * f * (1.0 - f)
                dg[r, 2 * hid + j] = dcj * i * (1.0 - g * g)
                dg[r, 3 * hid + j] = d * tcj * o * (1.0 - o)
                dc[b, j] = dcj * f
        dh[:n] = np.dot(dg[r0 : r0 + n], w_hh)


@njit(**_KERNEL)
def gru_backward(act, hprev, w_hh, g_out, offsets, batch_sizes, reverse, dh, dx, dg):
    """GRU: ``dx`` (cotangent of the input projection, gates ``r, z, n``) and ``dg`` (of ``h W_hh^T + b_hh``)
    differ in the ``n`` gate, where the hidden part is scaled by ``r``."""
    steps = batch_sizes.shape[0]
    hid = dh.shape[1]
    direct = np.empty_like(dh)
    for k in range(steps):
        t = k if reverse else steps - 1 - k
        n = batch_sizes[t]
        r0 = offsets[t]
        for b in range(n):
            r = r0 + b
            for j in range(hid):
                d = dh[b, j] + g_out[r, j]
                rg = act[r, j]
                z = act[r, hid + j]
                nn = act[r, 2 * hid + j]
                hn = act[r, 3 * hid + j]
                dn = d * (1.0 - z) * (1.0 - nn * nn)
                dr = dn * hn * rg * (1.0 - rg)
                dz = d * (hprev[r, j] - nn) * z * (1.0 - z)
                dx[r, j] = dr
                dx[r, hid + j] = dz
                dx[r, 2 * hid + j] = dn
                dg[r, j] = dr
                dg[r, hid + j] = dz
                dg[r, 2 * hid + j] = dn * rg
                direct[b, j] = d * z
        dh[:n] = np.dot(dg[r0 : r0 + n], w_hh)
        for b in range(n):
            for j in range(hid):
                dh[b, j] += direct[b, j]


@njit(**_KERNEL)
def rnn_backward(out, relu, w_hh, g_out, offsets, batch_sizes, reverse, dh, dg):
    """Elman RNN: ``out = tanh(pre)`` (or ``relu``, whose derivative is taken as torch's: ``out > 0``)."""
    steps = batch_sizes.shape[0]
    hid = dh.shape[1]
    for k in range(steps):
        t = k if reverse else steps - 1 - k
        n = batch_sizes[t]
        r0 = offsets[t]
        for b in range(n):
            r = r0 + b
            for j in range(hid):
                d = dh[b, j] + g_out[r, j]
                y = out[r, j]
                if relu:
                    dg[r, j] = d if y > 0 else 0.0
                else:
                    dg[r, j] = d * (1.0 - y * y)
        dh[:n] = np.dot(dg[r0 : r0 + n], w_hh)


# ---------------------------------------------------------------------------------------------------------
# forward steps: the arithmetic between numpy's (SIMD) exp and tanh passes, one call per block


@njit(**_KERNEL)
def lstm_preact(e, x):
    """``e = -(e + x)`` (``e = h W_hh^T``, ``x`` the input projection and biases: ``(n, 4H)``), doubled in
    the ``g`` gate: one exp of the block then gives every gate (``lstm_gates``)."""
    n, gates = e.shape
    hid = gates // 4
    for b in range(n):
        for j in range(gates):
            v = -(e[b, j] + x[b, j])
            e[b, j] = v + v if 2 * hid <= j < 3 * hid else v


@njit(**_KERNEL)
def lstm_gates(e, c, act, cs):
    """One LSTM step after ``e = exp(e)``: ``act`` = ``sigmoid`` of ``i, f, o`` (``1 / (1 + e)``) and
    ``tanh(g) = 2 / (1 + exp(-2 g)) - 1``; the cell state ``c[:n] = f * c + i * g``, also written to ``cs``."""
    n, gates = e.shape
    hid = gates // 4
    for b in range(n):
        for j in range(gates):
            v = 1.0 / (1.0 + e[b, j])
            act[b, j] = v + v - 1.0 if 2 * hid <= j < 3 * hid else v
        for j in range(hid):
            v = act[b, hid + j] * c[b, j] + act[b, j] * act[b, 2 * hid + j]
            c[b, j] = v
            cs[b, j] = v


@njit(**_KERNEL)
def lstm_output(act, tc, hpre, h, project):
    """``hpre = o * tanh(c)``, and the state ``h[:n] = hpre`` unless a projection follows (``project``)."""
    n, hid = tc.shape
    for b in range(n):
        for j in range(hid):
            v = act[b, 3 * hid + j] * tc[b, j]
            hpre[b, j] = v
            if not project:
                h[b, j] = v


@njit(**_KERNEL)
def gru_gates(g, x, b_hn, e, act):
    """One GRU step: ``g = h W_hh^T`` and ``x`` (input projection plus the r, z biases) ``(n, 3H)``; writes
    ``e = -(r, z pre-activations)`` ``(n, 2H)`` and ``hn = g_n + b_hn`` (``act[:, 3H:]``)."""
    n, gates = g.shape
    hid = gates // 3
    for b in range(n):
        for j in range(2 * hid):
            e[b, j] = -(g[b, j] + x[b, j])
        for j in range(hid):
            act[b, 3 * hid + j] = g[b, 2 * hid + j] + b_hn[j]


@njit(**_KERNEL)
def gru_candidate(e, x, act, npre):
    """After ``e = exp(e)``: ``r, z = 1 / (1 + e)`` into ``act``, and ``npre = x_n + r * hn``."""
    n = e.shape[0]
    hid = e.shape[1] // 2
    for b in range(n):
        for j in range(2 * hid):
            act[b, j] = 1.0 / (1.0 + e[b, j])
        for j in range(hid):
            npre[b, j] = x[b, 2 * hid + j] + act[b, j] * act[b, 3 * hid + j]


@njit(**_KERNEL)
def gru_output(nt, act, h, out):
    """After ``nt = tanh(npre)``: ``act``'s n gate, and ``h' = n + z * (h - n)`` into ``out`` and ``h[:n]``."""
    n, hid = nt.shape
    for b in range(n):
        for j in range(hid):
            v = nt[b, j]
            act[b, 2 * hid + j] = v
            o = v + act[b, hid + j] * (h[b, j] - v)
            out[b, j] = o
            h[b, j] = o
