"""A randomized parity sweep against torch over the edge cases users hit (0-d and empty tensors, negative dims,
``keepdim``, int64/bool/float32 inputs, non-contiguous views, broadcasting, bad input).

``CASES`` is the table: ``name -> fn(L, T)``. ``fn`` makes one call with ``L`` standing for the library (``ad`` or
``torch``) and ``T(values, dtype="float64", grad=False, layout=None)`` making an input tensor in that library from
the same numpy values (``layout``: ``"t"`` transposed, ``"s"`` every other column; a leaf that ``grad`` marks is a
leaf of the gradient check). ``_check`` runs both and compares:

- the exception class when torch raises (``ad`` must raise the same builtin class, never from numpy or numba);
- the result's structure (tensor, tuple, Python scalar), and each tensor's dtype, shape and values (NaN equal);
- where a leaf requires grad and the result is a float64 tensor that torch differentiates: the gradient of
  ``(out * w).sum()`` for a fixed weight ``w``.

torch runs with ``float64`` as its default dtype: ``ad`` follows numpy's float64 default for Python floats and for
integer inputs to float ops (README, "Deliberate differences"), so that setting makes the two agree everywhere
else. ``PROMOTED`` cases are where numpy's promotion gives float64 and torch's float32 (an int64 tensor with a
float32 one, a float32 tensor with a 0-d float64 one): their values are compared at float32's precision. The
other deliberate differences (README) are ``DELIBERATE``: ``id -> why``; such a case must still differ from torch
(one that agrees fails until its entry is deleted).

The sweep runs one pytest item per section (``SECTIONS``), listing every differing case of the section at once.
``test_forward_parity`` reruns the sections in forward mode (the ``grad`` leaves made dual) and compares the
tangents; ``FORWARD_DELIBERATE`` lists where ad's tangent follows its gradient rather than torch's forward rule.

Where to start: ``_check``; the table is in sections (elementwise, reductions, shapes, indexing, the session-8
surface, nn.functional, in-place error paths; session 15's surface in tests/parity_sweep_session15.py).
"""

import math
import warnings

import numpy as np
import pytest
from parity_sweep_session15 import DELIBERATE15, FORWARD_DELIBERATE15, SECTIONS15

import ad
import ad.autograd.forward_ad  # noqa: F401 - (ad.autograd.forward_ad in the forward sweep)

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

_RNG = np.random.default_rng(20261203)
_BUILTIN_ERRORS = (IndexError, ValueError, TypeError, NotImplementedError, KeyError, ZeroDivisionError)


def _values(spec, dtype):
    """numpy values for ``spec`` (a shape, or explicit data), reproducible per call."""
    if isinstance(spec, tuple):
        n = math.prod(spec)
        if dtype == "bool":
            return (np.arange(n) % 3 == 1).reshape(spec)
        if dtype in ("int64", "int32", "uint8"):
            return ((np.arange(n) * 7) % 5 - (0 if dtype == "uint8" else 2)).reshape(spec).astype(dtype)
        return (np.linspace(0.15, 0.85, n) * np.where(np.arange(n) % 4 == 3, -1, 1)).reshape(spec).astype(dtype)
    return np.asarray(spec, dtype=dtype)


class _Maker:
    def __init__(self, L):
        self.L = L
        self.leaves = []

    def __call__(self, spec, dtype="float64", grad=False, layout=None):
        arr = _values(spec, dtype)
        if layout == "t":
            arr = np.ascontiguousarray(arr.T)
        elif layout == "s":
            arr = np.repeat(arr, 2, axis=-1)
        t = self.L.tensor(arr.copy(), dtype=getattr(self.L, dtype))
        if grad:
            t.requires_grad_(True)
            self.leaves.append(t)
        if layout == "t":
            t = t.t() if t.ndim == 2 else t.permute(*reversed(range(t.ndim)))
        elif layout == "s":
            t = t[..., ::2]
        return t


def _builtin_class(exc):
    for k in type(exc).__mro__:
        if k in _BUILTIN_ERRORS or k is RuntimeError:
            return k
    return type(exc)


def _run(L, fn):
    T = _Maker(L)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(L, T)
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return T, e
    return T, out


def _np(t):
    if isinstance(t, torch.Tensor):
        return np.zeros(t.shape) if t._is_zerotensor() else t.detach().numpy()
    return np.asarray(t.detach().cpu()._data)


def _dtype_name(dt):
    return str(dt).replace("torch.", "")


def _compare(a, t, where, promoted=False):
    if isinstance(t, torch.Tensor):
        assert isinstance(a, ad.Tensor), f"{where}: ad gave {type(a).__name__}, torch a Tensor"
        tol = 1e-6, 1e-9
        if promoted and (_dtype_name(a.dtype), _dtype_name(t.dtype)) == ("float64", "float32"):
            tol = 1e-5, 1e-6  # ad's float64 (numpy's promotion) against torch's float32
        else:
            assert _dtype_name(a.dtype) == _dtype_name(t.dtype), f"{where}: dtype ad {a.dtype} torch {t.dtype}"
        assert tuple(a.shape) == tuple(t.shape), f"{where}: shape ad {tuple(a.shape)} torch {tuple(t.shape)}"
        av, tv = _np(a), _np(t)
        if tv.dtype.kind == "f":
            np.testing.assert_allclose(av, tv, rtol=tol[0], atol=tol[1], equal_nan=True, err_msg=where)
        else:
            np.testing.assert_array_equal(av, tv, err_msg=where)
    elif isinstance(t, (tuple, list)):
        assert isinstance(a, (tuple, list)), f"{where}: ad gave {type(a).__name__}, torch {type(t).__name__}"
        assert len(a) == len(t), f"{where}: ad gave {len(a)} results, torch {len(t)}"
        for i, (x, y) in enumerate(zip(a, t)):
            _compare(x, y, f"{where}[{i}]", promoted)
    elif isinstance(t, (torch.dtype, torch.Size)):
        assert _dtype_name(a) == _dtype_name(t) if isinstance(t, torch.dtype) else tuple(a) == tuple(t), where
    else:
        assert type(a) is type(t), f"{where}: ad gave {type(a).__name__} {a!r}, torch {type(t).__name__} {t!r}"
        if isinstance(t, float) and math.isnan(t):
            assert math.isnan(a), where
        else:
            assert a == t or (isinstance(t, float) and math.isclose(a, t, rel_tol=1e-9)), f"{where}: {a!r} {t!r}"


def _outputs(out):
    if isinstance(out, torch.Tensor) or isinstance(out, ad.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _outputs(x)]
    return []


def _weighted_sum(L, outs):
    total = None
    for o in outs:
        if not o.requires_grad or _dtype_name(o.dtype) != "float64":
            continue
        w = L.tensor(np.cos(np.arange(o.numel()) * 0.7 + 0.3).reshape(tuple(o.shape)))
        term = (o * w).sum()
        total = term if total is None else total + term
    return total


def _check(fn, promoted=False):
    torch_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        TT, t_out = _run(torch, fn)
    finally:
        torch.set_default_dtype(torch_default)
    TA, a_out = _run(ad, fn)
    if isinstance(t_out, Exception):
        assert isinstance(a_out, Exception), f"torch raises {type(t_out).__name__}: {t_out}; ad returns {a_out!r}"
        assert _builtin_class(a_out) is _builtin_class(t_out), (
            f"torch raises {type(t_out).__name__} ({t_out}); ad {type(a_out).__name__} ({a_out})"
        )
        assert "numba" not in type(a_out).__module__ and "numpy" not in type(a_out).__module__, repr(a_out)
        return
    if isinstance(a_out, Exception):
        raise AssertionError(f"ad raises {type(a_out).__name__}: {a_out}; torch computes") from a_out
    _compare(a_out, t_out, "result", promoted)
    t_total = _weighted_sum(torch, _outputs(t_out))
    a_total = _weighted_sum(ad, _outputs(a_out))
    if t_total is None:
        return
    try:
        t_grads = torch.autograd.grad(t_total, TT.leaves, allow_unused=True)
    except RuntimeError:  # torch has no derivative (heaviside, nextafter): ad may raise or not record
        assert a_total is None, "torch's backward raises, ad's result requires grad"
        return
    assert a_total is not None, "torch's result is differentiable, ad's does not require grad"
    a_grads = ad.autograd.grad(a_total, TA.leaves, allow_unused=True)
    for i, (ag, tg) in enumerate(zip(a_grads, t_grads)):
        if tg is None:
            assert ag is None or not np.any(_np(ag)), f"grad[{i}]: torch None, ad {ag}"
        else:
            assert ag is not None or not np.any(_np(tg)), f"grad[{i}]: ad None, torch {tg}"
            if ag is None:
                continue
            _compare(ag, tg, f"grad[{i}]", promoted)


# ---------------------------------------------------------------------------------------------------------
# the table

CASES = {}
SECTIONS = {}  # section -> case names (one test each: a pytest item per case costs more than the case)
_section = []


def _begin(section):
    _section[:] = [section]
    SECTIONS[section] = []


def _add(name, fn):
    assert name not in CASES, name
    CASES[name] = fn
    SECTIONS[_section[0]].append(name)


# ---- unary elementwise: 0-d, empty, transposed, sliced, int64, bool, float32
_begin("unary")
UNARY = (
    "abs acos acosh asin asinh atan atanh ceil cos cosh deg2rad digamma erf erfc erfinv exp exp2 expm1 floor frac "
    "lgamma log log10 log1p log2 neg reciprocal round rsqrt sigmoid sign sin sinc sinh sqrt square tan tanh trunc "
    "rad2deg signbit isfinite isinf isnan isneginf isposinf logit nan_to_num relu sgn positive fix logical_not "
    "negative absolute arccos arcsin arctan"
).split()
UNARY_INPUTS = {
    "0d": lambda T: T(0.3, grad=True),
    "empty": lambda T: T((0, 3), grad=True),
    "t": lambda T: T((3, 2), grad=True, layout="t"),
    "s": lambda T: T((2, 3), grad=True, layout="s"),
    "int64": lambda T: T((2, 3), "int64"),
    "bool": lambda T: T((4,), "bool"),
    "f32": lambda T: T((2, 2), "float32"),
}
for _name in UNARY:
    for _k, _mk in UNARY_INPUTS.items():
        _add(f"{_name}-{_k}", lambda L, T, n=_name, mk=_mk: getattr(L, n)(mk(T)))
        if _k in ("t", "int64"):
            _add(f"{_name}-method-{_k}", lambda L, T, n=_name, mk=_mk: getattr(mk(T), n)())

# ---- binary elementwise: broadcasting, 0-d with tensors, mixed dtypes, Python scalars, empty
_begin("binary")
BINARY = (
    "add sub mul div true_divide atan2 pow maximum minimum fmax fmin fmod remainder hypot copysign xlogy "
    "logaddexp logaddexp2 float_power ldexp nextafter heaviside eq ne lt le gt ge logical_and logical_or "
    "logical_xor floor_divide subtract multiply divide arctan2"
).split()
BINARY_INPUTS = {
    "bcast": lambda T: (T((3, 1), grad=True), T((4,), grad=True)),
    "0d": lambda T: (T(0.4, grad=True), T((2, 3), grad=True, layout="t")),
    "i64-f32": lambda T: (T((2, 3), "int64"), T((2, 3), "float32")),
    "bool-i64": lambda T: (T((2, 3), "bool"), T((2, 3), "int64")),
    "i64-i64": lambda T: (T((2, 3), "int64"), T([[1, 2, 3], [3, 2, 1]], "int64")),
    "f64-2": lambda T: (T((2, 3), grad=True), 2),
    "f32-2.5": lambda T: (T((2, 3), "float32"), 2.5),
    "i64-2.5": lambda T: (T((2, 3), "int64"), 2.5),
    "i64-0d-f32": lambda T: (T((2, 3), "int64"), T(1.5, "float32")),
    "f32-0d-f64": lambda T: (T((2, 3), "float32"), T(1.5)),
    "empty": lambda T: (T((0, 3), grad=True), T((3,), grad=True)),
    "bad-shapes": lambda T: (T((2, 3)), T((4,))),
}
for _name in BINARY:
    for _k, _mk in BINARY_INPUTS.items():
        _add(f"{_name}-{_k}", lambda L, T, n=_name, mk=_mk: getattr(L, n)(*mk(T)))
for _name in "bitwise_and bitwise_or bitwise_xor gcd lcm bitwise_left_shift bitwise_right_shift".split():
    _add(f"{_name}-i64", lambda L, T, n=_name: getattr(L, n)(T([[3, 6, 9]], "int64"), T([[2], [4]], "int64")))
    _add(f"{_name}-bool", lambda L, T, n=_name: getattr(L, n)(T((4,), "bool"), T((4,), "bool")))
    _add(f"{_name}-float", lambda L, T, n=_name: getattr(L, n)(T((3,)), T((3,))))

# ---- reductions: 0-d (dim 0 / -1), negative dims, keepdim, tuples of dims, empty, int64/bool, bad dim
_begin("reductions")
REDUCE = "sum mean prod amax amin logsumexp std var nansum nanmean norm count_nonzero".split()
REDUCE_CALLS = {
    "all": lambda L, n, T: getattr(L, n)(T((2, 3), grad=True, layout="t")),
    "0d": lambda L, n, T: getattr(L, n)(T(0.7, grad=True)),
    "0d-dim0": lambda L, n, T: getattr(L, n)(T(0.7, grad=True), 0),
    "0d-dim-1-keep": lambda L, n, T: getattr(L, n)(T(0.7, grad=True), -1, keepdim=True),
    "neg-keep": lambda L, n, T: getattr(L, n)(T((2, 3), grad=True, layout="s"), -1, keepdim=True),
    "tuple": lambda L, n, T: getattr(L, n)(T((2, 3, 2), grad=True), (0, -1)),
    "empty-dim0": lambda L, n, T: getattr(L, n)(T((0, 3), grad=True), 0),
    "empty-dim1": lambda L, n, T: getattr(L, n)(T((0, 3), grad=True), 1),
    "empty-all": lambda L, n, T: getattr(L, n)(T((0, 3), grad=True)),
    "int64": lambda L, n, T: getattr(L, n)(T((2, 3), "int64"), 1),
    "int64-all": lambda L, n, T: getattr(L, n)(T((2, 3), "int64")),
    "bool": lambda L, n, T: getattr(L, n)(T((2, 3), "bool"), 0),
    "f32": lambda L, n, T: getattr(L, n)(T((2, 3), "float32"), 0, keepdim=True),
    "bad-dim": lambda L, n, T: getattr(L, n)(T((2, 3)), 2),
    "dup-dim": lambda L, n, T: getattr(L, n)(T((2, 3)), (1, -1)),
}
for _name in REDUCE:
    for _k, _c in REDUCE_CALLS.items():
        _add(f"{_name}-{_k}", lambda L, T, n=_name, c=_c: c(L, n, T))
        if _k in ("neg-keep", "0d-dim0", "int64"):
            _add(f"{_name}-method-{_k}", lambda L, T, n=_name, c=_c: c(_MethodLib(L), n, T))

# reductions that return (values, indices) or indices, and the scans
INDEXED = "max min median nanmedian argmax argmin cumsum cumprod logcumsumexp cummax cummin mode".split()
INDEXED_CALLS = {
    "0d-dim0": lambda L, n, T: getattr(L, n)(T(0.7, grad=True), 0),
    "0d-dim-1": lambda L, n, T: getattr(L, n)(T(0.7, grad=True), -1),
    "neg": lambda L, n, T: getattr(L, n)(T((2, 3), grad=True, layout="t"), -1),
    "empty-dim1": lambda L, n, T: getattr(L, n)(T((0, 3), grad=True), 1),
    "empty-dim0": lambda L, n, T: getattr(L, n)(T((0, 3), grad=True), 0),
    "int64": lambda L, n, T: getattr(L, n)(T((2, 3), "int64"), 1),
    "bool": lambda L, n, T: getattr(L, n)(T((2, 3), "bool"), 1),
    "bad-dim": lambda L, n, T: getattr(L, n)(T((2, 3)), -3),
}
for _name in INDEXED:
    for _k, _c in INDEXED_CALLS.items():
        _add(f"{_name}-{_k}", lambda L, T, n=_name, c=_c: c(L, n, T))
for _name in "max min median nanmedian argmax argmin".split():
    _add(f"{_name}-keep", lambda L, T, n=_name: getattr(L, n)(T((2, 3), grad=True), 0, keepdim=True))
    _add(f"{_name}-full-0d", lambda L, T, n=_name: getattr(L, n)(T(0.2, grad=True)))
    _add(f"{_name}-full-empty", lambda L, T, n=_name: getattr(L, n)(T((0,), grad=True)))
for _name in "softmax log_softmax".split():
    _add(f"{_name}-0d", lambda L, T, n=_name: getattr(L, n)(T(0.3, grad=True), 0))
    _add(f"{_name}-neg", lambda L, T, n=_name: getattr(L, n)(T((2, 3), grad=True, layout="t"), -1))
    _add(f"{_name}-empty", lambda L, T, n=_name: getattr(L, n)(T((0, 3), grad=True), 1))
    _add(f"{_name}-int64", lambda L, T, n=_name: getattr(L, n)(T((2, 3), "int64"), 1))
    _add(f"{_name}-dtype", lambda L, T, n=_name: getattr(L, n)(T((2, 3), "float32"), 1, dtype=L.float64))
for _name in "all any".split():
    for _k, _mk in {
        "f64": lambda T: T((2, 3)),
        "i64": lambda T: T((2, 3), "int64"),
        "bool": lambda T: T((2, 3), "bool"),
        "empty": lambda T: T((0, 3)),
        "u8": lambda T: T((2, 3), "uint8"),
    }.items():
        _add(f"{_name}-{_k}", lambda L, T, n=_name, mk=_mk: getattr(L, n)(mk(T)))
        _add(f"{_name}-{_k}-dim", lambda L, T, n=_name, mk=_mk: getattr(L, n)(mk(T), -1, keepdim=True))
_add("aminmax-0d", lambda L, T: L.aminmax(T(0.5)))
_add("aminmax-dim", lambda L, T: L.aminmax(T((2, 3)), dim=-1, keepdim=True))
_add("aminmax-empty", lambda L, T: L.aminmax(T((0, 3))))
_add("std-correction", lambda L, T: L.std(T((2, 3), grad=True), dim=1, correction=0))
_add("var-unbiased-1", lambda L, T: L.var(T((1, 3), grad=True), 0))
_add("std_mean", lambda L, T: L.std_mean(T((2, 3), grad=True), dim=-1, keepdim=True))
_add("var_mean-0d", lambda L, T: L.var_mean(T(0.5, grad=True)))
_add("sum-dtype", lambda L, T: L.sum(T((2, 3), "int64"), 0, dtype=L.float64))
_add("mean-dtype", lambda L, T: L.mean(T((2, 3), "int64"), dtype=L.float64))
_add("prod-dtype-f32", lambda L, T: L.prod(T((2, 3)), 1, dtype=L.float32))
_add("norm-p1-dim", lambda L, T: L.norm(T((2, 3), grad=True), 1, -1))
_add("norm-inf", lambda L, T: L.norm(T((2, 3), grad=True), float("inf")))
_add("norm-0d-neg", lambda L, T: L.norm(T(-0.5, grad=True)))
_add("logsumexp-inf", lambda L, T: L.logsumexp(T([[-math.inf, -math.inf], [1.0, 2.0]], grad=True), 1))


class _MethodLib:
    """``getattr(L, name)(x, ...)`` calls ``x.name(...)``: the Tensor method with the same arguments."""

    def __init__(self, L):
        self.L = L

    def __getattr__(self, name):
        return lambda x, *a, **k: getattr(x, name)(*a, **k)


