"""The JSON report of `charter check`: a documented, stable schema (docs/check-report.md).

Built once from the engine's decisions; the text, SARIF and JUnit renderers read it,
so every format says the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from charter.engine import CharterError, CheckRun, Finding, ResourceDecision
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SCHEMA_VERSION = "charter.dev/check-report/v1"
ActionName = Literal["Deny", "Warn", "Audit", "Ignore", "None"]
_ORDER: tuple[ActionName, ...] = ("Deny", "Warn", "Audit")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ResourceRef(_Model):
    api_version: str
    kind: str
    namespace: str
    name: str
    file: str | None
    document_index: int | None
    line: int | None
    item: int | None = None


class ExceptionRef(_Model):
    name: str
    ticket: str
    approved_by: str
    reason: str
    expires: datetime
    file: str


class Result(_Model):
    resource: ResourceRef
    policy: str
    binding: str | None
    domain: str
    severity: str
    validation: int | None
    validation_name: str | None
    type: Literal["violation", "error", "unresolved"]
    action: ActionName
    actions: list[str]
    message: str
    reason: str
    field: str | None
    expression: str | None
    param: str | None = None
    exception: ExceptionRef | None


class InputProblem(_Model):
    file: str | None
    document_index: int | None
    line: int | None
    policy: str | None
    field: str | None
    message: str


class Summary(_Model):
    resources: int
    policies: int
    evaluations: int
    denied: int
    warned: int
    audited: int
    errors: int
    unresolved: int
    exceptions_applied: int
    resources_denied: int
    input_errors: int


class ResourceVerdicts(_Model):
    resource: ResourceRef
    allowed: bool
    verdicts: dict[str, str]  # policy -> pass|deny|warn|audit|error|skip
    audit_annotations: dict[str, str] = {}
    warnings: list[str] = []
    notes: list[str] = []


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    summary: Summary
    results: list[Result]
    resources: list[ResourceVerdicts]
    input_errors: list[InputProblem] = []
    expired_exceptions: list[ExceptionRef] = []
    notes: list[str] = Field(default_factory=list)


def resource_ref(rd: ResourceDecision) -> ResourceRef:
    a = rd.decision.attributes
    return ResourceRef(
        api_version=a.api_version,
        kind=a.kind,
        namespace=a.namespace,
        name=a.name,
        file=a.source.file,
        document_index=a.source.document,
        line=a.source.line,
        item=a.source.item,
    )


def _action(f: Finding) -> ActionName:
    for a in _ORDER:
        if a in f.actions:
            return a
    return "Ignore" if f.kind == "error" else "None"


def problem(e: CharterError) -> InputProblem:
    loc = e.location
    return InputProblem(
        file=loc.file,
        document_index=loc.document,
        line=loc.line,
        policy=loc.policy,
        field=loc.field,
        message=e.message,
    )


def build_report(run: CheckRun, policy_count: int, load_errors: list[CharterError] | None = None) -> Report:
    results: list[Result] = []
    resources: list[ResourceVerdicts] = []
    expired: dict[str, ExceptionRef] = {}
    evaluations = 0
    for rd in run.decisions:
        ref = resource_ref(rd)
        d = rd.decision
        for outcome in d.outcomes:
            evaluations += outcome.evaluations
            if outcome.unresolved and not outcome.matched:
                results.append(
                    Result(
                        resource=ref,
                        policy=outcome.policy,
                        binding=None,
                        domain=outcome.domain,
                        severity=outcome.severity,
                        validation=None,
                        validation_name=None,
                        type="unresolved",
                        action="None",
                        actions=[],
                        message=outcome.unresolved,
                        reason="Unresolved",
                        field="spec.matchConstraints.namespaceSelector",
                        expression=None,
                        exception=None,
                    )
                )
            for f in outcome.findings:
                exc = f.exception
                results.append(
                    Result(
                        resource=ref,
                        policy=f.policy,
                        binding=f.binding or None,
                        domain=outcome.domain,
                        severity=outcome.severity,
                        validation=f.validation,
                        validation_name=f.validation_name,
                        type=f.kind,
                        action=_action(f),
                        actions=list(f.actions),
                        message=f.message,
                        reason=f.reason,
                        field=f.field,
                        expression=f.expression,
                        param=f.param,
                        exception=ExceptionRef(
                            name=exc.name,
                            ticket=exc.ticket,
                            approved_by=exc.approved_by,
                            reason=exc.reason,
                            expires=exc.expires,
                            file=exc.file,
                        )
                        if exc
                        else None,
                    )
                )
        for e in d.expired_exceptions:
            expired[e.name] = ExceptionRef(
                name=e.name,
                ticket=e.ticket,
                approved_by=e.approved_by,
                reason=e.reason,
                expires=e.expires,
                file=e.file,
            )
        resources.append(
            ResourceVerdicts(
                resource=ref,
                allowed=d.allowed,
                verdicts={o.policy: o.verdict for o in d.outcomes},
                audit_annotations=d.audit_annotations(),
                warnings=d.warnings(),
                notes=list(d.notes),
            )
        )
    live = [r for r in results if r.exception is None]
    errors = [*(load_errors or []), *run.errors]
    summary = Summary(
        resources=len(run.decisions),
        policies=policy_count,
        evaluations=evaluations,
        denied=sum(1 for r in live if "Deny" in r.actions and r.type == "violation"),
        warned=sum(1 for r in live if "Warn" in r.actions),
        audited=sum(1 for r in live if "Audit" in r.actions),
        errors=sum(1 for r in live if r.type == "error"),
        unresolved=sum(1 for r in live if r.type == "unresolved"),
        exceptions_applied=sum(1 for r in results if r.exception is not None),
        resources_denied=sum(1 for r in resources if not r.allowed),
        input_errors=len(errors),
    )
    return Report(
        summary=summary,
        results=results,
        resources=resources,
        input_errors=[problem(e) for e in errors],
        expired_exceptions=list(expired.values()),
        notes=list(run.notes),
    )
