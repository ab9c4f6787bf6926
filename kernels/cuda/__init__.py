"""``@cuda.jit`` kernels of ``ad`` and the host functions that launch them (numba-cuda; CuPy's cuBLAS for matmul
when it is there).

Importing this package imports nothing of numba.cuda: each module below does, and ``ad`` imports them only
when a CUDA tensor is made. Every host function takes numba device arrays, or anything that has
``__cuda_array_interface__`` (CuPy, torch), C-contiguous unless its docstring says otherwise, float32 or
float64 (one dtype per call unless it says otherwise); it launches its kernels on the default stream and
returns without synchronizing. Under ``NUMBA_ENABLE_CUDASIM=1`` the same code runs in numba-cuda's simulator.
Every kernel is ``cache=True``, as the CPU kernels: a process compiles a kernel (per signature, and per opcode
for the specialized ones: closures, whose cell contents key numba's cache) once, later processes load it.

Modules (start reading at ``launch``, which holds the layout of the small int64 ``meta`` arrays the kernels
take for shapes and strides):

- ``launch``: host helpers (device arrays, grid sizes, broadcast strides, the meta arrays).
- ``device``: the device functions: ``kernels/pointwise.py``'s formulas compiled for the GPU, strided offsets.
- ``elementwise``: unary / binary forward and backward with numpy broadcasting, comparisons, where, fill, cast.
- ``reduce``: sum / mean / amax / amin / prod over any set of dims as shared-memory block reductions, also
  used to undo broadcasting in the binary backward.
- ``strided``: strided gather / scatter-add (views, expand, permute, slicing) and index-map gather /
  scatter-add (integer indexing).
- ``matmul``: batched matmul and linear (cuBLAS through CuPy on a GPU, tiled shared-memory kernel otherwise).
- ``softmax``: log_softmax forward / backward over a dim, cross_entropy with class targets.
- ``scan``: cumsum along a dim (a block-level scan).
- ``pool``: gathers by device-resident indices (the GATHER_INDEXED row) and max unpooling's source map.

Host functions (each documents its arrays' shapes and dtypes):

- elementwise: ``unary_forward``, ``binary_forward``, ``unary_backward``, ``binary_backward``, ``unary_jvp``,
  ``binary_jvp``, ``compare``, ``where``, ``fill``, ``cast``, ``copy``;
- reduce: ``reduce`` (sum, mean, prod, amax, amin), ``reduce_backward``;
- strided: ``gather_strided``, ``scatter_add_strided``, ``gather_map``, ``scatter_add_map``;
- matmul: ``matmul``, ``matmul_backward``, ``linear``, ``linear_backward``;
- softmax: ``log_softmax_forward``, ``log_softmax_backward``, ``cross_entropy_forward``,
  ``cross_entropy_backward``.

Device functions for other kernels (the device sweep): ``device.py`` (``unary_value``, ``unary_partial``,
``binary_partial_x`` ..., ``aux_view_offset``). ``python -m kernels.cuda.bench`` measures them on a GPU.

``MODULES`` lists the modules whose ``PTX_KERNELS`` (``[(python_function, [signature, ...]), ...]``)
``python -m kernels.cuda --ptx sm_90`` compiles.
"""

MODULES = [
    "elementwise",
    "reduce",
    "strided",
    "matmul",
    "softmax",
    "sweep",
    "ad_glue",
    "scan",
    "pool",
]
