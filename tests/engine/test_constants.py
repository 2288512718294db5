"""Context constants: variables that read only `cluster` and `catalog` are computed once per engine.

They must change nothing but the cost: every case is evaluated with them, without them (the
plain fused program) and step by step, and must report the same findings, messages and
annotations; a constant that fails keeps the policy on its plain program and its own errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from charter.engine import Engine
from charter.engine._internal.cel import program as program_module

from .conftest import evaluate

CONTEXT = """
apiVersion: charter.dev/v1alpha1
kind: ClusterProfile
metadata: {name: eu-1}
spec:
  type: onprem
  provider: none
  region: fra
  jurisdiction: DE
  jurisdictions: [DE, EU]
---
apiVersion: charter.dev/v1alpha1
kind: Catalog
metadata: {name: regs}
spec:
  registries:
    - {id: registry.eu.example.com, jurisdiction: DE}
    - {id: quay.io, jurisdiction: US}
    - {id: ghcr.io, jurisdiction: US, allowedJurisdictions: ["*"]}
"""

POLICIES = (
    CONTEXT
    + """
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: registries}
spec:
  validationActions: [Deny]
  variables:
    - name: regs
      expression: "'registries' in catalog ? catalog.registries : {}"
    - name: usable
      expression: >-
        variables.regs.filter(k, variables.regs[k].?allowedJurisdictions.orValue([variables.regs[k].jurisdiction])
          .exists(j, j == '*' || j in cluster.jurisdictions))
    - name: usableText
      expression: "variables.usable.sort().join(', ')"
    - name: bad
      expression: "workload.containers.filter(c, !(c.registry in variables.usable))"
  validations:
    - expression: "variables.bad.size() == 0"
      messageExpression: "'registry ' + variables.bad[0].registry + ' is not one of ' + variables.usableText"
  auditAnnotations:
    - key: usable
      valueExpression: "variables.usableText"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: failing-constant}
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  variables:
    - name: missing
      expression: "catalog.nothere.map(k, k)"
    - name: image
      expression: "workload.containers[0].image"
  validations:
    - expression: "variables.image != ''"
    - expression: "variables.image.startsWith('registry') || variables.missing.size() == 0"
      messageExpression: "'needs ' + variables.missing.join(',')"
"""
)


def _deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "ns"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }


CASES = [_deployment(i) for i in ("registry.eu.example.com/a:1", "quay.io/b:2", "ghcr.io/c:3", "docker.io/d")]


def _report(engine: Engine) -> list[Any]:
    return [
        [
            (o.policy, o.verdict, sorted(o.audit_annotations.items()),
             [(f.kind, f.message, f.validation, f.expression) for f in o.findings])
            for o in evaluate(engine, m).outcomes
        ]
        for m in CASES
    ]  # fmt: skip


def test_constants_change_nothing_but_the_cost(make_engine: Callable[..., Engine]) -> None:
    with_constants = make_engine(POLICIES)
    registries = with_constants.policies.policies[0]
    assert [k for k, _ in registries.constants] and registries.fused_constants is not None
    got = _report(with_constants)
    assert with_constants._fused_for(registries) is registries.fused_constants

    plain = make_engine(POLICIES)
    for p in plain.policies.policies:
        p.fused_constants = None
    step = make_engine(POLICIES)
    for p in step.policies.policies:
        p.fused = None
    assert got == _report(plain) == _report(step)
    # and what they say is right
    assert got[1][0][3][0][1] == "registry quay.io is not one of ghcr.io, registry.eu.example.com"
    assert got[0][0][2] == [("usable", "ghcr.io, registry.eu.example.com")]


def test_constants_are_computed_once_per_engine(
    make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(POLICIES)
    (_key, constant), *_ = engine.policies.policies[0].constants
    runs = 0
    real = program_module.Program.run

    def counting(self: Any, activation: Any) -> Any:
        nonlocal runs
        runs += self is constant
        return real(self, activation)

    monkeypatch.setattr(program_module.Program, "run", counting)
    for _ in range(3):
        _report(engine)
    assert runs == 1


def test_a_failing_constant_keeps_the_plain_program_and_its_errors(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(POLICIES)
    failing = engine.policies.policies[1]
    assert failing.constants and failing.fused_constants is not None
    report = _report(engine)
    assert engine._fused_for(failing) is failing.fused  # its constant erred: not used
    errors = [f for case in report for o in case if o[0] == "failing-constant" for f in o[3]]
    # the quay.io, ghcr.io and docker.io images read the missing catalog key: an error under Fail
    assert len(errors) == 3 and all(f[0] == "error" and "nothere" in f[1] for f in errors)


def test_variables_reading_the_resource_or_params_are_not_constants(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(
        CONTEXT
        + """
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: not-constant}
spec:
  validationActions: [Deny]
  variables:
    - name: fromWorkload
      expression: "workload.containers.map(c, c.image)"
    - name: mixed
      expression: "catalog.registries.filter(k, k in variables.fromWorkload)"
    - name: lookup
      expression: "catalog.registries"
    - name: inString
      expression: "['workload'].map(x, x)"
  validations:
    - expression: "variables.mixed.size() + variables.lookup.size() + variables.inString.size() >= 0"
"""
    )
    (policy,) = engine.policies.policies
    assert policy.constants == () and policy.fused_constants is None
