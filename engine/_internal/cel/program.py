"""Compiling and running one CEL expression, with errors that say where and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

from .env import policy_env

T = cel.Type

# cel-cpp wraps messages as "<CODE>: ERROR: <input>:L:C: msg\n | src\n | ..^ [<CODE>]".
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r"\s*\[[A-Z_]+\]\s*$")
_POSITION = re.compile(r"<input>:(\d+):(\d+): ")
_BUDGET = "Iteration budget exceeded"
ITERATION_BUDGET = 10_000  # fixed by cel-cpp's default RuntimeOptions in cel-expr-python 0.1.3


class CelCompileError(Exception):
    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def clean_message(raw: str) -> str:
    text = _STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", raw.strip()))
    return text.removeprefix("ERROR: ").strip()


def runtime_message(raw: str) -> str:
    text = clean_message(raw)
    if _BUDGET in text:
        return (
            f"cost budget exceeded: the expression ran more than {ITERATION_BUDGET} comprehension iterations "
            "(nested macros over large lists); simplify it or bound the lists it iterates"
        )
    return text


@dataclass(frozen=True, slots=True)
class Program:
    source: str
    program: Any
    return_type: str  # cel type name: BOOL, STRING, DYN, ...

    def run(self, activation: Any) -> tuple[Any, str | None]:
        """(value, None) or (None, error message). A runtime error is never a value."""
        try:
            value = self.program.eval(activation)
        except RuntimeError as e:  # budget exceeded, unconvertible input
            return None, runtime_message(str(e))
        if value.type() == T.ERROR:
            try:
                detail = str(value.value())
            except TypeError:  # an optional value also reports type ERROR; .value() raises on it
                return (
                    None,
                    "the expression returned an optional value; unwrap it with .orValue(...) or .value()",
                )
            return None, runtime_message(detail)
        return value.plain_value(), None


_cache: dict[str, Program] = {}


def compile_expression(source: str) -> Program:
    """Parse and type-check `source` in the policy environment; identical text compiles once."""
    cached = _cache.get(source)
    if cached is not None:
        return cached
    try:
        prog = policy_env().compile(source)
    except RuntimeError as e:
        text = clean_message(str(e))
        m = _POSITION.search(text)
        line = column = None
        if m is not None:
            line, column = int(m.group(1)), int(m.group(2))  # both 1-based, as cel-go reports them
            text = _POSITION.sub(lambda mm: f"line {mm.group(1)}, column {mm.group(2)}: ", text)
        raise CelCompileError(text, line, column) from e
    program = Program(source, prog, prog.return_type().name())
    _cache[source] = program
    return program


def new_activation(data: dict[str, Any]) -> Any:
    return policy_env().Activation(data)
