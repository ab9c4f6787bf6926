"""``ad.nn.grad`` (``F.grad``): the convolution input and weight gradients against ``torch.nn.grad`` in float64,
with strides, padding, dilation and groups; their own gradients (with respect to the weight / input and to
``grad_output``) against torch's; and the shape error."""

import numpy as np
import pytest

import ad
import ad.nn.functional as AF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

CASES = [
    (1, (2, 4, 9), (6, 2, 3), {"stride": 2, "padding": 1, "groups": 2}),
    (2, (1, 2, 7, 6), (3, 2, 3, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}),
    (3, (1, 2, 5, 4, 4), (2, 1, 2, 2, 3), {"padding": 1, "groups": 2}),
]


@pytest.mark.parametrize("dims,x_shape,w_shape,kwargs", CASES, ids=["1d", "2d", "3d"])
def test_input_and_weight_gradients_match_torch(dims, x_shape, w_shape, kwargs):
    rng = np.random.default_rng(dims)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    conv = getattr(TF, f"conv{dims}d")
    g = rng.standard_normal(tuple(conv(torch.tensor(x), torch.tensor(w), None, **kwargs).shape))
    for which in ("input", "weight"):
        results = []
        for F, L in ((AF, ad), (TF, torch)):
            tx, tw, tg = (L.tensor(a, requires_grad=True) for a in (x, w, g))
            fn = getattr(F.grad, f"conv{dims}d_{which}")
            out = fn(x_shape, tw, tg, **kwargs) if which == "input" else fn(tx, w_shape, tg, **kwargs)
            r = np.random.default_rng(9).standard_normal(tuple(out.shape))
            (out * L.tensor(r)).sum().backward()
            other = tw if which == "input" else tx
            results.append((out.detach().numpy(), other.grad.numpy(), tg.grad.numpy()))
        for a, t in zip(*results):
            np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-12)
    # without anything requiring grad the result is a plain tensor
    assert not AF.grad.conv1d_input((2, 4, 9), ad.tensor(rng.standard_normal((6, 2, 3))),
                                    ad.tensor(rng.standard_normal((2, 6, 7))), groups=2).requires_grad


def test_wrong_grad_output_shape_raises_as_torch():
    w = np.ones((3, 2, 3, 3))
    for G, L in ((AF.grad, ad), (TF.grad, torch)):
        with pytest.raises(RuntimeError, match="Expected a tensor of dimension 4"):
            G.conv2d_input((1, 2, 5, 5), L.tensor(w), L.tensor(np.ones((1, 3, 4, 4))), stride=2)
