"""torch's remaining top-level functions, as composites of ad ops (so they differentiate and run on every device):
the deprecated spellings torch keeps (``range``, ``ger``, ``frobenius_norm``, ``nuclear_norm``,
``triangular_solve``) and those it keeps only to raise (``solve``, ``lstsq``, ``eig``, ``matrix_rank``, ``symeig``),
finite differences (``gradient``), layout-aware creation (``empty_permuted``), fixed-size results
(``nonzero_static``), ``fill``, ``norm_except_dim``, ``constant_pad_nd``, ``convolution``, ``histogramdd`` and
torch's eager control flow (``cond``, ``while_loop``).
"""

import collections
import warnings

import numpy as np

from . import creation, ops
from .composites import outer
from .ops.out import with_out
from .tensor import Tensor

__all__ = [
    "cond", "constant_pad_nd", "convolution", "eig", "empty_permuted", "fill", "frobenius_norm", "ger", "gradient",
    "histogramdd", "lstsq", "matrix_rank", "nonzero_static", "norm_except_dim", "nuclear_norm", "range", "solve",
    "symeig", "triangular_solve", "vander", "while_loop",
]

_builtin_range = range


def _check(name, input, arg="input"):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position 1) must be Tensor, not {type(input).__name__}")


# --- deprecated spellings ----------------------------------------------------------------------------------------


@with_out
def range(start, end, step=1, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):  # noqa: A001
    """``torch.range`` (deprecated): ``start, start + step, ...`` up to and including ``end``, in the default
    floating dtype unless ``dtype``; warns as torch does (use ``ad.arange``, which excludes ``end``).

    Raises:
        RuntimeError: ``step`` is zero or has the wrong sign (torch's messages).

    Example:
        >>> ad.range(0, 3)  # warns
        tensor([0., 1., 2., 3.])
    """
    warnings.warn(
        "torch.range is deprecated and will be removed in a future release because its behavior is inconsistent "
        "with Python's range builtin. Instead, use torch.arange, which produces values in [start, end).",
        UserWarning,
        stacklevel=3,
    )
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    size = int(np.floor((end - start) / step)) + 1
    dtype = creation._default_float if dtype is None else np.dtype(dtype)
    values = (start + step * np.arange(size, dtype=np.float64)).astype(dtype)
    return creation._finish(values, None, requires_grad, device)


@with_out
def ger(input, vec2):
    """``torch.ger`` (deprecated alias of ``outer``): the outer product of two vectors."""
    _check("ger", input)
    return outer(input, vec2)


@with_out
def frobenius_norm(input, dim, keepdim=False):
    """``torch.frobenius_norm`` (deprecated; warns): ``linalg.vector_norm(input, 2, dim, keepdim)`` (``dim=()``:
    every element)."""
    from . import linalg

    _check("frobenius_norm", input)
    warnings.warn(
        "at::frobenius_norm is deprecated and it is just left for JIT compatibility. It will be removed in a future "
        "PyTorch release. Please use `linalg.vector_norm(A, 2., dim, keepdim)` instead",
        UserWarning,
        stacklevel=3,
    )
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    return linalg.vector_norm(input, 2.0, dims or None, keepdim)


@with_out
def nuclear_norm(input, dim=None, keepdim=False):
    """``torch.nuclear_norm`` (deprecated; warns): ``linalg.matrix_norm(input, 'nuc', dim, keepdim)``, over the
    two dims ``dim`` (default: a matrix's both). torch's overload ``nuclear_norm(input, keepdim)`` is accepted."""
    from . import linalg

    _check("nuclear_norm", input)
    if isinstance(dim, bool):  # nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    warnings.warn(
        "at::nuclear_norm is deprecated and it is just left for JIT compatibility. It will be removed in a future "
        "PyTorch release. Please use `linalg.matrix_norm(A, 'nuc', dim, keepdim)` instead",
        UserWarning,
        stacklevel=3,
    )
    if dim is None:
        if input.ndim != 2:
            raise RuntimeError(f"Expected a tensor with 2 dimensions, but got a tensor with {input.ndim} dimensions "
                               "instead.")
        dim = (0, 1)
    return linalg.matrix_norm(input, "nuc", tuple(dim), keepdim)


