"""Probe every op named in issue 13 (and the view functions) against torch: exists as function / Tensor method /
in-place variant, takes torch's parameter names (every name torch's signature has, the shared ones in torch's
order, so ``ad.transpose(input=t, dim0=0, dim1=1)`` works as torch's), same values on a random input.

    PYTHONPATH=. python scripts/probe_issue13.py   # from the repository root; prints the gaps found
    (values: unary and binary ops on a random float64 input)

tests/test_torch_semantics.py runs it and expects no gap. torch's builtins have no Python signature: their
names come from the first overload in the docstring, corrected by DOC_MISMATCH where the binding differs.
"""

import inspect
import sys

import numpy as np
import torch

import ad

UNARY = """atan asin acos sinh cosh asinh acosh atanh log2 log10 exp2 floor ceil round trunc frac erfc erfinv lgamma
digamma logit sinc deg2rad rad2deg nan_to_num sign signbit isnan isinf isfinite""".split()
BINARY = """atan2 hypot fmod remainder floor_divide copysign logaddexp xlogy lerp addcmul addcdiv fmax fmin gt ge lt le
eq ne""".split()
REDUCE = """median nanmean nansum cumsum cumprod cummax cummin logcumsumexp count_nonzero all any aminmax norm
dist""".split()
SHAPE = """flip fliplr flipud roll rot90 repeat tile repeat_interleave narrow select scatter scatter_add scatter_reduce
index_add index_copy index_fill masked_fill masked_scatter masked_select take take_along_dim tril triu diag diagonal
diag_embed trace unbind movedim swapaxes unflatten broadcast_tensors meshgrid hstack vstack dstack column_stack sort
argsort topk kthvalue unique nonzero searchsorted bucketize clone""".split()
LINALG_TOP = "bmm mv vdot addmm addmv baddbmm einsum tensordot kron cross".split()
LINALG = """inv solve det slogdet cholesky qr eigh eigvalsh svd svdvals norm matrix_norm vector_norm pinv lstsq
matrix_exp solve_triangular cholesky_solve logdet multi_dot""".split()
NN = """relu6 leaky_relu elu selu celu gelu silu mish softplus softsign hardtanh hardsigmoid hardswish logsigmoid
tanhshrink softmin glu normalize bilinear l1_loss smooth_l1_loss huber_loss binary_cross_entropy
binary_cross_entropy_with_logits kl_div poisson_nll_loss cosine_similarity pairwise_distance dropout conv1d conv2d
conv3d conv_transpose1d conv_transpose2d max_pool1d max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool1d
adaptive_avg_pool2d adaptive_max_pool2d layer_norm group_norm batch_norm instance_norm embedding one_hot pad
interpolate unfold fold pixel_shuffle scaled_dot_product_attention""".split()
VIEWS = """transpose t permute reshape flatten squeeze unsqueeze swapdims moveaxis broadcast_to""".split()
# names whose results torch makes complex: ad has no complex dtype, they raise NotImplementedError saying so
COMPLEX = {"eig": "ad has no complex dtype", "eigvals": "ad has no complex dtype"}
# torch's docstring names a parameter its binding does not accept by that name (checked: torch.searchsorted(...,
# values=v) and torch.matrix_exp(A=a) raise TypeError; the bindings take ``input``)
DOC_MISMATCH = {"searchsorted": "values", "matrix_exp": "A"}


