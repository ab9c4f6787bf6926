"""``ad.testing``: ``assert_close`` and ``make_tensor``, as ``torch.testing``.

``assert_close`` walks its two inputs as torch's ``originate_pairs`` does: sequences (not strings) item by item,
mappings key by key (the keys must match), and compares the leaves as a pair: two tensors (or two numpy arrays),
two Python/numpy numbers, or two ``None``. A tensor pair checks the shape, then (by flag) the device, the dtype and
the strides, and then the values with ``|actual - expected| <= atol + rtol * |expected|`` at the tolerances of
torch's table (the loosest of the two dtypes'). Failures raise ``AssertionError`` with torch's message: the count
of mismatched elements and the greatest absolute and relative differences with their indices, and the path of
the failing item inside the containers.
"""

import cmath
import collections.abc
import math
import warnings

import numpy as np

from . import creation
from .dtype_info import finfo, iinfo
from .tensor import Tensor

__all__ = ["assert_allclose", "assert_close", "make_tensor"]

# torch's {dtype: (rtol, atol)}; every other dtype (integers, bool) compares for equality
_DTYPE_PRECISIONS = {
    np.dtype(np.float16): (0.001, 1e-5),
    np.dtype(np.float32): (1.3e-6, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-7),
    np.dtype(np.complex64): (1.3e-6, 1e-5),
    np.dtype(np.complex128): (1e-7, 1e-7),
}
# the dtype torch gives each Python number type (its tolerances are that dtype's)
_NUMBER_DTYPES = {
    bool: np.dtype(np.bool_),
    int: np.dtype(np.int64),
    float: np.dtype(np.float64),
    complex: np.dtype(np.complex128),
}


class _Mismatch(Exception):
    """A failed comparison: the exception class, torch's message, and the path of the item in the containers."""

    def __init__(self, kind, msg, path=()):
        super().__init__(msg)
        self.kind = kind
        self.msg = msg
        self.path = path

    def to_error(self, msg=None):
        if isinstance(msg, str):
            return self.kind(msg)
        text = self.msg
        if self.path:
            text += f"\n\nThe failure occurred for item {''.join(str([item]) for item in self.path)}"
        return self.kind(msg(text) if callable(msg) else text)


