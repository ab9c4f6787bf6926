"""``ad``: PyTorch's autograd for numpy users, with the derivative sweep run by numba kernels.

Where to start reading: ``tensor.py`` (the Tensor), ``tape.py`` (the struct-of-arrays tape and why),
``ops.py`` (the op table), ``engine.py`` (the sweeps), ``autograd/`` (the public API), and
``kernels/cpu.py`` (the compiled reverse sweep).
"""

from . import autograd, nn
from .autograd.anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled, set_anomaly_enabled
from .composites import (
    argmax,
    argmin,
    is_tensor,
    log_softmax,
    logsumexp,
    norm,
    outer,
    reciprocal,
    sign,
    softmax,
    std,
    var,
)
from .creation import (
    arange,
    as_tensor,
    bool,
    double,
    empty,
    empty_like,
    eye,
    float,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    int32,
    int64,
    linspace,
    long,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .methods import bind as _bind
from .ops import (
    abs,
    add,
    amax,
    amin,
    broadcast_to,
    cat,
    chunk,
    clamp,
    clip,
    cos,
    div,
    dot,
    erf,
    exp,
    expand,
    expm1,
    flatten,
    gather,
    index_select,
    log,
    log1p,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    neg,
    permute,
    pow,
    prod,
    relu,
    reshape,
    rsqrt,
    rsub,
    sigmoid,
    sin,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    sub,
    sum,
    t,
    tan,
    tanh,
    transpose,
    unsqueeze,
    where,
)
from .tensor import Tensor, device

_bind()

# --- views (issue 17): view ops torch has (ad/ops/view_ops.py)
from .ops.view_ops import (  # noqa: E402
    diagonal,
    moveaxis,
    movedim,
    narrow,
    select,
    swapaxes,
    swapdims,
    unbind,
    unflatten,
)

# --- end views

concatenate = cat
subtract = sub
multiply = mul
divide = div
negative = neg

# --- shapeindex: shape and indexing ops (ad/ops/shape_index.py)
# --- end shapeindex
# --- elementwise branch (issue 13): elementwise ops, reductions and scans
from .ops.pointwise_ops import *  # noqa: E402, F403
from .ops.shape_index import *  # noqa: E402, F403
from .ops.sorting import *  # noqa: E402, F403
from .ops.stacking import *  # noqa: E402, F403
from .reductions import (  # noqa: E402
    all,
    aminmax,
    any,
    count_nonzero,
    cummax,
    cummin,
    cumprod,
    cumsum,
    digamma,
    dist,
    lgamma,
    logcumsumexp,
    median,
    nanmean,
    nanmedian,
    nansum,
    polygamma,
)

__version__ = "0.1.0"

# --- linalg (issue 13): ad.linalg and the products / contractions of ad/ops/products.py
# ---- modules (issue 15): optimizers, modules, saving, dtype conveniences ----
from kernels import notice as _compile_notice  # noqa: E402

from . import conveniences as _conveniences  # noqa: E402
from . import linalg, optim, utils  # noqa: E402
from . import serialization as _serialization  # noqa: E402
from .conveniences import (  # noqa: E402
    Size,
    byte,
    char,
    get_default_dtype,
    half,
    inference_mode,
    int,
    int8,
    int16,
    is_inference_mode_enabled,
    set_default_dtype,
    short,
    uint8,
)

# --- end linalg
# --- nnfunc (issue 13, ad.nn.functional): cdist and the random Generator --------------------------------
from .nn.functional.distance import cdist  # noqa: E402
from .ops.products import (  # noqa: E402
    addbmm,
    addmm,
    addmv,
    baddbmm,
    bmm,
    chain_matmul,
    cholesky,
    cholesky_inverse,
    cholesky_solve,
    cross,
    det,
    einsum,
    inner,
    inverse,
    kron,
    logdet,
    matrix_exp,
    matrix_power,
    mv,
    pinverse,
    qr,
    slogdet,
    svd,
    tensordot,
    vdot,
)
from .random import Generator  # noqa: E402
from .serialization import load, save  # noqa: E402

_conveniences.bind()
_serialization.bind()
_compile_notice.install()
autograd.graph.bind()
# ad.cuda's device queries (imports no numba until used); ad.distributed: torch.distributed over MPI (mpi4py is
# imported by init_process_group, not here); ad.func: torch.func's transforms (grad, vjp, jvp, jacrev, jacfwd,
# hessian, vmap, functional_call)
from . import cuda, distributed, func  # noqa: E402

# ad.compile (issue 11): record a step once, replay its tape in a compiled forward kernel
from .compile import compile  # noqa: E402, A004
from .creation import asarray  # noqa: E402

# torch's top-level LU spellings and orgqr (issue 13); see ad/linalg.py
from .linalg_factor import lu_unpack, orgqr  # noqa: E402
from .linalg_factor import torch_lu as lu  # noqa: E402
from .linalg_factor import torch_lu_solve as lu_solve  # noqa: E402

# torch's out= on the public functions that lacked it (issue 13): the wrapper sits on the public name only, so
# ad's own calls (ops.cat, creation.zeros, ...) and the Tensor methods keep their cost
from .ops.pointwise_ops import with_out as _with_out  # noqa: E402

for _name in (
    "arange cat concatenate stack argmax argmin argsort gather index_select isneginf isposinf logsumexp "
    "matrix_power orgqr slogdet amax amin max min prod var std dot outer mm where clamp clip sign reciprocal "
    "softmax log_softmax"
).split():
    globals()[_name] = _with_out(globals()[_name])
for _name in "zeros ones empty full eye linspace rand randn randint".split():  # torch's factories resize silently
    globals()[_name] = _with_out(globals()[_name], warn_resize=False)
linalg.cond = _with_out(linalg.cond)
linalg.lstsq = _with_out(linalg.lstsq)
nn.functional.hardshrink = _with_out(nn.functional.hardshrink)
del _name

# ---- torch's wider surface (issue 13 follow-up): samplers, conveniences, F.* under torch's top-level names ----
from . import aliases as _aliases  # noqa: E402
from . import logic as _logic  # noqa: E402
from . import random as _random  # noqa: E402
from . import shape_composites as _shape_composites  # noqa: E402
from . import statistics as _statistics  # noqa: E402
from . import tensor_extras as _tensor_extras  # noqa: E402
from .conveniences import (  # noqa: E402
    adjoint,
    are_deterministic_algorithms_enabled,
    can_cast,
    conj,
    conj_physical,
    empty_strided,
    get_num_threads,
    is_complex,
    is_deterministic_algorithms_warn_only_enabled,
    is_floating_point,
    is_nonzero,
    is_same_size,
    is_signed,
    is_storage,
    logspace,
    promote_types,
    resolve_conj,
    resolve_neg,
    result_type,
    scalar_tensor,
    set_num_threads,
    set_printoptions,
    typename,
    use_deterministic_algorithms,
)
from .logic import *  # noqa: E402, F403
from .random import (  # noqa: E402
    bernoulli,
    binomial,
    get_rng_state,
    initial_seed,
    multinomial,
    normal,
    poisson,
    randint_like,
    randperm,
    seed,
    set_rng_state,
)
from .shape_composites import *  # noqa: E402, F403
from .statistics import *  # noqa: E402, F403
from .tensor_extras import *  # noqa: E402, F403

_conveniences.bind_more()
_random.bind()
_logic.bind()
_shape_composites.bind()
_statistics.bind()
_tensor_extras.bind()
from . import special_functions as _special_functions  # noqa: E402
from .special_functions import angle, i0, igamma, igammac  # noqa: E402

_special_functions.bind()
absolute = _with_out(abs)
true_divide = _with_out(div)

# ---- torch's remaining top-level names (torchtop): copies of views, windows, switches, deprecated spellings,
# ad.testing; see ad/top_level.py, ad/copy_views.py, ad/windows.py, ad/runtime_flags.py, ad/dtype_info.py
from . import amp, backends, signal, testing  # noqa: E402
from . import as_strided as _as_strided  # noqa: E402
from . import constants as _constants  # noqa: E402
from . import interop as _interop  # noqa: E402
from . import nn_aten as _nn_aten  # noqa: E402, F401 - torch's aten forms of nn functions
from . import storage as _storage  # noqa: E402
from . import top_level as _top_level  # noqa: E402
from .as_strided import *  # noqa: E402, F403
from .autocast import autocast, is_autocast_enabled  # noqa: E402
from .constants import *  # noqa: E402, F403
from .copy_views import *  # noqa: E402, F403
from .creation import get_default_device, set_default_device  # noqa: E402
from .dtype_info import finfo, iinfo  # noqa: E402
from .func import vmap  # noqa: E402
from .interop import from_dlpack, frombuffer, to_dlpack  # noqa: E402
from .linalg_factor import geqrf, ormqr  # noqa: E402
from .lobpcg import lobpcg  # noqa: E402
from .lowrank import pca_lowrank, svd_lowrank  # noqa: E402
from .nn_aten import *  # noqa: E402, F403
from .runtime_flags import *  # noqa: E402, F403
from .segments import segment_reduce  # noqa: E402
from .storage import *  # noqa: E402, F403
from .top_level import *  # noqa: E402, F403
from .windows import *  # noqa: E402, F403

concat = cat  # torch's alias (with out=, as cat)
GradScaler = amp.GradScaler  # torch.GradScaler (torch.amp.GradScaler)
autograd.inference_mode = inference_mode  # torch.autograd.inference_mode (ad/conveniences.py needs ad's tensors)
_interop.bind()
_top_level.bind()
_as_strided.bind()
_storage.bind()
_constants.bind()

_aliases.install(globals())

# torch.special (last: its aliases are the package's public functions, out= wrappers included)
from . import special  # noqa: E402


def __getattr__(name):
    """``ad.distributions`` loads on first use (PEP 562: its ~60 classes are 35 ms that ``import ad`` need not
    pay); ``import ad.distributions`` works as ever."""
    if name == "distributions":
        import importlib

        return importlib.import_module(".distributions", __name__)
    raise AttributeError(f"module 'ad' has no attribute {name!r}")
