"""``PackedSequence`` on CUDA data, as torch's: ``batch_sizes`` stays on the host (it drives the steps in Python),
``sorted_indices`` / ``unsorted_indices`` follow the data's device through ``pack_padded_sequence``,
``pack_sequence``, the recurrent layers and ``PackedSequence.to`` / ``cuda`` / ``cpu``; padding back gives the
CPU's values and gradients, with CPU lengths."""

import numpy as np
import pytest

import ad
from ad.nn.utils import rnn

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device or simulator", allow_module_level=True)


def _devices(packed):
    return (packed.data.device.type, packed.batch_sizes.device.type,
            None if packed.sorted_indices is None else packed.sorted_indices.device.type,
            None if packed.unsorted_indices is None else packed.unsorted_indices.device.type)


def test_index_tensors_follow_the_data_and_batch_sizes_stay_on_the_host():
    results = {}
    for dev in ("cpu", "cuda"):
        x = ad.tensor(np.arange(12.0).reshape(3, 2, 2), device=dev, requires_grad=True)
        packed = rnn.pack_padded_sequence(x, [2, 3], enforce_sorted=False)
        assert _devices(packed) == (dev, "cpu", dev, dev)
        assert _devices(rnn.pack_sequence([x[:, 0], x[:2, 1]], enforce_sorted=False)) == (dev, "cpu", dev, dev)
        assert _devices(rnn.pack_padded_sequence(x, [3, 2]))[:2] == (dev, "cpu")
        rnn_layer = ad.nn.RNN(2, 3).double().to(dev)
        with ad.no_grad():
            for p, value in zip(rnn_layer.parameters(), np.random.default_rng(0).standard_normal(4)):
                p.fill_(float(value) * 0.3)
        out, h = rnn_layer(packed)
        assert _devices(out) == (dev, "cpu", dev, dev) and h.device.type == dev
        padded, lengths = rnn.pad_packed_sequence(out, batch_first=True)
        assert lengths.device.type == "cpu" and lengths.tolist() == [2, 3]
        grad = ad.autograd.grad((padded * padded).sum() + h.sum(), x)[0]
        results[dev] = [t.detach().cpu().numpy() for t in (padded, h, grad, packed.sorted_indices)]
    for cpu, cuda in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-12, atol=1e-12)


def test_to_cuda_cpu_and_dtype_moves():
    x = ad.tensor(np.arange(12.0).reshape(3, 2, 2))
    packed = rnn.pack_padded_sequence(x, [2, 3], enforce_sorted=False)
    assert packed.to("cpu") is packed and packed.double() is packed
    on_gpu = packed.cuda()
    assert _devices(on_gpu) == ("cuda", "cpu", "cuda", "cuda") and on_gpu.is_cuda
    back = on_gpu.cpu()
    assert _devices(back) == ("cpu", "cpu", "cpu", "cpu") and not back.is_cuda
    np.testing.assert_array_equal(back.data.numpy(), packed.data.numpy())
    np.testing.assert_array_equal(back.unsorted_indices.numpy(), packed.unsorted_indices.numpy())
    assert on_gpu.float().data.dtype == ad.float32 and on_gpu.float().sorted_indices.dtype == ad.int64
    sorted_batch = rnn.pack_padded_sequence(x, [3, 2]).cuda()
    assert sorted_batch.sorted_indices is None and sorted_batch.unsorted_indices is None
    # a hand-made PackedSequence: the inverse permutation is made on the indices' device
    made = rnn.PackedSequence(on_gpu.data, on_gpu.batch_sizes, on_gpu.sorted_indices)
    assert made.unsorted_indices.device.type == "cuda"
    np.testing.assert_array_equal(made.unsorted_indices.cpu().numpy(), packed.unsorted_indices.numpy())
