"""The webhook's parts in process: rendering, audit failure, namespace sources, webhook-config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from charter.admission.app import WebhookState, audit, decide
from charter.admission.metrics import Metrics
from charter.admission.namespaces import FileNamespaceSource, KubeNamespaceSource, namespace_source
from charter.admission.reload import PolicyHolder, PolicySetup
from charter.admission.response import one_line
from charter.admission.review import AdmissionReview
from charter.audit.sink import AuditUnavailable, DecisionContext
from charter.engine import Decision

from .conftest import CHARTER, REPO, admission_review
from .tls import make_ca

POLICIES = """\
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: warn-latest}
spec:
  validationActions: [Warn]
  validations:
    - expression: "!object.spec.containers.exists(c, c.image.endsWith(':latest'))"
      message: "uses a :latest image"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: audit-team}
spec:
  validationActions: [Audit]
  validations:
    - expression: "'team' in object.metadata.?labels.orValue({})"
      message: "no team label"
  auditAnnotations:
    - key: image
      valueExpression: "object.spec.containers[0].image"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: ignore-error}
spec:
  validationActions: [Deny]
  failurePolicy: Ignore
  validations:
    - expression: "object.spec.nope == 1"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: gpu-namespaces}
spec:
  validationActions: [Deny]
  matchConstraints:
    namespaceSelector:
      matchLabels: {gpu: "no"}
  validations:
    - expression: "false"
      message: "no workloads in this namespace"
"""
FAIL_ERROR = """\
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: fail-error}
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  validations:
    - expression: "object.spec.nope == 1"
"""


def pod(ns: str = "team-a", image: str = "r.example/x:latest") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }


class FailingSink:
    def __init__(self) -> None:
        self.calls: list[DecisionContext] = []

    def append(self, decision: Decision, context: DecisionContext) -> str:
        self.calls.append(context)
        raise AuditUnavailable("disk full")

    def close(self) -> None:
        return None


class RecordingSink(FailingSink):
    def append(self, decision: Decision, context: DecisionContext) -> str:
        self.calls.append(context)
        return "rec-1"


def _state(tmp_path: Path, extra: str = "", **kw: Any) -> WebhookState:
    (tmp_path / "p").mkdir(exist_ok=True)
    (tmp_path / "p" / "policies.yaml").write_text(POLICIES + ("---\n" + extra if extra else ""))
    ns = tmp_path / "ns.yaml"
    ns.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {gpu: 'yes'}}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b, labels: {gpu: 'no'}}\n"
    )
    holder = PolicyHolder(PolicySetup([str(tmp_path / "p")]), Metrics())
    assert holder.current is not None, holder.status.errors
    return WebhookState(
        holder=holder, metrics=holder.metrics, namespaces=FileNamespaceSource([str(ns)]), **kw
    )


def _decide(state: WebhookState, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The handler's path without HTTP: evaluate, then audit before answering."""
    review = AdmissionReview.model_validate(admission_review(obj, **kw))
    response, decision, digest = decide(state, review)
    assert decision is not None
    return asyncio.run(audit(state, review.request.uid, response, decision, digest))


def test_warn_audit_and_ignored_errors_admit(tmp_path: Path) -> None:
    sink = RecordingSink()
    got = _decide(_state(tmp_path, sink=sink), pod(), uid="u1", dry_run=True)
    assert got["allowed"] is True and "status" not in got
    assert got["warnings"] == ["Validation failed for policy 'warn-latest': uses a :latest image"]
    ann = got["auditAnnotations"]
    assert ann["audit-team.image"] == "r.example/x:latest"
    failures = json.loads(ann["validation_failure"])
    assert failures == [
        {
            "message": "no team label",
            "policy": "audit-team",
            "binding": "",
            "expressionIndex": 0,
            "validationActions": ["Audit"],
        }
    ]
    assert sink.calls and sink.calls[0].shell == "admission"


def test_namespace_labels_from_the_source(tmp_path: Path) -> None:
    state = _state(tmp_path)
    assert _decide(state, pod("team-a"))["allowed"]
    denied = _decide(state, pod("team-b"))
    assert not denied["allowed"]
    assert denied["status"] == {
        "code": 422,
        "reason": "Invalid",
        "message": "policy 'gpu-namespaces' denied request: no workloads in this namespace",
    }


def test_error_under_fail_denies_with_the_error(tmp_path: Path) -> None:
    got = _decide(_state(tmp_path, FAIL_ERROR), pod(image="r.example/x:1"))
    assert not got["allowed"]
    assert got["status"]["message"].startswith("policy 'fail-error' denied request: ")
    assert "nope" in got["status"]["message"]


