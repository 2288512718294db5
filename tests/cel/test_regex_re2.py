"""find/findAll run on RE2: hostile patterns cannot backtrack exponentially in the webhook."""

from __future__ import annotations

from charter.engine._internal.cel.env import policy_env


def test_catastrophic_pattern_is_linear_and_correct() -> None:
    # On a backtracking engine this pattern over this input takes ~2^40 steps; on RE2 it is instant.
    prog = policy_env().compile("object.s.find('(a+)+$') == '' && object.s.findAll('(a|aa)+c').size() == 0")
    value = prog.eval(data={"object": {"s": "a" * 40 + "b"}})
    assert value.value() is True


def test_lookaround_is_rejected_as_upstream_does() -> None:
    prog = policy_env().compile("'abc'.find('a(?=b)')")
    value = prog.eval(data={})
    assert "Illegal regex" in str(value.value())
