"""Session 18's parity hunt against torch 2.13 on what the other sweeps skip.

tests/test_parity_sweep.py compares values, exceptions and float64 gradients and tangents of its table
(``CASES``: every op of the op table and its neighbours, on 0-d, empty, transposed, sliced, int64, bool and
float32 inputs, broadcasting, negative and out-of-range dims). This file reruns that table in two variants:

- ``float32``: every float64 input made float32 (gradient leaves included), torch's default dtype float32 as
  well: the results' dtypes and values (float32's tolerance), and the gradients and forward tangents computed
  in float32, as torch computes them;
- ``strided``: every gradient leaf given as a non-contiguous view (every other element of a wider tensor, or a
  broadcast (expanded) tensor where the case asks for a contiguous one), float64: values, gradients, tangents.

And ``SPECIAL_POINTS``: the activations and losses with inf and NaN cotangents and tangents at the points where
their pieces meet (the derivative masks: torch selects, so an inf at a blocked point gives 0, never ``inf * 0``);
and the error messages of the op-table sections (``test_error_messages_as_torch``: torch's first line).

A difference is fixed, or listed with its reason in ``DELIBERATE`` (such a case must still differ: one that
agrees fails until its entry is deleted).
"""

import math
import os
import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad  # noqa: F401 - (ad.autograd.forward_ad in the forward variant)

torch = pytest.importorskip("torch")

import test_parity_sweep as base  # noqa: E402 - (after the importorskip: it imports torch)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

F32_TOL = 2e-5, 1e-6  # (rtol, atol) of float32 values, gradients and tangents


class _Float32Maker(base._Maker):
    """The table's inputs with float64 made float32 (gradient leaves too)."""

    def __call__(self, spec, dtype="float64", grad=False, layout=None):
        return super().__call__(spec, "float32" if dtype == "float64" else dtype, grad, layout)


class _StridedMaker(base._Maker):
    """The table's float64 gradient leaves as non-contiguous views: a stepped slice of a wider leaf (layout
    "s"), or, for a 0-d or empty one, the leaf itself."""

    def __call__(self, spec, dtype="float64", grad=False, layout=None):
        if grad and layout is None and dtype == "float64" and np.ndim(_spec_values(spec)) >= 1:
            layout = "s"
        return super().__call__(spec, dtype, grad, layout)


def _spec_values(spec):
    return np.empty(spec) if isinstance(spec, tuple) else np.asarray(spec)


def _floats(outs, dtype):
    return [o for o in outs if base._dtype_name(o.dtype) == dtype]


def _weighted(L, outs, dtype):
    total = None
    for o in _floats(outs, dtype):
        if not o.requires_grad:
            continue
        w = L.tensor(np.cos(np.arange(o.numel()) * 0.7 + 0.3).reshape(tuple(o.shape)).astype(dtype))
        term = (o * w).sum()
        total = term if total is None else total + term
    return total


def _run(L, fn, maker, torch_dtype):
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        T = maker(L)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return T, fn(L, T)
        except Exception as e:  # noqa: BLE001 - the class is what is compared
            return T, e
    finally:
        torch.set_default_dtype(default)


def _close(a, t, where, tol):
    assert base._dtype_name(a.dtype) == base._dtype_name(t.dtype), f"{where}: dtype ad {a.dtype} torch {t.dtype}"
    assert tuple(a.shape) == tuple(t.shape), f"{where}: shape ad {tuple(a.shape)} torch {tuple(t.shape)}"
    av, tv = base._np(a), base._np(t)
    if tv.dtype.kind == "f":
        np.testing.assert_allclose(av, tv, rtol=tol[0], atol=tol[1], equal_nan=True, err_msg=where)
    else:
        np.testing.assert_array_equal(av, tv, err_msg=where)


