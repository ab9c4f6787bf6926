"""Tests written for session 20's mutation run over the compiled forward over reverse (``ad/compile_dual.py``;
tests/mutation/SURVIVORS.md): Hessian-vector products replayed by ``ad.compile`` against the same step run
eagerly and against torch's forward over reverse, on graphs that reach the replay's less common paths (several
dual tensors and gradients, big rows around small ones, a dual tensor made after a big row, the matrix-vector
case of the big rows' tangents). They assert behaviour (replayed == eager == torch), not the module's internals."""

import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwd
from ad.compile_program import Program

torch = pytest.importorskip("torch")
import torch.autograd.forward_ad as tfwd  # noqa: E402

N = 130  # a square matrix of this side has over tape.BIG_ROW elements: a matmul reading it is a big (Python) row


def _cosines(shape, phase):
    return np.cos(np.arange(int(np.prod(shape))) * 0.7 + phase).reshape(shape) / (N if len(shape) == 2 else 1)


def _flat(M, fw, *grads):
    """The gradients, then their tangents (torch's as numpy arrays)."""
    pairs = [fw.unpack_dual(g) for g in grads]
    out = [p for p, _ in pairs] + [t for _, t in pairs]
    return tuple(o.detach().numpy() for o in out) if M is torch else tuple(out)


def _check(step, shapes, calls=3):
    """``step(M, fw, *leaves, *directions)``: every call of ``ad.compile`` of it (two recordings, then replays)
    equals the step run eagerly (no warning: replayed, not eager) and torch's."""
    cf = ad.compile(lambda *args: step(ad, fwd, *args))
    for c in range(calls):
        leaves = [_cosines(s, 0.3 * c + 0.2 * k) for k, s in enumerate(shapes)]
        directions = [_cosines(s, 1.1 + 0.4 * c + k) * N for k, s in enumerate(shapes)]
        args = [ad.tensor(a, requires_grad=True) for a in leaves] + [ad.tensor(v) for v in directions]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cf(*args)
        want = step(ad, fwd, *args)
        theirs = step(
            torch, tfwd, *[torch.tensor(a, requires_grad=True) for a in leaves], *map(torch.tensor, directions)
        )
        assert len(got) == len(want) == len(theirs)
        for j, (a, b, t) in enumerate(zip(got, want, theirs)):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"eager {j}")
            np.testing.assert_allclose(a.numpy(), t, rtol=1e-10, atol=1e-13, err_msg=f"torch {j}")
    (entry,) = cf.cache.values()
    assert entry.eager is None and type(entry.template) is Program


def _two_duals_three_gradients(M, fw, x, y, w, vx, vy, vw):
    """Two dual tensors and a parameter; the gradients asked in another order than the duals were made."""
    with fw.dual_level():
        xd, yd = fw.make_dual(x, vx), fw.make_dual(y, vy)
        loss = (M.tanh(w @ xd) * M.sin(yd)).sum() + (yd * yd).sum()
        return _flat(M, fw, *M.autograd.grad(loss, (yd, w, xd)))


def _small_row_between_big_rows(M, fw, x, a, b, vx, va, vb):
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        return _flat(M, fw, *M.autograd.grad(M.sin(b @ M.tanh(a @ xd)).sum(), (xd, a)))


def _small_row_before_a_big_row(M, fw, x, a, vx, va):
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        return _flat(M, fw, *M.autograd.grad(M.sin(a @ M.tanh(xd)).sum(), (xd,)))


def _vector_times_matrix(M, fw, x, a, vx, va):
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        return _flat(M, fw, *M.autograd.grad(M.sin(xd @ a).sum(), (xd, a)))


def _matrix_with_a_tangent(M, fw, x, a, vx, va):
    with fw.dual_level():
        xd, a_dual = fw.make_dual(x, vx), fw.make_dual(a, va)
        return _flat(M, fw, *M.autograd.grad(M.tanh(a_dual @ xd).sum(), (xd, a_dual)))


def _dual_made_after_a_big_row(M, fw, x, y, a, vx, vy, va):
    """The second dual tensor is made after a big row that reads the first: its tangent is placed there."""
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        h = M.tanh(a @ xd)
        yd = fw.make_dual(y, vy)
        return _flat(M, fw, *M.autograd.grad((M.sin(a @ (h * yd)) * yd).sum(), (xd, yd)))


def _bias_from_the_dual_tensor(M, fw, x, c, w, vx, vc, vw, inner=False):
    """A linear row whose bias is computed from the dual tensor and whose input needs no cotangent from it: the
    bias's row, kept in the linear's aux words, is where the sweep must go on; with ``inner``, tangent rows
    (tanh's, dropped by the replay) come before the bias's, so its row is renumbered."""
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        b = M.tanh((M.tanh(xd) if inner else xd) * 2.0)
        return _flat(M, fw, *M.autograd.grad(M.sigmoid(M.nn.functional.linear(c, w, b)).sum(), (xd,)))


def _bias_after_tangent_rows(M, fw, *args):
    return _bias_from_the_dual_tensor(M, fw, *args, inner=True)


def _matrix_times_matrix(M, fw, x, a, vx, va):
    """A big matrix without a tangent times a matrix: a 2-D product, not the matrix-vector case."""
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        return _flat(M, fw, *M.autograd.grad(M.sin(a @ xd).sum(), (xd,)))


def _big_dot_product_output(M, fw, x, c, vx, vc):
    """The differentiated output is itself a big row (a dot product over tape.BIG_ROW elements)."""
    with fw.dual_level():
        xd = fw.make_dual(x, vx)
        return _flat(M, fw, *M.autograd.grad(c @ M.tanh(xd), (xd,)))


CASES = {
    "two_duals_three_gradients": (_two_duals_three_gradients, [(5,), (4,), (4, 5)]),
    "small_row_between_big_rows": (_small_row_between_big_rows, [(N,), (N, N), (N, N)]),
    "small_row_before_a_big_row": (_small_row_before_a_big_row, [(N,), (N, N)]),
    "vector_times_matrix": (_vector_times_matrix, [(N,), (N, N)]),
    "matrix_with_a_tangent": (_matrix_with_a_tangent, [(N,), (N, N)]),
    "dual_made_after_a_big_row": (_dual_made_after_a_big_row, [(N,), (N,), (N, N)]),
    "bias_from_the_dual_tensor": (_bias_from_the_dual_tensor, [(6,), (4, 5), (6, 5)]),
    "bias_after_tangent_rows": (_bias_after_tangent_rows, [(6,), (4, 5), (6, 5)]),
    "matrix_times_matrix": (_matrix_times_matrix, [(N, 2), (N, N)]),
    "big_dot_product_output": (_big_dot_product_output, [(20000,), (20000,)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_forward_over_reverse_replays_as_eager_and_torch(name):
    step, shapes = CASES[name]
    _check(step, shapes)


def _softmax_below_the_dual_tensor(x, v):
    """A softmax recorded before the level, reached by the sweep (the gradient of the leaf below it)."""
    y = ad.softmax(x, 0) * 2.0
    with fwd.dual_level():
        yd = fwd.make_dual(y, v)
        gy, gx = ad.autograd.grad((yd**3).sum(), (yd, x))
        return fwd.unpack_dual(gy).tangent, fwd.unpack_dual(gx)[0]


def _prod_output(x, v):
    """The differentiated output's own row (a product over all elements) has no second-order rule."""
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        (g,) = ad.autograd.grad(ad.prod(ad.tanh(xd) * 1.5), xd)
        return fwd.unpack_dual(g)


def _op_off_the_path(x, v):
    """An op inside the level that is neither on the path to grad()'s output nor part of a tangent."""
    with fwd.dual_level():
        xd = fwd.make_dual(x, v)
        ad.exp(x) * 2.0  # (x, not xd: recorded, never used)
        (g,) = ad.autograd.grad((xd**3).sum(), xd)
        return fwd.unpack_dual(g)


@pytest.mark.parametrize(
    "step, reason",
    [
        (_softmax_below_the_dual_tensor, "second-order rule"),
        (_prod_output, "second-order rule"),
        (_op_off_the_path, "neither on the path"),
    ],
)
def test_steps_the_replay_refuses_run_eagerly(step, reason):
    """Rows the replay has no second-order rule for, or an op it cannot place: the call runs eagerly, with one
    warning that says why, and equals eager."""
    size = 6
    cf = ad.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for c in range(3):
            x, v = ad.tensor(_cosines((size,), c), requires_grad=True), ad.tensor(_cosines((size,), 2.0 + c))
            for a, b in zip(cf(x, v), step(x, v)):
                np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and reason in messages[0], messages
