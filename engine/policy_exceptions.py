"""PolicyException: a recorded, expiring waiver of a policy for some resources.

Applied in the core so that the webhook, `charter check` and scans all honour the
same exceptions and the same expiry (the gap in Kyverno #17473).
"""

from __future__ import annotations

from datetime import datetime
from fnmatch import fnmatchcase

from .loader import LoadedException
from .matcher import selector_matches
from .request import Attributes
from .results import ExceptionUse, Finding


def _labels(attrs: Attributes) -> dict[str, str]:
    meta = attrs.subject.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def resource_matches(exc: LoadedException, attrs: Attributes) -> bool:
    m = exc.model.spec.match
    if m.namespaces and not any(fnmatchcase(attrs.namespace, p) for p in m.namespaces):
        return False
    if m.names and not any(fnmatchcase(attrs.name, p) for p in m.names):
        return False
    if m.kinds and attrs.kind not in m.kinds:
        return False
    return m.selector is None or selector_matches(m.selector, _labels(attrs))


def covers(exc: LoadedException, finding: Finding) -> bool:
    for ref in exc.model.spec.policies:
        if ref.name != finding.policy:
            continue
        if not ref.validations:
            return True
        for v in ref.validations:
            if isinstance(v, int) and v == finding.validation:
                return True
            if isinstance(v, str) and v == finding.validation_name:
                return True
    return False


def use_of(exc: LoadedException) -> ExceptionUse:
    s = exc.model.spec
    return ExceptionUse(
        exc.model.metadata.name, s.ticket, s.approved_by, s.reason, s.expires, exc.document.source
    )


def apply_exceptions(
    exceptions: list[LoadedException], attrs: Attributes, findings: list[Finding], now: datetime
) -> list[ExceptionUse]:
    """Mark the findings that a live exception waives; return the expired ones that would have applied."""
    expired: dict[str, ExceptionUse] = {}
    if not exceptions or not findings:
        return []
    candidates = [e for e in exceptions if resource_matches(e, attrs)]
    for finding in findings:
        for exc in candidates:
            if not covers(exc, finding):
                continue
            if exc.model.spec.expires <= now:
                expired[exc.model.metadata.name] = use_of(exc)
                continue
            finding.exception = use_of(exc)
            break
    return list(expired.values())
