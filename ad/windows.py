"""torch's window functions (``hann_window``, ``hamming_window``, ``blackman_window``, ``bartlett_window``,
``kaiser_window``): the window's samples computed in float64 with numpy and returned in ``dtype`` (default: ad's
default dtype). A periodic window (the default, for spectral analysis) is the symmetric window of length
``window_length + 1`` without its last sample. The sample formulas (``cosine_sum``, ``triangle``, ``kaiser``:
``f(n, N)`` over the sample indices ``n`` of a symmetric window of length ``N``) are shared with
``ad.signal.windows``.
"""

import numpy as np

from . import creation

__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window"]


def cosine_sum(n, N, a):
    """``sum_k (-1)^k a_k cos(2 pi k n / (N - 1))``: hann, hamming, blackman, nuttall and any general cosine."""
    return sum((-1) ** k * c * np.cos(2 * np.pi * k * n / (N - 1)) for k, c in enumerate(a))


def triangle(n, N):
    """Bartlett's triangle ``1 - |2 n / (N - 1) - 1|``."""
    return 1 - np.abs(2 * n / (N - 1) - 1)


def kaiser(n, N, beta):
    """``I0(beta sqrt(1 - (2 n / (N - 1) - 1)^2)) / I0(beta)``."""
    return np.i0(beta * np.sqrt(np.clip(1 - (2 * n / (N - 1) - 1) ** 2, 0, None))) / np.i0(beta)


def _window(name, window_length, periodic, dtype, device, requires_grad, samples):
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    dtype = creation._default_float if dtype is None else np.dtype(dtype)
    if dtype.kind != "f":
        raise RuntimeError(f"{name} expects floating point dtypes, got: {dtype}")
    return sampled_window(window_length, periodic, samples, dtype, device, requires_grad)


def sampled_window(length, periodic, samples, dtype, device, requires_grad):
    """``samples(n, N)`` over ``N = length`` points (``length + 1`` when ``periodic``), cut to ``length``; the
    windows of one or no points as torch's (torch's top-level windows and ``ad.signal.windows``)."""
    if length == 0:
        values = np.zeros(0)
    elif length == 1:
        values = np.ones(1)
    else:
        n = length + 1 if periodic else length
        values = samples(np.arange(n, dtype=np.float64), n)[:length]
    return creation._finish(values.astype(dtype), None, requires_grad, device)


def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, pin_memory=False,
                requires_grad=False):
    """``torch.hann_window``: ``0.5 - 0.5 cos(2 pi n / (N - 1))``.

    Example:
        >>> ad.hann_window(4, periodic=False)
        tensor([0.0000, 0.7500, 0.7500, 0.0000])
    """
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: cosine_sum(n, N, (0.5, 0.5)))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, layout=None, device=None,
                   pin_memory=False, requires_grad=False):
    """``torch.hamming_window``: ``alpha - beta cos(2 pi n / (N - 1))``."""
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: cosine_sum(n, N, (alpha, beta)))


def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, pin_memory=False,
                    requires_grad=False):
    """``torch.blackman_window``: ``0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))``."""
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: cosine_sum(n, N, (0.42, 0.5, 0.08)))


def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, pin_memory=False,
                    requires_grad=False):
    """``torch.bartlett_window``: the triangle ``1 - |2 n / (N - 1) - 1|``."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   triangle)


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None, device=None,
                  pin_memory=False, requires_grad=False):
    """``torch.kaiser_window``: ``I0(beta sqrt(1 - (2 n / (N - 1) - 1)^2)) / I0(beta)``."""
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: kaiser(n, N, beta))
