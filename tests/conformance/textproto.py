"""A small, schemaless reader for the protobuf text format used by cel-spec's test data.

It covers what `tests/simple/testdata/*.textproto` use: `#` comments, `name: scalar`,
`name { ... }` / `name: { ... }` / `name < ... >`, `[type.url/Name] { ... }` expansions,
`name: [a, b]` lists, optional `,`/`;` separators, adjacent string literals concatenated,
C-style string escapes (decoded to bytes), signed ints/floats and identifiers
(`true`, `inf`, `NULL_VALUE`, ...).

Without the schema a field's type is unknown, so scalars stay raw: strings as `bytes`
(the format's strings are byte strings; decode at use), numbers as `int`/`float`,
identifiers as `Ident`. `Message` keeps every field as a list, in order, because any
field may be repeated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Ident", "Message", "TextprotoError", "parse"]


class TextprotoError(ValueError):
    """Malformed input, with the line number."""


class Ident(str):
    """A bare identifier value (`true`, `inf`, an enum name), as opposed to a quoted string."""


Scalar = int | float | bytes | Ident


@dataclass
class Message:
    """A parsed message: field name -> values in source order."""

    fields: dict[str, list[Scalar | Message]] = field(default_factory=dict)

    def add(self, name: str, value: Scalar | Message) -> None:
        self.fields.setdefault(name, []).append(value)

    def has(self, name: str) -> bool:
        return name in self.fields

    def all(self, name: str) -> list[Scalar | Message]:
        return self.fields.get(name, [])

    def one(self, name: str) -> Scalar | Message | None:
        """The last value of a singular field (protobuf: last one wins), or None."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def msg(self, name: str) -> Message | None:
        value = self.one(name)
        if value is not None and not isinstance(value, Message):
            raise TextprotoError(f"field {name!r} is a scalar, expected a message")
        return value

    def messages(self, name: str) -> list[Message]:
        values = self.all(name)
        if not all(isinstance(v, Message) for v in values):
            raise TextprotoError(f"field {name!r} holds scalars, expected messages")
        return values  # type: ignore[return-value]

    def text(self, name: str, default: str = "") -> str:
        value = self.one(name)
        if value is None:
            return default
        if not isinstance(value, bytes):
            raise TextprotoError(f"field {name!r} is not a string: {value!r}")
        return value.decode("utf-8")

    def flag(self, name: str) -> bool:
        value = self.one(name)
        if value is None:
            return False
        if value in (Ident("true"), Ident("True"), Ident("t"), 1):
            return True
        if value in (Ident("false"), Ident("False"), Ident("f"), 0):
            return False
        raise TextprotoError(f"field {name!r} is not a bool: {value!r}")

    def names(self) -> list[str]:
        return list(self.fields)


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}<>\[\]:,;/.])
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "v": b"\v",
    "\\": b"\\",
    "'": b"'",
    '"': b'"',
    "?": b"?",
}


def _unescape(body: str, line: int) -> bytes:
    """Decode a quoted literal's body the way protobuf's text format does (C escapes, to bytes)."""
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        i += 1
        esc = body[i]
        if esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc]
            i += 1
        elif esc in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i:])
            assert m is not None
            out.append(int(m.group(), 8) & 0xFF)
            i += len(m.group())
        elif esc in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 1 :])
            if m is None:
                raise TextprotoError(f"line {line}: bad \\x escape")
            out.append(int(m.group(), 16))
            i += 1 + len(m.group())
        elif esc in "uU":
            width = 4 if esc == "u" else 8
            digits = body[i + 1 : i + 1 + width]
            if not re.fullmatch(r"[0-9a-fA-F]+", digits) or len(digits) != width:
                raise TextprotoError(f"line {line}: bad \\{esc} escape")
            out += chr(int(digits, 16)).encode("utf-8", "surrogatepass")
            i += 1 + width
        else:
            raise TextprotoError(f"line {line}: unknown escape \\{esc}")
    return bytes(out)


