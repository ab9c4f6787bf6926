"""The backward sweep of a replayed dense step as a program worked out once per template (``ad/compile.py``).

A step whose big rows run from Python (an MLP: linear rows through BLAS, big tanh rows through the chunk kernels,
small rows such as the loss in the compiled sweep) is swept by ``engine._sweep_stretches``: at each row registered
in ``tape.hook_rows`` it resolves that row's handlers, asks whether they have hooks, whether the row starts a
chain of elementwise rows (``chain_backward.chain_rows``), decodes the row's words and operands
(``big_rows.big_row_head``) and dispatches on its opcode (``big_rows._vectorized_row``). On a replayed tape all of
that is known when the template is finished: which rows run from Python, in which order, with which opcode and
which operands receive a cotangent. ``plan`` writes it down once (a ``BackwardProgram``, ``_Template.backward``),
and ``BackwardProgram.run`` sweeps the tape with it: the compiled kernel over the stretches between those rows and
the same row functions (``big_rows._matmul_row``, ``big_rows._fused_row``) on the same arrays, so the gradients
are the generic sweep's bit for bit.

It is a pure speed-up, taken only where the generic sweep would do exactly this: a sweep of every reached node
(no ``inputs=``/``grad`` restriction), nothing modified in place since the replay and nothing freed (the generic
sweep raises those errors), every row of ``hook_rows`` one of the program's rows with its single replayed tensor
alive and without hooks or ``retain_grad`` (a hook registered after the call, on any tensor of the step, adds a
row or sets them: the generic sweep runs it). Otherwise ``run`` returns False before touching anything.

Data structures:

- ``BackwardProgram.rows``: the Python rows, last first; ``steps``: per such row ``(row, output offset, size,
  kind, linear, opcode, targets)``: ``kind`` "m" (a matmul or linear row: ``_matmul_row``; ``linear``: not a
  matmul) or "e" (an elementwise row: ``_fused_row``); ``targets`` the ``(offset, row, operand index)`` of each
  operand that receives a cotangent (``big_row_head``'s, with the operand's index in ``_inputs``).
- ``BackwardProgram.operands`` (None, or per step where its matmul's two operands are: ``("n", offset, size,
  shape)`` a node's region of the arena, ``("a", k)`` argument k, ``("e", tensor)`` a tensor from outside): set
  where every step is a matrix-vector product with one operand receiving a cotangent (a compiled Hessian-vector
  product's ``A @ x`` and ``g @ A``). Then the replay builds no tensor for the Python rows (``_ReplayTape``'s
  ``hook_rows`` are made on first read: ``ad/compile_replay.py``), and ``run`` reads the operands' arrays where
  those tensors would: the arena, the call's arguments, the tensors from outside. (A row that has no tensor has
  no hooks and no ``retain_grad``: registering either reads ``hook_rows``, which builds the tensors.)
"""

import numpy as np

from kernels import opcodes as K
from kernels.cpu import CHEAP_PARTIAL

from . import engine
from .big_rows import _fused_row, _matmul_row, _matvec_row, _rule_row


