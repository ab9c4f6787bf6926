"""Backward of CUDA graphs through the device sweep (ad/cuda/backward.py, kernels/cuda/sweep.py) against the CPU.

Each case runs the same function on float64 CPU and CUDA leaves and compares the gradients to 1e-12. The
``device_only`` fixture makes ``graph_sweep`` raise and counts the device sweep's launches, so a case
that passes through it was swept on the device. Under the simulator (tests/conftest.py) with tiny sizes;
unchanged on a real GPU.
"""

import numpy as np
import pytest

import ad
from ad import differentiable_sweep

pytest.importorskip("numba.cuda")
backward = pytest.importorskip("ad.cuda.backward")
F = ad.nn.functional

TOL = 1e-12


@pytest.fixture
def device_only(monkeypatch):
    """Fail on ``graph_sweep``; count the device sweep's kernel launches."""
    launches = []
    launch = backward.DeviceSweep._launch

    def counted(self, start, stop):
        launches.append((start, stop))
        return launch(self, start, stop)

    def refused(*args, **kwargs):
        raise AssertionError("differentiable_sweep.graph_sweep ran: the device sweep should have")

    monkeypatch.setattr(backward.DeviceSweep, "_launch", counted)
    monkeypatch.setattr(differentiable_sweep, "graph_sweep", refused)
    return launches


def _leaves(arrays, device):
    return [ad.tensor(a, dtype=ad.float64, device=device, requires_grad=True) for a in arrays]


def _host(t):
    return t.detach().cpu().numpy()


