"""``ad.optim.swap_in_optimizer_params_and_state``: run an optimizer's APIs against other parameters and state
for a while (torch 2.13's public context manager), restoring the live ones after."""

import contextlib
from collections import defaultdict

__all__ = ["swap_in_optimizer_params_and_state"]


@contextlib.contextmanager
def swap_in_optimizer_params_and_state(optimizer, swapin_parameters, swapin_optim_state):
    """Temporarily replace ``optimizer``'s parameters and state with the supplied ones; every optimizer API
    (``step``, hooks, ``state_dict``) sees them inside the context, and the live ones are restored on exit
    (also when the block raises).

    The state's tensors are used as they are, so their in-place updates (``step``'s moments and step counts)
    land in ``swapin_optim_state``; any other change (a new tensor assigned into the state, a changed ``lr``)
    is dropped on exit, as torch.

    Args:
        optimizer: the live optimizer; its state must already be initialized (one ``step`` taken).
        swapin_parameters: a dict of tensors to use as the parameters, in the order of the optimizer's own
            (``model.named_parameters()`` order).
        swapin_optim_state: an ``optimizer.state_dict()``-shaped dict: ``"state"`` keyed by packed parameter
            ids, ``"param_groups"`` with each ``"params"`` a list of those ids and the groups' hyperparameters.

    Raises:
        RuntimeError: the optimizer has no state yet, or the number of parameters differs from the
            optimizer's (torch's messages).

    Example:
        >>> params = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
        >>> osd = copy.deepcopy(opt.state_dict())
        >>> with ad.optim.swap_in_optimizer_params_and_state(opt, params, osd):
        ...     opt.step()   # updates params and osd's moments; model and opt are untouched
    """
    if not optimizer.state:
        raise RuntimeError("swap_in_optimizer_params_and_state requires initialized optimizer state.")
    params = list(swapin_parameters.values())
    if len(params) != sum(len(group["params"]) for group in optimizer.param_groups):
        raise RuntimeError(
            "swap_in_optimizer_params_and_state requires the explicit parameter state to match "
            "optimizer.param_groups ordering."
        )
    by_id = {}
    groups = []
    position = 0
    for group in swapin_optim_state["param_groups"]:
        swapped = {key: value for key, value in group.items() if key != "params"}  # (a copy: edits are dropped)
        swapped["params"] = []
        for packed in group["params"]:
            p = params[position]
            position += 1
            by_id[packed] = p
            swapped["params"].append(p)
        groups.append(swapped)
    state = defaultdict(dict)
    entries = swapin_optim_state["state"]
    for packed, p in by_id.items():  # (an entry per parameter, empty where the dict has none, as torch)
        state[p] = dict(entries.get(packed, {}))  # (the same tensors: in-place updates reach the caller's)
    live_groups, live_state = optimizer.param_groups, optimizer.state
    optimizer.param_groups, optimizer.state = groups, state
    try:
        yield
    finally:
        optimizer.param_groups, optimizer.state = live_groups, live_state
