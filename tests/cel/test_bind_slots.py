"""cel.bind after short-circuited comprehensions: charter's guarded programs against an eager reference.

cel-cpp (cel-expr-python 0.1.3) leaves an early-stopped exists()/all() iteration variable in a slot
that a lazily bound cel.bind variable may share; the variable then reads the stale element. charter
runs such expressions as the initializer of an outer bind (see `guarded`). Seeded random expressions
mixing exists/all/filter, binds and boolean operators are compared with the same expression where
every bind is eager (`[init].map(v, body)[0]`, no lazy slot to go stale): they must always agree.
"""

from __future__ import annotations

import random

from charter.engine._internal.cel.env import policy_env
from charter.engine._internal.cel.program import compile_expression, new_activation

LISTS = ["object.bs", "object.ns", "object.ss", "[true, false]", "[1, 2, 3]"]
NAMES = "abcdefgh"
INPUT = {"object": {"bs": [True, False, True], "ns": [3, -1, 2], "ss": ["a", "b"]}}


def _bind(name: str, init: str, body: str, eager: bool) -> str:
    return f"([{init}].map({name}, {body})[0])" if eager else f"cel.bind({name}, {init}, {body})"


def _gen(r: random.Random, depth: int, scope: list[str], eager: bool) -> str:
    """A bool expression; `scope` holds ("c"|"b") + name for comprehension and bind variables."""
    x = r.random()
    if depth <= 0 or x < 0.2:
        leaves = ["true", "false", "object.ns.size() > 2"]
        leaves += [f"({v[1:]} == {v[1:]})" if v[0] == "c" else f"({v[1:]} == true)" for v in scope]
        return r.choice(leaves)
    v, lst = r.choice(NAMES), r.choice(LISTS)
    if x < 0.3:  # the shape that meets the defect: a short circuit, then a sibling bind
        w = r.choice(NAMES)
        body = _gen(r, depth - 1, [s for s in scope if s[1:] != w] + ["b" + w], eager)
        bind = _bind(w, r.choice(["true", "false", "5 == 5"]), body, eager)
        return f"([{lst}.exists({v}, true), {bind}].all(z, z == true) || {lst}.all({v}, false))"
    if x < 0.45:
        body = _gen(r, depth - 1, [*scope, "c" + v], eager)
        return f"{lst}.{r.choice(['exists', 'all'])}({v}, {body})"
    if x < 0.6:
        body = _gen(r, depth - 1, [*scope, "c" + v], eager)
        return f"({lst}.filter({v}, {body}).size() > 0)"
    if x < 0.85:
        init = r.choice(["true", "false", "5 == 5", "object.bs.exists(q, q)", "object.ns.all(q, q > 0)"])
        body = _gen(r, depth - 1, [s for s in scope if s[1:] != v] + ["b" + v], eager)
        return _bind(v, init, body, eager)
    op = r.choice(["&&", "||"])
    return f"({_gen(r, depth - 1, scope, eager)} {op} {_gen(r, depth - 1, scope, eager)})"


def test_guarded_programs_agree_with_eager_binds() -> None:
    env = policy_env()
    activation = new_activation(INPUT)
    compared = with_bind = 0
    for seed in range(1500):
        lazy = _gen(random.Random(seed), 5, [], eager=False)
        eager = _gen(random.Random(seed), 5, [], eager=True)
        try:
            want = env.compile(eager).eval(activation).plain_value()
        except RuntimeError:
            continue  # nested too deep for the parser
        assert compile_expression(lazy).run(activation) == (want, None), lazy
        compared += 1
        with_bind += "cel.bind" in lazy and ".exists(" in lazy
    assert compared > 1400 and with_bind > 500


def test_grouped_programs_agree_with_eager_binds() -> None:
    # Several guarded programs as the members of one group program (see groups.py): each
    # member's value must be its eager reference's, whatever its neighbours left in their slots.
    from charter.engine._internal.cel.groups import group_text

    env = policy_env()
    activation = new_activation(INPUT)
    members: list[tuple[str, object]] = []
    for seed in range(1500, 2700):
        lazy = _gen(random.Random(seed), 4, [], eager=False)
        eager = _gen(random.Random(seed), 4, [], eager=True)
        try:
            want = env.compile(eager).eval(activation).plain_value()
        except RuntimeError:
            continue
        members.append((compile_expression(lazy).text, want))
    compared = 0
    for start in range(0, len(members), 4):
        chunk = members[start : start + 4]
        try:
            program = compile_expression(group_text([t for t, _ in chunk]), guard=False)
        except Exception:  # nested too deep for the parser: the engine then makes smaller groups
            continue
        assert program.run(activation) == ([w for _, w in chunk], None), [t for t, _ in chunk]
        compared += len(chunk)
    assert compared > 600