# ---- shapes and views
_begin("shapes")
SHAPE = {
    "reshape-0d": lambda L, T: L.reshape(T(0.5, grad=True), (1, 1)),
    "reshape-empty": lambda L, T: L.reshape(T((0, 3), grad=True), (3, -1)),
    "reshape-bad": lambda L, T: L.reshape(T((2, 3)), (4, -1)),
    "reshape-t": lambda L, T: L.reshape(T((2, 3), grad=True, layout="t"), (-1,)),
    "view-t-bad": lambda L, T: T((2, 3), layout="t").view(-1),
    "flatten-0d": lambda L, T: L.flatten(T(0.5, grad=True)),
    "flatten-range": lambda L, T: L.flatten(T((2, 3, 2), grad=True), -2, -1),
    "squeeze-0d": lambda L, T: L.squeeze(T(0.5, grad=True), 0),
    "squeeze-tuple": lambda L, T: L.squeeze(T((1, 3, 1), grad=True), (0, -1)),
    "squeeze-nonone": lambda L, T: L.squeeze(T((2, 3), grad=True), 1),
    "squeeze-bad": lambda L, T: L.squeeze(T((2, 3)), 2),
    "unsqueeze-neg": lambda L, T: L.unsqueeze(T((2, 3), grad=True), -1),
    "unsqueeze-0d": lambda L, T: L.unsqueeze(T(0.5, grad=True), -1),
    "unsqueeze-bad": lambda L, T: L.unsqueeze(T((2, 3)), 3),
    "transpose-0d": lambda L, T: L.transpose(T(0.5, grad=True), 0, -1),
    "transpose-neg": lambda L, T: L.transpose(T((2, 3, 2), grad=True), -1, 0),
    "t-1d": lambda L, T: L.t(T((3,), grad=True)),
    "t-3d": lambda L, T: L.t(T((2, 3, 2))),
    "permute-neg": lambda L, T: L.permute(T((2, 3, 2), grad=True), (-1, 0, 1)),
    "permute-dup": lambda L, T: L.permute(T((2, 3)), (0, 0)),
    "movedim": lambda L, T: L.movedim(T((2, 3, 2), grad=True), (0, -1), (-1, 0)),
    "flip-neg": lambda L, T: L.flip(T((2, 3), grad=True, layout="t"), (-1,)),
    "flip-0d": lambda L, T: L.flip(T(0.5, grad=True), (0,)),
    "roll-nodim": lambda L, T: L.roll(T((2, 3), grad=True), 2),
    "roll-neg": lambda L, T: L.roll(T((2, 3), grad=True), (-1, 1), (-1, 0)),
    "roll-empty": lambda L, T: L.roll(T((0, 3), grad=True), 1, 0),
    "narrow-neg": lambda L, T: L.narrow(T((2, 5), grad=True), -1, 1, 3),
    "narrow-negstart": lambda L, T: L.narrow(T((2, 5), grad=True), -1, -2, 2),
    "narrow-bad": lambda L, T: L.narrow(T((2, 5)), 1, 3, 3),
    "select-neg": lambda L, T: L.select(T((2, 3), grad=True), -1, -1),
    "select-bad": lambda L, T: L.select(T((2, 3)), 1, 3),
    "chunk-uneven": lambda L, T: L.chunk(T((5, 2), grad=True), 3),
    "chunk-neg": lambda L, T: L.chunk(T((2, 5), grad=True), 2, -1),
    "chunk-empty": lambda L, T: L.chunk(T((0, 2), grad=True), 2),
    "split-int": lambda L, T: L.split(T((5, 2), grad=True), 2),
    "split-list": lambda L, T: L.split(T((2, 5), grad=True), [1, 4], -1),
    "split-bad": lambda L, T: L.split(T((2, 5)), [1, 3], -1),
    "cat-neg": lambda L, T: L.cat([T((2, 3), grad=True), T((2, 1), grad=True)], -1),
    "cat-empty1d": lambda L, T: L.cat([T((2, 3), grad=True), T((0,), grad=True)]),
    "cat-dtypes": lambda L, T: L.cat([T((2,), "int64"), T((2,), "float32")]),
    "cat-bad": lambda L, T: L.cat([T((2, 3)), T((3, 2))], 1),
    "cat-0d": lambda L, T: L.cat([T(1.0), T(2.0)]),
    "cat-none": lambda L, T: L.cat([]),
    "stack-neg": lambda L, T: L.stack([T((2, 3), grad=True), T((2, 3), grad=True)], -1),
    "stack-0d": lambda L, T: L.stack([T(1.0, grad=True), T(2.0, grad=True)]),
    "stack-dtypes": lambda L, T: L.stack([T((2,), "int64"), T((2,), "bool")]),
    "stack-bad": lambda L, T: L.stack([T((2,)), T((3,))]),
    "tile-short": lambda L, T: L.tile(T((2, 3), grad=True), (2,)),
    "tile-long": lambda L, T: L.tile(T((3,), grad=True), (2, 1, 2)),
    "repeat-method": lambda L, T: T((2, 3), grad=True).repeat(2, 1, 1),
    "repeat-bad": lambda L, T: T((2, 3)).repeat(2),
    "repeat_interleave-int": lambda L, T: L.repeat_interleave(T((2, 3), grad=True), 2),
    "repeat_interleave-dim": lambda L, T: L.repeat_interleave(T((2, 3), grad=True), T([1, 0, 2], "int64"), -1),
    "expand-neg1": lambda L, T: T((3, 1), grad=True).expand(2, -1, 4),
    "expand-bad": lambda L, T: T((3, 2)).expand(3, 4),
    "broadcast_to-0d": lambda L, T: L.broadcast_to(T(0.5, grad=True), (2, 3)),
    "diagonal-neg": lambda L, T: L.diagonal(T((3, 4), grad=True), -1),
    "diagonal-dims": lambda L, T: L.diagonal(T((2, 3, 4), grad=True), 1, -1, 0),
    "diagonal-far": lambda L, T: L.diagonal(T((3, 4), grad=True), 5),
    "tril-neg": lambda L, T: L.tril(T((3, 4), grad=True), -1),
    "triu-batch": lambda L, T: L.triu(T((2, 3, 3), grad=True, layout="t"), 1),
    "tril-1d": lambda L, T: L.tril(T((3,))),
    "tril-int": lambda L, T: L.tril(T((3, 3), "int64")),
    "diag-1d": lambda L, T: L.diag(T((3,), grad=True), -1),
    "diag-2d": lambda L, T: L.diag(T((3, 4), grad=True), 1),
    "diag-3d": lambda L, T: L.diag(T((2, 2, 2))),
    "diag_embed": lambda L, T: L.diag_embed(T((2, 3), grad=True), 1, 0, -1),
    "rot90": lambda L, T: L.rot90(T((2, 3), grad=True), -1, (0, 1)),
    "rot90-3": lambda L, T: L.rot90(T((2, 3), grad=True), 3, (1, 0)),
    "unflatten-neg": lambda L, T: L.unflatten(T((2, 6), grad=True), -1, (3, -1)),
    "atleast_2d-0d": lambda L, T: L.atleast_2d(T(0.5, grad=True)),
    "atleast_3d-1d": lambda L, T: L.atleast_3d(T((3,), grad=True)),
    "atleast_3d-2d": lambda L, T: L.atleast_3d(T((2, 3), grad=True)),
    "hstack-1d": lambda L, T: L.hstack([T((2,), grad=True), T((3,), grad=True)]),
    "vstack-1d": lambda L, T: L.vstack([T((3,), grad=True), T((2, 3), grad=True)]),
    "dstack": lambda L, T: L.dstack([T((3,), grad=True), T((1, 3), grad=True)]),
    "column_stack": lambda L, T: L.column_stack([T((3,), grad=True), T((3, 2), grad=True), T(0.5)]),
    "meshgrid-ij": lambda L, T: L.meshgrid(T((2,), grad=True), T((3,), grad=True), indexing="ij"),
    "meshgrid-xy": lambda L, T: L.meshgrid(T((2,), grad=True), T((3,), grad=True), indexing="xy"),
    "swapaxes": lambda L, T: L.swapaxes(T((2, 3, 2), grad=True), -1, 1),
    "unbind-neg": lambda L, T: L.unbind(T((2, 3), grad=True), -1),
    "dsplit": lambda L, T: L.dsplit(T((2, 2, 4), grad=True), 2),
    "hsplit-1d": lambda L, T: L.hsplit(T((4,), grad=True), [1, 3]),
    "vsplit-bad": lambda L, T: L.vsplit(T((3, 2)), 2),
    "kron": lambda L, T: L.kron(T((2, 1), grad=True), T((2, 3), grad=True)),
    "broadcast_tensors": lambda L, T: L.broadcast_tensors(T((3, 1), grad=True), T(0.5, grad=True)),
    "broadcast_shapes": lambda L, T: L.broadcast_shapes((3, 1), (4,), ()),
    "broadcast_shapes-bad": lambda L, T: L.broadcast_shapes((3,), (4,)),
}
for _k, _f in SHAPE.items():
    _add(_k, _f)

# ---- indexing and data-dependent ops
_begin("indexing")
INDEX = {
    "gather-neg": lambda L, T: L.gather(T((2, 3), grad=True), -1, T([[0, 2], [1, 1]], "int64")),
    "gather-bad-index": lambda L, T: L.gather(T((2, 3)), 1, T([[0, 3]], "int64")),
    "gather-float-index": lambda L, T: L.gather(T((2, 3)), 1, T([[0.0]])),
    "index_select-neg": lambda L, T: L.index_select(T((2, 3), grad=True, layout="t"), -1, T([1, 1, 0], "int64")),
    "index_select-0d": lambda L, T: L.index_select(T(0.5, grad=True), 0, T([0, 0], "int64")),
    "index_select-bad": lambda L, T: L.index_select(T((2, 3)), 0, T([2], "int64")),
    "take": lambda L, T: L.take(T((2, 3), grad=True, layout="t"), T([[0, -1], [2, 3]], "int64")),
    "take-bad": lambda L, T: L.take(T((2, 3)), T([6], "int64")),
    "take_along_dim": lambda L, T: L.take_along_dim(T((2, 3), grad=True), T([[0], [2]], "int64"), -1),
    "take_along_dim-flat": lambda L, T: L.take_along_dim(T((2, 3), grad=True), T([5, 0], "int64")),
    # out-of-range indices on each dim: torch's class differs by op (and index_select's by dim)
    "gather-bad-dim0": lambda L, T: L.gather(T((2, 3)), 0, T([[2, 0]], "int64")),
    "gather-bad-neg": lambda L, T: L.gather(T((2, 3)), -1, T([[-4]], "int64")),
    "index_select-bad-dim1": lambda L, T: L.index_select(T((2, 3)), 1, T([0, 3], "int64")),
    "index_select-bad-dim2": lambda L, T: L.index_select(T((2, 2, 2)), -1, T([-3], "int64")),
    "index_select-bad-1d": lambda L, T: L.index_select(T((3,)), -1, T([3], "int64")),
    "index_add-bad-dim1": lambda L, T: L.index_add(T((2, 3)), 1, T([3], "int64"), T((2, 1))),
    "index_copy-bad-dim1": lambda L, T: L.index_copy(T((2, 3)), -1, T([-4], "int64"), T((2, 1))),
    "index_fill-bad-dim1": lambda L, T: L.index_fill(T((2, 3)), 1, T([3], "int64"), 1.0),
    "scatter-bad-dim0": lambda L, T: L.scatter(T((2, 3)), 0, T([[2]], "int64"), T((1, 1))),
    "scatter_add-bad-neg": lambda L, T: L.scatter_add(T((2, 3)), 1, T([[-1]], "int64"), T((1, 1))),
    "take_along_dim-bad-flat": lambda L, T: L.take_along_dim(T((2, 3)), T([[6]], "int64")),
    "take_along_dim-bad-dim0": lambda L, T: L.take_along_dim(T((2, 3)), T([[2, 0, 0]], "int64"), 0),
    "take_along_dim-bad-dim1": lambda L, T: L.take_along_dim(T((2, 3)), T([[3], [0]], "int64"), 1),
    "index_put-bad-index-and-shape": lambda L, T: L.index_put(T((3, 3)), (T([0, 3], "int64"),), T((2,))),
    "index_put-bad-index": lambda L, T: L.index_put(T((3, 3)), (T([0, 1], "int64"), T([0, 3], "int64")), T((2,))),
    "put": lambda L, T: L.put(T((2, 3), grad=True, layout="t"), T([[0, -1]], "int64"), T((2, 1), grad=True)),
    "put-acc": lambda L, T: L.put(T((2, 3), grad=True), T([4, 4, 0], "int64"), T((3,), grad=True), accumulate=True),
    "put-0d": lambda L, T: L.put(T(0.5, grad=True), T([0], "int64"), T((1,), grad=True)),
    "put-empty": lambda L, T: L.put(T((2, 3), grad=True), T((0,), "int64"), T((0,), grad=True)),
    "put-method": lambda L, T: T((2, 3), grad=True).put(T([5], "int64"), T((1,), grad=True)),
    "put_": lambda L, T: (x := T((2, 3), grad=True) * 1.0).put_(T([1, 2], "int64"), T((2,), grad=True)) is x and x,
    "put-int": lambda L, T: L.put(T((2, 3), "int64"), T([1], "int64"), T([7], "int64")),
    "put-bad": lambda L, T: L.put(T((2, 3)), T([6], "int64"), T((1,))),
    "put-bad-neg": lambda L, T: L.put(T((2, 3)), T([-7], "int64"), T((1,))),
    "put-bad-count": lambda L, T: L.put(T((2, 3)), T([0, 1], "int64"), T((1,))),
    "put-bad-dtype": lambda L, T: L.put(T((2, 3)), T([0], "int64"), T((1,), "float32")),
    "put-float-index": lambda L, T: L.put(T((2, 3)), T([0.0]), T((1,))),
    "masked_select": lambda L, T: L.masked_select(T((2, 3), grad=True), T((3,), "bool")),
    "masked_fill": lambda L, T: L.masked_fill(T((2, 3), grad=True), T((3,), "bool"), 2.0),
    "masked_fill-0d-value": lambda L, T: L.masked_fill(T((2, 3), grad=True), T((3,), "bool"), T(2.0, grad=True)),
    "masked_fill-int": lambda L, T: L.masked_fill(T((2, 3), "int64"), T((3,), "bool"), 2.5),
    "masked_fill-bad-mask": lambda L, T: L.masked_fill(T((2, 3)), T((3,), "int64"), 2.0),
    "where-scalars": lambda L, T: L.where(T((2, 3), "bool"), T((2, 3), grad=True), 0.0),
    "where-dtypes": lambda L, T: L.where(T((2, 3), "bool"), T((2, 3), "int64"), T((3,), "float32")),
    "where-cond-only": lambda L, T: L.where(T((2, 3), "bool")),
    "where-bad-cond": lambda L, T: L.where(T((2, 3)), T((2, 3)), T((2, 3))),
    "nonzero": lambda L, T: L.nonzero(T((2, 3), "int64")),
    "nonzero-tuple": lambda L, T: L.nonzero(T((2, 3), "int64"), as_tuple=True),
    "nonzero-0d": lambda L, T: L.nonzero(T(1.0)),
    "argwhere": lambda L, T: L.argwhere(T((2, 3))),
    "scatter": lambda L, T: L.scatter(T((2, 3), grad=True), -1, T([[2], [0]], "int64"), T((2, 1), grad=True)),
    "scatter-value": lambda L, T: L.scatter(T((2, 3), grad=True), 1, T([[2], [0]], "int64"), 1.5),
    "scatter_add": lambda L, T: L.scatter_add(
        T((2, 3), grad=True), 1, T([[2, 2], [0, 1]], "int64"), T((2, 2), grad=True)
    ),
    "scatter-bad": lambda L, T: L.scatter(T((2, 3)), 1, T([[3]], "int64"), T((1, 1))),
    "scatter_reduce-amax": lambda L, T: L.scatter_reduce(
        T((2, 3), grad=True), 1, T([[2, 2], [0, 1]], "int64"), T((2, 2), grad=True), "amax"
    ),
    "scatter_reduce-mean": lambda L, T: L.scatter_reduce(
        T((2, 3), grad=True), 1, T([[2, 2], [0, 1]], "int64"), T((2, 2), grad=True), "mean", include_self=False
    ),
    "index_add": lambda L, T: L.index_add(
        T((3, 2), grad=True), 0, T([0, 0, 2], "int64"), T((3, 2), grad=True), alpha=2
    ),
    "index_copy": lambda L, T: L.index_copy(T((3, 2), grad=True), -1, T([1, 0], "int64"), T((3, 2), grad=True)),
    "index_fill": lambda L, T: L.index_fill(T((3, 2), grad=True), 0, T([2], "int64"), -1.0),
    "index_put": lambda L, T: L.index_put(T((3, 2), grad=True), (T([0, 2], "int64"),), T((2,), grad=True)),
    "index_put-acc": lambda L, T: L.index_put(
        T((3, 2), grad=True), (T([0, 0], "int64"),), T(1.0, grad=True), accumulate=True
    ),
    "masked_scatter": lambda L, T: L.masked_scatter(T((2, 3), grad=True), T((3,), "bool"), T((2, 3), grad=True)),
    "getitem-bool": lambda L, T: T((2, 3), grad=True)[T((2, 3), "bool")],
    "getitem-neg": lambda L, T: T((2, 3), grad=True)[-1, ::2],
    "getitem-list": lambda L, T: T((4, 3), grad=True)[[0, -1, 0]],
    "getitem-0d-index": lambda L, T: T((4, 3), grad=True)[T(2, "int64")],
    "getitem-ellipsis": lambda L, T: T((2, 3, 2), grad=True)[..., None, 1],
    "getitem-oob": lambda L, T: T((2, 3))[2],
    "getitem-0d": lambda L, T: T(0.5, grad=True)[None, ...],
    "getitem-0d-int": lambda L, T: T(0.5)[0],
    "getitem-too-many": lambda L, T: T((2, 3))[0, 0, 0],
    "getitem-float": lambda L, T: T((2, 3))[T([0.0])],
    "searchsorted": lambda L, T: L.searchsorted(T([0.1, 0.5, 0.9]), T([[0.5, 0.0], [1.0, 0.3]]), right=True),
    "searchsorted-scalar": lambda L, T: L.searchsorted(T([0.1, 0.5, 0.9]), 0.5),
    "bucketize": lambda L, T: L.bucketize(T([[0.5, 0.0], [1.0, 0.3]]), T([0.1, 0.5, 0.9])),
    "bucketize-0d": lambda L, T: L.bucketize(T(0.5), T([0.1, 0.5, 0.9]), out_int32=True),
    "sort-neg": lambda L, T: L.sort(T((2, 3), grad=True, layout="t"), -1, descending=True),
    "sort-0d": lambda L, T: L.sort(T(0.5, grad=True)),
    "sort-empty": lambda L, T: L.sort(T((0, 3), grad=True), 0),
    "sort-int": lambda L, T: L.sort(T((2, 3), "int64"), 1),
    "sort-bool": lambda L, T: L.sort(T((2, 3), "bool"), 1),
    "argsort": lambda L, T: L.argsort(T((2, 3), grad=True), 0, descending=True),
    "msort": lambda L, T: L.msort(T((3, 2), grad=True)),
    "topk": lambda L, T: L.topk(T((2, 3), grad=True), 2, -1, largest=False),
    "topk-0d": lambda L, T: L.topk(T(0.5, grad=True), 1),
    "topk-bad": lambda L, T: L.topk(T((2, 3)), 4),
    "kthvalue": lambda L, T: L.kthvalue(T((2, 3), grad=True), 2, 0, True),
    "kthvalue-bad": lambda L, T: L.kthvalue(T((2, 3)), 4),
    "unique": lambda L, T: L.unique(T([3, 1, 1, 2], "int64"), return_inverse=True, return_counts=True),
    "unique-dim": lambda L, T: L.unique(T([[1, 2], [1, 2], [0, 1]], "int64"), dim=0),
    "unique_consecutive": lambda L, T: L.unique_consecutive(T([1, 1, 2, 1], "int64"), return_counts=True),
    "unique-float": lambda L, T: L.unique(T([0.5, 0.5, -1.0])),
    "unique-empty": lambda L, T: L.unique(T((0,))),
    "clamp-tensors": lambda L, T: L.clamp(T((2, 3), grad=True), T((3,), grad=True) * 0.1, T(0.5, grad=True)),
    # ties of the input with a bound; min == max (below it nothing gets the gradient); NaN input and bounds
    "clamp-tensor-ties": lambda L, T: L.clamp(T((2, 3), grad=True), T((3,), grad=True), T([0.1, 0.6, 0.9], grad=True)),
    "clamp-tensor-min-eq-max": lambda L, T: L.clamp(
        T([0.0, 0.5, 1.0, math.nan], grad=True), T([0.5] * 4, grad=True), T([0.5] * 4, grad=True)
    ),
    "clamp-tensor-nan-bounds": lambda L, T: L.clamp(
        T([1.5, 0.5, -1.0, 0.5], grad=True),
        T([math.nan, 0.0, 0.0, 0.0], grad=True),
        T([1.0, math.nan, 1.0, 1.0], grad=True),
    ),
    "clamp-tensor-min-ties": lambda L, T: L.clamp(T([0.0, 0.5, 1.0, math.nan], grad=True), T([0.5] * 4, grad=True)),
    "clamp-tensor-max-ties": lambda L, T: L.clamp(
        T([0.0, 0.5, 1.0, 0.5], grad=True), None, T([0.5, 0.5, 0.5, math.nan], grad=True)
    ),
    "clamp-0d-bounds": lambda L, T: L.clamp(T((2, 3), grad=True), T(0.2, grad=True), T(0.2, grad=True)),
    "clamp-mixed-bounds": lambda L, T: L.clamp(T((2, 3), grad=True), T((3,), grad=True), 0.5),
    "clamp-scalar-min-eq-max": lambda L, T: L.clamp(T([0.0, 0.5, 1.0, math.nan], grad=True), 0.5, 0.5),
    "clamp-scalar-nan": lambda L, T: L.clamp(T((2, 3), grad=True), math.nan, 1.0),
    "clamp-scalar-nan-max": lambda L, T: L.clamp(T((2, 3), grad=True), max=math.nan),
    "clamp-tensor-nan": lambda L, T: L.clamp(T((2, 3), grad=True), T([0.0, math.nan, 0.0])),
    "clamp-min-gt-max-tensors": lambda L, T: L.clamp(T((2, 3), grad=True), T(0.6, grad=True), T(0.2, grad=True)),
    "clone-int": lambda L, T: (T((2, 3), "int64").clone(), T((2, 3), "bool", layout="t").contiguous()),
    "clamp-int": lambda L, T: L.clamp(T((2, 3), "int64"), 0.5),
    "clamp-none": lambda L, T: L.clamp(T((2, 3))),
    "clamp-min-gt-max": lambda L, T: L.clamp(T((2, 3), grad=True), 0.6, 0.2),
    "clip": lambda L, T: L.clip(T((2, 3), grad=True), max=0.3),
    "lerp": lambda L, T: L.lerp(T((2, 3), grad=True), T((3,), grad=True), 0.3),
    "lerp-tensor-w": lambda L, T: L.lerp(T((2, 3), grad=True), T((3,), grad=True), T((2, 1), grad=True)),
    "addcmul": lambda L, T: L.addcmul(T((2, 3), grad=True), T((3,), grad=True), T((2, 1), grad=True), value=0.5),
    "addcdiv-int": lambda L, T: L.addcdiv(T((2, 3)), T((2, 3), "int64"), T((2, 3), "int64")),
    "polygamma": lambda L, T: L.polygamma(1, T((2, 3), grad=True) + 1.5),
    "round-decimals": lambda L, T: L.round(T((2, 3), grad=True), decimals=1),
    "round-int": lambda L, T: L.round(T((2, 3), "int64")),
    "pow-int-neg": lambda L, T: L.pow(T([1, 2], "int64"), -1),
    "pow-int-3": lambda L, T: (L.pow(T((2, 3), "int64"), 3), T((2, 3), "int64") ** 2, 2 ** T((3,), "int64")),
    "pow-bool-2": lambda L, T: L.pow(T((4,), "bool"), 2),
    "pow-int-neg-tensor": lambda L, T: L.pow(T([2, 1, -1, 0, -1], "int64"), T([-1, -2, -3, 2, -2], "int64")),
    "pow-int-float": lambda L, T: L.pow(T((2, 3), "int64"), 0.5),
    "clamp-int-int": lambda L, T: (L.clamp(T((2, 3), "int64"), -1, 1), L.clamp(T((2, 3), "int64"), max=0.5)),
    "div-trunc-float-zero": lambda L, T: L.div(
        T([1.0, -1.0, 0.0, 2.5], grad=True), T([0.0, 0.0, 0.0, -2.0]), rounding_mode="trunc"
    ),
    "div-floor-precision": lambda L, T: L.div(
        T([1.0, -1.0, 7.5], grad=True), T([0.1, 0.1, -2.0], grad=True), rounding_mode="floor"
    ),
    "div-bad-mode": lambda L, T: L.div(T((3,)), 2.0, rounding_mode="round"),
    "pow-scalar-base": lambda L, T: L.pow(2.0, T((2, 3), grad=True)),
    "pow-0d-exp": lambda L, T: L.pow(T((2, 3), grad=True), T(2.0, grad=True)),
    "div-trunc": lambda L, T: L.div(T([-3, 3, 7], "int64"), T([2, 2, -2], "int64"), rounding_mode="trunc"),
    "div-floor": lambda L, T: L.div(T((2, 3), grad=True), 0.3, rounding_mode="floor"),
    "div-int-zero": lambda L, T: L.div(T([1, 2], "int64"), T([0, 1], "int64"), rounding_mode="floor"),
    "remainder-int-zero": lambda L, T: L.remainder(T([1, 2], "int64"), T([0, 1], "int64")),
    "remainder-neg": lambda L, T: L.remainder(T([-3.0, 3.0], grad=True), -2.0),
    "fmod-neg": lambda L, T: L.fmod(T([-3, 3], "int64"), -2),
    "add-alpha": lambda L, T: L.add(T((2, 3), grad=True), T((3,), grad=True), alpha=-2),
    "sub-bool": lambda L, T: L.sub(T((2,), "bool"), T((2,), "bool")),
    "add-alpha-float-int": lambda L, T: L.add(T((2,), "int64"), T((2,), "int64"), alpha=0.5),
    "nan_to_num-args": lambda L, T: L.nan_to_num(T([math.nan, math.inf, -math.inf, 1.0], grad=True), 0.5, 2.0, -2.0),
    "cumsum-dtype": lambda L, T: L.cumsum(T((2, 3), "int64"), 1, dtype=L.float64),
    "diff": lambda L, T: L.diff(T((2, 4), grad=True), 2, -1),
    "diff-prepend": lambda L, T: L.diff(T((2, 3), grad=True), dim=0, prepend=T((1, 3), grad=True)),
    "diff-0": lambda L, T: L.diff(T((2, 3), grad=True), 0),
    "diff-0d": lambda L, T: L.diff(T(0.5)),
    "diff-bool": lambda L, T: L.diff(T((4,), "bool")),
}
for _k, _f in INDEX.items():
    _add(_k, _f)

