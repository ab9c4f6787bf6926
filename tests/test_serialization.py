"""ad.save / ad.load: bit-for-bit round trips of state dicts and optimizer state, shared tensors, refusal of
anything that is not an ad.save archive (nothing in such a file is executed), and pickling/deep copies of
tensors (values and requires_grad, never the graph)."""

import copy
import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import ad


def _round_trip(obj, tmp_path=None):
    if tmp_path is not None:
        path = tmp_path / "obj.ad"
        ad.save(obj, path)
        return ad.load(path, weights_only=True)
    buf = io.BytesIO()
    ad.save(obj, buf)
    buf.seek(0)
    return ad.load(buf)


def test_state_dict_round_trips_bit_for_bit(tmp_path):
    model = ad.nn.Sequential(ad.nn.Linear(3, 4), ad.nn.Tanh(), ad.nn.Linear(4, 2, dtype=ad.float32))
    sd = model.state_dict()
    loaded = _round_trip(sd, tmp_path)
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(sd)
    for k in sd:
        assert loaded[k].dtype == sd[k].dtype
        assert loaded[k].numpy().tobytes() == sd[k].numpy().tobytes()
    fresh = ad.nn.Sequential(ad.nn.Linear(3, 4), ad.nn.Tanh(), ad.nn.Linear(4, 2, dtype=ad.float32))
    fresh.load_state_dict(loaded)
    x = ad.randn(5, 3)
    np.testing.assert_array_equal(fresh[0](x).detach().numpy(), model[0](x).detach().numpy())


def test_optimizer_state_round_trips_and_resumes():
    w = ad.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = ad.optim.Adam([w], lr=0.1, amsgrad=True)
    for _ in range(3):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    saved = _round_trip({"opt": opt.state_dict(), "w": w.detach(), "epoch": 3})
    assert saved["epoch"] == 3 and sorted(saved["opt"]["state"]) == [0]
    assert saved["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    w2 = saved["w"].clone().requires_grad_()
    opt2 = ad.optim.Adam([w2], lr=0.1, amsgrad=True)
    opt2.load_state_dict(saved["opt"])
    for o, p in ((opt, w), (opt2, w2)):
        o.zero_grad()
        (p**2).sum().backward()
        o.step()
    assert w2.detach().numpy().tobytes() == w.detach().numpy().tobytes()


def test_values_and_sharing():
    t = ad.tensor([1.5, np.nan, -np.inf])
    p = ad.nn.Parameter(ad.ones(2))
    obj = {
        "a": [t, t, (1, 2.5, "s", None, True)],
        3: {"nested": p, (1, 2): ad.Size([2, 3])},
        "dtype": ad.float32,
        "arr": np.arange(4),
        "int": ad.tensor([1, 2], dtype=ad.int64),
        "x": 1e-310,
    }
    back = _round_trip(obj)
    assert back["a"][0] is back["a"][1]  # a tensor saved twice loads as one
    np.testing.assert_array_equal(back["a"][0].numpy(), t.numpy())
    assert back["a"][2] == (1, 2.5, "s", None, True)
    assert isinstance(back[3]["nested"], ad.nn.Parameter) and back[3]["nested"].requires_grad
    assert back[3][(1, 2)] == (2, 3) and isinstance(back[3][(1, 2)], ad.Size)
    assert back["dtype"] == np.float32 and back["int"].dtype == np.int64 and back["x"] == 1e-310
    np.testing.assert_array_equal(back["arr"], np.arange(4))


def test_refuses_what_it_cannot_store():
    with pytest.raises(TypeError, match="save model.state_dict\\(\\) instead"):
        ad.save(ad.nn.Linear(2, 2), io.BytesIO())
    with pytest.raises(TypeError, match="got function"):
        ad.save({"f": lambda: 0}, io.BytesIO())


class _Boom:
    ran = False

    def __reduce__(self):
        return (_Boom._explode, ())

    @staticmethod
    def _explode():
        _Boom.ran = True
        return "exploded"


def test_load_never_executes_code(tmp_path):
    pickled = tmp_path / "evil.pt"
    pickled.write_bytes(pickle.dumps({"x": _Boom()}))
    with pytest.raises(pickle.UnpicklingError, match="not a zip archive"):
        ad.load(pickled)
    # a zip with a pickle inside (torch.save's layout)
    torch_like = tmp_path / "torch_like.pt"
    with zipfile.ZipFile(torch_like, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Boom()))
    with pytest.raises(pickle.UnpicklingError, match="torch.save archive"):
        ad.load(torch_like)
    # an ad archive whose array is an object (pickle) array
    sneaky = tmp_path / "sneaky.ad"
    with zipfile.ZipFile(sneaky, "w") as z:
        z.writestr("ad_index.json", '{"format": "ad.save", "version": 1, "root": ["ndarray", 0]}')
        buf = io.BytesIO()
        np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
        z.writestr("arrays/0.npy", buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="not a plain numpy array"):
        ad.load(sneaky)
    bad_index = tmp_path / "bad.ad"
    with zipfile.ZipFile(bad_index, "w") as z:
        z.writestr("ad_index.json", '{"format": "other"}')
    with pytest.raises(pickle.UnpicklingError, match="does not name the ad.save format"):
        ad.load(bad_index)
    assert not _Boom.ran


def test_torch_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(pickle.UnpicklingError, match="torch.save archive"):
        ad.load(path)


def test_pickle_and_deepcopy_tensors():
    w = ad.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    y.backward(retain_graph=True)  # w has taken part in a recorded op and has a grad
    for t in (w, y, ad.nn.Parameter(ad.ones(2))):
        back = pickle.loads(pickle.dumps(t))
        assert back.is_leaf and back.requires_grad == t.requires_grad
        np.testing.assert_array_equal(back.detach().numpy(), t.detach().numpy())
        assert type(back) is type(t)
    c = copy.deepcopy(w)
    assert c is not w and c.is_leaf and c.requires_grad
    np.testing.assert_array_equal(c.grad.numpy(), w.grad.numpy())
    c.detach().numpy()[0] = 7.0
    assert w.detach().numpy()[0] == 1.0
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(y)
    # deep-copying a module keeps parameters shared inside it shared
    lin = ad.nn.Linear(2, 2)
    twice = ad.nn.Sequential(lin, lin)
    dup = copy.deepcopy(twice)
    assert dup[0] is dup[1] and dup[0].weight is not lin.weight
