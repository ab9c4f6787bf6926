"""Benchmark workloads, written once for every library.

The mathematics of each workload is a plain function of a library namespace `lib`, using only names that
`ad` and `torch` share (`lib.sin`, `lib.tanh`, `lib.exp`, `lib.matmul`, `lib.stack`,
`lib.nn.functional.linear`, `lib.nn.functional.cross_entropy`, operators, `.sum()`); for jax, `lib` is a
small shim over `jax.numpy`. Inputs are always built from numpy arrays drawn from a fixed seed, so every
library sees the same numbers and the same dtype (`ad` defaults to float64 like numpy, torch to float32, so
nothing relies on defaults).

How a workload is differentiated is a *pattern* (a `Workload` subclass): `Reverse` (record a graph, backward
into the leaves' `.grad`), `DoubleBackward` (grad with `create_graph=True`, then grad of grad),
`ForwardOverReverse`, `Hessian` and `JVP` (forward mode). Each pattern has a torch-style implementation,
shared by `ad` and `torch`, and a functional one for jax (`jax.vjp`, `jax.jvp`, `jax.grad`, run eagerly, op
by op, as `ad` and `torch` are).

A `Workload` runs one repetition as a sequence of named steps (`steps`); `repetition()` times the ones
listed in `timed` and does the untimed preparation (dropping the previous repetition's graph, resetting
`.grad`) first. `outputs()` returns the results as numpy arrays, for checking that the libraries agree.

Devices (`load_backend(name, device)`): on "cuda" the backend puts every input, parameter and constant on the
GPU (`ad` and torch: `device="cuda"`; jax: its default device, which must be a GPU), every step ends with the
library's device synchronization (`ad.cuda.synchronize()`, `torch.cuda.synchronize()`; jax's steps block on
their results), so that a step's wall time includes its kernels, and `outputs()` copies the results to the
host after checking that they were computed on the GPU. A library that has no GPU raises `Unavailable`: it
is never measured on the CPU in a GPU run.

The workloads (keys as printed by `compare.py`):

- W1 chain-small: 2,000 elementwise ops on a 16-element float64 leaf (the cycle mul by a constant tensor c
  in [0.999, 1], add -1.0, sin, tanh, exp has an attracting fixed point near 0.95: values stay in (0.1,
  1.1), and gradients stay normal floats, neither overflowing nor denormal), loss = sum.
- W2 mlp-step: batch 64, 784-512-512-10, tanh, cross-entropy (log-softmax), float32 and float64.
- W3 big-elementwise: the same cycle, 8 ops on 4,000,000 float64 elements, loss = sum.
- W4 hvp: f(x) = sum(tanh(A x)), A 256x256; Hessian-vector product by double backward, by
  forward-over-reverse, and the full Hessian (`autograd.functional.hessian`).
- W5 jvp: forward mode (`autograd.forward_ad`) through the chains of W1 and W3.
- W6 many-leaves: 2,000 leaves of 8 float64 elements, loss = stack([sum(tanh(p_i * c_i))]).sum(); backward
  only (asv), forward + backward (`compare.py`).
- W7 scalar second derivative: 200 steps of x <- x - 0.1 sin(x) x on a 0-dim leaf, d2/dx2 by double
  backward.
- W8 conv-step: conv2d forward and backward, batch 32, 3 -> 16 -> 32 channels, 32x32 images, 3x3 kernels
  (padding 1), tanh between the two convolutions, loss = sum; float32 and float64.
- first call: a fresh interpreter from `import <lib>` to its first finished backward (`first_call`).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("ad", "torch", "jax", "ad.compile", "jax.jit")
DEVICES = ("cpu", "cuda")
# Compiled variants: the same library with the step traced or recorded once and replayed (`Reverse` only):
# "ad.compile" runs the step through `ad.compile` (forward replayed, `.backward()` as usual), "jax.jit" runs
# `jax.jit(jax.value_and_grad(step))` (forward and backward in one call, timed as "forward").
COMPILED = ("ad.compile", "jax.jit")
SEED = 0

# Constants of the elementwise cycle (see the module docstring).
CHAIN_SHIFT = -1.0
CHAIN_SCALE_RANGE = (0.999, 1.0)


class Unavailable(NotImplementedError):
    """A library, or a feature that a workload needs from it, is missing.

    It derives from NotImplementedError so that asv reports a benchmark whose setup raises it as skipped.
    """


def cpu_count() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------------------
# Libraries
# ------------------------------------------------------------------------------------------------------------

class Backend:
    """A library as the workloads see it: its namespace `ns`, the device its tensors live on, and how to move
    numpy arrays in and out."""

    functional = False  # True for jax: no `.backward()`, derivatives are transformations of functions
    compiled = False  # True for "ad.compile" and "jax.jit" (see COMPILED)

    def __init__(self, name: str, ns, device: str = "cpu"):
        self.name = name
        self.ns = ns
        self.device = device
        # called at the end of every step on a GPU (Workload.repetition), so that a step's time includes the
        # kernels it launched; None on the CPU, where every library is synchronous
        self.synchronize = None if device == "cpu" else ns.cuda.synchronize

    def const(self, array: np.ndarray):
        """A tensor that does not require grad, holding `array`, on the backend's device."""
        t = self.ns.from_numpy(np.array(array, order="C"))  # (not np.ascontiguousarray: it makes 0-d arrays 1-d)
        return t if self.device == "cpu" else t.to(self.device)

    def leaf(self, array: np.ndarray):
        """A leaf tensor that requires grad, holding a copy of `array`, on the backend's device."""
        data = np.array(array, order="C")  # (a copy; np.ascontiguousarray would make a 0-d array 1-d)
        if self.device == "cpu":
            return self.ns.tensor(data, requires_grad=True)
        return self.ns.tensor(data, requires_grad=True, device=self.device)

    def device_of(self, value) -> str:
        return value.device.type

    def to_numpy(self, value) -> np.ndarray:
        """A host copy of `value`; a GPU backend first checks that `value` was computed on the GPU."""
        if self.device != "cpu" and self.device_of(value) != self.device:
            raise RuntimeError(f"{self.name}: a result lives on {self.device_of(value)}, not on {self.device}")
        return np.array(value.detach().cpu().numpy())

    def sync(self, *values) -> None:
        """Wait until `values` are computed (the CPU libraries are synchronous)."""

    def version(self) -> str:
        return str(getattr(self.ns, "__version__", "unknown"))

    def device_name(self) -> str | None:
        """The GPU's name as the library reports it; None on the CPU."""
        if self.device == "cpu":
            return None
        if self.name == "torch":
            return self.ns.cuda.get_device_name()
        import numba
        from numba import cuda

        if numba.config.ENABLE_CUDASIM:
            return "numba-cuda simulator (NUMBA_ENABLE_CUDASIM=1)"
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)


