"""Property-based tests: random compositions of ops against finite differences, and the two sweeps against
each other.

Data structures (where to start reading: ``_draw_program``):

- A *program* is a list of ``Step``s over a pool of values. The pool starts with the leaves (numpy arrays of
  random shapes that broadcast against each other, some of them not requiring grad); each step applies one
  op to pool entries and appends its result, so a later step may reuse any earlier value (fan-out), even
  twice in one op (``x * x``, ``cat([x, x])``, ``x @ x.mT``).
- Every op is written twice, as ``ad`` code (``Step.ad_fn``) and as numpy code (``Step.np_fn``), so a program
  runs in both: ``_run_ad`` records a graph, ``_run_np`` is the reference for central finite differences and
  for the forward values.
- Programs are drawn on concrete values (``_Builder``): a step is kept only where its precondition holds with
  a margin (log, sqrt and pow on positive values, exp on bounded ones, abs / relu / clamp away from their
  kinks, maximum / minimum / amax / max(dim) away from ties, denominators away from 0, values bounded), so
  that central differences are accurate and every derivative exists.

The ops: sin cos tan tanh sigmoid erf exp expm1 log log1p sqrt rsqrt abs relu square clamp neg, scalar
forms (``1.5 * x - 0.25``, ``2.0 - x``, ``1.0 / x``, ``x / 4.0``, ``x ** 3``, ``x ** 0.5``), binary ``+ - * /``
``**`` maximum minimum where with broadcasting, matmul (1-D, 2-D, batched, broadcast batches), sum / mean /
prod / amax / amin / max(dim) / var / std / logsumexp / softmax / log_softmax / norm over random dims with
keepdim, reshape / flatten / view / transpose / permute / ``.T`` / ``.mT`` / unsqueeze / squeeze / expand,
indexing with ints, slices (negative steps too), ``None``, ellipsis and integer arrays with repeats,
index_select, gather, cat / stack / chunk / split, and in-place ops on a fresh copy (``add_ sub_ mul_ div_ +=
clamp_``, ``t[key] = v``), which rebase the copy onto the new node.

Checks:

- ``test_grad_matches_finite_differences``: ``ad.autograd.grad`` (the compiled kernel sweep) against central
  differences of the numpy program, for leaves and for an intermediate tensor; the forward values against
  numpy; the differentiable sweep (``create_graph=True``) against the kernel sweep to ~1e-10;
  ``backward`` accumulation, ``retain_grad`` and identity hooks (called once each) against ``grad``.
- ``test_hessian_vector_product_matches_finite_differences``: grad of (grad . w), in both sweeps, against
  central differences of the first gradient along ``w``.
- ``test_second_derivative_scalar_input``: d2/dx2 of a program of one 0-d leaf (and constants), by grad of
  grad, against central differences of the first derivative.
- ``test_forward_mode_matches_finite_differences``: ``forward_ad`` tangents against central differences along
  ``w``, and forward over reverse (the tangent of the gradient) against grad of grad.
- ``test_grad_matches_finite_differences_across_small_tapes``: the first property with tapes of a few
  elements, so that every graph spans several tapes (operand imports, cotangents handed between tapes).
- ``test_known_bug``: one small reproducer per bug these properties found (``KNOWN_BUGS``, see there).
- ``test_each_op_in_random_programs``: for each op name a step can draw (``STEP_OPS``), ``PER_OP_EXAMPLES``
  (default 6, env ``AD_HYPOTHESIS_PER_OP``) programs that contain it (``_FORCED``: half the steps are of its
  kind and pick it half the time), checked by the reverse or the forward property. ``Program.ops`` records
  the op of every step.
- ``test_randomized_programs``: the reverse, forward and Hessian-vector properties on programs that change
  from run to run: ``RANDOM_EXAMPLES`` (default 30, env ``AD_HYPOTHESIS_RANDOM_EXAMPLES``) each, seeded by
  ``AD_HYPOTHESIS_SEED`` or a fresh seed, which ``tests/conftest.py`` prints at the end of every run.

Hypothesis profiles (registered here, selected with the environment variable ``AD_HYPOTHESIS_PROFILE``):
``ci`` (default: 100 examples per test, derandomized so that CI is reproducible) and ``long`` (10,000
examples, random). They are applied per test, not loaded globally, so other test modules are unaffected.
``random`` is the randomized profile above (not derandomized, no example database).
"""

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.special
from hypothesis import HealthCheck, assume, given, note, seed, settings
from hypothesis import strategies as st

import ad
import ad.autograd.forward_ad as fwAD

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True, suppress_health_check=_HEALTH
)
settings.register_profile(
    # derandomize explicitly: under CI=true hypothesis loads a derandomized default that profiles inherit
    "long",
    max_examples=10_000,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_HEALTH,
)
PROFILE = settings.get_profile(os.environ.get("AD_HYPOTHESIS_PROFILE", "ci"))

LIMIT = 20.0  # largest |value| a step may produce
MAX_SIZE = 48  # largest number of elements of a value
MARGIN = 1e-2  # distance kept from kinks, ties and poles
FD_EPS = 1e-6

# Bugs in ``ad`` that these properties found and that are not fixed yet. The generators steer around each
# one (so that the properties keep guarding everything else), and ``test_known_bug`` reproduces each one as
# a strict xfail: when a fix lands, that test XPASSes and fails; then delete the entry here, and the
# reproducer becomes an ordinary regression test.
KNOWN_BUGS: dict[str, str] = {}  # all seven found so far are fixed; their reproducers are regression tests


def _bug(name):
    return name in KNOWN_BUGS


_SMALL_TAPES = []  # non-empty while ``_small_tapes`` is active
_FORCED = []  # the op name a program must contain, while ``test_each_op_in_random_programs`` runs


# ---------------------------------------------------------------------------------------------------------
# programs


@dataclass
class Step:
    desc: str
    args: tuple
    ad_fn: Callable
    np_fn: Callable


@dataclass
class Program:
    leaves: list  # numpy arrays
    leaf_rg: list  # requires_grad per leaf
    steps: list = field(default_factory=list)
    rg: list = field(default_factory=list)  # requires_grad per pool entry (leaves, then steps)
    ops: list = field(default_factory=list)  # the op name of each step (a key of STEP_OPS)

    def describe(self):
        lines = [f"v{k} = leaf{v.shape}{' rg' if r else ''}" for k, (v, r) in enumerate(zip(self.leaves, self.leaf_rg))]
        n = len(self.leaves)
        for k, s in enumerate(self.steps):
            lines.append(f"v{n + k} = {s.desc.format(*[f'v{a}' for a in s.args])}")
        return "\n".join(lines)

    def ancestors(self, k):
        """Pool indices that value ``k`` is computed from (itself included)."""
        n = len(self.leaves)
        seen = {k}
        stack = [k]
        while stack:
            j = stack.pop()
            if j >= n:
                for a in self.steps[j - n].args:
                    if a not in seen:
                        seen.add(a)
                        stack.append(a)
        return seen


def _run_np(prog, leaves=None, override=None):
    """All pool values of ``prog`` in numpy; ``override``: ``(k, array)`` replaces value ``k`` when made."""
    vals = [np.array(v, dtype=np.float64) for v in (leaves if leaves is not None else prog.leaves)]
    if override is not None and override[0] < len(vals):
        vals[override[0]] = override[1]
    for k, s in enumerate(prog.steps):
        out = np.asarray(s.np_fn(*[vals[a] for a in s.args]), dtype=np.float64)
        if override is not None and override[0] == len(prog.leaves) + k:
            out = override[1]
        vals.append(out)
    return vals


def _run_ad(prog, leaves=None):
    """All pool values of ``prog`` as ``ad`` tensors (the leaves first)."""
    data = leaves if leaves is not None else prog.leaves
    vals = [ad.tensor(np.array(v, dtype=np.float64), requires_grad=r) for v, r in zip(data, prog.leaf_rg)]
    for s in prog.steps:
        vals.append(s.ad_fn(*[vals[a] for a in s.args]))
    return vals


