"""Transforms: invertible (or at least computable) maps between constrained sets, with the log of the absolute
Jacobian determinant that a change of variables needs (torch.distributions.transforms' names and API).

A transform ``t`` maps ``t.domain`` into ``t.codomain``; ``t(x)`` is the forward map, ``t.inv`` the inverse
transform (``t.inv(y)``), ``t.log_abs_det_jacobian(x, y)`` is log |dy/dx| summed over the transform's event dims
(its shape is ``x``'s less ``domain.event_dim`` dims), ``t.sign`` the sign of dy/dx for monotone elementwise maps.
``forward_shape``/``inverse_shape`` tell how a shape changes (StickBreakingTransform adds one to the last dim).
With ``cache_size=1`` a transform remembers its last (x, y) pair so that ``t.inv(t(x))`` returns ``x`` itself.

Where to start reading: ``base.py`` (the ``Transform`` protocol and the inverse), then by concern:
``elementwise.py`` (monotone maps of the real line: exp, power, sigmoid, softplus, tanh, abs, affine, cdf),
``structured.py`` (onto the simplex and onto matrices: softmax, stick breaking, Cholesky factors, positive definite
and correlation matrices), ``composition.py`` (transforms of transforms: compose, independent, reshape, cat, stack).
"""

from .base import Transform
from .base import _InverseTransform as _InverseTransform  # (importable from here, as from the former module)
from .composition import (
    CatTransform,
    ComposeTransform,
    IndependentTransform,
    ReshapeTransform,
    StackTransform,
    identity_transform,
)
from .elementwise import (
    AbsTransform,
    AffineTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    PowerTransform,
    SigmoidTransform,
    SoftplusTransform,
    TanhTransform,
)
from .structured import (
    CorrCholeskyTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    SoftmaxTransform,
    StickBreakingTransform,
)

__all__ = [
    "AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform", "CorrCholeskyTransform",
    "CumulativeDistributionTransform", "ExpTransform", "IndependentTransform", "LowerCholeskyTransform",
    "PositiveDefiniteTransform", "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
    "SoftplusTransform", "StackTransform", "StickBreakingTransform", "TanhTransform", "Transform",
    "identity_transform",
]  # fmt: skip
