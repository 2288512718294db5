"""SARIF 2.1.0 output of `charter check`, shaped for GitHub code scanning.

One run; one rule per policy; one result per finding (violation, evaluation error, unresolved
match). Findings waived by a PolicyException stay in the log with an external suppression, so
code scanning shows them as dismissed instead of silently dropping them. The mapping is
documented in docs/check-report.md.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from .model import ExceptionRef, InputProblem, Report, ResourceRef, Result
from .policyinfo import PolicyInfo

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
# The project's home; the report schema is named under the same domain (model.SCHEMA_VERSION).
INFORMATION_URI = "https://charter.dev"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "charterFinding/v1"

# A policy's severity decides the rule's default level and GitHub's security severity
# (a CVSS-like score in a string: >=9 critical, >=7 high, >=4 medium, else low).
_SEVERITY_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_ACTION_LEVEL = {"Deny": "error", "Warn": "warning", "Audit": "note"}


def tool_version() -> str:
    try:
        return importlib.metadata.version("charter")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def render_sarif(
    report: Report, policies: Sequence[PolicyInfo], *, root: str | Path | None = None
) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict.

    `root` is the directory that artifact URIs are made relative to (%SRCROOT%); the current
    directory by default, which is the repository root when run from CI.
    """
    base = Path(root) if root is not None else Path.cwd()
    rules, index = _rules(report, policies)
    results = [_result(r, index[r.policy], base) for r in report.results]
    invocation: dict[str, Any] = {"executionSuccessful": not report.input_errors}
    if report.input_errors:
        invocation["toolExecutionNotifications"] = [_input_error(p, base) for p in report.input_errors]
    if report.expired_exceptions:
        invocation["toolConfigurationNotifications"] = [_expired(e, base) for e in report.expired_exceptions]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "charter",
                "version": tool_version(),
                "semanticVersion": tool_version(),
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [invocation],
        "results": results,
        "properties": {
            "schemaVersion": report.schema_version,
            "summary": report.summary.model_dump(by_alias=True),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rules(report: Report, policies: Sequence[PolicyInfo]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    infos: dict[str, PolicyInfo] = {}
    for p in policies:
        infos.setdefault(p.name, p)
    # A result whose policy was not handed in still needs a rule for ruleIndex to point at.
    for r in report.results:
        if r.policy not in infos:
            infos[r.policy] = PolicyInfo(r.policy, "Policy", r.domain, r.severity, "", "")
    rules = [_rule(p) for p in infos.values()]
    return rules, {name: i for i, name in enumerate(infos)}


def _rule(p: PolicyInfo) -> dict[str, Any]:
    description = p.description.strip()
    rule: dict[str, Any] = {
        "id": p.name,
        "name": p.name,
        "shortDescription": {"text": _first_sentence(description) or p.name},
        "defaultConfiguration": {"level": _SEVERITY_LEVEL.get(p.severity, "warning")},
        "properties": {
            "domain": p.domain,
            "severity": p.severity,
            "kind": p.kind,
            # GitHub shows security-severity only for rules tagged "security".
            "tags": ["security", "kubernetes", p.domain],
            "security-severity": _SECURITY_SEVERITY.get(p.severity, "5.5"),
        },
    }
    if description:
        rule["fullDescription"] = {"text": description}
    if p.remediation.strip():
        rule["help"] = {"text": p.remediation.strip(), "markdown": p.remediation.strip()}
    return rule


def _first_sentence(text: str) -> str:
    line = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    end = line.find(". ")
    return line[: end + 1] if end >= 0 else line


def result_level(r: Result) -> str:
    """Deny→error, Warn→warning, Audit→note; an evaluation error is an error when it decides the
    request (failurePolicy Fail) and a warning when ignored; an unresolved match is a warning."""
    if r.type == "error":
        return "error" if r.actions else "warning"
    if r.type == "unresolved":
        return "warning"
    return _ACTION_LEVEL.get(r.action, "note")


def fingerprint(r: Result) -> str:
    """Stable across commits: no line numbers or message text (both move), only identities."""
    res = r.resource
    validation = r.validation_name or (str(r.validation) if r.validation is not None else "")
    parts = [
        res.file or "",
        res.api_version.split("/")[0] if "/" in res.api_version else "",
        res.kind,
        res.namespace,
        res.name,
        r.policy,
        r.binding or "",
        r.param or "",
        r.type,
        validation,
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _result(r: Result, rule_index: int, base: Path) -> dict[str, Any]:
    res = r.resource
    out: dict[str, Any] = {
        "ruleId": r.policy,
        "ruleIndex": rule_index,
        "level": result_level(r),
        "message": {"text": f"{_resource_label(res)}: {r.message}" if r.message else _resource_label(res)},
        "locations": [_resource_location(res, base)],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(r)},
        "properties": _without_none(
            {
                "type": r.type,
                "action": r.action,
                "actions": list(r.actions),
                "reason": r.reason,
                "binding": r.binding,
                "validation": r.validation,
                "validationName": r.validation_name,
                "field": r.field,
                "expression": r.expression,
                "param": r.param,
                "domain": r.domain,
                "severity": r.severity,
            }
        ),
    }
    if r.exception is not None:
        e = r.exception
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{e.name} ({e.ticket}): {e.reason}",
                "location": _file_location(e.file, None, base, region=False),
                "properties": {"approvedBy": e.approved_by, "expires": e.expires.isoformat()},
            }
        ]
    return out


