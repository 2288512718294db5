"""What an evaluation found, per resource and policy. Shells render these; they never re-decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .request import Attributes

Verdict = Literal["pass", "deny", "warn", "audit", "error", "skip"]
FindingKind = Literal["violation", "error"]


@dataclass(frozen=True, slots=True)
class ExceptionUse:
    name: str
    ticket: str
    approved_by: str
    reason: str
    expires: datetime
    file: str


@dataclass(slots=True)
class Finding:
    """One validation that did not pass, or an error that stopped a policy from deciding."""

    policy: str
    binding: str
    kind: FindingKind
    actions: tuple[str, ...]  # what the finding does: Deny/Warn/Audit; () for an ignored error
    message: str
    reason: str
    validation: int | None = None  # index in spec.validations; None for policy-level errors
    validation_name: str | None = None
    field: str | None = None  # spec.validations[1].expression
    expression: str | None = None
    param: str | None = None
    exception: ExceptionUse | None = None

    @property
    def effective(self) -> bool:
        """Counts towards the decision (not waived by an exception)."""
        return self.exception is None


@dataclass(slots=True)
class PolicyOutcome:
    policy: str
    kind: str  # Policy | ValidatingAdmissionPolicy
    domain: str
    severity: str
    matched: bool
    failure_policy: str
    unresolved: str | None = None  # why matching could not be decided
    findings: list[Finding] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)
    evaluations: int = 0  # validations evaluated (x params)
    trace: list[dict[str, Any]] | None = None  # filled by `explain`

    @property
    def verdict(self) -> Verdict:
        if not self.matched:
            return "error" if self.unresolved else "skip"
        live = [f for f in self.findings if f.effective]
        if any(f.kind == "error" for f in live):
            return "error"
        actions = {a for f in live for a in f.actions}
        for action, verdict in (("Deny", "deny"), ("Warn", "warn"), ("Audit", "audit")):
            if action in actions:
                return verdict  # type: ignore[return-value]
        return "pass"


@dataclass(slots=True)
class Decision:
    """Every policy's outcome for one resource, and what the apiserver would do with them."""

    attributes: Attributes
    outcomes: list[PolicyOutcome]
    workload: dict[str, Any]
    expired_exceptions: list[ExceptionUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        return [f for o in self.outcomes for f in o.findings]

    @property
    def denials(self) -> list[Finding]:
        return [f for f in self.findings() if f.effective and "Deny" in f.actions]

    @property
    def allowed(self) -> bool:
        return not self.denials

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings() if f.effective and f.kind == "error"]

    @property
    def fail_errors(self) -> list[Finding]:
        """Evaluation errors under failurePolicy Fail: these decide the request."""
        return [f for f in self.errors if f.actions]

    def warnings(self) -> list[str]:
        return [warning_text(f) for f in self.findings() if f.effective and "Warn" in f.actions]

    def audit_annotations(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for o in self.outcomes:
            for key, value in o.audit_annotations.items():
                merged[f"{o.policy}/{key}"] = value
        return merged

    def deny_message(self) -> str:
        """The apiserver's message for the first denial (validating/dispatcher.go)."""
        if not self.denials:
            return ""
        return denial_text(self.denials[0])


def _who(f: Finding) -> str:
    return (
        f"ValidatingAdmissionPolicy '{f.policy}' with binding '{f.binding}'"
        if f.binding
        else f"policy '{f.policy}'"
    )


def denial_text(f: Finding) -> str:
    return f"{_who(f)} denied request: {f.message}"


def warning_text(f: Finding) -> str:
    if f.binding:
        return f"Validation failed for ValidatingAdmissionPolicy '{f.policy}' with binding '{f.binding}': {f.message}"
    return f"Validation failed for policy '{f.policy}': {f.message}"
