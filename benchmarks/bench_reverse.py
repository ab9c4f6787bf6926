"""asv suites for reverse mode (see `workloads.py` for the workloads and `asv_support.py` for the setup).

- W1 chain-small: forward (recording) and backward of a 2,000-op elementwise chain, by vector size.
- W2 mlp-step: 64x784-512-512-10 tanh MLP with cross-entropy: forward, backward, both, peak memory; by dtype.
- W3 big-elementwise: 8 elementwise ops, by size and dtype: forward, backward, peak memory of both.
- W6 many-leaves: backward into many 8-element leaves, by the number of leaves.
- W8 conv-step: two 3x3 conv2d layers (batch 32, 3 -> 16 -> 32 channels, 32x32): forward, forward+backward.
- deep chains: backward through 10,000 and 100,000 elementwise ops (time linear in the number of nodes).
- norm-step: batch/layer/group/instance norm forward and backward at W8's activations (32, 16, 32, 32).
"""

from .asv_support import LIBS, Suite, W

DTYPES = ["float32", "float64"]


class _ChainSmall(Suite):
    params = (LIBS, [16, 4096])
    param_names = ("lib", "size")

    def build(self, backend, size):
        return W.chain_small(backend, n_ops=2000, size=size)


class ChainSmallForward(_ChainSmall):
    def time_forward(self, lib, size):
        self.wl.forward()


class ChainSmallBackward(_ChainSmall):
    before = ("forward",)

    def time_backward(self, lib, size):
        self.wl.backward()


class _MLP(Suite):
    params = (LIBS, DTYPES)
    param_names = ("lib", "dtype")

    def build(self, backend, dtype):
        return W.mlp_step(backend, dtype)


class MLPForward(_MLP):
    def time_forward(self, lib, dtype):
        self.wl.forward()


class MLPBackward(_MLP):
    before = ("forward",)

    def time_backward(self, lib, dtype):
        self.wl.backward()


class MLPStep(_MLP):
    def time_step(self, lib, dtype):
        self.wl.forward()
        self.wl.backward()


class MLPMemory(_MLP):
    warm = False

    def peakmem_step(self, lib, dtype):
        self.wl.forward()
        self.wl.backward()


class _BigElementwise(Suite):
    params = (LIBS, [65_536, 4_000_000], DTYPES)
    param_names = ("lib", "size", "dtype")

    def build(self, backend, size, dtype):
        return W.big_elementwise(backend, size=size, n_ops=8, dtype=dtype)


class BigElementwiseForward(_BigElementwise):
    def time_forward(self, lib, size, dtype):
        self.wl.forward()


class BigElementwiseBackward(_BigElementwise):
    before = ("forward",)

    def time_backward(self, lib, size, dtype):
        self.wl.backward()


class BigElementwiseMemory(_BigElementwise):
    warm = False

    def peakmem_forward_backward(self, lib, size, dtype):
        self.wl.forward()
        self.wl.backward()


class ManyLeavesBackward(Suite):
    params = (LIBS, [200, 2000])
    param_names = ("lib", "n_leaves")
    before = ("forward",)

    def build(self, backend, n_leaves):
        return W.many_leaves(backend, n_leaves=n_leaves)

    def time_backward(self, lib, n_leaves):
        self.wl.backward()


class DeepChainBackward(Suite):
    """Backward through very deep chains (issue 5): time per node stays flat as depth grows 10x and 100x."""

    params = (LIBS, [10_000, 100_000])
    param_names = ("lib", "depth")
    timeout = 300

    def build(self, backend, depth):
        return W.chain_small(backend, n_ops=depth, size=4)

    before = ("forward",)

    def time_backward(self, lib, depth):
        self.wl.backward()


class _ConvStep(Suite):
    """W8 conv-step: two 3x3 conv2d layers, batch 32, 3 -> 16 -> 32 channels, 32x32 images."""

    params = (LIBS, DTYPES)
    param_names = ("lib", "dtype")

    def build(self, backend, dtype):
        return W.conv_step(backend, dtype)


class ConvForward(_ConvStep):
    def time_forward(self, lib, dtype):
        self.wl.forward()


class ConvStep(_ConvStep):
    def time_step(self, lib, dtype):
        self.wl.forward()
        self.wl.backward()


class NormStep(Suite):
    """One normalization layer's forward and backward at W8's first-layer activations (issue 13)."""

    params = (LIBS, list(W.NORMS), DTYPES)
    param_names = ("lib", "kind", "dtype")

    def build(self, backend, kind, dtype):
        return W.norm_step(backend, kind, dtype)

    def time_step(self, lib, kind, dtype):
        self.wl.forward()
        self.wl.backward()
