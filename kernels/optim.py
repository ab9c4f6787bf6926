"""Fused optimizer updates: one compiled pass over a parameter's elements instead of a dozen numpy passes.

``adam_update`` applies torch's single-tensor Adam/AdamW step to flat, C-contiguous arrays of one dtype, in
the same order of operations as the numpy path of ``ad/optim/adam.py`` (which is torch's): every scalar
arrives already rounded to the arrays' dtype, so float32 arithmetic stays float32 as in numpy, and the
results agree bit for bit (a test checks it). No fastmath: nothing is reassociated or contracted.
"""

import numpy as np
from numba import njit

KERNEL = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**KERNEL)
def adam_update(p, g, m, v, vmax, maximize, wd, decay, decoupled, c1, beta2, c2, amsgrad, bc2_sqrt, eps, neg_step):
    """One Adam step over flat arrays. ``c1 = 1 - beta1``, ``c2 = 1 - beta2``, ``decay = 1 - lr * wd``,
    ``neg_step = -lr / (1 - beta1**t)``, ``bc2_sqrt = sqrt(1 - beta2**t)``; ``vmax`` is read only with
    ``amsgrad``."""
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if wd != 0:
            if decoupled:
                p[i] = p[i] * decay
            else:
                gi = gi + wd * p[i]
        mi = m[i] + c1 * (gi - m[i])
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + c2 * gi * gi
        v[i] = vi
        if amsgrad:
            mx = vmax[i]
            if vi > mx or vi != vi:  # np.maximum: NaN wins
                mx = vi
            vmax[i] = mx
            denom = np.sqrt(mx) / bc2_sqrt + eps
        else:
            denom = np.sqrt(vi) / bc2_sqrt + eps
        p[i] = p[i] + neg_step * mi / denom
