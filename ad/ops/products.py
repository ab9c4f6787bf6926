"""Products and contractions: bmm, mv, vdot, inner, addmm/addmv/addbmm/baddbmm, einsum, tensordot, kron,
cross, chain_matmul, and torch's top-level linear-algebra aliases (det, logdet, inverse, ...).

All are composites of ``matmul`` (the compiled MATMUL row), strided gathers (``permute``, diagonals) and
sums, so they need no rules of their own. ``einsum`` parses the equation into per-operand label lists,
takes repeated labels as one strided gather (diagonals, traces), sums labels used by one operand only, and
contracts the operands pairwise left to right, each pair as one batched matmul:
``(batch, free_a, contracted) @ (batch, contracted, free_b)``.
"""

import collections
import math
import numbers
import warnings

import numpy as np

from .. import ops
from ..tensor import Tensor, _wrap_dim, wrap_array
from .linalg import _c_strides
from .out import write_result

# ---------------------------------------------------------------------------------------------------------
# matrix-vector and batched products


def _is_tensor(x, fn, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{what}' must be Tensor, not {type(x).__name__}")
    return x


def bmm(input, mat2, *, out=None):
    """Batched matrix product of two 3-D tensors (no broadcasting)."""
    _is_tensor(input, "bmm", "input")
    _is_tensor(mat2, "bmm", "mat2")
    if input.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if mat2.shape[0] != input.shape[0] or mat2.shape[1] != input.shape[2]:
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{input.shape[0]}, {input.shape[2]}] "
            f"but got: [{mat2.shape[0]}, {mat2.shape[1]}]."
        )
    return write_result("bmm", ops.matmul(input, mat2), out, same_dtype=True)


def mv(input, vec, *, out=None):
    _is_tensor(input, "mv", "input")
    _is_tensor(vec, "mv", "vec")
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(
            f"size mismatch, got input ({input.shape[0]}), mat ({input.shape[0]}x{input.shape[1]}), "
            f"vec ({vec.shape[0]})"
        )
    return write_result("mv", ops.matmul(input, vec), out, same_dtype=True)


def vdot(input, other, *, out=None):
    """Dot product of two 1-D tensors (real: no conjugation)."""
    return write_result("vdot", ops.dot(input, other), out, same_dtype=True)


def inner(input, other, *, out=None):
    """Sum over the last dims of both (scalars multiply)."""
    _is_tensor(input, "inner", "input")
    _is_tensor(other, "inner", "other")
    if input.ndim == 0 or other.ndim == 0:
        return write_result("inner", input * other, out, same_dtype=True)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(
            f"inner() the last dimension must match on both input tensors but got shapes {list(input.shape)} "
            f"and {list(other.shape)}"
        )
    return write_result("inner", tensordot(input, other, ([input.ndim - 1], [other.ndim - 1])), out, same_dtype=True)


def _scaled_sum(input, product, beta, alpha):
    """``beta * input + alpha * product``; with ``beta == 0`` input is ignored (NaN and inf too), as torch."""
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        return scaled + ops.zeros_like(wrap_array(np.broadcast_to(input._data, scaled.shape)))
    return (input if beta == 1 else input * beta) + scaled


def _check_into(fn, input, shape):
    try:
        target = np.broadcast_shapes(tuple(input.shape), shape)
    except ValueError:
        target = None
    if target != tuple(shape):
        raise RuntimeError(
            f"The expanded size of the tensor ({shape[-1]}) must match the existing size ({input.shape[-1]}) at "
            f"non-singleton dimension {len(shape) - 1}.  Target sizes: {list(shape)}.  Tensor sizes: "
            f"{list(input.shape)}"
        )


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    """``beta * input + alpha * (mat1 @ mat2)``."""
    product = ops.mm(mat1, mat2)
    _check_into("addmm", input, product.shape)
    return write_result("addmm", _scaled_sum(input, product, beta, alpha), out, same_dtype=True)


def addmv(input, mat, vec, *, beta=1, alpha=1, out=None):
    """``beta * input + alpha * (mat @ vec)``."""
    product = mv(mat, vec)
    _check_into("addmv", input, product.shape)
    return write_result("addmv", _scaled_sum(input, product, beta, alpha), out, same_dtype=True)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    """``beta * input + alpha * bmm(batch1, batch2)``."""
    product = bmm(batch1, batch2)
    _check_into("baddbmm", input, product.shape)
    return write_result("baddbmm", _scaled_sum(input, product, beta, alpha), out, same_dtype=True)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    """``beta * input + alpha * sum_b batch1[b] @ batch2[b]``."""
    product = ops.sum(bmm(batch1, batch2), 0)
    _check_into("addbmm", input, product.shape)
    return write_result("addbmm", _scaled_sum(input, product, beta, alpha), out, same_dtype=True)