class _Builder:
    """Draws a program step by step, keeping a step only where it is valid on the current values."""

    def __init__(self, draw, prog):
        self.draw = draw
        self.prog = prog
        self.vals = [np.array(v) for v in prog.leaves]
        self.chosen = None  # the op name of the step being drawn (what ``Program.ops`` records)
        prog.rg = list(prog.leaf_rg)

    def const_0d(self, k):
        """Pool value ``k`` is a 0-d tensor outside the graph (see KNOWN_BUGS["0d-numpy-scalar"])."""
        return self.vals[k].ndim == 0 and not self.prog.rg[k]

    def choose(self, names):
        """One of ``names`` for the next step: the op being forced (``_FORCED``) half the time when it is one of
        them, else a uniform draw (exactly the draw of the fixed CI examples when nothing is forced)."""
        forced = _FORCED[-1] if _FORCED else None
        if forced is not None and forced in names and self.draw(st.booleans()):
            name = forced
        else:
            name = self.draw(st.sampled_from(names))
        self.chosen = name
        return name

    def pick(self, pred=None):
        idx = [k for k, v in enumerate(self.vals) if pred is None or pred(v)]
        if not idx:
            return None
        return self.draw(st.sampled_from(idx))

    def add(self, desc, args, ad_fn, np_fn):
        try:
            out = np.asarray(np_fn(*[self.vals[a] for a in args]), dtype=np.float64)
        except (ValueError, IndexError):
            return False
        if out.size == 0 or out.size > MAX_SIZE or not np.all(np.isfinite(out)) or np.abs(out).max() > LIMIT:
            return False
        self.prog.steps.append(Step(desc, tuple(args), ad_fn, np_fn))
        self.prog.ops.append(getattr(self, "chosen", None))
        self.prog.rg.append(any(self.prog.rg[a] for a in args))
        self.vals.append(out)
        return True


def _min_abs(v):
    return np.abs(v).min() if v.size else np.inf


def _far_from(v, *points):
    return all(_min_abs(v - p) >= MARGIN for p in points)


def _sigmoid(x):
    return scipy.special.expit(x)


# name -> (ad function, numpy function, precondition on the input values)
UNARY = {
    "sin": (ad.sin, np.sin, None),
    "cos": (lambda t: t.cos(), np.cos, None),
    "tan": (ad.tan, np.tan, lambda v: np.abs(v).max() <= 1.2),
    "tanh": (lambda t: t.tanh(), np.tanh, None),
    "sigmoid": (ad.sigmoid, _sigmoid, None),
    "erf": (lambda t: t.erf(), scipy.special.erf, None),
    "exp": (ad.exp, np.exp, lambda v: np.abs(v).max() <= 3.0),
    "expm1": (lambda t: t.expm1(), np.expm1, lambda v: np.abs(v).max() <= 3.0),
    "log": (ad.log, np.log, lambda v: v.min() >= 0.2),
    "log1p": (lambda t: t.log1p(), np.log1p, lambda v: v.min() >= -0.5),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, lambda v: v.min() >= 0.2),
    "log(x*x+0.5)": (lambda t: ad.log(t * t + 0.5), lambda v: np.log(v * v + 0.5), None),
    "sqrt(x*x+0.5)": (lambda t: ad.sqrt(t * t + 0.5), lambda v: np.sqrt(v * v + 0.5), None),
    "rsqrt(x*x+0.5)": (lambda t: ad.rsqrt(t * t + 0.5), lambda v: 1.0 / np.sqrt(v * v + 0.5), None),
    "abs": (ad.abs, np.abs, lambda v: _far_from(v, 0.0)),
    "relu": (ad.relu, lambda v: np.maximum(v, 0.0), lambda v: _far_from(v, 0.0)),
    "clamp(x,-1,1)": (lambda t: t.clamp(-1.0, 1.0), lambda v: np.clip(v, -1.0, 1.0), lambda v: _far_from(v, -1, 1)),
    "clamp(x,min=0.5)": (lambda t: ad.clamp(t, min=0.5), lambda v: np.maximum(v, 0.5), lambda v: _far_from(v, 0.5)),
    "square": (lambda t: t.square(), np.square, None),
    "neg": (lambda t: -t, np.negative, None),
    "1.5*x-0.25": (lambda t: 1.5 * t - 0.25, lambda v: 1.5 * v - 0.25, None),
    "2.0-x": (lambda t: 2.0 - t, lambda v: 2.0 - v, None),
    "x/4.0": (lambda t: t / 4.0, lambda v: v / 4.0, None),
    "1.0/x": (lambda t: 1.0 / t, lambda v: 1.0 / v, lambda v: _min_abs(v) >= 0.3),
    "x**3": (lambda t: t**3, lambda v: v**3, None),
    "x**2": (lambda t: t**2, lambda v: v**2, None),
    "x**0.5": (lambda t: t**0.5, np.sqrt, lambda v: v.min() >= 0.2),
    "2.0**x": (lambda t: 2.0**t, lambda v: 2.0**v, lambda v: np.abs(v).max() <= 3.0),
}


