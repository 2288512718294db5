"""Workload normalization: any Kubernetes object becomes the `workload` view CEL policies read.

`normalize(obj)` never raises: whatever it cannot interpret is reported in
`workload["problems"]` as `{path, message}`. The view holds plain JSON-like data
only, ready for a CEL runtime. The schema is documented in docs/workload.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import accelerators, containers, datasets, identity, models, podspecs
from ._common import Ctx, clean_object, get_map, get_str, str_map, type_name

__all__ = ["extract_pod_templates", "normalize"]

# Objects normalization reads beside a workload: DRA claims for devices, ServiceAccounts for identity.
RELATED_KINDS = frozenset({"ResourceClaim", "ResourceClaimTemplate", "ServiceAccount"})


def _metadata(obj: dict[str, Any], ctx: Ctx) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    meta = get_map(obj, "metadata", "", ctx)
    labels = str_map(meta.get("labels"), "metadata.labels", ctx)
    annotations = str_map(meta.get("annotations"), "metadata.annotations", ctx)
    return meta, labels, annotations


def normalize(obj: Mapping[str, Any], related: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The workload view of one object.

    `related` are other objects from the same input (ResourceClaims and
    ResourceClaimTemplates for DRA, ServiceAccounts for workload identity).
    """
    ctx = Ctx()
    try:
        return _normalize(obj, related, ctx)
    except Exception as e:  # pragma: no cover - a bug; the contract is to report, never to raise
        ctx.problem("", f"internal error while normalizing: {type(e).__name__}: {e}")
        return {**_empty(), "problems": ctx.problems}


def _empty() -> dict[str, Any]:
    return {
        "apiVersion": "", "kind": "", "name": "", "namespace": "", "labels": {}, "annotations": {},
        "identity": {
            "serviceAccountName": "", "automountServiceAccountToken": None, "owner": "", "team": "",
            "costCenter": "",
            "workloadIdentity": {"gcpServiceAccount": "", "awsRoleArn": "", "azureClientId": "",
                                 "azureUseWorkloadIdentity": False},
        },
        "podTemplates": [], "containers": [],
        "accelerators": {"requests": [], "total": {}, "perPod": {}, "count": 0, "products": [],
                         "migProfiles": [], "tpuTopology": "", "draClaims": []},
        "models": [], "datasets": [],
        "inference": {"modelFormat": "", "runtime": "", "storageUri": ""},
        "runtimeRef": {"name": "", "kind": "", "apiGroup": ""},
        "problems": [],
    }  # fmt: skip


# The related objects of the last call, cleaned: `charter check` and the webhook pass the same
# list for every resource, which must not be copied again per resource (quadratic in a large input).
_related_memo: tuple[Sequence[Mapping[str, Any]], int, list[dict[str, Any]]] | None = None


def _clean_related(related: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only the kinds read from related objects, copied; their problems are theirs, not ours."""
    global _related_memo
    memo = _related_memo
    if memo is not None and memo[0] is related and memo[1] == len(related):
        return memo[2]
    rel = [
        clean_object(x, Ctx()) for x in related if isinstance(x, Mapping) and x.get("kind") in RELATED_KINDS
    ]
    _related_memo = (related, len(related), rel)
    return rel


def _normalize(obj: Mapping[str, Any], related: Sequence[Mapping[str, Any]], ctx: Ctx) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        ctx.problem("", f"expected an object (a map), got {type_name(obj)}")
        return {**_empty(), "problems": ctx.problems}
    o = clean_object(obj, ctx)
    rel = _clean_related(related)
    meta, labels, annotations = _metadata(o, ctx)
    namespace = get_str(meta, "namespace", "metadata", ctx)
    raw_templates, extras = podspecs.extract(o, ctx)
    templates = [t.view(ctx) for t in raw_templates]
    cs = containers.extract(raw_templates, ctx)
    return {
        "apiVersion": get_str(o, "apiVersion", "", ctx),
        "kind": get_str(o, "kind", "", ctx),
        "name": get_str(meta, "name", "metadata", ctx),
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
        "identity": identity.extract(labels, annotations, namespace, templates, rel),
        "podTemplates": templates,
        "containers": [c.view for c in cs],
        "accelerators": accelerators.compute(raw_templates, cs, rel, namespace, labels, ctx),
        "models": models.extract(annotations, raw_templates, cs, extras, ctx),
        "datasets": datasets.extract(annotations, namespace, raw_templates, cs, extras, ctx),
        "inference": extras.inference,
        "runtimeRef": extras.runtime_ref,
        "problems": ctx.problems,
    }


def extract_pod_templates(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Only the `podTemplates` of the view: the pods any pod-bearing kind would run."""
    result: list[dict[str, Any]] = normalize(obj)["podTemplates"]
    return result