class JaxBackend(Backend):
    """jax through a namespace shim offering the names the workloads use; eager (no jit), float64 enabled.

    On "cuda" its arrays live on jax's default device, which must then be a GPU (`Unavailable` otherwise)."""

    functional = True

    def __init__(self, name="jax", device="cpu"):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        if device == "cuda" and jax.default_backend() != "gpu":
            raise Unavailable(
                f"jax {jax.__version__} sees no GPU (its default backend is {jax.default_backend()})"
            )
        self.jax = jax

        def linear(x, w, b=None):
            y = jnp.matmul(x, w.T)
            return y if b is None else y + b

        def cross_entropy(logits, target):
            logp = jax.nn.log_softmax(logits, axis=-1)
            return -jnp.take_along_axis(logp, target[:, None], axis=1).mean()

        ns = SimpleNamespace(
            __version__=jax.__version__, sin=jnp.sin, tanh=jnp.tanh, exp=jnp.exp, matmul=jnp.matmul,
            stack=jnp.stack, float32=jnp.float32, float64=jnp.float64, from_numpy=jnp.asarray,
            nn=SimpleNamespace(functional=SimpleNamespace(linear=linear, cross_entropy=cross_entropy)),
        )
        super().__init__(name, ns)
        self.device = device  # (self.synchronize stays None: jax's steps block on their own results)
        self.compiled = name == "jax.jit"

    def const(self, array):
        return self.ns.from_numpy(np.array(array, order="C"))

    def leaf(self, array):
        return self.ns.from_numpy(np.array(array, order="C"))

    def device_of(self, value):
        platforms = {d.platform for d in value.devices()}
        return "cuda" if platforms == {"gpu"} else "/".join(sorted(platforms))

    def to_numpy(self, value):
        if self.device != "cpu" and self.device_of(value) != self.device:
            raise RuntimeError(f"{self.name}: a result lives on {self.device_of(value)}, not on {self.device}")
        return np.array(value)

    def sync(self, *values):
        self.jax.block_until_ready(values)

    def device_name(self):
        return None if self.device == "cpu" else self.jax.devices()[0].device_kind