def _compare(fn, shapes, seed=0, steps=1):
    """Gradients of ``fn(*leaves)`` on CPU and CUDA leaves (``steps`` backwards accumulating into .grad)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0.2, 0.8, s) for s in shapes]
    grads = []
    for device in ("cpu", "cuda"):
        leaves = _leaves(arrays, device)
        for _ in range(steps):
            fn(*leaves).backward()
        assert all(leaf.grad.device == leaves[0].device for leaf in leaves)
        grads.append([_host(leaf.grad) for leaf in leaves])
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=TOL, atol=TOL)


CASES = {
    "chain": (lambda x: (x.tanh() * x.exp()).sin().sigmoid().sum(), [(5,)]),
    "scalar_ops": (lambda x: ((x * 3.0 + 1.0) ** 2.5 / (2.0 - x)).clamp(0.5, 3.0).mean(), [(2, 3)]),
    "broadcasting": (lambda x, y, b: ((x + y) * b).relu().sum(), [(2, 3), (3,), (2, 1)]),
    "reductions": (lambda x: x.sum(1).exp().sum() + x.sum(0).mean() + x.amax(1).sum() + x.mean(), [(3, 4)]),
    "indexing": (lambda x: x[1:, ::2].sum() + x[[0, 2, 2]].exp().sum() + x.T[1].sum(), [(3, 4)]),
    "views": (lambda x: x.reshape(2, 6).permute(1, 0).unsqueeze(0).expand(2, 6, 2).log().sum(), [(3, 4)]),
    "where": (lambda x, y: ad.where(x > 0.5, x * y, y.exp()).sum(), [(4,), (4,)]),
    "matmul": (lambda x, y, z: ((x @ y).tanh() @ z).log_softmax(-1).sum(), [(2, 3, 4), (4, 3), (3,)]),
    "same_operand": (lambda x: (x * x + x / x.exp()).sum(), [(3,)]),
    "cat_stack": (lambda x, y: (ad.cat([x.exp(), y], 1) * ad.stack([x, y * 2.0], 2).reshape(2, 6)).sum(), [(2, 3)] * 2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_device_sweep_equals_cpu(name, device_only):
    fn, shapes = CASES[name]
    _compare(fn, shapes)
    assert device_only


def _mlp(x, w1, b1, w2, b2):
    h = F.linear(x, w1, b1).tanh()
    return F.cross_entropy(F.linear(h, w2, b2), ad.tensor([0, 2, 1], device=x.device))


def test_mlp_cross_entropy_and_accumulation_over_steps(device_only):
    # three steps, each a new graph on a new tape (the arenas recycled): .grad accumulates on the device
    _compare(lambda *p: _mlp(*p), [(3, 4), (5, 4), (5,), (3, 5), (3,)], steps=3)
    assert device_only


def _big_rows(x, w1, b1, w2, b2):
    e = (x * x + x / w1[:3, :].exp()).clamp(0.3, 0.9) * 2.0  # binary with one or two operands, attrs
    return _mlp(x, w1, b1, w2, b2) + (x @ w1.T).log_softmax(1).sum() + (e * x.detach()).sum() + e.amax(1).sum()


def test_big_rows_take_full_grid_launches(device_only, monkeypatch):
    # every row is "big": full-grid launches; matmul, linear, log_softmax, cross entropy through the
    # kernels/cuda host functions (cuBLAS on a GPU), elementwise rows through the per-opcode kernels
    monkeypatch.setattr(backward, "BIG_THRESHOLD", 1)
    _compare(_big_rows, [(3, 4), (5, 4), (5,), (3, 5), (3,)])


def test_big_regions_are_not_cleared(device_only, monkeypatch):
    # every tensor is "big": its cotangent region is left as the (recycled) arena had it, its first writer
    # stores or clears it, in the block kernel and in the full-grid launches
    import ad.cuda.tape as device_tape

    monkeypatch.setattr(device_tape, "BIG_ROW", 2)
    make = backward.empty

    def poisoned(shape, dtype):  # new cotangent arenas hold NaN: a region read before its first write shows
        arr = make(shape, dtype)  # (and new live flags 1: each sweep must zero its own)
        if len(shape) == 1 and arr.size:
            arr.copy_to_device(np.full(arr.size, np.nan if np.dtype(dtype).kind == "f" else 1, dtype))
        return arr

    monkeypatch.setattr(backward, "empty", poisoned)
    shapes = [(3, 4), (5, 4), (5,), (3, 5), (3,)]
    _compare(_big_rows, shapes, steps=2)  # (the second step's arena is the first one's, recycled)
    monkeypatch.setattr(backward, "BIG_THRESHOLD", 1)
    _compare(_big_rows, shapes)


def test_hooks_and_retain_grad(device_only):
    seen = []
    results = []
    for device in ("cpu", "cuda"):
        (x,) = _leaves([np.array([0.3, 0.6, 0.9])], device)
        y = x.sin() * 2.0
        y.retain_grad()
        y.register_hook(lambda g: seen.append(g.device) or g * 3.0)
        z = y.exp()
        z.retain_grad()
        z.sum().backward()
        results.append([_host(t) for t in (x.grad, y.grad, z.grad)])
    assert seen == [ad.device("cpu"), ad.device("cuda:0")]
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=TOL, atol=TOL)


def test_retain_graph_twice_then_freed(device_only):
    x = _leaves([np.array([0.2, 0.7])], "cuda")[0]
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    once = _host(x.grad)
    loss.backward()
    np.testing.assert_allclose(_host(x.grad), 2 * once, rtol=TOL)
    np.testing.assert_allclose(once, np.exp([0.2, 0.7]) * (1 + np.array([0.2, 0.7])), rtol=TOL)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_grad_with_inputs(device_only):
    results = []
    for device in ("cpu", "cuda"):
        x, w = _leaves([np.array([[0.2, 0.4], [0.6, 0.8]]), np.array([[0.5, -0.3], [0.1, 0.9]])], device)
        h = (x @ w).tanh()
        loss = (h * h).sum()
        gh, gw = ad.autograd.grad(loss, [h, w])
        assert x.grad is None and w.grad is None
        results.append([_host(gh), _host(gw)])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=TOL, atol=TOL)


def test_backward_inputs_accumulates_only_there(device_only):
    x, y = _leaves([np.array([0.2, 0.4]), np.array([0.6, 0.8])], "cuda")
    (x * y).sum().backward(inputs=[y])
    assert x.grad is None
    np.testing.assert_allclose(_host(y.grad), [0.2, 0.4], rtol=TOL)


class _Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x


def test_custom_function(device_only):
    _compare(lambda x: _Cube.apply(x.sin()).exp().sum(), [(4,)])


def test_mixed_graph_through_cpu_and_cuda_copies(device_only):
    # CUDA tape -> .cpu() -> CPU tape -> .cuda() -> CUDA tape: each tape swept on its side, no graph_sweep
    def fn(x):
        return ((x.exp().cpu() * 2.0).sin().cuda() * x).sum()

    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.8, 4)
    x = _leaves([a], "cuda")[0]
    fn(x).backward()
    expected = np.sin(2 * np.exp(a)) + a * np.cos(2 * np.exp(a)) * 2 * np.exp(a)
    np.testing.assert_allclose(_host(x.grad), expected, rtol=TOL)
    # and from a CPU output, through a CPU leaf copied to the device
    c = ad.tensor(a, dtype=ad.float64, requires_grad=True)
    (c.cuda().tanh().cpu() ** 2).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), 2 * np.tanh(a) * (1 - np.tanh(a) ** 2), rtol=TOL)


def test_nodes_without_a_row_take_the_graph_sweep(monkeypatch):
    # a node the device tape cannot encode (here: sin, made so) gets a placeholder row; a backward that reaches
    # it takes the graph sweep (correctly), one that does not still takes the device sweep
    import ad.cuda.tape as device_tape

    encode = device_tape._encode
    monkeypatch.setattr(
        device_tape, "_encode", lambda tape, t, *a: None if t._op.name == "sin" else encode(tape, t, *a)
    )
    x = _leaves([np.array([0.2, 0.4])], "cuda")[0]
    other = x.exp().sum()
    loss = (x.sin() * 3.0).sum()
    assert backward.needs_graph_sweep([loss]) and not backward.needs_graph_sweep([other])
    loss.backward()
    np.testing.assert_allclose(_host(x.grad), 3 * np.cos([0.2, 0.4]), rtol=TOL)
    x.grad = None
    launches = []
    monkeypatch.setattr(backward.DeviceSweep, "_launch", lambda self, *a: launches.append(a))
    other.backward()
    assert launches


def test_saved_value_modified_in_place_raises():
    x = _leaves([np.array([0.2, 0.4])], "cuda")[0]
    y = x.exp()
    loss = y.sum()
    from ad.tape import mark_modified

    mark_modified(y)  # what an in-place write of y does (ad/views.py): exp's row reads its output
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.fixture
def no_loop(monkeypatch):
    """Fail if ``is_grads_batched`` falls back to one sweep per cotangent."""
    import ad.autograd as autograd

    def refused(*args, **kwargs):
        raise AssertionError("is_grads_batched looped over the cotangents: one batched sweep should have run")

    monkeypatch.setattr(autograd, "_looped_grad", refused)


def test_batched_grad_of_cuda_and_mixed_graphs(no_loop):
    # a graph with CUDA nodes: one differentiable sweep whose device ops carry the batch as batched tangents
    a = np.array([0.2, 0.5, 0.7])
    x = _leaves([a], "cuda")[0]
    (g,) = ad.autograd.grad(x.exp(), x, ad.tensor(np.eye(3), device="cuda"), is_grads_batched=True)
    assert g.device == x.device
    np.testing.assert_allclose(_host(g), np.diag(np.exp(a)), rtol=TOL)
    c = ad.tensor(a[:2], dtype=ad.float64, requires_grad=True)
    (g,) = ad.autograd.grad(c.cuda().sin().cpu(), c, ad.tensor(np.eye(2)), is_grads_batched=True)
    assert g.device == c.device
    np.testing.assert_allclose(g.numpy(), np.diag(np.cos(a[:2])), rtol=TOL)


def _mlp_loss(w, x, b):
    h = ad.tanh(w @ x + b)
    return F.softmax(h * h.exp(), dim=0)[:2] * x[:1].sum()


@pytest.mark.parametrize("create_graph", [False, True])
def test_batched_grad_on_cuda_equals_looped_cpu(no_loop, create_graph):
    rng = np.random.default_rng(3)
    arrays = [rng.uniform(-1, 1, s) for s in ((4, 3), (3,), (4,))]
    cots = rng.standard_normal((5, 2))
    got = {}
    for device in ("cpu", "cuda"):
        leaves = _leaves(arrays, device)
        out = _mlp_loss(*leaves)
        got[device] = ad.autograd.grad(
            out, leaves, ad.tensor(cots, device=device), is_grads_batched=True, create_graph=create_graph
        )
        assert all(g.shape == (5, *leaf.shape) and g.device == leaf.device for g, leaf in zip(got[device], leaves))
        if create_graph:  # the batched gradients are differentiable again, on the device
            (h,) = ad.autograd.grad(got[device][1].sum(), leaves[1])
            got[device] += (h,)
    leaves = _leaves(arrays, "cpu")
    out = _mlp_loss(*leaves)
    looped = [ad.autograd.grad(out, leaves, ad.tensor(c), retain_graph=True) for c in cots]
    for k in range(3):
        want = np.stack([lg[k].numpy() for lg in looped])
        np.testing.assert_allclose(_host(got["cuda"][k]), want, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(_host(got["cpu"][k]), want, rtol=TOL, atol=TOL)
    if create_graph:
        np.testing.assert_allclose(_host(got["cuda"][3]), _host(got["cpu"][3]), rtol=TOL, atol=TOL)


def test_batched_grad_on_cuda_materializes_device_zeros():
    x, unused = _leaves([np.array([0.2, 0.5]), np.array([1.0])], "cuda")
    gx, gu = ad.autograd.grad(
        x.exp(), (x, unused), ad.tensor(np.eye(2), device="cuda"), is_grads_batched=True, materialize_grads=True
    )
    assert gu.device == unused.device and gu.shape == unused.shape
    np.testing.assert_array_equal(_host(gu), np.zeros(1))
    np.testing.assert_allclose(_host(gx), np.diag(np.exp([0.2, 0.5])), rtol=TOL)
