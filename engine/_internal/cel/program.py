"""Compiling and running one CEL expression, with errors that say where and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

from .batch import BATCH_INPUT, Slot
from .env import BATCH_INDEX, PER_RESOURCE, policy_env, set_batch_index

T = cel.Type

# cel-cpp wraps messages as "<CODE>: ERROR: <input>:L:C: msg\n | src\n | ..^ [<CODE>]".
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r"\s*\[[A-Z_]+\]\s*$")
_POSITION = re.compile(r"<input>:(\d+):(\d+): ")
_BUDGET = "Iteration budget exceeded"
ITERATION_BUDGET = 10_000  # fixed by cel-cpp's default RuntimeOptions in cel-expr-python 0.1.3
_INPUT_REF = re.compile(r"\b(" + "|".join(PER_RESOURCE) + r")\b")

# cel-cpp (as shipped in cel-expr-python 0.1.3) does not clear the iteration variable's slot
# when exists()/all() stop early, and a lazily bound cel.bind variable that later takes the
# same slot reads that stale value as its own: `xs.exists(b, b) && cel.bind(r, true, r)` is
# false for xs = [true, false]. Inside a bind's initializer every comprehension gets slots of
# its own, so an expression that could meet the bug is run as `cel.bind(e, (<expr>), e)`.
_SHORT_CIRCUIT = re.compile(r"\.\s*(?:exists|all)\s*\(")
_BIND = re.compile(r"\bcel\s*\.\s*bind\s*\((?!__charter_)")  # charter's own binds nest safely
GUARD_VARIABLE = "__charter_e"


def guarded(source: str) -> str:
    """`source` as the initializer of a bind when it has both a short-circuiting macro and a bind."""
    if _BIND.search(source) and _SHORT_CIRCUIT.search(source):
        return f"cel.bind({GUARD_VARIABLE}, (\n{source}\n), {GUARD_VARIABLE})"
    return source


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


_UNSET: Any = object()


@dataclass(slots=True)
class Program:
    source: str  # as compiled for errors and types
    program: Any
    return_type: str  # cel type name: BOOL, STRING, DYN, ...
    text: str = ""  # what `program` runs: `source`, guarded when it needs it (see `guarded`)
    _batched: Any = _UNSET  # the batched form (see batch.py), compiled on first use; None: none

    def run(self, activation: Any) -> tuple[Any, str | None]:
        """(value, None) or (None, error message). A runtime error is never a value.

        `activation` is a cel-expr-python activation or a batch Slot.
        """
        if type(activation) is Slot:
            batch = activation.batch
            batched = self.batched()
            if batched is None or batch.unconvertible:
                return _evaluate(self.program, activation.single())
            set_batch_index(activation.index)
            value, err = _evaluate(batched, batch.activation())
            if err is not None and BATCH_INPUT in err:
                # One resource's input cannot become a CEL value (an int beyond int64, a YAML
                # date): in a batch that fails every resource, so each decides on its own.
                batch.unconvertible = True
                return _evaluate(self.program, activation.single())
            return value, err
        return _evaluate(self.program, activation)

    def batched(self) -> Any:
        """The batched form (None: the expression has none and runs on per-resource activations)."""
        return self._batched if self._batched is not _UNSET else self._compile_batched()

    def _compile_batched(self) -> Any:
        """The expression with each per-resource input it names bound to its entry of the batch.

        Same value, type and runtime errors as the plain program; the source keeps its own
        lines so that nothing it holds (a `//` comment) can swallow the closing parentheses.
        """
        body = self.text or self.source
        names = sorted(set(_INPUT_REF.findall(body)))
        for name in names:
            body = f"cel.bind({name}, {BATCH_INPUT}{name}[{BATCH_INDEX}()],\n{body}\n)"
        try:
            self._batched = policy_env().compile(body) if names else self.program
        except RuntimeError:  # e.g. the parser's nesting limit: keep to per-resource activations
            self._batched = None
        return self._batched


def _evaluate(program: Any, activation: Any) -> tuple[Any, str | None]:
    try:
        value = program.eval(activation)
    except RuntimeError as e:  # budget exceeded, unconvertible input
        return None, runtime_message(str(e))
    # An error's plain value is its status text, so only a string needs the (costlier) type check.
    plain: Any = _UNSET
    try:
        plain = value.plain_value()
    except TypeError:  # an optional value, or an error wrapping one: decided below
        pass
    else:
        if type(plain) is not str:
            return plain, None
    if value.type() == T.ERROR:
        try:
            detail = str(value.value())
        except TypeError:  # an optional value also reports type ERROR; .value() raises on it
            return (
                None,
                "the expression returned an optional value; unwrap it with .orValue(...) or .value()",
            )
        return None, runtime_message(detail)
    return (value.plain_value() if plain is _UNSET else plain), None


_cache: dict[tuple[str, bool], Program] = {}


def compile_expression(source: str, *, guard: bool = True) -> Program:
    """Parse and type-check `source` in the policy environment; identical text compiles once.

    `guard`: False when every authored part of `source` is already a bind's initializer.
    """
    cached = _cache.get((source, guard))
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
    text = guarded(source) if guard else source
    run = prog
    if text != source:
        try:
            run = policy_env().compile(text)
        except RuntimeError:  # the parser's nesting limit: run it as written
            text = source
    program = Program(source, run, prog.return_type().name(), text)
    _cache[source, guard] = program
    return program


def new_activation(data: dict[str, Any]) -> Any:
    return policy_env().Activation(data)
