"""Dynamic Resource Allocation: pod claims resolved against related ResourceClaim(Template)s."""

from __future__ import annotations

from typing import Any

import pytest
from charter.engine.normalize import normalize

from .test_kinds import obj

SELECTOR = [
    {"cel": {"expression": 'device.attributes["gpu.nvidia.com"].productName == "NVIDIA H100 80GB HBM3"'}}
]


def claim_pod(**ref: str) -> dict[str, Any]:
    spec = {
        "resourceClaims": [{"name": "gpus", **ref}],
        "containers": [
            {
                "name": "train",
                "image": "nvcr.io/nvidia/pytorch:24.05-py3",
                "resources": {"claims": [{"name": "gpus"}]},
            }
        ],
    }
    return obj("Pod", spec)


def template(api: str, request: dict[str, Any], kind: str = "ResourceClaimTemplate") -> dict[str, Any]:
    spec: dict[str, Any] = {"devices": {"requests": [request]}}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "two-gpus", "namespace": "ml-research"},
            "spec": {"spec": spec} if kind == "ResourceClaimTemplate" else spec}  # fmt: skip


@pytest.mark.parametrize(
    ("api", "request_"),
    [
        ("resource.k8s.io/v1", {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2, "selectors": SELECTOR}}),
        ("resource.k8s.io/v1beta2", {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2, "selectors": SELECTOR}}),
        ("resource.k8s.io/v1beta1", {"name": "g", "deviceClassName": "gpu.nvidia.com", "count": 2, "selectors": SELECTOR}),
        ("resource.k8s.io/v1alpha3", {"name": "g", "deviceClassName": "gpu.nvidia.com", "count": "2", "selectors": SELECTOR}),
        ("resource.k8s.io/v1", {"name": "g", "firstAvailable": [{"name": "h100", "deviceClassName": "gpu.nvidia.com",
                                                                 "count": 2, "selectors": SELECTOR}]}),
    ],
)  # fmt: skip
def test_template_versions(api: str, request_: dict[str, Any]) -> None:
    w = normalize(claim_pod(resourceClaimTemplateName="two-gpus"), [template(api, request_)])
    a = w["accelerators"]
    assert a["total"] == {"gpu.nvidia.com": 2} and a["count"] == 2
    assert a["requests"] == [{"podTemplate": 0, "container": "train", "resource": "gpu.nvidia.com", "count": 2,
                              "source": "dra", "requestsEqualLimits": True}]  # fmt: skip
    assert a["draClaims"] == [{"podTemplate": 0, "name": "gpus", "claimName": "", "template": "two-gpus", "request": "g",
                               "deviceClass": "gpu.nvidia.com", "count": 2, "allocationMode": "ExactCount",
                               "apiVersion": api}]  # fmt: skip
    assert a["products"] == ["NVIDIA H100 80GB HBM3"]
    assert w["problems"] == []


def test_resource_claim_by_name() -> None:
    rc = template(
        "resource.k8s.io/v1", {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com"}}, "ResourceClaim"
    )
    w = normalize(claim_pod(resourceClaimName="two-gpus"), [rc])
    assert w["accelerators"]["draClaims"][0]["claimName"] == "two-gpus"
    assert w["accelerators"]["total"] == {"gpu.nvidia.com": 1}  # count defaults to 1


def test_v1alpha2_resource_class() -> None:
    rct = {"apiVersion": "resource.k8s.io/v1alpha2", "kind": "ResourceClaimTemplate", "metadata": {"name": "two-gpus"},
           "spec": {"spec": {"resourceClassName": "gpu.nvidia.com"}}}  # fmt: skip
    w = normalize(claim_pod(source={"resourceClaimTemplateName": "two-gpus"}), [rct])  # type: ignore[arg-type]
    assert w["accelerators"]["total"] == {"gpu.nvidia.com": 1}


def test_allocation_mode_all() -> None:
    rct = template(
        "resource.k8s.io/v1",
        {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All"}},
    )
    w = normalize(claim_pod(resourceClaimTemplateName="two-gpus"), [rct])
    assert w["accelerators"]["draClaims"][0]["allocationMode"] == "All"
    assert w["accelerators"]["total"] == {} and len(w["problems"]) == 1


def test_unresolved_claim_listed_with_problem() -> None:
    w = normalize(claim_pod(resourceClaimTemplateName="missing"))
    (c,) = w["accelerators"]["draClaims"]
    assert (c["template"], c["deviceClass"], c["count"]) == ("missing", "", 0)
    assert w["problems"][0]["path"] == "spec.resourceClaims[0]"


def test_other_namespace_does_not_resolve() -> None:
    rct = template("resource.k8s.io/v1", {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com"}})
    rct["metadata"]["namespace"] = "elsewhere"
    assert (
        normalize(claim_pod(resourceClaimTemplateName="two-gpus"), [rct])["accelerators"]["draClaims"][0][
            "deviceClass"
        ]
        == ""
    )


def test_broken_related_objects() -> None:
    junk: list[Any] = [
        None,
        "x",
        {"kind": "ResourceClaimTemplate", "metadata": {"name": "two-gpus"}, "spec": "bad"},
    ]
    w = normalize(claim_pod(resourceClaimTemplateName="two-gpus"), junk)
    assert w["accelerators"]["total"] == {} and w["problems"]


def test_related_objects_are_cleaned_once_per_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # charter check and the webhook pass one list for every resource: it is copied once, not per
    # resource, and a list that grew since is copied again.
    from charter.engine import normalize as normalize_module

    request_ = {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2}}
    related = [template("resource.k8s.io/v1", request_), {"kind": "ConfigMap", "metadata": {"name": "x"}}]
    copies = 0
    real = normalize_module.clean_object

    def counting(v: Any, ctx: Any) -> Any:
        nonlocal copies
        copies += 1
        return real(v, ctx)

    monkeypatch.setattr(normalize_module, "clean_object", counting)
    pod = claim_pod(resourceClaimTemplateName="two-gpus")
    views = [normalize(pod, related) for _ in range(5)]
    assert copies == 5 + 1  # each pod, and the one related ResourceClaimTemplate once
    assert all(v["accelerators"]["total"] == {"gpu.nvidia.com": 2} for v in views)
    related.append(template("resource.k8s.io/v1", {**request_, "name": "h"}, "ResourceClaim"))
    normalize(pod, related)
    assert copies == 6 + 1 + 2
    assert normalize(pod, [])["accelerators"]["total"] == {}
