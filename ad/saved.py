"""What torch's nodes save, and the version checks that follow from it, for ops ``ad`` builds differently.

torch records most ops as one node that saves some of its inputs and/or its result; writing into a saved
tensor after the op makes that node's backward raise "one of the variables needed for gradient computation
has been modified by an inplace operation". ``ad`` records many of them as composites of primitives (whose
rows save intermediates: ``x - mean``, ``exp(x - m)``, a gather that reads no value) or as Python-swept
``autograd.Function`` primitives (which save what *their* backward reads), so a write into what torch saved
would go unnoticed. ``TORCH_SAVES`` is the one table of what torch's node saves; two mechanisms apply it:

- composites call ``guard(out, name, *inputs)`` on their result; it appends one guard row per saved tensor,
  right after the composite's last row and counted in the output tensor's ``_nrows`` (so the guard belongs to
  the output's node: ``_check_saved`` in the create_graph sweep, freeing, masking by ``inputs=`` and hook
  placement all cover it):

      [SAVED_INPUT,  out = the output's offset, x = the saved input's offset on this tape, y = -1, n = 0]
      [SAVED_RESULT, out = the output's offset, x = -1,                                   y = -1, n = 0]

  No XRG/YRG bit is set and the opcodes have no branch in the sweep, so the row computes nothing; its
  ``SAVES`` entry (``READS_X`` / ``READS_OUT``, kernels/cpu.py) makes the kernel sweep check ``modified`` at
  that offset when the output holds a cotangent (the node runs), exactly as for a primitive that saves a
  value. A write into the input or the result flags those offsets (``tape.mark_modified``: the tensor's own
  offset, its import copies and its views'); an input that needs no gradient is imported for the purpose.
  ``attr0`` holds an index into ``NAMES``, for the error message.
- ``autograd.Function`` primitives named as torch's node (``_grad_fn_name``) get the versions of the
  results ``TORCH_SAVES`` lists noted after forward and checked when backward reads ``ctx.saved_tensors``
  (``result_guards``); the inputs they need they save themselves.

Where to start reading: ``TORCH_SAVES``, then ``guard``.
"""

import functools

import numpy as np

from kernels import opcodes as K

from .tensor import Tensor

# torch's node -> (positions of the inputs it saves, whether it saves its result(s)); from torch 2.13's
# derivatives.yaml, each checked by writing into the tensor under no_grad and calling backward
TORCH_SAVES = {
    "VarBackward0": ((0,), False),
    "StdBackward0": ((0,), True),
    "LogsumexpBackward0": ((0,), True),
    "LinalgVectorNormBackward0": ((0,), True),
    "CumprodBackward0": ((0,), True),
    "LogcumsumexpBackward0": ((0,), True),
    "CummaxBackward0": ((0,), False),
    "CumminBackward0": ((0,), False),
    "DistBackward0": ((0, 1), True),
    "FmaxBackward0": ((0, 1), False),
    "FminBackward0": ((0, 1), False),
    "LogSigmoidBackward0": ((0,), False),
    "SoftplusBackward0": ((0,), False),
    "NanToNumBackward0": ((0,), False),
    "NansumBackward0": ((0,), False),
    "ErfinvBackward0": ((0,), False),
    "LogaddexpBackward0": ((0, 1), False),
    "CdistBackward0": ((0, 1), True),
    "LinalgLstsqBackward0": ((0, 1), True),
    "LinalgDetBackward0": ((0,), True),
    "LinalgInvExBackward0": ((), True),
    "LinalgSolveExBackward0": ((0,), True),
    "LinalgSolveTriangularBackward0": ((0,), True),
    "LinalgCholeskyExBackward0": ((), True),
    "LinalgEighBackward0": ((), True),
    "LinalgSvdBackward0": ((), True),
    "LinalgQrBackward0": ((), True),
    "LinalgPinvBackward0": ((0,), True),
    "NormBackward1": ((0,), True),
    "MseLossBackward0": ((0, 1), False),
    "HuberLossBackward0": ((0, 1), False),
    "NativeLayerNormBackward0": ((0, 1, 2), False),
    "EluBackward1": ((), True),  # elu_ and selu_ (their rows read the input's snapshot: ad/ops/activation_ops.py)
    "CeluBackward1": ((), True),  # celu_
    "HardtanhBackward0": ((0,), False),
    "LeakyReluBackward0": ((0,), False),
    "HardswishBackward0": ((0,), False),
    "HardsigmoidBackward0": ((0,), False),
    "BinaryCrossEntropyBackward0": ((0, 1), False),
    "BinaryCrossEntropyWithLogitsBackward0": ((0, 1), False),
    "SmoothL1LossBackward0": ((0, 1), False),
    "NativeGroupNormBackward0": ((0,), False),
    "AddcmulBackward0": ((1, 2), False),
    "AddcdivBackward0": ((1, 2), False),
    "CholeskySolveBackward0": ((0, 1), True),
    "LinalgLuSolveBackward0": ((0,), True),
    "LinalgHouseholderProductBackward0": ((0, 1), True),
    "LinalgLuBackward0": ((), True),
    "IndexReduceBackward0": ((0, 3), True),
    "AngleBackward0": ((0,), False),
}
NAMES = tuple(TORCH_SAVES)
# inputs a node saves only for the gradient of others: {node: {input: inputs whose gradient reads it}}; such an
# input is saved (and checked) only when one of those requires grad, as torch's
SAVED_FOR = {"AddcmulBackward0": {1: (2,), 2: (1,)}, "AddcdivBackward0": {1: (2,)}}


