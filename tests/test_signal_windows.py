"""``ad.signal.windows`` against ``torch.signal.windows``: every window, symmetric and periodic, lengths 0 to 7,
float64 and float32 values, the keyword arguments, and torch's errors."""

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")
import torch.signal.windows as TW  # noqa: E402

AW = ad.signal.windows
KWARGS = {
    "bartlett": [{}], "blackman": [{}], "cosine": [{}], "hamming": [{}], "hann": [{}], "nuttall": [{}],
    "exponential": [{}, {"tau": 2.5}], "gaussian": [{}, {"std": 0.7}], "kaiser": [{}, {"beta": 3.0}],
    "general_cosine": [{"a": [0.5, 0.5]}, {"a": (0.3, 0.4, 0.3)}], "general_hamming": [{}, {"alpha": 0.6}],
}


def test_names_match_torch():
    assert sorted(AW.__all__) == sorted(TW.__all__)


@pytest.mark.parametrize("name", sorted(KWARGS))
def test_values_match_torch(name):
    for kwargs in KWARGS[name]:
        for M in range(8):
            for sym in (True, False):
                for t_dtype, a_dtype, tol in ((torch.float64, ad.float64, 1e-12), (torch.float32, ad.float32, 1e-6)):
                    want = getattr(TW, name)(M, sym=sym, dtype=t_dtype, **kwargs)
                    got = getattr(AW, name)(M, sym=sym, dtype=a_dtype, **kwargs)
                    assert got.dtype == a_dtype and got.shape == tuple(want.shape)
                    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol,
                                               err_msg=f"{name} M={M} sym={sym} {kwargs}")


def test_exponential_center_default_dtype_and_requires_grad():
    want = TW.exponential(6, center=2.5, tau=2.0, sym=False, dtype=torch.float64)
    np.testing.assert_allclose(AW.exponential(6, center=2.5, tau=2.0, sym=False).numpy(), want.numpy(), rtol=1e-12)
    assert AW.hann(4).dtype == ad.get_default_dtype()
    w = AW.hann(4, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    # the top-level periodic windows are the signal windows with sym=False
    np.testing.assert_allclose(ad.hann_window(6).numpy(), AW.hann(6, sym=False).numpy())
    np.testing.assert_allclose(ad.kaiser_window(6, beta=4.0).numpy(), AW.kaiser(6, beta=4.0, sym=False).numpy())


def test_errors_match_torch():
    cases = [
        (lambda W, dt: W.hann(-1), ValueError, "general_cosine requires non-negative window length, got M=-1"),
        (lambda W, dt: W.kaiser(-2), ValueError, "kaiser requires non-negative window length, got M=-2"),
        (lambda W, dt: W.bartlett(3, dtype=dt), ValueError, "bartlett expects float32 or float64 dtypes"),
        (lambda W, dt: W.gaussian(3, std=0), ValueError, "Standard deviation must be positive, got: 0 instead."),
        (lambda W, dt: W.exponential(3, tau=0), ValueError, "Tau must be positive, got: 0 instead."),
        (lambda W, dt: W.exponential(3, center=1.0), ValueError, "Center must be None for symmetric windows"),
        (lambda W, dt: W.kaiser(3, beta=-1), ValueError, "beta must be non-negative, got: -1 instead."),
        (lambda W, dt: W.general_cosine(3, a=3), TypeError, "Coefficients must be a list/tuple"),
        (lambda W, dt: W.general_cosine(3, a=[]), ValueError, "Coefficients cannot be empty"),
        (lambda W, dt: W.cosine(3.5), TypeError, None),
    ]
    for make, exc, message in cases:
        for W, dt in ((TW, torch.int64), (AW, ad.int64)):
            pattern = None if message is None else message.replace("(", r"\(").replace(")", r"\)")
            with pytest.raises(exc, match=pattern):
                make(W, dt)
