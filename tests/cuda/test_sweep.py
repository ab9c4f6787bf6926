"""The device sweep (kernels/cuda/sweep.py) against the CPU sweep (kernels/cpu.py) on tapes recorded by ``ad``.

Each case records a small graph on the CPU, takes the tape's arrays and seeds the output as the engine does
(``engine._TapeSweep``), runs ``kernels.cpu.reverse_sweep`` and the CUDA ``reverse_sweep`` on copies and
compares everything they write: the cotangent arena, the live and visited flags, the returned ``lowest`` and
the status. Under the simulator (NUMBA_ENABLE_CUDASIM=1, tests/conftest.py) with blocks of a few threads,
so that every thread strides over several elements; unchanged on a real GPU. (tests/cuda/test_ptx.py compiles
the sweep's kernels for sm_90 with the others: ``kernels.cuda.MODULES``.)
"""

import numpy as np
import pytest

import ad
import ad.nn.functional as F
from ad.ops import gather_map, scatter_map
from ad.ops.elementwise import tanh_backward
from ad.tape import reset_current
from kernels import cpu
from kernels import opcodes as K

cuda = pytest.importorskip("numba.cuda")
sweep = pytest.importorskip("kernels.cuda.sweep")

THREADS = 8  # per block, in the simulator every thread is a Python thread
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def _leaf(rng, shape, lo=0.2, hi=0.8, dtype=np.float64):
    return ad.tensor(rng.uniform(lo, hi, shape).astype(dtype), requires_grad=True)


def sweep_inputs(root, rng):
    """The kernel arguments of a backward from ``root`` (seeded with random cotangents), as the engine makes
    them: the tape's arrays, a zeroed cotangent arena holding the seed, the live flags, and where to start."""
    tape = root._tape
    rows, attrs, aux = tape.arrays()
    used = tape.used + 1
    cot = np.zeros(used, tape.dtype)
    live = np.zeros(used, np.uint8)
    off, n = root._off, root._data.size
    cot[off : off + n] = rng.uniform(0.5, 1.5, n)
    live[off] = 1
    return {
        "rows": np.ascontiguousarray(rows),
        "attrs": np.ascontiguousarray(attrs),
        "aux": np.array(aux),
        "vals": tape.values[:used].copy(),
        "cot": cot,
        "live": live,
        "visited": np.zeros(tape.nrows + 1, np.uint8),
        "freed": np.zeros(tape.nrows + 1, np.uint8),
        "modified": tape.modified[:used].copy(),
        "saves": cpu.SAVES.copy(),
        "start": root._row + root._nrows - 1,
        "stop": 0,
        "lowest": root._row,
        "big_off": np.zeros(0, np.int64),
        "big_n": np.zeros(0, np.int64),
    }


ORDER = ("rows", "attrs", "aux", "vals", "cot", "live", "visited", "freed", "modified", "saves")


def run_cpu(inp):
    arrays = {k: inp[k].copy() for k in ORDER}
    status = np.zeros(3, np.int64)
    args = [arrays[k] for k in ORDER]
    result = cpu.reverse_sweep(*args, inp["start"], inp["stop"], inp["lowest"], status, inp["big_off"], inp["big_n"])
    return result, status, arrays


def run_cuda(inp, big_threshold=sweep.BIG_THRESHOLD, status_on_device=False):
    dev = {k: cuda.to_device(inp[k]) for k in ORDER}
    status = cuda.to_device(np.zeros(3, np.int64)) if status_on_device else np.zeros(3, np.int64)
    args = [dev[k] for k in ORDER]
    result = sweep.reverse_sweep(
        *args, inp["start"], inp["stop"], inp["lowest"], status, cuda.to_device(inp["big_off"]),
        cuda.to_device(inp["big_n"]), big_threshold=big_threshold, threads=THREADS, grid_threads=THREADS,
    )  # fmt: skip
    status = status.copy_to_host() if status_on_device else status
    return result, status, {k: dev[k].copy_to_host() for k in ("cot", "live", "visited")}


def check_same(inp, big_threshold=sweep.BIG_THRESHOLD, status_on_device=False):
    """Both sweeps on copies of ``inp``: the same result, status, flags and cotangents; returns the CPU's."""
    want, want_status, cpu_out = run_cpu(inp)
    got, got_status, gpu_out = run_cuda(inp, big_threshold, status_on_device)
    assert got == want
    np.testing.assert_array_equal(got_status, want_status)
    np.testing.assert_array_equal(gpu_out["live"], cpu_out["live"])
    np.testing.assert_array_equal(gpu_out["visited"], cpu_out["visited"])
    tol = TOL[inp["cot"].dtype.type]
    np.testing.assert_allclose(gpu_out["cot"], cpu_out["cot"], rtol=tol, atol=tol)
    return want, cpu_out


def swept_codes(inp, cpu_out):
    return {int(c) for c in inp["rows"][cpu_out["visited"][:-1] != 0, 0] & K.CODE_MASK}


