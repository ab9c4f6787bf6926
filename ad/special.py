"""``ad.special``: torch.special's namespace.

Each name is either the existing ``ad`` op under torch.special's name (``gammaln`` is ``ad.lgamma``, ``expit``
is ``ad.sigmoid``, ``psi`` is ``ad.digamma``: the same function object, one declaration per op) or a function of
``ad/special_functions.py`` (the Bessel functions, ``ndtr``, ``ndtri``, ``log_ndtr``, ``erfcx``, ``entr``,
``xlog1py``, ``zeta``, ``gammainc`` / ``gammaincc``, the orthogonal polynomials), whose header says how each
is differentiated. Derivatives exist exactly where torch has them: the Bessel functions (but ``i0``, ``i0e``,
``i1``, ``i1e``), ``airy_ai`` and the polynomials give results that do not require grad; ``zeta``'s and
``gammainc``'s first argument raise NotImplementedError when their gradient is needed.

Example:
    >>> x = ad.tensor([0.5, 1.0], requires_grad=True)
    >>> ad.special.i0e(x).sum().backward()      # x.grad == i1e(x) - sgn(x) i0e(x)
"""

# (imported by ad/__init__.py last: the public functions below are the package's, out= wrappers included)
from . import erf, expm1, log1p, logsumexp  # noqa: F401
from . import log_softmax as _log_softmax
from . import sigmoid as expit
from . import softmax as _softmax
from .ops.pointwise_ops import erfc, erfinv, exp2, logit, round, sinc, xlogy  # noqa: A004 - torch's names
from .reductions import digamma, polygamma
from .reductions import lgamma as gammaln
from .special_functions import (
    airy_ai,
    bessel_j0,
    bessel_j1,
    bessel_y0,
    bessel_y1,
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    entr,
    erfcx,
    hermite_polynomial_h,
    hermite_polynomial_he,
    i0,
    i0e,
    i1,
    i1e,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    log_ndtr,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    ndtr,
    ndtri,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
    spherical_bessel_j0,
    xlog1py,
    zeta,
)
from .special_functions import igamma as gammainc
from .special_functions import igammac as gammaincc
from .tensor_extras import mvlgamma as multigammaln

psi = digamma

__all__ = [
    "airy_ai",
    "bessel_j0",
    "bessel_j1",
    "bessel_y0",
    "bessel_y1",
    "chebyshev_polynomial_t",
    "chebyshev_polynomial_u",
    "chebyshev_polynomial_v",
    "chebyshev_polynomial_w",
    "digamma",
    "entr",
    "erf",
    "erfc",
    "erfcx",
    "erfinv",
    "exp2",
    "expit",
    "expm1",
    "gammainc",
    "gammaincc",
    "gammaln",
    "hermite_polynomial_h",
    "hermite_polynomial_he",
    "i0",
    "i0e",
    "i1",
    "i1e",
    "laguerre_polynomial_l",
    "legendre_polynomial_p",
    "log1p",
    "log_ndtr",
    "log_softmax",
    "logit",
    "logsumexp",
    "modified_bessel_i0",
    "modified_bessel_i1",
    "modified_bessel_k0",
    "modified_bessel_k1",
    "multigammaln",
    "ndtr",
    "ndtri",
    "polygamma",
    "psi",
    "round",
    "scaled_modified_bessel_k0",
    "scaled_modified_bessel_k1",
    "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w",
    "sinc",
    "softmax",
    "spherical_bessel_j0",
    "xlog1py",
    "xlogy",
    "zeta",
]


def softmax(input, dim, dtype=None):  # noqa: A002 - torch's names
    """``ad.softmax(input, dim, dtype=dtype)`` (torch.special's signature: ``dim`` required, no ``out=``)."""
    return _softmax(input, dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None):  # noqa: A002 - (torch: dtype keyword-only here, not in softmax)
    """``ad.log_softmax(input, dim, dtype=dtype)`` (torch.special's signature: ``dim`` required, no ``out=``)."""
    return _log_softmax(input, dim, dtype=dtype)
