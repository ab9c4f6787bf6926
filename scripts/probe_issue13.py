"""Probe ad against torch (issue 13): every op named in the issue and the view functions exist as function /
Tensor method / in-place variant with torch's values on a random input, and every public function of ``ad``,
``ad.linalg``, ``ad.nn.functional`` and every ``Tensor`` method that torch also has takes torch's parameters:
the same names at the same positions, the same keyword-only ones, the same defaults (``probe_signatures``).

    PYTHONPATH=. python scripts/probe_issue13.py [-v]   # from the repository root; prints the gaps found

tests/test_torch_semantics.py runs it and expects no gap. torch's builtins have no Python signature: their
overloads come from torch's generated stubs and from its argument parser's own signature strings (see the
comment above ``REQUIRED``). What is left out on purpose is listed with the reason (``ACCEPTED``, ``OUT_LEFT``,
``NOT_TORCH``).
"""

import ast
import builtins
import functools
import inspect
import re
import sys
from pathlib import Path

import numpy as np
import torch

import ad

UNARY = """atan asin acos sinh cosh asinh acosh atanh log2 log10 exp2 floor ceil round trunc frac erfc erfinv lgamma
digamma logit sinc deg2rad rad2deg nan_to_num sign signbit isnan isinf isfinite i0 angle""".split()
BINARY = """atan2 hypot fmod remainder floor_divide copysign logaddexp xlogy lerp addcmul addcdiv fmax fmin gt ge lt le
eq ne igamma igammac""".split()
REDUCE = """median nanmean nansum cumsum cumprod cummax cummin logcumsumexp count_nonzero all any aminmax norm
dist""".split()
SHAPE = """flip fliplr flipud roll rot90 repeat tile repeat_interleave narrow select scatter scatter_add scatter_reduce
index_add index_copy index_fill index_reduce masked_fill masked_scatter masked_select take take_along_dim tril triu diag
diagonal diag_embed trace unbind movedim swapaxes unflatten broadcast_tensors meshgrid hstack vstack dstack column_stack
sort argsort topk kthvalue unique nonzero searchsorted bucketize clone""".split()
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


# --- every public name against torch's binding signatures ------------------------------------------------------
#
# torch's builtins carry no Python signature. Their overloads come from the type stubs generated from the same
# binding table (torch/_C/_VariableFunctions.pyi for ``torch.X``, torch/_C/_nn.pyi for ``torch._C._nn.X``,
# torch/_C/__init__.pyi's ``TensorBase`` for the methods) and, for torch.linalg / torch.special (no stub), from the
# binding strings the Python argument parser itself holds in libtorch_python.so (``linalg_norm(Tensor input, ...)``);
# the same strings mark the deprecated overloads (``add(Tensor input, Scalar alpha, Tensor other)|deprecated``), which
# are left out. torch's Python functions (torch.functional, torch.nn.functional, torch/_tensor.py) have a signature.
#
# A parameter is (name, kind, default): kind "pos" (positional or keyword), "kw" (keyword-only) or "var"
# (``*size``); default REQUIRED, UNKNOWN (the stub writes ``...``) or the value.

REQUIRED, UNKNOWN = "<required>", "<unknown>"
# keywords ad has no use for: memory layouts, pinned memory, torch-internal switches; `generator`: ad has no
# Generator objects (ad.manual_seed seeds its one stream)
NOT_IN_AD = {"layout", "pin_memory", "memory_format", "implicit", "generator", "names"}
# ad names that are not torch's function of the same name, on purpose (name -> why)
NOT_TORCH = {
    "ad.compile": "ad.compile records and replays a tape (torch.compile is a graph compiler with other options)",
    "ad.load": "ad.load reads ad's own safe format (no pickle): torch.load's pickle options do not apply",
    "ad.save": "ad.save writes ad's own safe format (no pickle): torch.save's pickle options do not apply",
}


# where torch's generated stubs disagree with its argument parser (checked by calling torch), or an overload ad
# leaves out: (label, parameter) -> why
ACCEPTED = {
    ("ad.Tensor.requires_grad_", "mode"): "the stub says `mode`; torch's parser takes `requires_grad` (as ad)",
    ("ad.linspace", "steps"): "the stub gives `steps` a default; torch's parser requires it (as ad)",
    ("ad.asarray", "requires_grad"): "torch's parser default None means False (ad's default)",
}
_OUT_DTYPE = "the `out_dtype` overload (low-precision accumulation): not implemented on torch's CPU either"
ACCEPTED.update({(f"ad.{name}", "out_dtype"): _OUT_DTYPE for name in ("mm", "bmm", "addmm", "baddbmm")})


