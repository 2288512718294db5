"""Sorting documents into policies, exceptions, context and resources, and loading them.

One pass over the documents decides what each one is by apiVersion and kind; a
charter or admissionregistration document of the wrong shape is an error naming
its file, document and field, never skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .compiler import CompiledBinding, CompiledPolicy, compile_binding, compile_charter_policy, compile_vap
from .documents import Document, read_documents
from .errors import CharterError, ContextError, Location, PolicyLoadError
from .models import (
    CHARTER_API_VERSION,
    VAP_API_VERSIONS,
    Catalog,
    CharterPolicy,
    ClusterProfile,
    PolicyException,
    RequestContext,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
)

M = TypeVar("M", bound=BaseModel)

# Under a policy directory, `tests/` holds PolicyTest suites and their fixtures, not policy.
POLICY_SKIP_DIRS = frozenset({"tests"})


def pydantic_errors(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        path = ""
        for p in err["loc"]:
            path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else str(p))
        parts.append(f"{path}: {err['msg']}" if path else err["msg"])
    return "; ".join(parts)


def parse_model(model: type[M], doc: Document, name_hint: str | None = None) -> M:
    try:
        return model.model_validate(doc.data)
    except ValidationError as e:
        loc = doc.location
        if name_hint:
            loc = Location(loc.file, loc.document, loc.line, name_hint)
        raise PolicyLoadError(f"invalid {model.__name__}: {pydantic_errors(e)}", loc) from e


def _name_of(data: Any) -> str | None:
    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def classify(doc: Document) -> str:
    """policy | vap | binding | exception | cluster | catalog | request | resource | values | invalid"""
    data = doc.data
    if not isinstance(data, dict):
        return "invalid"
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if api_version is None and kind is None:
        return "values"  # e.g. a Helm values.yaml beside the manifests
    if api_version == CHARTER_API_VERSION:
        return {
            "Policy": "policy",
            "PolicyException": "exception",
            "ClusterProfile": "cluster",
            "Catalog": "catalog",
            "RequestContext": "request",
            "PolicyTest": "test",
        }.get(str(kind), "unknown-charter")
    if api_version in VAP_API_VERSIONS:
        if kind == "ValidatingAdmissionPolicy":
            return "vap"
        if kind == "ValidatingAdmissionPolicyBinding":
            return "binding"
    return "resource"


@dataclass
class LoadedException:
    model: PolicyException
    document: Document


@dataclass
class PolicySet:
    policies: list[CompiledPolicy] = field(default_factory=list)
    exceptions: list[LoadedException] = field(default_factory=list)
    digest: str = ""  # sha256 of the policy documents, for audit records
    notes: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, CompiledPolicy]:
        return {p.name: p for p in self.policies}


@dataclass
class ContextObjects:
    """Cluster state known offline: everything a policy may read besides the object."""

    cluster: ClusterProfile | None = None
    catalog: dict[str, Any] = field(default_factory=dict)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)  # params and related objects
    request: RequestContext | None = None


def _digest(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps(d.data, sort_keys=True, separators=(",", ":"), default=str).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def build_policy_set(
    docs: Iterable[Document], errors: list[CharterError]
) -> tuple[PolicySet, list[Document]]:
    """Compile the policies, bindings and exceptions among `docs`; return the other documents too."""
    pset = PolicySet()
    policy_docs: list[Document] = []
    others: list[Document] = []
    bindings: list[tuple[ValidatingAdmissionPolicyBinding, CompiledBinding]] = []
    names: dict[str, Document] = {}
    for doc in docs:
        what = classify(doc)
        try:
            if what == "policy":
                model = parse_model(CharterPolicy, doc, _name_of(doc.data))
                compiled = compile_charter_policy(
                    model, Location(doc.source, doc.index, doc.line, model.metadata.name)
                )
            elif what == "vap":
                vap = parse_model(ValidatingAdmissionPolicy, doc, _name_of(doc.data))
                compiled = compile_vap(vap, Location(doc.source, doc.index, doc.line, vap.metadata.name))
            elif what == "binding":
                b = parse_model(ValidatingAdmissionPolicyBinding, doc, _name_of(doc.data))
                bindings.append((b, compile_binding(b, doc.location)))
                policy_docs.append(doc)
                continue
            elif what == "exception":
                pset.exceptions.append(
                    LoadedException(parse_model(PolicyException, doc, _name_of(doc.data)), doc)
                )
                policy_docs.append(doc)
                continue
            elif what == "unknown-charter":
                raise PolicyLoadError(
                    f"unknown kind {doc.data.get('kind')!r} for apiVersion {CHARTER_API_VERSION}",
                    doc.location,
                )
            else:
                others.append(doc)
                continue
        except CharterError as e:
            errors.append(e)
            continue
        if compiled.name in names:
            first = names[compiled.name]
            errors.append(
                PolicyLoadError(
                    f"duplicate policy name {compiled.name!r} (first defined in {first.source}, document {first.index})",
                    doc.location,
                )
            )
            continue
        names[compiled.name] = doc
        pset.policies.append(compiled)
        policy_docs.append(doc)
    by_name = pset.by_name()
    for bmodel, binding in bindings:
        policy = by_name.get(bmodel.spec.policy_name)
        if policy is None or not policy.is_vap:
            # The apiserver leaves such a binding silently inactive (kubernetes#117263); say so.
            errors.append(
                PolicyLoadError(
                    f"binding {bmodel.metadata.name!r} refers to ValidatingAdmissionPolicy {bmodel.spec.policy_name!r}, which was not given",
                    binding.location,
                )
            )
            continue
        if policy.param_kind is None and binding.param_ref is not None:
            errors.append(
                PolicyLoadError(
                    f"binding {bmodel.metadata.name!r} sets paramRef but policy {policy.name!r} has no paramKind",
                    binding.location,
                )
            )
            continue
        policy.bindings.append(binding)
    for p in pset.policies:
        if p.is_vap and not p.bindings:
            pset.notes.append(
                f"{p.location.render()}: ValidatingAdmissionPolicy has no binding, so it is not enforced"
            )
    pset.digest = _digest(policy_docs)
    return pset, others


def load_policy_set(paths: Iterable[str]) -> tuple[PolicySet, ContextObjects, list[CharterError]]:
    """Load the policy files (and the context found beside them); every problem is returned, not raised."""
    read = read_documents(paths, skip_dirs=POLICY_SKIP_DIRS)
    errors: list[CharterError] = list(read.errors)
    pset, others = build_policy_set(read.documents, errors)
    ctx = ContextObjects()
    add_context(ctx, others, errors)
    return pset, ctx, errors


def add_context(
    ctx: ContextObjects, docs: Iterable[Document], errors: list[CharterError], *, keep_resources: bool = True
) -> list[Document]:
    """Fold cluster profiles, catalogs, request contexts and namespaces into `ctx`; return the rest."""
    rest: list[Document] = []
    for doc in docs:
        what = classify(doc)
        try:
            if what == "cluster":
                profile = parse_model(ClusterProfile, doc, _name_of(doc.data))
                if ctx.cluster is not None and ctx.cluster.metadata.name != profile.metadata.name:
                    raise ContextError(
                        f"a second ClusterProfile {profile.metadata.name!r}; charter evaluates against one cluster at a time (first: {ctx.cluster.metadata.name!r})",
                        doc.location,
                    )
                ctx.cluster = profile
            elif what == "catalog":
                merge_catalog(ctx.catalog, parse_model(Catalog, doc, _name_of(doc.data)), doc)
            elif what == "request":
                ctx.request = parse_model(RequestContext, doc, _name_of(doc.data))
            elif what in ("policy", "vap", "binding", "exception", "test"):
                continue
            elif what == "resource":
                data = doc.data
                if data.get("kind") == "Namespace" and data.get("apiVersion") == "v1":
                    name = _name_of(data)
                    if name:
                        ctx.namespaces[name] = data
                if keep_resources:
                    ctx.objects.append(data)
                rest.append(doc)
            else:
                rest.append(doc)
        except CharterError as e:
            errors.append(e)
    return rest


def merge_catalog(target: dict[str, Any], catalog: Catalog, doc: Document) -> None:
    for section, entries in catalog.spec.items():
        if isinstance(entries, list):
            # A list section holds entries with an `id`; keyed by it so policies can index.
            keyed: dict[str, Any] = {}
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    raise ContextError(
                        f"catalog section {section!r} entry {i} needs a string `id`", doc.location
                    )
                keyed[entry["id"]] = entry
            entries = keyed
        existing = target.setdefault(section, {})
        for key, value in entries.items():
            if key in existing:
                raise ContextError(
                    f"catalog {catalog.metadata.name!r}: {section}[{key!r}] is defined twice", doc.location
                )
            existing[key] = value
