"""Op-table cases of views and of in-place writes through views (tests/test_op_table.py reads ``CASES``).

Each case writes through a view or reads a view after a write, so the generic checks (finite differences,
kernel vs differentiable sweep, second order, float32) cover ``CopySlices`` and regenerated views.
"""

import numpy as np

import ad


def _write_through_view(x):
    y = x * 1.0
    v = y[1:]  # a sibling view: regenerated (as_strided_view) when y[:2] is written
    y[:2].mul_(x[:2])
    return y * 2.0 + v.sum()


def _write_base_read_view(x):
    y = x.sin()
    v = y.t()[1]  # a view of a view
    y.add_(x * x)  # a write into the base regenerates v
    return v * y[0].sum()


def _write_view_of_constant(x):
    buf = x.detach() * 0.0  # a constant buffer (no grad): the write makes it part of the graph
    buf[1:].copy_(x[:-1].exp())
    return buf * x


def _inplace_views(x):
    """The in-place view ops (the tensor takes the view's layout and node), on a result and on a view."""
    y = x * x
    y.t_()
    y.unsqueeze_(1)
    y.transpose_(0, 2).swapdims_(1, 2).swapaxes_(0, 1).squeeze_(0)
    v = (x * 1.0).view(3, 2)  # a view takes the new layout and stays a view of its base
    v.t_()
    return y * _ramp(x, 2, 3) + v.sin()


def _ramp(like, *shape):
    return ad.tensor(np.arange(int(np.prod(shape)), dtype=like.dtype).reshape(shape))


CASES = {
    "select": (lambda x: x.select(1, -1) * x.select(0, 0).sum() + ad.select(x, 0, 1), [(3, 3)]),
    "diagonal": (lambda x: x.diagonal() * 2.0 + x.diagonal(1, 1, 2).sum() + x.diagonal(-1, 2, 0).sum(), [(3, 3, 3)]),
    "unbind": (lambda x: x.unbind(1)[0] * x.unbind()[1].sum() + ad.unbind(x, -1)[2], [(3, 3)]),
    "view_ops_composed": (
        lambda x: (
            x.narrow(0, 1, 2).movedim(0, -1).swapaxes(0, 1).unflatten(1, (1, 3)).mT.mH * _ramp(x, 2, 1, 3)
            + x.view_as(_ramp(x, 9)).sum()
            + x[0].expand_as(x).H
        ),
        [(3, 3)],
    ),
    "as_strided_view": (_write_through_view, [(4,)]),
    "view_write_base": (_write_base_read_view, [(3, 2)]),
    "view_write_constant": (_write_view_of_constant, [(4,)]),
    "view_chain": (lambda x: x.view(2, 3).transpose(0, 1).reshape(6)[1:5].unsqueeze(0).expand(2, 4) * 2.0, [(6,)]),
    "inplace_views": (_inplace_views, [(2, 3)]),
}