# torch builtins with neither a stub nor a parser string (checked by calling torch): name -> overloads
BUILTIN_SIGNATURES = {
    "is_anomaly_enabled": [[]],
    "is_anomaly_check_nan_enabled": [[]],
    "set_anomaly_enabled": [[("enabled", "pos", REQUIRED), ("check_nan", "pos", True)]],
    "get_device": [[("input", "pos", REQUIRED)]],
    "_to_dlpack": [[("tensor", "pos", REQUIRED)]],  # torch.to_dlpack
    "is_autocast_enabled": [[], [("device_type", "pos", REQUIRED)]],
    "const_data_ptr": [[]],  # Tensor.const_data_ptr (no stub)
}
# torch's ``out=`` that ad's public functions leave out (empty: the hottest ones, add, mul, exp, sum, matmul ...,
# take ``out=None`` in their own signature, see ad/ops/out.py)
OUT_LEFT = set()


def _stub_params(node, method):
    """The parameters of one stub ``def`` (``ast.FunctionDef``); a method's ``self`` left out."""
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = []
    for a, d in zip(positional, defaults):
        out.append((a.arg, "pos", _stub_default(d)))
    if args.vararg is not None:
        out.append((args.vararg.arg, "var", REQUIRED))
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        out.append((a.arg, "kw", _stub_default(d)))
    return out[1:] if method else out


def _stub_default(node):
    if node is None:
        return REQUIRED
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return UNKNOWN
    return UNKNOWN if value is Ellipsis else value


@functools.cache
def _stubs(path, cls=None):
    """name -> list of overloads (parameter lists) of the stub file ``path`` (the methods of class ``cls``)."""
    tree = ast.parse(Path(path).read_text())
    body = tree.body
    if cls is not None:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    found = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            found.setdefault(node.name, []).append(_stub_params(node, cls is not None))
    return found


@functools.cache
def _bindings():
    """name -> (overloads, deprecated overloads) of the argument parser's signature strings."""
    lib = Path(torch.__file__).parent / "lib"
    data = b"".join(p.read_bytes() for p in lib.glob("libtorch_python.*"))
    found = {}
    for raw in re.findall(rb"(?<=\x00)([a-z_][a-z_0-9]*\((?:[A-Za-z*][^\x00]*)?\)(?:\|\w+)?)(?=\x00)", data):
        text = raw.decode()
        head, _, flag = text.partition("|")
        name = head[: head.index("(")]
        params = _binding_params(head[head.index("(") + 1 : -1])
        entry = found.setdefault(name, ([], []))
        entry[1 if flag == "deprecated" else 0].append(params)
    return found


def _binding_params(inner):
    out, kind = [], "pos"
    for part in _split_top(inner):
        part = part.strip()
        if not part:
            continue
        if part == "*":
            kind = "kw"
            continue
        decl, eq, default = part.partition("=")
        name = decl.split()[-1]
        if not eq:
            value = REQUIRED
        else:
            default = default.strip()
            default = default.replace("{", "(").replace("}", ")")  # C++ ``{-2,-1}``: a tuple
            value = {"None": None, "True": True, "False": False}.get(default, default)
            try:
                value = ast.literal_eval(default) if isinstance(value, str) else value
            except (ValueError, SyntaxError):
                value = UNKNOWN
        out.append((name, kind, value))
    return out


def _names(params):
    return [p[0] for p in params if p[0] not in ("self", "input")]


def _python_params(fn, method):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "pos",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "pos",
        inspect.Parameter.VAR_POSITIONAL: "var",
        inspect.Parameter.KEYWORD_ONLY: "kw",
        inspect.Parameter.VAR_KEYWORD: "varkw",
    }
    out = [
        (k, kinds[p.kind], REQUIRED if p.default is inspect.Parameter.empty else p.default)
        for k, p in sig.parameters.items()
    ]
    return out[1:] if method and out and out[0][1] == "pos" else out


def torch_overloads(fn, namespace):
    """The overloads of torch's ``fn`` (``namespace``: "torch", "Tensor", "nn", "linalg"), deprecated ones left
    out; None where no signature is known."""
    method = namespace == "Tensor"
    params = _python_params(fn, method)
    if params is not None and not any(k == "varkw" for _, k, _ in params):
        return [params]
    dispatched = _boolean_dispatch(fn)
    if dispatched is not None:
        return [_python_params(dispatched, method)]
    stub_dir = Path(torch.__file__).parent / "_C"
    name = getattr(fn, "__name__", "")
    if method:
        found = _stubs(str(stub_dir / "__init__.pyi"), "TensorBase").get(name)
    elif getattr(fn, "__module__", None) == "torch._C._nn":
        found = _stubs(str(stub_dir / "_nn.pyi")).get(name)
    elif name.startswith(("linalg_", "special_")):
        found = _bindings().get(name, ([], []))[0] or None
    else:
        found = _stubs(str(stub_dir / "_VariableFunctions.pyi")).get(name)
    if not found:
        return BUILTIN_SIGNATURES.get(name)
    deprecated = [_names(p) for p in _bindings().get(name, ([], []))[1]]
    found = [p for p in found if _names(p) not in deprecated and not (not method and "self" in [q[0] for q in p])]
    if method:  # the stubs give some methods the functions' ``out=``: Tensor methods take none
        found = [[q for q in p if q[0] != "out"] for p in found]
    return found