class BackwardProgram:
    __slots__ = ("rows", "steps", "operands")

    def run(self, s):
        """Sweep ``s`` (an ``engine._TapeSweep`` of a replayed tape, seeded) as ``engine._sweep_tape`` would;
        False, with nothing done, where the program does not apply (the caller sweeps generically)."""
        tape = s.tape
        if s.plan is not None or tape.dirty:
            return False
        freed = tape.freed
        if freed.shape[0] and freed.any():  # (a replayed tape's first sweep: no flags yet)
            return False  # (the generic sweep raises the freed-graph error, or sweeps what is left)
        if tape.rows_pending is not None:  # no tensor of a Python row was made: the operands' arrays instead
            operands = self._operand_arrays(tape)
            if operands is not None:
                self._sweep_matvecs(s, operands, tape.freed_flags(), tape.arrays() + (_status(),))
                return True
        hook_rows = tape.hook_rows
        rows = self.rows
        if len(hook_rows) != len(rows):
            return False
        nodes = []
        for h in rows:
            refs = hook_rows.get(h)
            if refs is None or len(refs) != 1:
                return False
            t = refs[0]()
            if t is None or t._hooks or t._retains_grad or t._row != h:
                return False
            nodes.append(t)
        freed = tape.freed_flags()
        arrays = tape.arrays() + (_status(),)
        try:
            self._sweep(s, nodes, freed, arrays)
        finally:
            del arrays  # release the buffer exports
        return True

    def _operand_arrays(self, tape):
        """Per step, its matrix-vector product's two operand arrays, as ``_matmul_row`` would read them from the
        row's tensor's ``_inputs``; None (the tensors are then built and the usual sweep runs) without operand
        references, or where an operand is no longer of a matrix-vector product's shape (a tensor from outside
        whose data was rebound since the replay)."""
        refs = self.operands
        if refs is None:
            return None
        values = tape.values
        arrays = []
        for (_, _, _, _, _, _, spec), pair in zip(self.steps, refs):
            xy = []
            for r in pair:
                kind = r[0]
                if kind == "n":  # (a node: its region of the arena, as its tensor's ``_data`` views it)
                    xy.append(values[r[1] : r[1] + r[2]].reshape(r[3]))
                elif kind == "e":
                    xy.append(r[1]._data)
                else:
                    state = tape.rows_pending()
                    if state is None:
                        return None
                    xy.append(state.tensors[r[1]]._data)
            x, y = xy
            k = spec[0][2]
            if x.ndim + y.ndim != 3 or (y if k else x).ndim != 1:
                return None
            arrays.append((x, y))
        return arrays

    def _sweep_matvecs(self, s, operands, freed, arrays):
        """``_sweep`` of a program of matrix-vector products (``operands``: their arrays, per step)."""
        self._walk(s, operands, freed, arrays, _matvec_step)

    def _sweep(self, s, nodes, freed, arrays):
        self._walk(s, nodes, freed, arrays, _node_step)

    def _walk(self, s, items, freed, arrays, run_step):
        """The kernel between the program's steps, and ``run_step(s, step, item)`` at each step a cotangent
        reached (``items``: the steps' nodes, or their operands' arrays), its targets then live."""
        start = s.start
        live = s.live
        run_kernel = engine._run_kernel
        top = s.start
        for step, item in zip(self.steps, items):
            h, out_off = step[0], step[1]
            if h > top:
                continue  # (above the seeded rows: the generic sweep does not stop there either)
            run_kernel(s, start, h + 1, freed, arrays)
            if h < s.lowest:
                return  # nothing at or below this row is reached
            if not live[out_off]:
                start = h  # (the kernel skips the row: no cotangent reached it)
                continue
            s.visited[h] = 1
            run_step(s, step, item)
            for off, row, _ in step[6]:
                live[off] = 1
                if row < s.lowest:
                    s.lowest = row
            start = h - 1
        if start >= 0:
            run_kernel(s, start, 0, freed, arrays)


def _matvec_step(s, step, operands):
    """A matrix-vector product's step, from its operands' arrays (no tensors)."""
    _, out_off, n, _, _, _, ((off, _, k),) = step
    x, y = operands
    _matvec_row(s, off, k, x, y, s.cot[out_off : out_off + n])


def _node_step(s, step, t):
    """A step from its node's tensor: a matmul/linear row, a fused elementwise partial, or the op's rule."""
    _, out_off, n, kind, linear, code, spec = step
    h = step[0]
    inputs = t._inputs
    targets = [(off, row, inputs[k]) for off, row, k in spec]
    g_flat = s.cot[out_off : out_off + n]
    if kind == "m" and (linear or (inputs[0]._data.ndim <= 2 and inputs[1]._data.ndim <= 2)):
        _matmul_row(s, t, g_flat, targets, linear)
    elif kind == "m" or not _fused_row(s, t, code, g_flat, targets, h):
        s.clear_unwritten(targets)  # (as _vectorized_row: the rule adds into the operands' regions)
        _rule_row(s, t, code, n, g_flat, targets)