_TRIANGULAR_SOLVE_WARNING = (
    "torch.triangular_solve is deprecated in favor of torch.linalg.solve_triangularand will be removed in a future "
    "PyTorch release.\ntorch.linalg.solve_triangular has its arguments reversed and does not return a copy of one of "
    "the inputs.\nX = torch.triangular_solve(B, A).solution\nshould be replaced with\n"
    "X = torch.linalg.solve_triangular(A, B)."
)
TriangularSolve = collections.namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


@with_out
def triangular_solve(input, A, upper=True, transpose=False, unitriangular=False):
    """``torch.triangular_solve(b, A)`` (deprecated; warns): solves ``A X = b`` (``A^T X = b`` with
    ``transpose``) for triangular ``A``; returns ``(solution, cloned_coefficient)``."""
    from . import linalg

    _check("triangular_solve", input)
    warnings.warn(_TRIANGULAR_SOLVE_WARNING, UserWarning, stacklevel=3)
    coefficient = A.mT if transpose else A
    solution = linalg.solve_triangular(coefficient, input, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolve(solution, A.clone())


_REMOVED = "This function was deprecated since version 1.9 and is now removed."


def solve(input, A, *, out=None):
    """``torch.solve``: removed in torch; raises torch's RuntimeError (use ``ad.linalg.solve(A, B)``)."""
    raise RuntimeError(
        f"{_REMOVED} `torch.solve` is deprecated in favor of `torch.linalg.solve`. `torch.linalg.solve` has its "
        "arguments reversed and does not return the LU factorization.\n\nTo get the LU factorization see `torch.lu`, "
        "which can be used with `torch.lu_solve` or `torch.lu_unpack`.\nX = torch.solve(B, A).solution should be "
        "replaced with:\nX = torch.linalg.solve(A, B)"
    )


def lstsq(input, A, *, out=None):
    """``torch.lstsq``: removed in torch; raises torch's RuntimeError (use ``ad.linalg.lstsq(A, B)``)."""
    raise RuntimeError(
        f"{_REMOVED} `torch.lstsq` is deprecated in favor of `torch.linalg.lstsq`.\n`torch.linalg.lstsq` has "
        "reversed arguments and does not return the QR decomposition in the returned tuple (although it returns "
        "other information about the problem).\n\nTo get the QR decomposition consider using `torch.linalg.qr`.\n\n"
        "The returned solution in `torch.lstsq` stored the residuals of the solution in the last m - n columns of "
        "the returned value whenever m > n. In torch.linalg.lstsq, the residuals are in the field 'residuals' of "
        "the returned named tuple.\n\nThe unpacking of the solution, as in\nX, _ = torch.lstsq(B, A).solution"
        "[:A.size(1)]\nshould be replaced with:\nX = torch.linalg.lstsq(A, B).solution"
    )


def eig(self, eigenvectors=False, *, e=None, v=None):
    """``torch.eig``: removed in torch; raises torch's RuntimeError (ad has no complex ``linalg.eig``)."""
    raise RuntimeError(
        f"{_REMOVED} `torch.linalg.eig` returns complex tensors of dtype `cfloat` or `cdouble` rather than real "
        "tensors mimicking complex tensors.\n\nL, _ = torch.eig(A) should be replaced with:\nL_complex = "
        "torch.linalg.eigvals(A)\n\nand\n\nL, V = torch.eig(A, eigenvectors=True) should be replaced with:\n"
        "L_complex, V_complex = torch.linalg.eig(A)"
    )


def matrix_rank(input, tol=None, symmetric=False, *, out=None):
    """``torch.matrix_rank``: removed in torch; raises torch's RuntimeError (use ``ad.linalg.matrix_rank``)."""
    raise RuntimeError(
        f"{_REMOVED}\nPlease use the `torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was "
        "renamed in `torch.linalg.matrix_rank()` to 'hermitian'."
    )


def symeig(input, eigenvectors=False, upper=True, *, out=None):
    """``torch.symeig``: removed in torch; raises torch's RuntimeError (use ``ad.linalg.eigh``)."""
    raise RuntimeError(
        f"{_REMOVED} The default behavior has changed from using the upper triangular portion of the matrix by "
        "default to using the lower triangular portion.\n\nL, _ = torch.symeig(A, upper=upper) should be replaced "
        "with:\nL = torch.linalg.eigvalsh(A, UPLO='U' if upper else 'L')\n\nand\n\nL, V = torch.symeig(A, "
        "eigenvectors=True) should be replaced with:\nL, V = torch.linalg.eigh(A, UPLO='U' if upper else 'L')"
    )


# --- creation and small functions ----------------------------------------------------------------------------------


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, pin_memory=False,
                   requires_grad=False):
    """``torch.empty_permuted(size, physical_layout)``: an uninitialized tensor of logical shape ``size`` whose
    memory holds the dims in the order ``physical_layout`` (``(0, 2, 1)``: dim 1 is innermost).

    Raises:
        RuntimeError: ``physical_layout`` is not a permutation of the dims.

    Example:
        >>> ad.empty_permuted((2, 3, 4), (0, 2, 1)).stride()
        (12, 1, 3)
    """
    size, order = tuple(int(s) for s in size), tuple(int(d) for d in physical_layout)
    if sorted(order) != list(_builtin_range(len(size))):
        raise RuntimeError(
            f"Number of dimensions in size does not match the length of the physical_layout; or physical_layout is "
            f"not a permutation: got size {list(size)} and physical_layout {list(order)}"
        )
    inverse = np.argsort(order)
    dtype = creation._default_float if dtype is None else np.dtype(dtype)
    data = np.empty([size[d] for d in order], dtype).transpose(inverse)
    return creation._finish(data, None, requires_grad, device, constant=False)