_BACKENDS: dict[tuple[str, str], Backend] = {}


def _import_ad():
    """Import `ad`, from the installed package or else from this checkout; it must at least offer `tensor`."""
    try:
        ad = importlib.import_module("ad")
    except ImportError:
        if str(REPO_ROOT) in sys.path:
            raise
        sys.path.append(str(REPO_ROOT))
        ad = importlib.import_module("ad")
    if not hasattr(ad, "tensor"):
        raise Unavailable(f"`ad` at {getattr(ad, '__path__', '?')} is incomplete (it has no `ad.tensor`)")
    return ad


def load_backend(name: str, device: str = "cpu") -> Backend:
    """The backend of library `name` ("ad", "torch" or "jax", or a COMPILED variant) on `device` ("cpu" or
    "cuda"); `Unavailable` if it cannot be imported, or if `device` is "cuda" and the library has no GPU.

    torch runs on its default number of threads, or on the number in the environment variable
    AD_BENCH_TORCH_THREADS (`torch.set_num_threads`).
    """
    if (name, device) in _BACKENDS:
        return _BACKENDS[name, device]
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    try:
        if name in ("ad", "ad.compile"):
            if name == "ad.compile" and device == "cuda":
                # (ad/compile.py: a call with a CUDA tensor runs fn eagerly; its column would repeat ad's)
                raise Unavailable("ad.compile records and replays CPU tapes only: with CUDA tensors it runs eagerly")
            ad = _import_ad()
            if device == "cuda" and not ad.cuda.is_available():
                raise Unavailable("numba.cuda sees no GPU")
            if name == "ad.compile" and not hasattr(ad, "compile"):
                raise Unavailable("this `ad` has no ad.compile")
            backend = Backend(name, ad, device)
            backend.compiled = name == "ad.compile"
        elif name == "torch":
            import torch

            if device == "cuda" and not torch.cuda.is_available():
                raise Unavailable(f"torch {torch.__version__} sees no GPU (a CPU build, or no driver)")
            if os.environ.get("AD_BENCH_TORCH_THREADS"):
                torch.set_num_threads(int(os.environ["AD_BENCH_TORCH_THREADS"]))
            backend = Backend("torch", torch, device)
        elif name in ("jax", "jax.jit"):
            backend = JaxBackend(name, device)
        else:
            raise ValueError(f"unknown library {name!r}; expected one of {LIBRARIES}")
    except Unavailable:
        raise
    except Exception as exc:  # ImportError, but also a broken package that fails while importing
        raise Unavailable(f"cannot import {name}: {type(exc).__name__}: {exc}") from exc
    _BACKENDS[name, device] = backend
    return backend


def require(backend: Backend, dotted: str):
    """`backend.ns.<dotted>`, or `Unavailable` naming what is missing."""
    obj = backend.ns
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise Unavailable(f"{backend.name} has no {backend.name}.{dotted}")
        obj = getattr(obj, part)
    return obj


# ------------------------------------------------------------------------------------------------------------
# The mathematics, once for all libraries
# ------------------------------------------------------------------------------------------------------------

