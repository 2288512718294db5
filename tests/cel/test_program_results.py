"""A program's value or its error: never one for the other.

cel-expr-python gives an error value whose plain value is its status text, so a string
result and an error must be told apart by type, while every other result is a value.
"""

from __future__ import annotations

from typing import Any

import pytest
from charter.engine._internal.cel.program import compile_expression, new_activation


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 1", 2),
        ("'NOT_FOUND: Key not found in map'", "NOT_FOUND: Key not found in map"),  # looks like an error
        ("''", ""),
        ("[true, 'x', 1.5]", [True, "x", 1.5]),
        ("{'a': [1]}", {"a": [1]}),
        ("null", None),
        ("workload.?missing.orValue('dflt')", "dflt"),
        ("optional.of(1).value()", 1),
    ],
)
def test_values(source: str, value: Any) -> None:
    program = compile_expression(source)
    assert program.run(new_activation({"workload": {"x": 1}})) == (value, None)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("1 / 0", "divide by zero"),
        ("workload.missing", 'Key not found in map : "missing"'),
        ("string(workload.missing)", 'Key not found in map : "missing"'),
        ("[1, 2 / 0]", "divide by zero"),
        (
            "optional.of(1)",
            "the expression returned an optional value; unwrap it with .orValue(...) or .value()",
        ),
        (
            "workload.?x",
            "the expression returned an optional value; unwrap it with .orValue(...) or .value()",
        ),
    ],
)
def test_errors(source: str, error: str) -> None:
    program = compile_expression(source)
    value, err = program.run(new_activation({"workload": {"x": 1}}))
    assert value is None and err is not None and error in err