def _resource_label(res: ResourceRef) -> str:
    return f"{res.kind} {res.namespace}/{res.name}" if res.namespace else f"{res.kind} {res.name}"


def _resource_location(res: ResourceRef, base: Path) -> dict[str, Any]:
    loc = _file_location(res.file, res.line, base)
    loc["logicalLocations"] = [
        {
            "name": res.name,
            "fullyQualifiedName": "/".join(p for p in (res.kind, res.namespace, res.name) if p),
            "kind": "resource",
        }
    ]
    return loc


def _file_location(file: str | None, line: int | None, base: Path, *, region: bool = True) -> dict[str, Any]:
    """A resource always gets a region (code scanning anchors alerts on a line; 1 when unknown)."""
    if not file:
        return {}
    physical: dict[str, Any] = {"artifactLocation": artifact_location(file, base)}
    if region:
        physical["region"] = {"startLine": max(line or 1, 1)}
    return {"physicalLocation": physical}


def artifact_location(file: str, base: Path) -> dict[str, Any]:
    """Relative to %SRCROOT% when the file is under `base`; a file: URI otherwise."""
    path = Path(file)
    if path.is_absolute() or ".." in path.parts:
        full = (base / path).resolve()
        try:
            rel = full.relative_to(base.resolve())
        except ValueError:
            return {"uri": full.as_uri()}
    else:
        rel = path  # kept as given: resolving would follow symlinks out of the checkout
    posix = PurePosixPath(*rel.parts).as_posix() if rel.parts else "."
    posix = posix.removeprefix("./")
    return {"uri": quote(posix, safe="/-._~"), "uriBaseId": SRCROOT}


def _input_error(p: InputProblem, base: Path) -> dict[str, Any]:
    where = [x for x in (p.policy and f"policy {p.policy}", p.field and f"field {p.field}") if x]
    text = p.message + (f" ({', '.join(where)})" if where else "")
    n: dict[str, Any] = {"level": "error", "message": {"text": text}}
    loc = _file_location(p.file, p.line, base)
    if loc:
        n["locations"] = [loc]
    if p.document_index is not None:
        n["properties"] = {"documentIndex": p.document_index}
    return n


def _expired(e: ExceptionRef, base: Path) -> dict[str, Any]:
    n: dict[str, Any] = {
        "level": "warning",
        "message": {
            "text": f"PolicyException {e.name} ({e.ticket}) expired on {e.expires.isoformat()} "
            "and no longer waives findings"
        },
    }
    loc = _file_location(e.file, None, base, region=False)
    if loc:
        n["locations"] = [loc]
    return n


def _without_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