def elementwise_chain(lib, x, c, n_ops: int):
    """`n_ops` elementwise ops on `x`, cycling: mul by the constant tensor `c`, add -1.0, sin, tanh, exp."""
    for i in range(n_ops):
        k = i % 5
        if k == 0:
            x = x * c
        elif k == 1:
            x = x + CHAIN_SHIFT
        elif k == 2:
            x = lib.sin(x)
        elif k == 3:
            x = lib.tanh(x)
        else:
            x = lib.exp(x)
    return x


def mlp_loss(lib, x, target, w1, b1, w2, b2, w3, b3):
    """Cross-entropy of a tanh MLP (`linear` stores weights as (out, in), as torch does)."""
    F = lib.nn.functional
    h = lib.tanh(F.linear(x, w1, b1))
    h = lib.tanh(F.linear(h, w2, b2))
    return F.cross_entropy(F.linear(h, w3, b3), target)


def conv_loss(lib, x, w1, b1, w2, b2):
    """Two 3x3 convolutions (padding 1) with tanh between, summed."""
    F = lib.nn.functional
    h = lib.tanh(F.conv2d(x, w1, b1, padding=1))
    return F.conv2d(h, w2, b2, padding=1).sum()


def many_leaves_loss(lib, leaves, consts):
    """sum_i sum(tanh(p_i * c_i)), the per-leaf scalars summed through `stack`."""
    return lib.stack([lib.tanh(p * c).sum() for p, c in zip(leaves, consts)]).sum()


def tanh_layer_sum(lib, a, x):
    """f(x) = sum(tanh(A x))."""
    return lib.tanh(lib.matmul(a, x)).sum()


def scalar_iteration(lib, x, n_steps: int):
    """`n_steps` steps of x <- x - 0.1 sin(x) x (from x0 = 0.7, x decreases slowly towards 0)."""
    for _ in range(n_steps):
        x = x - 0.1 * lib.sin(x) * x
    return x


# ------------------------------------------------------------------------------------------------------------
# Patterns: how a workload is differentiated and timed
# ------------------------------------------------------------------------------------------------------------

