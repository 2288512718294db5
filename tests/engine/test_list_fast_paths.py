"""The string fast paths of sort(), distinct() and indexOf() answer as the generic CEL-equality code."""

from __future__ import annotations

from typing import Any

import pytest
from charter.engine._internal.cel.library import lists
from charter.engine._internal.cel.library._common import cel_equal

CASES: list[list[Any]] = [
    [],
    ["b", "a", "b", "", "é", "B", "a"],
    ["x"],
    ["1", 1, "1"],
    ["a", b"a", "a"],
    [True, "true", 1.0, 1],
    [["a"], "a", ["a"]],
]


def _generic_distinct(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if not any(cel_equal(x, y) for y in out):
            out.append(x)
    return out


@pytest.mark.parametrize("items", CASES)
def test_distinct_and_index_of_match_the_generic_code(items: list[Any]) -> None:
    assert lists._distinct(items) == _generic_distinct(items)
    for probe in ["a", "1", "", "true", "zz", 1, True, ["a"], b"a"]:
        generic = next((i for i, x in enumerate(items) if cel_equal(x, probe)), -1)
        assert lists._index_of(items, probe) == generic


def test_sort_of_strings_is_by_code_point() -> None:
    items = ["b", "a", "B", "é", "", "a"]
    assert lists._sort(items) == ["", "B", "a", "a", "b", "é"]
    with pytest.raises(Exception, match="sort"):
        lists._sort(["a", 1])
