"""nn.Module's API against torch's, run side by side: hooks (forward, backward, global, always_call), state dicts
(metadata, hooks, extra state, strict errors), traversal, attribute rules, containers; and the recurrent layers'
values and gradients with torch's weights loaded.

``CASES`` maps a name to ``fn(L)``, run once with ``L = torch`` and once with ``L = ad``; the results, after
``_plain`` (tensors to lists, library prefixes out of strings, exceptions to ``(class name, message)``), must be
equal. ``DELIBERATE`` lists where ad differs from torch on purpose, with the reason.
"""

import copy
from collections import OrderedDict

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

DELIBERATE = {
    "in-place op on a hooked module's output": "torch forbids it (its hook Function returns views); ad's hook "
    "Function returns copies, so the in-place op is safe and allowed",
    "pack_padded_sequence with a length past the input": "torch reads past the end of the input (garbage rows); "
    "ad raises RuntimeError",
    "ModuleList.insert(-n-1, m)": "torch raises KeyError('-1') from its renumbering; ad clamps as list.insert does",
    "error messages naming tensor types": "torch says 'FloatTensor' / 'torch.float32'; ad has one Tensor class and "
    "numpy dtype names",
}


def _plain(value):
    if isinstance(value, (torch.Tensor, ad.Tensor)):
        return ("tensor", np.asarray(value.detach().cpu().numpy(), dtype=np.float64).round(12).tolist())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if not hasattr(value, "_fields") else tuple(map(_plain, value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("torch.", "").replace("ad.", "")
    return value


def _run(L, fn):
    try:
        return ("ok", _plain(fn(L)))
    except Exception as e:  # noqa: BLE001 - the class and message are what is compared
        return ("raised", type(e).__name__, _plain(str(e)))


def _linear(L):
    m = L.nn.Linear(2, 3)
    with L.no_grad():
        m.weight.copy_(L.tensor([[1.0, 2], [3, 4], [5, 6]], dtype=m.weight.dtype))
        m.bias.zero_()
    return m


def _names(items):
    return [n for n, _ in items]


def _grads(gs):
    return [None if g is None else g for g in gs]


# ---------------------------------------------------------------------------------------------- forward hooks
def _always_call(L):
    log = []
    m = _linear(L)

    def broken(*args):
        raise ValueError("forward failed")

    m.forward = broken
    m.register_forward_hook(lambda mod, a, o: log.append(("own", o)), always_call=True)
    m.register_forward_hook(lambda mod, a, o: log.append("not always"))
    h = L.nn.modules.module.register_module_forward_hook(lambda mod, a, o: log.append(("global", o)), always_call=True)
    try:
        m(L.ones(1, 2))
    except ValueError as e:
        log.append(str(e))
    finally:
        h.remove()
    return log


def _global_forward_hooks(L):
    log = []
    mod = L.nn.modules.module
    handles = [
        mod.register_module_forward_pre_hook(lambda m, a: log.append(("pre", type(m).__name__))),
        mod.register_module_forward_hook(lambda m, a, o: log.append(("post", type(m).__name__))),
        mod.register_module_forward_hook(lambda m, a, k, o: log.append(("kw", sorted(k))), with_kwargs=True),
    ]
    try:
        seq = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.ReLU())
        seq[1].register_forward_hook(lambda m, a, o: log.append("own hook after the global ones"))
        seq(input=L.zeros(1, 2))
    finally:
        for h in handles:
            h.remove()
    seq(L.zeros(1, 2))  # removed: nothing more logged
    return log


def _hook_order_and_replacement(L):
    m = _linear(L)
    log = []
    m.register_forward_hook(lambda *a: log.append(1))
    m.register_forward_hook(lambda *a: log.append(2), prepend=True)
    m.register_forward_pre_hook(lambda mod, a: (a[0] * 2,))
    m.register_forward_pre_hook(lambda mod, a, k: ((a[0] + 1,), k), with_kwargs=True, prepend=True)
    m.register_forward_hook(lambda mod, a, o: o * 10)
    return m(L.ones(1, 2)), log


# --------------------------------------------------------------------------------------------- backward hooks
class _Two:
    @staticmethod
    def make(L):
        class Two(L.nn.Module):
            def forward(self, a, n, b):
                return a * b, a.detach() * 2, 3

        return Two()


def _backward_hook_layout(L):
    """grad_input: one entry per positional argument (zeros for a tensor no gradient reached, None for a
    non-tensor); grad_output: one per output (None for a non-tensor, a tensor without grad, an unused one)."""
    log = []
    m = _Two.make(L)
    m.register_full_backward_pre_hook(lambda mod, go: log.append(("pre", _grads(go))))
    m.register_full_backward_hook(lambda mod, gi, go: log.append(("full", _grads(gi), _grads(go))))
    a = L.ones(2, requires_grad=True)
    out = m(a, 7, L.full((2,), 3.0))
    out[0].sum().backward()
    return log, a.grad


def _backward_hook_replaces(L):
    m = _linear(L)
    m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 2,))
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 10,))
    x = L.ones(1, 2, requires_grad=True)
    m(x).sum().backward()
    return x.grad, m.weight.grad