class Workload:
    """One workload bound to one library; see the module docstring for the protocol."""

    steps: tuple[str, ...] = ()
    timed: tuple[str, ...] = ()

    def __init__(self, backend: Backend):
        if backend.compiled and not isinstance(self, Reverse):
            raise Unavailable(f"{backend.name}: only the reverse-mode steps are measured compiled")
        self.backend = backend
        self.lib = backend.ns

    def prepare(self) -> None:
        """Untimed, before each repetition: release the previous repetition's results."""

    def outputs(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run_steps(self, names) -> None:
        for name in names:
            getattr(self, name)()

    def repetition(self, clock=time.perf_counter) -> dict[str, float]:
        """Run one repetition: the seconds of each timed step, and their "total" if more than one is timed.

        On a GPU every step ends with the device's synchronization: a timed step's time includes the kernels
        it launched, and an untimed step's kernels do not spill into the next timed one."""
        self.prepare()
        synchronize = self.backend.synchronize
        seconds = {}
        for name in self.steps:
            step = getattr(self, name)
            if name in self.timed:
                start = clock()
                step()
                if synchronize is not None:
                    synchronize()
                seconds[name] = clock() - start
            else:
                step()
                if synchronize is not None:
                    synchronize()
        if len(seconds) > 1:
            seconds["total"] = sum(seconds.values())
        return seconds


class Reverse(Workload):
    """Record `fn(lib, leaves, consts)` (a scalar loss), then backward into the leaves.

    Steps "forward" and "backward"; with `timed=("backward",)` the forward runs untimed.
    """

    steps = ("forward", "backward")

    def __init__(self, backend, fn, leaves, consts, timed=("forward", "backward")):
        super().__init__(backend)
        self.fn = fn
        self.timed = tuple(timed)
        self.leaves = [backend.leaf(a) for a in leaves]
        self.consts = [backend.const(a) for a in consts]
        self.loss = self.grads = self._vjp = None
        lib = self.lib
        if backend.compiled and backend.functional:  # jax.jit: the whole step, one compiled call
            jax = backend.jax
            self._step = jax.jit(jax.value_and_grad(lambda ps, cs: fn(lib, list(ps), list(cs))))
        elif backend.compiled:  # ad.compile: the forward replayed from its recorded tape
            self._step = backend.ns.compile(lambda leaves, consts: fn(lib, leaves, consts))

    def prepare(self):
        self.loss = self.grads = self._vjp = None
        if not self.backend.functional:
            for p in self.leaves:
                p.grad = None

    def forward(self):
        if self.backend.compiled and self.backend.functional:
            self.loss, self.grads = self._step(tuple(self.leaves), tuple(self.consts))
            self.backend.sync(self.loss, self.grads)
        elif self.backend.compiled:
            self.loss = self._step(self.leaves, self.consts)
        elif self.backend.functional:
            fn, lib, consts = self.fn, self.lib, self.consts
            self.loss, self._vjp = self.backend.jax.vjp(lambda *ps: fn(lib, list(ps), consts), *self.leaves)
            self.backend.sync(self.loss)
        else:
            self.loss = self.fn(self.lib, self.leaves, self.consts)

    def backward(self):
        if self.backend.compiled and self.backend.functional:
            return  # (jax.jit: computed with the forward)
        if self.backend.functional:
            self.grads = self._vjp(self.backend.jax.numpy.ones_like(self.loss))
            self.backend.sync(self.grads)
        else:
            self.loss.backward()

    def outputs(self):
        to_numpy = self.backend.to_numpy
        grads = self.grads if self.backend.functional else [p.grad for p in self.leaves]
        if any(g is None for g in grads):
            raise RuntimeError("backward left a leaf's .grad at None")
        return {"loss": to_numpy(self.loss), "grad": np.concatenate([to_numpy(g).ravel() for g in grads])}


class DoubleBackward(Workload):
    """y = f(lib, x); g = grad(y, x, create_graph=True); then grad((g * v).sum(), x), or grad(g, x).

    For the jax backend a single step "total" computes the same with `jax.grad`.
    """

    def __init__(self, backend, f, x, v=None):
        super().__init__(backend)
        self.f = f
        self.x = backend.leaf(x)
        self.v = None if v is None else backend.const(v)
        if backend.functional:
            self.steps = self.timed = ("total",)
        else:
            require(backend, "autograd.grad")
            self.steps = self.timed = ("forward", "grad", "grad2")
        self.y = self.g = self.h = None

    def prepare(self):
        self.y = self.g = self.h = None

    def forward(self):
        self.y = self.f(self.lib, self.x)

    def grad(self):
        (self.g,) = self.lib.autograd.grad(self.y, self.x, create_graph=True)

    def grad2(self):
        target = self.g if self.v is None else (self.g * self.v).sum()
        (self.h,) = self.lib.autograd.grad(target, self.x)

    def total(self):  # jax
        jax, f, lib, v = self.backend.jax, self.f, self.lib, self.v
        df = jax.grad(lambda x: f(lib, x))
        self.y = f(lib, self.x)
        self.g = df(self.x)
        self.h = jax.grad(df)(self.x) if v is None else jax.grad(lambda x: (df(x) * v).sum())(self.x)
        self.backend.sync(self.y, self.g, self.h)

    def outputs(self):
        to_numpy = self.backend.to_numpy
        return {"y": to_numpy(self.y), "grad": to_numpy(self.g), "grad2": to_numpy(self.h)}


class ForwardOverReverse(Workload):
    """Hessian-vector product: the tangent (direction v, `autograd.forward_ad`) of grad(f(x), x).

    The grad is taken without `create_graph`, the minimal form (what `torch.func.jvp(torch.func.grad(f))`
    computes): the tangent flows through the reverse rules, which need not be recorded for a later backward.
    Both ad and torch support it (earlier versions of this suite passed `create_graph=True`, which records the
    reverse rules as well; ad then took about 15% longer).
    """

    steps = timed = ("total",)

    def __init__(self, backend, f, x, v):
        super().__init__(backend)
        if not backend.functional:
            require(backend, "autograd.forward_ad")
            require(backend, "autograd.grad")
        self.f = f
        self.x = backend.leaf(x)
        self.v = backend.const(v)
        self.g = self.hv = None

    def prepare(self):
        self.g = self.hv = None

    def total(self):
        lib, f = self.lib, self.f
        if self.backend.functional:
            jax = self.backend.jax
            self.g, self.hv = jax.jvp(jax.grad(lambda x: f(lib, x)), (self.x,), (self.v,))
            self.backend.sync(self.g, self.hv)
            return
        fwd = lib.autograd.forward_ad
        with fwd.dual_level():
            xd = fwd.make_dual(self.x, self.v)
            (g,) = lib.autograd.grad(f(lib, xd), xd)
            self.g, self.hv = fwd.unpack_dual(g)
        if self.hv is None:
            raise Unavailable(f"{self.backend.name}: forward over reverse gave the gradient no tangent")

    def outputs(self):
        return {"grad": self.backend.to_numpy(self.g), "hvp": self.backend.to_numpy(self.hv)}


class Hessian(Workload):
    """The full Hessian of f at x by `autograd.functional.hessian` (jax: `jax.hessian`)."""

    steps = timed = ("total",)

    def __init__(self, backend, f, x):
        super().__init__(backend)
        if not backend.functional:
            require(backend, "autograd.functional.hessian")
        self.f = f
        self.x = backend.const(x)
        self.h = None

    def prepare(self):
        self.h = None

    def total(self):
        lib, f = self.lib, self.f
        if self.backend.functional:
            self.h = self.backend.jax.hessian(lambda x: f(lib, x))(self.x)
            self.backend.sync(self.h)
        else:
            self.h = lib.autograd.functional.hessian(lambda x: f(lib, x), self.x)

    def outputs(self):
        return {"hessian": self.backend.to_numpy(self.h)}


class JVP(Workload):
    """Forward mode: value and tangent of f(lib, x) in direction t (`autograd.forward_ad`; jax: `jax.jvp`)."""

    steps = timed = ("total",)

    def __init__(self, backend, f, x, t):
        super().__init__(backend)
        if not backend.functional:
            require(backend, "autograd.forward_ad")
        self.f = f
        self.x = backend.const(x)
        self.t = backend.const(t)
        self.y = self.ty = None

    def prepare(self):
        self.y = self.ty = None

    def total(self):
        lib, f = self.lib, self.f
        if self.backend.functional:
            self.y, self.ty = self.backend.jax.jvp(lambda x: f(lib, x), (self.x,), (self.t,))
            self.backend.sync(self.y, self.ty)
            return
        fwd = lib.autograd.forward_ad
        with fwd.dual_level():
            y = f(lib, fwd.make_dual(self.x, self.t))
            self.y, self.ty = fwd.unpack_dual(y)

    def outputs(self):
        return {"y": self.backend.to_numpy(self.y), "tangent": self.backend.to_numpy(self.ty)}


# ------------------------------------------------------------------------------------------------------------
# Workload builders (inputs from a fixed seed)
# ------------------------------------------------------------------------------------------------------------

def _rng(salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([SEED, salt])


def _chain_inputs(size: int, dtype: str):
    rng = _rng(1)
    x = rng.uniform(0.0, 1.0, size).astype(dtype)
    c = rng.uniform(*CHAIN_SCALE_RANGE, size).astype(dtype)
    return x, c


def chain_small(backend, n_ops=2000, size=16, dtype="float64") -> Reverse:
    """W1 (and, with other sizes, the per-op cost sweep of `compare.py --plot`)."""
    x, c = _chain_inputs(size, dtype)
    fn = lambda lib, leaves, consts: elementwise_chain(lib, leaves[0], consts[0], n_ops).sum()
    return Reverse(backend, fn, [x], [c])


def mlp_step(backend, dtype="float32", batch=64, sizes=(784, 512, 512, 10)) -> Reverse:
    """W2: one training step's forward and backward."""
    rng = _rng(2)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype))
        params.append(rng.uniform(-bound, bound, fan_out).astype(dtype))
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    target = rng.integers(0, sizes[-1], batch).astype(np.int64)
    fn = lambda lib, leaves, consts: mlp_loss(lib, consts[0], consts[1], *leaves)
    return Reverse(backend, fn, params, [x, target])


