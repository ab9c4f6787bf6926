"""``ad.signal.windows``: torch's window functions (``torch.signal.windows``): ``bartlett``, ``blackman``,
``cosine``, ``exponential``, ``gaussian``, ``general_cosine``, ``general_hamming``, ``hamming``, ``hann``,
``kaiser``, ``nuttall``.

Each takes the window length ``M`` and keyword-only ``sym`` (True: symmetric, for filter design; False: periodic,
for spectral analysis: the symmetric window of length ``M + 1`` without its last sample), ``dtype`` (float32 or
float64; default: ad's default dtype), ``device`` and ``requires_grad``. The samples are computed in float64 with
numpy (the formulas are shared with the top-level ``ad.hann_window`` family in ``ad/windows.py``) and returned in
``dtype``. Invalid arguments raise ``ValueError`` with torch's messages (which name ``general_cosine`` for the
windows torch builds on it).
"""

import numpy as np

from .. import creation
from ..windows import cosine_sum, sampled_window, triangle
from ..windows import kaiser as _kaiser_samples

__all__ = [
    "bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming", "hamming",
    "hann", "kaiser", "nuttall",
]


def _window(name, M, sym, dtype, device, requires_grad, samples):
    """Validate as torch does, then ``samples(n, N)`` over ``N = M`` (symmetric) or ``M + 1`` points, cut to
    ``M``."""
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)):
        raise TypeError(f"{name}(): argument 'M' must be int, not {type(M).__name__}")
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    dtype = creation._default_float if dtype is None else np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: ad.{dtype}")
    return sampled_window(M, not sym, samples, dtype, device, requires_grad)


def general_cosine(M, *, a, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """A sum of cosines: ``w[n] = sum_k (-1)^k a[k] cos(2 pi k n / (M - 1))``.

    Args:
        M (int): the window length. a (list or tuple of float): the coefficients. sym (bool): symmetric (default)
            or periodic.

    Raises:
        TypeError: ``a`` is not a list or tuple. ValueError: ``a`` is empty, ``M`` negative, ``dtype`` not float32
        or float64.

    Example:
        >>> ad.signal.windows.general_cosine(5, a=[0.5, 0.5])
        tensor([0.0000, 0.5000, 1.0000, 0.5000, 0.0000])
    """
    if not isinstance(a, (list, tuple)):
        raise TypeError("Coefficients must be a list/tuple")
    if not a:
        raise ValueError("Coefficients cannot be empty")
    coefficients = tuple(float(c) for c in a)
    return _window("general_cosine", M, sym, dtype, device, requires_grad,
                   lambda n, N: cosine_sum(n, N, coefficients))


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """``alpha - (1 - alpha) cos(2 pi n / (M - 1))`` (``general_cosine`` with ``a = [alpha, 1 - alpha]``)."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, device=device,
                          requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The Hann window ``0.5 - 0.5 cos(2 pi n / (M - 1))``.

    Example:
        >>> ad.signal.windows.hann(4, sym=False)
        tensor([0.0000, 0.5000, 1.0000, 0.5000])
    """
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, device=device, requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The Hamming window ``0.54 - 0.46 cos(2 pi n / (M - 1))``."""
    return general_hamming(M, sym=sym, dtype=dtype, device=device, requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The minimum 4-term Blackman-Harris window of Nuttall (``general_cosine`` with
    ``a = [0.3635819, 0.4891775, 0.1365995, 0.0106411]``)."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype, device=device,
                          requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The Blackman window ``0.42 - 0.5 cos(2 pi n / (M - 1)) + 0.08 cos(4 pi n / (M - 1))``."""
    return _window("blackman", M, sym, dtype, device, requires_grad, lambda n, N: cosine_sum(n, N, (0.42, 0.5, 0.08)))


def bartlett(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The triangular Bartlett window ``1 - |2 n / (M - 1) - 1|``."""
    return _window("bartlett", M, sym, dtype, device, requires_grad, triangle)


def cosine(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The cosine (sine) window ``sin(pi (n + 0.5) / M)``."""
    return _window("cosine", M, sym, dtype, device, requires_grad, lambda n, N: np.sin(np.pi * (n + 0.5) / N))


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The Gaussian window ``exp(-((n - (M - 1) / 2) / std)^2 / 2)``.

    Raises:
        ValueError: ``std`` is not positive (or as ``general_cosine``).
    """
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    return _window("gaussian", M, sym, dtype, device, requires_grad,
                   lambda n, N: np.exp(-0.5 * ((n - (N - 1) / 2) / std) ** 2))


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The exponential window ``exp(-|n - center| / tau)``, ``center`` defaulting to the window's middle (only a
    periodic window may move it).

    Raises:
        ValueError: ``center`` given with ``sym=True``, or ``tau`` not positive (or as ``general_cosine``).
    """
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    return _window("exponential", M, sym, dtype, device, requires_grad,
                   lambda n, N: np.exp(-np.abs(n - ((N - 1) / 2 if center is None else center)) / tau))


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The Kaiser window ``I0(beta sqrt(1 - (2 n / (M - 1) - 1)^2)) / I0(beta)``.

    Raises:
        ValueError: ``beta`` is negative (or as ``general_cosine``).
    """
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    return _window("kaiser", M, sym, dtype, device, requires_grad, lambda n, N: _kaiser_samples(n, N, beta))
