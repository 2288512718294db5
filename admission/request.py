"""Attributes from an AdmissionRequest: what the apiserver says is being decided.

The apiserver has already resolved kind, resource and scope, so none of it is guessed here
(offline, `attributes_for_object` guesses them from the manifest).
"""

from __future__ import annotations

from typing import Any

from charter.engine import Attributes, Source

from .review import AdmissionRequest

MAX_DEPTH = 200  # Kubernetes objects nest a few dozen levels; deeper is hostile or broken.


def may_nest_deeper(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """False when the JSON text `body` cannot nest deeper than `limit`: every level is an opening
    `{` or `[`, so a body with at most `limit` of them needs no walk (the usual review has a few
    dozen; counting them is C speed, the walk costs about as much as parsing)."""
    return body.count(b"{") + body.count(b"[") > limit


def nesting_depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests deeper than `limit`, checked without recursion (a deep input cannot
    exhaust the stack here, and the engine never sees it)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(v, dict):
            stack.extend((c, depth + 1) for c in v.values())
        elif isinstance(v, list):
            stack.extend((c, depth + 1) for c in v)
    return False


def attributes_from_request(req: AdmissionRequest) -> Attributes:
    # DELETE carries only oldObject; the engine's `subject` falls back to it.
    # Every field, defaults included, as `charter check` builds it from a RequestContext.
    user_info: dict[str, Any] = req.user_info.model_dump(by_alias=True)
    return Attributes(
        group=req.kind.group,
        version=req.kind.version,
        kind=req.kind.kind,
        resource=req.resource.resource,
        # The apiserver sends a namespace exactly for namespaced resources.
        namespaced=req.namespace != "",
        name=req.name,
        namespace=req.namespace,
        operation=req.operation,
        object=req.object,
        old_object=req.old_object,
        subresource=req.sub_resource,
        uid=req.uid,
        user_info=user_info,
        dry_run=req.dry_run,
        source=Source(file=f"admission:{req.uid}"),
        options=req.options,
    )