def conv_step(backend, dtype="float32", batch=32, channels=(3, 16, 32), size=32, kernel=3) -> Reverse:
    """W8: forward and backward of two conv2d layers (the issue's convolution benchmark)."""
    rng = _rng(8)
    params = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        bound = 1.0 / np.sqrt(c_in * kernel * kernel)
        params.append(rng.uniform(-bound, bound, (c_out, c_in, kernel, kernel)).astype(dtype))
        params.append(rng.uniform(-bound, bound, c_out).astype(dtype))
    x = rng.standard_normal((batch, channels[0], size, size)).astype(dtype)
    fn = lambda lib, leaves, consts: conv_loss(lib, consts[0], *leaves)
    return Reverse(backend, fn, params, [x])


NORMS = ("batch_norm", "layer_norm", "group_norm", "instance_norm")


def norm_loss(lib, kind, x, w, b, c):
    """sum(norm(x) * c): one normalization at W8's first-layer activations (issue 13's normalization speed)."""
    F = lib.nn.functional
    if kind == "batch_norm":
        y = F.batch_norm(x, None, None, w, b, training=True)
    elif kind == "layer_norm":
        y = F.layer_norm(x, tuple(x.shape[1:]))
    elif kind == "group_norm":
        y = F.group_norm(x, 4, w, b)
    else:
        y = F.instance_norm(x, weight=w, bias=b)
    return (y * c).sum()