@dataclass
class _Token:
    kind: str
    text: str
    line: int


def _tokenize(text: str) -> Iterator[_Token]:
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise TextprotoError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            yield _Token(kind, m.group(), line)
        line += m.group().count("\n")
        pos = m.end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = list(_tokenize(text))
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise TextprotoError("unexpected end of input")
        self.pos += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == text:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.kind != "punct" or tok.text != text:
            raise TextprotoError(f"line {tok.line}: expected {text!r}, got {tok.text!r}")

    def message(self, close: str | None) -> Message:
        msg = Message()
        while True:
            tok = self.peek()
            if tok is None:
                if close is not None:
                    raise TextprotoError(f"unexpected end of input, expected {close!r}")
                return msg
            if close is not None and self.accept(close):
                return msg
            name = self.field_name()
            self.field_value(msg, name)
            # Fields may be separated by a comma or a semicolon.
            self.accept(",") or self.accept(";")

    def field_name(self) -> str:
        tok = self.next()
        if tok.kind == "ident" and not tok.text.startswith("-"):
            return tok.text
        if tok.kind == "punct" and tok.text == "[":
            # Extension or Any expansion: `[pkg.ext]` or `[type.googleapis.com/pkg.Msg]`.
            parts = []
            while not self.accept("]"):
                parts.append(self.next().text)
            return "[" + "".join(parts) + "]"
        raise TextprotoError(f"line {tok.line}: expected a field name, got {tok.text!r}")

    def field_value(self, msg: Message, name: str) -> None:
        has_colon = self.accept(":")
        tok = self.peek()
        if tok is None:
            raise TextprotoError(f"unexpected end of input after {name!r}")
        if tok.kind == "punct" and tok.text in "{<":
            self.next()
            msg.add(name, self.message("}" if tok.text == "{" else ">"))
        elif tok.kind == "punct" and tok.text == "[" and has_colon:
            # `name: [v1, v2]` is shorthand for a repeated field.
            self.next()
            if not self.accept("]"):
                while True:
                    self.field_value_list_item(msg, name)
                    if self.accept("]"):
                        break
                    self.expect(",")
        elif has_colon:
            msg.add(name, self.scalar())
        else:
            raise TextprotoError(f"line {tok.line}: expected ':' or a message after {name!r}")

    def field_value_list_item(self, msg: Message, name: str) -> None:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text in "{<":
            self.next()
            msg.add(name, self.message("}" if tok.text == "{" else ">"))
        else:
            msg.add(name, self.scalar())

    def scalar(self) -> Scalar:
        tok = self.next()
        if tok.kind == "string":
            data = _unescape(tok.text[1:-1], tok.line)
            # Adjacent string literals are concatenated.
            while (nxt := self.peek()) is not None and nxt.kind == "string":
                self.next()
                data += _unescape(nxt.text[1:-1], nxt.line)
            return data
        if tok.kind == "number":
            return _number(tok.text)
        if tok.kind == "ident":
            # Enum values may be written qualified (`NullValue.NULL_VALUE`): keep the last part.
            text = tok.text
            while self.accept("."):
                text = self.next().text
            return Ident(text)
        raise TextprotoError(f"line {tok.line}: expected a value, got {tok.text!r}")


def _number(text: str) -> int | float:
    body = text.lstrip("-")
    sign = -1 if text.startswith("-") else 1
    if body[:2] in ("0x", "0X"):
        return sign * int(body[2:], 16)
    if re.fullmatch(r"\d+", body):
        # A leading 0 means octal in the text format (cel-spec does not use it, but be exact).
        return sign * (int(body, 8) if len(body) > 1 and body[0] == "0" else int(body))
    return sign * float(body.rstrip("fF"))


def parse(text: str) -> Message:
    """Parse a whole textproto document into a `Message`."""
    return _Parser(text).message(None)
