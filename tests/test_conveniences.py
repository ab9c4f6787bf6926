"""dtype methods, default dtype, inference_mode and ad.Size, against torch where torch defines them."""

import numpy as np
import pytest

import ad
import ad.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    ("method", "np_dtype"),
    [
        ("long", np.int64),
        ("int", np.int32),
        ("short", np.int16),
        ("char", np.int8),
        ("byte", np.uint8),
        ("bool", np.bool_),
        ("half", np.float16),
        ("float", np.float32),
        ("double", np.float64),
    ],
)
def test_dtype_methods_match_torch(method, np_dtype):
    x = np.array([-1.7, 0.0, 0.4, 2.6, 300.2])
    ours = getattr(ad.tensor(x), method)()
    theirs = getattr(torch.tensor(x), method)()
    assert ours.dtype == np_dtype
    if method not in ("char", "byte"):  # out-of-range casts differ between numpy and torch (undefined in C)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    same = ad.tensor(x).to(np_dtype)
    assert getattr(same, method)() is same  # no copy when the dtype is already right


def test_float_cast_is_differentiable_and_int_cast_is_not():
    w = ad.tensor([1.0, 2.0], requires_grad=True)
    y = w.float()
    assert y.requires_grad and y.dtype == np.float32
    (y * y).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0])
    assert w.dtype == np.float64 and w.grad.dtype == np.float64
    assert not w.long().requires_grad
    z = ad.tensor([[0.2, 0.8], [0.9, 0.1]], requires_grad=True)
    loss = F.cross_entropy(z, ad.tensor([1.0, 0.0]).long())  # the example
    loss.backward()
    assert z.grad.shape == (2, 2)


def test_default_dtype():
    assert ad.get_default_dtype() == np.float64
    try:
        ad.set_default_dtype(ad.float32)
        assert ad.get_default_dtype() == np.float32
        assert ad.tensor([1.0, 2.0]).dtype == np.float32
        assert ad.zeros(2).dtype == np.float32 and ad.randn(2).dtype == np.float32
        assert ad.full((2,), 1.5).dtype == np.float32
        assert ad.tensor(np.ones(2)).dtype == np.float64  # numpy arrays keep their dtype
        assert ad.tensor([1, 2]).dtype == np.int64
        assert ad.nn.Linear(2, 2).weight.dtype == np.float32
        with pytest.raises(TypeError, match="only floating-point types"):
            ad.set_default_dtype(ad.int64)
        assert ad.get_default_dtype() == np.float32
    finally:
        ad.set_default_dtype(ad.float64)
    assert ad.tensor([1.0]).dtype == np.float64


def test_inference_mode():
    w = ad.tensor([1.0], requires_grad=True)
    with ad.inference_mode():
        assert not ad.is_grad_enabled() and ad.is_inference_mode_enabled()
        assert not (w * 2).requires_grad
    assert ad.is_grad_enabled() and not ad.is_inference_mode_enabled()
    with ad.inference_mode(False):
        assert (w * 2).requires_grad

    @ad.inference_mode()
    def f(x):
        return x * 2

    @ad.inference_mode
    def g(x):
        return x * 2

    assert not f(w).requires_grad and not g(w).requires_grad
    assert ad.is_grad_enabled()


def test_size():
    s = ad.Size([2, 3, 4])
    assert s == (2, 3, 4) and s.numel() == 24 and isinstance(s[1:], ad.Size)
    assert repr(s) == repr(torch.Size([2, 3, 4])).replace("torch", "ad")
    assert s[1:].numel() == torch.Size([2, 3, 4])[1:].numel()