def norm_step(backend, kind="batch_norm", dtype="float32", batch=32, channels=16, size=32) -> Reverse:
    """Forward and backward of one normalization layer on (32, 16, 32, 32) activations (W8's shapes)."""
    rng = _rng(9)
    x = rng.standard_normal((batch, channels, size, size)).astype(dtype)
    w = rng.uniform(0.5, 1.5, channels).astype(dtype)
    b = rng.standard_normal(channels).astype(dtype)
    c = rng.standard_normal(x.shape).astype(dtype)
    return Reverse(backend, lambda lib, leaves, consts: norm_loss(lib, kind, *leaves, *consts), [x, w, b], [c])


def big_elementwise(backend, size=4_000_000, n_ops=8, dtype="float64") -> Reverse:
    """W3."""
    return chain_small(backend, n_ops=n_ops, size=size, dtype=dtype)


def many_leaves(backend, n_leaves=2000, size=8, timed=("backward",)) -> Reverse:
    """W6: backward only by default (the forward runs untimed, before it); `compare.py` times the whole step."""
    rng = _rng(6)
    leaves = [rng.standard_normal(size) for _ in range(n_leaves)]
    consts = [rng.uniform(0.5, 1.5, size) for _ in range(n_leaves)]
    return Reverse(backend, many_leaves_loss, leaves, consts, timed=timed)


HVP_MODES = ("double-backward", "fwd-over-rev", "hessian")


def hvp(backend, mode="double-backward", n=256) -> Workload:
    """W4: f(x) = sum(tanh(A x)); `mode` is one of HVP_MODES."""
    rng = _rng(4)
    a_np = rng.standard_normal((n, n)) / np.sqrt(n)
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)
    a = backend.const(a_np)
    f = lambda lib, x: tanh_layer_sum(lib, a, x)
    if mode == "double-backward":
        return DoubleBackward(backend, f, x, v)
    if mode == "fwd-over-rev":
        return ForwardOverReverse(backend, f, x, v)
    if mode == "hessian":
        return Hessian(backend, f, x)
    raise ValueError(f"unknown mode {mode!r}; expected one of {HVP_MODES}")


