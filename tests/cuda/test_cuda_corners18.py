"""The corners that sessions 17 and 18 made torch's on the CPU, on CUDA as on the CPU: values, gradients (kernel
sweep) and forward-mode tangents of the same inputs on both devices, NaN and inf included. The CPU side is held
to torch by tests/test_parity_nn18.py, tests/test_parity_ties18.py and tests/test_selection_grads.py; CUDA's
generic cases (test_cuda_tensors.py's CUDA_CASES) use the op table's ordinary inputs, these the corners:

- amax/amin's gradient split between tied members, NaN and inf members (the select rules);
- threshold of NaN (NaN is not above the threshold: its value and a zero gradient);
- softplus / logsigmoid / mish on both sides of 37 (torch's log1p(exp) chain, the identity beyond), at +-inf
  and NaN, with inf cotangents;
- normalize / cosine_similarity / pairwise_distance of a line holding NaN (the norm is NaN);
- a 1- or inf-norm over a line holding NaN (its members' gradient 0);
- logcumsumexp's tangent at a -inf output of a line holding a number (0, not NaN);
- embedding_bag with decreasing offsets (empty bags), segment_reduce with empty segments, ties and an initial
  value, as_strided copies, views and scatters with repeated positions.

grid_sample's far coordinates: tests/cuda/test_cuda_grid_sample_far.py. Under numba's simulator (tiny sizes).
"""

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

INF, NAN = np.inf, np.nan
EDGES = np.array([-INF, -1000.0, -37.5, -36.9, -20.0, -0.0, 0.0, 1e-8, 20.0, 36.9, 37.5, 1000.0, INF, NAN])


def _line(*values):
    return np.array(values, dtype=np.float64)


# name -> (function of one tensor, input, cotangent or None (ones), tangent or None (ones))
CASES = {
    "amax_ties": (lambda x: ad.amax(x, 1), _line(1, 3, 3, -INF, 2, 2, INF, 0, NAN, 5, 1, 5).reshape(3, 4),
                  None, _line(1, 2, 3, 4, 5, 6, 7, INF, 9, 10, 11, 12).reshape(3, 4)),
    "amin_ties": (lambda x: ad.amin(x, 1), _line(1, -3, -3, INF, 2, 2, -INF, 0, NAN, 5, 1, 1).reshape(3, 4),
                  None, _line(1, 2, 3, 4, 5, 6, 7, INF, 9, 10, 11, 12).reshape(3, 4)),
    "threshold_nan": (lambda x: F.threshold(x, 1.0, -5.0), _line(NAN, 0.5, 1.0, 2.0, INF, -INF), None, None),
    "softplus": (F.softplus, EDGES, np.full(EDGES.shape, INF), None),
    "logsigmoid": (F.logsigmoid, EDGES, np.full(EDGES.shape, INF), None),
    "mish": (F.mish, EDGES, None, None),
    "normalize_nan": (lambda x: F.normalize(x, dim=1), _line(-2, NAN, 0, -3, 1, 2, 2, 1).reshape(2, 4), None, None),
    "cosine_similarity_nan": (lambda x: F.cosine_similarity(x[:2], x[2:], dim=1),
                              _line(-2, NAN, 0, -3, 1, 2, 2, 1, 1, 1, 1, 1, 0, 2, 1, 3).reshape(4, 4), None, None),
    "pairwise_distance_nan": (lambda x: F.pairwise_distance(x[:2], x[2:]),
                              _line(-2, NAN, 0, -3, 1, 2, 2, 1, 1, 1, 1, 1, 0, 2, 1, 3).reshape(4, 4), None, None),
    "norm1_nan": (lambda x: ad.linalg.vector_norm(x, 1, dim=1), _line(1, NAN, -2, 3, 0, 1).reshape(2, 3), None, None),
    "norm_inf_nan": (lambda x: ad.linalg.vector_norm(x, INF, dim=1), _line(1, NAN, -3, 3, -3, 1).reshape(2, 3),
                     None, None),
    "logcumsumexp_neg_inf": (lambda x: ad.logcumsumexp(x, 1), _line(-INF, -INF, 0, 1, -INF, -INF).reshape(2, 3),
                             None, None),
}