@pytest.mark.parametrize(("mode", "allowed"), [("deny", False), ("allow", True)])
def test_audit_failure(tmp_path: Path, mode: str, allowed: bool) -> None:
    state = _state(tmp_path, sink=FailingSink(), audit_failure=mode)
    got = _decide(state, pod(image="r.example/x:1"))
    assert got["allowed"] is allowed
    if not allowed:
        assert got["status"]["code"] == 503 and "audit" in got["status"]["message"]
    assert state.metrics.audit_failures._value.get() == 1


def test_one_line_bounds_messages() -> None:
    assert one_line("  a\nb\t\x00c  ", 100) == "a b c"
    assert len(one_line("x" * 5000, 1024)) == 1024
    assert one_line("  policy 'p'  denied:   two  spaces ", 100) == "policy 'p' denied: two spaces"
    assert one_line("é\u2028x\u00a0y", 100) == "é x y"  # line separator, no-break space


def test_file_namespace_source_reloads(tmp_path: Path) -> None:
    f = tmp_path / "ns.yaml"
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: '1'}}\n")
    src = namespace_source(f"file:{f}")
    assert isinstance(src, FileNamespaceSource) and src.get("a") and src.get("b") is None
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\nkind: ConfigMap\n")
    src.reload()
    assert src.get("a") is None and src.get("b") is not None
    with pytest.raises(ValueError):
        namespace_source("etcd")


class _DownApi:
    """A kubernetes CoreV1Api whose apiserver is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def list_namespace(self, **kw: Any) -> Any:
        self.calls += 1
        raise ConnectionError("apiserver unreachable")


def test_kube_namespace_source_cache_and_resync() -> None:
    api = _DownApi()
    src = KubeNamespaceSource(api=api, retry_seconds=0.01)
    try:
        assert not src.wait_ready(0.3)
        deadline = time.monotonic() + 10  # bounded: a loaded CI machine may schedule the thread late
        while (api.calls < 2 or src.last_error is None) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert api.calls >= 2 and not src.ready()  # keeps relisting after errors
        assert src.last_error is not None and "unreachable" in src.last_error
        src.replace_all([{"metadata": {"name": "a", "labels": {"x": "1"}}}, {"metadata": {}}])
        assert src.ready() and src.get("a") == {"metadata": {"name": "a", "labels": {"x": "1"}}}
        src.apply_event("MODIFIED", {"metadata": {"name": "a", "labels": {"x": "2"}}})
        src.apply_event("ADDED", {"metadata": {"name": "b"}})
        assert src.get("a")["metadata"]["labels"] == {"x": "2"} and src.get("b")  # type: ignore[index]
        src.apply_event("DELETED", {"metadata": {"name": "a"}})
        assert src.get("a") is None
    finally:
        src.close()


# The ValidatingWebhookConfiguration shape (admissionregistration.k8s.io/v1), the fields charter writes.
_RULE = {
    "type": "object",
    "required": ["apiGroups", "apiVersions", "resources", "operations", "scope"],
    "additionalProperties": False,
    "properties": {
        "apiGroups": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "apiVersions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "resources": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "operations": {
            "type": "array",
            "items": {"enum": ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"]},
            "minItems": 1,
        },
        "scope": {"enum": ["Cluster", "Namespaced", "*"]},
    },
}
VWC_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "webhooks"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "admissionregistration.k8s.io/v1"},
        "kind": {"const": "ValidatingWebhookConfiguration"},
        "metadata": {"type": "object", "required": ["name"]},
        "webhooks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "clientConfig", "sideEffects", "admissionReviewVersions"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": r"^[a-z0-9-]+(\.[a-z0-9-]+){2,}$"},
                    "admissionReviewVersions": {"const": ["v1"]},
                    "clientConfig": {
                        "type": "object",
                        "required": ["service", "caBundle"],
                        "properties": {
                            "service": {
                                "type": "object",
                                "required": ["namespace", "name"],
                                "properties": {"port": {"type": "integer"}, "path": {"type": "string"}},
                            },
                            "caBundle": {"type": "string", "contentEncoding": "base64"},
                        },
                    },
                    "rules": {"type": "array", "items": _RULE},
                    "failurePolicy": {"enum": ["Fail", "Ignore"]},
                    "matchPolicy": {"enum": ["Exact", "Equivalent"]},
                    "sideEffects": {"enum": ["None", "NoneOnDryRun"]},
                    "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 30},
                    "namespaceSelector": {"type": "object"},
                    "objectSelector": {"type": "object"},
                },
            },
        },
    },
}


def _webhook_config(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_ca().pem())
    out = subprocess.run(
        [CHARTER, "webhook-config", "--service", "charter-system/charter", "--ca-bundle", str(ca), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode, out.stdout, out.stderr


def test_webhook_config_for_the_shipped_packs(tmp_path: Path) -> None:
    import base64

    code, out, err = _webhook_config(tmp_path, "--timeout-seconds", "5", "--failure-policy", "Ignore")
    assert code == 0, err
    config = yaml.safe_load(out)
    jsonschema.validate(config, VWC_SCHEMA)
    hook = config["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 5 and hook["sideEffects"] == "None"
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["clientConfig"]["service"] == {
        "namespace": "charter-system",
        "name": "charter",
        "path": "/validate",
        "port": 443,
    }
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == (tmp_path / "ca.pem").read_bytes()
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["charter-system", "kube-system"],
        }
    ]
    covered = {(g, r) for rule in hook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for want in [
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("kubeflow.org", "pytorchjobs"),
        ("ray.io", "rayjobs"),
        ("serving.kserve.io", "inferenceservices"),
        ("jobset.x-k8s.io", "jobsets"),
        ("leaderworkerset.x-k8s.io", "leaderworkersets"),
    ]:
        assert want in covered, want
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in hook["rules"])


def test_webhook_config_rules_from_a_vap(tmp_path: Path) -> None:
    vap = tmp_path / "vap.yaml"
    vap.write_text(
        """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: cm-size}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [configmaps]
  validations:
    - expression: "size(object.data) < 10"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: cm-size}
