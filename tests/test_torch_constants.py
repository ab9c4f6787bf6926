"""torch's top-level constants and layout names (``pi``, ``e``, ``inf``, ``nan``, ``newaxis``, ``dtype``,
``strided``, the memory formats), ``Tensor.layout`` / ``data_ptr`` / ``is_pinned``, and the module paths
``nn.utils.stateless`` and ``nn.utils.convert_parameters``, against torch."""

import math
import pickle
import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")


def test_constants_match_torch():
    for name in ("pi", "e", "inf"):
        assert getattr(ad, name) == getattr(torch, name)
    assert math.isnan(ad.nan) and ad.newaxis is torch.newaxis is None
    assert isinstance(ad.float32, ad.dtype) and isinstance(ad.ones(2).dtype, ad.dtype)
    assert not isinstance("float32", ad.dtype)
    x = np.arange(6.0)
    np.testing.assert_array_equal(ad.tensor(x)[:, ad.newaxis].numpy(), torch.tensor(x)[:, torch.newaxis].numpy())


def test_layout_and_memory_format_names():
    assert ad.ones(2).layout is ad.strided and repr(ad.strided) == "ad.strided"
    assert isinstance(ad.strided, ad.layout) and isinstance(ad.channels_last, ad.memory_format)
    for name in ("contiguous_format", "channels_last", "channels_last_3d", "preserve_format"):
        fmt = getattr(ad, name)
        assert isinstance(getattr(torch, name), torch.memory_format) and pickle.loads(pickle.dumps(fmt)) is fmt
    x = ad.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
    np.testing.assert_array_equal(x.contiguous(memory_format=ad.channels_last).numpy(), x.numpy())
    np.testing.assert_array_equal(x.clone(memory_format=ad.preserve_format).numpy(), x.numpy())


def test_data_ptr_and_is_pinned():
    base = ad.arange(6.0)
    t = torch.arange(6.0, dtype=torch.float64)
    assert base[2:].data_ptr() - base.data_ptr() == t[2:].data_ptr() - t.data_ptr() == 16
    assert base.view(2, 3).data_ptr() == base.data_ptr() and base.clone().data_ptr() != base.data_ptr()
    assert base.is_pinned() is t.is_pinned() is False


def test_stateless_and_convert_parameters_module_paths():
    from ad.nn.utils import convert_parameters, stateless

    m = ad.nn.Linear(3, 2)
    params = {k: v * 2 for k, v in m.named_parameters()}
    x = ad.ones(1, 3)
    with pytest.warns(FutureWarning, match="stateless.functional_call` is deprecated"):
        out = stateless.functional_call(m, params, (x,))
    np.testing.assert_allclose(out.detach().numpy(), ad.func.functional_call(m, params, (x,)).detach().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = convert_parameters.parameters_to_vector(m.parameters())
    assert v.shape == (8,)
    convert_parameters.vector_to_parameters(v * 0, m.parameters())
    assert not m.weight.detach().numpy().any()
