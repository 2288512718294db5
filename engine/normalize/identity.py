"""Who a workload runs as and who answers for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_OWNERSHIP = {
    "owner": ("charter.dev/owner", "owner"),
    "team": ("charter.dev/team", "team"),
    "costCenter": ("charter.dev/cost-center", "cost-center"),
}
GCP_SA = "iam.gke.io/gcp-service-account"
AWS_ROLE = "eks.amazonaws.com/role-arn"
AZURE_CLIENT = "azure.workload.identity/client-id"
AZURE_USE = "azure.workload.identity/use"


def _service_account(related: Sequence[Any], name: str, namespace: str) -> dict[str, str]:
    """Annotations of the ServiceAccount the pods run as, when it is among the related objects."""
    for o in related:
        if not isinstance(o, dict) or o.get("kind") != "ServiceAccount":
            continue
        meta = o.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") != name:
            continue
        ns = meta.get("namespace")
        if isinstance(ns, str) and ns and namespace and ns != namespace:
            continue
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            return {k: v for k, v in ann.items() if isinstance(v, str)}
    return {}


def extract(
    labels: dict[str, str],
    annotations: dict[str, str],
    namespace: str,
    templates: list[dict[str, Any]],
    related: Sequence[Any],
) -> dict[str, Any]:
    # The first template (the pod, the head, the leader) speaks for the workload; per-template
    # values stay in podTemplates for policies that must check every one.
    first = templates[0] if templates else {}
    sa = first.get("serviceAccountName", "")
    out: dict[str, Any] = {
        "serviceAccountName": sa,
        "automountServiceAccountToken": first.get("automountServiceAccountToken"),
    }
    for field, keys in _OWNERSHIP.items():
        out[field] = labels.get(keys[0]) or labels.get(keys[1]) or ""
    # Workload identity is declared on the ServiceAccount, but often copied on the object or pods.
    ann_sources = [annotations, *(t["annotations"] for t in templates)]
    label_sources = [labels, *(t["labels"] for t in templates)]
    if related:
        for name in dict.fromkeys(t["serviceAccountName"] or "default" for t in templates):
            ann_sources.append(_service_account(related, name, namespace))
    found = {GCP_SA: "", AWS_ROLE: "", AZURE_CLIENT: "", AZURE_USE: ""}
    for source in (*ann_sources, *label_sources):
        for key in found:
            if not found[key] and source.get(key):
                found[key] = source[key]
    out["workloadIdentity"] = {
        "gcpServiceAccount": found[GCP_SA],
        "awsRoleArn": found[AWS_ROLE],
        "azureClientId": found[AZURE_CLIENT],
        # The webhook reads this from pod labels; accepted from annotations too, as people write it.
        "azureUseWorkloadIdentity": found[AZURE_USE].lower() == "true",
    }
    return out