def _boolean_dispatch(fn, depth=3):
    """The implementation behind a ``torch._jit_internal.boolean_dispatch`` function (``unique``, ``lu``,
    ``adaptive_max_pool2d``: ``(*args, **kwargs)`` choosing between functions of the same parameters)."""
    found = []
    for cell in getattr(fn, "__closure__", None) or ():
        inner = cell.cell_contents
        if not inspect.isfunction(inner):
            continue
        params = _python_params(inner, False)
        if params and "varkw" not in [k for _, k, _ in params]:
            found.append(inner)
        elif depth:
            found.append(_boolean_dispatch(inner, depth - 1))
    found = [f for f in found if f is not None]
    return builtins.max(found, key=lambda f: len(_python_params(f, False)), default=None)


def compare(label, ours, overloads):
    """The gaps between ad's parameters ``ours`` and torch's ``overloads``: (category, message) pairs."""
    if ours is None:
        return [("names", f"{label}: no Python signature in ad")]
    gaps = []
    ad_pos = [p for p in ours if p[1] == "pos"]
    ad_var = next((i for i, p in enumerate(q for q in ours if q[1] in ("pos", "var")) if p[1] == "var"), None)
    ad_by_name = {p[0]: p for p in ours}
    ad_varkw = any(p[1] == "varkw" for p in ours)
    names_at = {}  # position -> names torch gives it across the overloads (overloads may disagree)
    keyword_only = set()  # names some overload takes by keyword only
    for ov in overloads:
        for i, p in enumerate(q for q in ov if q[1] in ("pos", "var")):
            names_at.setdefault(i, set()).add(p[0] if p[1] == "pos" else "*")
        keyword_only.update(p[0] for p in ov if p[1] == "kw")
    seen = set()
    for ov in overloads:
        positional = [p for p in ov if p[1] in ("pos", "var")]
        for i, (name, kind, default) in enumerate(positional):
            if name in NOT_IN_AD or name.startswith("_") or (label, name) in ACCEPTED:
                continue
            if kind == "var":  # ``*dims``: ad's ``(dims, *more_dims)`` takes the same calls
                if ad_var != i and not (ad_var == i + 1 and len(ad_pos) > i):
                    gaps.append(("names", f"{label}: torch takes *{name} at position {i}, ad does not"))
                continue
            if ad_var is not None and i >= ad_var:
                have = ad_by_name.get(name)
                if have is None and not ad_varkw:
                    gaps.append(("names", f"{label}: {name}= (torch's position {i}) not accepted by keyword"))
                continue
            if i >= len(ad_pos):
                if name not in ad_by_name and not ad_varkw:
                    gaps.append(("names", f"{label}: parameter {name!r} missing"))
                elif name in ad_by_name and name not in keyword_only:
                    gaps.append(("names", f"{label}: {name!r} is keyword-only in ad, positional ({i}) in torch"))
                continue
            if ad_pos[i][0] != name and ad_pos[i][0] not in names_at[i]:
                gaps.append(("names", f"{label}: position {i} is {ad_pos[i][0]!r} in ad, {name!r} in torch"))
                continue
            if ad_pos[i][0] == name:
                _compare_default(label, name, default, ad_pos[i][2], gaps, seen)
        for name, kind, default in ov:
            if kind != "kw" or name in NOT_IN_AD or name.startswith("_") or (label, name) in ACCEPTED:
                continue
            have = ad_by_name.get(name)
            if have is None:
                if not ad_varkw:
                    cat = name if name in ("out", "dtype", "device", "requires_grad") else "names"
                    gaps.append((cat, f"{label}: keyword {name}= missing"))
                continue
            if have[1] == "pos" and not any(name in names_at.get(i, ()) for i in range(len(ad_pos))):
                gaps.append(("names", f"{label}: {name!r} is keyword-only in torch, positional in ad"))
            _compare_default(label, name, default, have[2], gaps, seen)
    out, done = [], set()
    for g in gaps:  # one line per gap, whatever the number of overloads that show it
        if g not in done:
            done.add(g)
            out.append(g)
    return out


