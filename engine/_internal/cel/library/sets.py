"""The cel-go `sets` extension (sets.contains, sets.equivalent, sets.intersects)."""

from __future__ import annotations

from typing import Any

from ._common import DYN_LIST, T, cel_equal, function, overload


def _contains(haystack: list[Any], needles: list[Any]) -> bool:
    return all(any(cel_equal(n, h) for h in haystack) for n in needles)


def _equivalent(a: list[Any], b: list[Any]) -> bool:
    return _contains(a, b) and _contains(b, a)


def _intersects(a: list[Any], b: list[Any]) -> bool:
    return any(cel_equal(x, y) for x in a for y in b)


def functions() -> list[Any]:
    return [
        function(
            "sets.contains", overload("list_sets_contains_list", T.BOOL, [DYN_LIST, DYN_LIST], _contains)
        ),
        function(
            "sets.equivalent",
            overload("list_sets_equivalent_list", T.BOOL, [DYN_LIST, DYN_LIST], _equivalent),
        ),
        function(
            "sets.intersects",
            overload("list_sets_intersects_list", T.BOOL, [DYN_LIST, DYN_LIST], _intersects),
        ),
    ]