def _bcast(a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        return None


# name -> (ad function, numpy function, precondition on (x, y))
BINARY = {
    "+": (lambda x, y: x + y, np.add, None),
    "-": (lambda x, y: x - y, np.subtract, None),
    "*": (lambda x, y: x * y, np.multiply, None),
    "/": (lambda x, y: x / y, np.divide, lambda x, y: _min_abs(y) >= 0.3),
    "x/(y*y+0.5)": (lambda x, y: x / (y * y + 0.5), lambda x, y: x / (y * y + 0.5), None),
    "(x*x+0.5)**y": (
        lambda x, y: (x * x + 0.5) ** y,
        lambda x, y: (x * x + 0.5) ** y,
        lambda x, y: np.abs(y).max() <= 2.0,
    ),
    "maximum": (ad.maximum, np.maximum, lambda x, y: _min_abs(x - y) >= MARGIN),
    "minimum": (lambda x, y: ad.minimum(x, y), np.minimum, lambda x, y: _min_abs(x - y) >= MARGIN),
    "sub_": (lambda x, y: ad.sub(x, y, alpha=2), lambda x, y: x - 2 * y, None),
}


def _dims(draw, nd, allow_none=True):
    """A ``dim`` argument: None, an int (maybe negative) or a tuple of distinct dims."""
    if nd == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"] if allow_none else ["int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        d = draw(st.integers(0, nd - 1))
        return d - nd if draw(st.booleans()) else d
    dims = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    return tuple(dims)


def _axis(dim, nd):
    if dim is None:
        return tuple(range(nd))
    if isinstance(dim, int):
        return (dim % nd,)
    return tuple(d % nd for d in dim)


def _unique_extremes(v, axis, fn):
    """Whether the max (``fn=np.max``) or min over ``axis`` is attained by one element, with a margin."""
    if v.ndim == 0:
        return True
    moved = np.moveaxis(v, axis, tuple(range(v.ndim - len(axis), v.ndim)))
    flat = moved.reshape(moved.shape[: v.ndim - len(axis)] + (-1,))
    if flat.shape[-1] < 2:
        return True
    s = np.sort(flat, axis=-1)
    gap = s[..., -1] - s[..., -2] if fn is np.max else s[..., 1] - s[..., 0]
    return gap.min() >= MARGIN


def _step_unary(b):
    name = b.choose(list(UNARY))
    ad_fn, np_fn, pre = UNARY[name]
    k = b.pick(pre)
    if k is None:
        return
    if _bug("0d-numpy-scalar") and name.startswith(("rsqrt", "clamp")) and b.const_0d(k):
        return
    b.add(f"{name}({{0}})", (k,), ad_fn, np_fn)


def _step_binary(b):
    name = b.choose(list(BINARY))
    ad_fn, np_fn, pre = BINARY[name]
    i = b.pick()
    x = b.vals[i]
    j = b.pick(lambda y: _bcast(x, y) is not None and (pre is None or pre(x, y)))
    if j is None:
        return
    if _bug("where-0d-cond") and name.startswith("(x*x+0.5)**") and _bcast(x, b.vals[j]) == ():
        return  # pow's VJP uses where
    if b.draw(st.booleans()) or name in ("sub_",):
        b.add(f"{name}({{0}}, {{1}})", (i, j), ad_fn, np_fn)
    elif pre is None or pre(b.vals[j], b.vals[i]):
        b.add(f"{name}({{0}}, {{1}})", (j, i), ad_fn, np_fn)


def _step_where(b):
    b.chosen = "where"
    i = b.pick()
    x = b.vals[i]
    j = b.pick(lambda y: _bcast(x, y) is not None)
    shape = _bcast(x, b.vals[j])
    if _bug("where-0d-cond") and shape == ():
        return
    seed = b.draw(st.integers(0, 2**16))
    cond = np.random.default_rng(seed).random(shape) < 0.5
    b.add(
        f"where(cond{list(shape)}#{seed}, {{0}}, {{1}})",
        (i, j),
        lambda x, y: ad.where(cond, x, y),
        lambda x, y: np.where(cond, x, y),
    )


def _matmul_ok(x, y):
    if x.ndim == 0 or y.ndim == 0:
        return False
    xs = x.shape if x.ndim > 1 else (1,) + x.shape
    ys = y.shape if y.ndim > 1 else y.shape + (1,)
    if xs[-1] != ys[-2]:
        return False
    try:
        np.broadcast_shapes(xs[:-2], ys[:-2])
    except ValueError:
        return False
    if _bug("matmul-1d-batch1") and min(x.ndim, y.ndim) == 1 and max(x.ndim, y.ndim) >= 3:
        big = x if x.ndim >= 3 else y
        return int(np.prod(big.shape[:-2])) != 1
    return True


def _step_matmul(b):
    b.chosen = "matmul"
    i = b.pick(lambda v: v.ndim >= 1)
    if i is None:
        return
    x = b.vals[i]
    j = b.pick(lambda y: _matmul_ok(x, y))
    if j is not None and b.draw(st.booleans()):
        b.add("{0} @ {1}", (i, j), lambda x, y: x @ y, np.matmul)
    elif x.ndim >= 2:
        b.add("{0} @ {0}.mT", (i,), lambda x: x @ x.mT, lambda x: x @ np.swapaxes(x, -1, -2))
    else:
        b.add("dot({0}, {0})", (i,), lambda x: ad.dot(x, x), lambda x: np.dot(x, x))


REDUCE_NAMES = [
    "sum",
    "mean",
    "prod",
    "amax",
    "amin",
    "max_dim",
    "min_dim",
    "var",
    "std",
    "logsumexp",
    "softmax",
    "log_softmax",
    "norm",
]


def _step_reduce(b):
    name = b.choose(REDUCE_NAMES)
    i = b.pick()
    x = b.vals[i]
    nd = x.ndim
    keepdim = b.draw(st.booleans())
    if name in ("sum", "mean"):
        dim = _dims(b.draw, nd)
        npf = np.sum if name == "sum" else np.mean
        if dim is None and not keepdim:
            b.add(f"{{0}}.{name}()", (i,), lambda t: getattr(t, name)(), lambda v: npf(v))
        else:
            b.add(
                f"{{0}}.{name}({dim}, keepdim={keepdim})",
                (i,),
                lambda t: getattr(t, name)(dim, keepdim=keepdim),
                lambda v: npf(v, axis=_axis(dim, nd), keepdims=keepdim),
            )
    elif name == "prod":
        if _min_abs(x) < 0.3 or np.abs(x).max() > 2.0:
            return
        dim = _dims(b.draw, nd)
        if dim is None or isinstance(dim, tuple):
            b.add("{0}.prod()", (i,), lambda t: t.prod(), np.prod)
        else:
            b.add(
                f"{{0}}.prod({dim}, keepdim={keepdim})",
                (i,),
                lambda t: t.prod(dim, keepdim=keepdim),
                lambda v: np.prod(v, axis=dim, keepdims=keepdim),
            )
    elif name in ("amax", "amin"):
        dim = _dims(b.draw, nd)
        npf = np.max if name == "amax" else np.min
        if not _unique_extremes(x, _axis(dim, nd), npf):
            return
        if dim is None:
            b.add(f"{{0}}.{name}()", (i,), lambda t: getattr(t, name)(), npf)
        else:
            b.add(
                f"{{0}}.{name}({dim}, keepdim={keepdim})",
                (i,),
                lambda t: getattr(t, name)(dim, keepdim=keepdim),
                lambda v: npf(v, axis=_axis(dim, nd), keepdims=keepdim),
            )
    elif name in ("max_dim", "min_dim"):
        if nd == 0:
            return
        d = b.draw(st.integers(-nd, nd - 1))
        npf = np.max if name == "max_dim" else np.min
        if not _unique_extremes(x, (d % nd,), npf):
            return
        m = name[:3]
        b.add(
            f"{{0}}.{m}({d}, keepdim={keepdim})[0]",
            (i,),
            lambda t: getattr(t, m)(d, keepdim=keepdim)[0],
            lambda v: npf(v, axis=d, keepdims=keepdim),
        )
    elif name in ("var", "std"):
        if nd == 0:
            return
        dim = _dims(b.draw, nd)
        axis = _axis(dim, nd)
        if int(np.prod([x.shape[a] for a in axis])) < 2:
            return
        var = np.var(x, axis=axis, keepdims=keepdim, ddof=1)
        if name == "std" and var.min() < 0.01:
            return
        npf = (
            (lambda v: np.var(v, axis=axis, keepdims=keepdim, ddof=1))
            if name == "var"
            else (lambda v: np.std(v, axis=axis, keepdims=keepdim, ddof=1))
        )
        b.add(f"{{0}}.{name}({dim}, keepdim={keepdim})", (i,), lambda t: getattr(t, name)(dim, keepdim=keepdim), npf)
    elif name == "logsumexp":
        if nd == 0:
            return
        dim = _dims(b.draw, nd, allow_none=False)
        b.add(
            f"{{0}}.logsumexp({dim}, keepdim={keepdim})",
            (i,),
            lambda t: t.logsumexp(dim, keepdim=keepdim),
            lambda v: scipy.special.logsumexp(v, axis=_axis(dim, nd), keepdims=keepdim),
        )
    elif name in ("softmax", "log_softmax"):
        if nd == 0:
            return
        d = b.draw(st.integers(-nd, nd - 1))
        npf = scipy.special.softmax if name == "softmax" else scipy.special.log_softmax
        b.add(f"{{0}}.{name}({d})", (i,), lambda t: getattr(t, name)(d), lambda v: npf(v, axis=d))
    else:
        if np.sqrt(np.sum(x * x)) < 0.1:
            return
        b.add("{0}.norm()", (i,), lambda t: t.norm(), lambda v: np.sqrt(np.sum(v * v)))


def _factor_shape(draw, n):
    """A random shape with ``n`` elements, up to 3 dims."""
    dims = []
    rest = n
    for _ in range(draw(st.integers(0, 2))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        rest //= d
    dims.append(rest)
    return tuple(draw(st.permutations(dims)))


VIEW_NAMES = [
    "reshape",
    "view",
    "flatten",
    "transpose",
    "permute",
    "T",
    "mT",
    "unsqueeze",
    "squeeze",
    "expand",
    "expand_lead",
    "reshape(-1)",
]


def _step_view(b):
    name = b.choose(VIEW_NAMES)
    i = b.pick()
    x = b.vals[i]
    nd = x.ndim
    if name == "reshape":
        shape = _factor_shape(b.draw, x.size)
        b.add(f"{{0}}.reshape{shape}", (i,), lambda t: t.reshape(shape), lambda v: v.reshape(shape))
    elif name == "view":  # (of a transposed tensor it is torch's error: reshape there; seed 1461224659)
        shape = _factor_shape(b.draw, x.size)
        b.add(
            f"{{0}}.view{shape}",
            (i,),
            lambda t: t.view(shape) if t.is_contiguous() else t.reshape(shape),
            lambda v: v.reshape(shape),
        )
    elif name == "reshape(-1)":
        b.add("{0}.reshape(-1)", (i,), lambda t: t.reshape(-1), lambda v: v.reshape(-1))
    elif name == "flatten":
        b.add("{0}.flatten()", (i,), lambda t: t.flatten(), lambda v: v.reshape(-1))
    elif name == "transpose" and nd >= 2:
        d0 = b.draw(st.integers(-nd, nd - 1))
        d1 = b.draw(st.integers(-nd, nd - 1))
        b.add(f"{{0}}.transpose({d0}, {d1})", (i,), lambda t: t.transpose(d0, d1), lambda v: np.swapaxes(v, d0, d1))
    elif name == "permute" and nd >= 1:
        perm = tuple(b.draw(st.permutations(range(nd))))
        b.add(f"{{0}}.permute{perm}", (i,), lambda t: t.permute(*perm), lambda v: np.transpose(v, perm))
    elif name == "T" and nd == 2:
        b.add("{0}.T", (i,), lambda t: t.T, lambda v: v.T)
    elif name == "mT" and nd >= 2:
        b.add("{0}.mT", (i,), lambda t: t.mT, lambda v: np.swapaxes(v, -1, -2))
    elif name == "unsqueeze":
        d = b.draw(st.integers(-nd - 1, nd))
        b.add(f"{{0}}.unsqueeze({d})", (i,), lambda t: t.unsqueeze(d), lambda v: np.expand_dims(v, d))
    elif name == "squeeze":
        ones = [k for k, s in enumerate(x.shape) if s == 1]
        if ones and b.draw(st.booleans()):
            d = b.draw(st.sampled_from(ones))
            b.add(f"{{0}}.squeeze({d})", (i,), lambda t: t.squeeze(d), lambda v: np.squeeze(v, d))
        else:
            b.add("{0}.squeeze()", (i,), lambda t: t.squeeze(), lambda v: np.squeeze(v))
    elif name == "expand":
        shape = tuple(b.draw(st.integers(1, 3)) if s == 1 else s for s in x.shape)
        use_minus_one = b.draw(st.booleans())
        arg = tuple(-1 if (use_minus_one and s == t) else t for s, t in zip(x.shape, shape))
        b.add(f"{{0}}.expand{arg}", (i,), lambda t: t.expand(*arg), lambda v: np.broadcast_to(v, shape))
    elif name == "expand_lead":
        lead = b.draw(st.integers(1, 3))
        shape = (lead,) + x.shape
        b.add(f"{{0}}.expand{shape}", (i,), lambda t: t.expand(shape), lambda v: np.broadcast_to(v, shape))


def _index_key(draw, shape):
    """A random indexing key: ints, slices (any step sign), integer arrays with repeats, None, Ellipsis."""
    key = []
    arrays = 0
    arr_len = draw(st.integers(1, 4))
    for s in shape:
        kind = draw(st.sampled_from(["all", "slice", "int", "array", "stop"]))
        if kind == "stop":
            break
        if kind == "all":
            key.append(slice(None))
        elif kind == "slice":
            start = draw(st.integers(-s, s - 1))
            stop = draw(st.none() | st.integers(-s - 1, s))
            step = draw(st.sampled_from([1, 1, 2, -1, -2]))
            key.append(slice(start, stop, step))
        elif kind == "int":
            key.append(draw(st.integers(-s, s - 1)))
        elif arrays < 2:
            key.append(("array", draw(st.lists(st.integers(-s, s - 1), min_size=arr_len, max_size=arr_len))))
            arrays += 1
        else:
            key.append(slice(None))
    if draw(st.booleans()):
        key.insert(draw(st.integers(0, len(key))), None)
    if draw(st.integers(0, 3)) == 0 and not any(k is Ellipsis for k in key):
        key.insert(draw(st.integers(0, len(key))), Ellipsis)
    return key


INDEX_NAMES = ["getitem", "getitem", "index_select", "gather", "chunk_cat", "split"]  # getitem: twice as often


def _step_index(b):
    name = b.choose(INDEX_NAMES)
    i = b.pick()
    x = b.vals[i]
    nd = x.ndim
    if name == "getitem":
        raw = _index_key(b.draw, x.shape)
        as_tensor = b.draw(st.booleans())

        def np_key():
            return tuple(np.array(k[1], dtype=np.int64) if isinstance(k, tuple) else k for k in raw)

        def ad_key():
            return tuple(
                (ad.tensor(np.array(k[1], dtype=np.int64)) if as_tensor else list(k[1])) if isinstance(k, tuple) else k
                for k in raw
            )

        shown = ", ".join(repr(k[1]) if isinstance(k, tuple) else repr(k) for k in raw)
        b.add(f"{{0}}[{shown}]", (i,), lambda t: t[ad_key()], lambda v: v[np_key()])
    elif name == "index_select" and nd >= 1:
        d = b.draw(st.integers(-nd, nd - 1))
        idx = b.draw(st.lists(st.integers(0, x.shape[d] - 1), min_size=1, max_size=4))
        b.add(
            f"{{0}}.index_select({d}, {idx})",
            (i,),
            lambda t: t.index_select(d, ad.tensor(np.array(idx))),
            lambda v: np.take(v, idx, axis=d),
        )
    elif name == "gather" and nd >= 1:
        d = b.draw(st.integers(0, nd - 1))
        shape = tuple(b.draw(st.integers(1, s)) if k != d else b.draw(st.integers(1, 4)) for k, s in enumerate(x.shape))
        seed = b.draw(st.integers(0, 2**16))
        index = np.random.default_rng(seed).integers(0, x.shape[d], size=shape)
        b.add(
            f"{{0}}.gather({d}, idx{list(shape)}#{seed})",
            (i,),
            lambda t: t.gather(d, ad.tensor(index)),
            lambda v: np.take_along_axis(v, index, axis=d),
        )
    elif name == "chunk_cat" and nd >= 1:
        d = b.draw(st.integers(0, nd - 1))
        chunks = b.draw(st.integers(1, 3))

        def np_fn(v):
            size = v.shape[d]
            step = -(-size // chunks)
            pieces = [np.take(v, range(lo, min(lo + step, size)), axis=d) for lo in range(0, size, step)]
            return np.concatenate(pieces[::-1], axis=d)

        b.add(
            f"cat(reversed({{0}}.chunk({chunks}, {d})), {d})",
            (i,),
            lambda t: ad.cat(list(t.chunk(chunks, d))[::-1], d),
            np_fn,
        )
    elif name == "split" and nd >= 1:
        d = b.draw(st.integers(0, nd - 1))
        size = x.shape[d]
        step = b.draw(st.integers(1, size))
        piece = b.draw(st.integers(0, (size - 1) // step))
        b.add(
            f"{{0}}.split({step}, {d})[{piece}]",
            (i,),
            lambda t: t.split(step, d)[piece],
            lambda v: np.take(v, range(piece * step, min(piece * step + step, size)), axis=d),
        )


def _step_join(b):
    b.chosen = "join"
    i = b.pick()
    x = b.vals[i]
    nd = x.ndim
    if b.draw(st.booleans()) and nd >= 1:
        d = b.draw(st.integers(-nd, nd - 1))
        dd = d % nd

        def fits(y):
            return y.ndim == nd and y.shape[:dd] + y.shape[dd + 1 :] == x.shape[:dd] + x.shape[dd + 1 :]

        others = [b.pick(fits) for _ in range(b.draw(st.integers(1, 2)))]
        args = (i, *others)
        names = ", ".join(f"{{{k}}}" for k in range(len(args)))
        b.add(f"cat([{names}], {d})", args, lambda *ts: ad.cat(list(ts), d), lambda *vs: np.concatenate(vs, axis=d))
    else:
        d = b.draw(st.integers(-nd - 1, nd))
        others = [b.pick(lambda y: y.shape == x.shape) for _ in range(b.draw(st.integers(1, 2)))]
        args = (i, *others)
        names = ", ".join(f"{{{k}}}" for k in range(len(args)))
        b.add(f"stack([{names}], {d})", args, lambda *ts: ad.stack(list(ts), d), lambda *vs: np.stack(vs, axis=d))


def _inplace_fn(method, y_is_tensor, scalar=None):
    def fn(x, *y):
        out = x.clone()
        getattr(out, method)(y[0] if y_is_tensor else scalar)
        return out

    return fn


def _np_setitem(key):
    def fn(x, y):
        out = x.copy()
        out[key] = y
        return out

    return fn


def _ad_setitem(key):
    def fn(x, y):
        out = x * 1.0
        out[key] = y
        return out

    return fn


INPLACE_NAMES = ["add_", "sub_", "mul_", "div_", "+=", "clamp_", "setitem", "add_scalar"]


def _step_inplace(b):
    """An in-place op on a fresh copy (``clone``, ``x * 1.0``): recorded, it takes the copy's place."""
    if _SMALL_TAPES and _bug("inplace-across-tapes"):
        return
    names = INPLACE_NAMES
    if _bug("inplace-false-modified"):
        names = ["add_", "sub_", "+=", "add_scalar"]
    name = b.choose(names)
    i = b.pick()
    if _bug("0d-numpy-scalar") and b.const_0d(i):
        return
    x = b.vals[i]

    def fits(y):
        return _bcast(x, y) == x.shape

    if name in ("add_", "sub_", "mul_", "div_"):
        j = b.pick(lambda y: fits(y) and (name != "div_" or _min_abs(y) >= 0.3))
        if j is None:
            return
        npf = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.divide}[name]
        b.add(f"{{0}}.clone().{name}({{1}})", (i, j), _inplace_fn(name, True), npf)
    elif name == "+=":
        j = b.pick(fits)
        if j is None:
            return

        def iadd(x, y):
            out = x.clone()
            out += y
            return out

        b.add("({0}.clone() += {1})", (i, j), iadd, np.add)
    elif name == "add_scalar":
        b.add(
            "{0}.clone().mul_(2.5).add_(-1.0)", (i,), lambda t: t.clone().mul_(2.5).add_(-1.0), lambda v: v * 2.5 - 1.0
        )
    elif name == "clamp_":
        if not _far_from(x, -1.0, 1.0):
            return
        b.add("{0}.clone().clamp_(-1, 1)", (i,), lambda t: t.clone().clamp_(-1.0, 1.0), lambda v: np.clip(v, -1.0, 1.0))
    elif x.ndim >= 1:
        d = b.draw(st.integers(0, x.ndim - 1))
        lo = b.draw(st.integers(0, x.shape[d] - 1))
        hi = b.draw(st.integers(lo + 1, x.shape[d]))
        key = (slice(None),) * d + (slice(lo, hi),)
        target_shape = x[key].shape
        j = b.pick(lambda y: _bcast(y, np.empty(target_shape)) == target_shape)
        if j is None:
            return
        b.add(f"({{0}} * 1.0)[{key}] = {{1}}", (i, j), _ad_setitem(key), _np_setitem(key))


STEP_KINDS = {
    "unary": _step_unary,
    "binary": _step_binary,
    "where": _step_where,
    "matmul": _step_matmul,
    "reduce": _step_reduce,
    "view": _step_view,
    "index": _step_index,
    "join": _step_join,
    "inplace": _step_inplace,
}
# every op name a step can draw -> its step kind (what ``test_each_op_in_random_programs`` walks)
STEP_OPS = {
    **dict.fromkeys(UNARY, "unary"),
    **dict.fromkeys(BINARY, "binary"),
    **dict.fromkeys(REDUCE_NAMES, "reduce"),
    **dict.fromkeys(VIEW_NAMES, "view"),
    **dict.fromkeys(INDEX_NAMES, "index"),
    **dict.fromkeys(INPLACE_NAMES, "inplace"),
    "where": "where",
    "matmul": "matmul",
    "join": "join",
}
KIND_WEIGHTS = (
    ["unary"] * 4
    + ["binary"] * 4
    + ["where", "matmul", "matmul"]
    + ["reduce"] * 3
    + ["view"] * 3
    + ["index"] * 3
    + ["join"] * 2
    + ["inplace"] * 2
)


@st.composite
def _shapes(draw):
    """Leaf shapes that broadcast against each other: variants of one base shape."""
    base = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3)))
    n = draw(st.integers(1, 3))
    shapes = []
    for _ in range(n):
        kind = draw(st.sampled_from(["base", "drop", "ones", "free"]))
        if kind == "base":
            shapes.append(base)
        elif kind == "drop":
            shapes.append(base[draw(st.integers(0, len(base))) :])
        elif kind == "ones":
            shapes.append(tuple(1 if draw(st.booleans()) else s for s in base))
        else:
            shapes.append(tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))))
    return shapes