@with_out
def nonzero_static(input, *, size, fill_value=-1):
    """``torch.nonzero_static(input, size=n)``: the indices of the nonzero elements as ``input.nonzero()``, cut or
    padded with ``fill_value`` to exactly ``size`` rows (an int64 tensor of shape ``(size, input.ndim)``).

    Raises:
        RuntimeError: ``size`` is negative.
    """
    _check("nonzero_static", input)
    if size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be an non-negative integer, but got {size}")
    found = np.argwhere(input.detach().cpu().numpy())[:size]
    rows = np.full((size, input.ndim), fill_value, np.int64)
    rows[: len(found)] = found
    return creation.tensor(rows, device=input.device)


def fill(input, value):
    """``torch.fill(input, value)``: a new tensor of ``input``'s shape and dtype filled with ``value`` (a number
    or a 0-dim tensor, through which the gradient flows; ``input`` gets a zero gradient, as torch's).

    Raises:
        RuntimeError: ``value`` is a tensor with dimensions (torch's message).
    """
    _check("fill", input)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions."
            )
        value = value.to(input.dtype)
    everywhere = creation.ones(input.shape, dtype=creation.bool, device=input.device)
    out = ops.where(everywhere, value, input)
    return out if out.dtype == input.dtype else out.to(input.dtype)


def norm_except_dim(v, pow=2, dim=0):  # noqa: A002 - torch's name
    """``torch.norm_except_dim(v, pow, dim)``: the ``pow``-norm over every dim but ``dim``, shaped to broadcast
    against ``v`` (size 1 except at ``dim``); ``dim=-1``: the norm of all of ``v`` (a 0-dim tensor). The weight
    norm of ``nn.utils.weight_norm``."""
    from . import linalg

    _check("norm_except_dim", v, "v")
    if dim == -1:
        return linalg.vector_norm(v, pow)
    if dim == 0:
        flat = v.reshape(v.shape[0], -1)
        return linalg.vector_norm(flat, pow, 1).reshape(v.shape[0], *([1] * (v.ndim - 1)))
    if dim == v.ndim - 1:
        flat = v.reshape(-1, v.shape[-1])
        return linalg.vector_norm(flat, pow, 0).reshape(*([1] * (v.ndim - 1)), v.shape[-1])
    return norm_except_dim(v.transpose(0, dim), pow, 0).transpose(0, dim)


