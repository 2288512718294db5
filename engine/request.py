"""What is being decided: one object and the request around it.

The webhook builds this from an AdmissionReview, `charter check` from a manifest
and its context; from here on both take the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._internal.kinds import kind_info, split_api_version


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object came from, for reports: a file and document, or an admission request."""

    file: str | None = None
    document: int | None = None
    line: int | None = None
    item: int | None = None


@dataclass(slots=True)
class Attributes:
    group: str
    version: str
    kind: str
    resource: str
    namespaced: bool
    name: str
    namespace: str
    operation: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    subresource: str = ""
    uid: str = ""
    user_info: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    # Labels of the request's namespace; None when they are not known (offline, no Namespace given).
    namespace_object: dict[str, Any] | None = None
    namespace_known: bool = False
    source: Source = field(default_factory=Source)
    options: dict[str, Any] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def subject(self) -> dict[str, Any]:
        """The object the decision is about: the new object, or the old one on DELETE."""
        return self.object if self.object is not None else (self.old_object or {})

    def request_view(self) -> dict[str, Any]:
        """The `request` variable, shaped as admission.k8s.io/v1 AdmissionRequest."""
        gvk = {"group": self.group, "version": self.version, "kind": self.kind}
        gvr = {"group": self.group, "version": self.version, "resource": self.resource}
        view: dict[str, Any] = {
            "uid": self.uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": self.user_info,
            "dryRun": self.dry_run,
        }
        if self.subresource:
            view["subResource"] = self.subresource
        if self.options is not None:
            view["options"] = self.options
        return view


def attributes_for_object(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    old_object: dict[str, Any] | None = None,
    user_info: dict[str, Any] | None = None,
    default_namespace: str = "default",
    source: Source | None = None,
    dry_run: bool = False,
) -> Attributes:
    """Attributes for an object read from a file, as if it were being created by `user_info`."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    group, version = split_api_version(api_version if isinstance(api_version, str) else "")
    kind = kind if isinstance(kind, str) else ""
    info = kind_info(group, kind)
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    raw_name = meta.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    namespace = ""
    if info.namespaced:
        ns = meta.get("namespace")
        namespace = ns if isinstance(ns, str) and ns else default_namespace
    subject = obj if operation != "DELETE" else None
    old = old_object if operation in ("UPDATE", "DELETE") else None
    if operation == "DELETE" and old is None:
        old = obj
    return Attributes(
        group=group,
        version=version,
        kind=kind,
        resource=info.resource,
        namespaced=info.namespaced,
        name=name,
        namespace=namespace,
        operation=operation,
        object=subject,
        old_object=old,
        # An unknown requester is an empty username, so identity policies can say so instead of erroring.
        user_info=user_info or {"username": "", "groups": []},
        dry_run=dry_run,
        source=source or Source(),
    )
