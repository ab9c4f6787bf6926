"""``python -m benchmarks.compare --device cuda`` without a GPU: the ad worker of every GPU workload runs end to
end under the simulator with ``--tiny`` shapes and gives the CPU's results (torch's where torch is installed,
else ad's); every phase ends with the device's synchronization; a library without a GPU, and ad.compile, are
refused (never measured on the CPU); the workloads a GPU run leaves out are named with a reason."""

import importlib.util

import numba
import numpy as np
import pytest

import ad
from benchmarks import compare as C
from benchmarks import workloads as W

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device or simulator", allow_module_level=True)

CUDA_KEYS = [c.key for c in C.CASES if c.cuda]
REFERENCE = "torch" if importlib.util.find_spec("torch") else "ad"


def _worker_outputs(lib, device, key, tmp_path):
    path = tmp_path / f"{key}-{lib}-{device}.npz"
    spec = {"key": key, "lib": lib, "device": device, "tiny": True, "outputs": str(path)}
    report = C.worker({**spec, "budget": 0.0, "min_reps": 1, "max_reps": 1, "warmup": 0})
    assert "error" not in report, report["error"]
    assert set(report["samples"]) == {"forward", "backward", "total", "cpu"}
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}, report["info"]


def test_gpu_table_workloads():
    assert CUDA_KEYS == ["W2-f32", "W2-f64", "W8-f32", "W8-f64", "W3"]
    assert all(C.case_for(k).tiny for k in CUDA_KEYS)


@pytest.mark.parametrize("key", CUDA_KEYS)
def test_cuda_worker_gives_the_cpu_results(key, tmp_path):
    got, info = _worker_outputs("ad", "cuda", key, tmp_path)
    ref, _ = _worker_outputs(REFERENCE, "cpu", key, tmp_path)
    assert info["gpu"] and ("simulator" in info["gpu"]) == bool(numba.config.ENABLE_CUDASIM)
    assert set(got) == {"loss", "grad"} and got["grad"].size > 0 and np.all(np.isfinite(got["grad"]))
    assert W.compare_outputs(got, ref, C.case_for(key).dtype) == []


def test_cuda_w3_with_full_grid_rows(tmp_path, monkeypatch):
    # the real W3's rows (4M elements) get full-grid launches in the device sweep; the tiny ones do too here
    from ad.cuda import backward

    monkeypatch.setattr(backward, "BIG_THRESHOLD", 16)
    got, _ = _worker_outputs("ad", "cuda", "W3", tmp_path)
    ref, _ = _worker_outputs(REFERENCE, "cpu", "W3", tmp_path)
    assert W.compare_outputs(got, ref) == []


def test_every_phase_ends_with_a_device_synchronization(monkeypatch):
    backend = W.load_backend("ad", "cuda")
    workload = C.case_for("W3").build(backend, **C.TINY_BIG)
    events = []

    def synchronize():
        events.append("sync")
        ad.cuda.synchronize()

    def clock():
        events.append("clock")
        return float(len(events))

    monkeypatch.setattr(backend, "synchronize", synchronize)
    seconds = workload.repetition(clock=clock)
    # forward: start, sync, stop; backward: the same: each phase's time includes its kernels
    assert events == ["clock", "sync", "clock"] * 2
    assert set(seconds) == {"forward", "backward", "total"}
    assert W.load_backend("ad").synchronize is None  # the CPU: nothing to wait for


def test_a_cpu_result_is_refused_by_a_cuda_backend():
    backend = W.load_backend("ad", "cuda")
    assert backend.leaf(np.ones(3)).device.type == "cuda"
    assert backend.const(np.arange(3)).device.type == "cuda"
    with pytest.raises(RuntimeError, match="lives on cpu, not on cuda"):
        backend.to_numpy(ad.ones(3))


def test_libraries_without_a_gpu_are_refused():
    with pytest.raises(W.Unavailable, match="ad.compile records and replays CPU tapes only"):
        W.load_backend("ad.compile", "cuda")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():  # pragma: no cover - CPU-only torch in CI
        pytest.skip("torch sees a GPU")
    with pytest.raises(W.Unavailable, match="sees no GPU"):
        W.load_backend("torch", "cuda")
    report = C.worker({"key": "probe", "lib": "torch", "device": "cuda"})
    assert "sees no GPU" in report["error"]


def test_jax_without_a_gpu_is_refused():
    jax = pytest.importorskip("jax")
    if jax.default_backend() == "gpu":  # pragma: no cover
        pytest.skip("jax sees a GPU")
    for name in ("jax", "jax.jit"):
        with pytest.raises(W.Unavailable, match="sees no GPU"):
            W.load_backend(name, "cuda")


def test_a_gpu_run_names_what_it_leaves_out():
    cases, first_call, left_out = C.plan(*C.select(None), "cuda", False)
    assert [c.key for c in cases] == CUDA_KEYS and not first_call
    named = {line.split(":")[0] for line in left_out}
    assert named == {c.key for c in C.CASES if not c.cuda} | {C.FIRST_CALL_KEY}
    assert any(line.startswith("W1: a latency workload") for line in left_out)
    cases, first_call, left_out = C.plan(*C.select("W1,W2"), "cpu", False)  # the CPU run: as before
    assert [c.key for c in cases] == ["W1", "W2-f32", "W2-f64"] and not first_call and left_out == []
    cases, first_call, left_out = C.plan(*C.select(None), "cpu", False)
    assert cases == C.CASES and first_call and left_out == []


def test_gpu_names():
    info = {"ad": {"gpu": "NVIDIA H200"}, "torch": {"gpu": "NVIDIA H200"}, "jax": {"gpu": "H200"}}
    assert C.gpu_names(info, ["ad", "torch"]) == "NVIDIA H200"
    assert C.gpu_names(info, ["ad", "torch", "jax"]) == "NVIDIA H200 (ad, torch); H200 (jax)"
    assert C.gpu_names({"ad": {}}, ["ad"]) == ""


def test_a_gpu_run_from_the_command_line(capsys):
    # the parent: probe workers in their own processes (the simulator's environment), no workload started after 0 s
    argv = ["--device", "cuda", "--tiny", "--libs", "ad,ad.compile", "--only", "W1,W3", "--stop-after", "0"]
    assert C.main(argv) == 0
    out = capsys.readouterr().out
    gpu = "numba-cuda simulator" if numba.config.ENABLE_CUDASIM else ""
    assert f"ad: version {ad.__version__}, gpu {gpu}" in out
    assert "ad.compile: not available on cuda, skipped (Unavailable: ad.compile records and replays CPU tapes" in out
    assert f"device: cuda, GPU {gpu}" in out and f"GPU {gpu}" in out.split("## Results")[1]
    assert "Not measured on cuda:\n- W1: a latency workload" in out
    assert "- W3: not started, 0 s had passed (--stop-after)" in out
