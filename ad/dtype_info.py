"""``ad.finfo`` and ``ad.iinfo``: the numeric limits of ad's dtypes, with torch's attributes and errors.

ad's dtypes are numpy dtypes, so the limits come from ``numpy.finfo`` / ``numpy.iinfo``; these classes give them
torch's attribute names (``smallest_normal``, ``tiny``, ``resolution``) and torch's ``dtype`` attribute, the dtype's
name as a string.
"""

import numpy as np


def _dtype_name(dtype):
    return f"torch.{np.dtype(dtype).name}"


def _as_dtype(dtype, fn):
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{fn}(): argument 'type' (position 1) must be torch.dtype, not {type(dtype).__name__}"
        ) from None


class finfo:  # noqa: N801 - torch's name
    """``torch.finfo(type=None)``: the limits of a floating dtype (default: ad's default dtype).

    Attributes: ``bits``, ``eps`` (the gap between 1 and the next value), ``max``, ``min`` (= -max), ``tiny`` and
    ``smallest_normal`` (the smallest positive normal number), ``resolution`` (10 ** -precision in decimal digits),
    ``dtype`` (the dtype's name, a string).

    Raises:
        TypeError: for a non-floating dtype (torch's message), or an argument that is not a dtype.

    Example:
        >>> ad.finfo(ad.float32).eps
        1.1920928955078125e-07
    """

    def __init__(self, type=None):  # noqa: A002 - torch's keyword
        if type is None:
            from .conveniences import get_default_dtype

            type = get_default_dtype()  # noqa: A001
        if isinstance(type, str):
            raise TypeError(f"finfo(): argument 'type' (position 1) must be torch.dtype, not {_type_name(type)}")
        dtype = _as_dtype(type, "finfo")
        if dtype.kind != "f":
            raise TypeError(
                "torch.finfo() requires a floating point input type. Use torch.iinfo to handle 'torch.finfo'"
            )
        info = np.finfo(dtype)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = float(info.smallest_normal)
        self.smallest_normal = self.tiny
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = dtype.name

    def __eq__(self, other):
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("finfo", self.dtype))

    def __repr__(self):
        return (
            f"finfo(resolution={self.resolution:.6g}, min={self.min:.6g}, max={self.max:.6g}, eps={self.eps:.6g}, "
            f"smallest_normal={self.smallest_normal:.6g}, tiny={self.tiny:.6g}, dtype={self.dtype})"
        )


class iinfo:  # noqa: N801 - torch's name
    """``torch.iinfo(type)``: the limits of an integer dtype: ``bits``, ``max``, ``min``, ``dtype`` (its name).

    Raises:
        TypeError: for a floating dtype or bool (torch's messages).

    Example:
        >>> ad.iinfo(ad.int8).max
        127
    """

    def __init__(self, type):  # noqa: A002 - torch's keyword
        if isinstance(type, str):
            raise TypeError(f"iinfo(): argument 'type' (position 1) must be torch.dtype, not {_type_name(type)}")
        dtype = _as_dtype(type, "iinfo")
        if dtype.kind == "b":
            raise TypeError(f"{_dtype_name(dtype)} is not supported by torch.iinfo")
        if dtype.kind not in "iu":
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle 'torch.iinfo'")
        info = np.iinfo(dtype)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = dtype.name

    def __eq__(self, other):
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("iinfo", self.dtype))

    def __repr__(self):
        return f"iinfo(min={float(self.min):.6g}, max={float(self.max):.6g}, dtype={self.dtype})"


def _type_name(value):
    return type(value).__name__
