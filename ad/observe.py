"""Recording observers: what ``ad.compile`` (``ad/compile.py``) needs to hear while it records a template.

While ``observer`` is set (only during a recording call of a compiled function), the few places that let a
tensor's *values* decide something in Python call it, so that the signature being recorded runs eagerly
from then on (replaying the tape would silently reuse the values of the recording call):

- ``observer.value_read(what)``: ``item()``, ``bool()``, ``tolist()``, ``numpy()``, ``__array__``, random
  draws, data-dependent shapes (``nonzero``, ``unique``, ``masked_select``, boolean-mask indexing).
- ``observer.wrote(tensor)``: a tensor's version counter moved (any in-place change).
- ``observer.created(tensor)``: a factory (``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``linspace``,
  ``eye`` and the ``*_like`` ones) made a new tensor: a constant the replay may re-create from its values.
- ``observer.targets(target, t64, ignore_index)``: ``cross_entropy``'s single-row path read the class
  indices of ``target`` (the replay reads them again from the same source).
- ``observer.gathered(out, index, dim)``: ``gather`` made ``out``'s index map from the values of ``index``
  (the replay recomputes the map from the same source at each call); ``index_select`` says so with
  ``dim = ("index_select", dim)``.
- ``observer.shape_map(out)``: ``out``'s index map follows from shapes alone (``pad``'s reflect, replicate and
  circular modes): the replay keeps the recorded one (both recordings must agree on it).
- ``observer.dual_entered(level)``, ``dual_exited(level)``, ``dual_made(out, tangent, level)``,
  ``dual_unpacked(tensor, primal, tangent)`` (``forward_ad``): a dual level inside the function, which
  ``ad/compile_dual.py`` replays where it is forward over reverse.

Everything here costs one global read when no compiled function is recording.
"""

observer = None


def value_read(what):
    """Tell the recording compiled function (if any) that a tensor value was read into Python by ``what``."""
    if observer is not None:
        observer.value_read(what)


def created(t):
    """Tell the recording compiled function (if any) that a factory made ``t``; returns ``t``."""
    if observer is not None:
        observer.created(t)
    return t
