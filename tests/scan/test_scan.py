"""`charter scan` against a fake apiserver: discovery, paging, ownership, namespaces, and the reports."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from charter._internal.policyreport import policy_reports
from charter._internal.scan import Cluster, collect, connect, discover
from charter.cli import app

from .conftest import FakeApiserver

POLICIES = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: no-latest}
spec:
  validationActions: [Deny]
  domain: provenance
  severity: high
  validations:
  - name: pinned
    expression: "workload.containers.all(c, !c.latest)"
    messageExpression: "'unpinned image in ' + workload.kind + ' ' + workload.name"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  validationActions: [Warn]
  domain: identity
  matchConstraints:
    namespaceSelector:
      matchLabels: {charter.dev/enforce: "true"}
    resourceRules:
    - {apiGroups: [kubeflow.org], apiVersions: ["*"], resources: [pytorchjobs], operations: [CREATE]}
    - {apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE]}
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: a team label is required
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    p = tmp_path / "policies.yaml"
    p.write_text(textwrap.dedent(POLICIES))
    return p


def scan(kubeconfig: Path, policies: Path, *args: str) -> Any:
    result = CliRunner().invoke(
        app,
        ["scan", "--kubeconfig", str(kubeconfig), "--policies", str(policies), *args],
        catch_exceptions=False,
    )
    return result


def test_discovery_skips_what_the_server_does_not_serve(apiserver: FakeApiserver, kubeconfig: Path) -> None:
    api = connect(str(kubeconfig), None)
    try:
        kinds, notes = discover(Cluster(api))
    finally:
        api.close()
    by_plural = {k.plural: k for k in kinds}
    assert by_plural["pods"].api_version == "v1"
    assert by_plural["deployments"].api_version == "apps/v1"
    assert by_plural["pytorchjobs"].kind == "PyTorchJob"
    assert by_plural["inferenceservices"].api_version == "serving.kserve.io/v1beta1"
    # Not in the preferred version: found in the other one the group serves.
    assert by_plural["llminferenceservices"].api_version == "serving.kserve.io/v1alpha1"
    assert "tfjobs" not in by_plural and "rayjobs" not in by_plural
    assert any("rayjobs.ray.io" in n for n in notes)
    assert any("tfjobs.kubeflow.org" in n for n in notes)


def test_collect_pages_and_judges_owned_objects_through_their_controller(
    apiserver: FakeApiserver, kubeconfig: Path
) -> None:
    api = connect(str(kubeconfig), None)
    try:
        inv = collect(Cluster(api))
    finally:
        api.close()
    names = sorted((o["kind"], o["metadata"]["name"]) for o in inv.workloads)
    assert names == [
        ("Deployment", "web"),
        ("InferenceService", "llm"),
        ("Pod", "debug"),
        ("Pod", "tool"),
        ("PyTorchJob", "train"),
    ]
    assert inv.owned_skipped == 3  # a Pod of a ReplicaSet, the ReplicaSet of a Deployment, a PyTorchJob's Pod
    assert set(inv.namespaces) == {"default", "ml-team", "serving"}
    # Items of a list get their apiVersion and kind; the second page was fetched with the token.
    assert all(o["apiVersion"] and o["kind"] for o in inv.workloads)
    pods = [q for p, q in apiserver.requests if p == "/api/v1/pods"]
    assert [q.get("continue") for q in pods] == [None, ["page-2"]]
    assert all(q.get("limit") == ["500"] for p, q in apiserver.requests if p.endswith("/pods"))


def test_json_report(apiserver: FakeApiserver, kubeconfig: Path, policies: Path) -> None:
    result = scan(kubeconfig, policies, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    verdicts = {(r["resource"]["kind"], r["resource"]["name"]): r["verdicts"] for r in report["resources"]}
    assert verdicts[("Pod", "debug")] == {"no-latest": "deny", "team-label": "warn"}
    assert verdicts[("Deployment", "web")] == {"no-latest": "deny", "team-label": "skip"}
    assert verdicts[("PyTorchJob", "train")] == {"no-latest": "pass", "team-label": "pass"}
    # namespaceSelector read the live Namespace labels: `default` is not enforced.
    assert verdicts[("Pod", "tool")] == {"no-latest": "pass", "team-label": "warn"}
    assert verdicts[("InferenceService", "llm")]["no-latest"] == "pass"
    assert report["summary"]["resourcesDenied"] == 2
    assert any("not served" in n for n in report["notes"])


def test_fail_on_and_table(apiserver: FakeApiserver, kubeconfig: Path, policies: Path) -> None:
    result = scan(kubeconfig, policies, "--fail-on", "deny")
    assert result.exit_code == 1
    out = result.stdout
    assert "unpinned image in Deployment web" in out and "debug" in out
    assert "5 workload(s), 2 policies: 2 would be denied" in out


def test_namespace_filter(apiserver: FakeApiserver, kubeconfig: Path, policies: Path) -> None:
    result = scan(kubeconfig, policies, "--format", "json", "--namespace", "ml-team")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(r["resource"]["name"] for r in report["resources"]) == ["debug", "train"]
    assert "/api/v1/namespaces/ml-team/pods" in [p for p, _ in apiserver.requests]


def test_policyreports(apiserver: FakeApiserver, kubeconfig: Path, policies: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports.yaml"
    result = scan(kubeconfig, policies, "--format", "policyreport", "--output", str(out))
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(out.read_text()))
    assert [(d["kind"], d["metadata"]["namespace"]) for d in docs] == [
        ("PolicyReport", "default"),
        ("PolicyReport", "ml-team"),
        ("PolicyReport", "serving"),
    ]
    for d in docs:
        assert d["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
        counts = {k: sum(1 for r in d["results"] if r["result"] == k) for k in d["summary"]}
        assert counts == d["summary"]
        for r in d["results"]:
            assert r["source"] == "charter" and r["policy"] and r["scored"] is True
            assert r["result"] in ("pass", "fail", "warn", "error", "skip")
            assert isinstance(r["timestamp"]["seconds"], int)
            (res,) = r["resources"]
            assert res["namespace"] == d["metadata"]["namespace"] and res["uid"].startswith("uid-")
    ml = docs[1]
    debug = [r for r in ml["results"] if r["resources"][0]["name"] == "debug"]
    assert {(r["policy"], r["result"]) for r in debug} == {("no-latest", "fail"), ("team-label", "warn")}
    fail = next(r for r in debug if r["result"] == "fail")
    assert fail["rule"] == "pinned" and fail["severity"] == "high" and fail["category"] == "provenance"
    assert fail["properties"]["action"] == "Deny"
    assert docs[0]["summary"] == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}


def test_cluster_scoped_results_go_to_a_clusterpolicyreport() -> None:
    from charter._internal.report.model import Report, ResourceRef, ResourceVerdicts, Summary

    ref = ResourceRef(
        api_version="v1", kind="Node", namespace="", name="n1", file=None, document_index=None, line=None
    )
    zero = dict.fromkeys(Summary.model_fields, 0)
    report = Report(
        summary=Summary(**zero),
        results=[],
        resources=[ResourceVerdicts(resource=ref, allowed=True, verdicts={"p": "pass", "q": "skip"})],
    )
    (doc,) = policy_reports(report, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert doc["kind"] == "ClusterPolicyReport" and "namespace" not in doc["metadata"]
    assert [r["policy"] for r in doc["results"]] == ["p"]
    assert doc["results"][0]["timestamp"] == {"seconds": 1767225600, "nanos": 0}


def test_forbidden_kinds_are_noted(apiserver: FakeApiserver, kubeconfig: Path, policies: Path) -> None:
    apiserver.forbidden.add("/apis/kubeflow.org/v1/pytorchjobs")
    result = scan(kubeconfig, policies, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "PyTorchJob" not in {r["resource"]["kind"] for r in report["resources"]}
    assert any("forbidden, skipped: pytorchjobs.kubeflow.org" in n for n in report["notes"])


def test_unreachable_cluster_is_an_input_error(tmp_path: Path, policies: Path) -> None:
    cfg = tmp_path / "kc"
    cfg.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    result = scan(cfg, policies)
    assert result.exit_code == 2
    assert "GET /apis" in result.output or "GET /api" in result.output


def test_bad_token_is_reported(apiserver: FakeApiserver, kubeconfig: Path, policies: Path) -> None:
    kubeconfig.write_text(kubeconfig.read_text().replace("test-token", "wrong"))
    result = scan(kubeconfig, policies)
    assert result.exit_code == 2
    assert "HTTP 401" in result.output