def _check_variant(fn, maker, dtype, torch_dtype, tol):
    """Reverse mode: exception class, results (dtype, shape, values) and the gradients of the ``dtype`` results
    (``(out * w).sum()``) at the gradient leaves."""
    TT, t_out = _run(torch, fn, maker, torch_dtype)
    TA, a_out = _run(ad, fn, maker, torch_dtype)
    if isinstance(t_out, Exception):
        assert isinstance(a_out, Exception), f"torch raises {type(t_out).__name__}: {t_out}; ad returns a result"
        assert base._builtin_class(a_out) is base._builtin_class(t_out), (
            f"torch raises {type(t_out).__name__} ({t_out}); ad {type(a_out).__name__} ({a_out})"
        )
        return
    if isinstance(a_out, Exception):
        raise AssertionError(f"ad raises {type(a_out).__name__}: {a_out}; torch computes")
    t_outs, a_outs = base._outputs(t_out), base._outputs(a_out)
    assert len(a_outs) == len(t_outs), f"{len(a_outs)} tensors, torch {len(t_outs)}"
    for i, (a, t) in enumerate(zip(a_outs, t_outs)):
        _close(a, t, f"result[{i}]", tol)
    t_total, a_total = _weighted(torch, t_outs, dtype), _weighted(ad, a_outs, dtype)
    if t_total is None or not TT.leaves:
        return
    try:
        t_grads = torch.autograd.grad(t_total, TT.leaves, allow_unused=True)
    except RuntimeError:
        return  # (no derivative in torch: the float64 sweep compares what ad does there)
    assert a_total is not None, "torch's result is differentiable, ad's does not require grad"
    a_grads = ad.autograd.grad(a_total, TA.leaves, allow_unused=True)
    for i, (ag, tg) in enumerate(zip(a_grads, t_grads)):
        if tg is None or ag is None:
            other = ag if tg is None else tg
            assert other is None or not np.any(base._np(other)), f"grad[{i}]: one None, the other {other}"
            continue
        _close(ag, tg, f"grad[{i}]", tol)


class _Dual:
    """``maker`` whose gradient leaves of ``dtype`` are made dual (a fixed tangent each)."""

    def __init__(self, maker, fw, dtype):
        self.maker, self.fw, self.dtype = maker, fw, dtype

    def __call__(self, L):
        inner = self.maker(L)
        fw, leaf_dtype = self.fw, self.dtype

        def make(spec, dtype="float64", grad=False, layout=None):
            t = inner(spec, dtype, False, layout)
            if grad and base._dtype_name(t.dtype) == leaf_dtype:
                inner.leaves.append(t)
                tangent = np.sin(np.arange(t.numel()) * 0.9 + len(inner.leaves)).reshape(tuple(t.shape))
                t = fw.make_dual(t, L.tensor(tangent.astype(leaf_dtype)))
            return t

        make.leaves = inner.leaves
        return make


def _tangents(L, fw, fn, maker, dtype, torch_dtype):
    with fw.dual_level():
        _, out = _run(L, fn, _Dual(maker, fw, dtype), torch_dtype)
        if isinstance(out, Exception):
            return out
        return [fw.unpack_dual(o).tangent for o in _floats(base._outputs(out), dtype)]


def _check_forward_variant(fn, maker, dtype, torch_dtype, tol):
    from torch.autograd import forward_ad as tfw

    theirs = _tangents(torch, tfw, fn, maker, dtype, torch_dtype)
    if isinstance(theirs, Exception):
        return
    ours = _tangents(ad, ad.autograd.forward_ad, fn, maker, dtype, torch_dtype)
    assert not isinstance(ours, Exception), f"ad raises {type(ours).__name__}: {ours}"
    assert len(ours) == len(theirs), f"{len(ours)} {dtype} results, torch {len(theirs)}"
    for i, (at, tt) in enumerate(zip(ours, theirs)):
        if tt is None or not np.any(base._np(tt)):
            assert at is None or np.allclose(base._np(at), 0.0, atol=tol[1]), f"tangent[{i}]: torch none, ad {at}"
        else:
            assert at is not None, f"tangent[{i}]: ad None, torch {tt}"
            _close(at, tt, f"tangent[{i}]", tol)


VARIANTS = {
    "float32": (_Float32Maker, "float32", torch.float64, F32_TOL),
    "strided": (_StridedMaker, "float64", torch.float64, (1e-6, 1e-9)),
}