# ---- special values: zeros, ties, infinities (the gradient at a kink is torch's convention)
_begin("special")
_Z = [[0.5, 0.0, 2.0], [0.0, 0.0, 1.5]]  # one zero, two zeros
_TIES = [[0.5, 0.5, 0.2], [0.1, 0.7, 0.7]]
SPECIAL = {
    "prod-zeros": lambda L, T: L.prod(T(_Z, grad=True), 1),
    "prod-zeros-all": lambda L, T: L.prod(T(_Z, grad=True)),
    "cumprod-zeros": lambda L, T: L.cumprod(T(_Z, grad=True), -1),
    "cumsum-0d": lambda L, T: L.cumsum(T(0.5, grad=True), 0),
    "max-ties-dim": lambda L, T: L.max(T(_TIES, grad=True), 1),
    "max-ties-all": lambda L, T: L.max(T(_TIES, grad=True)),
    "amax-ties": lambda L, T: L.amax(T(_TIES, grad=True), 1),
    "amin-ties-all": lambda L, T: L.amin(T([[0.5, 0.5], [0.5, 0.7]], grad=True)),
    "median-ties": lambda L, T: L.median(T([[0.5, 0.5, 0.5], [0.1, 0.7, 0.7]], grad=True)),
    "median-ties-dim": lambda L, T: L.median(T([[0.5, 0.5, 0.5, 0.2], [0.1, 0.7, 0.7, 0.7]], grad=True), 1),
    "sort-ties": lambda L, T: L.sort(T(_TIES, grad=True), dim=1, stable=True),
    "argsort-ties": lambda L, T: L.argsort(T(_TIES), dim=1, stable=True),
    "topk-ties": lambda L, T: L.topk(T(_TIES, grad=True), 1),
    "kthvalue-ties": lambda L, T: L.kthvalue(T(_TIES, grad=True), 2, 1),
    "norm-zero": lambda L, T: L.norm(T([[0.0, 0.0], [0.3, -0.4]], grad=True), dim=1),
    "norm-zero-all": lambda L, T: L.norm(T([0.0, 0.0], grad=True)),
    "norm-p1-zero": lambda L, T: L.norm(T([0.0, 0.5], grad=True), 1),
    "norm-inf-ties": lambda L, T: L.norm(T([0.5, -0.5, 0.2], grad=True), float("inf")),
    "std-constant": lambda L, T: L.std(T([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]], grad=True), 1),
    "var-one": lambda L, T: L.var(T([[0.5], [0.2]], grad=True), 1),
    "sqrt-zero": lambda L, T: L.sqrt(T([0.0, 0.25], grad=True)),
    "abs-zero": lambda L, T: L.abs(T([0.0, -0.25], grad=True)),
    "relu-zero": lambda L, T: L.relu(T([0.0, -0.25, 0.5], grad=True)),
    "sign-zero": lambda L, T: L.sign(T([0.0, -0.25], grad=True)),
    "clamp-at-bounds": lambda L, T: L.clamp(T([0.0, 0.5, 1.0, 1.5], grad=True), 0.0, 1.0),
    "maximum-ties": lambda L, T: L.maximum(T([0.5, 0.2], grad=True), T([0.5, 0.1], grad=True)),
    "fmax-nan": lambda L, T: L.fmax(T([math.nan, 0.2, math.nan], grad=True), T([0.5, math.nan, math.nan], grad=True)),
    "pow-zero-base": lambda L, T: L.pow(T([0.0, 0.0, 2.0], grad=True), T([0.0, 2.0, 0.5], grad=True)),
    "pow-zero-scalar": lambda L, T: L.pow(T([0.0, 0.5], grad=True), 0.0),
    "pow-neg-half": lambda L, T: L.pow(T([-1.0, 4.0], grad=True), 0.5),
    "rpow-zero": lambda L, T: L.pow(0.0, T([0.0, 1.0, 2.0], grad=True)),
    "atan2-zeros": lambda L, T: L.atan2(T([0.0, 1.0], grad=True), T([0.0, 0.0], grad=True)),
    "hypot-zeros": lambda L, T: L.hypot(T([0.0, 3.0], grad=True), T([0.0, 4.0], grad=True)),
    "xlogy-zero": lambda L, T: L.xlogy(T([0.0, 0.0, 0.5], grad=True), T([0.0, 0.5, 0.5], grad=True)),
    "sinc-zero": lambda L, T: L.sinc(T([0.0, 0.5], grad=True)),
    "sinc-tiny": lambda L, T: L.sinc(T([1e-300, -0.0, 0.3], grad=True)),
    "logit-signed-zeros": lambda L, T: L.logit(T([-0.0, 0.0, 1.0, 0.3], grad=True)),
    "logit-eps": lambda L, T: L.logit(T([0.0, 0.01, 0.5, 1.0], grad=True), eps=0.05),
    "log-zero": lambda L, T: L.log(T([0.0, 0.5], grad=True)),
    "nan_to_num-grad": lambda L, T: L.nan_to_num(T([math.nan, math.inf, 0.5], grad=True)),
    "softmax-neginf": lambda L, T: L.softmax(T([[-math.inf, 0.0, 1.0], [-math.inf, -math.inf, 0.5]], grad=True), 1),
    "log_softmax-neginf": lambda L, T: L.log_softmax(T([[-math.inf, 0.0, 1.0]], grad=True), 1),
    "logsumexp-all-neginf": lambda L, T: L.logsumexp(T([[-math.inf, -math.inf]], grad=True), 1),
    "cdist-zero": lambda L, T: L.cdist(T([[0.0, 1.0], [0.5, 0.5]], grad=True), T([[0.0, 1.0]], grad=True)),
    "dist-zero": lambda L, T: L.dist(T([0.5, 1.0], grad=True), T([0.5, 1.0], grad=True)),
    "index_put-acc-dups": lambda L, T: L.index_put(
        T((3,), grad=True), (T([0, 0, 2], "int64"),), T((3,), grad=True), accumulate=True
    ),
    "scatter_add-dups": lambda L, T: L.scatter_add(T((3,), grad=True), 0, T([1, 1, 1], "int64"), T((3,), grad=True)),
    "index_add-dups": lambda L, T: L.index_add(T((3, 2), grad=True), 0, T([1, 1], "int64"), T((2, 2), grad=True)),
    "where-bcast-grad": lambda L, T: L.where(T((3,), "bool"), T((2, 1), grad=True), T(0.5, grad=True)),
    "cross-default": lambda L, T: L.linalg.cross(T((2, 3), grad=True), T((3,), grad=True)),
    "amax-empty-keep": lambda L, T: L.amax(T((0, 3)), 1, keepdim=True),
    "sum-empty-tuple": lambda L, T: L.sum(T((2, 0, 3), grad=True), (1, 2)),
    "mean-empty": lambda L, T: L.mean(T((2, 0), grad=True), 1),
    "var-empty": lambda L, T: L.var(T((2, 0), grad=True), 1),
    "prod-empty": lambda L, T: L.prod(T((2, 0), grad=True), 1),
    "logsumexp-empty": lambda L, T: L.logsumexp(T((2, 0), grad=True), 1),
    "cumsum-empty": lambda L, T: L.cumsum(T((2, 0), grad=True), 1),
    "softmax-single": lambda L, T: L.softmax(T((2, 1), grad=True), 1),
    "lerp-weight-1": lambda L, T: L.lerp(T((3,), grad=True), T((3,), grad=True) * 2, 1.0),
    "trace-rect": lambda L, T: L.trace(T((3, 2), grad=True)),
}
for _k, _f in SPECIAL.items():
    _add(_k, _f)

# ---- matrix products and linear algebra edge shapes
_begin("linalg")
LINALG = {
    "matmul-1d-1d": lambda L, T: L.matmul(T((3,), grad=True), T((3,), grad=True)),
    "matmul-1d-3d": lambda L, T: L.matmul(T((3,), grad=True), T((2, 3, 2), grad=True)),
    "matmul-3d-1d": lambda L, T: L.matmul(T((2, 2, 3), grad=True, layout="t"), T((2,), grad=True)),
    "matmul-bcast": lambda L, T: L.matmul(T((2, 1, 2, 3), grad=True), T((3, 3, 2), grad=True)),
    "matmul-empty": lambda L, T: L.matmul(T((2, 0), grad=True), T((0, 3), grad=True)),
    "matmul-int": lambda L, T: L.matmul(T((2, 3), "int64"), T((3, 2), "int64")),
    "matmul-mixed": lambda L, T: L.matmul(T((2, 3), "int64"), T((3, 2))),
    "matmul-0d": lambda L, T: L.matmul(T(1.0), T((3,))),
    "matmul-bad": lambda L, T: L.matmul(T((2, 3)), T((2, 3))),
    "mm-bad-1d": lambda L, T: L.mm(T((3,)), T((3, 2))),
    "mv": lambda L, T: L.mv(T((2, 3), grad=True, layout="t"), T((2,), grad=True)),
    "bmm-bad": lambda L, T: L.bmm(T((2, 3)), T((3, 2))),
    "dot-int": lambda L, T: L.dot(T((3,), "int64"), T((3,), "int64")),
    "dot-mixed": lambda L, T: L.dot(T((3,), "float32"), T((3,))),
    "dot-2d": lambda L, T: L.dot(T((3, 1)), T((3, 1))),
    "vdot": lambda L, T: L.vdot(T((3,), grad=True), T((3,), grad=True)),
    "inner-0d": lambda L, T: L.inner(T(2.0, grad=True), T((2, 3), grad=True)),
    "outer": lambda L, T: L.outer(T((2,), grad=True), T((3,), "int64")),
    "tensordot": lambda L, T: L.tensordot(T((2, 3, 2), grad=True), T((3, 2, 2), grad=True), ([1, 2], [0, 1])),
    "tensordot-int": lambda L, T: L.tensordot(T((2, 3), grad=True), T((3, 2), grad=True), 1),
    "einsum": lambda L, T: L.einsum("ij,j->i", T((2, 3), grad=True), T((3,), grad=True)),
    "einsum-ellipsis": lambda L, T: L.einsum("...ij->...ji", T((2, 2, 3), grad=True)),
    "addmm-beta0": lambda L, T: L.addmm(T([[math.nan]]), T((2, 3), grad=True), T((3, 2), grad=True), beta=0),
    "addmv": lambda L, T: L.addmv(T((2,), grad=True), T((2, 3), grad=True), T((3,), grad=True), alpha=2, beta=0.5),
    "baddbmm": lambda L, T: L.baddbmm(T((2, 2), grad=True), T((2, 2, 3), grad=True), T((2, 3, 2), grad=True)),
    "trace": lambda L, T: L.trace(T((2, 3), grad=True)),
    "trace-int": lambda L, T: L.trace(T((3, 3), "int64")),
    "trace-bad": lambda L, T: L.trace(T((3,))),
    "cross-neg": lambda L, T: L.cross(T((2, 3), grad=True), T((2, 3), grad=True), dim=-1),
    "cdist": lambda L, T: L.cdist(T((2, 3), grad=True), T((4, 3), grad=True) + 0.05),
    "det-empty": lambda L, T: L.det(T((0, 0), grad=True)),
    "inv-empty": lambda L, T: L.linalg.inv(T((2, 0, 0), grad=True)),
    "slogdet-empty": lambda L, T: L.linalg.slogdet(T((0, 0), grad=True)),
    "solve-empty": lambda L, T: L.linalg.solve(T((0, 0), grad=True), T((0, 2), grad=True)),
    "cholesky-empty": lambda L, T: L.linalg.cholesky(T((0, 0), grad=True)),
    "det-batch": lambda L, T: L.det(T((2, 2, 2), grad=True) + L.eye(2)),
    "det-bad": lambda L, T: L.det(T((2, 3))),
    "det-int": lambda L, T: L.det(T((2, 2), "int64")),
    "inverse-singular": lambda L, T: L.inverse(T([[1.0, 2.0], [2.0, 4.0]])),
    "cholesky-bad": lambda L, T: L.linalg.cholesky(T([[1.0, 2.0], [2.0, 1.0]])),
    "solve-bcast": lambda L, T: L.linalg.solve(T((2, 2, 2), grad=True) + L.eye(2), T((2,), grad=True)),
    "matrix_power-neg": lambda L, T: L.matrix_power(T((2, 2), grad=True) + L.eye(2), -2),
    "matrix_power-0": lambda L, T: L.matrix_power(T((2, 2), grad=True), 0),
    "linalg-norm-dim": lambda L, T: L.linalg.norm(T((2, 3), grad=True), dim=-1, keepdim=True),
    "linalg-vector_norm-0d": lambda L, T: L.linalg.vector_norm(T(-0.5, grad=True)),
    "linalg-vector_norm-int": lambda L, T: L.linalg.vector_norm(T((3,), "int64")),
    "linalg-matrix_norm-fro": lambda L, T: L.linalg.matrix_norm(T((2, 2, 3), grad=True)),
}
for _k, _f in LINALG.items():
    _add(_k, _f)

