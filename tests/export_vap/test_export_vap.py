"""`charter export-vap`: exported VAPs decide as the charter Policies they came from."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from charter.engine import ContextObjects, Engine, attributes_for_object
from charter.engine.documents import read_documents
from charter.engine.loader import add_context, build_policy_set
from typer.testing import CliRunner

from charter._internal.export_vap import export_policies, expression_problems
from charter.cli import app

EXPORTABLE = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: no-latest-tag}
spec:
  validationActions: [Deny]
  domain: provenance
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE, UPDATE]}
    - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE]}
  variables:
  - name: containers
    expression: "object.kind == 'Pod' ? object.spec.containers : object.spec.template.spec.containers"
  validations:
  - name: tagged
    expression: "variables.containers.all(c, c.image.contains('@') || (c.image.contains(':') && !c.image.endsWith(':latest')))"
    messageExpression: "'images must be pinned: ' + variables.containers.map(c, c.image).join(', ')"
    reason: Forbidden
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  validationActions: [Warn]
  matchConstraints:
    namespaceSelector:
      matchExpressions: [{key: charter.dev/enforce, operator: In, values: ["true"]}]
    resourceRules:
    - {apiGroups: [batch], apiVersions: [v1], resources: [jobs], operations: ["*"]}
  matchConditions:
  - name: not-system
    expression: "!object.metadata.name.startsWith('system-')"
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: a team label is required
  auditAnnotations:
  - key: team
    valueExpression: "has(object.metadata.labels) && 'team' in object.metadata.labels ? object.metadata.labels['team'] : null"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: gpu-limit}
spec:
  validationActions: [Audit, Deny]
  failurePolicy: Ignore
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE]}
  validations:
  - expression: >-
      object.spec.containers.all(c, !has(c.resources) || !has(c.resources.limits)
      || !('nvidia.com/gpu' in c.resources.limits) || int(c.resources.limits['nvidia.com/gpu']) <= 4)
    message: at most 4 GPUs per container
"""

NOT_EXPORTABLE = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: autogen-only}
spec:
  validations:
  - expression: "object.metadata.name != 'x'"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: reads-workload}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE]}
  validations:
  - expression: "workload.containers.size() > 0 && cluster.jurisdiction != ''"
    messageExpression: "'the string workload is fine: ' + object.metadata.name"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: uses-distinct}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE]}
  validations:
  - expression: "object.spec.containers.map(c, c.image).distinct().size() == object.spec.containers.size()"
"""

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: enforced, labels: {charter.dev/enforce: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: relaxed}
---
apiVersion: v1
kind: Pod
metadata: {name: good, namespace: enforced}
spec:
  containers:
  - {name: a, image: "registry.example/app@sha256:0123"}
  - {name: b, image: "registry.example/app:1.2", resources: {limits: {nvidia.com/gpu: "2"}}}
---
apiVersion: v1
kind: Pod
metadata: {name: latest, namespace: enforced}
spec:
  containers:
  - {name: a, image: "registry.example/app:latest"}
---
apiVersion: v1
kind: Pod
metadata: {name: greedy, namespace: relaxed}
spec:
  containers:
  - {name: a, image: "registry.example/app:1", resources: {limits: {nvidia.com/gpu: "8"}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: relaxed}
spec:
  template:
    spec:
      containers:
      - {name: a, image: nginx}
---
apiVersion: batch/v1
kind: Job
metadata: {name: train, namespace: enforced}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "trainer:2"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: train, namespace: relaxed}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "trainer:2"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: labelled, namespace: enforced, labels: {team: ml}}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "trainer:2"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: system-sync, namespace: enforced}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "trainer:2"}
"""


