"""``Module`` methods about where a module's state lives and how it runs: ``compile`` (its calls replayed by
``ad.compile``), ``to_empty`` (fresh uninitialised parameters and buffers on a device) and ``share_memory``.

They are attached to ``Module`` by ``bind`` (``ad/nn/modules/__init__.py``), keeping ``module.py`` to registration,
traversal, state dicts and hooks.
"""

from ...grad_mode import no_grad
from ...methods import _bump
from ..parameter import is_lazy


def compile(self, *args, **kwargs):  # noqa: A001 - torch's name
    """``Module.compile``: later calls of the module (forward and its hooks) run through ``ad.compile`` with the
    given arguments (torch's ``torch.compile`` ones). Returns None, as torch's.

    Example:
        >>> m = ad.nn.Linear(2, 1)
        >>> m.compile()
        >>> m(ad.ones(3, 2)).shape
        (3, 1)
    """
    from ...compile import compile as ad_compile

    self.__dict__["_compiled_call_impl"] = ad_compile(self._call_impl, *args, **kwargs)


def to_empty(self, *, device, recurse=True):
    """``Module.to_empty``: every parameter and buffer (of the children too, unless ``recurse=False``) replaced by
    an uninitialised tensor of its shape and dtype on ``device``, keeping the Parameter objects. Returns self."""
    from ...creation import empty

    def fresh(t):
        return empty(tuple(t.shape), dtype=t.dtype, device=device)

    modules = self.modules() if recurse else (self,)
    with no_grad():
        for m in modules:
            for p in m._parameters.values():
                if p is None or is_lazy(p):
                    continue
                new = fresh(p)
                p._data = new._data
                p._dev = new._dev
                _bump(p)
                if p._grad is not None:
                    p._grad = fresh(p._grad)
            for k, b in m._buffers.items():
                if b is not None and not is_lazy(b):
                    m._buffers[k] = fresh(b)
    return self


def share_memory(self):
    """``Module.share_memory``: ``share_memory_()`` on every parameter and buffer (see ``ad/storage.py``). Returns
    self."""
    for t in (*self.parameters(), *self.buffers()):
        t.share_memory_()
    return self


def bind(module_class):
    for fn in (compile, to_empty, share_memory):
        setattr(module_class, fn.__name__, fn)