# ---- session 8: conveniences, logic, shape composites, statistics, random (shapes/dtypes/errors only)
_begin("surface")
SURFACE = {
    "isclose": lambda L, T: L.isclose(T((2, 3)), T((3,)) + 1e-9),
    "isclose-int": lambda L, T: L.isclose(T((2, 3), "int64"), T((3,), "int64")),
    "isclose-nan": lambda L, T: L.isclose(T([math.nan, 1.0]), T([math.nan, 1.0]), equal_nan=True),
    "isclose-dtypes": lambda L, T: L.isclose(T((3,), "int64"), T((3,))),
    "allclose": lambda L, T: L.allclose(T((2, 3)), T((3,))),
    "allclose-bcast-bad": lambda L, T: L.allclose(T((2, 3)), T((2,))),
    "equal": lambda L, T: L.equal(T((2, 3)), T((2, 3))),
    "equal-shapes": lambda L, T: L.equal(T((2, 3)), T((3,))),
    "equal-dtypes": lambda L, T: L.equal(T((3,), "int64"), T((3,), "int64") * 1.0),
    "isin": lambda L, T: L.isin(T((2, 3), "int64"), T([0, 2], "int64"), invert=True),
    "isin-scalar": lambda L, T: L.isin(T((2, 3), "int64"), 2),
    "isin-scalar-elements": lambda L, T: L.isin(2, T((2, 3), "int64")),
    "clamp_min": lambda L, T: L.clamp_min(T((2, 3), grad=True), T((3,), grad=True)),
    "clamp_max-int": lambda L, T: L.clamp_max(T((2, 3), "int64"), 0),
    "float_power-int": lambda L, T: L.float_power(T((2, 3), "int64"), 2),
    "float_power-f32": lambda L, T: L.float_power(T((2, 3), "float32"), T((3,), "float32")),
    "ldexp": lambda L, T: L.ldexp(T((2, 3), grad=True), T([1, 2, 3], "int64")),
    "ldexp-f32": lambda L, T: L.ldexp(T((2, 3), "float32"), T([1, 2, 3], "int64")),
    "frexp": lambda L, T: L.frexp(T((2, 3), layout="t")),
    "frexp-f32": lambda L, T: L.frexp(T([0.0, 1.5, -8.0], "float32")),
    "frexp-int": lambda L, T: L.frexp(T((2,), "int64")),
    "heaviside-dtypes": lambda L, T: L.heaviside(T((2, 3), "int64"), T((3,), "int64")),
    "heaviside-mixed": lambda L, T: L.heaviside(T((2, 3)), T((3,), "float32")),
    "nextafter-f32": lambda L, T: L.nextafter(T((3,), "float32"), T(1.0, "float32")),
    "sgn-int": lambda L, T: L.sgn(T((2, 3), "int64")),
    "logical_not-f": lambda L, T: L.logical_not(T((3,))),
    "bitwise_not-float": lambda L, T: L.bitwise_not(T((3,))),
    "gcd-neg": lambda L, T: L.gcd(T([-4, 0, 6], "int64"), T([6, 0, -9], "int64")),
    "lcm-zero": lambda L, T: L.lcm(T([-4, 0, 6], "int64"), T([6, 5, -9], "int64")),
    "ravel-t": lambda L, T: L.ravel(T((2, 3), grad=True, layout="t")),
    "tensor_split-int": lambda L, T: L.tensor_split(T((7, 2), grad=True), 3),
    "tensor_split-idx": lambda L, T: L.tensor_split(T((2, 7), grad=True), [1, 5, 9], -1),
    "tensor_split-tensor": lambda L, T: L.tensor_split(T((5,), grad=True), T([1, 3], "int64")),
    "tensor_split-0d-tensor": lambda L, T: L.tensor_split(T((5,), grad=True), T(2, "int64")),
    "tensor_split-0d-input": lambda L, T: L.tensor_split(T(1.0), 2),
    "split_with_sizes": lambda L, T: L.split_with_sizes(T((2, 5), grad=True), [2, 3], -1),
    "split_with_sizes-bad": lambda L, T: L.split_with_sizes(T((2, 5)), [2, 2], -1),
    "unfold": lambda L, T: T((2, 7), grad=True).unfold(-1, 3, 2),
    "unfold-0d": lambda L, T: T(0.5, grad=True).unfold(0, 1, 1),
    "unfold-bad": lambda L, T: T((2, 3)).unfold(1, 4, 1),
    "diagflat": lambda L, T: L.diagflat(T((2, 2), grad=True), -1),
    "diagflat-0d": lambda L, T: L.diagflat(T(0.5, grad=True)),
    "block_diag": lambda L, T: L.block_diag(T((2, 2), grad=True), T(0.5, grad=True), T((3,), grad=True)),
    "block_diag-dtypes": lambda L, T: L.block_diag(T((2, 2), "int64"), T((1, 2), "float32")),
    "block_diag-empty": lambda L, T: L.block_diag(),
    "block_diag-3d": lambda L, T: L.block_diag(T((2, 2, 2))),
    "cartesian_prod": lambda L, T: L.cartesian_prod(T((2,), grad=True), T((3,), grad=True)),
    "cartesian_prod-one": lambda L, T: L.cartesian_prod(T((3,), grad=True)),
    "combinations": lambda L, T: L.combinations(T((4,), grad=True), 3),
    "combinations-repl": lambda L, T: L.combinations(T((3,), grad=True), with_replacement=True),
    "combinations-r0": lambda L, T: L.combinations(T((3,)), 0),
    "combinations-big-r": lambda L, T: L.combinations(T((3,)), 4),
    "select_scatter": lambda L, T: L.select_scatter(T((2, 3), grad=True), T((2,), grad=True), -1, -1),
    "select_scatter-bad": lambda L, T: L.select_scatter(T((2, 3)), T((3,)), -1, 0),
    "slice_scatter": lambda L, T: L.slice_scatter(T((4, 3), grad=True), T((2, 3), grad=True), 0, 1, None, 2),
    "slice_scatter-neg": lambda L, T: L.slice_scatter(T((2, 4), grad=True), T((2, 2), grad=True), -1, -2),
    "diagonal_scatter": lambda L, T: L.diagonal_scatter(T((3, 4), grad=True), T((3,), grad=True), 1),
    "diagonal_scatter-neg": lambda L, T: L.diagonal_scatter(T((3, 3), grad=True), T((2,), grad=True), -1),
    "sum_to_size": lambda L, T: T((2, 3), grad=True).sum_to_size(1, 3),
    "sum_to_size-bad": lambda L, T: T((2, 3)).sum_to_size(2, 2),
    "fill_diagonal_": lambda L, T: T((3, 4)).fill_diagonal_(2.0, wrap=False),
    "fill_diagonal_-wrap": lambda L, T: T((7, 3)).fill_diagonal_(2.0, wrap=True),
    "fill_diagonal_-int": lambda L, T: T((3, 3), "int64").fill_diagonal_(2.7),
    "fill_diagonal_-bad": lambda L, T: T((2, 3, 4)).fill_diagonal_(1.0),
    "tril_indices": lambda L, T: L.tril_indices(3, 4, -1),
    "triu_indices": lambda L, T: L.triu_indices(4, 3, 1),
    "triu_indices-0": lambda L, T: L.triu_indices(0, 3),
    "unravel_index": lambda L, T: L.unravel_index(T([5, 0, 3], "int64"), (2, 3)),
    "unravel_index-0d": lambda L, T: L.unravel_index(T(4, "int64"), (2, 3)),
    "unravel_index-neg": lambda L, T: L.unravel_index(T([-1], "int64"), (2, 3)),
    "unravel_index-bad": lambda L, T: L.unravel_index(T([6], "int64"), (2, 3)),
    "unravel_index-float": lambda L, T: L.unravel_index(T([1.0]), (2, 3)),
    "quantile": lambda L, T: L.quantile(T((2, 5), grad=True), 0.3, dim=-1, keepdim=True),
    "quantile-tensor-q": lambda L, T: L.quantile(T((2, 5), grad=True), T([0.25, 0.5])),
    "quantile-interp": lambda L, T: L.quantile(T((5,), grad=True), 0.3, interpolation="midpoint"),
    "quantile-0d": lambda L, T: L.quantile(T(0.5, grad=True), 0.3),
    "quantile-bad-q": lambda L, T: L.quantile(T((5,)), 1.5),
    "quantile-f32-q64": lambda L, T: L.quantile(T((5,), "float32"), T([0.5])),
    "quantile-int": lambda L, T: L.quantile(T((5,), "int64"), 0.5),
    "quantile-empty": lambda L, T: L.quantile(T((0,)), 0.5),
    "nanquantile": lambda L, T: L.nanquantile(T([[0.1, math.nan, 0.3], [math.nan] * 3], grad=True), 0.5, 1),
    "mode": lambda L, T: L.mode(T([[1.0, 2.0, 2.0], [3.0, 3.0, 1.0]], grad=True), -1),
    "mode-0d": lambda L, T: L.mode(T(0.5, grad=True)),
    "mode-int": lambda L, T: L.mode(T([[1, 1, 2], [2, 3, 3]], "int64"), 0, keepdim=True),
    "cov": lambda L, T: L.cov(T((3, 4), grad=True)),
    "cov-1d": lambda L, T: L.cov(T((4,), grad=True)),
    "cov-weights": lambda L, T: L.cov(
        T((2, 4), grad=True), correction=0, fweights=T([1, 2, 1, 1], "int64"), aweights=T([0.5, 1.0, 1.0, 2.0])
    ),
    "cov-int": lambda L, T: L.cov(T((2, 4), "int64")),
    "cov-1obs": lambda L, T: L.cov(T((2, 1))),
    "cov-3d": lambda L, T: L.cov(T((2, 2, 2))),
    "corrcoef": lambda L, T: L.corrcoef(T((3, 4), grad=True)),
    "corrcoef-int": lambda L, T: L.corrcoef(T([[1, 2, 4], [2, 0, 1]], "int64")),
    "trapezoid": lambda L, T: L.trapezoid(T((2, 4), grad=True), dx=0.5),
    "trapezoid-x": lambda L, T: L.trapezoid(T((2, 4), grad=True), T((4,), grad=True), dim=-1),
    "trapezoid-int": lambda L, T: L.trapezoid(T((2, 4), "int64")),
    "trapezoid-empty": lambda L, T: L.trapezoid(T((2, 0))),
    "trapz": lambda L, T: L.trapz(T((3, 2), grad=True), dim=0),
    "cumulative_trapezoid": lambda L, T: L.cumulative_trapezoid(T((2, 4), grad=True), T((4,), grad=True)),
    "cumulative_trapezoid-int": lambda L, T: L.cumulative_trapezoid(T((2, 4), "int64"), dim=0),
    "renorm": lambda L, T: L.renorm(T((3, 4), grad=True), 2, 0, 0.5),
    "renorm-neg": lambda L, T: L.renorm(T((3, 4), grad=True), 1, -1, 0.4),
    "renorm-bad-p": lambda L, T: L.renorm(T((3, 4)), -1, 0, 0.5),
    "renorm-int": lambda L, T: L.renorm(T((3, 4), "int64"), 2, 0, 0.5),
    "bincount": lambda L, T: L.bincount(T([0, 3, 3, 1], "int64")),
    "bincount-weights": lambda L, T: L.bincount(T([0, 3, 3, 1], "int64"), T([0.5, 1.0, 2.0, 1.0]), 6),
    "bincount-weights-f32": lambda L, T: L.bincount(T([0, 3], "int64"), T([0.5, 1.0], "float32")),
    "bincount-empty": lambda L, T: L.bincount(T((0,), "int64")),
    "bincount-neg": lambda L, T: L.bincount(T([-1, 2], "int64")),
    "bincount-float": lambda L, T: L.bincount(T([1.0])),
    "bincount-2d": lambda L, T: L.bincount(T([[1]], "int64")),
    "histc": lambda L, T: L.histc(T((2, 5)), 4),
    "histc-range": lambda L, T: L.histc(T((2, 5)), 3, -0.5, 0.5),
    "histc-int": lambda L, T: L.histc(T((5,), "int64"), 3),
    "histc-f32": lambda L, T: L.histc(T((5,), "float32"), 3),
    "histc-bad": lambda L, T: L.histc(T((5,)), 3, 1.0, 0.0),
    "histogram": lambda L, T: L.histogram(T((2, 5)), 4),
    "histogram-bins": lambda L, T: L.histogram(T((2, 5)), T([-1.0, 0.0, 1.0]), weight=T((2, 5)), density=True),
    "histogram-range": lambda L, T: L.histogram(T((5,)), 2, range=(0.0, 0.5)),
    "logspace": lambda L, T: L.logspace(0, 2, 3),
    "logspace-base": lambda L, T: L.logspace(-1, 1, 4, base=2.0, dtype=L.float32),
    "logspace-0": lambda L, T: L.logspace(0, 1, 0),
    "logspace-int": lambda L, T: L.logspace(0, 2, 3, dtype=L.int64),
    "scalar_tensor": lambda L, T: L.scalar_tensor(3),
    "scalar_tensor-dtype": lambda L, T: L.scalar_tensor(True, dtype=L.int64),
    "promote_types": lambda L, T: L.promote_types(L.int64, L.float32),
    "result_type": lambda L, T: L.result_type(T((2,), "int64"), 1.5),
    "result_type-t": lambda L, T: L.result_type(T((2,), "float32"), T(1.0)),
    "can_cast": lambda L, T: (
        L.can_cast(L.float64, L.int64),
        L.can_cast(L.int64, L.float32),
        L.can_cast(L.bool, L.int64),
        L.can_cast(L.float32, L.bool),
    ),
    "is_nonzero": lambda L, T: L.is_nonzero(T([0.5])),
    "is_nonzero-bad": lambda L, T: L.is_nonzero(T((2,))),
    "is_nonzero-empty": lambda L, T: L.is_nonzero(T((0,))),
    "is_same_size": lambda L, T: L.is_same_size(T((2, 3)), T((3, 2), layout="t")),
    "is_floating_point": lambda L, T: (L.is_floating_point(T((2,), "int64")), L.is_floating_point(T((2,)))),
    "is_signed": lambda L, T: (T((2,), "uint8").is_signed(), T((2,), "bool").is_signed(), T((2,)).is_signed()),
    "adjoint": lambda L, T: L.adjoint(T((2, 3, 4), grad=True)),
    "adjoint-1d": lambda L, T: L.adjoint(T((3,))),
    "conj_physical-int": lambda L, T: L.conj_physical(T((3,), "int64")),
    "empty_strided": lambda L, T: L.empty_strided((2, 3), (3, 1)).shape,
    "new_full": lambda L, T: T((2,), "int64").new_full((2, 2), 1.5),
    "new_zeros": lambda L, T: T((2,), "float32").new_zeros(3, 1),
    "new_ones-dtype": lambda L, T: T((2,), "float32").new_ones((2,), dtype=L.int64),
    "new_tensor": lambda L, T: T((2,), "float32").new_tensor([1, 2]),
    "new_empty": lambda L, T: T((2,), "int64").new_empty((0, 2)).shape,
    "randint_like": lambda L, T: L.randint_like(T((2, 3), "float32"), 5).shape,
    "randint_like-dtype": lambda L, T: L.randint_like(T((2, 3)), 2, 5).dtype,
    "randint_like-bad": lambda L, T: L.randint_like(T((2, 3)), 5, 2),
    "bernoulli-shape": lambda L, T: L.bernoulli(T((2, 3), "float32")).dtype,
    "bernoulli-bad": lambda L, T: L.bernoulli(T([1.5])),
    "multinomial-shape": lambda L, T: L.multinomial(T((2, 3)).abs(), 2).shape,
    "multinomial-1d": lambda L, T: L.multinomial(T([0.2, 0.8]), 3, replacement=True).shape,
    "multinomial-bad": lambda L, T: L.multinomial(T([0.2, 0.8]), 3),
    "multinomial-neg": lambda L, T: L.multinomial(T([-0.2, 0.8]), 1),
    "multinomial-0d": lambda L, T: L.multinomial(T(0.5), 1),
    "multinomial-dtype": lambda L, T: L.multinomial(T([0.2, 0.8]), 1).dtype,
    "normal-tensors": lambda L, T: L.normal(T((2, 3)), T((3,)).abs()).shape,
    "normal-float-std": lambda L, T: L.normal(T((2, 3), "float32"), 1.0).dtype,
    "normal-size": lambda L, T: L.normal(0.0, 1.0, (2, 3)).shape,
    "normal-neg-std": lambda L, T: L.normal(0.0, -1.0, (2,)),
    "poisson": lambda L, T: L.poisson(T((2, 3), "float32").abs()).dtype,
    "poisson-neg": lambda L, T: L.poisson(T([-1.0])),
    "randperm": lambda L, T: (L.randperm(4).dtype, L.randperm(0).shape),
    "randperm-dtype": lambda L, T: L.randperm(3, dtype=L.float32).dtype,
    "randperm-neg": lambda L, T: L.randperm(-1),
    "uniform_-int": lambda L, T: T((2,), "int64").uniform_(),
    "normal_-bad": lambda L, T: T((2,)).normal_(0.0, -1.0),
    "uniform_-bad": lambda L, T: T((2,)).uniform_(1.0, 0.0),
    "random_-float": lambda L, T: T((3,)).random_(0, 1),
    "random_-bad": lambda L, T: T((3,)).random_(3, 3),
    "bernoulli_-p": lambda L, T: T((3,)).bernoulli_(1.0),
    "bernoulli_-bad": lambda L, T: T((3,)).bernoulli_(1.5),
    "exponential_-bad": lambda L, T: T((3,)).exponential_(-1.0),
    "geometric_-bad": lambda L, T: T((3,)).geometric_(1.5),
    "geometric_-int": lambda L, T: T((3,), "int64").geometric_(1.0),
    "cauchy_-int": lambda L, T: T((3,), "int64").cauchy_(),
    "log_normal_-bad": lambda L, T: T((3,)).log_normal_(0.0, -1.0),
    "exponential_-0": lambda L, T: T((3,)).exponential_(math.inf),
    "histc-constant": lambda L, T: L.histc(T([0.5, 0.5, 0.5]), 4),
    "histc-outside": lambda L, T: L.histc(T([-1.0, 0.0, 0.25, 0.5, 2.0]), 2, 0.0, 0.5),
    "histc-nan": lambda L, T: L.histc(T([0.1, math.nan]), 2, 0.0, 1.0),
    "histogram-weight-f32": lambda L, T: L.histogram(T((5,), "float32"), 2, weight=T((5,), "float32")),
    "histogram-int": lambda L, T: L.histogram(T((5,), "int64"), 2),
    "bincount-minlength": lambda L, T: L.bincount(T([1, 1], "int64"), minlength=4),
    "bincount-bool": lambda L, T: L.bincount(T([True, False, True], "bool")),
    "cov-correction-big": lambda L, T: L.cov(T((2, 3), grad=True), correction=5),
    "corrcoef-constant": lambda L, T: L.corrcoef(T([[1.0, 1.0, 1.0], [0.1, 0.2, 0.4]], grad=True)),
    "quantile-nan": lambda L, T: L.quantile(T([0.1, math.nan, 0.3], grad=True), 0.5),
    "quantile-keepdim-none": lambda L, T: L.quantile(T((2, 3), grad=True), T([0.2, 0.7]), keepdim=True),
    "quantile-nearest-ties": lambda L, T: L.quantile(T([0.1, 0.2, 0.3, 0.4]), 0.5, interpolation="nearest"),
    "std_mean-unbiased": lambda L, T: L.std_mean(T((2, 3), grad=True), 0, unbiased=False),
    "var_mean-tuple": lambda L, T: L.var_mean(T((2, 3, 2), grad=True), (0, 2), correction=2),
    "trapezoid-x-bcast": lambda L, T: L.trapezoid(T((2, 4), grad=True), T((2, 4), grad=True) * 2),
    "trapezoid-single": lambda L, T: L.trapezoid(T((2, 1), grad=True)),
    "cumulative_trapezoid-single": lambda L, T: L.cumulative_trapezoid(T((2, 1), grad=True)),
    "renorm-zero-rows": lambda L, T: L.renorm(T([[0.0, 0.0], [3.0, 4.0]], grad=True), 2, 0, 1.0),
    "renorm-inf": lambda L, T: L.renorm(T((3, 4), grad=True), math.inf, 0, 0.5),
    "diff-n-big": lambda L, T: L.diff(T((2, 3), grad=True), 5),
    "diff-append-bad": lambda L, T: L.diff(T((2, 3)), append=T((3,))),
    "block_diag-0d-1d": lambda L, T: L.block_diag(T(0.5, grad=True), T((0,), grad=True), T((2,), grad=True)),
    "cartesian_prod-empty": lambda L, T: L.cartesian_prod(T((2,)), T((0,))),
    "combinations-empty": lambda L, T: L.combinations(T((0,)), 2),
    "tensor_split-neg-idx": lambda L, T: L.tensor_split(T((5,), grad=True), [-2, 4]),
    "tensor_split-zero": lambda L, T: L.tensor_split(T((5,)), 0),
    "slice_scatter-bad": lambda L, T: L.slice_scatter(T((4, 3)), T((3, 3)), 0, 0, 2),
    "select_scatter-0d-src": lambda L, T: L.select_scatter(T((3,), grad=True), T(1.5, grad=True), 0, 1),
    "diagonal_scatter-bad": lambda L, T: L.diagonal_scatter(T((3, 3)), T((2,)), 0),
    "unfold-step-big": lambda L, T: T((2, 7), grad=True).unfold(1, 2, 5),
    "unfold-size0": lambda L, T: T((2, 3), grad=True).unfold(1, 0, 1),
    "fill_diagonal_-rect-wide": lambda L, T: T((2, 5)).fill_diagonal_(-1.0, wrap=True),
    "tril_indices-neg": lambda L, T: L.tril_indices(3, 3, -5),
    "triu_indices-big-offset": lambda L, T: L.triu_indices(3, 4, 10),
    "isin-float": lambda L, T: L.isin(T([0.1, 0.5, math.nan]), T([0.5, math.nan])),
    "isin-bool-int": lambda L, T: L.isin(T([True, False], "bool"), T([1], "int64")),
    "float_power-neg-frac": lambda L, T: L.float_power(T([-1.0, 4.0], grad=True), 0.5),
    "float_power-grad-f32": lambda L, T: L.float_power(T((3,), "float32"), 2),
    "clamp_min-int-tensor": lambda L, T: L.clamp_min(T((2, 3), "int64"), T((3,), "int64")),
    "frexp-special": lambda L, T: L.frexp(T([0.0, -0.0, math.inf, math.nan, 1e-310])),
    "logaddexp2-inf": lambda L, T: L.logaddexp2(T([-math.inf, math.inf, 0.0], grad=True), T([-math.inf, 1.0, 0.0])),
    "heaviside-nan": lambda L, T: L.heaviside(T([math.nan, 0.0, -0.0]), T([0.5, 0.5, 0.5])),
    "gcd-int32-int64": lambda L, T: L.gcd(T([4, 6], "int32"), T([6, 9], "int64")),
    "bitwise_xor-scalar": lambda L, T: L.bitwise_xor(T([1, 2, 3], "int64"), 1),
    "bitwise_and-uint8-int": lambda L, T: L.bitwise_and(T([1, 2, 3], "uint8"), T([3], "int64")),
    "logical_and-float": lambda L, T: L.logical_and(T([0.0, 0.5, math.nan]), T([1.0, 0.0, 1.0])),
}
for _k, _f in SURFACE.items():
    _add(_k, _f)


