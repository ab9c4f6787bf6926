"""One thread's share of the blocked backward of a chain of big elementwise rows (``ad/chain_backward.py``), in
one compiled call.

``ad/chain_backward.py`` sweeps a chain block by block: for each block, every row of the chain from the top
down, each row's cotangent block computed from the one above it, only the bottom operand's written to the
arena. From Python that is one kernel dispatch per row and block (~500 per thread for 8 rows over 4M
elements, each a few microseconds with the GIL held, so the threads queue); here the same loops run in one call
per thread, without the GIL. The row arrays (operands and results of the chain's tensors, each its own numpy
array) are passed by address: numba cannot take a list of arrays whose length varies without compiling anew for
each length. The caller keeps the arrays alive for the call.

Arguments: ``meta`` int64 (R, 3) per row from the top: opcode, grad operand (0 or 1), 1 if binary;
``attrs`` float64 (R, 2); ``addrs`` int64 (R, 3): data addresses of x, y (0 for a unary row) and out, each a
contiguous array of ``n`` elements of ``cot``'s dtype; ``extra`` int64 (R,): arena offset of a cotangent that
rows above the chain already gave the operand of row j (added to its block), -1 none; ``cot``: the cotangent
arena; ``head``: the arena offset of the top row's cotangent; ``target``, ``acc_target``: the arena offset of
the bottom operand's cotangent and whether it is added to (else stored); ``scratch`` (2, block). Values equal
the row-by-row sweep's: each row's block goes through ``unary_backward_chunk`` / ``binary_backward_chunk``.
"""

from llvmlite import ir
from numba import carray, njit, types
from numba.extending import intrinsic

from .cpu import KERNEL, binary_backward_chunk, unary_backward_chunk


@intrinsic
def _pointer(typingctx, addr, like):
    """A pointer to ``like``'s dtype at the integer address ``addr``."""
    ptr = types.CPointer(like.dtype)
    sig = ptr(types.int64, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.PointerType(context.get_data_type(like.dtype)))

    return sig, codegen


@njit(**KERNEL)
def chain_backward_chunk(meta, attrs, addrs, extra, cot, head, target, acc_target, n, scratch, lo, hi):
    rows = meta.shape[0]
    block = scratch.shape[1]
    for blo in range(lo, hi, block):
        m = min(block, hi - blo)
        g = cot[head + blo : head + blo + m]
        for j in range(rows):
            last = j == rows - 1
            dst = cot[target + blo : target + blo + m] if last else scratch[j & 1, :m]
            acc = acc_target if last else False
            out = carray(_pointer(addrs[j, 2], cot), n)[blo : blo + m]
            x = carray(_pointer(addrs[j, 0], cot), n)[blo : blo + m]
            if meta[j, 2]:
                y = carray(_pointer(addrs[j, 1], cot), n)[blo : blo + m]
                k = meta[j, 1]
                binary_backward_chunk(meta[j, 0], x, y, out, g, dst, dst, k == 0, k == 1, acc, acc)
            else:
                unary_backward_chunk(meta[j, 0], x, out, g, dst, attrs[j, 0], attrs[j, 1], acc)
            if extra[j] >= 0:
                e = extra[j]
                for i in range(m):
                    dst[i] += cot[e + blo + i]
            g = dst