def _backward_hook_none_entry(L):
    class Mul(L.nn.Module):
        def forward(self, a, b):
            return a * b

    m = Mul()
    m.register_full_backward_hook(lambda mod, gi, go: (None, gi[1]))
    a, b = L.ones(2, requires_grad=True), L.full((2,), 2.0, requires_grad=True)
    m(a, b).sum().backward()
    return a.grad, b.grad


def _backward_hook_without_input_grads(L):
    """No input requires grad: the full hook fires with the outputs' gradients and a grad_input of Nones, and
    says so in a warning."""
    import warnings

    log = []
    m = _linear(L)
    m.register_full_backward_hook(lambda mod, gi, go: log.append((gi, go)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m(L.ones(1, 2)).sum().backward()
    return log, [str(w.message).split(" See ")[0] for w in caught]


def _global_backward_hooks(L):
    log = []
    mod = L.nn.modules.module
    handles = [
        mod.register_module_full_backward_pre_hook(lambda m, go: log.append(("pre", type(m).__name__))),
        mod.register_module_full_backward_hook(lambda m, gi, go: log.append(("full", type(m).__name__))),
    ]
    try:
        seq = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.Tanh())
        seq(L.ones(1, 2, requires_grad=True)).sum().backward()
    finally:
        for h in handles:
            h.remove()
    return log


def _registration_hooks(L):
    mod = L.nn.modules.module
    log = []

    def shape(t):
        return None if t is None else tuple(t.shape)

    handles = [
        mod.register_module_buffer_registration_hook(lambda m, n, b: log.append(("buffer", n, shape(b)))),
        mod.register_module_module_registration_hook(lambda m, n, s: log.append(("module", n, type(s).__name__))),
        mod.register_module_parameter_registration_hook(lambda m, n, p: log.append(("param", n, shape(p)))),
    ]
    try:
        lin = L.nn.Linear(2, 3)
        seq = L.nn.Sequential(lin)
        seq.act = L.nn.ReLU()
        lin.register_buffer("q", L.zeros(1))
        lin.q = L.ones(2)
        lin.weight = L.nn.Parameter(L.zeros(1))
        lin.register_parameter("z", None)
        seq.add_module("none", None)
        seq.act = None
    finally:
        for h in handles:
            h.remove()
    replaced = []
    for kind, hook, build in (
        ("parameter", lambda m, n, p: L.nn.Parameter(p * 0 + 7), lambda m: setattr(m, "w", L.nn.Parameter(L.zeros(1)))),
        ("buffer", lambda m, n, b: b + 1, lambda m: m.register_buffer("w", L.zeros(1))),
        ("module", lambda m, n, s: L.nn.Tanh(), lambda m: m.add_module("w", L.nn.ReLU())),
    ):
        h = getattr(mod, f"register_module_{kind}_registration_hook")(hook)
        m = L.nn.Module()
        build(m)
        h.remove()
        replaced.append(repr(m.w) if kind == "module" else m.w.tolist())
    return log, replaced


# ------------------------------------------------------------------------------------------------ state dicts
def _state_dict_metadata(L):
    sd = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.BatchNorm1d(2), L.nn.LayerNorm(2)).state_dict()
    return dict(sd._metadata), list(sd)


