"""torch's top-level spellings of functions ad keeps elsewhere: ``torch.conv2d`` is ``F.conv2d``, ``torch.exp_(x)``
is ``x.exp_()``, ``torch.numel(x)`` is ``x.numel()``. Where torch's top-level function orders its arguments
differently from ``torch.nn.functional``'s (``dropout(input, p, train)``, ``batch_norm``, ``instance_norm``,
``embedding(weight, input)``), the wrapper here takes torch's order.

The top-level losses (``torch.kl_div``, ``torch.poisson_nll_loss``, ...) take ``reduction`` as torch's integer
enum (0: none, 1: mean, 2: sum; any other value: none, as ATen's ``apply_loss_reduction``) in torch's top-level
argument order, and compute ``ad.nn.functional``'s loss.
"""

import functools
import inspect
import warnings

from .nn import functional as F
from .ops.out import write_result
from .tensor import Tensor

# the same arguments at the top level as in torch.nn.functional
SAME_AS_FUNCTIONAL = (
    "adaptive_avg_pool1d adaptive_max_pool1d avg_pool1d bilinear celu celu_ conv1d conv2d conv3d conv_transpose1d "
    "conv_transpose2d conv_transpose3d cosine_similarity hardshrink max_pool1d "
    "max_pool1d_with_indices max_pool2d max_pool3d pairwise_distance pdist pixel_shuffle pixel_unshuffle prelu relu_ "
    "rms_norm rrelu rrelu_ selu selu_ threshold_"
).split()

# torch.exp_(x) is x.exp_()
INPLACE_FUNCTIONS = (
    "abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ ceil_ "
    "clamp_ cos_ cosh_ deg2rad_ detach_ erf_ erfc_ exp2_ exp_ expm1_ fill_ fix_ floor_ frac_ index_put_ log10_ "
    "i0_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ rad2deg_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ square_ "
    "tan_ tanh_ trunc_ xlogy_ zero_ clip_ clamp_min_ clamp_max_ negative_ reciprocal_ gcd_ lcm_ ldexp_"
).split()


def method_alias(name, method_name=None):
    """``torch.<name>(input, ...)``: ``input.<method_name>(...)``, with torch's error for a non-tensor input."""
    method = getattr(Tensor, method_name or name)

    @functools.wraps(method)
    def alias(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
        return method(input, *args, **kwargs)

    alias.__name__ = alias.__qualname__ = name
    sig = inspect.signature(method)
    params = list(sig.parameters.values())
    del alias.__wrapped__
    alias.__signature__ = sig.replace(parameters=[params[0].replace(name="input")] + params[1:])
    return alias


def dropout(input, p, train):
    """``torch.dropout``: ``F.dropout(input, p, training=train)``."""
    return F.dropout(input, p, train)


def alpha_dropout(input, p, train):
    return F.alpha_dropout(input, p, train)


def feature_alpha_dropout(input, p, train):
    return F.feature_alpha_dropout(input, p, train)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    """``torch.batch_norm`` (torch's argument order): ``F.batch_norm``."""
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    """``torch.instance_norm`` (torch's argument order): ``F.instance_norm``."""
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """``torch.embedding(weight, indices)``: ``F.embedding(indices, weight)`` (torch's -1: no padding index)."""
    padding = None if padding_idx == -1 else padding_idx
    return F.embedding(indices, weight, padding, None, 2.0, scale_grad_by_freq, sparse)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    """``torch.layer_norm``: ``F.layer_norm`` (``cudnn_enable`` is ignored)."""
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    """``torch.group_norm``: ``F.group_norm`` (``cudnn_enabled`` is ignored)."""
    return F.group_norm(input, num_groups, weight, bias, eps)


def threshold(input, threshold, value, *, out=None):
    """``torch.threshold``: ``F.threshold`` with ``out=``."""

    return write_result("threshold", F.threshold(input, threshold, value), out)


def _reduction(reduction):
    """torch's ``at::Reduction`` enum as ``nn.functional``'s string."""
    if not isinstance(reduction, int) or isinstance(reduction, bool):
        raise TypeError(f"argument 'reduction' must be int, not {type(reduction).__name__}")
    return {1: "mean", 2: "sum"}.get(reduction, "none")


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    """``torch.binary_cross_entropy_with_logits``: ``F.binary_cross_entropy_with_logits`` (integer reduction)."""
    return F.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                              pos_weight=pos_weight)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    """``torch.cosine_embedding_loss``: ``F.cosine_embedding_loss`` (integer reduction)."""
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    """``torch.hinge_embedding_loss``: ``F.hinge_embedding_loss`` (integer reduction)."""
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def kl_div(input, target, reduction=1, *, log_target=False):
    """``torch.kl_div``: ``F.kl_div`` (integer reduction; 1 is the elementwise mean, without ``F.kl_div``'s
    warning about ``batchmean``, as torch's top-level function)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    """``torch.margin_ranking_loss``: ``F.margin_ranking_loss`` (integer reduction)."""
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    """``torch.poisson_nll_loss``: ``F.poisson_nll_loss`` (every argument required, integer reduction)."""
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, reduction=1):
    """``torch.triplet_margin_loss``: ``F.triplet_margin_loss`` (integer reduction)."""
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


LOSSES = (binary_cross_entropy_with_logits, cosine_embedding_loss, hinge_embedding_loss, kl_div,
          margin_ranking_loss, poisson_nll_loss, triplet_margin_loss)


def install(namespace):
    """Add the aliases to ``namespace`` (ad's) where it has no function of that name yet."""
    extra = {name: getattr(F, name) for name in SAME_AS_FUNCTIONAL}
    extra.update({name: method_alias(name) for name in INPLACE_FUNCTIONS})
    extra.update({"numel": method_alias("numel"), "detach": method_alias("detach")})
    for fn in (dropout, alpha_dropout, feature_alpha_dropout, batch_norm, instance_norm, embedding, layer_norm,
               group_norm, threshold, *LOSSES):
        extra[fn.__name__] = fn
    for name, fn in extra.items():
        namespace.setdefault(name, fn)
