"""isGreaterThan, isLessThan and compareTo, shared by Quantity and Semver.

Both types are the same tagged-map CEL type here, so one overload per name
dispatches on the tag; mixing a quantity with a semver is 'no such overload'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import quantity, semver
from ._common import TAGGED, T, function, kind_of, no_such_overload, overload

_COMPARERS: dict[str, Callable[[object, object, str], int]] = {
    quantity.KIND: quantity.compare,
    semver.KIND: semver.compare,
}


def _compare(a: object, b: object, name: str) -> int:
    kind = kind_of(a)
    comparer = _COMPARERS.get(kind or "")
    if comparer is None or kind_of(b) != kind:
        raise no_such_overload(name)
    return comparer(a, b, name)


def _is_greater_than(a: object, b: object) -> bool:
    return _compare(a, b, "isGreaterThan") == 1


def _is_less_than(a: object, b: object) -> bool:
    return _compare(a, b, "isLessThan") == -1


def _compare_to(a: object, b: object) -> int:
    return _compare(a, b, "compareTo")


def functions() -> list[Any]:
    t = TAGGED
    return [
        function("isGreaterThan", overload("is_greater_than", T.BOOL, [t, t], _is_greater_than, member=True)),
        function("isLessThan", overload("is_less_than", T.BOOL, [t, t], _is_less_than, member=True)),
        function("compareTo", overload("compare_to", T.INT, [t, t], _compare_to, member=True)),
    ]