def _draw_program(draw, shapes=None, leaf_rg=None, max_steps=12):
    if shapes is None:
        shapes = draw(_shapes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if leaf_rg is None:
        leaf_rg = [True] + [draw(st.integers(0, 3)) > 0 for _ in shapes[1:]]
    if _SMALL_TAPES and _bug("0d-leaf-sum"):  # cotangents of a leaf come from every tape it was imported into
        shapes = [(1,) if s == () and r else s for s, r in zip(shapes, leaf_rg)]
    leaves = [rng.uniform(-2.0, 2.0, size=s) for s in shapes]
    prog = Program(leaves, leaf_rg)
    b = _Builder(draw, prog)
    want = draw(st.integers(1, max_steps))
    forced = _FORCED[-1] if _FORCED else None
    for _ in range(3 * want):  # a step whose precondition fails is not kept: try again
        if len(prog.steps) >= want:
            break
        if forced is not None and draw(st.booleans()):
            STEP_KINDS[STEP_OPS[forced]](b)  # the forced op's kind: ``choose`` picks the op half the time
        else:
            STEP_KINDS[draw(st.sampled_from(KIND_WEIGHTS))](b)
    for _ in range(20 if forced is not None and forced not in prog.ops else 0):
        STEP_KINDS[STEP_OPS[forced]](b)  # (its precondition may have failed on the values drawn so far)
        if forced in prog.ops:
            break
    if not any(prog.rg[len(leaves) :]):
        b.chosen = "sin"
        b.add("sin({0})", (0,), ad.sin, np.sin)
    if forced is not None:
        assume(forced in prog.ops)
    note(prog.describe())
    return prog


def _draw_outputs(draw, prog):
    """One or two pool indices (results of steps that require grad) to differentiate, and their cotangents."""
    n = len(prog.leaves)
    candidates = [k for k in range(n, n + len(prog.steps)) if prog.rg[k]]
    if _bug("0d-leaf-sum"):  # an output that is a 0-d leaf itself (x.squeeze(), x.transpose(0, 0), ...)
        vals = _run_ad(prog)
        leaves_0d = [vals[j] for j in range(n) if vals[j].ndim == 0]
        candidates = [k for k in candidates if not any(vals[k] is leaf for leaf in leaves_0d)]
        assume(candidates)
    outs = [candidates[-1]]
    if len(candidates) > 1 and draw(st.booleans()):
        other = draw(st.sampled_from(candidates[:-1]))
        outs.append(other)
    vals = _run_np(prog)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cots = [rng.uniform(-1.0, 1.0, size=vals[k].shape) for k in outs]
    note(f"outputs: {[f'v{k}' for k in outs]}")
    return outs, cots


def _loss_np(prog, outs, cots, leaves=None, override=None):
    vals = _run_np(prog, leaves, override)
    return sum(float(np.sum(vals[k] * c)) for k, c in zip(outs, cots))


def _fd_leaf(prog, outs, cots, j):
    """Central differences of the loss with respect to leaf ``j`` (numpy only)."""
    base = [v.copy() for v in prog.leaves]
    flat = base[j].reshape(-1)
    out = np.zeros(flat.size)
    for e in range(flat.size):
        orig = flat[e]
        flat[e] = orig + FD_EPS
        plus = _loss_np(prog, outs, cots, base)
        flat[e] = orig - FD_EPS
        minus = _loss_np(prog, outs, cots, base)
        flat[e] = orig
        out[e] = (plus - minus) / (2 * FD_EPS)
    return out.reshape(prog.leaves[j].shape)


def _fd_node(prog, outs, cots, k):
    """Central differences of the loss with respect to pool value ``k``, holding what it is made from fixed."""
    value = _run_np(prog)[k].copy()
    flat = value.reshape(-1)
    out = np.zeros(flat.size)
    for e in range(flat.size):
        orig = flat[e]
        flat[e] = orig + FD_EPS
        plus = _loss_np(prog, outs, cots, override=(k, value.copy()))
        flat[e] = orig - FD_EPS
        minus = _loss_np(prog, outs, cots, override=(k, value.copy()))
        flat[e] = orig
        out[e] = (plus - minus) / (2 * FD_EPS)
    return out.reshape(value.shape)


def _assert_close(actual, expected, rtol, atol_scale, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol_scale * scale, err_msg=what)


def _np(t):
    return np.asarray(t.detach().numpy(), dtype=np.float64)


def _grads_or_zeros(grads, like):
    return [np.zeros(t.shape) if g is None else _np(g) for g, t in zip(grads, like)]


def _check_retained(t, reached, expected, what):
    if reached:
        assert t.grad is not None, what
        _assert_close(_np(t.grad), expected, 1e-10, 1e-10, what)
    else:
        assert t.grad is None, what
    t.grad = None


# ---------------------------------------------------------------------------------------------------------
# tests


@PROFILE
@given(st.data())
def test_grad_matches_finite_differences(data):
    draw = data.draw
    prog = _draw_program(draw)
    outs, cots = _draw_outputs(draw, prog)
    ref = _run_np(prog)
    vals = _run_ad(prog)
    n = len(prog.leaves)

    for k, (t, v) in enumerate(zip(vals, ref)):
        _assert_close(_np(t), v, 1e-12, 1e-12, f"forward value v{k}")
        assert t.requires_grad == prog.rg[k], f"v{k}.requires_grad"

    # an intermediate to differentiate with respect to: one whose tensor is no other pool entry's
    ids = [id(t) for t in vals]
    inner = [k for k in range(n, len(vals)) if prog.rg[k] and ids.count(ids[k]) == 1]
    target = draw(st.sampled_from(inner)) if inner and draw(st.booleans()) else None
    # identity hooks: they split the compiled sweep at their rows, and must be called once each
    calls = {}
    hooked = draw(st.sampled_from(inner)) if inner and draw(st.booleans()) else None
    if hooked is not None:
        calls[hooked] = 0

        def hook(g, k=hooked):
            calls[k] += 1
            return g * 1.0

        vals[hooked].register_hook(hook)
    if target is not None:
        vals[target].retain_grad()
    note(f"target: {target}, hooked: {hooked}")

    rg_leaves = [j for j in range(n) if prog.leaf_rg[j]]
    wrt_idx = rg_leaves + ([target] if target is not None else [])
    wrt = [vals[k] for k in wrt_idx]
    outputs = [vals[k] for k in outs]
    seeds = [ad.tensor(c) for c in cots]

    # (a) the compiled sweep against central differences of the numpy program
    kernel = ad.autograd.grad(outputs, wrt, seeds, retain_graph=True, allow_unused=True)
    kernel = _grads_or_zeros(kernel, wrt)
    reached = set().union(*(prog.ancestors(k) for k in outs))
    if hooked is not None:
        assert calls[hooked] == (1 if hooked in reached else 0), "hook calls in the kernel sweep"
    if target is not None:  # as torch, grad() fills the .grad of a tensor that retains it (if reached)
        _check_retained(vals[target], target in reached, kernel[-1], "retained .grad after grad()")
    for k, g in zip(wrt_idx, kernel):
        fd = _fd_leaf(prog, outs, cots, k) if k < n else _fd_node(prog, outs, cots, k)
        _assert_close(g, fd, 1e-5, 1e-6, f"kernel grad wrt v{k} vs finite differences")

    # (b) the differentiable sweep against the compiled sweep
    graph = ad.autograd.grad(outputs, wrt, seeds, retain_graph=True, create_graph=True, allow_unused=True)
    if hooked is not None:
        assert calls[hooked] == (2 if hooked in reached else 0), "hook calls in the differentiable sweep"
    for k, g, gk in zip(wrt_idx, _grads_or_zeros(graph, wrt), kernel):
        _assert_close(g, gk, 1e-10, 1e-10, f"create_graph grad wrt v{k} vs kernel grad")
    if target is not None:
        _check_retained(vals[target], target in reached, kernel[-1], "retained .grad after create_graph grad()")

    # backward accumulates the same into the leaves' .grad, and into a retained intermediate
    ad.autograd.backward(outputs, seeds)
    for k, g in zip(wrt_idx, kernel):
        t = vals[k]
        got = t.grad
        if got is None:
            assert not np.any(g), f"v{k}.grad is None after backward"
        else:
            _assert_close(_np(got), g, 1e-10, 1e-10, f"backward .grad of v{k} vs grad")


def _hvp_setup(draw, shapes=None, leaf_rg=None, max_steps=8):
    prog = _draw_program(draw, shapes, leaf_rg, max_steps)
    outs, cots = _draw_outputs(draw, prog)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rg_leaves = [j for j in range(len(prog.leaves)) if prog.leaf_rg[j]]
    w = [rng.uniform(-1.0, 1.0, size=prog.leaves[j].shape) for j in rg_leaves]
    return prog, outs, cots, rg_leaves, w


def _first_grad(prog, outs, cots, rg_leaves, leaves=None, create_graph=False):
    vals = _run_ad(prog, leaves)
    wrt = [vals[j] for j in rg_leaves]
    grads = ad.autograd.grad(
        [vals[k] for k in outs], wrt, [ad.tensor(c) for c in cots], create_graph=create_graph, allow_unused=True
    )
    return vals, wrt, grads


def _hvp(prog, outs, cots, rg_leaves, w, create_graph):
    """grad of (grad . w) by grad of grad; the outer sweep compiled or differentiable (``create_graph``)."""
    _, wrt, grads = _first_grad(prog, outs, cots, rg_leaves, create_graph=True)
    terms = [(g * ad.tensor(wj)).sum() for g, wj in zip(grads, w) if g is not None and g.requires_grad]
    if not terms:
        return [np.zeros(t.shape) for t in wrt]
    s = terms[0]
    for t in terms[1:]:
        s = s + t
    return _grads_or_zeros(ad.autograd.grad(s, wrt, allow_unused=True, create_graph=create_graph), wrt)


def _fd_hvp(prog, outs, cots, rg_leaves, w, eps=1e-5):
    """Central differences of the (compiled) first gradient along ``w``."""

    def grad_at(sign):
        leaves = [v.copy() for v in prog.leaves]
        for j, wj in zip(rg_leaves, w):
            leaves[j] = leaves[j] + sign * eps * wj
        _, wrt, grads = _first_grad(prog, outs, cots, rg_leaves, leaves)
        return _grads_or_zeros(grads, wrt)

    return [(p - m) / (2 * eps) for p, m in zip(grad_at(1.0), grad_at(-1.0))]


@PROFILE
@given(st.data())
def test_hessian_vector_product_matches_finite_differences(data):
    prog, outs, cots, rg_leaves, w = _hvp_setup(data.draw)
    kernel = _hvp(prog, outs, cots, rg_leaves, w, create_graph=False)
    graph = _hvp(prog, outs, cots, rg_leaves, w, create_graph=True)
    fd = _fd_hvp(prog, outs, cots, rg_leaves, w)
    for j, hk, hg, hf in zip(rg_leaves, kernel, graph, fd):
        _assert_close(hk, hf, 1e-4, 1e-5, f"Hessian-vector product wrt v{j} vs finite differences")
        _assert_close(hg, hk, 1e-10, 1e-10, f"create_graph Hessian-vector product wrt v{j} vs kernel")


@PROFILE
@given(st.data())
def test_second_derivative_scalar_input(data):
    draw = data.draw
    extra = draw(st.lists(st.lists(st.integers(1, 3), max_size=2).map(tuple), max_size=2))
    shapes = [()] + extra
    prog, outs, cots, rg_leaves, w = _hvp_setup(draw, shapes, [True] + [False] * len(extra))
    assert rg_leaves == [0]
    w = [np.ones(())]
    (d2,) = _hvp(prog, outs, cots, rg_leaves, w, create_graph=False)
    (fd,) = _fd_hvp(prog, outs, cots, rg_leaves, w)
    assert d2.shape == ()
    _assert_close(d2, fd, 1e-4, 1e-5, "d2/dx2 vs finite differences of d/dx")


def _run_dual(prog, w):
    """The program in ``ad`` with each leaf that requires grad made dual (tangent ``w[k]``) at the current level."""
    tangents = iter(w)
    vals = []
    for v, r in zip(prog.leaves, prog.leaf_rg):
        t = ad.tensor(np.array(v, dtype=np.float64), requires_grad=r)
        vals.append(fwAD.make_dual(t, ad.tensor(next(tangents))) if r else t)
    for s in prog.steps:
        vals.append(s.ad_fn(*[vals[a] for a in s.args]))
    return vals


def _tangent(t):
    tangent = fwAD.unpack_dual(t).tangent if t is not None else None
    return None if tangent is None else _np(tangent)


@PROFILE
@given(st.data())
def test_forward_mode_matches_finite_differences(data):
    """Forward mode: the tangent of every output against central differences along ``w``, and forward over
    reverse (the tangent of the gradient) against the Hessian-vector product by grad of grad."""
    prog, outs, cots, rg_leaves, w = _hvp_setup(data.draw)

    def values_at(sign):
        leaves = [v.copy() for v in prog.leaves]
        for j, wj in zip(rg_leaves, w):
            leaves[j] = leaves[j] + sign * FD_EPS * wj
        return _run_np(prog, leaves)

    plus, minus = values_at(1.0), values_at(-1.0)
    with fwAD.dual_level():
        vals = _run_dual(prog, w)
        for k in outs:
            fd = (plus[k] - minus[k]) / (2 * FD_EPS)
            tangent = _tangent(vals[k])
            _assert_close(np.zeros(fd.shape) if tangent is None else tangent, fd, 1e-5, 1e-6, f"JVP of v{k}")
    with fwAD.dual_level():
        vals = _run_dual(prog, w)
        wrt = [vals[j] for j in rg_leaves]
        seeds = [ad.tensor(c) for c in cots]
        grads = ad.autograd.grad([vals[k] for k in outs], wrt, seeds, create_graph=True, allow_unused=True)
        fwd_rev = [_tangent(g) for g in grads]
    rev_rev = _hvp(prog, outs, cots, rg_leaves, w, create_graph=False)
    for j, hf, hr in zip(rg_leaves, fwd_rev, rev_rev):
        _assert_close(np.zeros(hr.shape) if hf is None else hf, hr, 1e-9, 1e-9, f"forward-over-reverse Hw wrt v{j}")


# --- every op in many programs, and a randomized profile ----------------------------------------------------

PER_OP_EXAMPLES = int(os.environ.get("AD_HYPOTHESIS_PER_OP", "6"))


@contextlib.contextmanager
def _forcing(op):
    _FORCED.append(op)
    try:
        yield
    finally:
        _FORCED.pop()


@pytest.mark.parametrize("op", sorted(STEP_OPS))
@settings(PROFILE, max_examples=min(PROFILE.max_examples, PER_OP_EXAMPLES))
@given(data=st.data())
def test_each_op_in_random_programs(op, data):
    """Each op a program can draw, in ``PER_OP_EXAMPLES`` random programs that contain it (once or several
    times, among other ops): reverse mode (both sweeps) and forward mode against central differences. In the
    100 fixed examples of the other properties an op is drawn only a few times (relu: once)."""
    with _forcing(op):
        if data.draw(st.booleans(), label="forward mode"):
            test_forward_mode_matches_finite_differences.hypothesis.inner_test(data)
        else:
            test_grad_matches_finite_differences.hypothesis.inner_test(data)


# The randomized profile: new programs on every run (a seed from AD_HYPOTHESIS_SEED, else a fresh one), a
# small budget so that it fits CI. The seed is printed in pytest's header (tests/conftest.py) and in the
# failure report: rerun with AD_HYPOTHESIS_SEED=<seed> to reproduce.
RANDOM_SEED = int(os.environ.get("AD_HYPOTHESIS_SEED") or np.random.SeedSequence().entropy % 2**32)
RANDOM_EXAMPLES = int(os.environ.get("AD_HYPOTHESIS_RANDOM_EXAMPLES", "30"))
settings.register_profile(
    "random",
    max_examples=RANDOM_EXAMPLES,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_HEALTH,
    database=None,
)
RANDOM = settings.get_profile("random")


@pytest.mark.parametrize(
    "prop",
    [
        "test_grad_matches_finite_differences",
        "test_forward_mode_matches_finite_differences",
        "test_hessian_vector_product_matches_finite_differences",
    ],
)
def test_randomized_programs(prop):
    """The properties above on programs that differ from run to run (``RANDOM_SEED``)."""
    inner = globals()[prop].hypothesis.inner_test

    @seed(RANDOM_SEED)
    @settings(RANDOM)
    @given(data=st.data())
    def run(data):
        note(f"AD_HYPOTHESIS_SEED={RANDOM_SEED}")
        inner(data)

    try:
        run()
    except Exception as e:
        e.add_note(f"randomized profile: rerun with AD_HYPOTHESIS_SEED={RANDOM_SEED}")
        raise


@pytest.mark.parametrize("profile", ["ci", "long"])
def test_profiles_are_registered(profile):
    s = settings.get_profile(profile)
    assert s.deadline is None
    assert s.max_examples == (100 if profile == "ci" else 10_000)
    assert s.derandomize == (profile == "ci")


@contextlib.contextmanager
def _small_tapes(capacity):
    """Tapes of ``capacity`` elements, so that every program spans several tapes (imports, externs, the
    hand-over of cotangents between tapes). White-box: it sets ``ad.tape.DEFAULT_CAPACITY``."""
    tape_mod = importlib.import_module("ad.tape")
    if not hasattr(tape_mod, "DEFAULT_CAPACITY") or not hasattr(tape_mod, "_state"):
        pytest.skip("ad.tape has no DEFAULT_CAPACITY / _state to shrink")
    saved = tape_mod.DEFAULT_CAPACITY
    tape_mod.DEFAULT_CAPACITY = capacity
    tape_mod.reset_current()
    _SMALL_TAPES.append(capacity)
    try:
        yield
    finally:
        _SMALL_TAPES.pop()
        tape_mod.DEFAULT_CAPACITY = saved
        tape_mod.reset_current()


@pytest.mark.skipif(_bug("unary-import-overflow"), reason=KNOWN_BUGS.get("unary-import-overflow", ""))
@settings(PROFILE, max_examples=min(PROFILE.max_examples, 50))
@given(st.data())
def test_grad_matches_finite_differences_across_small_tapes(data):
    """As ``test_grad_matches_finite_differences``, with programs spread over tapes of 24 elements."""
    with _small_tapes(24):
        test_grad_matches_finite_differences.hypothesis.inner_test(data)


@contextlib.contextmanager
def _big_rows(big_row, parallel_min):
    """Every tensor of ``big_row`` elements or more takes the big-row paths (rows swept from Python, values
    not copied into the arena, cotangent regions left dirty until their first write) and every one of
    ``parallel_min`` or more the chunked, multithreaded ones. White-box: it sets the thresholds in every loaded
    ``ad`` module that holds them (``ad.tape``'s own and each ``from .tape import BIG_ROW``): a module left out
    (``ad.ops.structural`` and ``ad.ops.dense`` were, after ad/ops was split) decides with the old threshold
    while the tape does not copy the big values into the arena, and its rows read garbage."""
    import sys

    first = [importlib.import_module(f"ad.{name}") for name in ("tape", "parallel")]
    modules = first + [
        m
        for name, m in sorted(sys.modules.items())
        if name.startswith("ad.") and m is not None and m not in first
        and any(isinstance(getattr(m, k, None), int) for k in ("BIG_ROW", "PARALLEL_MIN"))
    ]
    saved = [(m, name, getattr(m, name)) for m in modules for name in ("BIG_ROW", "PARALLEL_MIN") if hasattr(m, name)]
    for m, name, _ in saved:
        setattr(m, name, big_row if name == "BIG_ROW" else parallel_min)
    modules[0].reset_current()
    try:
        yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)
        modules[0].reset_current()


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 50))
@given(st.data())
def test_grad_matches_finite_differences_with_big_rows(data):
    """As ``test_grad_matches_finite_differences``, with the big-row thresholds lowered to a few elements, so
    that the programs exercise the numpy/BLAS rows, the fused and chunked kernels and the arena's dirty big
    regions (run after other programs, so the arena pool holds old values)."""
    with _big_rows(4, 8):
        test_grad_matches_finite_differences.hypothesis.inner_test(data)


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 50))
@given(st.data())
def test_forward_mode_matches_finite_differences_with_big_rows(data):
    """As ``test_forward_mode_matches_finite_differences`` (tangents, and forward over reverse), with the
    big-row thresholds lowered: the compiled JVPs in chunks, the fused dual matmul, the big rows' rules."""
    with _big_rows(4, 8):
        test_forward_mode_matches_finite_differences.hypothesis.inner_test(data)


