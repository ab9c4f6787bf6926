"""In-place ops and optimizer steps on CUDA tensors (issue 10), against the same program on the CPU.

- Writes that are not recorded (plain tensors, ``no_grad``) run on the device and keep the storage (its
  ``__cuda_array_interface__`` pointer) and bump the version counter as on the CPU.
- Recorded writes (a graph node modified in place) give the CPU's gradients.
- A backward that needs a value overwritten since it was saved raises torch's error on both devices.
- ``ad.optim`` SGD/Adam/AdamW steps of CUDA parameters equal the CPU's.
- Ops whose index map is computed on the host (sort, max over a dim) return their indices on the device.

Sizes stay tiny: the simulator costs about 75 us per simulated thread.
"""

import numpy as np
import pytest

import ad

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)


def _host(t):
    return t.detach().cpu().numpy()


def _pointer(t):
    return t.__cuda_array_interface__["data"][0]


def _writes(x, dev):
    """A chain of unrecorded in-place ops on ``x``; the values and versions after each."""
    seen = []
    for write in (
        lambda: x.add_(ad.tensor([1.0, -1.0, 0.5], device=dev)),
        lambda: x.add_(2.0, alpha=0.5),
        lambda: x.mul_(2.0),
        lambda: x.sub_(ad.tensor([[0.25], [0.5]], device=dev).sum(0)),
        lambda: x.clamp_(-1.0, 4.0),
        lambda: x.exp_(),
        lambda: x.zero_(),
        lambda: x.fill_(3.0),
        lambda: x.copy_(ad.tensor([5.0, 6.0, 7.0])),  # (from the CPU: torch copies across devices)
        lambda: x.__setitem__(1, 0.5),
        lambda: x.__setitem__(ad.tensor([True, False, True], device=dev), ad.tensor(-2.0, device=dev)),
        lambda: x.addcmul_(x, x, value=0.5),
    ):
        write()
        seen.append((_host(x).copy(), x._version))
    return seen


def test_unrecorded_writes_match_the_cpu_and_keep_the_storage():
    cpu = _writes(ad.tensor([1.0, 2.0, 3.0]), "cpu")
    x = ad.tensor([1.0, 2.0, 3.0], device="cuda")
    before = _pointer(x)
    gpu = _writes(x, "cuda")
    assert x.is_cuda and _pointer(x) == before
    for (a, va), (b, vb) in zip(cpu, gpu):
        np.testing.assert_allclose(b, a, rtol=1e-14, atol=0)
        assert va == vb


def test_writes_that_torch_refuses_raise_on_cuda():
    w = ad.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        w.add_(1.0)
    n = ad.tensor([1, 2], device="cuda")
    # torch says Float (its default dtype); ad's is float64, as on the CPU
    with pytest.raises(RuntimeError, match="result type Double can't be cast to the desired output type Long"):
        n.mul_(0.5)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        ad.zeros(2, device="cuda").add_(ad.ones(2, 2, device="cuda"))


def _recorded(dev):
    w = ad.tensor([0.5, -1.0, 2.0], device=dev, requires_grad=True)
    y = w * 3.0
    y.mul_(w)
    y.add_(w.sin())
    y[0] = w[2] * 2.0
    y.clamp_(max=5.0)
    return w, ad.autograd.grad((y * y).sum(), w)[0]


def test_recorded_writes_give_the_cpus_gradients():
    (_, gc), (_, gg) = _recorded("cpu"), _recorded("cuda")
    assert gg.is_cuda
    np.testing.assert_allclose(_host(gg), _host(gc), rtol=1e-12, atol=1e-12)


def _stale_leaf(dev):
    w = ad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    loss = (w * w).sum()
    with ad.no_grad():
        w.add_(1.0)
    loss.backward()


def _stale_result(dev):
    a = ad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    b = a.exp()
    b.add_(1.0)  # exp's backward reads its result
    b.sum().backward()


def _stale_operand(dev):
    a = ad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    h = a * 2.0
    loss = (h * a).sum()  # mul saves h for a's gradient
    h.add_(1.0)
    loss.backward()


@pytest.mark.parametrize("program", [_stale_leaf, _stale_result, _stale_operand])
def test_backward_through_an_overwritten_saved_value_raises_as_on_the_cpu(program):
    message = "one of the variables needed for gradient computation has been modified by an inplace operation"
    for dev in ("cpu", "cuda"):
        with pytest.raises(RuntimeError, match=message):
            program(dev)


def _fine(dev):
    a = ad.tensor([1.0, 2.0], device=dev, requires_grad=True)
    h = a + 1.0  # add saves nothing
    loss = (h * 3.0).sum()
    h.mul_(2.0)
    loss.backward()
    return _host(a.grad)


def test_writes_that_no_saved_value_needs_are_fine():
    np.testing.assert_array_equal(_fine("cuda"), _fine("cpu"))