def chain_matmul(*matrices, out=None):
    """Deprecated in torch (warns): ``linalg.multi_dot`` of 2-D matrices."""
    from .. import linalg

    warnings.warn(
        "torch.chain_matmul is deprecated and will be removed in a future PyTorch release. Use "
        "torch.linalg.multi_dot instead, which accepts a list of two or more tensors rather than multiple "
        "parameters.",
        UserWarning,
        stacklevel=2,
    )
    if len(matrices) == 1:
        return write_result("chain_matmul", ops.clone(matrices[0]), out, same_dtype=True)
    for m in matrices:
        if m.ndim != 2:
            raise RuntimeError(f"Tensor dimension is {m.ndim}, expected 2 instead.")
    return linalg.multi_dot(matrices, out=out)


# ---------------------------------------------------------------------------------------------------------
# tensordot and kron


def _contract(a, la, b, lb, keep):
    """Contract ``a`` (labels ``la``) with ``b`` (labels ``lb``) as one batched matmul.

    Labels in both that are in ``keep`` are batch dims; labels in both that are not are summed; the others
    are free. Size-1 dims broadcast against the other operand's size. Returns the result and its labels
    (batch, free of a, free of b).
    """
    size = {}
    for t, ls in ((a, la), (b, lb)):
        for lbl, s in zip(ls, t.shape):
            seen = size.get(lbl)
            size[lbl] = s if seen is None or seen == 1 else seen  # a size-1 dim broadcasts (also against 0)
    both = [lbl for lbl in la if lbl in lb]
    batch = [lbl for lbl in both if lbl in keep]
    summed = [lbl for lbl in both if lbl not in keep]
    free_a = [lbl for lbl in la if lbl not in lb]
    free_b = [lbl for lbl in lb if lbl not in la]
    pa = [la.index(lbl) for lbl in batch + free_a + summed]
    pb = [lb.index(lbl) for lbl in batch + summed + free_b]
    a = ops.permute(a, pa) if pa != list(range(len(pa))) else a
    b = ops.permute(b, pb) if pb != list(range(len(pb))) else b
    want_a = (
        tuple(size[lbl] for lbl in batch)
        + tuple(a.shape[len(batch) : len(batch) + len(free_a)])
        + tuple(size[lbl] for lbl in summed)
    )
    want_b = tuple(size[lbl] for lbl in batch + summed) + tuple(b.shape[len(batch) + len(summed) :])
    if tuple(a.shape) != want_a:
        a = ops.expand(a, want_a)
    if tuple(b.shape) != want_b:
        b = ops.expand(b, want_b)
    B = [size[lbl] for lbl in batch]
    M = math.prod(a.shape[len(batch) : len(batch) + len(free_a)])
    K = math.prod(size[lbl] for lbl in summed)
    N = math.prod(b.shape[len(batch) + len(summed) :])
    r = ops.matmul(ops.reshape(a, tuple(B) + (M, K)), ops.reshape(b, tuple(B) + (K, N)))
    shape = (
        tuple(B) + tuple(a.shape[len(batch) : len(batch) + len(free_a)]) + tuple(b.shape[len(batch) + len(summed) :])
    )
    return ops.reshape(r, shape), batch + free_a + free_b


def tensordot(a, b, dims=2, out=None):
    """Sum over ``dims`` of ``a`` and ``b``: an int (a's last ``dims`` with b's first) or two dim lists."""
    _is_tensor(a, "tensordot", "a")
    _is_tensor(b, "tensordot", "b")
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, numbers.Integral):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > a.ndim or dims > b.ndim:
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        da = [k - dims for k in range(dims)]  # (torch names them negatively in its messages)
        db = list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, numbers.Integral) else list(da)
        db = [db] if isinstance(db, numbers.Integral) else list(db)
        if len(da) != len(db):
            raise RuntimeError("both dimension lists should have same length")
    given = (list(da), list(db))
    da = [_wrap_dim(d, a.ndim) for d in da]
    db = [_wrap_dim(d, b.ndim) for d in db]
    for x, y, gx, gy in zip(da, db, *given):
        if a.shape[x] != b.shape[y] and a.shape[x] != 1 and b.shape[y] != 1:
            raise RuntimeError(
                f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {gx} and second has "
                f"size {b.shape[y]} in dim {gy}"
            )
    la = [("a", k) for k in range(a.ndim)]
    lb = [("b", k) for k in range(b.ndim)]
    for x, y in zip(da, db):
        lb[y] = la[x]
    r, _ = _contract(a, la, b, lb, keep=())
    return write_result("tensordot", r, out, same_dtype=True)


