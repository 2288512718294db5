"""`charter check`: verdicts, exit codes, formats and bad input, through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter._internal.report.model import Report

from .conftest import run_cli

POLICIES = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: owner-label}
spec:
  domain: identity
  validations:
    - expression: "workload.identity.owner != ''"
      messageExpression: "workload.kind + ' ' + workload.name + ' has no charter.dev/owner label'"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: pinned-images}
spec:
  domain: provenance
  validationActions: [Warn]
  validations:
    - expression: "workload.containers.all(c, c.pinned)"
      message: "images must be pinned by digest"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: gpu-limit}
spec:
  domain: accelerators
  failurePolicy: Fail
  validations:
    - expression: "workload.accelerators.count <= cluster.settings.maxGpus"
      message: "too many GPUs"
"""

CLUSTER = """
apiVersion: charter.dev/v1alpha1
kind: ClusterProfile
metadata: {name: lab}
spec: {type: onprem, jurisdiction: DE, settings: {maxGpus: 4}}
"""

GOOD_POD = """
apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: ml, labels: {charter.dev/owner: alice}}
spec:
  containers:
  - name: c
    image: reg.example.com/x@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
"""

BAD_JOB = """
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: train, namespace: ml}
spec:
  pytorchReplicaSpecs:
    Worker:
      replicas: 2
      template:
        spec:
          containers:
          - name: pytorch
            image: nvcr.io/nvidia/pytorch:24.05-py3
            resources: {limits: {nvidia.com/gpu: 8}}
"""


@pytest.fixture
def setup(write: Callable[[str, str], str]) -> dict[str, str]:
    return {"policies": write("policies.yaml", POLICIES), "cluster": write("cluster.yaml", CLUSTER)}


def test_clean_input_exits_zero(setup: dict[str, str], write: Callable[[str, str], str]) -> None:
    r = run_cli(["check", write("pod.yaml", GOOD_POD), "-p", setup["policies"], "-c", setup["cluster"]])
    assert r.code == 0, r.err
    assert "1 resources, 3 policies" in r.out


def test_violations_exit_one_with_json_report(
    setup: dict[str, str], write: Callable[[str, str], str]
) -> None:
    path = write("job.yaml", BAD_JOB)
    r = run_cli(["check", path, "-p", setup["policies"], "-c", setup["cluster"], "-f", "json"])
    assert r.code == 1, r.err
    report = Report.model_validate_json(r.out)
    assert report.summary.resources == 1 and report.summary.resources_denied == 1
    got = {(x.policy, x.type, x.action) for x in report.results}
    assert got == {
        ("owner-label", "violation", "Deny"),
        ("pinned-images", "violation", "Warn"),
        ("gpu-limit", "violation", "Deny"),
    }
    owner = next(x for x in report.results if x.policy == "owner-label")
    assert owner.message == "PyTorchJob train has no charter.dev/owner label"
    assert owner.resource.file == path and owner.resource.line == 2 and owner.resource.document_index == 0
    assert report.resources[0].verdicts == {
        "owner-label": "deny",
        "pinned-images": "warn",
        "gpu-limit": "deny",
    }


@pytest.mark.parametrize(("fail_on", "code"), [("deny", 0), ("warn", 1), ("never", 0)])
def test_fail_on(setup: dict[str, str], write: Callable[[str, str], str], fail_on: str, code: int) -> None:
    warn_only = GOOD_POD.replace(
        "@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ":1.0"
    )
    r = run_cli(
        [
            "check",
            write("pod.yaml", warn_only),
            "-p",
            setup["policies"],
            "-c",
            setup["cluster"],
            "--fail-on",
            fail_on,
        ]
    )
    assert r.code == code, r.out + r.err


def test_evaluation_error_under_fail_exits_three(
    setup: dict[str, str], write: Callable[[str, str], str]
) -> None:
    # No cluster profile: cluster.settings is missing, so gpu-limit cannot evaluate.
    r = run_cli(["check", write("pod.yaml", GOOD_POD), "-p", setup["policies"], "-f", "json"])
    assert r.code == 3, r.err
    report = Report.model_validate_json(r.out)
    (err,) = [x for x in report.results if x.type == "error"]
    assert err.policy == "gpu-limit" and err.field == "spec.validations[0].expression"
    assert (
        "settings" in err.message
        and err.expression == "workload.accelerators.count <= cluster.settings.maxGpus"
    )


def test_broken_file_reported_and_rest_evaluated(
    setup: dict[str, str], write: Callable[[str, str], str]
) -> None:
    write("in/a.yaml", GOOD_POD)
    write("in/b.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")
    r = run_cli(
        [
            "check",
            str(setup["policies"]).rsplit("/", 1)[0] + "/in",
            "-p",
            setup["policies"],
            "-c",
            setup["cluster"],
            "-f",
            "json",
        ]
    )
    assert r.code == 2
    report = Report.model_validate_json(r.out)
    assert report.summary.resources == 1
    (problem,) = report.input_errors
    assert problem.file is not None and problem.file.endswith("b.yaml") and problem.line == 4
    assert "invalid YAML" in problem.message
    assert "Traceback" not in r.err