def _state_dict_hooks(L):
    log = []
    m = L.nn.Sequential(L.nn.Linear(2, 2))
    m.register_state_dict_pre_hook(lambda mod, prefix, keep_vars: log.append(("pre", prefix, keep_vars)))
    m[0].register_state_dict_pre_hook(lambda mod, prefix, keep_vars: log.append(("pre", prefix, keep_vars)))

    def add_entry(mod, sd, prefix, local_metadata):
        sd[prefix + "extra"] = L.zeros(1)
        log.append(("post", prefix, dict(local_metadata)))

    m[0].register_state_dict_post_hook(add_entry)
    return log, list(m.state_dict(keep_vars=True))


def _state_dict_post_hook_returns(L):
    m = L.nn.Linear(1, 1)
    m.register_state_dict_post_hook(lambda *a: {})
    m.state_dict()


def _load_hooks(L):
    log = []
    m = L.nn.Sequential(L.nn.Linear(2, 2))

    def rename(mod, sd, prefix, local_metadata, strict, missing, unexpected, errors):
        log.append(("pre", prefix, local_metadata, strict))
        if prefix + "w" in sd:
            sd[prefix + "weight"] = sd.pop(prefix + "w")

    def forgive(mod, keys):
        log.append(("post", type(mod).__name__, list(keys.missing_keys), list(keys.unexpected_keys)))
        keys.unexpected_keys.clear()

    m[0].register_load_state_dict_pre_hook(rename)
    m.register_load_state_dict_post_hook(forgive)
    given = {"0.w": L.full((2, 2), 3.0), "0.bias": L.zeros(2), "x": L.zeros(1)}
    result = m.load_state_dict(given)
    return log, repr(result), m[0].weight, sorted(given)


def _load_post_hook_returns(L):
    m = L.nn.Linear(1, 1)
    m.register_load_state_dict_post_hook(lambda *a: 3)
    m.load_state_dict(m.state_dict())


