"""Refusing YAML alias bombs ("billion laughs") before anything expands them.

PyYAML resolves `*alias` to the same Python object, so a few hundred bytes can describe
hundreds of millions of nodes; everything after parsing (normalization's JSON-clean copy,
canonical JSON for audit records, CEL conversion) walks the expanded tree and runs out of
memory. Kubernetes' YAML decoder (go-yaml v3, via sigs.k8s.io/yaml) refuses such documents
with "document contains excessive aliasing"; this applies its rule to a parsed document:
nodes reached through an alias, against all nodes the expanded document has, with a ratio
that tightens from 0.99 at 400,000 nodes to 0.10 at 4,000,000.
"""

from __future__ import annotations

from typing import Any

_RANGE_LOW, _RANGE_HIGH = 400_000, 4_000_000


def _allowed_ratio(decoded: int) -> float:
    if decoded <= _RANGE_LOW:
        return 0.99
    if decoded >= _RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _RANGE_LOW) / (_RANGE_HIGH - _RANGE_LOW)


def _excessive(aliased: int, decoded: int) -> bool:
    return aliased > 100 and decoded > 1000 and aliased / decoded > _allowed_ratio(decoded)


def alias_problem(data: Any) -> str | None:
    """Why `data` (as PyYAML built it, aliases shared) must be refused, as go-yaml v3 would; or None.

    Nodes decoded through an alias are those of the expanded tree beyond the distinct ones;
    each distinct container's expanded size is computed once, so this is linear in them.
    """
    size: dict[int, int] = {}  # id(container) -> nodes in its expansion (0 while being expanded)
    unique = 0  # distinct containers and the scalars they hold
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if done:
            size[id(node)] = 1 + sum(size[id(c)] if isinstance(c, dict | list) else 1 for c in children)
            continue
        if not isinstance(node, dict | list):
            continue
        if id(node) in size:
            if size[id(node)] == 0 and any(n is node for n, d in stack if d):
                return "an anchor's value contains its own alias"
            continue
        size[id(node)] = 0
        unique += 1
        stack.append((node, True))
        for c in children:
            if isinstance(c, dict | list):
                stack.append((c, False))
            else:
                unique += 1
    decoded = size.get(id(data), 1)
    if _excessive(decoded - unique, decoded):
        return f"document contains excessive aliasing ({decoded:,} nodes once aliases are expanded)"
    return None
