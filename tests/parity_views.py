"""Parity view steps (ad/ops/view_ops.py and the view methods of ad/ops): every view op, for
tests/test_torch_parity.py.

A view step returns a tensor that shares its input's storage in torch; the generator picks an input whose shape
is in the step's ``shapes``, and every result shape broadcasts to (2, 3) (so ops can combine it with the rest of
a program and in-place ops reach the base through it).
"""

from test_torch_parity import ViewSpec

_ANY = ((), (1,), (3,), (1, 1), (1, 3), (2, 1), (2, 3))
_ND = tuple(s for s in _ANY if s)
_MAT = ((1, 1), (1, 3), (2, 1), (2, 3))

PARITY_VIEWS = [
    ViewSpec("view_same", lambda L, x: x.view(x.shape), _ANY),
    ViewSpec("view_flat", lambda L, x: x.view(-1), ((), (1,), (3,), (1, 1), (1, 3))),
    ViewSpec("reshape_same", lambda L, x: x.reshape(tuple(x.shape)), _ANY),
    ViewSpec("view_as", lambda L, x: x.view_as(x), _ANY),
    ViewSpec("unsqueeze0", lambda L, x: x.unsqueeze(0), ((), (1,), (3,))),
    ViewSpec("squeeze", lambda L, x: x.squeeze(), tuple(s for s in _ANY if s != (2, 1))),
    ViewSpec("squeeze0", lambda L, x: x.squeeze(0), _ANY),
    ViewSpec("flatten_row", lambda L, x: x.flatten(), ((), (1,), (3,), (1, 3), (1, 1))),
    ViewSpec("unflatten", lambda L, x: x.unflatten(-1, (1, x.shape[-1])), ((1,), (3,))),
    ViewSpec("slice_row", lambda L, x: x[1:], ((2, 1), (2, 3))),
    ViewSpec("slice_col", lambda L, x: x[..., 1::2], ((3,), (1, 3), (2, 3))),
    ViewSpec("none_index", lambda L, x: x[None], ((), (1,), (3,))),
    ViewSpec("select", lambda L, x: x.select(0, -1), ((2, 1), (2, 3), (1, 3))),
    ViewSpec("getitem_row", lambda L, x: x[0], ((2, 1), (2, 3), (1, 3))),
    ViewSpec("narrow", lambda L, x: x.narrow(-1, 1, 1), ((3,), (1, 3), (2, 3))),
    ViewSpec("t_t", lambda L, x: x.t().t(), ((), (1,), (3,), (1, 1), (1, 3), (2, 1), (2, 3))),
    ViewSpec("T", lambda L, x: x.T[:, :1].T, _MAT),
    ViewSpec("mT", lambda L, x: x.mT[:1].mT, _MAT),
    ViewSpec("transpose_same", lambda L, x: x.transpose(-1, -1), _ANY),
    ViewSpec("transpose", lambda L, x: x.transpose(0, 1)[:, 1:].transpose(0, 1), ((2, 1), (2, 3))),
    ViewSpec("swapaxes", lambda L, x: x.swapaxes(0, 1)[0], ((1, 1), (1, 3))),
    ViewSpec("swapdims", lambda L, x: x.swapdims(0, -1).select(1, 0), ((1, 1), (1, 3))),
    ViewSpec("permute", lambda L, x: x.permute(1, 0)[-1:].permute(1, 0), _MAT),
    ViewSpec("permute_same", lambda L, x: x.permute(tuple(range(x.ndim))), _ANY),
    ViewSpec("movedim", lambda L, x: x.movedim(0, 1).squeeze(-1), ((1, 1), (1, 3))),
    ViewSpec("diagonal", lambda L, x: x.diagonal(), ((1, 1), (1, 3))),
    ViewSpec("diagonal_offset", lambda L, x: x.diagonal(offset=2), ((2, 3),)),
    ViewSpec("expand", lambda L, x: x.expand(2, 3), ((), (1,), (3,), (1, 1), (1, 3), (2, 1), (2, 3))),
    ViewSpec("expand_as", lambda L, x: x.expand_as(L.zeros(2, 3)), _ANY),
    ViewSpec("broadcast_to", lambda L, x: L.broadcast_to(x, (1, 3)), ((), (1,), (3,), (1, 1), (1, 3))),
    ViewSpec("unbind_view", lambda L, x: x.unbind(0)[-1], ((2, 1), (2, 3), (1, 3)), multi_view=True),
    ViewSpec("split_view", lambda L, x: x.split(1, dim=-1)[0], ((3,), (1, 3), (2, 3)), multi_view=True),
    ViewSpec("chunk_view", lambda L, x: x.chunk(2, dim=0)[1], ((2, 1), (2, 3)), multi_view=True),
    ViewSpec("detach", lambda L, x: x.detach(), _ANY),
    # ---- added for issue 17
    ViewSpec("mH", lambda L, x: x.mH[:1].mH, _MAT),
    ViewSpec("H", lambda L, x: x.H[-1:].H, _MAT),
    ViewSpec("unsqueeze_neg", lambda L, x: x.unsqueeze(-2), ((3,), (1,))),
    ViewSpec("squeeze_dims", lambda L, x: x.squeeze((0, 1)), _MAT),
    ViewSpec("reshape_flat", lambda L, x: x.reshape(-1), ((), (1,), (3,), (1, 1), (1, 3))),
    ViewSpec("view_infer", lambda L, x: x.view(-1, x.shape[-1]), _ND),
    ViewSpec("split_sizes_view", lambda L, x: x.split([2, 1], dim=-1)[1], ((3,), (1, 3), (2, 3)), multi_view=True),
    ViewSpec("chunk_last", lambda L, x: x.chunk(3, dim=-1)[2], ((3,), (1, 3), (2, 3)), multi_view=True),
    ViewSpec("unbind_last", lambda L, x: x.unbind(-1)[0].unsqueeze(-1), ((3,), (1, 3), (2, 3)), multi_view=True),
    ViewSpec("getitem_ellipsis", lambda L, x: x[..., None, :][..., 0, :], _ND),
    ViewSpec("getitem_step", lambda L, x: x[::2], ((2, 1), (2, 3))),
]
