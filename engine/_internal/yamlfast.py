"""A fast path for parsing plain Kubernetes YAML, giving exactly what PyYAML gives.

PyYAML's C loader spends two thirds of its time in its Python resolver and constructor;
`yaml-rs` (Rust, YAML 1.2) parses the same manifests 5-10x faster. The two agree on
ordinary block YAML but not on YAML 1.1's typing (`yes`/`on` booleans, `0755` octals,
`1_000`, sexagesimal `1:20`, timestamps; `1e3` is a string for PyYAML), merge keys,
aliases (PyYAML shares the object), duplicate keys, tags, collection keys and some
escapes and foldings. So a text takes this path only when a conservative textual gate
finds none of those; everything else, and every text that yaml-rs rejects, goes to
PyYAML, whose documents and errors are the reference.

`split(text)` is the gate: None, or the documents of the text as (line, chunk) with
the line PyYAML reports (its root node's start mark). `load(chunk)` parses one chunk.
The gate is deliberately over-cautious: a false alarm costs speed, never correctness.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import re2

try:  # optional at run time: without it every text goes to PyYAML
    import yaml_rs as _yaml_rs

    _DUPLICATES_ARE_ERRORS: Any = _yaml_rs.DuplicateKeyPolicy.Error
    _loads: Callable[..., Any] | None = _yaml_rs.loads
except Exception:  # pragma: no cover - ImportError, or an incompatible build
    _loads = None

AVAILABLE = _loads is not None

# The gate is one RE2 search (linear time, a few µs per manifest) over "\n" + text + "\n",
# so that every line, the first and last included, starts and ends with a line break.
# RE2 has no lookaround: each rule consumes its context, and safe spellings are spelled
# out rather than excluded.

# The end of a plain scalar token: spaces, then the end of the line, a comment, a flow
# indicator, or a `:` that makes it a key. (`#` without a space before it does not start
# a comment; treating it as one only makes the gate more cautious.)
_END = r"[ ]*(?:\n|#|[,\]}]|:[ \n,\[\]{}])"
# Where a node can begin: the start of a line, after `- `, `? `, `: `, a flow indicator, or
# the `:` right after a quoted key (JSON-like `{"a":yes}`), then spaces. Over-cautious:
# `a - b` or `x, y` inside a plain scalar count too.
_START = r"(?:\n|[-?:][ ]|[,\[{]|[\"']:)[ ]*"
# Characters of number-like tokens: digits, bases, exponents, `_`, `:` (sexagesimal),
# `.inf`/`.nan`, timestamps' T and Z, signs.
_NUM = r"[0-9a-fA-F_xXoOiInNtTzZ.:+\-]"
# Booleans and nulls on which YAML 1.1 (PyYAML) and 1.2 (yaml-rs) agree.
_AGREED = frozenset({"true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"})


def _spellings(word: str) -> list[str]:
    """Every upper/lower-case spelling of `word` but the agreed ones."""
    cases = itertools.product(*[(c.lower(), c.upper()) for c in word])
    return sorted({"".join(c) for c in cases} - _AGREED)


_RISKY_TOKEN = "|".join(
    [
        # Tags, anchors, aliases, directives, reserved indicators, merge keys, complex and
        # empty keys, PyYAML's `=` value; block scalars other than `|`, `>-`, `|+` ... alone
        # on their line (with a comment at most).
        r"[!&*%@`<=?:]",
        r"[|>][-+]?[^-+ \n]",
        r"[|>][-+][-+]",
        r"[|>][-+]?[ ]+[^ #\n]",
        # YAML 1.1 booleans (yes/no/on/off) and any spelling of y/n/true/false/null the two
        # schemas may read differently.
        "(?:"
        + "|".join(
            w
            for base in ("yes", "no", "on", "off", "y", "n", "true", "false", "null")
            for w in _spellings(base)
        )
        + ")"
        + _END,
        # Dates and timestamps (a timestamp may contain spaces).
        r"[0-9]{4}-[0-9]",
        # Number-like tokens but plain decimals (`12`, `-3`, `0`, `0.25`, `-0.5`) and dotted
        # versions (`1.4.2`): .inf/.nan, a `+` sign, a leading dot, letters, `_`, `:` or `+`
        # inside, a `-` inside, a leading zero, a trailing dot, `..`, `-1.2.3`, `-0`.
        r"[-+]?\.[iInN]",
        r"\+\.?[0-9]" + _NUM + "*" + _END,
        r"-?\.[0-9]" + _NUM + "*" + _END,
        r"-?[0-9]" + _NUM + "*[a-fA-F_xXoOiInNtTzZ:+]" + _NUM + "*" + _END,
        r"-?[0-9]" + _NUM + "*-" + _NUM + "*" + _END,
        r"-?0[0-9]" + _NUM + "*" + _END,
        r"-?[0-9]" + _NUM + r"*\." + _END,
        r"-?[0-9]" + _NUM + r"*\.\." + _NUM + "*" + _END,
        r"-[0-9]" + _NUM + r"*\." + _NUM + r"*\." + _NUM + "*" + _END,
        r"-0" + _END,
    ]
)

_UNSAFE = re2.compile(
    "|".join(
        [
            # Anything but printable characters and LF: tabs, CR, NEL, LS/PS, BOM, controls.
            # YAML 1.1 and 1.2 differ on some of them, and PyYAML rejects others. And
            # backslashes (escapes in double-quoted scalars): cheaper to send them all to PyYAML.
            r"[^\n\x20-\x5b\x5d-\x7e\x{a0}-\x{2027}\x{202a}-\x{d7ff}\x{e000}-\x{fefe}"
            r"\x{ff00}-\x{fffd}\x{10000}-\x{10ffff}]",
            # Document end markers, and `---` with anything but a comment on its line.
            r"\n(?:\.\.\.|---[^ \n]|---[ ]+[^ #\n])",
            # A flow collection used as a mapping key (PyYAML: unhashable; yaml-rs: a tuple).
            r"[\]}][ ]*:",
            # A block scalar that is not the value of a key or a sequence entry (a document's
            # root: yaml-rs accepts content at column 0 and reads an empty one as "\n").
            r"(?:\n|[,\[{]|[\"']:)[ ]*[|>]",
            # An empty block scalar ending a document (yaml-rs reads "\n", PyYAML "").
            r"[|>][-+]?[ ]*(?:[ ]#[^\n]*)?(?:\n[ ]*(?:#[^\n]*)?)*\n(?:---|\z)",
            _START + "(?:" + _RISKY_TOKEN + ")",
        ]
    )
)
# Lines over 1,000 characters: PyYAML's 1,024-character limit on implicit keys, and a bound
# on block nesting depth (yaml-rs recurses natively and would overflow its stack).
_LONG_LINE = re.compile(r"\n[^\n]{1001}")

# The first line with content (not blank, not only a comment), from a line break on.
_CONTENT = re.compile(r"\n[ ]*[^ #\n]")


def split(text: str) -> list[tuple[int, str | None]] | None:
    """The documents of `text` as (line, chunk), chunk None for an empty document; None to use PyYAML."""
    wrapped = f"\n{text}\n"  # positions in `wrapped` are one past those in `text`
    if _loads is None or _UNSAFE.search(wrapped) is not None:
        return None
    if len(text) > 1000 and _LONG_LINE.search(wrapped) is not None:
        return None
    if not text.endswith("\n") and ("|" in text or ">" in text):
        return None  # a block scalar may end the text: yaml-rs adds a final line break
    # After the gate, every line that starts with `---` is a document start marker, alone on
    # its line but for a comment. Each document is the text between two markers' lines.
    docs: list[tuple[int, str | None]] = []
    last = len(wrapped) - 1  # the line break added after the text
    start = 0  # the line break before the current document's first line
    explicit = False  # whether it began with `---` (an implicit first document may not exist)
    pos, line = 0, 0  # a line break and the number of the line it ends, moving forward
    while True:
        end = wrapped.find("\n---", start, last)  # the line break before the next marker
        if end < 0:
            end = last
        content = _CONTENT.search(wrapped, start, end + 1)
        if content is not None:
            line += wrapped.count("\n", pos, content.start())
            pos = content.start()
            docs.append((line + 1, wrapped[start + 1 : end + 1] if end < last else text[start:]))
        elif explicit:
            # PyYAML places an empty document at its next token: the next marker or the stream end.
            line += wrapped.count("\n", pos, end)
            pos = end
            docs.append((line + 1 if end < last else _end_line(text), None))
        if end == last:
            return docs
        start, explicit = wrapped.index("\n", end + 4), True


def _end_line(text: str) -> int:
    # libyaml's stream end: the line after the last line break, or after the last line.
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0) + 1


def load(chunk: str) -> Any:
    """Parse one document's text; raises on anything yaml-rs rejects (duplicate keys included)."""
    assert _loads is not None
    return _loads(chunk, parse_datetime=False, duplicate_key_policy=_DUPLICATES_ARE_ERRORS)