def _tolerances(*dtypes, rtol, atol, path):
    if (rtol is None) ^ (atol is None):
        raise _Mismatch(
            ValueError,
            f"Both 'rtol' and 'atol' must be either specified or omitted, "
            f"but got no {'rtol' if rtol is None else 'atol'}.",
            path,
        )
    if rtol is not None:
        return rtol, atol
    pairs = [_DTYPE_PRECISIONS.get(np.dtype(d), (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _mismatch_msg(default, identifier, extra, abs_diff, abs_idx, atol, rel_diff, rel_idx, rtol):
    """torch's ``_make_mismatch_msg``: the header, the extra line, then the two greatest differences."""
    equality = rtol == 0 and atol == 0

    def diff_msg(kind, diff, idx, tol):
        if idx is None:
            msg = f"{kind.title()} difference: {diff}"
        else:
            msg = f"Greatest {kind} difference: {diff} at index {idx}"
        return msg + ("" if equality else f" (up to {tol} allowed)") + "\n"

    if identifier is None:
        identifier = default
    elif callable(identifier):
        identifier = identifier(default)
    msg = f"{identifier} are not {'equal' if equality else 'close'}!\n\n"
    if extra:
        msg += f"{extra.strip()}\n"
    msg += diff_msg("absolute", abs_diff, abs_idx, atol)
    msg += diff_msg("relative", rel_diff, rel_idx, rtol)
    return msg.strip()


def _scalar_msg(actual, expected, rtol, atol):
    abs_diff = abs(actual - expected)
    rel_diff = float("inf") if expected == 0 else abs_diff / abs(expected)
    return _mismatch_msg("Scalars", None, f"Expected {expected} but got {actual}.", abs_diff, None, atol, rel_diff,
                         None, rtol)


def _tensor_msg(actual, expected, matches, rtol, atol):
    total = matches.size
    mismatches = total - int(matches.sum())
    extra = f"Mismatched elements: {mismatches} / {total} ({mismatches / total:.1%})"
    a, e = actual.ravel(), expected.ravel()
    if a.dtype.kind not in "fc":  # torch: integers and bools are differenced in int64
        a, e = a.astype(np.int64), e.astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        abs_diff = np.abs(a - e)
        abs_diff[matches.ravel()] = 0
        rel_diff = abs_diff / np.abs(e)
    rel_diff[matches.ravel()] = 0
    abs_at, rel_at = _argmax_nan_first(abs_diff), _argmax_nan_first(rel_diff)
    return _mismatch_msg(
        "Tensor-likes", None, extra,
        abs_diff[abs_at].item(), tuple(int(i) for i in np.unravel_index(abs_at, matches.shape)), atol,
        rel_diff[rel_at].item(), tuple(int(i) for i in np.unravel_index(rel_at, matches.shape)), rtol,
    )


def _argmax_nan_first(values):
    """``torch.max(values, 0)``'s index: a NaN is the greatest value."""
    nan = np.isnan(values) if values.dtype.kind in "fc" else None
    if nan is not None and nan.any():
        return int(np.argmax(nan))
    return int(np.argmax(values))


def _is_number(x):
    return isinstance(x, (bool, int, float, complex, np.number)) and not isinstance(x, Tensor)


def _compare_numbers(actual, expected, path, rtol, atol, equal_nan, check_dtype):
    a = actual.item() if isinstance(actual, np.number) else actual
    e = expected.item() if isinstance(expected, np.number) else expected
    rtol, atol = _tolerances(_NUMBER_DTYPES[type(a)], _NUMBER_DTYPES[type(e)], rtol=rtol, atol=atol, path=path)
    if check_dtype and type(a) is not type(e):
        raise _Mismatch(AssertionError, f"The (d)types do not match: {type(a)} != {type(e)}.", path)
    if a == e:
        return
    if equal_nan and cmath.isnan(a) and cmath.isnan(e):
        return
    abs_diff = abs(a - e)
    if cmath.isfinite(abs_diff) and abs_diff <= atol + rtol * abs(e):
        return
    raise _Mismatch(AssertionError, _scalar_msg(a, e, rtol, atol), path)


def _describe(value):
    """How the attribute-mismatch message prints a shape, dtype or device of ad."""
    if isinstance(value, np.dtype):
        return f"ad.{value.name}"
    if isinstance(value, tuple):
        return f"ad.Size({list(value)})"
    return str(value)


def _compare_tensors(actual, expected, path, rtol, atol, equal_nan, check_device, check_dtype, check_stride):
    def attribute(name, a, e):
        raise _Mismatch(
            AssertionError, f"The values for attribute '{name}' do not match: {_describe(a)} != {_describe(e)}.", path
        )

    if tuple(actual.shape) != tuple(expected.shape):
        attribute("shape", tuple(actual.shape), tuple(expected.shape))
    if check_stride and isinstance(actual, Tensor) and tuple(actual.stride()) != tuple(expected.stride()):
        attribute("stride()", tuple(actual.stride()), tuple(expected.stride()))
    if check_stride and isinstance(actual, np.ndarray):
        a_strides = tuple(s // actual.itemsize for s in actual.strides)
        e_strides = tuple(s // expected.itemsize for s in expected.strides)
        if a_strides != e_strides:
            attribute("stride()", a_strides, e_strides)
    if check_device and isinstance(actual, Tensor) and actual.device != expected.device:
        attribute("device", actual.device, expected.device)
    if check_dtype and actual.dtype != expected.dtype:
        attribute("dtype", actual.dtype, expected.dtype)
    rtol, atol = _tolerances(actual.dtype, expected.dtype, rtol=rtol, atol=atol, path=path)
    a = _host(actual)
    e = _host(expected)
    if a.dtype != e.dtype:
        common = np.promote_types(a.dtype, e.dtype)
        a, e = a.astype(common), e.astype(common)
    if a.dtype.kind in "fc":
        matches = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        matches = a == e  # torch.isclose of integers and bools with zero tolerances
    matches = np.asarray(matches)
    if matches.all():
        return
    if a.ndim == 0:
        raise _Mismatch(AssertionError, _scalar_msg(a.item(), e.item(), rtol, atol), path)
    raise _Mismatch(AssertionError, _tensor_msg(a, e, matches, rtol, atol), path)


def _host(x):
    if isinstance(x, Tensor):
        return np.asarray(x.detach().cpu().numpy())
    return np.asarray(x)


def _compare(actual, expected, path, options):
    seq, mapping = collections.abc.Sequence, collections.abc.Mapping
    if isinstance(actual, seq) and not isinstance(actual, str) and isinstance(expected, seq) and not isinstance(
        expected, str
    ):
        if len(actual) != len(expected):
            raise _Mismatch(
                AssertionError, f"The length of the sequences mismatch: {len(actual)} != {len(expected)}", path
            )
        for i in range(len(actual)):
            _compare(actual[i], expected[i], (*path, i), options)
        return
    if isinstance(actual, mapping) and isinstance(expected, mapping):
        a_keys, e_keys = set(actual.keys()), set(expected.keys())
        if a_keys != e_keys:
            raise _Mismatch(
                AssertionError,
                "The keys of the mappings do not match:\n"
                f"Missing keys in the actual mapping: {sorted(e_keys - a_keys)}\n"
                f"Additional keys in the actual mapping: {sorted(a_keys - e_keys)}",
                path,
            )
        keys = a_keys
        try:
            keys = sorted(keys)
        except TypeError:
            pass
        for key in keys:
            _compare(actual[key], expected[key], (*path, key), options)
        return
    if actual is None or expected is None:
        if actual is None and expected is None:
            return
        raise _Mismatch(AssertionError, f"None mismatch: {actual} is not {expected}", path)
    tensor_pair = (isinstance(actual, Tensor) and isinstance(expected, Tensor)) or (
        isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray)
    )
    if tensor_pair:
        if not options["allow_subclasses"] and type(actual) is not type(expected):
            raise _Mismatch(
                TypeError,
                f"Except for Python scalars, type equality is required if allow_subclasses=False, "
                f"but got {type(actual)} and {type(expected)} instead.",
                path,
            )
        _compare_tensors(actual, expected, path, options["rtol"], options["atol"], options["equal_nan"],
                         options["check_device"], options["check_dtype"], options["check_stride"])
        return
    if _is_number(actual) and _is_number(expected):
        _compare_numbers(actual, expected, path, options["rtol"], options["atol"], options["equal_nan"],
                         options["check_dtype"])
        return
    raise _Mismatch(
        TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.", path
    )


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None):
    """``torch.testing.assert_close``: assert that ``actual`` and ``expected`` are close.

    Leaves are compared as ``|actual - expected| <= atol + rtol * |expected|``; ``inf`` only matches itself and NaN
    matches NaN only with ``equal_nan``. Omitted tolerances come from the dtypes (float16: 1e-3/1e-5, float32:
    1.3e-6/1e-5, float64: 1e-7/1e-7, integers and bool: equality); ``rtol`` and ``atol`` go together. Sequences
    and mappings are compared item by item.

    Args:
        actual, expected: tensors, numpy arrays, numbers, ``None``, or sequences / mappings of them.
        allow_subclasses (bool): accept tensor-likes of different (sub)types.
        rtol, atol (float, optional): the tolerances (both or neither).
        equal_nan (bool): NaN equals NaN.
        check_device, check_dtype (bool): require the same device / dtype (else compare on the host in the
            promoted dtype). ``check_layout`` is accepted (ad has one layout).
        check_stride (bool): require the same strides.
        msg (str or callable, optional): replaces the message, or maps torch's generated message to the raised one.

    Raises:
        AssertionError: the inputs are not close (torch's message), or their shapes / dtypes / devices differ.
        TypeError: no comparison handles the two inputs (a tensor against a number, strings, ...).
        ValueError: only one of ``rtol`` and ``atol`` was given.

    Example:
        >>> ad.testing.assert_close(ad.tensor([1.0, 2.0]), ad.tensor([1.0, 2.0 + 1e-9]))
    """
    __tracebackhide__ = True
    options = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                   check_device=check_device, check_dtype=check_dtype, check_stride=check_stride)
    try:
        _compare(actual, expected, (), options)
    except _Mismatch as failure:
        raise failure.to_error(msg) from None


# torch's looser tolerances of the deprecated assert_allclose
_ALLCLOSE_PRECISIONS = {np.dtype(np.float16): (1e-3, 1e-3), np.dtype(np.float32): (1e-4, 1e-5),
                        np.dtype(np.float64): (1e-5, 1e-8)}


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg=""):
    """``torch.testing.assert_allclose`` (deprecated; warns as torch): ``assert_close`` with looser default
    tolerances (float32: 1e-4/1e-5, float64: 1e-5/1e-8), NaN equal to NaN and no dtype check; numbers and lists
    become tensors first."""
    warnings.warn(
        "`torch.testing.assert_allclose()` is deprecated since 1.12 and will be removed in a future release. "
        "Please use `torch.testing.assert_close()` instead. You can find detailed upgrade instructions in "
        "https://github.com/pytorch/pytorch/issues/61844.",
        FutureWarning,
        stacklevel=2,
    )
    if not isinstance(actual, Tensor):
        actual = creation.tensor(actual)
    if not isinstance(expected, Tensor):
        expected = creation.tensor(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        pairs = [_ALLCLOSE_PRECISIONS.get(np.dtype(t.dtype), (0.0, 0.0)) for t in (actual, expected)]
        rtol, atol = max(p[0] for p in pairs), max(p[1] for p in pairs)
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=True, check_dtype=False,
                 check_stride=False, msg=msg or None)


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False, memory_format=None):
    """``torch.testing.make_tensor``: a tensor of ``shape`` with values drawn uniformly from ``[low, high)``
    (ad's generator: ``ad.manual_seed`` makes it reproducible).

    Defaults: bool ``[0, 2)``, unsigned integers ``[0, 10)``, signed integers ``[-9, 10)``, floats ``[-9, 9)``;
    limits outside the dtype's finite range are clamped to it, and integer limits rounded up.

    Args:
        *shape: the sizes, or one sequence of them.
        dtype, device: required, as in torch.
        low, high (number, optional): the interval.
        requires_grad (bool): for floating dtypes.
        noncontiguous (bool): return a non-contiguous view (every second element of a wider tensor) when the
            tensor has more than one element.
        exclude_zero (bool): replace zeros with one (integers, bool) or the dtype's ``finfo.tiny`` (floats).
        memory_format: accepted as torch's; mutually exclusive with ``noncontiguous``.

    Raises:
        ValueError: ``requires_grad`` for an integer or bool dtype, ``low >= high``, NaN limits, an interval
            outside the dtype's range, or ``noncontiguous`` with ``memory_format`` (torch's messages).
        TypeError: a dtype ad cannot hold.

    Example:
        >>> ad.testing.make_tensor(2, 3, dtype=ad.float32, device="cpu", low=-1, high=1).shape
        (2, 3)
    """
    dt = np.dtype(dtype)
    name = f"torch.{dt.name}" if dt.kind in "biuf" else str(dtype)
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(int(s) for s in shape)
    if noncontiguous and memory_format is not None:
        raise ValueError(
            "The parameters `noncontiguous` and `memory_format` are mutually exclusive, "
            f"but got noncontiguous={noncontiguous} and memory_format={memory_format}"
        )
    if requires_grad and dt.kind in "biu":
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, but got dtype={name}")
    noncontiguous = noncontiguous and math.prod(shape) > 1
    if noncontiguous:
        shape = (*shape[:-1], 2 * shape[-1])

    def limits(lowest, highest, default_low, default_high):
        lo = default_low if low is None else low
        hi = default_high if high is None else high
        if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
            raise ValueError(f"`low` and `high` cannot be NaN, but got low={lo} and high={hi}")
        if lo == hi and dt.kind == "f":
            warnings.warn(
                "Passing `low==high` to `torch.testing.make_tensor` for floating or complex types is deprecated "
                "since 2.1 and will be removed in 2.3. Use `torch.full(...)` instead.",
                FutureWarning,
                stacklevel=3,
            )
        elif lo >= hi:
            raise ValueError(f"`low` must be less than `high`, but got {lo} >= {hi}")
        elif hi < lowest or lo >= highest:
            raise ValueError(
                f"The value interval specified by `low` and `high` is [{lo}, {hi}), "
                f"but {name} only supports [{lowest}, {highest})"
            )
        lo, hi = min(max(lo, lowest), highest), min(max(hi, lowest), highest)
        if dt.kind in "biu":
            return math.ceil(lo), math.ceil(hi)
        return lo, hi

    rng = creation._rng
    if dt.kind == "b":
        lo, hi = limits(0, 2, 0, 2)
        data = rng.integers(lo, hi, size=shape).astype(dt) if hi > lo else np.full(shape, lo, dt)
    elif dt.kind in "iu":
        info = iinfo(dt)
        lo, hi = limits(info.min, info.max + (1 if dt != np.int64 else 0), -9 if dt.kind == "i" else 0, 10)
        data = rng.integers(lo, hi, size=shape, dtype=np.int64 if dt.kind == "i" else np.uint64).astype(dt) \
            if hi > lo else np.full(shape, lo, dt)
    elif dt.kind == "f":
        info = finfo(dt)
        lo, hi = limits(info.min, info.max, -9, 9)
        if hi - lo >= info.max:  # torch halves the interval to keep the draw finite, then doubles it
            data = (rng.uniform(lo / 2, hi / 2, size=shape) * 2).astype(dt)
        else:
            data = rng.uniform(lo, hi, size=shape).astype(dt)
            data = np.where(data >= hi, np.nextafter(dt.type(hi), dt.type(lo)), data).astype(dt)  # [low, high)
    else:
        raise TypeError(
            f"The requested dtype '{dtype}' is not supported by torch.testing.make_tensor()."
            " To request support, file an issue at: https://github.com/pytorch/pytorch/issues"
        )
    if exclude_zero:
        data[data == 0] = 1 if dt.kind in "biu" else finfo(dt).tiny
    result = creation.tensor(data, device=device)
    if noncontiguous:
        result = result[..., 1::2]
    if dt.kind == "f" and requires_grad:
        result.requires_grad_(True)
    return result
