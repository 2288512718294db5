"""kubernetes.lists: isSorted, sum, min, max, indexOf, lastIndexOf; and cel-go ext.Lists sort, distinct.

Upstream declares one overload per element type; cel-expr-python dispatches Python
functions by argument kind only (every list is one kind), so each function takes
`list(dyn)` and checks element types at evaluation, failing as cel-go does at runtime.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from ._common import DYN_LIST, LibraryError, T, cel_equal, function, no_such_overload, overload

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _family(value: object, function_name: str) -> type:
    """The comparison family of a CEL value; cel-go compares only within one family."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    if isinstance(value, bytes | bytearray):
        return bytes
    for family in (str, datetime, timedelta):
        if isinstance(value, family):
            return family
    raise no_such_overload(function_name)


def _key(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray) else value


def _comparable(items: list[Any], function_name: str) -> list[Any]:
    if items:
        first = _family(items[0], function_name)
        if any(_family(x, function_name) is not first for x in items[1:]):
            raise no_such_overload(function_name)
    return [_key(x) for x in items]


def _returnable(value: Any, function_name: str) -> Any:
    # cel-expr-python cannot return timestamps or durations from a Python function.
    if isinstance(value, datetime | timedelta):
        raise LibraryError(f"{function_name} over timestamps or durations is not supported by charter")
    return value


def _is_sorted(items: list[Any]) -> bool:
    keys = _comparable(items, "isSorted")
    return all(a <= b for a, b in pairwise(keys))


def _sum(items: list[Any]) -> Any:
    if not items:
        return 0
    kinds = {bool if isinstance(x, bool) else type(x) for x in items}
    if len(kinds) != 1 or kinds & {bool, str, bytes, bytearray, list, dict, type(None), datetime}:
        raise no_such_overload("sum")
    total = items[0]
    for x in items[1:]:
        total = total + x
        if isinstance(total, int) and not _INT64_MIN <= total <= _INT64_MAX:
            raise LibraryError("integer overflow")
    return _returnable(total, "sum")


def _extreme(items: list[Any], name: str, pick_max: bool) -> Any:
    keys = _comparable(items, name)
    if not items:
        raise LibraryError(f"{name} called on empty list")
    best = 0
    for i in range(1, len(keys)):
        if (keys[i] > keys[best]) if pick_max else (keys[i] < keys[best]):
            best = i
    return _returnable(items[best], name)


def _min(items: list[Any]) -> Any:
    return _extreme(items, "min", pick_max=False)


def _max(items: list[Any]) -> Any:
    return _extreme(items, "max", pick_max=True)


def _index_of(items: list[Any], item: Any) -> int:
    if type(item) is str:  # CEL equality on strings is Python's, and no other kind equals one
        return next((i for i, x in enumerate(items) if type(x) is str and x == item), -1)
    return next((i for i, x in enumerate(items) if cel_equal(x, item)), -1)


def _last_index_of(items: list[Any], item: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if cel_equal(items[i], item)), -1)


def _sort(items: list[Any]) -> list[Any]:
    """cel-go ext.Lists `sort()`: one comparable element family, ascending."""
    if all(type(x) is str for x in items):
        return sorted(items)  # the usual case (names for a message); equal strings are alike
    keys = _comparable(items, "sort")
    for x in items:
        _returnable(x, "sort")
    return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]


def _distinct(items: list[Any]) -> list[Any]:
    """cel-go ext.Lists `distinct()`: first occurrences, by CEL equality.

    One call instead of the O(n^2) `l.filter(x, l.indexOf(x) == ...)` idiom, each of
    whose indexOf calls would convert the whole list.
    """
    if all(type(x) is str for x in items):
        return list(dict.fromkeys(items))  # first occurrences, in order: CEL string equality is ==
    out: list[Any] = []
    for x in items:
        if not any(cel_equal(x, y) for y in out):
            out.append(_returnable(x, "distinct"))
    return out


def functions() -> list[Any]:
    return [
        function("isSorted", overload("list_is_sorted_bool", T.BOOL, [DYN_LIST], _is_sorted, member=True)),
        function("sum", overload("list_sum", T.DYN, [DYN_LIST], _sum, member=True)),
        function("min", overload("list_min", T.DYN, [DYN_LIST], _min, member=True)),
        function("max", overload("list_max", T.DYN, [DYN_LIST], _max, member=True)),
        function(
            "indexOf", overload("list_a_index_of_int", T.INT, [DYN_LIST, T.DYN], _index_of, member=True)
        ),
        function(
            "lastIndexOf",
            overload("list_a_last_index_of_int", T.INT, [DYN_LIST, T.DYN], _last_index_of, member=True),
        ),
        # Map iteration order differs between processes in cel-cpp: sort before joining into messages.
        function("sort", overload("list_sort", DYN_LIST, [DYN_LIST], _sort, member=True)),
        function("distinct", overload("list_distinct", DYN_LIST, [DYN_LIST], _distinct, member=True)),
    ]