def _extra_state(L):
    class Counter(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.count = 0

        def get_extra_state(self):
            return {"count": 7}

        def set_extra_state(self, state):
            self.count = state["count"]

    sd = Counter().state_dict()
    other = Counter()
    other.load_state_dict(sd)
    return list(sd), other.count, _run(L, lambda L: Counter().load_state_dict({}))


def _extra_state_unexpected(L):
    L.nn.Linear(1, 1).load_state_dict({"weight": L.zeros(1, 1), "bias": L.zeros(1), "_extra_state": 3})


def _load_strict_errors(L):
    m = L.nn.Linear(2, 2)
    return [
        _run(L, lambda L: m.load_state_dict({"weight": L.zeros(3, 2), "extra": L.zeros(1)})),
        _run(L, lambda L: repr(m.load_state_dict({"weight": L.zeros(2, 2), "extra": L.zeros(1)}, strict=False))),
        _run(L, lambda L: m.load_state_dict({"weight": L.zeros(3, 2)}, strict=False)),
        _run(L, lambda L: repr(m.load_state_dict(m.state_dict()))),
    ]


def _migrating_module(L, log):
    """A module whose ``_load_from_state_dict`` renames an old checkpoint's keys (its own and its child's)."""

    class Old(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = L.nn.Linear(2, 2)
            self.register_buffer("b", L.zeros(2))

        def _load_from_state_dict(self, sd, prefix, metadata, strict, missing, unexpected, errors):
            log.append(("old", prefix, dict(metadata), strict, sorted(sd), list(missing), list(unexpected)))
            for old, new in (("old_b", "b"), ("old_lin.weight", "lin.weight")):
                if prefix + old in sd:
                    sd[prefix + new] = sd.pop(prefix + old)
            super()._load_from_state_dict(sd, prefix, metadata, strict, missing, unexpected, errors)
            log.append(("old after", list(missing), list(unexpected), list(errors)))

    class Top(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.o = Old()
            self.w = L.nn.Parameter(L.zeros(3))

    m = Top()
    m.o.lin.register_load_state_dict_pre_hook(lambda mod, sd, prefix, *a: log.append(("pre lin", prefix, sorted(sd))))
    m.register_load_state_dict_post_hook(lambda mod, k: log.append(("post top", list(k.missing_keys))))
    m.o.register_load_state_dict_post_hook(lambda mod, k: log.append(("post o", list(k.unexpected_keys))))
    return m


def _load_from_state_dict_override(L):
    log = []
    old = {
        "w": L.ones(3),
        "o.old_b": L.full((2,), 2.0),
        "o.old_lin.weight": L.full((2, 2), 3.0),
        "o.zzz": L.ones(1),
        "o.lin.q.r": L.ones(1),
    }
    m = _migrating_module(L, log)
    keys = repr(m.load_state_dict(old, strict=False))
    loaded = [m.w, m.o.b, m.o.lin.weight]
    m = _migrating_module(L, [])
    # strict: a size mismatch and the unexpected keys are raised after the copies (w and b are loaded)
    failed = _run(L, lambda L: m.load_state_dict({**old, "o.lin.bias": L.ones(5)}))
    return log, keys, loaded, sorted(old), failed, [m.w, m.o.b]


def _load_from_state_dict_versions(L):
    class Versioned(L.nn.Linear):
        _version = 2

        def _load_from_state_dict(self, sd, prefix, metadata, *rest):
            if metadata.get("version", 1) < 2 and prefix + "w" in sd:
                sd[prefix + "weight"] = sd.pop(prefix + "w")
            super()._load_from_state_dict(sd, prefix, metadata, *rest)

    seen = []
    m = L.nn.Sequential(Versioned(1, 1))
    m[0].register_load_state_dict_pre_hook(lambda mod, sd, prefix, metadata, *a: seen.append(dict(metadata)))
    current = m.state_dict()
    current["0.weight"] = L.full((1, 1), 4.0)
    old = OrderedDict({"0.w": L.full((1, 1), 5.0), "0.bias": L.zeros(1)})
    old._metadata = {"0": {"version": 1}}
    given = L.nn.Parameter(L.full((1, 1), 6.0))
    results = [repr(m.load_state_dict(current)), m[0].weight.tolist(), repr(m.load_state_dict(old)), m[0].weight]
    m.load_state_dict({"0.weight": given, "0.bias": L.zeros(1)}, assign=True)
    return results, m[0].weight is given, seen


def _load_from_state_dict_base_calls(L):
    lin = _linear(L)
    log = []
    lin.register_load_state_dict_pre_hook(lambda mod, sd, prefix, *a: log.append(prefix))
    out = []
    for strict, sd in [
        (True, {"p.weight": L.ones(3, 2), "p.x": L.ones(1), "q.bias": L.ones(3)}),
        (False, {"p.weight": L.ones(3, 2), "p.x": L.ones(1), "p.bias": L.ones(4)}),
        (True, {"p.weight": L.ones(3, 2), "p.bias": 3.0}),
    ]:
        missing, unexpected, errors = [], [], []
        lin._load_from_state_dict(sd, "p.", {}, strict, missing, unexpected, errors)
        out.append((missing, unexpected, errors))
    saved = OrderedDict()
    lin._save_to_state_dict(saved, "s.", False)
    return out, log, lin.weight, saved


def _load_from_state_dict_without_super(L):
    class Skips(L.nn.Linear):
        def _load_from_state_dict(self, *args):
            log.append("override")

    log = []
    m = Skips(1, 1)
    m.register_load_state_dict_pre_hook(lambda *a: log.append("pre hook"))  # runs in the base method only
    before = m.weight.tolist()
    return repr(m.load_state_dict({"weight": L.ones(1, 1)})), log, m.weight.tolist() == before


# ------------------------------------------------------------------------------ traversal, attributes, containers
def _submodule_errors(L):
    m = L.nn.Sequential(L.nn.Linear(1, 1))
    return [
        _run(L, lambda L: m.get_submodule("1")),
        _run(L, lambda L: m.get_submodule("0.weight")),
        _run(L, lambda L: m.get_parameter("0.foo")),
        _run(L, lambda L: m.get_buffer("0.weight")),
        _run(L, lambda L: m.get_buffer("0.x")),
    ]


def _set_submodule(L):
    m = L.nn.Sequential(L.nn.Sequential(L.nn.ReLU()))
    m.set_submodule("0.0", L.nn.Tanh())
    m.not_a_module = 3
    return [
        repr(m),
        _run(L, lambda L: m.set_submodule("0.5.1", L.nn.Tanh())),
        _run(L, lambda L: m.set_submodule("", L.nn.Tanh())),
        _run(L, lambda L: m.set_submodule("0.1", 3)),
        _run(L, lambda L: m.set_submodule("0.zz", L.nn.Tanh(), strict=True)),
        _run(L, lambda L: m.set_submodule("not_a_module", L.nn.Tanh())),
    ]


def _shared_parameters(L):
    a, b = L.nn.Linear(1, 1), L.nn.Linear(1, 1)
    b.weight = a.weight
    m = L.nn.Sequential(a, b, a)
    return (
        _names(m.named_parameters()),
        _names(m.named_parameters(remove_duplicate=False)),
        _names(m.named_modules(remove_duplicate=False)),
        _names(m.named_parameters(prefix="p", recurse=False)),
        list(m.state_dict()),
    )


def _sequential_ops(L):
    s = L.nn.Sequential(L.nn.ReLU(), L.nn.Tanh())
    twice = s * 2
    s *= 2
    return [
        repr(twice),
        twice[0] is twice[2],
        repr(3 * L.nn.Sequential(L.nn.ReLU())),
        len(s),
        _run(L, lambda L: s * 0),
        _run(L, lambda L: s * 1.5),
    ]


def _parameterdict_methods(L):
    pd = L.nn.ParameterDict({"a": L.zeros(1), "b": L.ones(2)})
    out = [list(reversed(pd)), list(pd.copy()), pd.copy()["a"] is pd["a"]]
    out += [pd.setdefault("z", L.ones(3)), type(pd["z"]).__name__, pd.setdefault("a", L.ones(5)), pd.popitem()[0]]
    fresh = pd.fromkeys(["x", "y"], L.ones(2))
    out += [type(fresh).__name__, list(fresh), type(fresh["x"]).__name__, list(pd)]
    out.append(_run(L, lambda L: L.nn.ParameterDict().popitem()))
    out.append(_run(L, lambda L: L.nn.ParameterDict().__setitem__(1, L.zeros(1))))
    other = L.nn.ParameterDict({"w": L.zeros(1)})
    out += [list(pd | other), list(other.__ror__(pd)), list(pd.__ior__(other)), list(pd)]
    seq = L.nn.Sequential(L.nn.ReLU())
    same = seq
    seq += L.nn.Sequential(L.nn.Tanh())
    out += [seq is same, len(seq), _run(L, lambda L: seq.__iadd__([L.nn.ReLU()]))]
    return out


def _moduledict_update_error(L):
    L.nn.ModuleDict().update(3)


def _setattr_rules(L):
    m = L.nn.Sequential(L.nn.Linear(1, 1))
    return [
        _run(L, lambda L: setattr(m, "0", "x")),
        _run(L, lambda L: setattr(m[0], "weight", None) or list(m.state_dict())),
        _run(L, lambda L: delattr(m[0], "bias") or list(m.state_dict())),
        _run(L, lambda L: delattr(m[0], "nothing")),
    ]


def _pad_sequence_errors(L):
    pad = L.nn.utils.rnn.pad_sequence
    return [
        _run(L, lambda L: pad([L.ones(2, 2), L.ones(3, 3)])),
        _run(L, lambda L: pad([])),
        _run(L, lambda L: pad([L.ones(2)], padding_side="middle")),
    ]


def _to_conversions(L):
    m = L.nn.BatchNorm1d(2)
    m.weight.grad = L.ones(2)
    weight = m.weight
    m.to(memory_format=getattr(L, "preserve_format", None))
    m.half()
    halves = [str(t.dtype) for t in (*m.parameters(), *m.buffers(), m.weight.grad)]
    m.to(dtype=L.float64)
    return halves, [str(t.dtype) for t in (*m.parameters(), *m.buffers(), m.weight.grad)], m.weight is weight


def _deepcopy(L):
    m = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.BatchNorm1d(2))
    log = []
    m.register_forward_hook(lambda *a: log.append(1))
    m2 = copy.deepcopy(m)
    m2(L.ones(3, 2))
    return m2[0].weight is m[0].weight, type(m2[0].weight).__name__, list(m2.state_dict()), log


CASES = {
    "forward hook always_call (own and global) when forward raises": _always_call,
    "global forward pre/post hooks run before the module's own": _global_forward_hooks,
    "forward hook order, prepend and replacements": _hook_order_and_replacement,
    "full backward hooks' grad_input / grad_output layout": _backward_hook_layout,
    "backward (pre) hooks replace grad_output and grad_input": _backward_hook_replaces,
    "backward hook returning None for an input": _backward_hook_none_entry,
    "global full backward (pre) hooks": _global_backward_hooks,
    "full backward hook without input gradients": _backward_hook_without_input_grads,
    "global buffer / module / parameter registration hooks": _registration_hooks,
    "state_dict _metadata and versions": _state_dict_metadata,
    "state_dict pre/post hooks": _state_dict_hooks,
    "state_dict post hook must return None": _state_dict_post_hook_returns,
    "load_state_dict pre hook renames, post hook forgives": _load_hooks,
    "load_state_dict post hook must return None": _load_post_hook_returns,
    "get/set_extra_state": _extra_state,
    "_extra_state unexpected without set_extra_state": _extra_state_unexpected,
    "load_state_dict strict errors and the returned keys": _load_strict_errors,
    "_load_from_state_dict override migrates keys, in torch's order": _load_from_state_dict_override,
    "_load_from_state_dict override reads the saved version; assign": _load_from_state_dict_versions,
    "_load_from_state_dict / _save_to_state_dict called directly": _load_from_state_dict_base_calls,
    "_load_from_state_dict override not calling the base": _load_from_state_dict_without_super,
    "get_submodule / get_parameter / get_buffer errors": _submodule_errors,
    "set_submodule": _set_submodule,
    "shared parameters and modules in traversal": _shared_parameters,
    "Sequential * n": _sequential_ops,
    "ModuleDict.update of a non-iterable": _moduledict_update_error,
    "ParameterDict's dict methods, Sequential +=": _parameterdict_methods,
    "__setattr__ / __delattr__ rules": _setattr_rules,
    "deepcopy keeps hooks, copies parameters": _deepcopy,
    "to / half / double: parameters, buffers, gradients": _to_conversions,
    "pad_sequence errors": _pad_sequence_errors,
}


@pytest.mark.parametrize("name", list(CASES))
def test_module_api_matches_torch(name):
    torch.manual_seed(0)
    expected = _run(torch, CASES[name])
    got = _run(ad, CASES[name])
    assert got == expected


# ------------------------------------------------------------------------------------------- recurrent layers
def _to_ad(tm, am):
    am.load_state_dict({k: ad.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


RNN_CASES = [
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True, dropout=0.3, proj_size=2), False),
    ("GRU", dict(num_layers=2, bidirectional=True, bias=False), False),
    ("RNN", dict(nonlinearity="relu", bidirectional=True), True),
    ("LSTM", dict(proj_size=2), True),
]


@pytest.mark.parametrize("kind,kwargs,unbatched", RNN_CASES)
def test_rnn_values_and_gradients_match_torch(kind, kwargs, unbatched):
    """Outputs, final states and gradients (input, initial states, every weight) with torch's weights, in eval
    (dropout off)."""
    rng = np.random.default_rng(0)
    tm = getattr(torch.nn, kind)(2, 3, **kwargs).double().eval()
    am = getattr(ad.nn, kind)(2, 3, **kwargs).eval()
    _to_ad(tm, am)
    layers_dirs = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    x = rng.standard_normal((4, 2) if unbatched else ((3, 4, 2) if kwargs.get("batch_first") else (4, 3, 2)))
    batch = () if unbatched else (3,)
    h0 = rng.standard_normal((layers_dirs, *batch, kwargs.get("proj_size", 0) or 3))
    c0 = rng.standard_normal((layers_dirs, *batch, 3))
    results = []
    for L in (torch, ad):
        leaves = [L.tensor(v, requires_grad=True) for v in (x, h0, c0)]
        state = (leaves[1], leaves[2]) if kind == "LSTM" else leaves[1]
        module = tm if L is torch else am
        out, final = module(leaves[0], state)
        finals = final if isinstance(final, tuple) else (final,)
        loss = (out * L.tensor(np.cos(np.arange(out.numel())).reshape(tuple(out.shape)))).sum()
        loss = loss + sum((f**2).sum() for f in finals)
        loss.backward()
        grads = [leaf.grad for leaf in leaves[: 3 if kind == "LSTM" else 2]]
        grads += [p.grad for _, p in sorted(module.named_parameters())]
        results.append([np.asarray(t.detach().numpy()) for t in (out, *finals, *grads)])
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_lstm_matches_torch(enforce_sorted):
    rng = np.random.default_rng(1)
    tm = torch.nn.LSTM(2, 3, bidirectional=True, batch_first=True).double()
    am = ad.nn.LSTM(2, 3, bidirectional=True, batch_first=True)
    _to_ad(tm, am)
    lengths = [4, 3, 1] if enforce_sorted else [2, 4, 3]
    x = rng.standard_normal((3, 4, 2))
    results = []
    for L, module in ((torch, tm), (ad, am)):
        rnn = L.nn.utils.rnn
        xt = L.tensor(x, requires_grad=True)
        packed = rnn.pack_padded_sequence(xt, lengths, batch_first=True, enforce_sorted=enforce_sorted)
        out, (h, c) = module(packed)
        padded, out_lengths = rnn.pad_packed_sequence(out, batch_first=True, padding_value=-1.0, total_length=5)
        (padded.sum() + (h**2).sum() + c.sum()).backward()
        results.append([padded, h, c, xt.grad, module.weight_hh_l0_reverse.grad, out_lengths])
    for want, got in zip(*results):
        np.testing.assert_allclose(np.asarray(got.detach().numpy()), want.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_state_dict_metadata_survives_a_round_trip_through_load():
    """The metadata ``state_dict`` attaches reaches load pre-hooks as each module's local metadata."""
    m = ad.nn.Sequential(ad.nn.BatchNorm1d(2))
    seen = []
    m[0].register_load_state_dict_pre_hook(lambda mod, sd, prefix, meta, *rest: seen.append((prefix, meta)))
    sd = m.state_dict()
    m.load_state_dict(sd)
    assert seen == [("0.", {"version": 2})]
    assert isinstance(sd, OrderedDict) and sd._metadata[""] == {"version": 1}


def test_deliberate_differences_hold():
    """ad's side of ``DELIBERATE``: an in-place op on a hooked module's output is allowed and its gradient right;
    a length past the input is an error rather than a read past its end."""
    relu = ad.nn.ReLU(inplace=True)
    relu.register_full_backward_hook(lambda *a: None)
    x = ad.tensor([-1.0, 2.0], requires_grad=True)
    out = relu(x * 3)
    out.mul_(2)
    out.sum().backward()
    assert x.grad.tolist() == [0.0, 6.0]
    with pytest.raises(RuntimeError, match="at most 4"):
        ad.nn.utils.rnn.pack_padded_sequence(ad.zeros(4, 3, 2), [5, 3, 2])
    ml = ad.nn.ModuleList([ad.nn.ReLU()])
    ml.insert(-5, ad.nn.Tanh())
    assert [type(m).__name__ for m in ml] == ["Tanh", "ReLU"]
