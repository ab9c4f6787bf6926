"""``python -m kernels.cuda --ptx sm_90``: compile every kernel of every module in ``MODULES`` to PTX.

Each module lists its kernels in ``PTX_KERNELS`` as ``(python_function, [signature, ...])``. The command
needs numba-cuda with NVVM (``numba-cuda[cu12]`` or ``[cu13]``) and no GPU; it prints
``N kernels compiled to PTX for sm_XY`` and exits 0, or names each kernel that failed and exits 1. It must run
with ``NUMBA_ENABLE_CUDASIM=0`` (the simulator has no compiler): it sets that itself before importing numba.
"""

import argparse
import importlib
import os
import sys
import traceback
import types

NO_NVVM = 3  # exit status when numba-cuda has no NVVM to compile with (tests skip on it)


def _compile_without_gpu(cc):
    """numba-cuda types a call to a device function by compiling it for the current device, which needs a
    GPU; compile device functions for ``cc`` instead, so that PTX can be made on a machine without one (this
    process launches nothing, so nothing else reads the patched function)."""
    from numba.cuda import dispatcher

    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kernels.cuda", description=__doc__.splitlines()[0])
    parser.add_argument("--ptx", metavar="sm_XY", required=True, help="target architecture, e.g. sm_90")
    args = parser.parse_args(argv)
    arch = args.ptx.lower().removeprefix("sm_")
    if not arch.isdigit() or len(arch) < 2:
        parser.error(f"--ptx takes an architecture such as sm_90, got {args.ptx!r}")
    cc = (int(arch[:-1]), int(arch[-1]))
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    from numba import config, cuda

    if config.ENABLE_CUDASIM:
        print("numba was imported with NUMBA_ENABLE_CUDASIM=1; run this command in a fresh process", file=sys.stderr)
        return 2
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except Exception as exc:
        print(f"cannot compile to PTX: NVVM is not available ({exc}); install numba-cuda[cu13]", file=sys.stderr)
        return NO_NVVM
    _compile_without_gpu(cc)  # also with a GPU: device functions for the target, not for the GPU at hand
    from . import MODULES

    count = 0
    failed = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except Exception as exc:
            failed.append(f"{name}: cannot import: {type(exc).__name__}: {exc}")
            continue
        for fn, signatures in module.PTX_KERNELS:
            for sig in signatures:
                try:
                    cuda.compile_ptx(fn, sig, cc=cc)
                except Exception as exc:  # report every failure, then exit non-zero
                    failed.append(f"{name}.{fn.__name__}{sig[4:]}: {type(exc).__name__}: {exc}")
                    if os.environ.get("AD_PTX_TRACEBACK"):
                        traceback.print_exc()
                else:
                    count += 1
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    print(f"{count} kernels compiled to PTX for sm_{arch}" + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
