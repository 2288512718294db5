"""wg-policy PolicyReport / ClusterPolicyReport (wgpolicyk8s.io/v1alpha2) from a charter report.

One PolicyReport per namespace (ClusterPolicyReport for cluster-scoped resources); one
result per policy that passed on a resource and one per finding of a policy that did not.
Policies that did not match a resource are not reported for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .report.model import Report, Result

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "charter"
REPORT_NAME = "charter-scan"
SEVERITIES = frozenset({"critical", "high", "medium", "low", "info"})

ResourceKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def _result_of(r: Result) -> str:
    if r.exception is not None:
        return "skip"  # waived by a PolicyException
    if r.type != "violation":
        return "error"
    if "Deny" in r.actions or "Audit" in r.actions:
        return "fail"
    return "warn" if "Warn" in r.actions else "fail"


def _rule(r: Result) -> str:
    if r.validation_name:
        return r.validation_name
    if r.validation is not None:
        return f"validations[{r.validation}]"
    return r.type


def policy_reports(
    report: Report, *, uids: Mapping[ResourceKey, str] | None = None, now: datetime
) -> list[dict[str, Any]]:
    uids = uids or {}
    stamp = {"seconds": int(now.timestamp()), "nanos": 0}
    findings: dict[tuple[ResourceKey, str], list[Result]] = {}
    for r in report.results:
        key = (r.resource.api_version, r.resource.kind, r.resource.namespace, r.resource.name)
        findings.setdefault((key, r.policy), []).append(r)
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for rv in report.resources:
        ref = rv.resource
        key = (ref.api_version, ref.kind, ref.namespace, ref.name)
        obj_ref: dict[str, Any] = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
        if ref.namespace:
            obj_ref["namespace"] = ref.namespace
        if uids.get(key):
            obj_ref["uid"] = uids[key]
        results = by_namespace.setdefault(ref.namespace, [])
        for policy, verdict in sorted(rv.verdicts.items()):
            if verdict == "skip":
                continue
            if verdict == "pass" and not findings.get((key, policy)):
                results.append(
                    {
                        "source": SOURCE,
                        "policy": policy,
                        "result": "pass",
                        "scored": True,
                        "timestamp": stamp,
                        "resources": [obj_ref],
                    }
                )
                continue
            for r in findings.get((key, policy), []):
                entry: dict[str, Any] = {
                    "source": SOURCE,
                    "policy": policy,
                    "rule": _rule(r),
                    "category": r.domain,
                    "result": _result_of(r),
                    "scored": True,
                    "message": r.message,
                    "timestamp": stamp,
                    "resources": [obj_ref],
                    "properties": {
                        "action": r.action,
                        "reason": r.reason,
                        **({"binding": r.binding} if r.binding else {}),
                        **(
                            {"exception": r.exception.name, "ticket": r.exception.ticket}
                            if r.exception
                            else {}
                        ),
                    },
                }
                if r.severity in SEVERITIES:
                    entry["severity"] = r.severity
                results.append(entry)
    docs: list[dict[str, Any]] = []
    for namespace in sorted(by_namespace):
        results = by_namespace[namespace]
        summary = {
            k: sum(1 for x in results if x["result"] == k) for k in ("pass", "fail", "warn", "error", "skip")
        }
        metadata: dict[str, Any] = {
            "name": REPORT_NAME,
            "labels": {"app.kubernetes.io/managed-by": "charter"},
        }
        if namespace:
            metadata["namespace"] = namespace
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
                "metadata": metadata,
                "summary": summary,
                "results": results,
            }
        )
    return docs
