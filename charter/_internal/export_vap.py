"""`charter export-vap`: charter Policies that need nothing of charter's, as native admission policies.

A charter Policy mirrors admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy, so one
that reads only what the apiserver gives (object, oldObject, request, params,
namespaceObject, variables, authorizer) and calls only functions the apiserver has
becomes a ValidatingAdmissionPolicy with the same matchConstraints, matchConditions,
variables, validations, auditAnnotations and failurePolicy, plus a
ValidatingAdmissionPolicyBinding with the policy's validationActions.
The others are listed with the reason they cannot run natively.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.engine import CharterError, load_policy_set
from charter.engine.documents import read_documents
from charter.engine.loader import POLICY_SKIP_DIRS, classify, parse_model
from charter.engine.models import CharterPolicy

VAP_API_VERSION = "admissionregistration.k8s.io/v1"

# charter's context views: what the apiserver has no notion of.
CHARTER_VARIABLES: dict[str, str] = {
    "workload": "charter's normalized view",
    "cluster": "the ClusterProfile",
    "catalog": "charter's catalogs",
    "provenance": "charter's model attestations",
}
# Member functions charter's CEL environment adds and the apiserver's lacks.
CHARTER_FUNCTIONS = ("sort", "distinct")

_STRING_LITERAL = re.compile(
    r"""[rRbB]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
    re.DOTALL,
)
_ROOT_IDENT = re.compile(r"(?<![\w.])(" + "|".join(CHARTER_VARIABLES) + r")\b")
_MEMBER_CALL = re.compile(r"\.\s*(" + "|".join(CHARTER_FUNCTIONS) + r")\s*\(")


@dataclass
class Skipped:
    name: str
    source: str
    reasons: list[str]


@dataclass
class Export:
    objects: list[dict[str, Any]] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[CharterError] = field(default_factory=list)


def _strip_strings(source: str) -> str:
    return _STRING_LITERAL.sub('""', source)


def expression_problems(source: str) -> list[str]:
    """Why one CEL expression cannot run in the apiserver; [] when it can."""
    code = _strip_strings(source)
    problems = [f"reads `{m}` ({CHARTER_VARIABLES[m]})" for m in dict.fromkeys(_ROOT_IDENT.findall(code))]
    problems += [f"uses charter-only function {m}()" for m in dict.fromkeys(_MEMBER_CALL.findall(code))]
    return problems


def _expressions(policy: CharterPolicy) -> list[str]:
    s = policy.spec
    out = [v.expression for v in s.variables] + [m.expression for m in s.match_conditions]
    for val in s.validations:
        out.append(val.expression)
        if val.message_expression:
            out.append(val.message_expression)
    out += [a.value_expression for a in s.audit_annotations]
    return out


def unexportable_reasons(policy: CharterPolicy) -> list[str]:
    reasons: list[str] = []
    mc = policy.spec.match_constraints
    if mc is None or not mc.resource_rules:
        reasons.append("no resourceRules: relies on charter's autogen over pod-bearing kinds")
    for expr in _expressions(policy):
        for p in expression_problems(expr):
            if p not in reasons:
                reasons.append(p)
    return reasons[:1] + sorted(reasons[1:]) if reasons and reasons[0].startswith("no ") else sorted(reasons)


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_defaults=True, mode="json")


def to_vap(policy: CharterPolicy) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding for an exportable charter Policy."""
    s = policy.spec
    name = policy.metadata.name
    assert s.match_constraints is not None
    spec: dict[str, Any] = {
        "failurePolicy": s.failure_policy,
        "matchConstraints": s.match_constraints.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        | {"matchPolicy": s.match_constraints.match_policy},
    }
    if s.match_conditions:
        spec["matchConditions"] = [_dump(m) for m in s.match_conditions]
    if s.variables:
        spec["variables"] = [_dump(v) for v in s.variables]
    if s.validations:
        spec["validations"] = [
            # `name` is charter's: the apiserver would reject the unknown field.
            v.model_dump(by_alias=True, exclude_defaults=True, exclude={"name"}, mode="json")
            for v in s.validations
        ]
    if s.audit_annotations:
        spec["auditAnnotations"] = [_dump(a) for a in s.audit_annotations]
    annotations = {
        "charter.dev/exported-from": "charter.dev/v1alpha1 Policy",
        "charter.dev/domain": s.domain,
        "charter.dev/severity": s.severity,
    }
    if s.description:
        annotations["charter.dev/description"] = s.description
    labels = dict(policy.metadata.labels) | {"app.kubernetes.io/managed-by": "charter"}
    vap = {
        "apiVersion": VAP_API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
    }
    binding = {
        "apiVersion": VAP_API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": labels},
        "spec": {"policyName": name, "validationActions": list(s.validation_actions)},
    }
    return [vap, binding]


def export_policies(paths: Sequence[str]) -> Export:
    """Read the policy files; translate what can be translated, explain what cannot."""
    out = Export()
    # Only policies that compile are translated: the same checks as `charter lint`.
    _, _, errors = load_policy_set(paths)
    if errors:
        out.errors.extend(errors)
        return out
    read = read_documents(paths, skip_dirs=POLICY_SKIP_DIRS)
    for doc in read.documents:
        if classify(doc) != "policy":
            continue
        try:
            policy = parse_model(CharterPolicy, doc)
        except CharterError as e:
            out.errors.append(e)
            continue
        reasons = unexportable_reasons(policy)
        if reasons:
            out.skipped.append(Skipped(policy.metadata.name, f"{doc.source}:{doc.line}", reasons))
            continue
        out.objects.extend(to_vap(policy))
        out.exported.append(policy.metadata.name)
    return out