def kron(input, other, *, out=None):
    """Kronecker product: ``out[i * other.shape + j] = input[i] * other[j]`` over every dim."""
    _is_tensor(input, "kron", "input")
    _is_tensor(other, "kron", "other")
    nd = max(input.ndim, other.ndim)
    a = ops.reshape(input, (1,) * (nd - input.ndim) + tuple(input.shape))
    b = ops.reshape(other, (1,) * (nd - other.ndim) + tuple(other.shape))
    sa = []
    sb = []
    for k in range(nd):
        sa += [a.shape[k], 1]
        sb += [1, b.shape[k]]
    r = ops.reshape(a, tuple(sa)) * ops.reshape(b, tuple(sb))
    return write_result("kron", ops.reshape(r, tuple(a.shape[k] * b.shape[k] for k in range(nd))), out)


# ---------------------------------------------------------------------------------------------------------
# cross product


def _component(x, dim, k):
    key = (slice(None),) * dim + (k,)
    return x[key]


def cross(input, other, dim=None, *, out=None, linalg=False):
    """3-vector cross product along ``dim``; torch.cross's ``dim=None`` takes the first dim of size 3 (and
    warns, as torch does); ``linalg.cross`` defaults to -1. Inputs broadcast."""
    _is_tensor(input, "cross", "input")
    _is_tensor(other, "cross", "other")
    if input.ndim != other.ndim:
        raise RuntimeError(
            f"linalg.cross: inputs must have the same number of dimensions. Got {input.ndim} and {other.ndim}"
        )
    shape = tuple(np.broadcast_shapes(tuple(input.shape), tuple(other.shape)))
    if dim is None:
        warnings.warn(
            "Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim explicitly "
            "or simply use torch.linalg.cross.\nThe default value of dim will change to agree with that of "
            "linalg.cross in a future release.",
            UserWarning,
            stacklevel=2,
        )
        found = [k for k, s in enumerate(shape) if s == 3]
        if not found:
            raise RuntimeError("no dimension of size 3 in input")
        dim = found[0]
    d = _wrap_dim(dim, len(shape))
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(
            f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[d]} and {other.shape[d]}"
        )
    a = input if tuple(input.shape) == shape else ops.expand(input, shape)
    b = other if tuple(other.shape) == shape else ops.expand(other, shape)
    a0, a1, a2 = (_component(a, d, k) for k in range(3))
    b0, b1, b2 = (_component(b, d, k) for k in range(3))
    r = ops.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)
    return r if linalg else write_result("cross", r, out, same_dtype=True)


# ---------------------------------------------------------------------------------------------------------
# einsum


def _parse_operand_labels(term, ndim, index, pos):
    """Labels of one operand's subscripts: letters, and ('...', k) for its ellipsis dims (right-aligned)."""
    labels = []
    ell = None
    i = 0
    while i < len(term):
        c = term[i]
        if term.startswith("...", i):
            if ell is not None:
                raise RuntimeError("einsum(): found '.' for operand {index} for which an ellipsis was already found")
            ell = len(labels)
            labels.append("...")
            i += 3
            continue
        if c == " ":
            i += 1
            continue
        if not c.isascii() or not c.isalpha():
            raise RuntimeError(
                f"einsum(): invalid subscript given at index {pos + i} in the equation string, subscripts must be "
                "in [a-zA-Z]"
            )
        labels.append(c)
        i += 1
    n_letters = len(labels) - (1 if ell is not None else 0)
    if ell is None:
        if n_letters != ndim:
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({n_letters}) does not match the number of "
                f"dimensions ({ndim}) for operand {index} and no ellipsis was given"
            )
        return labels, 0
    n_ell = ndim - n_letters
    if n_ell < 0:
        raise RuntimeError(
            f"einsum(): the number of subscripts in the equation ({n_letters}) is more than the number of "
            f"dimensions ({ndim}) for operand {index}"
        )
    # ellipsis dims are right-aligned across operands (numpy broadcasting): label them from the right
    ell_labels = [("...", n_ell - 1 - k) for k in range(n_ell)]
    return labels[:ell] + ell_labels + labels[ell + 1 :], n_ell


