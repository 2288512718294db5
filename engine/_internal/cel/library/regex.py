"""kubernetes.regex: find and findAll on RE2, the engine Go's regexp and cel-cpp's matches() use.

RE2 runs in linear time, so a hostile pattern in a policy or a hostile string in an
admission request cannot stall the webhook; sizes are bounded as well. Constructs
RE2 does not support (backreferences, lookaround) are refused with Go's message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2

from ._common import LibraryError, T, function, overload

MAX_PATTERN = 4096
MAX_INPUT = 1 << 20

# Backreferences, lookaround, atomic groups, possessive quantifiers and conditionals.
_NOT_RE2 = re.compile(r"\\[1-9]|\\g|\(\?P=|\(\?[=!]|\(\?<[=!]|\(\?>|\(\?\(|[*+?}]\+")


@lru_cache(maxsize=256)
def compile_re2(pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN:
        raise LibraryError(
            f"Illegal regex: error parsing regexp: expression too large ({len(pattern)} bytes)"
        )
    unescaped = re.sub(r"\\\\", "", pattern)
    m = _NOT_RE2.search(unescaped)
    if m:
        raise LibraryError(
            f"Illegal regex: error parsing regexp: invalid or unsupported Perl syntax: `{m.group()}`"
        )
    try:
        return re2.compile(pattern)
    except re2.error as e:
        raise LibraryError(f"Illegal regex: error parsing regexp: {e}") from e


def _check_input(text: str) -> None:
    if len(text) > MAX_INPUT:
        raise LibraryError(f"regex input too large: {len(text)} characters (limit {MAX_INPUT})")


def _find(text: str, pattern: str) -> str:
    rx = compile_re2(pattern)
    _check_input(text)
    m = rx.search(text)
    return m.group() if m else ""


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Go's FindAllString: an empty match right after the previous match is skipped."""
    rx = compile_re2(pattern)
    _check_input(text)
    out: list[str] = []
    prev_end = -1
    for m in rx.finditer(text):
        if 0 <= limit <= len(out):
            break
        if m.start() == m.end() == prev_end:
            continue
        out.append(m.group())
        prev_end = m.end()
    return out


def functions() -> list[Any]:
    return [
        function("find", overload("string_find_string", T.STRING, [T.STRING, T.STRING], _find, member=True)),
        function(
            "findAll",
            overload("string_find_all_string", T.List(T.STRING), [T.STRING, T.STRING], find_all, member=True),
            overload(
                "string_find_all_string_int",
                T.List(T.STRING),
                [T.STRING, T.STRING, T.INT],
                find_all,
                member=True,
            ),
        ),
    ]