def test_nodes_without_a_row_check_their_saved_values(monkeypatch):
    # nodes the device tape cannot encode (made so here) have no row to check: the graph sweep checks them by
    # their op's saved values (``tape.check_graph_row``), with the same errors and no false alarm
    import ad.cuda.tape as device_tape

    monkeypatch.setattr(device_tape, "_encode", lambda *args: None)
    message = "one of the variables needed for gradient computation has been modified by an inplace operation"
    for program in (_stale_leaf, _stale_result, _stale_operand):
        with pytest.raises(RuntimeError, match=message):
            program("cuda")
    np.testing.assert_array_equal(_fine("cuda"), _fine("cpu"))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: ad.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
        lambda ps: ad.optim.SGD(ps, lr=0.1, maximize=True),
        lambda ps: ad.optim.Adam(ps, lr=0.1, amsgrad=True, weight_decay=0.01),
        lambda ps: ad.optim.AdamW(ps, lr=0.1),
    ],
)
def test_optimizer_steps_on_cuda_equal_the_cpus(make):
    w0 = np.random.default_rng(0).standard_normal(4)
    results = []
    for dev in ("cpu", "cuda"):
        w = ad.tensor(w0, device=dev, requires_grad=True)
        before = w._version
        opt = make([w])
        for _ in range(2):
            opt.zero_grad(set_to_none=False)
            ((w * w).sum() + w.sin().sum()).backward()
            opt.step()
        assert w._version == before + 2 and w.grad.is_cuda == (dev == "cuda")
        assert all(s.is_cuda == (dev == "cuda") for s in opt.state[w].values() if s.ndim)
        results.append(_host(w))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-14)


def test_index_outputs_of_host_index_maps_live_on_the_device():
    x = ad.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], device="cuda")
    values, indices = x.sort(1)
    assert values.is_cuda and indices.is_cuda
    np.testing.assert_array_equal(indices.cpu().numpy(), [[1, 2, 0], [0, 2, 1]])
    m = x.max(1)
    assert m.indices.is_cuda and m.values.is_cuda
    np.testing.assert_array_equal(m.indices.cpu().numpy(), [0, 1])
    np.testing.assert_array_equal(x.topk(1).indices.cpu().numpy(), [[0], [1]])


@pytest.mark.parametrize(
    "write",
    [
        lambda x: (x.view(2, 3)[0].add_(1.0),),  # into a view of a view
        lambda x: (x.t().mul_(2.0),),  # into a non-contiguous view
        lambda x: (x.reshape(6), x.add_(1.0)),  # into a base with a live view
        lambda x: (x[0], x.zero_()),
        lambda x: (x[:, 1], x.detach()[1:].fill_(7.0)),  # through a detach() alias
    ],
)
def test_writes_through_views_of_cuda_tensors_reach_the_storage(write):
    """CUDA views share their base's device memory: every alias sees a write, as on the CPU."""
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(np.arange(6.0).reshape(3, 2), device=dev)
        written = write(x)
        results.append([(t.cpu().numpy().tolist(), t._version, t.stride(), t.storage_offset()) for t in (x, *written)])
    assert results[1] == results[0]


def test_views_share_the_version_counter_of_their_base():
    x = ad.tensor([1.0, 2.0, 3.0, 4.0], device="cuda")
    v = x.reshape(2, 2)
    with ad.no_grad():
        w = ad.tensor([1.0, 1.0], device="cuda", requires_grad=True)
    assert v._version == x._version == 0
    x.detach().add_(w.detach()[0])
    assert v._version == x._version == 1
    np.testing.assert_array_equal(v.cpu().numpy(), [[2.0, 3.0], [4.0, 5.0]])


def test_copy_across_devices_as_torch():
    a = ad.zeros(3)
    a.copy_(ad.tensor([1.0, 2.0, 3.0], device="cuda"))
    assert not a.is_cuda
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0, 3.0])
    w = ad.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    y = ad.zeros(3, requires_grad=True) * 1.0
    y.copy_(w * w)  # recorded: the gradient goes back through the copy to the device
    (y * ad.tensor([1.0, 0.5, 2.0])).sum().backward()
    assert w.grad.is_cuda
    np.testing.assert_allclose(w.grad.cpu().numpy(), [2.0, 2.0, 12.0])


def test_out_on_cuda_writes_the_device_storage_as_on_the_cpu():
    """``out=`` on a CUDA tensor (ad/ops/out.py) writes through its device buffer (a same-shape ``out`` keeps its
    storage, a view writes through to its base), casts and resizes as on the CPU, bumps the version; an ``out``
    on another device than the result raises RuntimeError."""

    def run(dev):
        a = ad.tensor([[2.0, 0.5], [1.0, 3.0]]).to(dev)
        same, base, empty = ad.zeros(2, 2).to(dev), ad.zeros(3, 2).to(dev), ad.zeros(0).to(dev)
        f32 = ad.zeros(2, 2, dtype=ad.float32).to(dev)
        before, version = _pointer(same) if dev == "cuda" else None, same._version
        ad.exp(a, out=same)
        ad.linalg.inv(a, out=base[1:])
        ad.mul(a, a, out=f32)
        ad.quantile(a, 0.5, dim=0, out=empty)
        kept = _pointer(same) == before if dev == "cuda" else True
        return [_host(same), _host(base), _host(f32), _host(empty), kept, same._version > version]

    cpu, gpu = run("cpu"), run("cuda")
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g, c, rtol=1e-12)
        assert np.asarray(g).dtype == np.asarray(c).dtype
    with pytest.raises(RuntimeError, match="Expected out tensor to have device cuda:0, but got cpu instead"):
        ad.exp(ad.ones(2).cuda(), out=ad.zeros(2))