def plan(tpl):
    """The backward program of a finished template, or None: no row runs from Python, or one does that the
    program does not cover (a row other than a 2-D matmul, linear or elementwise one with a fused partial, hooks
    or ``retain_grad`` recorded, a custom Function, a chain of big elementwise rows, which the generic sweep
    runs in one blocked pass)."""
    python_rows = sorted(tpl.python_rows, reverse=True)
    if not python_rows or set(tpl.hook_rows) != set(python_rows):
        return None
    words, aux = tpl.rows, tpl.aux
    steps = []
    elementwise_rows = set()
    for h in python_rows:
        refs = tpl.hook_rows[h]
        if len(refs) != 1 or refs[0] is None or refs[0][0] != "n":
            return None
        nd = tpl.nodes[refs[0][1]]
        if nd.row != h or nd.nrows != 1 or nd.hooks or nd.retains_grad:
            return None
        op_bits, out_off, x_off, y_off, n, aux_at, x_row, y_row = (int(v) for v in words[h, :8])
        code = op_bits & K.CODE_MASK
        if out_off != nd.off or n != nd.n:
            return None
        spec = []
        if op_bits & K.XRG:
            spec.append((x_off, x_row, 0))
        if op_bits & K.YRG:
            spec.append((y_off, y_row, 1))
        if code in (K.LINEAR, K.LINEAR_BIAS, K.MATMUL):
            if code == K.LINEAR_BIAS and int(aux[aux_at + 5]):
                spec.append((int(aux[aux_at + 3]), int(aux[aux_at + 4]), 2))
            steps.append((h, out_off, n, "m", code != K.MATMUL, code, tuple(spec)))
            continue
        unary = K.is_unary(code)
        binary = K.BINARY_FIRST <= code <= K.BINARY_LAST
        if not (CHEAP_PARTIAL[code] and (unary or binary)):
            return None
        if h - 1 in elementwise_rows or h + 1 in elementwise_rows:
            return None  # (two elementwise rows in a row may make a chain: the generic sweep's blocked pass)
        elementwise_rows.add(h)
        steps.append((h, out_off, n, "e", False, code, tuple(spec)))
    program = BackwardProgram()
    program.rows = python_rows
    program.steps = steps
    program.operands = _matvec_operands(tpl, steps)
    return program


def _matvec_operands(tpl, steps):
    """``BackwardProgram.operands``: per step, the references of its two operands, where every step is a matmul
    (not linear) of two distinct operands, each a node, an argument or a tensor from outside, with one operand
    receiving a cotangent (whether they are a matrix and a vector is seen on the arrays: ``_operand_arrays``);
    else None."""
    operands = []
    for h, _, _, kind, linear, _, spec in steps:
        if kind != "m" or linear or len(spec) != 1:
            return None
        (ref,) = tpl.hook_rows[h]
        pair = tuple(tpl.nodes[ref[1]].inputs[:2])
        if len(pair) != 2 or any(r is None or r[0] not in "nae" for r in pair) or _same_operand(*pair):
            return None
        operands.append(tuple(_located(tpl, r) for r in pair))
    return operands


def _located(tpl, r):
    """An operand reference as ``_operand_arrays`` reads it: a node's as ``("n", offset, size, shape)``."""
    if r[0] != "n":
        return r
    nd = tpl.nodes[r[1]]
    return ("n", nd.off, nd.n, nd.shape)


def _same_operand(x, y):
    return x[0] == y[0] and (x[1] is y[1] if x[0] == "e" else x[1] == y[1])


def _status():
    return np.zeros(3, np.int64)  # (the kernel's status words: engine._run_kernel)