def _params(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return {
        k: (p.default if p.default is not inspect.Parameter.empty else "<required>")
        for k, p in sig.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _split_top(text):
    """``text`` split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _torch_params(fn):
    """torch's builtins have no signature: the first overload of their docstring's header."""
    p = _params(fn)
    if p is not None:
        return p
    doc = (fn.__doc__ or "").strip().splitlines()
    head = doc[0] if doc else ""
    if "(" not in head:
        return None
    depth, inner = 0, ""
    for ch in head[head.index("(") + 1 :]:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            break
        inner += ch
    out = {}
    for part in _split_top(inner):
        part = part.strip()
        if not part or part in ("*", "/") or part.startswith("*"):
            continue
        name, _, default = part.partition("=")
        out[name.split(":")[0].strip()] = default.strip() or "<required>"
    return out


def _compare_signature(name, ours, theirs):
    """Names torch accepts that ours lacks (``out``, ``generator`` and dtype/layout keywords ignored)."""
    if ours is None or theirs is None:
        return []
    ignore = {"out", "generator", "dtype", "layout", "device", "pin_memory", "memory_format", "requires_grad"}
    theirs = [k for k in theirs if k not in ignore and DOC_MISMATCH.get(name.split(".")[-1]) != k]
    missing = [k for k in theirs if k not in ours]
    if missing:
        return [f"{name}: parameter(s) {missing} missing (torch: {theirs}, ad: {list(ours)})"]
    order = [k for k in ours if k in theirs]
    if order != theirs:  # a keyword call works either way; a positional one needs torch's order
        return [f"{name}: parameters in another order (torch: {theirs}, ad: {order})"]
    return []


NO_INPLACE_FUNCTION = []  # torch.exp_-style functions (undocumented in torch; ad has the Tensor methods)


def probe(group, names, ad_ns, torch_ns, check_methods):
    gaps = []
    for name in names:
        ours = getattr(ad_ns, name, None)
        theirs = getattr(torch_ns, name, None)
        if theirs is None:
            continue
        if ours is None:
            gaps.append(f"{group}.{name}: missing as function")
            continue
        gaps += _compare_signature(f"{group}.{name}", _params(ours), _torch_params(theirs))
        if check_methods:
            if hasattr(torch.Tensor, name) and not hasattr(ad.Tensor, name):
                gaps.append(f"{group}.{name}: missing as Tensor method")
            if hasattr(torch.Tensor, name + "_") and not hasattr(ad.Tensor, name + "_"):
                gaps.append(f"{group}.{name}_: missing in-place method")
            if hasattr(torch, name + "_") and not hasattr(ad, name + "_"):
                NO_INPLACE_FUNCTION.append(name + "_")
    return gaps


def probe_values():
    """Values of the unary and binary ops on a random input against torch (float64)."""
    gaps = []
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (3, 4))
    y = rng.uniform(0.1, 0.9, (3, 4))
    for name in UNARY + BINARY:
        f, g = getattr(ad, name, None), getattr(torch, name, None)
        if f is None or g is None:
            continue
        args = (x,) if name in UNARY else (x, y)
        if name == "lerp":
            args = (x, y, 0.3)
        if name in ("addcmul", "addcdiv"):
            args = (x, y, x)
        try:
            a = np.asarray(f(*[ad.tensor(v) if isinstance(v, np.ndarray) else v for v in args]))
            b = g(*[torch.tensor(v) if isinstance(v, np.ndarray) else v for v in args]).numpy()
        except Exception as e:  # noqa: BLE001 - a probe reports every failure
            gaps.append(f"{name}: call failed ({type(e).__name__}: {e})")
            continue
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True):
            gaps.append(f"{name}: values differ from torch")
    return gaps


def probe_complex():
    """The names whose results torch makes complex raise NotImplementedError naming the missing dtype."""
    gaps = []
    for name in COMPLEX:
        try:
            getattr(ad.linalg, name)(ad.eye(2))
            gaps.append(f"linalg.{name}: returned (ad has no complex dtype: it should raise NotImplementedError)")
        except NotImplementedError as e:
            if "complex" not in str(e):
                gaps.append(f"linalg.{name}: NotImplementedError that does not name the missing complex dtype")
        except Exception as e:  # noqa: BLE001 - a probe reports every failure
            gaps.append(f"linalg.{name}: raised {type(e).__name__}, not NotImplementedError")
    return gaps


def main(verbose=False):
    gaps = []
    gaps += probe("ad", UNARY + BINARY + REDUCE + SHAPE + LINALG_TOP, ad, torch, True)
    gaps += probe("ad.linalg", LINALG, ad.linalg, torch.linalg, False)
    gaps += probe("ad.nn.functional", NN, ad.nn.functional, torch.nn.functional, False)
    if getattr(ad, "cdist", None) is None:
        gaps.append("ad.cdist: missing")
    for name, why in COMPLEX.items():
        print(f"left out on purpose: linalg.{name} ({why}: raises NotImplementedError)")
    gaps += probe("ad", VIEWS, ad, torch, True)
    gaps += probe_values()
    gaps += probe_complex()
    for g in gaps:
        print(g)
    if NO_INPLACE_FUNCTION:
        print(f"torch-namespace in-place functions ad leaves out: {' '.join(NO_INPLACE_FUNCTION)}")
    total = len(UNARY + BINARY + REDUCE + SHAPE + LINALG_TOP + LINALG + NN + VIEWS) + 1 + len(COMPLEX)
    print(f"{total} names probed, {len(gaps)} gap(s)")
    return gaps


if __name__ == "__main__":
    main("-v" in sys.argv)