def test_messy_inputs(setup: dict[str, str], write: Callable[[str, str], str]) -> None:
    text = (
        "---\n---\n"  # empty documents
        "replicaCount: 2\nimage: {tag: latest}\n"  # a Helm values file
        "---\n"
        '{"apiVersion": "v1", "kind": "List", "items": ['
        + json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "in-list"}, "spec": {"containers": []}}
        )
        + "]}\n"
        "---\n"
        "apiVersion: example.com/v1\n'kind': \"Gizmo\"\nmetadata: {name: g}\nspec: {enabled: yes}\n"
    )
    r = run_cli(
        ["check", write("messy.yaml", text), "-p", setup["policies"], "-c", setup["cluster"], "-f", "json"]
    )
    report = Report.model_validate_json(r.out)
    assert r.code == 1, r.err  # the pod in the List has no owner
    kinds = sorted((x.resource.kind, x.resource.name, x.resource.item) for x in report.resources)
    assert kinds == [("Gizmo", "g", None), ("Pod", "in-list", 0)]
    assert any("Helm values" in n for n in report.notes)


def test_stdin(setup: dict[str, str]) -> None:
    r = run_cli(["check", "-", "-p", setup["policies"], "-c", setup["cluster"]], stdin=GOOD_POD)
    assert r.code == 0 and "1 resources" in r.out


def test_bad_policy_is_exit_two_and_nothing_evaluated(write: Callable[[str, str], str]) -> None:
    pol = write("bad.yaml", POLICIES.replace("c.pinned)", "c.pinned"))
    r = run_cli(["check", write("pod.yaml", GOOD_POD), "-p", pol])
    assert r.code == 2
    assert (
        "policy 'pinned-images'" in r.err
        and "spec.validations[0].expression" in r.err
        and "nothing was evaluated" in r.err
    )


def test_missing_cluster_file(setup: dict[str, str], write: Callable[[str, str], str]) -> None:
    r = run_cli(
        ["check", write("pod.yaml", GOOD_POD), "-p", setup["policies"], "-c", "/nonexistent/cluster.yaml"]
    )
    assert r.code == 2 and "cluster profile not found" in r.err


def test_missing_input_path(setup: dict[str, str]) -> None:
    r = run_cli(["check", "/nonexistent/dir", "-p", setup["policies"], "-c", setup["cluster"]])
    assert r.code == 2 and "no such file or directory" in r.err


def test_lint(setup: dict[str, str], write: Callable[[str, str], str]) -> None:
    assert run_cli(["lint", setup["policies"]]).code == 0
    bad = write("bad.yaml", POLICIES.replace("workload.identity.owner != ''", "workload.identity.owner + 1"))
    r = run_cli(["lint", bad])
    assert r.code == 1
    assert (
        "policy 'owner-label', spec.validations[0].expression" in r.err
        and "must evaluate to bool, but its type is int" in r.err
    )


def test_explain(setup: dict[str, str], write: Callable[[str, str], str]) -> None:
    r = run_cli(
        ["explain", write("job.yaml", BAD_JOB), "-p", setup["policies"], "-c", setup["cluster"], "-f", "json"]
    )
    assert r.code == 0, r.err
    data = json.loads(r.out)
    gpu = next(p for p in data[0]["policies"] if p["policy"] == "gpu-limit")
    assert gpu["verdict"] == "deny"
    assert gpu["trace"][0]["steps"][0]["value"] is False


SUITE = """
apiVersion: charter.dev/v1alpha1
kind: PolicyTest
metadata: {{name: suite}}
spec:
  policies: [policies.yaml]
  cluster: cluster.yaml
  resources: [job.yaml, pod.yaml]
  expect:
    - {{resource: {{kind: PyTorchJob, name: train}}, policy: gpu-limit, result: {gpu}}}
    - {{resource: {{kind: PyTorchJob, name: train}}, policy: pinned-images, result: warn, message: pinned}}
    - {{resource: {{kind: Pod, name: ok}}, policy: owner-label, result: pass}}
"""


def test_policy_test_suites(setup: dict[str, str], write: Callable[[str, str], str]) -> None:
    write("job.yaml", BAD_JOB)
    write("pod.yaml", GOOD_POD)
    passing = write("suite.yaml", SUITE.format(gpu="deny"))
    r = run_cli(["test", passing])
    assert r.code == 0, r.out + r.err
    assert "3 cases: 3 passed, 0 failed" in r.out
    failing = write("suite.yaml", SUITE.format(gpu="pass"))
    r = run_cli(["test", failing])
    assert r.code == 1
    assert "- expected: pass" in r.out and "+ actual:   deny" in r.out and "too many GPUs" in r.out


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {
                "apiVersion": st.sampled_from(["v1", "apps/v1", "kubeflow.org/v1", "ray.io/v1", 3]),
                "kind": st.sampled_from(["Pod", "Deployment", "PyTorchJob", "RayJob", "List", "Weird", None]),
                "metadata": json_values,
                "spec": json_values,
            }
        ).map(json.dumps),
    )
)
def test_no_input_produces_a_traceback(
    setup: dict[str, str], write: Callable[[str, str], str], body: str
) -> None:
    path = write("fuzz.yaml", body)
    r = run_cli(["check", path, "-p", setup["policies"], "-c", setup["cluster"], "-f", "json"])
    assert r.code in (0, 1, 2, 3), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
