"""What the host does around the CUDA kernels, counted without timing (``scripts/cuda_host_traffic.py`` patches
numba-cuda's copies, allocations and launches): a backward copies O(rows) bytes between host and device, never
O(elements) (session 14's GPU run: a 64M-element chain's backward copied the arena's ``live`` and ``modified``
flags each way, 389 ms where the kernels need ~4), and no block kernel walks a big row.

Each check runs a workload at two sizes and asserts that the host traffic is the same at both: what does not
grow with the tensors cannot be a copy of their values. Under the simulator with tiny sizes (the big-row
threshold lowered so that the small tensors take the big rows' paths); unchanged on a real GPU.
"""

import numpy as np
import pytest
from cuda_scripts import load_script

pytest.importorskip("numba.cuda")
backward = pytest.importorskip("ad.cuda.backward")
from kernels.cuda import reduce as R  # noqa: E402
from kernels.cuda import sweep  # noqa: E402

traffic_tool = load_script("cuda_host_traffic")

HOST_COPIES = ("h2d", "d2h", "host_arg")


def _profile(traffic):
    """What must not depend on the tensors' sizes: bytes and count of each host copy, launches of each kernel."""
    launches = sorted(e.kernel for e in traffic.of("launch"))
    return {k: (traffic.count(k), traffic.total(k)) for k in HOST_COPIES}, launches


def _chain_backward(n):
    x, loss = traffic_tool.chain_loss(n, np.float64)
    traffic = traffic_tool.measure(lambda: loss.backward(retain_graph=True))
    # d loss / dx of exp(sin(tanh(cos(sigmoid(exp(sin(tanh(x)))))))), twice (two backwards accumulate)
    v = x.detach().cpu().numpy()
    grad = np.ones_like(v)
    for f, df in [
        (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
        (np.sin, np.cos),
        (np.exp, np.exp),
        (lambda u: 1 / (1 + np.exp(-u)), lambda u: np.exp(-u) / (1 + np.exp(-u)) ** 2),
        (np.cos, lambda u: -np.sin(u)),
        (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
        (np.sin, np.cos),
        (np.exp, np.exp),
    ]:
        grad = grad * df(v)
        v = f(v)
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * grad, rtol=1e-10)
    return traffic


@pytest.mark.parametrize("big_threshold", [64, None], ids=["big_rows", "block_rows"])
def test_backward_host_traffic_does_not_grow_with_the_tensors(big_threshold, monkeypatch):
    """The 8-op chain's backward (``kernels.cuda.bench``'s), rows big (full-grid launches) or small (the block
    kernel): the same host copies, of the same bytes, at 96 and 384 elements; no block kernel over a big row;
    two copies back (the sweep's result), none per row."""
    monkeypatch.setattr(backward, "BIG_THRESHOLD", big_threshold)
    threshold = big_threshold or sweep.BIG_THRESHOLD
    sizes = (96, 384) if big_threshold else (24, 96)
    profiles = []
    for n in sizes:
        traffic = _chain_backward(n)
        assert not traffic.one_block_over_big(threshold=threshold), traffic.summary()
        launched = {e.kernel for e in traffic.of("launch")}
        assert ("unary_row_op" in launched) == (big_threshold is not None)  # (the paths meant)
        assert ("_sweep_block" in launched) == (big_threshold is None)
        profiles.append(_profile(traffic))
    assert profiles[0] == profiles[1]
    copies = profiles[1][0]
    assert copies["d2h"][1] < 1024 and copies["h2d"][1] < 2048 and copies["host_arg"] == (0, 0), copies
    assert copies["d2h"][0] == 2  # the sweep's state and visited flags at its end: no wait per row


def test_mlp_step_host_traffic_does_not_grow_with_the_width(monkeypatch):
    """An MLP step (forward, cross entropy, backward; ``kernels.cuda.bench``'s) at widths 4 and 8, every row big
    (cuBLAS on a GPU): the same host copies of the same bytes (the targets' upload, rows, flags), so no tensor's
    values go through the host."""
    monkeypatch.setattr(backward, "BIG_THRESHOLD", 1)
    profiles = []
    for width in (4, 8):
        step, params = traffic_tool.mlp_step(4, width, 3, np.float64)
        traffic = traffic_tool.measure(step)
        assert not traffic.one_block_over_big(threshold=1), traffic.summary()
        assert "_sweep_block" not in {e.kernel for e in traffic.of("launch")}
        profiles.append(_profile(traffic))
    assert profiles[0] == profiles[1]
    assert profiles[1][0]["d2h"][1] < 1024


def test_the_sweep_block_kernel_is_judged_by_its_rows(monkeypatch):
    """The tool itself: a sweep forced to walk big rows with its single-block kernel is flagged (the regression
    the checks above would catch), and a grid launch over them is not."""
    monkeypatch.setattr(backward, "BIG_THRESHOLD", 10**9)  # every row small: one block walks them all
    traffic = _chain_backward(384)  # (more elements than the block's threads, on a GPU too)
    flagged = traffic.one_block_over_big(threshold=64)
    assert flagged and {e.kernel for e in flagged} == {"_sweep_block"}
    assert flagged[0].work == 384


def test_a_whole_tensor_reduction_fills_the_gpu(monkeypatch):
    """On a GPU (sizes chosen as there), a sum of 64M elements is split into chunks that give ~FULL_GRID blocks
    (session 14: 264 blocks read it at 6% of a copy's bandwidth), and a sum of 4096 groups is not split."""
    monkeypatch.setattr(R.L, "SIMULATOR", False)
    assert R._chunks(1, 64 * 2**20, None) == R.FULL_GRID
    assert 1 < R._chunks(8, 2**20, None) * 8 <= R.FULL_GRID
    assert R._chunks(4096, 4096, None) == 1