def _unary_graph(x):
    """Every elementwise unary opcode on values in (0.2, 0.8), summed with distinct weights."""
    terms = [
        x.exp(), x.log(), x.log1p(), x.expm1(), x.sqrt(), x.rsqrt(), x.sin(), x.cos(), x.tan(), x.tanh(),
        x.sigmoid(), (x - 0.5).relu(), x.erf(), x.clamp(0.3, 0.7), x**2.5, 2.0**x, 3.0 * x + 1.0, 2.0 / x,
        x.square(), (x - 0.5).abs(), -x, x.atan(), x.asin(), x.acos(), x.sinh(), x.cosh(), x.asinh(),
        (x + 1.5).acosh(), x.atanh(), x.log2(), x.log10(), x.exp2(), x.erfc(), (x - 0.5).erfinv(), x.logit(),
        ad.logit(x, eps=0.3), x.sinc(), (x * 3.0).floor() * x, x.reshape(3, 2).reshape(2, 3),
        F.silu(x - 0.5), F.gelu(x - 0.5), F.gelu(x - 0.5, approximate="tanh"), F.mish(x - 0.5),
        F.elu(x - 0.5, 0.7), F.selu(x - 0.5), F.celu(x - 0.5, 1.3),
    ]  # fmt: skip
    total = terms[0]
    for k, t in enumerate(terms[1:]):
        total = total + t * (1.0 + 0.1 * k)
    return total.sum() + (x[0].exp() * x[0].log()).sum()  # rows of 3 elements as well as 6


def _binary_graph(x, y, z):
    """Every same-shape binary opcode, operands broadcast ((2, 3) with (3,)), where, and x * x."""
    terms = [
        x + z, x - z, x * z, x / z, x**z, ad.maximum(x, z), ad.minimum(x, z), tanh_backward(x, z),
        ad.atan2(x, z), ad.hypot(x, z), ad.fmod(x * 3.0, z), ad.remainder(x * 3.0, z), ad.copysign(x, z - 0.5),
        ad.logaddexp(x, z), ad.xlogy(x, z), ad.where(x > 0.5, x, y), y * y,
        ad.maximum(x, x.detach() * 0.0 + x.detach()),  # ties split the gradient
        ad.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"),
    ]  # fmt: skip
    total = terms[0]
    for k, t in enumerate(terms[1:]):
        total = total + t * (1.0 + 0.1 * k)
    return (total * total).mean()


def _structural_graph(x, w, b, v):
    """Strided views and their adjoints, index maps with repeated indices, group reductions, products,
    log_softmax, cross entropy and a composite's guard row."""
    idx = ad.tensor(np.array([0, 2, 2, 1, 0, 2]))
    g = x[idx]  # (6, 4), repeated rows: GATHER_MAP
    s = scatter_map(x.reshape(-1), (5,), np.array([0, 4, 4, 1, 0, 2, 3, 3, 1, 0, 2, 4]))  # SCATTER_MAP
    t = x.t()[1:3] * 2.0  # GATHER_STRIDED (transpose, slice)
    e = v.expand(3, 4)  # broadcast: the adjoint sums
    h = ad.cat([x, e], 0).sum(0) + x.mean(1).sum() + x.prod(1).sum() + x.amax(0).sum() + x.amin(1).sum()
    m = ad.matmul(x.reshape(1, 3, 4).expand(2, 3, 4), w.reshape(2, 4, 3))  # batched
    m = m + ad.matmul(x, w.reshape(2, 4, 3)) + ad.matmul(w.reshape(2, 3, 4), x.t())  # x, then y broadcast
    lin = ad.nn.functional.linear(x, w.reshape(6, 4), b) + ad.nn.functional.linear(x, w.reshape(6, 4))
    ls = ad.log_softmax(lin, 1)
    ce = ad.nn.functional.cross_entropy(lin, ad.tensor(np.array([1, 5, 0])))
    var = x.var()  # a composite: guard rows
    return g.sum() + s.sum() + t.sum() + h.sum() + (m * m).sum() + (ls * ls).sum() + ce + var + (x @ x.t()).sum()


def _record(kind, dtype, rng):
    reset_current()
    if kind == "unary":
        return _unary_graph(_leaf(rng, (2, 3), dtype=dtype))
    if kind == "binary":
        return _binary_graph(
            _leaf(rng, (2, 3), dtype=dtype), _leaf(rng, (2, 3), dtype=dtype), _leaf(rng, (3,), dtype=dtype)
        )
    x = _leaf(rng, (3, 4), dtype=dtype)
    x.data[0, 1] = 0.0  # a zero for prod's exact rule
    x.data[2, 2] = x.data[2, 3]  # a tie for amin / amax
    return _structural_graph(
        x, _leaf(rng, (24,), dtype=dtype), _leaf(rng, (6,), dtype=dtype), _leaf(rng, (4,), dtype=dtype)
    )