def jvp_chain(backend, n_ops=2000, size=16, dtype="float64") -> JVP:
    """W5: tangent of the elementwise chain's output vector (W1: defaults; W3: n_ops=8, size=4,000,000)."""
    x, c_np = _chain_inputs(size, dtype)
    t = _rng(5).standard_normal(size).astype(dtype)
    c = backend.const(c_np)
    return JVP(backend, lambda lib, x: elementwise_chain(lib, x, c, n_ops), x, t)


def scalar_second_derivative(backend, n_steps=200) -> DoubleBackward:
    """W7: d2/dx2 of the scalar iteration at x0 = 0.7 (a 0-dim float64 leaf)."""
    return DoubleBackward(backend, lambda lib, x: scalar_iteration(lib, x, n_steps), np.array(0.7))


# ------------------------------------------------------------------------------------------------------------
# Checking
# ------------------------------------------------------------------------------------------------------------

def tolerances(dtype: str) -> tuple[float, float]:
    """(rtol, atol relative to the largest reference magnitude) for results computed in `dtype`."""
    return (2e-3, 1e-4) if dtype == "float32" else (1e-6, 1e-9)


def compare_outputs(got: dict, ref: dict, dtype: str = "float64") -> list[str]:
    """The outputs in which `got` and `ref` disagree, with a measure of how much; [] if they agree."""
    rtol, atol_scale = tolerances(dtype)
    problems = []
    for name, r in ref.items():
        if name not in got:
            problems.append(f"{name}: missing")
            continue
        g, r = np.asarray(got[name], dtype=np.float64), np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            problems.append(f"{name}: shape {g.shape} != {r.shape}")
            continue
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        if not np.allclose(g, r, rtol=rtol, atol=atol_scale * scale):
            err = float(np.max(np.abs(g - r))) if g.size else 0.0
            problems.append(f"{name}: max abs diff {err:.3g} (max |ref| {scale:.3g})")
    return problems


# ------------------------------------------------------------------------------------------------------------
# First call: a fresh interpreter from the import to the first finished backward
# ------------------------------------------------------------------------------------------------------------

FIRST_CALL_PROGRAM = r"""
import importlib, json, sys, time
import numpy as np  # imported before the clock starts: numpy users have it loaded already

t0 = time.perf_counter()
lib = importlib.import_module(sys.argv[1])
t1 = time.perf_counter()
rng = np.random.default_rng(0)
x = lib.tensor(rng.uniform(0.0, 1.0, 16), requires_grad=True)
a = lib.from_numpy(rng.standard_normal((16, 16)) / 4.0)
y = lib.tanh(lib.matmul(a, x))
loss = lib.exp(lib.sin(y * 0.5 + 0.1)).sum()
loss.backward()
g = x.grad.numpy()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_backward": t2 - t1, "total": t2 - t0}))
"""


def first_call(lib_name: str, cold: bool = False, timeout: float = 600.0) -> dict[str, float]:
    """Seconds from `import lib_name` to the end of its first backward, in a fresh interpreter.

    Returns the in-process phases "import", "first_backward" and "total", and "process" (the interpreter's
    whole run, as the parent sees it). With `cold`, numba's cache points at a new empty directory
    (NUMBA_CACHE_DIR); otherwise it is left as configured (call once untimed first so that it is warm). `ad`
    is found in this checkout if it is not installed. `Unavailable` if the program fails (say, no `ad`).
    """
    if lib_name in COMPILED:
        raise Unavailable(f"{lib_name}: no first-call measurement")
    if lib_name == "jax":
        raise Unavailable("jax: no first-call measurement (jax has no .backward())")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), str(REPO_ROOT)) if p)
    cache_dir = tempfile.mkdtemp(prefix="ad-bench-numba-cache-") if cold else None
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    try:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", FIRST_CALL_PROGRAM, lib_name], env=env, capture_output=True, text=True,
            timeout=timeout, cwd=tempfile.gettempdir(),
        )
        process = time.perf_counter() - start
    finally:
        if cache_dir:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise Unavailable(f"{lib_name}: the first-call program failed: {last}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process"] = process
    return result