# ---------------------------------------------------------------------------------------------------------
# reproducers of the bugs these properties found (xfail while listed in KNOWN_BUGS)


def _repro_where_0d_cond():
    x = ad.tensor(0.7, requires_grad=True)
    (g,) = ad.autograd.grad(ad.where(np.array(True), x, 2.0), x, create_graph=True)
    assert g.shape == ()
    (g,) = ad.autograd.grad(x**x, x, create_graph=True)
    (h,) = ad.autograd.grad(g, x, create_graph=True)
    assert h.shape == ()


def _repro_matmul_1d_batch1():
    a = ad.tensor([1.0, 2.0], requires_grad=True)
    assert (a @ ad.ones(1, 2, 3)).shape == (1, 3)  # torch.Size([1, 3]), as numpy
    assert (ad.ones(1, 1, 2, requires_grad=True) @ ad.tensor([1.0, 2.0])).shape == (1, 1)


def _repro_0d_numpy_scalar():
    np.testing.assert_allclose(ad.rsqrt(ad.tensor(4.0)).item(), 0.5)
    np.testing.assert_allclose(ad.sin(ad.tensor(0.0)).add_(1.0).item(), 1.0)
    np.testing.assert_allclose((ad.tensor(1.0) * 2.0).mul_(3.0).item(), 6.0)
    np.testing.assert_allclose(ad.sin(ad.tensor(2.0)).clamp(-0.5, 0.5).item(), 0.5)


