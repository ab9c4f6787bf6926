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

concatenate = cat
subtract = sub
multiply = mul
divide = div
negative = neg

__version__ = "0.1.0"

# ---- modules (issue 15): optimizers, modules, saving, dtype conveniences ----
from kernels import notice as _compile_notice  # noqa: E402

from . import conveniences as _conveniences  # noqa: E402
from . import optim  # noqa: E402
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
from .serialization import load, save  # noqa: E402

_conveniences.bind()
_serialization.bind()
_compile_notice.install()
autograd.graph.bind()