# case (as test_parity_sweep's) -> why ad differs there, per variant
_PROMOTION = "numpy's promotion: a float32 tensor with an int64 (or float64) one computes in float64 (README)"
_TANGENT_DTYPE = "the tangent of var/std's NaN (a single value) is float32 as the primal (torch's: float64)"
DELIBERATE = {
    "float32": {
        "outer": _PROMOTION,
        "special.chebyshev_v-int-n": _PROMOTION,
        "RMSNorm": _PROMOTION + " (the module's float64 weight; torch computes in the input's float32)",
        "RMSNorm-zeros": _PROMOTION + " (the module's float64 weight; torch computes in the input's float32)",
        "grid_sample-bicubic-reflection-False": "float32 rounding: one of 12 gradient elements differs by 1.6e-4 "
        "relative (a sum of 16 weighted taps; float64 agrees)",
    },
    "strided": {},
}
FORWARD_DELIBERATE = {
    "float32": {
        "special.chebyshev_v-int-n": _PROMOTION,
        "RMSNorm": _PROMOTION,
        "RMSNorm-zeros": _PROMOTION,
        **{
            case: _TANGENT_DTYPE
            for case in (
                "std-0d",
                "std-0d-dim0",
                "std-method-0d-dim0",
                "std-0d-dim-1-keep",
                "std-empty-all",
                "var-0d",
                "var-0d-dim0",
                "var-method-0d-dim0",
                "var-0d-dim-1-keep",
                "var_mean-0d",
            )
        },
    },
    "strided": {},
}

# the cases the float64 sweep already lists as deliberate or promoted differ for the same reasons here
_KNOWN = set(base.DELIBERATE) | set(base.PROMOTED)
_KNOWN_FORWARD = _KNOWN | set(base.FORWARD_DELIBERATE)


# The op table's sections run by default (about 17 s); AD_SWEEP18_ALL=1 runs every section of the table (nn
# modules and functional, session 15's surface: about 55 s; session 18 ran them: the differences listed above)
_OP_TABLE_SECTIONS = ("unary", "binary", "reductions", "shapes", "indexing", "special", "linalg")
SWEEP_SECTIONS = list(base.SECTIONS) if os.environ.get("AD_SWEEP18_ALL") else list(_OP_TABLE_SECTIONS)