def guard(out, name, *inputs, result=None):
    """Make ``out``'s backward check, as torch's node ``name`` (a key of ``TORCH_SAVES``) does, that the
    inputs that node saves (``inputs`` are the op's inputs, in torch's order; ``None`` for one that is not a
    tensor) and, if it saves its result, ``out`` itself were not modified in place since.

    ``result`` overrides the table (a composite whose last primitive already saves the result). Returns
    ``out``. Does nothing when ``out`` was not recorded (no grad, forward mode only)."""
    tape = out._tape
    if out._dev is not None:
        return out  # (CUDA graphs have no rows to guard with: in-place ops on CUDA tensors are not supported)
    if tape is not None and out._rg and out._row + out._nrows != tape.nrows and out._tangents:
        out = _relay(out)  # forward mode recorded the result's tangent after it: a copy takes the guard rows
        tape = out._tape
    if tape is None or not out._rg or out._row + out._nrows != tape.nrows:
        return out  # not recorded, or not the tape's last node (never the case right after recording it)
    positions, saves_result = TORCH_SAVES[name]
    tag = float(NAMES.index(name))
    readers = SAVED_FOR.get(name, {})
    rows = 0
    for i in positions:
        x = inputs[i] if i < len(inputs) else None
        if x is None or x._data.dtype.kind != "f":
            continue
        if i in readers and not any(j < len(inputs) and inputs[j] is not None and inputs[j]._rg for j in readers[i]):
            continue
        x_off = x._off if x._tape is tape else tape.import_tensor(x, False)[0]
        tape.record(K.SAVED_INPUT, out._off, x_off, -1, 0, a0=tag)
        rows += 1
    if saves_result if result is None else result:
        tape.record(K.SAVED_RESULT, out._off, -1, -1, 0, a0=tag)
        rows += 1
    if rows:
        out._nrows = out._nrows + rows
    return out


def _relay(out):
    """A copy of ``out`` recorded as the tape's last node, with ``out``'s tangents (a composite's result in
    forward mode, whose tangent rows were recorded after it: the guard rows must follow the node they guard)."""
    from . import forward, ops

    with forward.hide(tuple(out._tangents)):
        copy = ops.clone(out)
    for level, tangent in out._tangents.items():
        forward.set_tangent(copy, level, tangent)
    return copy


def saves_as(name):
    """Decorator of a composite op ``f(input, ...)`` that torch records as one node ``name``: its result is
    guarded (``guard``) for the positional tensor arguments the node saves."""

    def wrap(fn):
        @functools.wraps(fn)
        def op(*args, **kwargs):
            tensors = [a if isinstance(a, Tensor) else None for a in args]
            return guard(fn(*args, **kwargs), name, *tensors)

        return op

    return wrap


def guard_name(tape, row):
    """The torch node name recorded in guard row ``row`` (``None`` if ``row`` is not a guard)."""
    head = np.frombuffer(tape.rows, np.int64, count=1, offset=row * 80)[0] & K.CODE_MASK
    if head != K.SAVED_INPUT and head != K.SAVED_RESULT:
        return None
    tag = np.frombuffer(tape.rows, np.float64, count=1, offset=row * 80 + 64)[0]
    return NAMES[int(tag)]


def result_guards(cls, outputs):
    """For ``autograd.Function`` primitive ``cls`` (named as torch's node): ``(tensor, version)`` of each of
    ``outputs`` (the recorded ones) that torch's node saves, to check when its backward runs."""
    name = getattr(cls, "_grad_fn_name", None)
    entry = TORCH_SAVES.get(name) if name is not None else None
    if entry is None or not entry[1]:
        return ()
    return tuple((o, o._version) for o in outputs if isinstance(o, Tensor) and o.dtype.kind == "f")


def unsaved_inputs(cls, saved, args):
    """For ``autograd.Function`` primitive ``cls`` (named as torch's node): the indices in ``saved`` of the
    inputs that torch's node does not save (``inv``'s, ``cholesky``'s input: torch saves only the result). Their
    version is not checked when backward reads ``ctx.saved_tensors``; the backward calls ``ctx.check_unsaved()``
    where it reads their values (to recompute the results), so a write into them raises only there."""
    entry = TORCH_SAVES.get(cls._grad_fn_name)
    if entry is None:
        return ()
    kept = entry[0]
    return tuple(
        i
        for i, t in enumerate(saved)
        if t is not None
        and any(a is t and k not in kept for k, a in enumerate(args))
        and not any(a is t and k in kept for k, a in enumerate(args))
    )