def _sublist_to_equation(args):
    """torch's sublist form ``einsum(op1, [0, 1], op2, [1, 2], [0, 2])`` as an equation and operands."""

    def letters(sub):
        out = ""
        for s in sub:
            if s is Ellipsis:
                out += "..."
            elif isinstance(s, numbers.Integral) and 0 <= s < 52:
                out += chr(ord("A") + s) if s < 26 else chr(ord("a") + s - 26)
            else:
                raise RuntimeError(f"einsum(): expected subscript to be within the range [0, 52) but got {s}")
        return out

    operands = list(args[0::2])
    subs = list(args[1::2])
    out_sub = None
    if len(args) % 2 == 1:
        out_sub = args[-1]
        operands = list(args[0:-1:2])
        subs = list(args[1:-1:2])
    eq = ",".join(letters(s) for s in subs)
    if out_sub is not None:
        eq += "->" + letters(out_sub)
    return eq, operands


def einsum(*args):
    """Einstein summation (``einsum("ij,jk->ik", a, b)``, a list of operands, or the sublist form).

    Supports ellipsis (broadcast batch dims), repeated subscripts within an operand (diagonals, traces),
    size-1 broadcasting, implicit output (the once-used subscripts, sorted). Contracts left to right, each
    pair as one batched matmul.
    """
    if not args:
        raise TypeError("einsum(): must specify the equation string and at least one operand")
    if isinstance(args[0], str):
        equation = args[0]
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    else:
        equation, operands = _sublist_to_equation(args)
    for t in operands:
        _is_tensor(t, "einsum", "operands")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    if len(terms) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    labels = []
    n_ell = 0
    pos = 0
    for i, (term, t) in enumerate(zip(terms, operands)):
        ls, ne = _parse_operand_labels(term, t.ndim, i, pos)
        pos += len(term) + 1
        labels.append(ls)
        n_ell = max(n_ell, ne)
    ell_out = [("...", n_ell - 1 - k) for k in range(n_ell)]
    if arrow:
        out_labels, _ = _parse_output(rhs, ell_out, pos + 1)
    else:
        counts = {}
        for ls in labels:
            for lbl in ls:
                if isinstance(lbl, str):
                    counts[lbl] = counts.get(lbl, 0) + 1
        out_labels = ell_out + sorted(lbl for lbl, c in counts.items() if c == 1)
    every = {lbl for ls in labels for lbl in ls}
    for lbl in out_labels:
        if lbl not in every and not isinstance(lbl, tuple):
            raise RuntimeError(
                f"einsum(): output subscript {lbl} does not appear in the equation for any input operand"
            )
    # sizes must agree or broadcast (1)
    size = {}
    for i, (ls, t) in enumerate(zip(labels, operands)):
        for lbl, s in zip(ls, t.shape):
            seen = size.get(lbl)
            if seen is not None and seen != s and seen != 1 and s != 1:
                name = lbl if isinstance(lbl, str) else "..."
                raise RuntimeError(
                    f"einsum(): subscript {name} has size {s} for operand {i} which does not broadcast with "
                    f"previously seen size {seen}"
                )
            size[lbl] = s if seen is None or seen == 1 else seen
    # one operand at a time: diagonals of repeated labels, then sums of labels nobody else needs
    work = []
    for i, (ls, t) in enumerate(zip(labels, operands)):
        t, ls = _take_diagonals(t, ls)
        needed = set(out_labels)
        for j, other in enumerate(labels):
            if j != i:
                needed.update(other)
        lonely = [k for k, lbl in enumerate(ls) if lbl not in needed]
        if lonely:
            t = ops.sum(t, tuple(lonely))
            ls = [lbl for k, lbl in enumerate(ls) if k not in lonely]
        work.append((t, ls))
    t, ls = work[0]
    for j in range(1, len(work)):
        b, lb = work[j]
        keep = set(out_labels)
        for _, later in work[j + 1 :]:
            keep.update(later)
        t, ls = _contract(t, ls, b, lb, keep)
    # the last operand: sum what is left over, broadcast size-1 output dims, order as the output
    extra = [k for k, lbl in enumerate(ls) if lbl not in out_labels]
    if extra:
        t = ops.sum(t, tuple(extra))
        ls = [lbl for k, lbl in enumerate(ls) if k not in extra]
    missing = [lbl for lbl in out_labels if lbl not in ls]  # ellipsis dims no operand has (shorter ellipses)
    for lbl in missing:
        t = ops.unsqueeze(t, 0)
        ls = [lbl] + ls
    perm = [ls.index(lbl) for lbl in out_labels]
    if perm != list(range(len(perm))):
        t = ops.permute(t, perm)
    want = tuple(size.get(lbl, 1) for lbl in out_labels)
    if tuple(t.shape) != want:
        t = ops.expand(t, want)
    return t


