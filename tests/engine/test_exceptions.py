"""PolicyException: applied in the core, visible in every result, dead after it expires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from charter.engine import Engine

from .conftest import evaluate

POLICY = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {{name: owner-label}}
spec:
  validations:
    - name: owner
      expression: "workload.identity.owner != ''"
      message: "owner label missing"
    - name: team
      expression: "workload.identity.team != ''"
      message: "team label missing"
---
apiVersion: charter.dev/v1alpha1
kind: PolicyException
metadata: {{name: legacy-batch}}
spec:
  policies: [{{name: owner-label, validations: [{validations}]}}]
  match:
    namespaces: ["legacy-*"]
    selector: {{matchLabels: {{app: batch}}}}
  expires: "2026-12-31T23:59:59Z"
  ticket: GOV-123
  reason: migrating legacy jobs
  approvedBy: ciso@example.com
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {{name: job, namespace: {ns}, labels: {{app: {app}}}}}
spec: {{containers: [{{name: c, image: x}}]}}
"""


def test_exception_waives_named_validation_only(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICY.format(validations='"owner"'))
    d = evaluate(engine, POD.format(ns="legacy-etl", app="batch"))
    by_name = {f.validation_name: f for f in d.findings()}
    assert by_name["owner"].exception is not None and by_name["owner"].exception.ticket == "GOV-123"
    assert by_name["owner"].exception.approved_by == "ciso@example.com"
    assert by_name["team"].exception is None
    assert not d.allowed  # the team validation still denies


def test_exception_by_index_and_whole_policy(make_engine: Callable[..., Engine]) -> None:
    for validations in ("0, 1", ""):
        engine = make_engine(POLICY.format(validations=validations))
        d = evaluate(engine, POD.format(ns="legacy-etl", app="batch"))
        assert d.allowed
        assert all(f.exception is not None for f in d.findings())
        assert d.outcomes[0].verdict == "pass"


def test_exception_does_not_reach_other_resources(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICY.format(validations=""))
    assert not evaluate(engine, POD.format(ns="prod", app="batch")).allowed  # namespace glob
    assert not evaluate(engine, POD.format(ns="legacy-etl", app="web")).allowed  # selector


def test_expired_exception_no_longer_applies_and_is_reported(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICY.format(validations=""), now=datetime(2027, 1, 1, tzinfo=UTC))
    d = evaluate(engine, POD.format(ns="legacy-etl", app="batch"))
    assert not d.allowed
    assert all(f.exception is None for f in d.findings())
    assert [e.name for e in d.expired_exceptions] == ["legacy-batch"]
    assert any("expired" in n and "GOV-123" in n for n in d.notes)