EXPECTED = {
    "unary": set(K.UNARY_CODES),
    "binary": set(range(K.BINARY_FIRST, K.BINARY_LAST + 1)) | {K.WHERE},
    "structural": {
        K.GATHER_MAP,
        K.SCATTER_MAP,
        K.GATHER_STRIDED,
        K.SCATTER_STRIDED,
        K.SUM_ALL,
        K.PROD,
        K.AMAX,
        K.AMIN,
        K.MATMUL,
        K.LINEAR,
        K.LINEAR_BIAS,
        K.LOG_SOFTMAX,
        K.CROSS_ENTROPY,
        K.SAVED_INPUT,
    },  # fmt: skip
}


@pytest.mark.parametrize("big_threshold", [sweep.BIG_THRESHOLD, 6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["unary", "binary", "structural"])
def test_every_opcode_matches_cpu(kind, dtype, big_threshold):
    """Every opcode in single-block runs, and (threshold 6) most rows as full-grid launches between them."""
    rng = np.random.default_rng(len(kind))
    inp = sweep_inputs(_record(kind, dtype, rng), rng)
    if big_threshold < sweep.BIG_THRESHOLD:
        work = sweep.row_work(inp["rows"], inp["aux"], inp["start"], 0)
        assert (work >= big_threshold).any() and (work < big_threshold).any()
    lowest, cpu_out = check_same(inp, big_threshold)
    assert lowest >= 0
    assert EXPECTED[kind] <= swept_codes(inp, cpu_out)


def test_big_rows_between_small_runs_and_big_regions():
    """A lowered threshold sends the larger rows to full-grid launches between block runs; big regions hold
    garbage until their first write clears them."""
    rng = np.random.default_rng(3)
    reset_current()
    x = _leaf(rng, (4, 8))
    y = _leaf(rng, (8, 8))
    small = (x[0] * 2.0).sin()
    big = (x @ y).tanh() * x.sum(1, keepdim=True) + gather_map(x, (4, 8), np.arange(32)[::-1] % 7)
    out = (big.exp().sum() + small.sum() + x.prod(1).sum() + x.amax(1).sum() * ad.log_softmax(x, 1).sum()).log()
    out = out + (x * x).sum() + y.cos().sum()  # elementwise first writers of the leaves: they store
    inp = sweep_inputs(out, rng)
    threshold = 16
    work = sweep.row_work(inp["rows"], inp["aux"], inp["start"], 0)
    assert 0 < (work >= threshold).sum() < work.shape[0] - 3
    check_same(inp, big_threshold=threshold)
    # the leaves' regions as big regions filled with garbage: the first writer must clear them
    regions = sorted({out._tape.imports[id(t)][0]: t._data.size for t in (x, y)}.items())
    inp["big_off"] = np.array([o for o, _ in regions], np.int64)
    inp["big_n"] = np.array([n for _, n in regions], np.int64)
    for o, n in regions:
        inp["cot"][o : o + n] = rng.uniform(-9.0, 9.0, n)
    check_same(inp, big_threshold=threshold)
    check_same(inp)


class _Cube(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x


@pytest.mark.parametrize("big_threshold", [sweep.BIG_THRESHOLD, 2])
def test_stops_at_python_rows_and_resumes(big_threshold):
    """The engine sweeps down to the row after one that needs Python (a hooked tensor, a custom Function),
    runs Python, then resumes below it: both sweeps agree at each stop (result, flags, cotangents) and after
    resuming from the state the part above left."""
    rng = np.random.default_rng(4)
    reset_current()
    x = _leaf(rng, (5,))
    h = (x * 3.0).sin()
    h.register_hook(lambda g: g * 2.0)
    c = _Cube.apply(x * 2.0)
    out = ((h * x).exp() + h.cos() + c).sum()
    inp = sweep_inputs(out, rng)
    tape = out._tape
    stops = sorted(tape.hook_rows, reverse=True)
    assert len(stops) == 2 and (inp["rows"][stops, 0] & K.CODE_MASK == K.PYTHON).any()
    state = {"start": inp["start"]}
    for row in [*stops, -1]:
        lowest, cpu_out = check_same(dict(inp, **state, stop=row + 1), big_threshold)
        if row >= 0:
            assert cpu_out["visited"][row] == 0 and cpu_out["live"][inp["rows"][row, 1]] == 1
        state = dict(cpu_out, start=row - 1, lowest=lowest)


@pytest.mark.parametrize("big_threshold", [sweep.BIG_THRESHOLD, 1])
def test_freed_and_modified_rows_stop_with_the_cpu_status(big_threshold):
    rng = np.random.default_rng(5)
    reset_current()
    x = _leaf(rng, (4,))
    mid = x.exp()
    out = (mid * x).sum()
    inp = sweep_inputs(out, rng)
    freed = dict(inp, freed=inp["freed"].copy())
    freed["freed"][mid._row] = 1
    assert check_same(freed, big_threshold)[0] == -1
    modified = dict(inp, modified=inp["modified"].copy())
    modified["modified"][mid._off] = 1  # exp saves its result
    assert check_same(modified, big_threshold, status_on_device=True)[0] == -1
