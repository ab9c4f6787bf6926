"""Saved-tensor guards for composite ops: torch's version check on the tensors a composite logically saves.

torch records ``var``, ``std``, ``norm`` and ``logsumexp`` as one node that saves its input (and, for std,
norm and logsumexp, its result); writing into a saved tensor after the op makes that node's backward raise
"one of the variables needed for gradient computation has been modified by an inplace operation". ``ad``
records them as primitives, whose rows save intermediates (``x - mean``, ``exp(x - m)``), so nothing would
notice a write into the input or the result.

Data structure: a guard is one extra tape row appended right after the composite's last row, counted in the
output tensor's ``_nrows`` (so the guard belongs to the output's node: ``_check_saved`` in the create_graph
sweep, freeing, masking by ``inputs=`` and hook placement all cover it):

    [SAVED_INPUT,  out = the output's offset, x = the saved input's offset on this tape, y = -1, n = 0]
    [SAVED_RESULT, out = the output's offset, x = -1,                                   y = -1, n = 0]

No XRG/YRG bit is set and the opcodes have no branch in the sweep, so the row computes nothing; its ``SAVES``
entry (``READS_X`` / ``READS_OUT``, kernels/cpu.py) makes the kernel sweep check ``modified`` at that offset
when the output holds a cotangent (the node runs), exactly as for a primitive that saves a value. A write into
the input or the result flags those offsets (``tape.mark_modified``: the tensor's own offset, its import
copies and its views'). ``attr0`` holds an index into ``NAMES``, for the error message.

Where to start reading: ``guard``.
"""

from kernels import opcodes as K

NAMES = ("VarBackward0", "StdBackward0", "LogsumexpBackward0", "LinalgVectorNormBackward0")


def guard(out, name, saved_input=None, result=False):
    """Make ``out``'s backward check that ``saved_input`` (the composite's input) and, with ``result``,
    ``out`` itself were not modified in place since, as torch's node for ``name`` (one of ``NAMES``) does.

    Returns ``out``. Does nothing when ``out`` was not recorded (no grad, forward mode only)."""
    tape = out._tape
    if out._dev is not None:
        return out  # (CUDA graphs have no rows to guard with: in-place ops on CUDA tensors are not supported)
    if tape is None or not out._rg or out._row + out._nrows != tape.nrows:
        return out  # not recorded, or not the tape's last node (never the case right after recording it)
    tag = float(NAMES.index(name))
    rows = 0
    if saved_input is not None and saved_input._rg:
        x_off = saved_input._off if saved_input._tape is tape else tape.import_tensor(saved_input, False)[0]
        tape.record(K.SAVED_INPUT, out._off, x_off, -1, 0, a0=tag)
        rows += 1
    if result:
        tape.record(K.SAVED_RESULT, out._off, -1, -1, 0, a0=tag)
        rows += 1
    if rows:
        out._nrows = out._nrows + rows
    return out


def guard_name(tape, row):
    """The torch node name recorded in guard row ``row`` (``None`` if ``row`` is not a guard)."""
    import numpy as np

    head = np.frombuffer(tape.rows, np.int64, count=1, offset=row * 80)[0] & K.CODE_MASK
    if head != K.SAVED_INPUT and head != K.SAVED_RESULT:
        return None
    tag = np.frombuffer(tape.rows, np.float64, count=1, offset=row * 80 + 64)[0]
    return NAMES[int(tag)]
