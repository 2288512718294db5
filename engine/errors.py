"""Every error charter raises on purpose, in one place.

Each error carries the location it is about (file, document index, line, policy,
field path, expression) so that a shell can print one precise line and pick an
exit code without inspecting message text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem is: as much of it as is known."""

    file: str | None = None
    document: int | None = None  # 0-based index of the YAML document in the file
    line: int | None = None  # 1-based line of the document's start (or the field, when known)
    policy: str | None = None
    field: str | None = None  # e.g. spec.validations[2].expression
    expression: str | None = None

    def render(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            parts.append(where)
        if self.document is not None:
            parts.append(f"document {self.document}")
        if self.policy is not None:
            parts.append(f"policy {self.policy!r}")
        if self.field is not None:
            parts.append(self.field)
        return ", ".join(parts)


class CharterError(Exception):
    """Base of all errors charter reports to its users."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location or Location()
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.location.render()
        text = f"{where}: {self.message}" if where else self.message
        if self.location.expression is not None and self.location.expression not in self.message:
            text += f"\n  expression: {self.location.expression}"
        return text


class InputError(CharterError):
    """A file that cannot be read or parsed, or a document of the wrong shape."""


class PolicyLoadError(CharterError):
    """A policy, binding, exception, profile or catalog that fails schema validation."""


class CompileError(PolicyLoadError):
    """A CEL expression that does not parse or type-check."""


class ContextError(CharterError):
    """A cluster profile, catalog or context document that is missing or invalid."""


class UsageError(CharterError):
    """The command line asks for something that cannot be done."""


class EvaluationError(CharterError):
    """A CEL runtime error. Never turned into `false`: it follows failurePolicy."""

    exit_code = 3
