"""Evaluating manifest files: the offline shell's half of the one evaluation path.

Inputs are read, context (namespaces, claims, profiles, catalogs) is gathered from
them and from --context files, and each resource goes through `Engine.prepare` and
`Engine.decide` (what `Engine.evaluate` does for an admission request); resources are
decided in batches that share one CEL activation, so the catalog is converted once a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .dispatcher import Engine, batch_slots
from .documents import Document, read_documents
from .errors import CharterError, InputError
from .loader import ContextObjects, add_context, classify
from .normalize import RELATED_KINDS
from .request import Source, attributes_for_object
from .results import Decision

# Batching pays off once the batched programs' one-off compilation is amortized.
BATCH_SIZE = 256
BATCH_MIN_RESOURCES = 64


@dataclass(slots=True)
class ResourceDecision:
    document: Document
    decision: Decision


@dataclass
class CheckRun:
    decisions: list[ResourceDecision] = field(default_factory=list)
    errors: list[CharterError] = field(default_factory=list)  # inputs that could not be evaluated
    notes: list[str] = field(default_factory=list)  # documents skipped on purpose, and why


def load_context(paths: Iterable[str], ctx: ContextObjects, errors: list[CharterError]) -> None:
    read = read_documents(paths)
    errors.extend(read.errors)
    add_context(ctx, read.documents, errors)


def check_paths(
    engine: Engine,
    paths: Iterable[str],
    *,
    user_info: dict[str, Any] | None = None,
    operation: str = "CREATE",
    progress: Callable[[int, int], None] | None = None,
    explain: bool = False,
    batch_size: int | None = None,
) -> CheckRun:
    """Evaluate every resource under `paths`; `batch_size` None picks by the number of resources."""
    run = CheckRun()
    read = read_documents(paths)
    run.errors.extend(read.errors)
    resources: list[Document] = []
    for doc in read.documents:
        what = classify(doc)
        if what == "values":
            run.notes.append(
                f"{doc.source}:{doc.line}: document {doc.index} skipped: no apiVersion or kind (a Helm values file?)"
            )
        elif what == "invalid":
            run.errors.append(
                InputError(f"not a Kubernetes object: a YAML {type(doc.data).__name__}", doc.location)
            )
        elif what == "resource":
            data = doc.data
            missing = [
                k for k in ("apiVersion", "kind") if not isinstance(data.get(k), str) or not data.get(k)
            ]
            if missing:
                run.errors.append(InputError(f"missing or non-string {' and '.join(missing)}", doc.location))
                continue
            resources.append(doc)
        else:
            run.notes.append(
                f"{doc.source}:{doc.line}: document {doc.index} skipped: a charter {doc.data.get('kind')} is not a resource to check"
            )
    ctx = engine.context
    # Namespaces among the inputs supply labels for namespaceSelector, as --context ones do.
    for doc in resources:
        data = doc.data
        if data.get("kind") == "Namespace" and data.get("apiVersion") == "v1":
            name = (data.get("metadata") or {}).get("name")
            if isinstance(name, str) and name not in ctx.namespaces:
                ctx.namespaces[name] = data
    related = [d.data for d in resources if d.data.get("kind") in RELATED_KINDS] + [
        o for o in ctx.objects if o.get("kind") in RELATED_KINDS
    ]
    request = ctx.request.spec if ctx.request is not None else None
    info = (
        user_info
        if user_info is not None
        else (request.user_info.model_dump(by_alias=True) if request else {})
    )
    op = operation if request is None or operation != "CREATE" else request.operation
    dry_run = request.dry_run if request else False
    size = batch_size or (BATCH_SIZE if len(resources) >= BATCH_MIN_RESOURCES else 1)
    done = 0
    for start in range(0, len(resources), size):
        chunk = resources[start : start + size]
        prepared = [
            engine.prepare(
                attributes_for_object(
                    doc.data,
                    operation=op,
                    user_info=info,
                    source=Source(doc.source, doc.index, doc.line, doc.item),
                    dry_run=dry_run,
                ),
                related,
            )
            for doc in chunk
        ]
        for doc, p, slot in zip(chunk, prepared, batch_slots(prepared), strict=True):
            run.decisions.append(ResourceDecision(doc, engine.decide(p, explain=explain, slot=slot)))
            done += 1
            if progress is not None:
                progress(done, len(resources))
    return run