def _repro_0d_leaf_sum():
    x = ad.tensor(1.0, requires_grad=True)
    (g,) = ad.autograd.grad([x, x, x], x)
    assert g.item() == 3.0
    ad.autograd.backward([x, x * 2.0])
    (x * 3.0).backward()
    assert x.grad.item() == 6.0  # torch: tensor(6.)


def _repro_unary_import_overflow():
    tape_mod = importlib.import_module("ad.tape")
    ad.tensor(np.zeros(4), requires_grad=True) * 1.0  # a current float64 tape exists
    tape = tape_mod._state.current[np.dtype(np.float64)]
    tape.alloc(tape.capacity - tape.used - 199)  # 199 left: room for a result of 100, not for it and its operand
    leaf = ad.tensor(np.ones(100), requires_grad=True)
    assert ad.sin(leaf).shape == (100,)  # ValueError: could not broadcast ... (100,) into shape (99,)


def _repro_inplace_false_modified():
    x = ad.tensor([0.5, 1.5], requires_grad=True)
    w = ad.tensor([2.0, 3.0], requires_grad=True)
    y = x.sin()
    y.add_(1.0)  # sin's backward needs x, not y: torch computes the gradient
    np.testing.assert_allclose(_np(ad.autograd.grad(y.sum(), x)[0]), np.cos([0.5, 1.5]))
    y = x.clone()
    y.mul_(w)  # torch: d/dx = w, d/dw = x
    gx, gw = ad.autograd.grad(y.sum(), [x, w])
    np.testing.assert_allclose(_np(gx), [2.0, 3.0])
    np.testing.assert_allclose(_np(gw), [0.5, 1.5])
    y = x * 1.0
    y[0:1] = w[1:2]
    gx, gw = ad.autograd.grad(y.sum(), [x, w])
    np.testing.assert_allclose(_np(gx), [0.0, 1.0])
    np.testing.assert_allclose(_np(gw), [0.0, 1.0])
    y = x.clone()
    y.clamp_(-1.0, 1.0)
    np.testing.assert_allclose(_np(ad.autograd.grad(y.sum(), x)[0]), [1.0, 0.0])


