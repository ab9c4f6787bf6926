"""Normalization (batch, layer, group, instance norm) forward and backward (CPU, ``@njit``).

Data layout: every normalization is seen as ``x`` of shape ``(P, Q, R)``, C-contiguous, with one group of
statistics per ``q``, taken over the ``P * R`` elements ``x[:, q, :]``:

- batch_norm: ``(N, C, S)`` (``S`` the spatial size): one group per channel;
- instance_norm: ``(1, N * C, S)``; group_norm: ``(1, N * G, C / G * S)``; layer_norm: ``(1, M, K)``.

The affine parameters ``w2`` / ``b2`` are 2-D, ``(QW, R // RS)``: element ``x[p, q, r]`` is scaled by
``w2[q % QW, r // RS]`` (batch_norm: ``(C, 1)`` with ``RS = S``; instance_norm: ``(C, 1)``; group_norm:
``w.reshape(G, C / G)`` with ``RS = S``; layer_norm: ``(1, K)`` with ``RS = 1``). An absent parameter is
given as ones of the same shape, with its flag false. Statistics and parameter gradients accumulate in
float64 whatever the data's dtype, in ``LANES`` independent partial sums (without fastmath, one accumulator
is a chain of dependent adds that no vector unit can run; the order of every sum is fixed, so results are
reproducible). ``mean`` and ``rstd`` (``1 / sqrt(var + eps)``, biased variance) are saved per group by the
forward for the backward, which recomputes ``xhat`` from them rather than storing it.
"""

import numpy as np
from numba import njit

LANES = 8


@njit(cache=True)
def _moments(v, shift, a, b):
    """``a[k] += v[i] - shift``, ``b[k] += (v[i] - shift) ** 2`` over the 1-D ``v``, lane ``k = i % LANES``."""
    n = v.shape[0]
    m = n - n % LANES
    for i in range(0, m, LANES):
        for k in range(LANES):
            d = np.float64(v[i + k]) - shift
            a[k] += d
            b[k] += d * d
    for i in range(m, n):
        d = np.float64(v[i]) - shift
        a[0] += d
        b[0] += d * d


@njit(cache=True)
def _grad_moments(g, x, w, mu, inv, a, b):
    """``a[k] += g * w``, ``b[k] += g * w * xhat`` over the 1-D ``g``, ``x`` (``w`` a scalar)."""
    n = g.shape[0]
    m = n - n % LANES
    for i in range(0, m, LANES):
        for k in range(LANES):
            gv = np.float64(g[i + k]) * w
            a[k] += gv
            b[k] += gv * ((np.float64(x[i + k]) - mu) * inv)
    for i in range(m, n):
        gv = np.float64(g[i]) * w
        a[0] += gv
        b[0] += gv * ((np.float64(x[i]) - mu) * inv)


@njit(cache=True)
def norm_forward(x, w2, b2, rs, has_w, has_b, eps, out, mean, rstd):
    """``out = (x - mean) * rstd * w + b`` per group; ``mean``, ``rstd`` (length Q) written for backward."""
    p_, q_, r_ = x.shape
    qw = w2.shape[0]
    count = p_ * r_
    a = np.zeros(LANES)
    b = np.zeros(LANES)
    for q in range(q_):
        a[:] = 0.0
        b[:] = 0.0
        shift = np.float64(x[0, q, 0])  # one pass, shifted: no cancellation when |mean| >> std
        for p in range(p_):
            _moments(x[p, q], shift, a, b)
        m1 = a.sum() / count
        var = max(b.sum() / count - m1 * m1, 0.0)
        mu = shift + m1
        inv = 1.0 / np.sqrt(var + eps)
        mean[q] = mu
        rstd[q] = inv
        wq = q % qw
        for p in range(p_):
            xo = x[p, q]
            oo = out[p, q]
            if rs == 1:  # a parameter per element (layer_norm)
                for r in range(r_):
                    scale = inv * w2[wq, r] if has_w else inv
                    shifted = (np.float64(xo[r]) - mu) * scale
                    oo[r] = shifted + b2[wq, r] if has_b else shifted
            else:
                for j in range(r_ // rs):
                    scale = inv * w2[wq, j] if has_w else inv
                    offset = b2[wq, j] - mu * scale if has_b else -mu * scale
                    for r in range(j * rs, (j + 1) * rs):
                        oo[r] = np.float64(xo[r]) * scale + offset


@njit(cache=True)
def norm_backward(x, g, w2, rs, has_w, mean, rstd, need_x, gx, gw2, gb2):
    """The gradients of ``norm_forward``: ``gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))`` with
    ``gh = g * w`` (if ``need_x``), and ``gw2 += sum(g * xhat)``, ``gb2 += sum(g)`` per parameter element
    (float64, zeroed by the caller)."""
    p_, q_, r_ = x.shape
    qw = w2.shape[0]
    count = p_ * r_
    a = np.zeros(LANES)
    b = np.zeros(LANES)
    sg = np.zeros(LANES)
    sgx = np.zeros(LANES)
    for q in range(q_):
        mu = mean[q]
        inv = rstd[q]
        wq = q % qw
        a[:] = 0.0  # lanes of sum(gh)
        b[:] = 0.0  # lanes of sum(gh * xhat)
        for p in range(p_):
            xo = x[p, q]
            go = g[p, q]
            if rs == 1:  # per-element parameters: their sums need no lanes (one per element)
                for r in range(r_):
                    gv = np.float64(go[r])
                    xh = (np.float64(xo[r]) - mu) * inv
                    gb2[wq, r] += gv
                    gw2[wq, r] += gv * xh
                if has_w:
                    k = 0
                    for r in range(r_):
                        gh = np.float64(go[r]) * w2[wq, r]
                        a[k] += gh
                        b[k] += gh * ((np.float64(xo[r]) - mu) * inv)
                        k = k + 1 if k + 1 < LANES else 0
                else:
                    _grad_moments(go, xo, 1.0, mu, inv, a, b)
            else:
                for j in range(r_ // rs):
                    sg[:] = 0.0
                    sgx[:] = 0.0
                    _grad_moments(go[j * rs : (j + 1) * rs], xo[j * rs : (j + 1) * rs], 1.0, mu, inv, sg, sgx)
                    s0 = sg.sum()
                    s1 = sgx.sum()
                    gb2[wq, j] += s0
                    gw2[wq, j] += s1
                    wv = w2[wq, j] if has_w else 1.0
                    a[0] += s0 * wv
                    b[0] += s1 * wv
        if not need_x:
            continue
        ma = a.sum() / count
        mb = b.sum() / count
        for p in range(p_):
            xo = x[p, q]
            go = g[p, q]
            o = gx[p, q]
            if rs == 1:
                for r in range(r_):
                    wv = w2[wq, r] if has_w else 1.0
                    xh = (np.float64(xo[r]) - mu) * inv
                    o[r] = inv * (np.float64(go[r]) * wv - ma - xh * mb)
            else:
                for j in range(r_ // rs):
                    wv = w2[wq, j] if has_w else 1.0
                    for r in range(j * rs, (j + 1) * rs):
                        xh = (np.float64(xo[r]) - mu) * inv
                        o[r] = inv * (np.float64(go[r]) * wv - ma - xh * mb)
