"""Wrong shapes, unrendered templates, odd scalars: reported in problems, never raised."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from charter.engine.normalize import normalize

from .conftest import assert_json_like
from .test_kinds import container, obj, pod_spec, tmpl


def problem_paths(w: dict[str, Any]) -> list[str]:
    return [p["path"] for p in w["problems"]]


@pytest.mark.parametrize("value", [1, "1", 1.0, "1.0", "1e0"])
def test_device_counts_in_any_numeric_shape(value: Any) -> None:
    w = normalize(obj("Pod", pod_spec(container(limits={"nvidia.com/gpu": value}))))
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 1} and w["problems"] == []
    assert w["containers"][0]["limits"] == {"nvidia.com/gpu": "1"}


def test_quantities_canonical() -> None:
    res = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 0.5, "memory": 1073741824}}
    c = normalize(obj("Pod", pod_spec(container(**res))))["containers"][0]
    assert c["requests"] == c["limits"] == {"cpu": "0.5", "memory": "1073741824"}


@pytest.mark.parametrize("value", ["${GPU_LIMIT:-1}", "{{ .Values.gpus }}"])
def test_placeholders_reported_not_guessed(value: str) -> None:
    w = normalize(obj("Pod", pod_spec(container(limits={"nvidia.com/gpu": value}))))
    assert w["accelerators"]["requests"] == [] and w["accelerators"]["total"] == {}
    assert w["containers"][0]["limits"] == {"nvidia.com/gpu": value}  # kept verbatim
    assert problem_paths(w) == ['spec.containers[0].resources.limits["nvidia.com/gpu"]']
    assert "placeholder" in w["problems"][0]["message"]


def test_fractional_gpu_is_a_problem() -> None:
    w = normalize(obj("Pod", pod_spec(container(limits={"nvidia.com/gpu": "500m"}))))
    assert w["accelerators"]["total"] == {} and len(w["problems"]) == 1


def test_placeholder_replicas() -> None:
    w = normalize(obj("Deployment", {"replicas": "${REPLICAS}", "template": tmpl()}))
    assert w["podTemplates"][0]["replicas"] == 1 and problem_paths(w) == ["spec.replicas"]


def test_requests_vs_limits() -> None:
    only_req = normalize(obj("Pod", pod_spec(container(requests={"nvidia.com/gpu": 2}))))["accelerators"][
        "requests"
    ]
    assert only_req[0]["source"] == "requests" and only_req[0]["requestsEqualLimits"] is False
    differ = {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}
    r = normalize(obj("Pod", pod_spec(container(**differ))))["accelerators"]["requests"][0]
    assert (r["count"], r["source"], r["requestsEqualLimits"]) == (2, "limits", False)


@pytest.mark.parametrize(
    "resource",
    ["nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "amd.com/gpu", "google.com/tpu", "habana.ai/gaudi",
     "aws.amazon.com/neuron", "aws.amazon.com/neuroncore", "intel.com/gpu", "gpu.intel.com/i915"],
)  # fmt: skip
def test_accelerator_resources(resource: str) -> None:
    a = normalize(obj("Pod", pod_spec(container(limits={resource: 2, "cpu": 4}))))["accelerators"]
    assert a["total"] == {resource: 2} and a["count"] == 2


def test_mig_profiles() -> None:
    lim = {"nvidia.com/mig-1g.10gb": 2, "nvidia.com/mig-3g.40gb": 1}
    a = normalize(obj("Pod", pod_spec(container(limits=lim))))["accelerators"]
    assert a["migProfiles"] == ["1g.10gb", "3g.40gb"] and a["count"] == 3


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        (None, "spec"),
        ("oops", "spec"),
        ([], "spec"),
        ({"template": None}, "spec.template"),
        ({"template": "x"}, "spec.template"),
        ({"template": {"spec": None}}, "spec.template.spec"),
        ({"template": {"spec": {"containers": "nginx"}}}, "spec.template.spec.containers"),
        ({"template": {"spec": {"containers": ["nginx"]}}}, "spec.template.spec.containers[0]"),
        ({"template": {"spec": {"containers": [{"name": "a", "image": 5}]}}}, "spec.template.spec.containers[0].image"),
        ({"template": {"spec": {"containers": [{"name": "a", "image": "x", "resources": []}]}}},
         "spec.template.spec.containers[0].resources"),
        ({"template": {"spec": {"containers": [{"name": "a", "image": "x", "env": {"A": "1"}}]}}},
         "spec.template.spec.containers[0].env"),
        ({"template": {"metadata": "m", "spec": pod_spec()}}, "spec.template.metadata"),
        ({"template": {"spec": {**pod_spec(), "tolerations": "all"}}}, "spec.template.spec.tolerations"),
        ({"template": {"spec": {**pod_spec(), "nodeSelector": ["a"]}}}, "spec.template.spec.nodeSelector"),
        ({"template": {"spec": {**pod_spec(), "affinity": "x"}}}, "spec.template.spec.affinity"),
        ({"template": {"spec": {**pod_spec(), "automountServiceAccountToken": "maybe"}}},
         "spec.template.spec.automountServiceAccountToken"),
        ({"template": {"spec": {**pod_spec(), "volumes": {"a": 1}}}}, "spec.template.spec.volumes"),
        ({"template": {"spec": {**pod_spec(), "resourceClaims": "gpu"}}}, "spec.template.spec.resourceClaims"),
    ],
)  # fmt: skip
def test_wrong_shapes_become_problems(spec: Any, where: str) -> None:
    w = normalize(obj("Deployment", spec, "apps/v1"))
    assert where in problem_paths(w), w["problems"]
    assert_json_like(w)


def test_wrong_metadata_shapes() -> None:
    w = normalize(
        {"apiVersion": 1, "kind": ["Pod"], "metadata": {"name": 5, "labels": ["a"], "annotations": {"a": 1}}}
    )
    assert w["apiVersion"] == "1" and w["kind"] == "" and w["name"] == "5"
    assert {"apiVersion", "kind", "metadata.name", "metadata.labels", "metadata.annotations.a"} <= set(
        problem_paths(w)
    )
    assert normalize({"metadata": "x"})["problems"] == [
        {"path": "metadata", "message": "expected a map, got string"}
    ]


@pytest.mark.parametrize("value", [None, [], "x", 3, ["Pod"], (1, 2)])
def test_not_an_object(value: Any) -> None:
    w = normalize(value)
    assert w["kind"] == "" and w["podTemplates"] == [] and (value == {} or w["problems"])
    assert_json_like(w)


def test_yaml11_scalars_converted_and_reported() -> None:
    meta = {"labels": {"gpu": True, "tier": 1}, "annotations": {"created": datetime.date(2024, 5, 1)}}
    spec = pod_spec({"name": "a", "image": "x:1", "env": [{"name": "VERBOSE", "value": True}, {"name": "N", "value": 3}]},
                    automountServiceAccountToken=False)  # fmt: skip
    w = normalize({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    assert w["labels"] == {"gpu": "true", "tier": "1"}
    assert w["annotations"] == {"created": "2024-05-01"}
    assert w["containers"][0]["env"] == {"VERBOSE": "true", "N": "3"}
    assert w["identity"]["automountServiceAccountToken"] is False
    assert set(problem_paths(w)) == {"metadata.labels.gpu", "metadata.labels.tier",
                                     "spec.containers[0].env[0].value", "spec.containers[0].env[1].value"}  # fmt: skip


def test_non_json_values_cleaned() -> None:
    spec = {"containers": ({"name": "a", "image": "x:1", "resources": {"limits": {"cpu": Decimal("1.5")}}},),
            1: "int key", "nan": float("nan"), "big": 2**70, "blob": b"\x00", "when": datetime.datetime(2024, 1, 1)}  # fmt: skip
    w = normalize({"kind": "Pod", "spec": spec})
    assert_json_like(w)
    assert w["containers"][0]["limits"] == {"cpu": "1.5"}
    s = w["podTemplates"][0]["spec"]
    assert s["1"] == "int key" and s["nan"] is None and s["big"] == str(2**70) and s["blob"] is None
    assert {"spec.1", "spec.nan", "spec.big", "spec.blob"} <= set(problem_paths(w))


def test_deep_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(500):
        cur["a"] = {}
        cur = cur["a"]
    w = normalize({"kind": "Pod", "spec": {"containers": [], "x": deep}})
    assert_json_like(w)
    assert any("deeper" in p["message"] for p in w["problems"])


def test_output_does_not_alias_input() -> None:
    o = obj("Deployment", {"template": tmpl()})
    w = normalize(o)
    w["podTemplates"][0]["spec"]["containers"].append("x")
    assert len(o["spec"]["template"]["spec"]["containers"]) == 1


def test_env_value_from_is_empty() -> None:
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"value": "no name"},
        "x",
    ]
    w = normalize(obj("Pod", pod_spec({"name": "a", "image": "x:1", "env": env})))
    assert w["containers"][0]["env"] == {"TOKEN": ""}
    assert set(problem_paths(w)) == {"spec.containers[0].env[1]", "spec.containers[0].env[2]"}
