"""``ad.backends``: torch's backend switches exist with torch's defaults, are settable (module attributes, so
``import ad.backends.cudnn as cudnn; cudnn.benchmark = True`` works), ``cudnn.flags`` restores them, the SDP
switches toggle, and the availability queries answer for ad (no cuDNN, MPS or oneDNN)."""

import pytest

import ad
import ad.backends.cudnn as cudnn

torch = pytest.importorskip("torch")


def test_defaults_match_torch_and_flags_are_settable():
    for name in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(cudnn, name) == getattr(torch.backends.cudnn, name)
    for name in ("allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction"):
        assert getattr(ad.backends.cuda.matmul, name) == getattr(torch.backends.cuda.matmul, name)
    saved = cudnn.benchmark
    try:
        cudnn.benchmark = True
        assert ad.backends.cudnn.benchmark is True
        with cudnn.flags(enabled=False, deterministic=True):
            assert not cudnn.enabled and cudnn.deterministic
        assert cudnn.enabled and not cudnn.deterministic and cudnn.benchmark
    finally:
        cudnn.benchmark = saved
    ad.backends.cuda.matmul.allow_tf32 = True
    ad.backends.cuda.matmul.allow_tf32 = False


def test_queries_and_sdp_switches():
    assert not cudnn.is_available() and cudnn.version() is None
    assert not ad.backends.mps.is_available() and not ad.backends.mps.is_built()
    assert not ad.backends.mkldnn.is_available()
    assert isinstance(ad.backends.cuda.is_built(), bool)
    for kind in ("flash", "mem_efficient", "math", "cudnn"):
        enabled = getattr(ad.backends.cuda, f"{kind}_sdp_enabled")
        enable = getattr(ad.backends.cuda, f"enable_{kind}_sdp")
        assert enabled() is getattr(torch.backends.cuda, f"{kind}_sdp_enabled")() is True
        enable(False)
        assert enabled() is False
        enable(True)
        assert enabled() is True