BAG_INPUT = np.array([0, 2, 4, 1, 3, 3, 5, 2])
WEIGHT = np.random.default_rng(0).standard_normal((6, 3))
WEIGHT[4, 1] = -2.5  # (ties with other members of its bags' columns for max)
WEIGHT[2, 1] = -2.5
SEGMENTS = _line(1, 0, 0, 3, 3, -1, 2, 0, -4, -4, 5, 1).reshape(2, 6)


def _bag(offsets, **kwargs):
    def fn(w, dev):
        return F.embedding_bag(ad.tensor(BAG_INPUT, device=dev), w, ad.tensor(np.array(offsets), device=dev),
                               **kwargs)

    return fn


def _segments(reduce, lengths, **kwargs):
    def fn(x, dev):
        return ad.segment_reduce(x, reduce, lengths=ad.tensor(np.array(lengths), device=dev), axis=1, **kwargs)

    return fn


# the same, of a tensor and the device (index inputs made there)
ON_DEVICE = {
    "embedding_bag_mean_decreasing": (_bag([0, 6, 3], mode="mean"), WEIGHT, None, None),
    "embedding_bag_max_decreasing": (_bag([0, 5, 2, 7], mode="max"), WEIGHT, None, None),
    "embedding_bag_empty_padding": (_bag([0, 3, 3, 8], mode="mean", padding_idx=3, include_last_offset=True),
                                    WEIGHT, None, None),
    "segment_amax_ties": (_segments("amax", [[3, 0, 3], [2, 2, 2]], initial=-1.0), SEGMENTS, None, None),
    "segment_mean_initial": (_segments("mean", [[0, 6, 0], [4, 0, 2]], initial=0.5), SEGMENTS, None, None),
    "as_strided_copy_repeats": (lambda x, dev: ad.as_strided_copy(x, (3, 3), (1, 1), 1), _line(*range(8)) - 2.5,
                                None, None),
    "as_strided_view_repeats": (lambda x, dev: (x * 1.0).as_strided((3, 2), (2, 1), 1), _line(*range(8)) - 2.5,
                                None, None),
    "as_strided_scatter_repeats": (lambda x, dev: ad.as_strided_scatter(x * 2.0, x[:4].reshape(2, 2) * 3.0, (2, 2),
                                                                         (1, 1), 2), _line(*range(8)) - 2.5,
                                   None, None),
}
CASES.update(ON_DEVICE)


def _run(name, dev):
    fn, x0, g0, t0 = CASES[name]
    if name in ON_DEVICE:
        fn = (lambda f: lambda x: f(x, dev))(fn)
    x = ad.tensor(x0, device=dev, requires_grad=True)
    out = fn(x)
    g = np.ones(tuple(out.shape)) if g0 is None else g0
    out.backward(ad.tensor(g, device=dev))
    with fwAD.dual_level():
        primal = ad.tensor(x0, device=dev)
        tangent = ad.tensor(np.ones(x0.shape) if t0 is None else t0, device=dev)
        tan = fwAD.unpack_dual(fn(fwAD.make_dual(primal, tangent))).tangent
    tan = np.zeros(tuple(out.shape)) if tan is None else tan.cpu().numpy()
    return out.detach().cpu().numpy(), x.grad.cpu().numpy(), tan


@pytest.mark.parametrize("name", list(CASES))
def test_corner_on_cuda_as_on_the_cpu(name):
    cpu, cuda = _run(name, "cpu"), _run(name, "cuda")
    for what, a, b in zip(("value", "gradient", "tangent"), cpu, cuda):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-300, equal_nan=True, err_msg=f"{name}: {what}")
