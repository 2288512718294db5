"""Policies run as groups: one CEL program for several fused programs, with the same results.

A member that fails makes its group's program fail; the members then run one by one and
report exactly what they report without groups. Policies with resource rules, params or
bindings of their own are never grouped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from charter.engine import Engine

from .conftest import evaluate

POLICIES = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  validationActions: [Deny]
  validations:
    - expression: "'team' in workload.labels"
      messageExpression: "workload.kind + ' ' + workload.name + ' has no team label'"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: replicas-error}
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  variables:
    - name: replicas
      expression: "object.spec.replicas"  # no such key on a Pod: an error
  validations:
    - expression: "variables.replicas < 10"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: pinned}
spec:
  validationActions: [Warn]
  matchConditions:
    - name: has-containers
      expression: "workload.containers.size() > 0"
  validations:
    - expression: "workload.containers.all(c, c.digest != '')"
      message: "pin images by digest"
  auditAnnotations:
    - key: images
      valueExpression: "workload.containers.map(c, c.image).join(',')"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: deployments-only}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
    - expression: "object.spec.replicas <= 3"
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns, labels: {team: a}}
spec:
  replicas: 5
  template:
    spec:
      containers: [{name: c, image: "reg/app@sha256:%s"}]
""" % ("a" * 64)
POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns}
spec:
  containers: [{name: c, image: reg/app:1}]
"""
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: ns}
data: {a: b}
"""


def _report(engine: Engine) -> list[Any]:
    return [
        [
            (o.policy, o.verdict, o.matched, sorted(o.audit_annotations.items()),
             [(f.kind, f.actions, f.message, f.validation) for f in o.findings])
            for o in evaluate(engine, m).outcomes
        ]
        for m in (DEPLOYMENT, POD, CONFIGMAP)
    ]  # fmt: skip


def test_groups_report_exactly_as_policies_one_by_one(make_engine: Callable[..., Engine]) -> None:
    grouped = make_engine(POLICIES)
    got = _report(grouped)
    assert grouped._groups is not None
    assert [sorted(p.name for p in g.members) for g in grouped._groups] == [
        ["pinned", "replicas-error", "team-label"]
    ]  # not deployments-only: it has resource rules of its own
    alone = make_engine(POLICIES)
    alone._groups = []
    step = make_engine(POLICIES)
    for p in step.policies.policies:
        p.fused = None
    assert got == _report(alone) == _report(step)
    deployment, pod, configmap = got
    assert [o[1] for o in deployment] == ["pass", "pass", "pass", "deny"]
    # on the Pod, replicas-error fails the group's program: every member still reports its own
    assert [o[1] for o in pod] == ["deny", "error", "warn", "skip"]
    assert pod[2][3] == [("images", "reg/app:1")]
    assert pod[0][4][0][2] == "Pod p has no team label"
    assert [o[1] for o in configmap] == ["skip", "skip", "skip", "skip"]  # no pod templates: not run


def test_a_group_that_fails_runs_its_members_one_by_one(
    make_engine: Callable[..., Engine], monkeypatch: Any
) -> None:
    engine = make_engine(POLICIES)
    _report(engine)
    runs: list[str] = []
    (group,) = engine._groups or []
    real = type(group.program).run

    members = {id(engine._fused_for(p)) for p in group.members}

    def counting(self: Any, activation: Any) -> Any:
        value, err = real(self, activation)
        if self is group.program:
            runs.append("group")
        elif id(self) in members:
            runs.append("member")
        return value, err

    monkeypatch.setattr(type(group.program), "run", counting)
    evaluate(engine, DEPLOYMENT)
    assert runs == ["group"]  # every member's value came from the group
    runs.clear()
    evaluate(engine, POD)
    assert runs == ["group", "member", "member", "member"]  # it failed: each member on its own


def test_warm_compiles_before_the_first_evaluation(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICIES)
    assert engine._groups is None
    engine.warm()
    groups = engine._groups
    assert groups and engine._constants is not None
    _report(engine)
    assert engine._groups is groups  # not rebuilt