# ---- nn.functional
_begin("nn_functional")


def _F(L):
    return L.nn.functional


NNF = {
    "relu-int": lambda L, T: _F(L).relu(T((2, 3), "int64")),
    "softmax-neg": lambda L, T: _F(L).softmax(T((2, 3), grad=True, layout="t"), -1),
    "softmax-0d": lambda L, T: _F(L).softmax(T(0.5, grad=True), 0),
    "log_softmax-empty": lambda L, T: _F(L).log_softmax(T((0, 3), grad=True), 1),
    "softmin": lambda L, T: _F(L).softmin(T((2, 3), grad=True), -1),
    "normalize-0d": lambda L, T: _F(L).normalize(T((2, 3), grad=True), dim=-1),
    "normalize-zero": lambda L, T: _F(L).normalize(T([[0.0, 0.0]], grad=True), dim=1),
    "linear-1d": lambda L, T: _F(L).linear(T((3,), grad=True), T((2, 3), grad=True), T((2,), grad=True)),
    "linear-bad": lambda L, T: _F(L).linear(T((2, 3)), T((2, 4))),
    "cross_entropy-0d-target": lambda L, T: _F(L).cross_entropy(T((3,), grad=True), T(1, "int64")),
    "cross_entropy-probs": lambda L, T: _F(L).cross_entropy(T((2, 3), grad=True), T((2, 3)).softmax(-1)),
    "cross_entropy-ignore": lambda L, T: _F(L).cross_entropy(T((3, 4), grad=True), T([1, -100, 3], "int64")),
    "cross_entropy-all-ignored": lambda L, T: _F(L).cross_entropy(T((2, 4), grad=True), T([-100, -100], "int64")),
    "cross_entropy-smooth": lambda L, T: _F(L).cross_entropy(
        T((3, 4), grad=True), T([1, 0, 3], "int64"), label_smoothing=0.1, reduction="sum"
    ),
    "cross_entropy-weight": lambda L, T: _F(L).cross_entropy(
        T((3, 4), grad=True), T([1, 0, 3], "int64"), weight=T((4,)).abs() + 0.1
    ),
    "cross_entropy-nd": lambda L, T: _F(L).cross_entropy(T((2, 3, 2), grad=True), T([[0, 2], [1, 1]], "int64")),
    "cross_entropy-bad-target": lambda L, T: _F(L).cross_entropy(T((2, 3)), T([0, 3], "int64")),
    "cross_entropy-float-target-shape": lambda L, T: _F(L).cross_entropy(T((2, 3)), T((2, 2))),
    "cross_entropy-empty": lambda L, T: _F(L).cross_entropy(T((0, 3), grad=True), T((0,), "int64")),
    "nll_loss": lambda L, T: _F(L).nll_loss(T((3, 4), grad=True), T([1, 0, 3], "int64"), reduction="none"),
    "nll_loss-bad-dtype": lambda L, T: _F(L).nll_loss(T((3, 4)), T([1.0, 0.0, 3.0])),
    "mse_loss-bcast": lambda L, T: _F(L).mse_loss(T((2, 3), grad=True), T((3,), grad=True)),
    "mse_loss-empty": lambda L, T: _F(L).mse_loss(T((0,), grad=True), T((0,), grad=True)),
    "mse_loss-f32": lambda L, T: _F(L).mse_loss(T((3,), "float32"), T((3,), "float32"), reduction="sum"),
    "l1_loss": lambda L, T: _F(L).l1_loss(T((2, 3), grad=True), T((2, 3), grad=True) * 0.5, reduction="none"),
    "smooth_l1_loss": lambda L, T: _F(L).smooth_l1_loss(T((2, 3), grad=True), T((2, 3)) * -1, beta=0.5),
    "huber_loss": lambda L, T: _F(L).huber_loss(T((2, 3), grad=True), T((2, 3)) * -1, delta=0.5),
    "binary_cross_entropy": lambda L, T: _F(L).binary_cross_entropy(T((2, 3), grad=True).abs(), T((2, 3)).abs()),
    "bce_with_logits": lambda L, T: _F(L).binary_cross_entropy_with_logits(
        T((2, 3), grad=True), T((2, 3)).abs(), pos_weight=T((3,)).abs() + 1
    ),
    "bce-bad-shape": lambda L, T: _F(L).binary_cross_entropy(T((2, 3)).abs(), T((3,)).abs()),
    "kl_div": lambda L, T: _F(L).kl_div(T((2, 3), grad=True), T((2, 3)).abs(), reduction="batchmean"),
    "kl_div-log-target": lambda L, T: _F(L).kl_div(T((2, 3), grad=True), T((2, 3)), log_target=True),
    "gelu-tanh": lambda L, T: _F(L).gelu(T((2, 3), grad=True), approximate="tanh"),
    "gelu-bad": lambda L, T: _F(L).gelu(T((2, 3)), approximate="fast"),
    "leaky_relu": lambda L, T: _F(L).leaky_relu(T((2, 3), grad=True, layout="t"), 0.2),
    "elu": lambda L, T: _F(L).elu(T((2, 3), grad=True), 0.5),
    "silu": lambda L, T: _F(L).silu(T((2, 3), grad=True)),
    "softplus": lambda L, T: _F(L).softplus(T((2, 3), grad=True), beta=2, threshold=0.5),
    "hardtanh": lambda L, T: _F(L).hardtanh(T((2, 3), grad=True), -0.2, 0.2),
    "glu": lambda L, T: _F(L).glu(T((2, 4), grad=True), -1),
    "glu-odd": lambda L, T: _F(L).glu(T((2, 3)), -1),
    "logsigmoid": lambda L, T: _F(L).logsigmoid(T((2, 3), grad=True)),
    "one_hot": lambda L, T: _F(L).one_hot(T([0, 2, 1], "int64")),
    "one_hot-classes": lambda L, T: _F(L).one_hot(T([[0], [2]], "int64"), 4),
    "one_hot-bad": lambda L, T: _F(L).one_hot(T([0, 3], "int64"), 3),
    "one_hot-float": lambda L, T: _F(L).one_hot(T([0.0])),
    "one_hot-empty": lambda L, T: _F(L).one_hot(T((0,), "int64"), 3),
    "pad-neg": lambda L, T: _F(L).pad(T((2, 4), grad=True), (-1, 2)),
    "pad-reflect": lambda L, T: _F(L).pad(T((1, 2, 4), grad=True), (2, 1), mode="reflect"),
    "pad-replicate": lambda L, T: _F(L).pad(T((1, 2, 4), grad=True), (1, 1, 1, 0), mode="replicate"),
    "pad-circular": lambda L, T: _F(L).pad(T((1, 2, 4), grad=True), (1, 2), mode="circular"),
    "pad-value-int": lambda L, T: _F(L).pad(T((2, 2), "int64"), (1, 1), value=3),
    "pad-odd": lambda L, T: _F(L).pad(T((2, 2)), (1,)),
    "embedding": lambda L, T: _F(L).embedding(T([[0, 2], [1, 0]], "int64"), T((3, 2), grad=True)),
    "embedding-bad": lambda L, T: _F(L).embedding(T([3], "int64"), T((3, 2))),
    "embedding-padding": lambda L, T: _F(L).embedding(T([0, 2, 0], "int64"), T((3, 2), grad=True), padding_idx=0),
    "dropout-p0": lambda L, T: _F(L).dropout(T((2, 3), grad=True), 0.0),
    "dropout-eval": lambda L, T: _F(L).dropout(T((2, 3), grad=True), 0.5, training=False),
    "dropout-bad": lambda L, T: _F(L).dropout(T((2, 3)), 1.5),
    "layer_norm": lambda L, T: _F(L).layer_norm(T((2, 3), grad=True, layout="t"), (3,), T((3,), grad=True)),
    "layer_norm-bad": lambda L, T: _F(L).layer_norm(T((2, 3)), (2,)),
    "group_norm": lambda L, T: _F(L).group_norm(T((2, 4, 3), grad=True), 2),
    "batch_norm-train": lambda L, T: _F(L).batch_norm(T((3, 2), grad=True), None, None, training=True),
    "batch_norm-1": lambda L, T: _F(L).batch_norm(T((1, 2)), None, None, training=True),
    "instance_norm": lambda L, T: _F(L).instance_norm(T((2, 2, 3), grad=True)),
    "cosine_similarity": lambda L, T: _F(L).cosine_similarity(T((2, 3), grad=True), T((3,), grad=True)),
    "cosine_similarity-zero": lambda L, T: _F(L).cosine_similarity(T([[0.0, 0.0]], grad=True), T([[1.0, 0.0]])),
    "pairwise_distance": lambda L, T: _F(L).pairwise_distance(T((2, 3), grad=True), T((3,), grad=True), keepdim=True),
    "conv1d": lambda L, T: _F(L).conv1d(T((1, 2, 5), grad=True), T((3, 2, 2), grad=True), stride=2, padding=1),
    "conv1d-same": lambda L, T: _F(L).conv1d(T((1, 2, 5), grad=True), T((3, 2, 2), grad=True), padding="same"),
    "conv1d-unbatched": lambda L, T: _F(L).conv1d(T((2, 5), grad=True), T((3, 2, 2), grad=True)),
    "conv1d-bad": lambda L, T: _F(L).conv1d(T((1, 3, 5)), T((3, 2, 2))),
    "conv2d-groups": lambda L, T: _F(L).conv2d(T((1, 4, 3, 3), grad=True), T((2, 2, 2, 2), grad=True), groups=2),
    "max_pool1d": lambda L, T: _F(L).max_pool1d(T((1, 2, 5), grad=True), 2, ceil_mode=True),
    "max_pool2d-idx": lambda L, T: _F(L).max_pool2d(T((1, 4, 4), grad=True), 2, return_indices=True),
    "avg_pool1d-pad": lambda L, T: _F(L).avg_pool1d(T((1, 2, 5), grad=True), 3, 2, 1, count_include_pad=False),
    "adaptive_avg_pool1d": lambda L, T: _F(L).adaptive_avg_pool1d(T((1, 2, 5), grad=True), 3),
    "adaptive_max_pool2d": lambda L, T: _F(L).adaptive_max_pool2d(T((1, 3, 5), grad=True), (2, 3)),
    "interpolate-nearest": lambda L, T: _F(L).interpolate(T((1, 2, 3), grad=True), scale_factor=2),
    "interpolate-linear": lambda L, T: _F(L).interpolate(
        T((1, 2, 3), grad=True), size=5, mode="linear", align_corners=True
    ),
    "unfold-im2col": lambda L, T: _F(L).unfold(T((1, 2, 3, 3), grad=True), 2),
    "pixel_shuffle": lambda L, T: _F(L).pixel_shuffle(T((1, 4, 2, 1), grad=True), 2),
    "threshold": lambda L, T: _F(L).threshold(T((2, 3), grad=True), 0.2, -1.0),
    "hardswish": lambda L, T: _F(L).hardswish(T((2, 3), grad=True) * 4),
    "mish": lambda L, T: _F(L).mish(T((2, 3), grad=True)),
    "softsign": lambda L, T: _F(L).softsign(T((2, 3), grad=True)),
    "tanhshrink": lambda L, T: _F(L).tanhshrink(T((2, 3), grad=True)),
    "softshrink": lambda L, T: _F(L).softshrink(T((2, 3), grad=True), 0.3),
    "rrelu-eval": lambda L, T: _F(L).rrelu(T((2, 3), grad=True), training=False),
    "prelu": lambda L, T: _F(L).prelu(T((2, 3), grad=True), T((3,), grad=True)),
    "triplet_margin_loss": lambda L, T: _F(L).triplet_margin_loss(
        T((2, 3), grad=True), T((2, 3)) * 0.5, T((2, 3)) * -1
    ),
    "margin_ranking_loss": lambda L, T: _F(L).margin_ranking_loss(
        T((3,), grad=True), T((3,)) * -1, T([1.0, -1.0, 1.0])
    ),
    "hinge_embedding_loss": lambda L, T: _F(L).hinge_embedding_loss(T((3,), grad=True), T([1.0, -1.0, 1.0])),
    "soft_margin_loss": lambda L, T: _F(L).soft_margin_loss(T((2, 3), grad=True, layout="t"), T([1.0, -1.0, 1.0])),
    "soft_margin_loss-none": lambda L, T: _F(L).soft_margin_loss(T((2, 3), grad=True), T((2, 3)), reduction="none"),
    "soft_margin_loss-sum-int": lambda L, T: _F(L).soft_margin_loss(
        T((3,), grad=True), T((3,), "int64"), None, None, "sum"
    ),
    "soft_margin_loss-f32": lambda L, T: _F(L).soft_margin_loss(T((3,), "float32"), T((3,))),
    "soft_margin_loss-0d": lambda L, T: _F(L).soft_margin_loss(T(0.5, grad=True), T(-1.0)),
    "soft_margin_loss-target-grad": lambda L, T: _F(L).soft_margin_loss(T((3,), grad=True), T((3,), grad=True)),
    "soft_margin_loss-bad-shape": lambda L, T: _F(L).soft_margin_loss(T((2, 3)), T((2,))),
    "soft_margin_loss-bad-reduction": lambda L, T: _F(L).soft_margin_loss(T((3,)), T((3,)), reduction="avg"),
    "soft_margin_loss-large": lambda L, T: _F(L).soft_margin_loss(T([-800.0, 40.0], grad=True), T([1.0, -1.0])),
    **{
        f"multi_margin_loss-p{p}-{red}": lambda L, T, p=p, red=red: _F(L).multi_margin_loss(
            T((3, 4), grad=True, layout="s"), T([3, 0, 1], "int64"), p=p, margin=0.6, reduction=red
        )
        for p in (1, 2)
        for red in ("mean", "sum", "none")
    },
    "multi_margin_loss-weight": lambda L, T: _F(L).multi_margin_loss(
        T((3, 4), grad=True), T([3, 0, 0], "int64"), weight=T((4,)).abs() + 0.5, reduction="none"
    ),
    "multi_margin_loss-weight-p2": lambda L, T: _F(L).multi_margin_loss(
        T((3, 4), grad=True, layout="t"), T([1, 2, 0], "int64"), p=2, weight=T((4,)).abs(), reduction="sum"
    ),
    "multi_margin_loss-1d": lambda L, T: _F(L).multi_margin_loss(T((4,), grad=True), T(2, "int64"), reduction="none"),
    "multi_margin_loss-kink": lambda L, T: _F(L).multi_margin_loss(T([[0.0, 1.0, 0.0]], grad=True), T([1], "int64")),
    "multi_margin_loss-p2.0": lambda L, T: _F(L).multi_margin_loss(T((2, 3), grad=True), T([0, 2], "int64"), p=2.0),
    "multi_margin_loss-bad-p": lambda L, T: _F(L).multi_margin_loss(T((2, 3)), T([0, 2], "int64"), p=3),
    "multi_margin_loss-bad-target-size": lambda L, T: _F(L).multi_margin_loss(T((2, 3)), T([0, 2, 1], "int64")),
    "multi_margin_loss-bad-target-2d": lambda L, T: _F(L).multi_margin_loss(T((2, 3)), T([[0], [2]], "int64")),
    "multi_margin_loss-bad-target-range": lambda L, T: _F(L).multi_margin_loss(T((2, 3)), T([0, 3], "int64")),
    "multi_margin_loss-bad-target-neg": lambda L, T: _F(L).multi_margin_loss(T((2, 3)), T([-1, 0], "int64")),
    "multi_margin_loss-float-target": lambda L, T: _F(L).multi_margin_loss(T((2, 3)), T([0.0, 1.0])),
    "multi_margin_loss-bad-weight-size": lambda L, T: _F(L).multi_margin_loss(
        T((2, 3)), T([0, 1], "int64"), weight=T((2,))
    ),
    "multi_margin_loss-bad-weight-2d": lambda L, T: _F(L).multi_margin_loss(
        T((2, 3)), T([0, 1], "int64"), weight=T((1, 3))
    ),
    "multi_margin_loss-weight-dtype": lambda L, T: _F(L).multi_margin_loss(
        T((2, 3), "float32"), T([0, 1], "int64"), weight=T((3,))
    ),
    "multi_margin_loss-weight-grad": lambda L, T: _F(L).multi_margin_loss(
        T((2, 3)), T([0, 1], "int64"), weight=T((3,), grad=True)
    ),
    "multi_margin_loss-3d": lambda L, T: _F(L).multi_margin_loss(T((2, 3, 2)), T([0, 1], "int64")),
    "multi_margin_loss-empty-classes": lambda L, T: _F(L).multi_margin_loss(T((2, 0)), T([0, 1], "int64")),
    "multi_margin_loss-empty-none": lambda L, T: _F(L).multi_margin_loss(
        T((0, 3), grad=True), T((0,), "int64"), reduction="none"
    ),
    "multi_margin_loss-int": lambda L, T: _F(L).multi_margin_loss(T((2, 3), "int64"), T([0, 1], "int64")),
    "multi_margin_loss-bad-reduction": lambda L, T: _F(L).multi_margin_loss(
        T((2, 3)), T([0, 1], "int64"), reduction="x"
    ),
    "MultiMarginLoss": lambda L, T: L.nn.MultiMarginLoss(p=2, margin=0.5, weight=T((3,)).abs(), reduction="sum")(
        T((2, 3), grad=True), T([2, 1], "int64")
    ),
    "MultiMarginLoss-bad-p": lambda L, T: L.nn.MultiMarginLoss(p=0),
    "MultiMarginLoss-bad-weight": lambda L, T: L.nn.MultiMarginLoss(weight=T((1, 3))),
    "SoftMarginLoss": lambda L, T: L.nn.SoftMarginLoss(reduction="none")(T((2, 3), grad=True), T((3,))),
    "gumbel_softmax-bad-input": lambda L, T: _F(L).gumbel_softmax([0.5, 0.2]),
    "gumbel_softmax-int": lambda L, T: _F(L).gumbel_softmax(T((2, 3), "int64")),
    "poisson_nll_loss": lambda L, T: _F(L).poisson_nll_loss(T((2, 3), grad=True), T((2, 3)).abs()),
    "gaussian_nll_loss": lambda L, T: _F(L).gaussian_nll_loss(T((2, 3), grad=True), T((2, 3)), T((2, 3)).abs()),
    "cosine_embedding_loss": lambda L, T: _F(L).cosine_embedding_loss(T((2, 3), grad=True), T((2, 3)), T([1.0, -1.0])),
    "linear-empty-batch": lambda L, T: _F(L).linear(T((0, 3), grad=True), T((2, 3), grad=True), T((2,), grad=True)),
    # a layer without inputs or outputs (AdaptiveLogSoftmaxWithLoss's last cluster: in_features // div_value**2)
    "linear-no-inputs": lambda L, T: _F(L).linear(T((2, 0), grad=True), T((3, 0), grad=True), T((3,), grad=True)),
    "linear-no-outputs": lambda L, T: _F(L).linear(T((2, 2, 3), grad=True), T((0, 3), grad=True), T((0,), grad=True)),
    "linear-t-input": lambda L, T: _F(L).linear(T((3, 2), grad=True, layout="t"), T((4, 3), grad=True)),
    "linear-int": lambda L, T: _F(L).linear(T((2, 3), "int64"), T((2, 3))),
    "conv1d-empty-batch": lambda L, T: _F(L).conv1d(T((0, 2, 5), grad=True), T((3, 2, 2), grad=True)),
    "conv1d-t-input": lambda L, T: _F(L).conv1d(T((1, 5, 2), grad=True).transpose(1, 2), T((3, 2, 2), grad=True)),
    "conv1d-dilation": lambda L, T: _F(L).conv1d(T((1, 2, 7), grad=True), T((2, 2, 3), grad=True), dilation=2),
    "conv1d-too-small": lambda L, T: _F(L).conv1d(T((1, 2, 2)), T((3, 2, 3))),
    "conv2d-bias-bad": lambda L, T: _F(L).conv2d(T((1, 2, 3, 3)), T((3, 2, 2, 2)), T((2,))),
    "conv_transpose1d": lambda L, T: _F(L).conv_transpose1d(
        T((1, 2, 4), grad=True), T((2, 3, 3), grad=True), stride=2, padding=1, output_padding=1
    ),
    "max_pool1d-pad-neginf": lambda L, T: _F(L).max_pool1d(T((1, 1, 4), grad=True) - 5.0, 2, 2, 1),
    "max_pool1d-dilation": lambda L, T: _F(L).max_pool1d(T((1, 2, 7), grad=True), 2, 1, 0, 2),
    "max_pool1d-bad-pad": lambda L, T: _F(L).max_pool1d(T((1, 2, 7)), 2, 1, 2),
    "avg_pool1d-ceil": lambda L, T: _F(L).avg_pool1d(T((1, 2, 5), grad=True), 2, 2, 0, ceil_mode=True),
    "avg_pool2d-divisor": lambda L, T: _F(L).avg_pool2d(T((1, 1, 4, 4), grad=True), 2, divisor_override=3),
    "adaptive_avg_pool2d-none": lambda L, T: _F(L).adaptive_avg_pool2d(T((1, 2, 5, 4), grad=True), (None, 2)),
    "softmax-dim-none-3d": lambda L, T: _F(L).softmax(T((2, 2, 3), grad=True), dim=0),
    "log_softmax-f32-dtype": lambda L, T: _F(L).log_softmax(T((2, 3), "float32"), 1, dtype=L.float64),
    "nll_loss-2d-weight-mean": lambda L, T: _F(L).nll_loss(
        T((2, 3, 2), grad=True), T([[0, 2], [1, -100]], "int64"), weight=T([0.2, 1.0, 0.5])
    ),
    "cross_entropy-probs-smooth": lambda L, T: _F(L).cross_entropy(
        T((2, 3), grad=True), T((2, 3)).softmax(-1), label_smoothing=0.2
    ),
    "cross_entropy-1d-probs": lambda L, T: _F(L).cross_entropy(T((3,), grad=True), T((3,)).softmax(-1)),
    "cross_entropy-int-input": lambda L, T: _F(L).cross_entropy(T((2, 3), "int64"), T([0, 1], "int64")),
    "mse_loss-none": lambda L, T: _F(L).mse_loss(T((2, 3), grad=True), T((2, 3)), reduction="none"),
    "mse_loss-bad-reduction": lambda L, T: _F(L).mse_loss(T((2, 3)), T((2, 3)), reduction="avg"),
    "l1_loss-bcast": lambda L, T: _F(L).l1_loss(T((2, 3), grad=True), T((3,))),
    "binary_cross_entropy-weight": lambda L, T: _F(L).binary_cross_entropy(
        T((2, 3), grad=True).abs(), T((2, 3)).abs(), weight=T((3,)).abs()
    ),
    "binary_cross_entropy-out-of-range": lambda L, T: _F(L).binary_cross_entropy(T([1.5]), T([1.0])),
    "bce_with_logits-int-target": lambda L, T: _F(L).binary_cross_entropy_with_logits(T((3,)), T((3,), "int64")),
    "embedding-max_norm": lambda L, T: (
        w := T([[3.0, 4.0], [0.1, 0.1], [1.0, 0.0]]),
        _F(L).embedding(T([0, 1], "int64"), w, max_norm=1.0),
        w,
    ),
    "embedding-neg-index": lambda L, T: _F(L).embedding(T([-1], "int64"), T((3, 2))),
    "embedding-float-index": lambda L, T: _F(L).embedding(T([0.0]), T((3, 2))),
    "one_hot-neg": lambda L, T: _F(L).one_hot(T([-1, 0], "int64"), 3),
    "pad-constant-3d": lambda L, T: _F(L).pad(T((1, 2, 3), grad=True), (1, 0, 0, 1, 1, 1), value=-1.0),
    "pad-reflect-too-big": lambda L, T: _F(L).pad(T((1, 2, 3)), (3, 0), mode="reflect"),
    "pad-replicate-2d-input": lambda L, T: _F(L).pad(T((2, 3), grad=True), (1, 2), mode="replicate"),
    "interpolate-bilinear": lambda L, T: _F(L).interpolate(
        T((1, 1, 2, 3), grad=True), scale_factor=1.5, mode="bilinear", align_corners=False
    ),
    "interpolate-nearest-size": lambda L, T: _F(L).interpolate(T((1, 2, 5), grad=True), size=3),
    "interpolate-bad": lambda L, T: _F(L).interpolate(T((1, 2, 5)), size=3, scale_factor=2.0),
    "layer_norm-0d-shape": lambda L, T: _F(L).layer_norm(T((2, 3), grad=True), (2, 3), eps=1e-3),
    "group_norm-bad": lambda L, T: _F(L).group_norm(T((2, 3, 2)), 2),
    "batch_norm-eval": lambda L, T: _F(L).batch_norm(
        T((3, 2), grad=True), T([0.1, -0.2]), T([0.5, 2.0]), T([1.5, 0.5], grad=True), T((2,), grad=True)
    ),
    "batch_norm-running-update": lambda L, T: (
        rm := T([0.1, -0.2]),
        rv := T([0.5, 2.0]),
        _F(L).batch_norm(T((3, 2), grad=True), rm, rv, training=True, momentum=0.3),
        rm,
        rv,
    ),
    "instance_norm-running": lambda L, T: _F(L).instance_norm(
        T((2, 2, 3), grad=True), T([0.0, 0.0]), T([1.0, 1.0]), use_input_stats=True
    ),
    "dropout-train-p1": lambda L, T: _F(L).dropout(T((2, 3), grad=True), 1.0),
    "alpha_dropout-eval": lambda L, T: _F(L).alpha_dropout(T((2, 3), grad=True), 0.5, training=False),
    "relu6": lambda L, T: _F(L).relu6(T((2, 3), grad=True) * 10),
    "hardsigmoid": lambda L, T: _F(L).hardsigmoid(T((2, 3), grad=True) * 4),
    "selu": lambda L, T: _F(L).selu(T((2, 3), grad=True)),
    "celu": lambda L, T: _F(L).celu(T((2, 3), grad=True), 0.5),
    "elu-int": lambda L, T: _F(L).elu(T((2, 3), "int64")),
    "leaky_relu-bool": lambda L, T: _F(L).leaky_relu(T((3,), "bool")),
    "softplus-int": lambda L, T: _F(L).softplus(T((3,), "int64")),
    "sigmoid-int": lambda L, T: _F(L).sigmoid(T((3,), "int64")),
    "tanh-int": lambda L, T: _F(L).tanh(T((3,), "int64")),
    "gelu-int": lambda L, T: _F(L).gelu(T((3,), "int64")),
    "silu-int": lambda L, T: _F(L).silu(T((3,), "int64")),
    "softmax-bool": lambda L, T: _F(L).softmax(T((3,), "bool"), 0),
    "pixel_unshuffle": lambda L, T: _F(L).pixel_unshuffle(T((1, 1, 4, 2), grad=True), 2),
    "pixel_shuffle-bad": lambda L, T: _F(L).pixel_shuffle(T((1, 3, 2, 2)), 2),
    "fold": lambda L, T: _F(L).fold(T((1, 4, 4), grad=True), (3, 3), 2),
    "grid-unfold-pad": lambda L, T: _F(L).unfold(T((1, 1, 3, 3), grad=True), 2, padding=1, stride=2),
    "local_response_norm": lambda L, T: _F(L).local_response_norm(T((1, 4, 3), grad=True), 2),
    "bilinear": lambda L, T: _F(L).bilinear(T((2, 3), grad=True), T((2, 2), grad=True), T((4, 3, 2), grad=True)),
}
for _k, _f in NNF.items():
    _add(f"F.{_k}", _f)


