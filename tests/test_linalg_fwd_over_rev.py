"""Forward over reverse through the Python-swept primitives (the linear algebra of ad/ops/linalg.py, the scans and
special functions of ad/reductions.py, the convolutions of ad/nn/functional/conv.py), float64.

For each primitive, a scalar function ``f`` of one matrix ``x``, a direction ``v``, and three Hessian-vector
products that must agree: the tangent of ``grad(f)`` at a dual ``x`` (forward over reverse, with and without
``create_graph``), double backward (reverse over reverse) and central finite differences of the gradient. The
functions post-process the primitive's outputs nonlinearly, so that the incoming cotangent carries a tangent
too, and use spectral factors gauge-invariantly.
"""

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

L = ad.linalg
F = ad.nn.functional


def _eye(x):
    return ad.eye(x.shape[-1], dtype=x.dtype)


def _well(x):
    return x + 4 * _eye(x)


def _spd(x):
    return x @ x.mT + _eye(x)


def _weights(*shape):
    return ad.arange(float(np.prod(shape)), dtype=ad.float64).reshape(shape) / 7.0 - 0.3


def _svd_terms(u, s, vh):
    return ((u @ (s.unsqueeze(-1) * vh)) ** 2).sum() + (s**3).sum() + ((u * u) @ _weights(u.shape[-1], 1)).sum()


def _lu_terms(P, Lo, U):
    return (Lo**3).sum() + (U**3 * _weights(*U.shape[-2:])).sum()


CASES = {
    "inv": (lambda x: (L.inv(_well(x)) ** 2).sum(), (2, 3, 3)),
    "solve": (lambda x: (L.solve(_well(x[..., :3]), x[..., 3:]) ** 2).sum(), (3, 5)),
    "solve_left_false": (lambda x: (L.solve(_well(x[:, :3]), x[:2, :3], left=False) ** 3).sum(), (3, 4)),
    "det": (lambda x: (L.det(x) ** 2).sum(), (2, 3, 3)),
    "det_singular": (lambda x: L.det(x * ad.tensor([1.0, 1.0, 0.0])).sin(), (3, 3)),
    "slogdet": (lambda x: L.slogdet(_well(x)).logabsdet ** 2, (3, 3)),
    "logdet": (lambda x: ad.logdet(_spd(x)).cos(), (3, 3)),
    "cholesky": (lambda x: (L.cholesky(_spd(x)) ** 3).sum() + (L.cholesky(_spd(x), upper=True) ** 2).sum(), (3, 3)),
    "cholesky_solve": (lambda x: (ad.cholesky_solve(x[:, 3:], L.cholesky(_spd(x[:, :3]))) ** 2).sum(), (3, 4)),
    "solve_triangular": (
        lambda x: (
            (L.solve_triangular(_well(x[:, :3]), x[:, 3:], upper=True) ** 2).sum()
            + (L.solve_triangular(_well(x[:, :3]), x[:, 3:], upper=False, unitriangular=True) ** 3).sum()
        ),
        (3, 5),
    ),
    "eigh": (lambda x: ((L.eigh(x + x.mT)[1] ** 2) @ _weights(3, 1)).sum() + (L.eigvalsh(x + x.mT) ** 3).sum(), (3, 3)),
    "svd_tall": (lambda x: _svd_terms(*L.svd(x, full_matrices=False)), (4, 3)),
    "svd_wide": (lambda x: _svd_terms(*L.svd(x, full_matrices=False)), (3, 4)),
    "svdvals": (lambda x: (L.svdvals(x) ** 3).sum(), (2, 4, 3)),
    "matrix_norm_nuc": (lambda x: L.matrix_norm(x, "nuc") ** 2 + L.matrix_norm(x, 2) ** 3, (3, 4)),
    "qr_tall": (lambda x: (lambda q, r: (q**3).sum() + (r**3).sum())(*L.qr(x)), (4, 3)),
    "qr_wide": (lambda x: (lambda q, r: (q**3).sum() + (r**3).sum())(*L.qr(x)), (3, 4)),
    "matrix_exp": (lambda x: (L.matrix_exp(x) ** 2).sum(), (3, 3)),
    "pinv": (lambda x: (L.pinv(x) ** 2).sum(), (3, 4)),
    "lstsq": (lambda x: (L.lstsq(x[:, :2], x[:, 2:]).solution ** 2).sum(), (4, 3)),
    "vector_norm": (
        lambda x: L.vector_norm(x, 3.0) ** 2 + L.vector_norm(x) ** 3 + L.vector_norm(x, 1.5, dim=0).sin().sum(),
        (3, 4),
    ),
    "matrix_power_neg": (lambda x: (L.matrix_power(_well(x), -2) ** 2).sum(), (3, 3)),
    "cond": (lambda x: L.cond(_spd(x)) ** 2, (3, 3)),
    "lu": (lambda x: _lu_terms(*L.lu(x)), (2, 3, 3)),
    "lu_tall": (lambda x: _lu_terms(*L.lu(x)), (4, 3)),
    "lu_wide": (lambda x: _lu_terms(*L.lu(x)), (3, 4)),
    "lu_solve": (lambda x: (L.lu_solve(*L.lu_factor(_well(x[:, :3])), x[:, 3:], adjoint=True) ** 2).sum(), (3, 5)),
    "householder_product": (lambda x: (L.householder_product(x[:, :3], x[0, 3:] * 0.5) ** 3).sum(), (4, 5)),
    "vander_zero": (lambda x: (L.vander(x[0] * ad.tensor([1.0, 0.0, 1.0])) ** 2).sum() + L.vander(x[1]).sum(), (2, 3)),
    # ad/reductions.py
    "cumsum": (lambda x: (ad.cumsum(x, 1) ** 3).sum(), (2, 4)),
    "cumprod": (lambda x: (ad.cumprod(x.tanh(), 0) ** 2).sum() + ad.cumprod(x, 1).sin().sum(), (3, 4)),
    "cumprod_zero": (lambda x: (ad.cumprod(x * ad.tensor([1.0, 0.0, 1.0, 0.0]), 1) ** 2).sum(), (2, 4)),
    "logcumsumexp": (lambda x: (ad.logcumsumexp(x, 1) ** 2).sum(), (2, 4)),
    "lgamma": (lambda x: (ad.lgamma(x * x + 0.5) ** 2).sum(), (2, 3)),
    "digamma": (lambda x: ad.digamma(x * x + 0.5).sin().sum(), (2, 3)),
    "polygamma": (lambda x: (ad.polygamma(2, x * x + 0.5) * x).sum(), (2, 3)),
    # ad/nn/functional/conv.py: x is the image and (a slice of it) the weight, so both carry tangents
    "conv2d": (lambda x: (F.conv2d(x, x[:3, :, :3, :3], x[0, 0, 0, :3], padding=1).tanh() ** 2).sum(), (3, 2, 4, 4)),
    "conv2d_stride_groups": (
        lambda x: (F.conv2d(x, x[:, :1, :2, :2] * 0.5, stride=2, dilation=(1, 2), groups=2) ** 3).sum(),
        (2, 2, 5, 5),
    ),
    "conv1d": (lambda x: F.conv1d(x, x[:2, :, :2], padding="same").sin().sum(), (2, 3, 5)),
    "conv_transpose2d": (
        lambda x: (F.conv_transpose2d(x, x[:, :, :2, :2], x[0, 0, 0, :2], stride=2) ** 2).sum(),
        (2, 2, 3, 3),
    ),
    "conv_transpose1d": (lambda x: F.conv_transpose1d(x, x[:, :2, :3], padding=1).cos().sum(), (2, 2, 4)),
}


