"""A Decision rendered as an AdmissionResponse, in the apiserver's wording.

Deny follows validating/dispatcher.go: the first denial's message, its reason, and the code
the apiserver gives that reason. Warn findings become warnings; Audit findings become the
`validation_failure` annotation, and policies' auditAnnotations are passed on.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from charter.engine import Decision

from .review import API_VERSION

MAX_MESSAGE = 1024  # the apiserver puts this in an error shown to kubectl users: keep it one readable line
MAX_WARNING = 1024
MAX_WARNINGS = 32

# apiserver validating/dispatcher.go reasonToCode
_REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}

_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int) -> str:
    """Single line, trimmed, bounded: control characters and newlines become spaces."""
    if not text.isprintable():  # the usual message is, and skips the per-character pass
        text = "".join(c if c.isprintable() else " " for c in text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"code": code, "reason": reason, "message": one_line(message, MAX_MESSAGE)}


def validation_failures(decision: Decision) -> list[dict[str, Any]]:
    """The apiserver's `validation.policy.admission.k8s.io/validation_failure` entries, for Audit."""
    out = []
    for f in decision.findings():
        if f.effective and "Audit" in f.actions:
            out.append(
                {
                    "message": f.message,
                    "policy": f.policy,
                    "binding": f.binding,
                    "expressionIndex": f.validation if f.validation is not None else 0,
                    "validationActions": list(f.actions),
                }
            )
    return out


_MAX_KEY = 63


def annotation_key(policy: str, key: str) -> str:
    """A webhook audit-annotation key the apiserver will keep.

    The apiserver publishes each key as `<webhook name>/<key>` and drops any whose
    `<key>` is not a qualified name (no `/`, at most 63 characters), so the
    VAP-style `<policy>/<key>` cannot be used here.
    """
    joined = f"{policy}.{key}"
    if len(joined) <= _MAX_KEY:
        return joined
    digest = hashlib.sha256(policy.encode()).hexdigest()[:8]
    return f"{key[: _MAX_KEY - 9]}-{digest}"


def audit_annotations(decision: Decision) -> dict[str, str]:
    annotations = {
        annotation_key(o.policy, key): value
        for o in decision.outcomes
        for key, value in o.audit_annotations.items()
    }
    failures = validation_failures(decision)
    if failures:
        annotations["validation_failure"] = json.dumps(failures, separators=(",", ":"))
    return annotations


def response_for(uid: str, decision: Decision) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        reason = decision.denials[0].reason
        if reason not in _REASON_CODES:
            reason = "Invalid"  # the apiserver's default for a denial without a known reason
        response["status"] = status(_REASON_CODES[reason], reason, decision.deny_message())
    warnings = [one_line(w, MAX_WARNING) for w in decision.warnings()]
    if warnings:
        response["warnings"] = warnings[:MAX_WARNINGS]
    annotations = audit_annotations(decision)
    if annotations:
        response["auditAnnotations"] = annotations
    return response


def denied(uid: str, code: int, reason: str, message: str) -> dict[str, Any]:
    return {"uid": uid, "allowed": False, "status": status(code, reason, message)}


def review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