def constant_pad_nd(input, pad, value=0):
    """``torch.constant_pad_nd(input, pad, value)``: ``F.pad(input, pad, "constant", value)`` (negative pads
    crop)."""
    from .nn import functional as F

    _check("constant_pad_nd", input)
    return F.pad(input, list(pad), "constant", value)


def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """``torch.convolution``: the 1-, 2- or 3-d convolution (``transposed``: the transposed one) that
    ``weight``'s dims select, as ``F.conv{n}d`` / ``F.conv_transpose{n}d``."""
    from .nn import functional as F

    _check("convolution", input)
    n = weight.ndim - 2
    if n not in (1, 2, 3):
        raise RuntimeError(f"convolution: expected a weight of 3, 4 or 5 dims, got {weight.ndim}")
    if transposed:
        conv = getattr(F, f"conv_transpose{n}d")
        return conv(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return getattr(F, f"conv{n}d")(input, weight, bias, stride, padding, dilation, groups)


def vander(x, N=None, increasing=False):
    """``torch.vander(x, N=None, increasing=False)``: the Vandermonde matrix of the 1-D ``x``, columns
    ``x ** (N-1), ..., x, 1`` (reversed with ``increasing``); ``N`` defaults to ``len(x)``: ``linalg.vander``'s
    powers (products of x, so it differentiates at ``x = 0`` too), flipped. Integer and bool inputs give int64.

    Raises:
        RuntimeError: ``x`` is not 1-D or ``N`` is negative (torch's messages).
    """
    _check("vander", x, "x")
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    if x.dtype.kind in "biu":
        x = x.to(creation.int64)
    if n == 0:
        return creation.ones((x.shape[0], 0), dtype=x.dtype, device=x.device)
    from .linalg import vander as increasing_powers

    result = increasing_powers(x, N=n)
    return result if increasing else result.flip(1)


# --- finite differences and histograms -----------------------------------------------------------------------------


def _slice(t, dim, start, stop):
    return t.narrow(dim, start, stop - start)


def _along(coefficients, dim, ndim):
    """A 1-D coefficient tensor shaped to broadcast along ``dim``."""
    shape = [1] * ndim
    shape[dim] = -1
    return coefficients.reshape(shape)


def _uniform_gradient(f, dim, h, edge_order):
    n = f.shape[dim]
    interior = (_slice(f, dim, 2, n) - _slice(f, dim, 0, n - 2)) / (2 * h)
    if edge_order == 1:
        first = (_slice(f, dim, 1, 2) - _slice(f, dim, 0, 1)) / h
        last = (_slice(f, dim, n - 1, n) - _slice(f, dim, n - 2, n - 1)) / h
    else:
        first = (-1.5 * _slice(f, dim, 0, 1) + 2 * _slice(f, dim, 1, 2) - 0.5 * _slice(f, dim, 2, 3)) / h
        last = (0.5 * _slice(f, dim, n - 3, n - 2) - 2 * _slice(f, dim, n - 2, n - 1)
                + 1.5 * _slice(f, dim, n - 1, n)) / h
    return ops.cat([first, interior, last], dim)


def _coordinate_gradient(f, dim, x, edge_order):
    """numpy's (and torch's) second-order accurate differences on the sample coordinates ``x``."""
    n, nd = f.shape[dim], f.ndim
    x = x.to(f.dtype) if f.dtype.kind == "f" else x
    dx = x[1:] - x[:-1]
    dx1, dx2 = dx[:-1], dx[1:]
    a = _along(-dx2 / (dx1 * (dx1 + dx2)), dim, nd)
    b = _along((dx2 - dx1) / (dx1 * dx2), dim, nd)
    c = _along(dx1 / (dx2 * (dx1 + dx2)), dim, nd)
    interior = a * _slice(f, dim, 0, n - 2) + b * _slice(f, dim, 1, n - 1) + c * _slice(f, dim, 2, n)
    if edge_order == 1:
        first = (_slice(f, dim, 1, 2) - _slice(f, dim, 0, 1)) / dx[0]
        last = (_slice(f, dim, n - 1, n) - _slice(f, dim, n - 2, n - 1)) / dx[-1]
    else:
        d1, d2 = dx[0], dx[1]
        first = (-(2.0 * d1 + d2) / (d1 * (d1 + d2)) * _slice(f, dim, 0, 1)
                 + (d1 + d2) / (d1 * d2) * _slice(f, dim, 1, 2)
                 - d1 / (d2 * (d1 + d2)) * _slice(f, dim, 2, 3))
        d1, d2 = dx[-2], dx[-1]
        last = (d2 / (d1 * (d1 + d2)) * _slice(f, dim, n - 3, n - 2)
                - (d2 + d1) / (d1 * d2) * _slice(f, dim, n - 2, n - 1)
                + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * _slice(f, dim, n - 1, n))
    return ops.cat([first, interior, last], dim)


def gradient(input, *, spacing=None, dim=None, edge_order=1):
    """``torch.gradient``: the derivative of the samples ``input`` along each dim in ``dim`` (default: all), by
    central differences inside and one-sided differences of order ``edge_order`` (1 or 2) at the ends, as
    ``numpy.gradient``. Differentiable in ``input`` (and in tensor ``spacing``).

    Args:
        spacing: a number (the step along every dim; default 1), a sequence of numbers (one step per dim), or a
            sequence of 1-D tensors (the sample coordinates along each dim).
        dim (int or sequence of ints, optional): the dims to differentiate along.
        edge_order (int): 1 or 2.

    Returns:
        a tuple with one tensor per dim.

    Raises:
        RuntimeError: ``edge_order`` is not 1 or 2, a dim has fewer than ``edge_order + 1`` samples, or the
            spacing does not match the dims (torch's messages).

    Example:
        >>> ad.gradient(ad.tensor([1.0, 4.0, 9.0, 16.0]))
        (tensor([3., 4., 6., 7.]),)
    """
    _check("gradient", input)
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if dim is None:
        dims = list(_builtin_range(input.ndim))
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
    dims = [d + input.ndim if d < 0 else d for d in dims]
    for d in dims:
        if input.shape[d] < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
    if spacing is None:
        spacing = 1
    if isinstance(spacing, (tuple, list)):
        if len(spacing) != len(dims):
            raise RuntimeError(
                f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing and dim arguments to "
                f"have the same length, but got a spacing argument of length {len(spacing)} and a dim argument of "
                f"length {len(dims)}."
            )
        steps = list(spacing)
    else:
        steps = [spacing] * len(dims)
    f = input if input.dtype.kind == "f" else input.to(creation._default_float)
    out = []
    for d, h in zip(dims, steps):
        if isinstance(h, Tensor) and h.ndim == 1:
            if h.shape[0] != input.shape[d]:
                raise RuntimeError(
                    f"torch.gradient expected each tensor to be on the same device and of the input's size along "
                    f"dim {d}, but got {h.shape[0]} coordinates for {input.shape[d]} samples"
                )
            out.append(_coordinate_gradient(f, d, h, edge_order))
        else:
            out.append(_uniform_gradient(f, d, h.item() if isinstance(h, Tensor) else h, edge_order))
    return tuple(out)


Histogramdd = collections.namedtuple("histogramdd", ["hist", "bin_edges"])


def histogramdd(input, bins, range=None, weight=None, density=False):  # noqa: A002 - torch's keyword
    """``torch.histogramdd``: the histogram of the points ``input[..., :D]`` in D dims (``numpy.histogramdd``).

    Args:
        input: a floating tensor whose last dim holds the D coordinates of each point.
        bins: an int (bins per dim), a sequence of D ints, or a sequence of D 1-D tensors of bin edges.
        range (sequence of 2*D floats, optional): ``(low_0, high_0, low_1, ...)``; default each dim's min/max.
        weight (Tensor, optional): a weight per point.
        density (bool): normalize to a probability density.

    Returns:
        ``(hist, bin_edges)``: the D-dim counts (in ``input``'s dtype) and a tuple of D edge tensors. Not
        differentiable (as torch's).
    """
    _check("histogramdd", input)
    if input.dtype.kind != "f":
        raise RuntimeError(f"torch.histogramdd: input tensor and bins tensors should have the same dtype, but got "
                           f"input {input.dtype}")
    points = input.detach().cpu().numpy()
    d = points.shape[-1]
    points = points.reshape(-1, d)
    if isinstance(bins, Tensor):
        bins = bins.tolist()
    if isinstance(bins, (tuple, list)):
        bins = [b.detach().cpu().numpy() if isinstance(b, Tensor) else int(b) for b in bins]
    ranges = None if range is None else [(range[2 * i], range[2 * i + 1]) for i in _builtin_range(d)]
    w = None if weight is None else weight.detach().cpu().numpy().reshape(-1)
    hist, edges = np.histogramdd(points, bins=bins, range=ranges, weights=w, density=density)
    dt, dev = input.dtype, input.device
    return Histogramdd(
        creation.tensor(hist.astype(dt), device=dev), tuple(creation.tensor(e.astype(dt), device=dev) for e in edges)
    )


# --- control flow (torch.cond, torch.while_loop, in eager mode) ----------------------------------------------------


def cond(pred, true_fn, false_fn, operands=()):
    """``torch.cond(pred, true_fn, false_fn, operands)``: ``true_fn(*operands)`` if ``pred`` else
    ``false_fn(*operands)``, run eagerly (as torch's eager mode: the branch runs as ordinary code, so it
    differentiates). ``pred`` is a bool or a one-element bool tensor.

    Raises:
        RuntimeError: ``pred`` is not a bool, or a tensor with more than one element.
    """
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got {pred}.")
        pred = bool(pred.item())
    elif not isinstance(pred, (bool, int, np.bool_)):
        raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got {pred}.")
    if not callable(true_fn) or not callable(false_fn):
        raise RuntimeError("Expect both branches to be callable.")
    if not isinstance(operands, (tuple, list)):
        raise RuntimeError(f"Expect operands to be a tuple of possibly nested dict/list/tuple that only consists of "
                           f"tensor leaves, but got {operands}.")
    return true_fn(*operands) if pred else false_fn(*operands)


def while_loop(cond_fn, body_fn, carried_inputs):
    """``torch.while_loop(cond_fn, body_fn, carried_inputs)``: ``while cond_fn(*carried): carried =
    body_fn(*carried)``, run eagerly; returns the final carried values as a tuple.

    Raises:
        RuntimeError: ``carried_inputs`` is not a tuple or list, or ``body_fn`` returns a different number of
            values.
    """
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError(f"carried_inputs must be a tuple or list, got {type(carried_inputs)}")
    carried = tuple(carried_inputs)
    while True:
        go = cond_fn(*carried)
        if isinstance(go, Tensor):
            if go.numel() != 1:
                raise RuntimeError(f"cond_fn must return a boolean scalar tensor or a boolean but got {go}")
            go = bool(go.item())
        if not go:
            return carried
        out = body_fn(*carried)
        out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(out) != len(carried):
            raise RuntimeError(
                f"body_fn should return the same number of elements as carried_inputs: got {len(out)}, expected "
                f"{len(carried)}"
            )
        carried = out



def bind():
    """The Tensor methods of this module's functions (and of ``geqrf``, ``ormqr``, ``is_inference``)."""
    from .linalg_factor import geqrf, ormqr
    from .runtime_flags import is_inference

    def nonzero_static_method(self, *, size, fill_value=-1):
        return nonzero_static(self, size=size, fill_value=fill_value)

    def triangular_solve_method(self, A, upper=True, transpose=False, unitriangular=False):
        return triangular_solve(self, A, upper, transpose, unitriangular)

    def geqrf_method(self):
        return geqrf(self)

    def ormqr_method(self, input2, input3, left=True, transpose=False):
        return ormqr(self, input2, input3, left, transpose)

    def is_inference_method(self):
        return is_inference(self)

    for name, fn in (("nonzero_static", nonzero_static_method), ("triangular_solve", triangular_solve_method),
                     ("geqrf", geqrf_method), ("ormqr", ormqr_method), ("is_inference", is_inference_method)):
        fn.__name__ = fn.__qualname__ = name
        fn.__doc__ = f"``Tensor.{name}``: ``ad.{name}(self, ...)``."
        setattr(Tensor, name, fn)
