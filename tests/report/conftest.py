"""Reports built directly from the model, covering every kind of result the renderers must handle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from charter._internal.report.model import (
    ExceptionRef,
    InputProblem,
    Report,
    ResourceRef,
    ResourceVerdicts,
    Result,
    Summary,
)
from charter._internal.report.policyinfo import PolicyInfo

POLICIES = [
    PolicyInfo(
        "require-model-provenance",
        "Policy",
        "provenance",
        "critical",
        "Models must come from a signed registry. Unsigned weights are rejected.",
        "Pull the model from `registry.internal` and sign it with cosign.",
    ),
    PolicyInfo("gpu-quota", "Policy", "accelerators", "medium", "GPU requests stay under quota.", ""),
    PolicyInfo("eu-residency", "ValidatingAdmissionPolicy", "residency", "high", "", "Run in eu-* regions."),
    PolicyInfo("label-owner", "Policy", "general", "low", "Workloads carry an owner label.", ""),
]


def ref(file: str | None, kind: str, ns: str, name: str, line: int | None, doc: int = 0) -> ResourceRef:
    return ResourceRef(
        api_version="apps/v1" if kind != "Pod" else "v1",
        kind=kind,
        namespace=ns,
        name=name,
        file=file,
        document_index=doc,
        line=line,
    )


def result(res: ResourceRef, policy: str, **kw: Any) -> Result:
    base: dict[str, Any] = {
        "binding": None,
        "domain": "general",
        "severity": "medium",
        "validation": 0,
        "validation_name": None,
        "type": "violation",
        "action": "Deny",
        "actions": ["Deny"],
        "message": "denied",
        "reason": "Invalid",
        "field": "spec.validations[0].expression",
        "expression": "false",
        "exception": None,
    }
    base.update(kw)
    return Result(resource=res, policy=policy, **base)


EXC = ExceptionRef(
    name="allow-legacy-trainer",
    ticket="SEC-1234",
    approved_by="alice@example.com",
    reason="migration to signed registry in Q3",
    expires=datetime(2027, 1, 1, tzinfo=UTC),
    file="exceptions/legacy.yaml",
)


def build() -> Report:
    trainer = ref("deploy/train.yaml", "Deployment", "ml", "trainer", 3)
    infer = ref("deploy/train.yaml", "Deployment", "ml", "infer", 41, doc=1)
    job = ref("jobs/batch.yaml", "Job", "batch", "nightly", None)
    legacy = ref("legacy/old.yaml", "Pod", "ml", "legacy", 1)
    results = [
        # trainer: two Deny messages from one policy, a Warn and an evaluation error.
        result(
            trainer,
            "require-model-provenance",
            domain="provenance",
            severity="critical",
            message="model s3://bucket/w.bin is unsigned",
            validation=0,
            validation_name="signed",
        ),
        result(
            trainer,
            "require-model-provenance",
            domain="provenance",
            severity="critical",
            message="digest missing — «ünïcode» 模型 \x1b[31mred\x1b[0m\x00end",
            validation=1,
            validation_name="digest",
            field="spec.validations[1].expression",
        ),
        result(
            trainer,
            "gpu-quota",
            domain="accelerators",
            action="Warn",
            actions=["Warn"],
            message="8 GPUs requested, quota is 4",
        ),
        result(
            infer,
            "eu-residency",
            binding="eu-only",
            domain="residency",
            severity="high",
            type="error",
            action="Deny",
            actions=["Deny"],
            message="no such key: region",
            reason="Invalid",
            validation=None,
            field=None,
            expression=None,
        ),
        # infer: an Audit finding and an error under failurePolicy Ignore.
        result(infer, "label-owner", action="Audit", actions=["Audit"], message="no owner label"),
        result(
            job,
            "gpu-quota",
            type="error",
            action="Ignore",
            actions=[],
            message="division by zero",
            validation=None,
        ),
        result(
            job,
            "eu-residency",
            type="unresolved",
            action="None",
            actions=[],
            validation=None,
            message="Namespace batch is not in the context",
            reason="Unresolved",
            field="spec.matchConstraints.namespaceSelector",
            expression=None,
        ),
        # legacy: a Deny waived by an exception.
        result(
            legacy,
            "require-model-provenance",
            domain="provenance",
            severity="critical",
            message="model is unsigned",
            exception=EXC,
        ),
    ]
    resources = [
        ResourceVerdicts(
            resource=trainer,
            allowed=False,
            verdicts={
                "require-model-provenance": "deny",
                "gpu-quota": "warn",
                "eu-residency": "skip",
                "label-owner": "pass",
            },
        ),
        ResourceVerdicts(
            resource=infer,
            allowed=True,
            verdicts={
                "require-model-provenance": "pass",
                "gpu-quota": "skip",
                "eu-residency": "error",
                "label-owner": "audit",
            },
        ),
        ResourceVerdicts(
            resource=job,
            allowed=True,
            verdicts={"gpu-quota": "error", "eu-residency": "error", "label-owner": "pass"},
        ),
        ResourceVerdicts(resource=legacy, allowed=True, verdicts={"require-model-provenance": "pass"}),
    ]
    summary = Summary(
        resources=4,
        policies=4,
        evaluations=12,
        denied=2,
        warned=1,
        audited=1,
        errors=2,
        unresolved=1,
        exceptions_applied=1,
        resources_denied=1,
        input_errors=2,
    )
    return Report(
        summary=summary,
        results=results,
        resources=resources,
        input_errors=[
            InputProblem(
                file="deploy/broken.yaml",
                document_index=2,
                line=17,
                policy=None,
                field=None,
                message="mapping values are not allowed here\x07",
            ),
            InputProblem(
                file=None,
                document_index=None,
                line=None,
                policy="gpu-quota",
                field="spec.validations[0].expression",
                message="undeclared reference to 'x'",
            ),
        ],
        expired_exceptions=[
            EXC.model_copy(update={"name": "old-waiver", "expires": datetime(2020, 1, 1, tzinfo=UTC)})
        ],
    )


def clean() -> Report:
    """A run with nothing to report: every renderer must still produce a valid document."""
    res = ref("ok.yaml", "Deployment", "default", "web", 1)
    return Report(
        summary=Summary(
            resources=1,
            policies=1,
            evaluations=1,
            denied=0,
            warned=0,
            audited=0,
            errors=0,
            unresolved=0,
            exceptions_applied=0,
            resources_denied=0,
            input_errors=0,
        ),
        results=[],
        resources=[ResourceVerdicts(resource=res, allowed=True, verdicts={"label-owner": "pass"})],
    )


@pytest.fixture
def report() -> Report:
    return build()


@pytest.fixture
def policies() -> list[PolicyInfo]:
    return list(POLICIES)