def _compare_default(label, name, theirs, ours, gaps, seen):
    if theirs in (REQUIRED, UNKNOWN) or name in seen or (label, name) in ACCEPTED:
        return
    seen.add(name)
    if ours is REQUIRED:
        gaps.append(("defaults", f"{label}: {name} is required in ad, torch's default is {theirs!r}"))
    elif not _same_default(theirs, ours):
        gaps.append(("defaults", f"{label}: {name} defaults to {ours!r} in ad, {theirs!r} in torch"))


def _same_default(theirs, ours):
    if theirs == () and ours is None:  # torch's ``dim=()`` of amax/roll/max_pool's stride: None in ad, same meaning
        return True
    if isinstance(theirs, (list, tuple)) and isinstance(ours, (list, tuple)):
        return list(theirs) == list(ours)
    if isinstance(theirs, bool) or isinstance(ours, bool):
        return theirs is ours
    try:
        return theirs == ours or (theirs is None) == (ours is None) and float(theirs) == float(ours)
    except (TypeError, ValueError):
        return False


def _public(ns, torch_ns, is_method):
    for name in sorted(dir(ns)):
        if name.startswith("_") or not hasattr(torch_ns, name):
            continue
        ours = getattr(ns, name)
        theirs = getattr(torch_ns, name)
        if not callable(ours) or isinstance(ours, type) or isinstance(theirs, type) or not callable(theirs):
            continue
        if is_method and isinstance(inspect.getattr_static(ns, name), property):
            continue
        yield name, ours, theirs


SIGNATURES_COMPARED = []


def probe_signatures():
    """Every public function of ad, ad.linalg, ad.nn.functional and every Tensor method that torch also has,
    against torch's overloads. Returns ``{category: [messages]}``."""
    found = {}
    spaces = [
        ("ad", ad, torch, "torch"),
        ("ad.linalg", ad.linalg, torch.linalg, "linalg"),
        ("ad.nn.functional", ad.nn.functional, torch.nn.functional, "nn"),
        ("ad.Tensor", ad.Tensor, torch.Tensor, "Tensor"),
    ]
    if hasattr(ad, "special"):
        spaces.append(("ad.special", ad.special, torch.special, "special"))
    for prefix, ns, torch_ns, kind in spaces:
        for name, ours, theirs in _public(ns, torch_ns, kind == "Tensor"):
            label = f"{prefix}.{name}"
            if label in NOT_TORCH:
                continue
            SIGNATURES_COMPARED.append(label)
            overloads = torch_overloads(theirs, kind)
            if overloads is None:
                found.setdefault("unknown", []).append(f"{label}: torch's signature not found")
                continue
            for cat, msg in compare(label, _python_params(ours, kind == "Tensor"), overloads):
                found.setdefault(cat, []).append(msg)
    return found


def main(verbose=False):
    gaps = []
    gaps += probe("ad", UNARY + BINARY + REDUCE + SHAPE + LINALG_TOP, ad, torch, True)
    gaps += probe("ad.linalg", LINALG, ad.linalg, torch.linalg, False)
    special = [n for n in dir(torch.special) if not n.startswith("_") and callable(getattr(torch.special, n))]
    gaps += probe("ad.special", [n for n in special if n != "Tensor"], ad.special, torch.special, False)
    gaps += probe("ad.nn.functional", NN, ad.nn.functional, torch.nn.functional, False)
    if getattr(ad, "cdist", None) is None:
        gaps.append("ad.cdist: missing")
    for name, why in COMPLEX.items():
        print(f"left out on purpose: linalg.{name} ({why}: raises NotImplementedError)")
    gaps += probe("ad", VIEWS, ad, torch, True)
    gaps += probe_values()
    gaps += probe_complex()
    signature_gaps = probe_signatures()  # {category: messages}
    out_gaps = signature_gaps.pop("out", [])
    out_left = [m for m in out_gaps if m.split(":")[0].removeprefix("ad.") in OUT_LEFT]
    gaps += [m for m in out_gaps if m not in out_left]
    for messages in signature_gaps.values():
        gaps += messages
    for g in gaps:
        print(g)
    if verbose:
        for m in out_left:
            print(f"left out: {m}")
    print(f"torch's out= left out on {len(out_left)} hot public functions (see OUT_LEFT)")
    if NO_INPLACE_FUNCTION:
        print(f"torch-namespace in-place functions ad leaves out: {' '.join(NO_INPLACE_FUNCTION)}")
    total = len(UNARY + BINARY + REDUCE + SHAPE + LINALG_TOP + LINALG + NN + VIEWS) + 1 + len(COMPLEX)
    print(f"{total} names probed, {len(set(SIGNATURES_COMPARED))} signatures compared with torch's, {len(gaps)} gap(s)")
    return gaps


if __name__ == "__main__":
    main("-v" in sys.argv)