spec:
  policyName: cm-size
  validationActions: [Deny]
"""
    )
    code, out, err = _webhook_config(tmp_path, "--policies", str(vap), "--name", "charter.example.org")
    assert code == 0, err
    config = yaml.safe_load(out)
    jsonschema.validate(config, VWC_SCHEMA)
    assert config["webhooks"][0]["name"] == "charter.example.org"
    assert config["webhooks"][0]["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["configmaps"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "*",
        }
    ]


def test_webhook_config_usage_errors(tmp_path: Path) -> None:
    code, _, err = _webhook_config(tmp_path, "--failure-policy", "Sometimes")
    assert code == 2 and "Fail or Ignore" in err
    ca = tmp_path / "not-a-ca"
    ca.write_text("hello")
    out = subprocess.run(
        [CHARTER, "webhook-config", "--service", "nope", "--ca-bundle", str(ca)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "NAMESPACE/NAME" in out.stderr


def test_annotation_keys_are_qualified_names() -> None:
    import re

    from charter.admission.response import annotation_key

    short = annotation_key("residency-dataset-placement", "datasets")
    assert short == "residency-dataset-placement.datasets"
    long = annotation_key("p" * 80, "evidence")
    assert len(long) <= 63 and long.startswith("evidence")
    assert long != annotation_key("q" * 80, "evidence")
    for key in (short, long):
        assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", key)


def test_bracket_count_bounds_the_nesting_walk() -> None:
    from charter.admission.request import may_nest_deeper, nesting_depth_exceeds

    for depth in (0, 1, 5, 199, 200, 201, 202, 260):
        for opener, closer in (("[", "]"), ('{"a":', "}")):
            text = opener * depth + "1" + closer * depth
            data = json.loads(text)
            exceeds = nesting_depth_exceeds(data, 200)
            assert exceeds == (depth > 200)
            if exceeds:  # the cheap count never clears a body the walk would reject
                assert may_nest_deeper(text.encode(), 200)
    # brackets inside strings only make the count more cautious
    assert may_nest_deeper(json.dumps({"a": "[" * 300}).encode(), 200)
    assert not nesting_depth_exceeds(json.loads(json.dumps({"a": "[" * 300})), 200)


def test_policy_verdicts_are_exposed_as_a_labelled_counter() -> None:
    from prometheus_client import generate_latest

    m = Metrics()
    m.policy_verdicts.inc("p", "deny")
    m.policy_verdicts.inc("p", "deny")
    m.policy_verdicts.inc("q", "pass")
    text = generate_latest(m.registry).decode()
    assert "# TYPE charter_admission_policy_verdicts_total counter" in text
    assert 'charter_admission_policy_verdicts_total{policy="p",verdict="deny"} 2.0' in text
    assert 'charter_admission_policy_verdicts_total{policy="q",verdict="pass"} 1.0' in text
    assert (
        m.registry.get_sample_value(
            "charter_admission_policy_verdicts_total", {"policy": "p", "verdict": "deny"}
        )
        == 2
    )


def test_a_policy_set_is_warmed_before_it_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.admission import reload
    from charter.engine import Engine

    warmed: list[Engine] = []
    original = Engine.warm

    def warm(self: Engine) -> None:
        warmed.append(self)
        original(self)

    monkeypatch.setattr(Engine, "warm", warm)
    serving, errors = reload.build(PolicySetup([], str(REPO / "examples/clusters/onprem-sovereign-de.yaml")))
    assert not errors and serving is not None
    assert warmed == [serving.engine]  # compiled here, not by the first review on the event loop