def _engine(path: Path, extra: str = MANIFESTS) -> Engine:
    read = read_documents([str(path)])
    errors: list[Any] = list(read.errors)
    pset, others = build_policy_set(read.documents, errors)
    ctx = ContextObjects()
    add_context(ctx, others, errors)
    for doc in yaml.safe_load_all(extra):
        if doc["kind"] == "Namespace":
            ctx.namespaces[doc["metadata"]["name"]] = doc
    assert not errors, [str(e) for e in errors]
    assert not pset.notes, pset.notes
    return Engine(pset, ctx)


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "policies.yaml"
    src.write_text(textwrap.dedent(EXPORTABLE) + "---\n" + textwrap.dedent(NOT_EXPORTABLE))
    out = tmp_path / "vap.yaml"
    result = CliRunner().invoke(app, ["export-vap", "--policies", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return src, out


def test_exported_objects_are_native(exported: tuple[Path, Path]) -> None:
    _, out = exported
    docs = list(yaml.safe_load_all(out.read_text()))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert kinds == [
        ("ValidatingAdmissionPolicy", "no-latest-tag"),
        ("ValidatingAdmissionPolicyBinding", "no-latest-tag"),
        ("ValidatingAdmissionPolicy", "team-label"),
        ("ValidatingAdmissionPolicyBinding", "team-label"),
        ("ValidatingAdmissionPolicy", "gpu-limit"),
        ("ValidatingAdmissionPolicyBinding", "gpu-limit"),
    ]
    for d in docs:
        assert d["apiVersion"] == "admissionregistration.k8s.io/v1"
    vap = docs[0]["spec"]
    assert "name" not in vap["validations"][0]  # charter's extension field is dropped
    assert vap["validations"][0]["reason"] == "Forbidden"
    assert vap["failurePolicy"] == "Fail"
    assert docs[1]["spec"] == {"policyName": "no-latest-tag", "validationActions": ["Deny"]}
    assert docs[5]["spec"]["validationActions"] == ["Audit", "Deny"]
    assert docs[4]["spec"]["failurePolicy"] == "Ignore"
    assert docs[2]["spec"]["matchConditions"][0]["name"] == "not-system"
    assert docs[2]["spec"]["auditAnnotations"][0]["key"] == "team"


def test_exported_vaps_decide_like_the_originals(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = exported
    only = tmp_path / "exportable.yaml"
    only.write_text(textwrap.dedent(EXPORTABLE))
    original, native = _engine(only), _engine(out)
    assert all(p.is_vap for p in native.policies.policies)
    verdicts_seen: set[str] = set()
    for doc in yaml.safe_load_all(MANIFESTS):
        if doc["kind"] == "Namespace":
            continue
        a = original.evaluate(attributes_for_object(doc))
        b = native.evaluate(attributes_for_object(doc))
        va = {o.policy: o.verdict for o in a.outcomes}
        vb = {o.policy: o.verdict for o in b.outcomes}
        assert va == vb, doc["metadata"]
        assert a.allowed == b.allowed
        assert [f.message for f in a.findings()] == [f.message for f in b.findings()]
        assert a.audit_annotations() == b.audit_annotations()
        verdicts_seen.update(va.values())
    # The manifests exercise every outcome, so agreement is not vacuous.
    assert {"pass", "deny", "warn", "skip"} <= verdicts_seen


def test_unexportable_policies_are_listed_with_reasons(tmp_path: Path) -> None:
    src = tmp_path / "p.yaml"
    src.write_text(textwrap.dedent(NOT_EXPORTABLE))
    result = export_policies([str(src)])
    assert not result.errors and not result.objects
    reasons = {s.name: s.reasons for s in result.skipped}
    assert reasons["autogen-only"] == ["no resourceRules: relies on charter's autogen over pod-bearing kinds"]
    assert reasons["reads-workload"] == [
        "reads `cluster` (the ClusterProfile)",
        "reads `workload` (charter's normalized view)",
    ]
    assert reasons["uses-distinct"] == ["uses charter-only function distinct()"]
    cli = CliRunner().invoke(app, ["export-vap", "--policies", str(src)])
    assert cli.exit_code == 0
    assert "not exported: uses-distinct" in cli.output
    assert "0 policies exported, 3 not exportable" in cli.output


@pytest.mark.parametrize(
    ("expr", "problems"),
    [
        ("object.spec.workload == 'x'", []),
        ("'cluster' in object.metadata.labels", []),
        ("object.x ? catalog : null", ["reads `catalog` (charter's catalogs)"]),
        ("provenance.models.size() > 0", ["reads `provenance` (charter's model attestations)"]),
        ("object.a.sort() == object.b", ["uses charter-only function sort()"]),
        ("sets.contains(object.a, object.b)", []),
        ("object.a.isSorted()", []),
    ],
)
def test_expression_problems(expr: str, problems: list[str]) -> None:
    assert expression_problems(expr) == problems


def test_bundled_packs_all_need_charter() -> None:
    result = CliRunner().invoke(app, ["export-vap"])
    assert result.exit_code == 0, result.output
    assert "0 policies exported" in result.output
