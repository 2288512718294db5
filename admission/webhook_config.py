"""`charter webhook-config`: the ValidatingWebhookConfiguration that sends charter its requests.

Rules come from the policies: a ValidatingAdmissionPolicy's (or charter Policy's) own
matchConstraints.resourceRules, and for a charter Policy without rules every pod-bearing
kind, which it covers through the normalized `workload` view.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from charter.engine import PolicySet
from charter.engine.models import ResourceRule

# Pod-bearing kinds (engine/_internal/kinds.py): what a charter Policy without rules applies to.
POD_BEARING: tuple[tuple[str, str], ...] = (
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("kubeflow.org", "pytorchjobs"),
    ("kubeflow.org", "tfjobs"),
    ("kubeflow.org", "mpijobs"),
    ("kubeflow.org", "xgboostjobs"),
    ("kubeflow.org", "paddlejobs"),
    ("kubeflow.org", "jaxjobs"),
    ("kubeflow.org", "notebooks"),
    ("trainer.kubeflow.org", "trainjobs"),
    ("ray.io", "rayjobs"),
    ("ray.io", "rayclusters"),
    ("ray.io", "rayservices"),
    ("serving.kserve.io", "inferenceservices"),
    ("serving.kserve.io", "llminferenceservices"),
    ("jobset.x-k8s.io", "jobsets"),
    ("leaderworkerset.x-k8s.io", "leaderworkersets"),
)
# Governance applies to what is created or changed; a deletion runs no workload.
POD_BEARING_OPERATIONS = ("CREATE", "UPDATE")


def _rule(
    groups: Iterable[str], versions: Iterable[str], resources: Iterable[str], ops: Iterable[str], scope: str
) -> dict[str, Any]:
    return {
        "apiGroups": sorted(set(groups)),
        "apiVersions": sorted(set(versions)),
        "resources": sorted(set(resources)),
        "operations": sorted(set(ops)),
        "scope": scope,
    }


def rules_for(policies: PolicySet) -> list[dict[str, Any]]:
    """RuleWithOperations for every policy, merged where only the resources differ."""
    explicit: list[ResourceRule] = []
    autogen = False
    for p in policies.policies:
        if p.match is None or not p.match.resource_rules:
            if p.is_vap:  # a VAP without rules matches nothing
                continue
            autogen = True
        else:
            explicit.extend(p.match.resource_rules)
    merged: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str], set[str]] = {}
    if autogen:
        by_group: dict[str, set[str]] = {}
        for group, resource in POD_BEARING:
            by_group.setdefault(group, set()).add(resource)
        for group, resources in by_group.items():
            merged.setdefault(((group,), ("*",), POD_BEARING_OPERATIONS, "Namespaced"), set()).update(
                resources
            )
    for r in explicit:
        ops = ("*",) if "*" in r.operations else tuple(sorted(set(r.operations)))
        key = (tuple(sorted(set(r.api_groups))), tuple(sorted(set(r.api_versions))), ops, r.scope)
        merged.setdefault(key, set()).update(r.resources)
    return [
        _rule(g, v, res, ops, scope)
        for (g, v, ops, scope), res in sorted(merged.items(), key=lambda kv: kv[0])
    ]


def webhook_configuration(
    policies: PolicySet,
    *,
    service_namespace: str,
    service_name: str,
    ca_bundle: bytes,
    name: str = "charter.dev",
    failure_policy: str = "Fail",
    timeout_seconds: int = 10,
    path: str = "/validate",
    port: int = 443,
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "charter"}},
        "webhooks": [
            {
                # Webhook names must be fully qualified with at least three segments.
                "name": name if name.count(".") >= 2 else f"validate.{name}",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {
                    "service": {
                        "namespace": service_namespace,
                        "name": service_name,
                        "path": path,
                        "port": port,
                    },
                    "caBundle": base64.b64encode(ca_bundle).decode("ascii"),
                },
                "rules": rules_for(policies),
                "failurePolicy": failure_policy,
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "timeoutSeconds": timeout_seconds,
                # Never judge the webhook's own namespace (it could not restart itself) or kube-system.
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": sorted({service_namespace, "kube-system"}),
                        }
                    ]
                },
            }
        ],
    }
