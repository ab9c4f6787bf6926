"""Pytrees for ``ad.func``: nested tuples, lists, dicts and namedtuples of leaves, as ``torch.utils._pytree``.

``tree_flatten(tree)`` returns ``(leaves, spec)``; ``tree_unflatten(leaves, spec)`` rebuilds the tree. A spec is
a ``TreeSpec`` (the node's type, its context -- a dict's keys or a namedtuple's class -- and the children's specs),
or ``LEAF``. As in torch's Python pytrees (which torch.func uses), ``None`` is a leaf, and two specs are equal when
the structures are.
"""

from ..tensor import Tensor

__all__ = ["LEAF", "TreeSpec", "tree_flatten", "tree_unflatten", "tree_map", "broadcast_prefix"]


class TreeSpec:
    """One node of a tree's structure: ``kind`` ("tuple", "list", "dict", "namedtuple" or "leaf"),
    ``context`` (a dict's keys, a namedtuple's type) and the children's specs."""

    __slots__ = ("kind", "context", "children", "num_leaves")

    def __init__(self, kind, context=None, children=()):
        self.kind = kind
        self.context = context
        self.children = tuple(children)
        self.num_leaves = 1 if kind == "leaf" else sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return (
            isinstance(other, TreeSpec)
            and self.kind == other.kind
            and self.context == other.context
            and self.children == other.children
        )

    def __hash__(self):
        return hash((self.kind, self.children))

    def __repr__(self):
        if self.kind == "leaf":
            return "*"
        inner = ", ".join(repr(c) for c in self.children)
        if self.kind == "tuple":
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        if self.kind == "list":
            return f"[{inner}]"
        if self.kind == "namedtuple":
            return f"{self.context.__name__}({inner})"
        return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.context, self.children)) + "}"


LEAF = TreeSpec("leaf")


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _node(tree):
    """``(kind, context, children)`` for a container, or None for a leaf."""
    cls = type(tree)
    if cls is tuple:
        return "tuple", None, tree
    if cls is dict:
        keys = tuple(tree.keys())
        return "dict", keys, tuple(tree[k] for k in keys)
    if cls is list:
        return "list", None, tree
    if isinstance(tree, Tensor) or tree is None:
        return None
    if isinstance(tree, tuple):
        if _is_namedtuple(tree):
            return "namedtuple", type(tree), tuple(tree)
        return "tuple", None, tree
    if isinstance(tree, list):
        return "list", None, tree
    if isinstance(tree, dict):
        keys = tuple(tree.keys())
        return "dict", keys, tuple(tree[k] for k in keys)
    return None


def tree_flatten(tree):
    """``(leaves, spec)``: the leaves in order (depth first; a dict's in its key order) and the structure."""
    if _node(tree) is None:  # (one leaf: the common case, without the walk)
        return [tree], LEAF
    leaves = []

    def walk(t):
        node = _node(t)
        if node is None:
            leaves.append(t)
            return LEAF
        kind, context, children = node
        return TreeSpec(kind, context, [walk(c) for c in children])

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves, spec):
    """The tree of ``spec``'s structure holding ``leaves`` (in ``tree_flatten``'s order)."""
    leaves = list(leaves)
    if len(leaves) != spec.num_leaves:
        raise ValueError(
            f"tree_unflatten(leaves, treespec): `leaves` has length {len(leaves)} but the spec refers to a pytree "
            f"that holds {spec.num_leaves} items ({spec})."
        )
    it = iter(leaves)

    def build(s):
        if s.kind == "leaf":
            return next(it)
        children = [build(c) for c in s.children]
        if s.kind == "tuple":
            return tuple(children)
        if s.kind == "list":
            return children
        if s.kind == "namedtuple":
            return s.context(*children)
        return dict(zip(s.context, children))

    return build(spec)


def tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


def broadcast_prefix(prefix, spec):
    """``prefix`` (a tree whose leaves -- ints or ``None`` -- stand for whole subtrees of ``spec``'s tree)
    expanded to one value per leaf of ``spec``; None where ``prefix`` does not match ``spec``'s structure (torch's
    ``_broadcast_to_and_flatten``, used for ``in_dims`` and ``out_dims``)."""
    out = []

    def walk(p, s):
        node = _node(p)
        if node is None:  # a leaf of the prefix (an int, or None): the same value for the whole subtree
            out.extend([p] * s.num_leaves)
            return True
        kind, context, children = node
        if s.kind != kind or s.context != context or len(children) != len(s.children):
            if not (kind == "tuple" and s.kind == "namedtuple" and len(children) == len(s.children)):
                return False
        return all(walk(c, cs) for c, cs in zip(children, s.children))

    return out if walk(prefix, spec) else None