@pytest.mark.parametrize("section", SWEEP_SECTIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parity_variant(variant, section):
    maker, dtype, torch_dtype, tol = VARIANTS[variant]
    cases = [c for c in base.SECTIONS[section] if c not in _KNOWN]
    check = lambda case: _check_variant(base.CASES[case], maker, dtype, torch_dtype, tol)
    failures = base._differences(cases, check, DELIBERATE[variant], f"DELIBERATE[{variant!r}]")
    assert not failures, f"{len(failures)} differences from torch ({variant}):\n" + "\n".join(failures)


@pytest.mark.parametrize("section", [s for s in base.FORWARD_SECTIONS if s in SWEEP_SECTIONS])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_parity_variant(variant, section):
    maker, dtype, torch_dtype, tol = VARIANTS[variant]
    cases = [c for c in base.SECTIONS[section] if c not in _KNOWN_FORWARD]
    check = lambda case: _check_forward_variant(base.CASES[case], maker, dtype, torch_dtype, tol)
    failures = base._differences(cases, check, FORWARD_DELIBERATE[variant], f"FORWARD_DELIBERATE[{variant!r}]")
    assert not failures, f"{len(failures)} forward-mode differences from torch ({variant}):\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------
# the derivative masks: activations and losses at the points where their pieces meet, with inf, -inf and NaN
# cotangents (reverse) and tangents (forward), float64; the values too

_X = [-math.inf, -800.0, -50.0, -20.0, -3.0, -1.0, -0.5, -0.0, 0.0, 0.3, 0.5, 1.0, 3.0, 6.0, 20.0, 25.0, 50.0]
_X = _X + [800.0, math.inf, math.nan]
_T = [1.0, 0.0, 0.25, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.75, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def _F(L):
    return L.nn.functional


SPECIAL_POINTS = {
    "relu": lambda L, x: _F(L).relu(x),
    "relu6": lambda L, x: _F(L).relu6(x),
    "elu": lambda L, x: _F(L).elu(x),
    "selu": lambda L, x: _F(L).selu(x),
    "celu": lambda L, x: _F(L).celu(x, 0.5),
    "leaky_relu": lambda L, x: _F(L).leaky_relu(x, 0.2),
    "hardtanh": lambda L, x: _F(L).hardtanh(x, -0.5, 3.0),
    "hardsigmoid": lambda L, x: _F(L).hardsigmoid(x),
    "hardswish": lambda L, x: _F(L).hardswish(x),
    "softplus": lambda L, x: _F(L).softplus(x),
    "softplus-beta": lambda L, x: _F(L).softplus(x, 2.0, 5.0),
    "logsigmoid": lambda L, x: _F(L).logsigmoid(x),
    "softsign": lambda L, x: _F(L).softsign(x),
    "tanhshrink": lambda L, x: _F(L).tanhshrink(x),
    "softshrink": lambda L, x: _F(L).softshrink(x, 0.5),
    "hardshrink": lambda L, x: _F(L).hardshrink(x, 0.5),
    "threshold": lambda L, x: _F(L).threshold(x, 0.5, -2.0),
    "sigmoid": lambda L, x: L.sigmoid(x),
    "tanh": lambda L, x: L.tanh(x),
    "silu": lambda L, x: _F(L).silu(x),
    "gelu": lambda L, x: _F(L).gelu(x),
    "mish": lambda L, x: _F(L).mish(x),
    "amax": lambda L, x: x.reshape(4, 5).amax(1),
    "amin": lambda L, x: x.reshape(4, 5).amin(0),
    "clamp": lambda L, x: x.clamp(-1.0, 1.0),
    "bce_with_logits": lambda L, x: _F(L).binary_cross_entropy_with_logits(
        x, L.tensor(_T, dtype=L.float64), reduction="none"
    ),
    "soft_margin_loss": lambda L, x: _F(L).soft_margin_loss(x, L.tensor(_T, dtype=L.float64) * 2 - 1, reduction="none"),
}

# (silu, gelu, mish, elu, selu, celu: one row each with torch's partial since session 19, ad/ops/activation_ops.py;
# binary_cross_entropy_with_logits since session 20, opcode BCE_LOGITS)
SPECIAL_DELIBERATE = {
    "soft_margin_loss": "log(1 + exp(-y x)) written without overflow as a sum of pieces (inf - inf under an inf "
    "cotangent; torch's log1p(exp(800)) is inf, DELIBERATE in test_parity_sweep)",
    "hardswish": "hardswish(-inf) is 0 (torch: -inf * 0, NaN; README)",
}


def _special_derivatives(L, fw, fn):
    x0 = np.array(_X)
    out = []
    for c in (math.inf, -math.inf, math.nan):
        x = L.tensor(x0.copy(), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = fn(L, x)
            (g,) = L.autograd.grad(y, x, L.full(tuple(y.shape), c, dtype=L.float64))
            with fw.dual_level():
                d = fw.make_dual(L.tensor(x0.copy()), L.full((len(_X),), c, dtype=L.float64))
                t = fw.unpack_dual(fn(L, d)).tangent
        out += [base._np(y), base._np(g), np.zeros(y.shape) if t is None else base._np(t)]
    return out


@pytest.mark.parametrize("name", list(SPECIAL_POINTS))
def test_derivative_masks_as_torch(name):
    from torch.autograd import forward_ad as tfw

    ours = _special_derivatives(ad, ad.autograd.forward_ad, SPECIAL_POINTS[name])
    theirs = _special_derivatives(torch, tfw, SPECIAL_POINTS[name])
    what = ["value", "gradient", "tangent"]
    differs = []
    for k, (a, t) in enumerate(zip(ours, theirs)):
        if not np.allclose(a, t, rtol=1e-6, atol=1e-12, equal_nan=True):
            differs.append(f"{what[k % 3]} under {('inf', '-inf', 'nan')[k // 3]}: ad {a}, torch {t}")
    if name in SPECIAL_DELIBERATE:
        assert differs, f"{name} agrees with torch now: delete its SPECIAL_DELIBERATE entry"
    else:
        assert not differs, f"{name}: " + "; ".join(differs)


# ---------------------------------------------------------------------------------------------------------
# error messages: where torch raises, ad raises the same class (test_parity_sweep) with torch's message: its first
# line, which ad's may extend (index_select names the index and the size)

MESSAGE_DIFFERS = {
    **{
        f"logsumexp-{k}": "Python's own message for the missing argument (ad's logsumexp is a Python function)"
        for k in ("all", "0d", "empty-all", "int64-all")
    },
    **{
        f"count_nonzero-{k}": "Python's own message for the unknown keepdim (torch's: no overload matches)"
        for k in ("0d-dim-1-keep", "neg-keep", "method-neg-keep", "f32")
    },
}


def _first_line(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0].strip() if str(e) else ''}"


def _check_message(fn):
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _, theirs = base._run(torch, fn)
    finally:
        torch.set_default_dtype(default)
    if not isinstance(theirs, Exception):
        return
    _, ours = base._run(ad, fn)
    assert isinstance(ours, Exception), f"torch raises {_first_line(theirs)}; ad computes"
    want = str(theirs).splitlines()[0].strip() if str(theirs) else ""
    got = str(ours).splitlines()[0].strip() if str(ours) else ""
    assert got.startswith(want), f"torch: {_first_line(theirs)} | ad: {_first_line(ours)}"


@pytest.mark.parametrize("section", _OP_TABLE_SECTIONS)
def test_error_messages_as_torch(section):
    cases = [c for c in base.SECTIONS[section] if c not in _KNOWN]
    check = lambda case: _check_message(base.CASES[case])
    failures = base._differences(cases, check, MESSAGE_DIFFERS, "MESSAGE_DIFFERS")
    assert not failures, f"{len(failures)} messages differ from torch's:\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------
# the p-norm composite of nn.functional (normalize, cosine_similarity, pairwise_distance) on vectors with NaN, inf
# and zeros: a NaN element makes the norm NaN (it was masked as a zero: the norm of [-2, NaN, 0, -3] was 0, and
# normalize gave -2e12)

_NORM_X = [[-2.0, math.nan, 0.0, -3.0], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], [math.inf, 1.0, 0.0, 2.0]]
_NORM_Y = [[1.0, 2.0, 0.0, 1.0], [1.0, math.nan, 3.0, 4.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
NORMS = {
    "normalize": lambda L, x, y: _F(L).normalize(x, dim=1),
    "normalize-p1": lambda L, x, y: _F(L).normalize(x, p=1, dim=1),
    "normalize-p3": lambda L, x, y: _F(L).normalize(x, p=3, dim=1),
    "cosine_similarity": lambda L, x, y: _F(L).cosine_similarity(x, y),
    "pairwise_distance": lambda L, x, y: _F(L).pairwise_distance(x, y),
    "pairwise_distance-p3": lambda L, x, y: _F(L).pairwise_distance(x, y, p=3),
}
# (name, "value" or "grad") -> why
NORM_DELIBERATE = {
    ("normalize-p3", "grad"): "a zero element's slope in |x|^p is 0, also beside an inf (torch: NaN)",
}


def test_binary_cross_entropy_refuses_nan_as_torch():
    """A NaN probability is outside [0, 1]: torch raises, ad did not (its mask gave the clamped log, a loss of 100)."""
    for L in (torch, ad):
        with pytest.raises(RuntimeError, match="between 0 and 1"):
            _F(L).binary_cross_entropy(L.tensor([math.nan, 0.5]), L.tensor([1.0, 1.0]))


@pytest.mark.parametrize("name", list(NORMS))
def test_norms_with_nan_and_inf_as_torch(name):
    got = {}
    for L in (ad, torch):
        x = L.tensor(np.array(_NORM_X), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = NORMS[name](L, x, L.tensor(np.array(_NORM_Y)))
            (g,) = L.autograd.grad(v, x, L.ones_like(v))
        got[L.__name__] = {"value": base._np(v), "grad": base._np(g)}
    for what in ("value", "grad"):
        same = np.allclose(got["ad"][what], got["torch"][what], rtol=1e-6, atol=1e-12, equal_nan=True)
        if (name, what) in NORM_DELIBERATE:
            assert not same, f"{name} {what} agrees with torch now: delete its NORM_DELIBERATE entry"
        else:
            assert same, f"{name} {what}: ad {got['ad'][what]}, torch {got['torch'][what]}"
