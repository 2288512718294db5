"""Which top-level fields of an input a set of CEL expressions can read.

cel-expr-python converts an input to CEL values whole, on first use, field by field: a
3 KB `workload` view costs ~40 µs per resource, much of it in fields that no policy
reads. An engine converts only the fields its programs name. The analysis is
syntactic and conservative: every occurrence of the input's name must be a field
selection (`workload.kind`, `workload.?kind`, `has(workload.kind)`) or an index by a
string literal (`workload['kind']`, `workload[?'kind']`); anything else (the input
passed whole, compared, iterated, its keys tested with `in`, shadowed by a macro
variable or `cel.bind`, a raw string the scanner does not take apart) means the whole
input is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LITERAL = re.compile(
    r"//[^\n]*"  # a comment
    r"|[bB]?(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")"
)
# Raw strings treat backslashes literally: rather than scan them, give up.
_RAW = re.compile(r"(?<![\w.])(?:[rR][bB]?|[bB][rR])['\"]")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _mask(source: str) -> str | None:
    """`source` with comments blanked and each string literal replaced by a marker naming its
    text when that is an identifier (`__charter_s_kind__`), else an anonymous one; None: raw strings."""
    if _RAW.search(source):
        return None

    def sub(m: re.Match[str]) -> str:
        text = m.group(0)
        if text.startswith("//"):
            return " "
        body = text.lstrip("bB")
        body = body[3:-3] if body[:3] in ("'''", '"""') else body[1:-1]
        return f" __charter_s_{body}__ " if _KEY.fullmatch(body) else " __charter_s__ "

    return _LITERAL.sub(sub, source)


def fields_read(sources: Iterable[str], name: str) -> frozenset[str] | None:
    """The top-level fields of input `name` that `sources` can read; None: possibly all of it."""
    root = re.compile(rf"(?<![\w.]){re.escape(name)}\b")
    selection = re.compile(
        r"\s*(?:\.\s*\??\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()"  # .field, .?field (not a method or macro)
        r"|\[\s*\??\s*__charter_s_([A-Za-z_][A-Za-z0-9_]*)__\s*\])"  # ['field'], [?'field']
    )
    fields: set[str] = set()
    for source in sources:
        masked = _mask(source)
        if masked is None:
            return None
        for m in root.finditer(masked):
            sel = selection.match(masked, m.end())
            if sel is None:
                return None
            fields.add(sel.group(1) or sel.group(2))
    return frozenset(fields)