def _hvp_double_backward(f, a, v):
    x = ad.tensor(a, requires_grad=True)
    (g,) = ad.autograd.grad(f(x), x, create_graph=True)
    (h,) = ad.autograd.grad((g * ad.tensor(v)).sum(), x)
    return h.numpy()


def _hvp_forward_over_reverse(f, a, v, create_graph):
    with fwAD.dual_level():
        x = fwAD.make_dual(ad.tensor(a, requires_grad=True), ad.tensor(v))
        (g,) = ad.autograd.grad(f(x), x, create_graph=create_graph)
        tangent = fwAD.unpack_dual(g).tangent
        assert tangent is not None
        return tangent.detach().numpy()


def _hvp_finite_differences(f, a, v, eps=1e-6):
    def grad_at(b):
        x = ad.tensor(b, requires_grad=True)
        return ad.autograd.grad(f(x), x)[0].numpy()

    return (grad_at(a + eps * v) - grad_at(a - eps * v)) / (2 * eps)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_over_reverse_equals_double_backward_and_finite_differences(name):
    f, shape = CASES[name]
    rng = np.random.default_rng(len(name))
    a = rng.standard_normal(shape)
    v = rng.standard_normal(shape)
    fd = _hvp_finite_differences(f, a, v)
    rr = _hvp_double_backward(f, a, v)
    scale = max(1.0, np.abs(fd).max())
    np.testing.assert_allclose(rr, fd, atol=2e-6 * scale)
    for create_graph in (False, True):
        fr = _hvp_forward_over_reverse(f, a, v, create_graph)
        np.testing.assert_allclose(fr, rr, rtol=1e-9, atol=1e-10 * scale)


def test_functional_hvp_and_a_cotangent_without_tangent():
    """The tangent reaches the gradient through the primitive's own inputs alone (the incoming cotangent is a
    constant here: f is linear in det), and ``autograd.functional.hvp`` gives the same."""
    rng = np.random.default_rng(0)
    a = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    v = rng.standard_normal((3, 3))
    fr = _hvp_forward_over_reverse(L.det, a, v, False)
    np.testing.assert_allclose(fr, _hvp_finite_differences(L.det, a, v), atol=1e-7)
    _, hv = ad.autograd.functional.hvp(L.det, ad.tensor(a), ad.tensor(v))
    np.testing.assert_allclose(fr, hv.numpy(), rtol=1e-10)


CONV_CASES = ("conv2d", "conv2d_stride_groups", "conv1d", "conv_transpose2d", "conv_transpose1d")


@pytest.mark.parametrize("name", CONV_CASES)
def test_forward_over_reverse_through_convolutions_as_torch_func(name):
    """The tangent of the gradient (forward over reverse) against torch.func's ``jvp`` of ``grad``."""
    torch = pytest.importorskip("torch")
    f, shape = CASES[name]
    rng = np.random.default_rng(len(name))
    a, v = rng.standard_normal(shape), rng.standard_normal(shape)

    def f_torch(x):  # the same program with torch's namespaces (the cases call ad.nn.functional as F)
        global F
        saved, F = F, torch.nn.functional
        try:
            return f(x)
        finally:
            F = saved

    _, want = torch.func.jvp(torch.func.grad(f_torch), (torch.tensor(a),), (torch.tensor(v),))
    got = _hvp_forward_over_reverse(f, a, v, False)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-10 * max(1.0, np.abs(want.numpy()).max()))