def _repro_inplace_across_tapes():
    x = ad.tensor([0.3, -0.8], requires_grad=True)
    y = x.clone()
    (x * 2.0).sum().backward()  # any backward in between retires the tape y lives on
    y.add_(x)  # y = 2 x
    np.testing.assert_allclose(_np(ad.autograd.grad(y.sum(), x)[0]), [2.0, 2.0])  # ad: [1, 1]
    y = x.sin()
    (x * 2.0).sum().backward()
    y.mul_(3.0)
    np.testing.assert_allclose(_np(ad.autograd.grad(y.sum(), x)[0]), 3 * np.cos([0.3, -0.8]))  # ad: raises


REPRODUCERS = {
    "where-0d-cond": _repro_where_0d_cond,
    "matmul-1d-batch1": _repro_matmul_1d_batch1,
    "0d-numpy-scalar": _repro_0d_numpy_scalar,
    "0d-leaf-sum": _repro_0d_leaf_sum,
    "unary-import-overflow": _repro_unary_import_overflow,
    "inplace-across-tapes": _repro_inplace_across_tapes,
    "inplace-false-modified": _repro_inplace_false_modified,
}


# what each reproducer raises while its bug is there (so that an xfail does not hide another failure)
REPRODUCER_RAISES = {
    "where-0d-cond": AssertionError,
    "matmul-1d-batch1": AssertionError,
    "0d-numpy-scalar": TypeError,
    "0d-leaf-sum": TypeError,
    "unary-import-overflow": ValueError,
    "inplace-across-tapes": AssertionError,
    "inplace-false-modified": RuntimeError,
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(reason=KNOWN_BUGS[name], raises=REPRODUCER_RAISES[name], strict=True),
        )
        if _bug(name)
        else name
        for name in REPRODUCERS
    ],
)
def test_known_bug(name):
    REPRODUCERS[name]()


def test_every_known_bug_has_a_reproducer():
    assert set(KNOWN_BUGS) <= set(REPRODUCERS)