# ---- Tensor methods: conversions, queries, factories
_begin("methods")
METHODS = {
    "float-grad": lambda L, T: T((2, 3), grad=True).float(),
    "double-f32": lambda L, T: T((2, 3), "float32").double(),
    "long-neg": lambda L, T: T([-1.7, -0.2, 0.5, 2.9]).long(),
    "int-bool": lambda L, T: T((3,), "bool").int(),
    "bool-float": lambda L, T: T([0.0, -0.0, 0.5, math.nan]).bool(),
    "to-dtype-grad": lambda L, T: T((2, 3), grad=True).to(L.float32),
    "to-int-grad": lambda L, T: T((2, 3), grad=True).to(L.int64),
    "type_as": lambda L, T: T((2, 3), "int64").type_as(T((1,), "float32")),
    "item-bad": lambda L, T: T((2,)).item(),
    "item-0d-int": lambda L, T: T(3, "int64").item(),
    "item-1elem": lambda L, T: T([[2.5]]).item(),
    "tolist": lambda L, T: T((2, 2), "int64").tolist(),
    "tolist-0d": lambda L, T: T(True, "bool").tolist(),
    "numel-empty": lambda L, T: T((0, 3)).numel(),
    "size-neg": lambda L, T: T((2, 3, 4)).size(-1),
    "size-bad": lambda L, T: T((2, 3)).size(2),
    "dim-0d": lambda L, T: T(0.5).dim(),
    "stride-t": lambda L, T: T((2, 3), layout="t").stride(),
    "is_contiguous-t": lambda L, T: (T((2, 3), layout="t").is_contiguous(), T((2, 3), layout="s").is_contiguous()),
    "contiguous-t": lambda L, T: T((2, 3), grad=True, layout="t").contiguous(),
    "flatten-method": lambda L, T: T((2, 3, 2), grad=True, layout="t").flatten(1),
    "view-neg": lambda L, T: T((2, 3), grad=True).view(-1, 2),
    "view-bad": lambda L, T: T((2, 3)).view(4, -1),
    "view_as": lambda L, T: T((2, 3), grad=True).view_as(T((3, 2))),
    "expand_as": lambda L, T: T((3, 1), grad=True).expand_as(T((2, 3, 4))),
    "reshape_as": lambda L, T: T((2, 3), grad=True, layout="t").reshape_as(T((6,))),
    "squeeze-all": lambda L, T: T((1, 3, 1), grad=True).squeeze(),
    "T-3d": lambda L, T: T((2, 3, 4), grad=True).permute(2, 1, 0),
    "mT": lambda L, T: T((2, 3, 4), grad=True).mT,
    "sum-method-dtype": lambda L, T: T((2, 3), "int32").sum(),
    "sum-bool": lambda L, T: T((2, 3), "bool").sum(-1),
    "sum-uint8": lambda L, T: T((2, 3), "uint8").sum(),
    "prod-bool": lambda L, T: T((2, 3), "bool").prod(),
    "cumsum-int32": lambda L, T: T((2, 3), "int32").cumsum(0),
    "mean-int-raises": lambda L, T: T((2, 3), "int64").mean(),
    "abs-int32": lambda L, T: T((2, 3), "int32").abs(),
    "neg-uint8": lambda L, T: -T((2, 3), "uint8"),
    "invert-int": lambda L, T: ~T((2, 3), "int64"),
    "invert-float": lambda L, T: ~T((2, 3)),
    "and-bool-int": lambda L, T: T((3,), "bool") & T((3,), "int64"),
    "xor-float": lambda L, T: T((3,)) ^ T((3,)),
    "mod-neg": lambda L, T: T([-3.5, 3.5], grad=True) % 2.0,
    "floordiv-int": lambda L, T: T([-7, 7], "int64") // 2,
    "rsub": lambda L, T: 1.0 - T((2, 3), grad=True),
    "rtruediv-int": lambda L, T: 1 / T([1, 2], "int64"),
    "rpow-f32": lambda L, T: 2.0 ** T((3,), "float32"),
    "matmul-op-1d": lambda L, T: T((3,), grad=True) @ T((3, 2), grad=True),
    "eq-scalar-int": lambda L, T: T((2, 3), "int64") == 0.0,
    "lt-bcast-bad": lambda L, T: T((2, 3)) < T((2,)),
    "bool-0d": lambda L, T: bool(T(0.0)),
    "bool-many": lambda L, T: bool(T((2,))),
    "float-0d": lambda L, T: float(T(2, "int64")),
    "int-float": lambda L, T: int(T(2.7)),
    "index-int": lambda L, T: [10, 20, 30][T(1, "int64")],
    "index-float": lambda L, T: [10, 20, 30][T(1.0)],
    "len-0d": lambda L, T: len(T(0.5)),
    "len": lambda L, T: len(T((4, 2))),
    "iter-0d": lambda L, T: list(T(0.5)),
    "new_full-grad": lambda L, T: T((2,), grad=True).new_full((2,), 3.0).requires_grad,
    "masked_fill_-int-float": lambda L, T: T((2, 3), "int64").masked_fill_(T((3,), "bool"), 2.7),
    "index_fill_-int": lambda L, T: T((2, 3), "int64").index_fill_(1, T([0], "int64"), -1.5),
    "fill_-int": lambda L, T: T((2,), "int64").fill_(2.9),
    "zero_-bool": lambda L, T: T((3,), "bool").zero_(),
    "copy_-float-int": lambda L, T: T((3,), "int64").copy_(T([0.7, -1.5, 2.5])),
    "copy_-bcast": lambda L, T: T((2, 3)).copy_(T((3,))),
    "addmm_-bcast": lambda L, T: T((2, 2)).addmm_(T((2, 3)), T((3, 2)), beta=0.5),
}
for _k, _f in METHODS.items():
    _add(f"m.{_k}", _f)


