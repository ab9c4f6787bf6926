"""asv suites for forward mode, `autograd.forward_ad` (W5 of `workloads.py`).

Value and tangent of the elementwise chain, through W1's chain (2,000 ops, small vectors) and W3's (8 ops, big
vectors, by dtype). `ad` is skipped while it has no `ad.autograd.forward_ad`.
"""

from .asv_support import LIBS, Suite, W


class JVPChainSmall(Suite):
    params = (LIBS, [16, 4096])
    param_names = ("lib", "size")

    def build(self, backend, size):
        return W.jvp_chain(backend, n_ops=2000, size=size)

    def time_jvp(self, lib, size):
        self.wl.total()


class _JVPBig(Suite):
    params = (LIBS, [65_536, 4_000_000], ["float32", "float64"])
    param_names = ("lib", "size", "dtype")

    def build(self, backend, size, dtype):
        return W.jvp_chain(backend, n_ops=8, size=size, dtype=dtype)


class JVPBigElementwise(_JVPBig):
    def time_jvp(self, lib, size, dtype):
        self.wl.total()


class JVPBigElementwiseMemory(_JVPBig):
    warm = False

    def peakmem_jvp(self, lib, size, dtype):
        self.wl.total()
