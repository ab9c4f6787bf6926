import numpy as np, ad, cProfile, pstats
from ad.autograd.functional import hessian
rng = np.random.default_rng(0)
A = rng.standard_normal((256, 256)) / 16; x0 = rng.standard_normal(256)
At, xt = ad.tensor(A), ad.tensor(x0)
f = lambda: hessian(lambda x: (At @ x).tanh().sum(), xt, vectorize=True, outer_jacobian_strategy="forward-mode")
f()
cProfile.run("f()", "/tmp/p.out")
pstats.Stats("/tmp/p.out").sort_stats("tottime").print_stats(15)