# ---- session 10: reductions with dtype=, out= errors, new_* factories, sort with NaN, where with scalars, losses'
# reduction='none' and option combinations, integer wrap-around, the composites of ad/tensor_extras.py
_begin("wider")
_NAN_TIES = [[0.5, math.nan, 0.2, 0.5], [math.nan, -1.0, math.nan, 0.0]]
WIDER = {
    **{
        f"{name}-dtype-{dt}": lambda L, T, n=name, dt=dt: getattr(L, n)(T((2, 3), "int64"), 1, dtype=getattr(L, dt))
        for name in ("sum", "prod", "cumsum", "cumprod", "nansum")
        for dt in ("float32", "int32")
    },
    "sum-dtype-bool": lambda L, T: L.sum(T((2, 3), "bool"), dtype=L.int64),
    "sum-dtype-grad": lambda L, T: L.sum(T((2, 3), grad=True), 0, dtype=L.float32),
    "mean-dtype-f32": lambda L, T: L.mean(T((2, 3)), 1, dtype=L.float32),
    "mean-int-nodtype": lambda L, T: L.mean(T((2, 3), "int64")),
    "nanmean-dtype": lambda L, T: L.nanmean(T(_NAN_TIES), 1, dtype=L.float32),
    "softmax-dtype-f32": lambda L, T: L.softmax(T((2, 3), grad=True), -1, dtype=L.float32),
    "sum-out-dtype": lambda L, T: L.sum(T((2, 3)), 1, out=T((2,), "int64")),
    "sum-out-shape": lambda L, T: L.sum(T((2, 3)), 1, out=T((5,))),
    "add-out-int": lambda L, T: L.add(T((2, 3)), 1.0, out=T((2, 3), "int64")),
    "add-out-f32": lambda L, T: L.add(T((2, 3)), 1.0, out=T((2, 3), "float32")),
    "add-out-grad": lambda L, T: L.add(T((2, 3)), 1.0, out=T((2, 3), grad=True)),
    "mul-out-resize": lambda L, T: L.mul(T((2, 3)), 2.0, out=T((0,))),
    "matmul-out-dtype": lambda L, T: L.matmul(T((2, 3)), T((3, 2)), out=T((2, 2), "float32")),
    "new_empty-shape": lambda L, T: T((2,), "int64").new_empty((2, 3)).shape,
    "new_ones-dtype": lambda L, T: T((2,), "float32").new_ones((2,), dtype=L.int64),
    "new_zeros-grad": lambda L, T: (lambda z: (z.requires_grad, z.is_leaf, z))(
        T((2,)).new_zeros(2, requires_grad=True)
    )[:2],
    "new_full-bool": lambda L, T: T((2,), "bool").new_full((3,), 2),
    "new_tensor-t": lambda L, T: T((2,), "int64").new_tensor(T((2, 3))),
    "sort-nan": lambda L, T: L.sort(T(_NAN_TIES, grad=True), 1),
    "sort-nan-desc": lambda L, T: L.sort(T(_NAN_TIES, grad=True), dim=1, descending=True, stable=True),
    "argsort-nan-desc": lambda L, T: L.argsort(T(_NAN_TIES), dim=1, descending=True, stable=True),
    "sort-nan-dim0": lambda L, T: L.sort(T(_NAN_TIES, grad=True), dim=0, stable=True),
    "topk-nan": lambda L, T: L.topk(T([[0.5, math.nan, 0.2, 0.4], [math.nan, -1.0, 0.3, 0.0]], grad=True), 2, 1),
    "msort-nan": lambda L, T: L.msort(T(_NAN_TIES)),
    "sort-int-desc": lambda L, T: L.sort(T([[3, 1, 3, 2]], "int64"), descending=True, stable=True),
    "where-scalar-scalar": lambda L, T: L.where(T((2, 3), "bool"), 1.0, 0.0),
    "where-int-scalars": lambda L, T: L.where(T((2, 3), "bool"), 1, 0),
    "where-int-float-scalar": lambda L, T: L.where(T((2, 3), "bool"), T((2, 3), "int64"), 0.5),
    "where-f32-scalar": lambda L, T: L.where(T((2, 3), "bool"), T((2, 3), "float32"), 2.0),
    "where-scalar-f32": lambda L, T: L.where(T((2, 3), "bool"), 2, T((3,), "float32")),
    "where-bool-int": lambda L, T: L.where(T((2, 3), "bool"), T((2, 3), "bool"), 3),
    "where-0d-f64-f32": lambda L, T: L.where(T((2, 3), "bool"), T(1.5), T((2, 3), "float32")),
    "where-method-scalar": lambda L, T: T((2, 3), grad=True).where(T((2, 3), "bool"), -1.0),
    **{
        f"{name}-none": lambda L, T, n=name: getattr(_F(L), n)(T((2, 3), grad=True), T((2, 3)), reduction="none")
        for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "soft_margin_loss")
    },
    "cross_entropy-none-4d": lambda L, T: _F(L).cross_entropy(
        T((2, 3, 2, 2), grad=True), T([[[0, 2], [1, -100]], [[2, 2], [0, 1]]], "int64"), reduction="none"
    ),
    "cross_entropy-weight-ignore-smooth": lambda L, T: _F(L).cross_entropy(
        T((4, 3), grad=True), T([0, 2, 1, 2], "int64"), T([0.2, 1.0, 0.5]), ignore_index=2, label_smoothing=0.3
    ),
    "cross_entropy-weight-ignore-smooth-none": lambda L, T: _F(L).cross_entropy(
        T((4, 3), grad=True),
        T([0, 2, 1, 2], "int64"),
        T([0.2, 1.0, 0.5]),
        ignore_index=2,
        reduction="none",
        label_smoothing=0.3,
    ),
    "cross_entropy-weight-smooth-sum": lambda L, T: _F(L).cross_entropy(
        T((2, 3, 2), grad=True),
        T([[0, 2], [1, 1]], "int64"),
        T([0.2, 1.0, 0.5]),
        reduction="sum",
        label_smoothing=0.1,
    ),
    "cross_entropy-probs-weight-smooth": lambda L, T: _F(L).cross_entropy(
        T((2, 3), grad=True), T((2, 3)).softmax(-1), T([0.2, 1.0, 0.5]), label_smoothing=0.2, reduction="none"
    ),
    "cross_entropy-1d": lambda L, T: _F(L).cross_entropy(T((3,), grad=True), T(1, "int64"), label_smoothing=0.1),
    "nll_loss-none-ignore": lambda L, T: _F(L).nll_loss(
        T((3, 4), grad=True), T([1, -1, 3], "int64"), ignore_index=-1, reduction="none"
    ),
    "nll_loss-weight-all-ignored": lambda L, T: _F(L).nll_loss(
        T((2, 4), grad=True), T([1, 1], "int64"), T((4,)).abs(), ignore_index=1
    ),
    "bce-none-weight": lambda L, T: _F(L).binary_cross_entropy(
        T((2, 3), grad=True).abs(), T((2, 3)).abs(), weight=T((3,)).abs(), reduction="none"
    ),
    "bce_with_logits-none-pos_weight": lambda L, T: _F(L).binary_cross_entropy_with_logits(
        T((2, 3), grad=True), T((2, 3)).abs(), weight=T((2, 1)).abs(), pos_weight=T((3,)).abs(), reduction="none"
    ),
    "kl_div-legacy-flags": lambda L, T: (
        _F(L).kl_div(T((2, 3), grad=True), T((2, 3)).abs(), "none"),
        _F(L).mse_loss(T((2, 3), grad=True), T((2, 3)), 0, 1),
        _F(L).l1_loss(T((2, 3), grad=True), T((2, 3)), None, 0),
    ),
    "kl_div-none-log_target": lambda L, T: _F(L).kl_div(
        T((2, 3), grad=True), T((2, 3)), reduction="none", log_target=True
    ),
    **{
        f"{op}-{dt}-wrap": lambda L, T, op=op, dt=dt: getattr(L, op)(
            L.tensor([100, 120, -100], dtype=getattr(L, dt))
            if dt != "uint8"
            else L.tensor([200, 250, 3], dtype=L.uint8),
            L.tensor([100, 20, -100], dtype=getattr(L, dt)) if dt != "uint8" else L.tensor([100, 10, 5], dtype=L.uint8),
        )
        for op in ("add", "sub", "mul")
        for dt in ("int8", "int16", "uint8")
    },
    "int8-scalar-wrap": lambda L, T: L.tensor([100, -100], dtype=L.int8) + 100,
    "uint8-neg": lambda L, T: -L.tensor([1, 0, 200], dtype=L.uint8),
    "int8-sum": lambda L, T: L.sum(L.tensor([100, 100], dtype=L.int8)),
    "int8-cumsum": lambda L, T: L.cumsum(L.tensor([100, 100], dtype=L.int8), 0),
    "uint8-int8": lambda L, T: L.tensor([200], dtype=L.uint8) + L.tensor([-1], dtype=L.int8),
    "addr": lambda L, T: L.addr(T((2, 3), grad=True), T((2,), grad=True), T((3,), grad=True), beta=0.5, alpha=2),
    "addr-bcast": lambda L, T: L.addr(T((3,), grad=True), T((2,), grad=True), T((3,), grad=True)),
    "addr-beta0-nan": lambda L, T: L.addr(T([[math.nan] * 3] * 2), T((2,), grad=True), T((3,)), beta=0),
    "addr-int": lambda L, T: L.addr(T((2, 3), "int64"), T((2,), "int64"), T((3,), "int64"), alpha=2),
    "addr-int-float-alpha": lambda L, T: L.addr(T((2, 3), "int64"), T((2,), "int64"), T((3,), "int64"), alpha=0.5),
    "addr-bool": lambda L, T: L.addr(T((2, 3), "bool"), T((2,), "bool"), T((3,), "bool")),
    "addr-bad-vec": lambda L, T: L.addr(T((2, 3)), T((2, 1)), T((3,))),
    "addr-bad-input": lambda L, T: L.addr(T((2,)), T((2,)), T((3,))),
    "addr-method": lambda L, T: T((2, 3), grad=True).addr(T((2,)), T((3,), grad=True)),
    "addr_": lambda L, T: T((2, 3), grad=True).mul(1.0).addr_(T((2,), grad=True), T((3,))),
    "mvlgamma": lambda L, T: L.mvlgamma(T([2.5, 3.0, 1.7], grad=True), 3),
    "mvlgamma-int": lambda L, T: L.mvlgamma(T([2, 3], "int64"), 2),
    "mvlgamma-p0": lambda L, T: L.mvlgamma(T([2.5]), 0),
    "mvlgamma-method": lambda L, T: T([2.5, 3.0], grad=True).mvlgamma(p=2),
    "narrow_copy": lambda L, T: L.narrow_copy(T((3, 4), grad=True, layout="t"), -1, 1, 2),
    "narrow_copy-bad": lambda L, T: T((3, 4)).narrow_copy(1, 3, 2),
    "isreal": lambda L, T: (L.isreal(T((2, 3))), T((2,), "int64").isreal()),
    "unsafe_chunk": lambda L, T: L.unsafe_chunk(T((5, 2), grad=True), 3),
    "unsafe_split": lambda L, T: T((2, 5), grad=True).unsafe_split(2, -1),
    "unsafe_split_with_sizes": lambda L, T: L.unsafe_split_with_sizes(T((5,), grad=True), [2, 3]),
    "hardshrink-method": lambda L, T: T((2, 3), grad=True).hardshrink(0.3),
    "prelu-method": lambda L, T: T((2, 3), grad=True).prelu(T((3,), grad=True)),
    "reciprocal_": lambda L, T: T((2, 3), grad=True).add(1.0).reciprocal_(),
    "layout-predicates": lambda L, T: [getattr(T((2,)), n) for n in ("is_sparse", "is_quantized", "is_meta")],
}
for _k, _f in WIDER.items():
    _add(f"w.{_k}", _f)


# ---- torch.special, angle, i0, igamma, index_reduce (ad/special_functions.py): edge inputs, dtypes, errors
_begin("torch_special")
SPECIAL_UNARY = (
    "i0 i0e i1 i1e ndtr ndtri log_ndtr erfcx entr bessel_j0 bessel_y1 modified_bessel_k0 scaled_modified_bessel_k1 "
    "spherical_bessel_j0 airy_ai expit gammaln psi"
).split()
for _name in SPECIAL_UNARY:
    for _k, _mk in UNARY_INPUTS.items():
        _add(f"special.{_name}-{_k}", lambda L, T, n=_name, mk=_mk: getattr(L.special, n)(mk(T)))
for _k, _mk in UNARY_INPUTS.items():
    _add(f"angle-{_k}", lambda L, T, mk=_mk: L.angle(mk(T)))
    _add(f"i0-top-{_k}", lambda L, T, mk=_mk: L.i0(mk(T)))
for _name in ("xlog1py", "xlogy"):
    for _k, _mk in BINARY_INPUTS.items():
        _add(f"special.{_name}-{_k}", lambda L, T, n=_name, mk=_mk: getattr(L.special, n)(*mk(T)))
_Q = [[0.5, 1.0, 2.5], [0.1, 3.0, 0.7]]
TORCH_SPECIAL = {
    # zeta / igamma: differentiable in `other` only (a `grad` input leaf would make torch's backward raise)
    "special.zeta-bcast": lambda L, T: L.special.zeta(T([[2.0], [3.5]]), T(_Q, grad=True)),
    "special.zeta-scalar": lambda L, T: L.special.zeta(2.5, T(_Q, grad=True, layout="t")),
    "special.zeta-scalar-other": lambda L, T: L.special.zeta(T([2.0, 3.0]), 1.5),
    "special.zeta-f32": lambda L, T: L.special.zeta(T((2, 3), "float32") + 2.0, T((2, 3), "float32") + 1.0),
    "special.zeta-bad-shapes": lambda L, T: L.special.zeta(T((2, 3)), T((4,))),
    "igamma-bcast": lambda L, T: L.igamma(T([[0.5], [2.0]]), T(_Q, grad=True)),
    "igammac-0d": lambda L, T: L.igammac(T(1.5), T(_Q, grad=True, layout="t")),
    "igamma-edges": lambda L, T: L.igamma(T([0.0, -1.0, 2.0, 1.0]), T([1.0, 1.0, -1.0, 0.0], grad=True)),
    "igammac-edges": lambda L, T: L.igammac(T([0.0, -1.0, 2.0, 1.0]), T([1.0, 1.0, -1.0, 0.0], grad=True)),
    "special.gammainc": lambda L, T: L.special.gammainc(T([1.5, 2.0]), T([0.5, 4.0], grad=True)),
    "special.gammaincc-method": lambda L, T: T([1.5, 2.0]).igammac(T([0.5, 4.0], grad=True)),
    "igamma-scalar": lambda L, T: L.igamma(T([1.5]), 2.0),
    "igamma-empty": lambda L, T: L.igamma(T((0, 3)), T((3,), grad=True)),
    "special.xlog1py-edges": lambda L, T: L.special.xlog1py(
        T([0.0, 0.0, 0.0, 2.0, 0.0], grad=True), T([-1.0, -2.0, math.nan, -1.0, 0.5], grad=True)
    ),
    "special.multigammaln": lambda L, T: L.special.multigammaln(T([2.5, 3.0, 1.7], grad=True), 3),
    "special.softmax": lambda L, T: L.special.softmax(T((2, 3), grad=True), 1),
    "special.log_softmax-dtype": lambda L, T: L.special.log_softmax(T((2, 3), grad=True), 0, dtype=L.float32),
    "special.logsumexp": lambda L, T: L.special.logsumexp(T((2, 3), grad=True), (0, 1), keepdim=True),
    "special.polygamma": lambda L, T: L.special.polygamma(2, T([0.5, 1.5], grad=True)),
    "special.round": lambda L, T: L.special.round(T((2, 3), grad=True)),
    "special.logit-eps": lambda L, T: L.special.logit(T((2, 3), grad=True), eps=0.2),
    "special.i1-zero": lambda L, T: L.special.i1(T([0.0, -0.0, 1e-300], grad=True)),
    "special.i1e-zero": lambda L, T: L.special.i1e(T([0.0, 1e-300, -3.0], grad=True)),
    "special.entr-edges": lambda L, T: L.special.entr(T([0.0, -1.0, math.inf, math.nan], grad=True)),
    "special.ndtri-edges": lambda L, T: L.special.ndtri(T([0.0, 1.0, 0.5, 1.5], grad=True)),
    "special.bad-input": lambda L, T: L.special.i0e([0.5]),
    "special.airy_ai-kw": lambda L, T: L.special.airy_ai(x=T((3,), grad=True)),
    "special.chebyshev_t": lambda L, T: L.special.chebyshev_polynomial_t(T((2, 3), grad=True), 3),
    "special.chebyshev_u-bcast": lambda L, T: L.special.chebyshev_polynomial_u(T((2, 1)), T([0.0, 2.0, 9.0, 12.0])),
    "special.chebyshev_v-int-n": lambda L, T: L.special.chebyshev_polynomial_v(T((3,)), T([1, 4, 10], "int64")),
    "special.chebyshev_w-scalar-x": lambda L, T: L.special.chebyshev_polynomial_w(0.25, T([0.0, 5.0, 11.0])),
    "special.shifted_t-ends": lambda L, T: L.special.shifted_chebyshev_polynomial_t(T([0.0, 1.0, 0.5]), 7),
    "special.shifted_w-f32": lambda L, T: L.special.shifted_chebyshev_polynomial_w(T((2, 2), "float32"), 6),
    "special.hermite_h": lambda L, T: L.special.hermite_polynomial_h(T((2, 3)), T([[2.0], [5.0]])),
    "special.hermite_he-huge-n": lambda L, T: L.special.hermite_polynomial_he(T((3,)), 600),
    "special.laguerre_l": lambda L, T: L.special.laguerre_polynomial_l(T([0.0, 0.5, 3.0]), 4),
    "special.legendre_p-ends": lambda L, T: L.special.legendre_polynomial_p(T([-1.0, 1.0, 0.3]), T([3.0, 4.0, -1.0])),
    "special.polynomial-empty": lambda L, T: L.special.legendre_polynomial_p(T((0, 2)), 3),
    "special.polynomial-0d": lambda L, T: L.special.laguerre_polynomial_l(T(0.4), T(3.0)),
    "index_reduce-prod": lambda L, T: L.index_reduce(
        T((3, 2), grad=True), 0, T([0, 2, 0, 0], "int64"), T((4, 2), grad=True), "prod"
    ),
    "index_reduce-mean-noself": lambda L, T: T((2, 3), grad=True).index_reduce(
        1, T([2, 2, 0], "int64"), T((2, 3), grad=True, layout="t"), "mean", include_self=False
    ),
    "index_reduce-amax-ties": lambda L, T: T([0.5, 0.2], grad=True).index_reduce(
        0, T([1, 1, 0], "int64"), T([0.2, 0.2, 0.1], grad=True), "amax"
    ),
    "index_reduce-amin-0d": lambda L, T: T(0.5, grad=True).index_reduce(0, T([0, 0], "int64"), T([0.3, 0.7]), "amin"),
    "index_reduce-int-mean": lambda L, T: T((5,), "int64").index_reduce(
        0, T([0, 0, 4], "int64"), T((3,), "int64"), "mean"
    ),
    "index_reduce-empty-index": lambda L, T: T((2, 3), grad=True).index_reduce(
        0, T((0,), "int64"), T((0, 3), grad=True), "prod"
    ),
    "index_reduce-bad-reduce": lambda L, T: T((2, 3)).index_reduce(0, T([0], "int64"), T((1, 3)), "sum"),
    "index_reduce-oob": lambda L, T: T((2, 3)).index_reduce(0, T([2], "int64"), T((1, 3)), "prod"),
    "index_reduce-bad-source": lambda L, T: T((2, 3)).index_reduce(0, T([0], "int64"), T((1, 2)), "prod"),
    "index_reduce-amin-noself-tie": lambda L, T: T((2, 3), grad=True).index_reduce(
        1, T([0, 0], "int64"), T((2, 2), grad=True), "amin", include_self=False
    ),
    "index_reduce_": lambda L, T: (
        T((2, 3), grad=True)
        .mul(1.0)
        .index_reduce_(1, T([0, 0], "int64"), T((2, 2), grad=True) + 0.01, "amin", include_self=False)
    ),
}
for _k, _f in TORCH_SPECIAL.items():
    _add(_k, _f)


# ---- in-place ops on bad input: torch's error, and nothing written
_begin("inplace")


def _inplace_unchanged(call):
    """``call(L, T)`` returns ``(target, thunk)``; the thunk must raise and leave ``target`` as it was."""

    def fn(L, T):
        target, thunk = call(L, T)
        before = _np(target).copy()
        try:
            thunk()
        except Exception as e:  # noqa: BLE001
            after = _np(target)  # (torch itself may write part of the result before it raises: ad's is checked)
            if L is ad and not np.array_equal(before, after, equal_nan=True):
                raise AssertionError(f"{type(e).__name__} ({e}) after writing {after}") from e
            raise
        return target

    return fn


INPLACE_BAD = {
    "add_-bcast": lambda L, T: (x := T((2, 3)), lambda: x.add_(T((2, 2, 3)))),
    "add_-int-float": lambda L, T: (x := T((2, 3), "int64"), lambda: x.add_(T((2, 3)))),
    "mul_-int-float-scalar": lambda L, T: (x := T((2, 3), "int64"), lambda: x.mul_(1.5)),
    "div_-int": lambda L, T: (x := T((2, 3), "int64"), lambda: x.div_(T((2, 3), "int64"))),
    "sqrt_-int": lambda L, T: (x := T((2, 3), "int64"), lambda: x.sqrt_()),
    "clamp_-int-float": lambda L, T: (x := T((2, 3), "int64"), lambda: x.clamp_(0.5)),
    "copy_-bcast": lambda L, T: (x := T((2, 3)), lambda: x.copy_(T((4,)))),
    "masked_fill_-bcast": lambda L, T: (x := T((3,)), lambda: x.masked_fill_(T((2, 3), "bool"), 1.0)),
    "index_add_-oob": lambda L, T: (x := T((3, 2)), lambda: x.index_add_(0, T([0, 3], "int64"), T((2, 2)))),
    "index_copy_-oob": lambda L, T: (x := T((3, 2)), lambda: x.index_copy_(0, T([1, 5], "int64"), T((2, 2)))),
    "index_fill_-oob": lambda L, T: (x := T((3, 2)), lambda: x.index_fill_(0, T([1, 5], "int64"), 0.0)),
    "scatter_-oob": lambda L, T: (x := T((2, 3)), lambda: x.scatter_(1, T([[0, 3]], "int64"), T((1, 2)))),
    "scatter_add_-oob": lambda L, T: (x := T((2, 3)), lambda: x.scatter_add_(1, T([[0, 3]], "int64"), T((1, 2)))),
    "index_put_-oob": lambda L, T: (x := T((3,)), lambda: x.index_put_((T([0, 3], "int64"),), T((2,)))),
    "index_put_-acc-oob": lambda L, T: (x := T((3,)), lambda: x.index_put_((T([0, 3], "int64"),), T((2,)), True)),
    "setitem-oob": lambda L, T: (x := T((3,)), lambda: x.__setitem__(T([0, 3], "int64"), 1.0)),
    "setitem-bad-shape": lambda L, T: (x := T((2, 3)), lambda: x.__setitem__(slice(None), T((2, 2)))),
    "masked_scatter_-short": lambda L, T: (x := T((3,)), lambda: x.masked_scatter_(T([1, 1, 1], "bool"), T((2,)))),
    "fill_diagonal_-3d": lambda L, T: (x := T((2, 3, 4)), lambda: x.fill_diagonal_(1.0)),
    "random_-bad": lambda L, T: (x := T((3,)), lambda: x.random_(3, 3)),
    "uniform_-bad": lambda L, T: (x := T((3,)), lambda: x.uniform_(1.0, 0.0)),
    "lerp_-bcast": lambda L, T: (x := T((3,)), lambda: x.lerp_(T((2, 3)), 0.5)),
    "pow_-int-neg": lambda L, T: (x := T((3,), "int64"), lambda: x.pow_(-1)),
    "exp_-bool": lambda L, T: (x := T((3,), "bool"), lambda: x.exp_()),
    "t_-3d": lambda L, T: (x := T((2, 3, 2)), lambda: x.t_()),
    "iadd-int-float": lambda L, T: (x := T((2, 3), "int64"), lambda: x.__iadd__(1.5)),
    "sub_-bool": lambda L, T: (x := T((3,), "bool"), lambda: x.sub_(T((3,), "bool"))),
    "remainder_-int-zero": lambda L, T: (x := T((3,), "int64"), lambda: x.remainder_(T([1, 0, 1], "int64"))),
    "fmod_-int-zero": lambda L, T: (x := T((3,), "int64"), lambda: x.fmod_(0)),
    "floor_divide_-int-zero": lambda L, T: (x := T((3,), "int64"), lambda: x.floor_divide_(T([1, 0, 1], "int64"))),
    "div_-trunc-int-zero": lambda L, T: (x := T((3,), "int64"), lambda: x.div_(0, rounding_mode="trunc")),
    "atan2_-bcast": lambda L, T: (x := T((3,)), lambda: x.atan2_(T((2, 3)))),
    "clamp_-bool": lambda L, T: (x := T((3,), "bool"), lambda: x.clamp_(0.5)),
    "abs_-bool": lambda L, T: (x := T((3,), "bool"), lambda: x.abs_()),
    "neg_-bool": lambda L, T: (x := T((3,), "bool"), lambda: x.neg_()),
    "normal_-int": lambda L, T: (x := T((3,), "int64"), lambda: x.normal_()),
    "exponential_-int": lambda L, T: (x := T((3,), "int64"), lambda: x.exponential_()),
    "squeeze_-bad": lambda L, T: (x := T((2, 3)), lambda: x.squeeze_(3)),
}