def _parse_output(rhs, ell_out, pos):
    out = []
    i = 0
    seen_ell = False
    while i < len(rhs):
        if rhs.startswith("...", i):
            if seen_ell:
                raise RuntimeError("einsum(): found '.' for output but an ellipsis (...) was already found")
            seen_ell = True
            out += ell_out
            i += 3
            continue
        c = rhs[i]
        if c == " ":
            i += 1
            continue
        if not c.isascii() or not c.isalpha():
            raise RuntimeError(
                f"einsum(): invalid subscript given at index {pos + i} in the equation string, subscripts must be "
                "in [a-zA-Z]"
            )
        if c in out:
            raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
        out.append(c)
        i += 1
    return out, seen_ell


def _take_diagonals(t, ls):
    """Merge the dims of repeated labels into one (their diagonal) with a single strided gather."""
    if len(set(ls)) == len(ls):
        return t, ls
    strides = _c_strides(t.shape)
    uniq = []
    new_strides = []
    shape = []
    for lbl, s, st in zip(ls, t.shape, strides):
        if lbl in uniq:
            k = uniq.index(lbl)
            new_strides[k] += st
            shape[k] = min(shape[k], s)
        else:
            uniq.append(lbl)
            new_strides.append(st)
            shape.append(s)
    return ops.gather_strided(t, tuple(shape), new_strides, 0), uniq


# ---------------------------------------------------------------------------------------------------------
# torch's top-level linear-algebra names


def det(input):
    from .. import linalg

    return linalg.det(input)


def slogdet(input):
    from .. import linalg

    r = linalg.slogdet(input)
    return type(r)(*r)


def logdet(input):
    from .. import linalg

    return linalg.logdet(input)


def inverse(input, *, out=None):
    from .. import linalg

    return linalg.inv(input, out=out)


def matrix_exp(input):
    from .. import linalg

    return linalg.matrix_exp(input)


def matrix_power(input, n):
    from .. import linalg

    return linalg.matrix_power(input, n)


def pinverse(input, rcond=1e-15):
    from .. import linalg

    return linalg.pinv(input, rtol=rcond)


def cholesky_solve(input, input2, upper=False, *, out=None):
    from .. import linalg

    return linalg.cholesky_solve(input, input2, upper, out=out)


def cholesky_inverse(input, upper=False, *, out=None):
    """``(L L^T)^{-1}`` from the Cholesky factor (``upper``: ``U^T U``)."""
    from .. import linalg

    n = input.shape[-1]
    eye = ops.expand(wrap_array(np.eye(n, dtype=input.dtype)), tuple(input.shape))
    return linalg.cholesky_solve(eye, input, upper, out=out)


def svd(input, some=True, compute_uv=True, *, out=None):
    """torch.svd (the older API): ``(U, S, V)`` with ``V`` not transposed; ``some``: reduced factors;
    without ``compute_uv``, U and V are zero matrices of shape (m, m) and (n, n)."""
    from .. import linalg

    u, s, vh = linalg.svd(input, full_matrices=not some)
    if not compute_uv:
        m, n = input.shape[-2:]
        batch = tuple(input.shape[:-2])
        u = wrap_array(np.zeros(batch + (m, m), input.dtype))
        v = wrap_array(np.zeros(batch + (n, n), input.dtype))
        return write_result("svd", _SvdOld(u, s, v), out, same_dtype=True)
    return write_result("svd", _SvdOld(u, s, ops.transpose(vh, -2, -1)), out, same_dtype=True)


def qr(input, some=True, *, out=None):
    """torch.qr (deprecated in torch, with a warning): ``linalg.qr`` with ``mode='reduced'`` if ``some`` else
    ``'complete'``."""
    from .. import linalg

    warnings.warn(
        "torch.qr is deprecated in favor of torch.linalg.qr and will be removed in a future PyTorch release.",
        UserWarning,
        stacklevel=2,
    )

    q, r = linalg.qr(input, mode="reduced" if some else "complete")
    return write_result("qr", _QrOld(q, r), out, same_dtype=True)


def cholesky(input, upper=False, *, out=None):
    """torch.cholesky (deprecated in torch, with a warning): ``linalg.cholesky``."""
    from .. import linalg

    warnings.warn(
        "torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be removed in a future PyTorch "
        "release.",
        UserWarning,
        stacklevel=2,
    )
    return linalg.cholesky(input, upper=upper, out=out)


_SvdOld = collections.namedtuple("svd", ["U", "S", "V"])
_QrOld = collections.namedtuple("qr", ["Q", "R"])
