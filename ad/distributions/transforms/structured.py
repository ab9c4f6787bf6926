"""Transforms onto structured sets, with vector or matrix events: the simplex (``SoftmaxTransform``, not
bijective; ``StickBreakingTransform``), lower Cholesky factors, positive definite matrices and Cholesky factors of
correlation matrices (``CorrCholeskyTransform``)."""

import math

import numpy as np

import ad

from .. import constraints
from ..constraints import _lower_mask
from .base import Transform
from .elementwise import _clipped_sigmoid


class SoftmaxTransform(Transform):
    """x -> softmax(x) over the last dim (not injective: the inverse is log y, one of the preimages)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def __eq__(self, other):
        return isinstance(other, SoftmaxTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        e = (x - x.max(-1, keepdim=True)[0]).exp()
        return e / e.sum(-1, keepdim=True)

    def _inverse(self, y):
        return y.log()

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape

    inverse_shape = forward_shape


class StickBreakingTransform(Transform):
    """R^(K-1) -> the K-simplex by breaking a stick: the i-th coordinate takes the fraction sigmoid(x_i - log(K-1-i))
    of what is left (the shifts make x = 0 map to the uniform vector). Bijective; adds one to the last dim."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def __eq__(self, other):
        return isinstance(other, StickBreakingTransform)

    __hash__ = object.__hash__

    @staticmethod
    def _log_offsets(k, like):
        # log(k), log(k-1), ..., log(1) for the k inputs
        return ad.tensor(np.log(np.arange(k, 0, -1, dtype=np.float64)), dtype=like.dtype, device=like.device)

    def _call(self, x):
        fractions = _clipped_sigmoid(x - self._log_offsets(x.shape[-1], x))
        left = (1 - fractions).cumprod(-1)  # stick left after each break
        pieces = ad.nn.functional.pad(fractions, (0, 1), value=1.0)
        remaining = ad.nn.functional.pad(left, (1, 0), value=1.0)
        return pieces * remaining

    def _inverse(self, y):
        head = y[..., :-1]
        left = (1 - head.cumsum(-1)).clamp(min=float(np.finfo(y._data.dtype).tiny))
        return head.log() - left.log() + self._log_offsets(head.shape[-1], y)

    def log_abs_det_jacobian(self, x, y):
        # triangular Jacobian: prod_i sigmoid'(z_i) * (stick left before i) = prod_i y_i (1 - sigmoid(z_i))
        z = x - self._log_offsets(x.shape[-1], x)
        return (-z + ad.nn.functional.logsigmoid(z) + y[..., :-1].log()).sum(-1)

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class LowerCholeskyTransform(Transform):
    """A square matrix -> a lower-triangular one with positive diagonal: the strict lower part kept, the diagonal
    exponentiated."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def __eq__(self, other):
        return isinstance(other, LowerCholeskyTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x * _lower_mask(x, -1) + ad.diag_embed(x.diagonal(dim1=-2, dim2=-1).exp())

    def _inverse(self, y):
        return y * _lower_mask(y, -1) + ad.diag_embed(y.diagonal(dim1=-2, dim2=-1).log())


class PositiveDefiniteTransform(Transform):
    """A square matrix -> L L^T with L its LowerCholeskyTransform: a positive definite matrix."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def __eq__(self, other):
        return isinstance(other, PositiveDefiniteTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        lower = LowerCholeskyTransform()(x)
        return lower @ lower.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(ad.linalg.cholesky(y))


class CorrCholeskyTransform(Transform):
    """R^(d(d-1)/2) -> Cholesky factors of d x d correlation matrices. x is read row by row into the strict lower
    triangle; r = tanh(x) are partial correlations, and row i becomes w_ij = r_ij sqrt(prod_{k<j} (1 - r_ik^2)),
    w_ii = sqrt(prod_{k<i} (1 - r_ik^2)): a unit row with positive diagonal (stick breaking on the squared norm).
    Its Jacobian is triangular: log|det| = sum_{i>j} [log(1 - r_ij^2) + log(prod_{k<j} (1 - r_ik^2)) / 2]."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def __eq__(self, other):
        return isinstance(other, CorrCholeskyTransform)

    __hash__ = object.__hash__

    @staticmethod
    def _size(n):
        d = int(round((1 + math.sqrt(1 + 8 * n)) / 2))
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattend lower-diagonal number")
        return d

    @staticmethod
    def _positions(d):
        """For each entry of a d x d matrix, 1 + its index in the row-major strict lower triangle (0: none)."""
        index = np.zeros((d, d), dtype=np.int64)
        rows, cols = np.tril_indices(d, -1)
        index[rows, cols] = np.arange(1, rows.size + 1)
        return index.ravel()

    def _partial_products(self, r):
        """prod_{k<j} (1 - r_ik^2) for every (i, j): an exclusive cumulative product along rows."""
        kept = (1 - r.pow(2)).cumprod(-1)
        return ad.nn.functional.pad(kept[..., :-1], (1, 0), value=1.0)

    def _call(self, x):
        d = self._size(x.shape[-1])
        r = ad.tanh(x)
        padded = ad.nn.functional.pad(r, (1, 0), value=0.0)
        index = ad.tensor(self._positions(d), device=x.device)
        r = padded.index_select(-1, index).reshape(tuple(x.shape[:-1]) + (d, d))
        stick = self._partial_products(r).sqrt()
        eye = ad.eye(d, dtype=x.dtype, device=x.device)
        return (r + eye) * stick

    def _inverse(self, y):
        d = y.shape[-1]
        left = 1 - ad.nn.functional.pad(y.pow(2).cumsum(-1)[..., :-1], (1, 0), value=0.0)  # 1 - sum_{k<j} w_ik^2
        eps = float(np.finfo(y._data.dtype).eps)
        r = (y / left.clamp(min=float(np.finfo(y._data.dtype).tiny)).sqrt()).clamp(min=-1 + eps, max=1 - eps)
        rows, cols = np.tril_indices(d, -1)
        flat = ad.tensor(rows * d + cols, device=y.device)
        return ad.atanh(r.reshape(tuple(y.shape[:-2]) + (d * d,)).index_select(-1, flat))

    def log_abs_det_jacobian(self, x, y):
        d = y.shape[-1]
        left = 1 - ad.nn.functional.pad(y.pow(2).cumsum(-1)[..., :-1], (1, 0), value=0.0)
        rows, cols = np.tril_indices(d, -1)
        flat = ad.tensor(rows * d + cols, device=y.device)
        stick_term = 0.5 * left.reshape(tuple(y.shape[:-2]) + (d * d,)).index_select(-1, flat).log().sum(-1)
        tanh_term = (2.0 * (math.log(2.0) - x - ad.nn.functional.softplus(-2.0 * x))).sum(-1)
        return stick_term + tanh_term

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        d = self._size(shape[-1])
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        if len(shape) < 2:
            raise ValueError("Too few dimensions on input")
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        return tuple(shape[:-2]) + (shape[-1] * (shape[-1] - 1) // 2,)