def _recorded(call):
    """``call`` with its float tensors made part of a graph (``leaf * 1.0``): the failed in-place op must leave
    the graph usable (the sweep differentiates the target afterwards)."""

    def fn(L, T):
        def maker(spec, dtype="float64", grad=False, layout=None):
            if dtype.startswith("float"):
                return T(spec, dtype, grad=True, layout=layout) * 1.0
            return T(spec, dtype, grad, layout)

        return call(L, maker)

    return fn


for _k, _f in INPLACE_BAD.items():
    _add(f"inplace.{_k}", _inplace_unchanged(_f))
    _add(f"inplace.recorded.{_k}", _inplace_unchanged(_recorded(_f)))


# ---- session 15's surface (tests/parity_sweep_session15.py): sampling, pooling, sequence losses, interpolate,
# the new nn modules, nn.utils and top-level names
for _name, _cases in SECTIONS15.items():
    _begin(_name)
    for _k, _f in _cases.items():
        _add(_k, _f)


# ---------------------------------------------------------------------------------------------------------
# deliberate differences: ad's answer differs from torch's on purpose (README, "Deliberate differences")

_NUMPY_PROMOTION = "numpy's promotion: an integer operand of a float op computes in float64 (README)"
DELIBERATE = {
    "index_reduce-amin-noself-tie": "include_self=False: the left-out self value that ties with the result takes no "
    "share of the gradient (torch 2.13 counts it: its gradients sum to less than the cotangent)",
    **{
        f"{name}-{inputs}": _NUMPY_PROMOTION + "; torch: NotImplementedError for integers"
        for name in ("hypot", "logaddexp", "logaddexp2")
        for inputs in ("i64-i64", "bool-i64")
    },
    "logcumsumexp-int64": _NUMPY_PROMOTION + "; torch: NotImplementedError for integers",
    "matmul-mixed": _NUMPY_PROMOTION + " (torch requires one dtype)",
    "promote_types": "promote_types/result_type report ad's own (numpy's) promotion (README)",
    "result_type-t": "promote_types/result_type report ad's own (numpy's) promotion (README)",
    "prod-tuple": "ad's prod accepts a tuple of dims, as sum does (torch's takes one int)",
    "prod-dup-dim": "ad's prod accepts a tuple of dims (and rejects a repeated one: torch raises TypeError)",
    "ldexp-f64-2": "ldexp accepts a number for the exponent (torch requires a tensor)",
    "ldexp-f32-2.5": "ldexp accepts a number for the exponent (torch requires a tensor)",
    "ldexp-i64-2.5": "ldexp accepts a number for the exponent (torch requires a tensor)",
    "unravel_index-bad": "an index out of range raises (torch 2.13 wraps it silently)",
    **{
        f"take_along_dim-bad-dim{d}": "an index out of range raises (torch 2.13 has no bounds check there: it reads "
        "past the line)"
        for d in (0, 1)
    },
    "block_diag-0d-1d": "torch 2.13's gradient of a block after a (0,) block reads the empty block's row (its "
    "values are right; ad's gradient matches them)",
    "clamp-mixed-bounds": "a tensor and a number bound are accepted in either order (torch 2.13 raises TypeError "
    "for (tensor, number) and computes for (number, tensor))",
    "F.soft_margin_loss-large": "soft_margin_loss is computed without overflow (torch 2.13's log1p(exp(800)) is inf)",
    "F.bce_with_logits-int-target": "an integer target is read as float (torch 2.13 fails casting inside its kernel)",
    **DELIBERATE15,
}

# ad's result is float64 by numpy's promotion where torch's is float32 (an integer tensor with a float32 one, or
# float32 with a 0-d float64 tensor): these compare the values at float32's precision
PROMOTED = {
    f"{name}-{inputs}"
    for name in (*BINARY, "special.xlog1py", "special.xlogy")
    for inputs in ("i64-f32", "i64-0d-f32", "f32-0d-f64")
} | {
    "cat-dtypes",
    "where-dtypes",
    "block_diag-dtypes",
}

# ---------------------------------------------------------------------------------------------------------


def _differences(cases, check, deliberate, table):
    """Run ``check(case)`` for each case: the unexpected differences from torch, and the deliberate ones
    (listed in ``table``) that agree with torch now."""
    failures = []
    for case in cases:
        try:
            check(case)
        except AssertionError as e:
            if case not in deliberate:
                failures.append(f"{case}: {' '.join(str(e).split())[:300]}")
        else:
            if case in deliberate:
                failures.append(f"{case}: agrees with torch now; delete its {table} entry")
    return failures


@pytest.mark.parametrize("section", list(SECTIONS))
def test_parity(section):
    check = lambda case: _check(CASES[case], promoted=case in PROMOTED)
    failures = _differences(SECTIONS[section], check, DELIBERATE, "DELIBERATE")
    assert not failures, f"{len(failures)} differences from torch:\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------
# forward mode: the same cases with their float64 ``grad`` leaves made dual (a fixed tangent each); the float64
# results' tangents must match torch's (torch's None or zero tangent: ad's None or zeros)

FORWARD_DELIBERATE = {
    "fmax-bcast": "at a tie torch's tangent comes from other while its gradient goes to input; ad's follows input",
    "atan2-zeros": "atan2's tangent at (0, 0) is 0, as the gradient (torch's tangent there is NaN)",
    "logit-signed-zeros": "logit's tangent at -0.0 is +inf, as the gradient (torch's forward rule gives -inf)",
    "var-empty": "the tangent of the NaN variance of an empty line is NaN (torch's: 0)",
    "var-empty-dim0": "the tangent of the NaN variance of an empty line is NaN (torch's: 0)",
    "var-empty-all": "the tangent of the NaN variance of an empty line is NaN (torch's: 0)",
    "w.nll_loss-weight-all-ignored": "the NaN loss of all-ignored targets has a zero tangent, as its gradient",
    "F.cross_entropy-all-ignored": "the NaN loss of all-ignored targets has a zero tangent, as its gradient",
    **{
        case: "clamp's tangent follows its gradient (torch's forward rule differs from its backward at ties, "
        "at min == max and at NaN: it takes min's tangent where the input is not above min)"
        for case in (
            "clamp-tensor-min-eq-max",
            "clamp-tensor-nan-bounds",
            "clamp-tensor-min-ties",
            "clamp-tensor-max-ties",
            "clamp-0d-bounds",
        )
    },
    "F.embedding-padding": "padding_idx rows get no tangent, as they get no gradient (torch's forward mode "
    "carries the weight's tangent there)",
    **FORWARD_DELIBERATE15,
}
FORWARD_SECTIONS = (
    "unary",
    "binary",
    "reductions",
    "special",
    "shapes",
    "indexing",
    "surface",
    "nn_functional",
    "wider",
    "torch_special",
    *SECTIONS15,
)


class _DualMaker(_Maker):
    def __init__(self, L, fw):
        super().__init__(L)
        self.fw = fw

    def __call__(self, spec, dtype="float64", grad=False, layout=None):
        t = super().__call__(spec, dtype, False, layout)
        if grad and dtype == "float64":
            self.leaves.append(t)
            tangent = np.sin(np.arange(t.numel()) * 0.9 + len(self.leaves)).reshape(tuple(t.shape))
            t = self.fw.make_dual(t, self.L.tensor(tangent))
        return t


class _InfiniteDualMaker(_DualMaker):
    """The tangents of ``_DualMaker`` with an infinite first element (a tangent after a pole: sqrt at 0)."""

    def __call__(self, spec, dtype="float64", grad=False, layout=None):
        t = super().__call__(spec, dtype, grad, layout)
        tangent = self.fw.unpack_dual(t).tangent
        if tangent is not None and tangent.numel():
            values = _np(tangent).copy()
            values.flat[0] = math.inf
            t = self.fw.make_dual(self.fw.unpack_dual(t).primal, self.L.tensor(values))
        return t


def _tangents(L, fw, fn, maker=_DualMaker):
    with fw.dual_level():
        T = maker(L, fw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = fn(L, T)
            except Exception as e:  # noqa: BLE001 - reverse mode's sweep compares the errors
                return e
        return [fw.unpack_dual(o).tangent for o in _outputs(out) if _dtype_name(o.dtype) == "float64"]


def _check_forward(fn, maker=_DualMaker):
    from torch.autograd import forward_ad as tfw

    afw = ad.autograd.forward_ad
    torch_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        t_tangents = _tangents(torch, tfw, fn, maker)
    finally:
        torch.set_default_dtype(torch_default)
    if isinstance(t_tangents, Exception):
        return
    a_tangents = _tangents(ad, afw, fn, maker)
    assert not isinstance(a_tangents, Exception), f"ad raises {type(a_tangents).__name__}: {a_tangents}"
    assert len(a_tangents) == len(t_tangents), f"{len(a_tangents)} float64 results, torch {len(t_tangents)}"
    for i, (at, tt) in enumerate(zip(a_tangents, t_tangents)):
        if tt is None or not np.any(_np(tt)):
            assert at is None or np.allclose(_np(at), 0.0, atol=1e-12), f"tangent[{i}]: torch none, ad {at}"
        else:
            assert at is not None, f"tangent[{i}]: ad None, torch {tt}"
            _compare(at, tt, f"tangent[{i}]")


@pytest.mark.parametrize("section", FORWARD_SECTIONS)
def test_forward_parity(section):
    cases = [case for case in SECTIONS[section] if case not in PROMOTED and case not in DELIBERATE]
    check = lambda case: _check_forward(CASES[case])
    failures = _differences(cases, check, FORWARD_DELIBERATE, "FORWARD_DELIBERATE")
    assert not failures, f"{len(failures)} forward-mode differences from torch:\n" + "\n".join(failures)


# An infinite tangent element reaches only the outputs that depend on it (a linear op's constant matrix would
# spread it as 0 * inf = NaN: average pooling's matmuls gather instead when a tangent is not finite)
INFINITE_TANGENT_CASES = (
    "F.avg_pool1d-pad",
    "F.avg_pool2d-divisor",
    "F.adaptive_avg_pool1d",
    "F.adaptive_avg_pool2d-none",
    "interpolate-area",
    "interpolate-area-3d",
    "lp_pool1d",
    "LPPool2d",
    "F.local_response_norm",
    "exp-t",
    "sum-tuple",
    "matmul-bcast",
    "cumsum-neg",
)


def test_forward_parity_infinite_tangent():
    check = lambda case: _check_forward(CASES[case], _InfiniteDualMaker)
    failures = _differences(INFINITE_TANGENT_CASES, check, {}, "")
    assert not failures, f"{len(failures)} forward-mode differences from torch:\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------
# second order: the same cases' gradients (``create_graph=True``) differentiated again along a fixed weight of
# each, against torch's double backward. Where torch raises (no second derivative) nothing is compared.

SECOND_DELIBERATE = {
    **{
        f"logit-{k}": "logit's second derivative is NaN outside [0, 1], where its first is (torch's 0 is the "
        "derivative of its NaN mask)"
        for k in ("t", "method-t", "s")
    },
    **{
        case: "the second derivative of the NaN variance of a single value is NaN (torch's: 0)"
        for case in ("var-0d", "var-0d-dim0", "var-method-0d-dim0", "var-0d-dim-1-keep", "var_mean-0d")
    },
    "sinc-zero": "sinc''(0) is -pi^2 / 3 (torch 2.13: NaN)",
    "sinc-tiny": "sinc''(0) is -pi^2 / 3 (torch 2.13: NaN at 0 and at 1e-300)",
    "logit-eps": "with eps, logit is constant outside [eps, 1 - eps]: its second derivative is 0 there, also at 0 "
    "and 1 (torch: NaN)",
    "pow-zero-base": "0 ** y's second derivatives are their limits (0 for y = 0 and along y; torch: NaN)",
    "rpow-zero": "0 ** y is 0 for y > 0: its second derivative is 0 (torch: NaN)",
    **{
        case: "at a zero vector the norm's masked gradient (0) is differentiated as such: 0 (torch: NaN)"
        for case in (
            "norm-zero",
            "norm-zero-all",
            "dist-zero",
            "renorm-zero-rows",
            "F.normalize-zero",
            "F.cosine_similarity-zero",
        )
    },
    "atan2-zeros": "atan2's gradient at (0, 0) is 0 (its convention), differentiated as its formula (torch: NaN)",
}
SECOND_SECTIONS = ("unary", "binary", "special", "linalg", "surface", "nn_functional", "torch_special")


def _second_derivatives(L, fn):
    """The gradient of ``<grad(weighted sum), v>`` at the ``grad`` leaves: None when the case has no such leaf or
    its forward raises (reverse mode's sweep compares those), the exception when a backward raises."""
    T = _Maker(L)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            total = _weighted_sum(L, _outputs(fn(L, T)))
        except Exception:  # noqa: BLE001 - first order's sweep compares those
            return None
        if total is None or not T.leaves:
            return None
        try:
            gs = L.autograd.grad(total, T.leaves, create_graph=True, allow_unused=True)
        except Exception as e:  # noqa: BLE001 - compared below
            return e
        acc = None
        for g in gs:
            if g is not None and g.requires_grad:
                v = L.tensor(np.sin(np.arange(g.numel()) * 1.3 + 0.2).reshape(tuple(g.shape)))
                acc = (g * v).sum() if acc is None else acc + (g * v).sum()
        if acc is None:
            return [None] * len(T.leaves)
        try:
            return L.autograd.grad(acc, T.leaves, allow_unused=True)
        except Exception as e:  # noqa: BLE001 - compared below
            return e


def _check_second(fn):
    torch_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theirs = _second_derivatives(torch, fn)
    finally:
        torch.set_default_dtype(torch_default)
    if theirs is None or isinstance(theirs, Exception):
        return
    ours = _second_derivatives(ad, fn)
    assert not isinstance(ours, Exception), f"ad's backward (create_graph) raises {type(ours).__name__}: {ours}"
    assert ours is not None, "torch has a second derivative, ad's gradient is not differentiable"
    for i, (a, t) in enumerate(zip(ours, theirs)):
        if t is None or np.allclose(_np(t), 0.0, atol=1e-12):  # (rounding residue of a zero: 2e-16)
            assert a is None or np.allclose(_np(a), 0.0, atol=1e-12), f"second[{i}]: torch none, ad {a}"
        else:
            assert a is not None, f"second[{i}]: ad None, torch {t}"
            _compare(a, t, f"second[{i}]")


@pytest.mark.parametrize("section", SECOND_SECTIONS)
def test_second_order_parity(section):
    cases = [case for case in SECTIONS[section] if case not in PROMOTED and case not in DELIBERATE]
    failures = _differences(cases, lambda case: _check_second(CASES[case]), SECOND_DELIBERATE, "SECOND_DELIBERATE")
    assert not failures, f"{len(failures)} second-order differences from torch:\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------
# forward over reverse: the tangents of the gradients (backward inside a dual level, without create_graph: the
# compiled tangent sweep, or rules run on dual tensors) against torch's, for the special points

FWD_OVER_REV_DELIBERATE = {
    "cumprod-zeros": "the tangent of cumprod's gradient at zeros is the exact one (torch's gradient there is "
    "masked: its tangent misses how a later zero's gradient moves with earlier entries)",
    "atan2-zeros": "at (0, 0), where atan2 is not continuous, its formula's NaN (torch: 0)",
    "xlogy-zero": "at x = y = 0 the second partial -x / y^2 is 0 / 0 (torch masks it to 0)",
    "sinc-zero": "sinc''(0) is -pi^2 / 3 (torch: 0)",
    "sinc-tiny": "sinc''(0) is -pi^2 / 3 (torch: 0)",
}


class _DualLeafMaker(_Maker):
    """Leaves that require grad, used as duals (a fixed tangent each): backward runs on the dual values."""

    def __init__(self, L, fw):
        super().__init__(L)
        self.fw = fw

    def __call__(self, spec, dtype="float64", grad=False, layout=None):
        t = super().__call__(spec, dtype, grad, layout)
        if grad and dtype == "float64":
            tangent = np.cos(np.arange(t.numel()) * 0.7 + len(self.leaves)).reshape(tuple(t.shape))
            t = self.fw.make_dual(t, self.L.tensor(tangent))
        return t


def _gradient_tangents(L, fw, fn):
    with fw.dual_level():
        T = _DualLeafMaker(L, fw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                total = _weighted_sum(L, _outputs(fn(L, T)))
            except Exception:  # noqa: BLE001 - reverse mode's sweep compares those
                return None
            if total is None or not T.leaves:
                return None
            try:
                gs = L.autograd.grad(total, T.leaves, allow_unused=True)
            except Exception as e:  # noqa: BLE001 - compared below
                return e
        return [None if g is None else fw.unpack_dual(g).tangent for g in gs]


def _check_forward_over_reverse(fn):
    from torch.autograd import forward_ad as tfw

    torch_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theirs = _gradient_tangents(torch, tfw, fn)
    finally:
        torch.set_default_dtype(torch_default)
    if theirs is None or isinstance(theirs, Exception):
        return
    ours = _gradient_tangents(ad, ad.autograd.forward_ad, fn)
    assert not isinstance(ours, Exception), f"ad's backward raises {type(ours).__name__}: {ours}"
    for i, (a, t) in enumerate(zip(ours, theirs)):
        if t is None or np.allclose(_np(t), 0.0, atol=1e-12):
            assert a is None or np.allclose(_np(a), 0.0, atol=1e-12), f"tangent[{i}]: torch none, ad {a}"
        else:
            assert a is not None, f"tangent[{i}]: ad None, torch {t}"
            _compare(a, t, f"tangent[{i}]")


def test_forward_over_reverse_parity():
    cases = [case for case in SECTIONS["special"] if case not in PROMOTED and case not in DELIBERATE]
    check = lambda case: _check_forward_over_reverse(CASES[case])
    failures = _differences(cases, check, FWD_OVER_REV_DELIBERATE, "FWD_OVER_REV_DELIBERATE")
    assert not failures, f"{len(failures)} forward-over-reverse differences from torch:\n" + "\n".join(failures)


def test_deliberate_entries_are_cases():
    assert set(FWD_OVER_REV_DELIBERATE) <= set(CASES)
    assert set(INFINITE_TANGENT_CASES) <= set(CASES)
    assert set(SECOND_DELIBERATE) <= set(CASES)
    assert set(FORWARD_DELIBERATE) <= set(CASES)
    assert set(DELIBERATE) <= set(CASES)
    assert PROMOTED <= set(CASES)
