"""Several policies' fused programs run as one CEL program.

Each program run costs ~1.5 µs in cel-expr-python before any work (plus Python around
it), a fifth of what a typical policy costs; running the fused programs of the policies
that always apply together as one `[p0, p1, ...]` saves that for all but one of them.
Each member is the initializer of its own `cel.bind` (where its comprehensions get slots
of their own, see `program.guarded`), never a sibling expression. The list fails as a
whole if one member fails: the engine then runs the members one by one, so a member's
error is reported exactly as without the group.
"""

from __future__ import annotations

from collections.abc import Sequence

from .program import CelCompileError, Program, compile_expression

GROUP_VARIABLE = "__charter_g"


def group_text(texts: Sequence[str]) -> str:
    body = "[" + ", ".join(f"{GROUP_VARIABLE}{i}" for i in range(len(texts))) + "]"
    for i in reversed(range(len(texts))):  # a newline ends each member: `//` comments stay inside
        body = f"cel.bind({GROUP_VARIABLE}{i}, ({texts[i]}\n), {body})"
    return body


_compiled_groups: dict[str, Program | None] = {}  # group text -> program; None: does not compile


def _compiled(texts: Sequence[str]) -> Program | None:
    """The group program, or None when the parser's nesting limit refuses it (alone or batched)."""
    text = group_text(texts)
    if text not in _compiled_groups:
        try:
            program: Program | None = compile_expression(text, guard=False)
        except CelCompileError:
            program = None
        if program is not None and program.batched() is None:
            program = None
        _compiled_groups[text] = program
    return _compiled_groups[text]


def split_into_groups(programs: Sequence[Program]) -> list[tuple[list[int], Program | None]]:
    """Groups of `programs` (by index, in the order of the group's values) and the program each
    compiles to; a group of one keeps its own program (None). The parser's nesting limit counts a
    member's place in the chain of binds plus its own nesting, so the most deeply nested go first,
    and a group that does not compile is halved until it does."""
    out: list[tuple[list[int], Program | None]] = []

    def place(indexes: list[int]) -> None:
        if len(indexes) == 1:
            out.append((indexes, None))
            return
        program = _compiled([programs[i].text or programs[i].source for i in indexes])
        if program is not None:
            out.append((indexes, program))
            return
        half = len(indexes) // 2
        place(indexes[:half])
        place(indexes[half:])

    if programs:
        place(sorted(range(len(programs)), key=lambda i: -nesting(programs[i].text or programs[i].source)))
    return out


def nesting(source: str) -> int:
    """How deeply `source` nests parentheses and brackets (string literals are not skipped: an estimate)."""
    depth = deepest = 0
    for ch in source:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest
