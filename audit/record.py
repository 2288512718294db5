"""One decision as an in-toto Statement v1: the predicate auditors read, and the columns queries index."""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import time_ns
from typing import Any

from charter.engine.results import Decision, PolicyOutcome

from .crypto import canonical_json, canonical_json_of_strings, json_safe
from .sink import DecisionContext

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://charter.dev/decision/v1"
# Spliced into the canonical payload once the log index is known (inside the store's lock): this
# number appears exactly once in the canonical bytes, or the record is re-canonicalized with its index.
_PLACEHOLDER = 987_654_321_098_765  # 15 digits: stays on the canonical fast path
PLACEHOLDER_BYTES = b'"logIndex":%d' % _PLACEHOLDER
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Record ids: UUIDv7, their random bits from a generator seeded once from the OS (os.urandom per record costs
# a syscall that showed up at ~10% of an append); ids are identifiers, not secrets.
_ids = random.Random(os.urandom(32))
# A forked worker (webhook workers, process pools) must not repeat its parent's sequence.
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_record_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix time in ms, version 7, 74 random bits. Time-ordered, so
    the store's unique index on record ids grows at its right edge instead of taking a random
    B-tree insert per record (measured: ~15% of an insert's CPU, more as the log grows)."""
    ms = time_ns() // 1_000_000
    r = _ids.getrandbits(74)
    return str(uuid.UUID(int=(ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & _LOW62)))


_LOW62 = (1 << 62) - 1


def now_text() -> str:
    """The current UTC time in TIME_FORMAT (isoformat is the same text at a third of strftime's cost)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(slots=True)
class PolicyRow:
    policy: str
    verdict: str
    exception: str = ""
    approved_by: str = ""


@dataclass(slots=True)
class Prepared:
    """A record before it has a log index: its payload template and its query columns."""

    record_id: str
    time: str
    cluster: str
    jurisdiction: str
    namespace: str
    kind: str
    name: str
    user: str
    operation: str
    decision: str
    template: bytes
    statement: dict[str, Any] | None = None  # set when the placeholder could not be spliced
    policies: list[PolicyRow] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def payload(self, index: int) -> bytes:
        if self.statement is not None:
            self.statement["predicate"]["logIndex"] = index
            return canonical_json(self.statement)
        return self.template.replace(PLACEHOLDER_BYTES, b'"logIndex":%d' % index, 1)


def object_digest(obj: Any) -> str:
    """sha256 of the object's RFC 8785 canonical JSON (out-of-range numbers carried as strings)."""
    try:
        data = canonical_json(obj)
    except Exception:  # numbers beyond RFC 8785, lone surrogates: carried as strings
        try:
            data = canonical_json(json_safe(obj))
        except Exception:
            data = canonical_json(json_safe(_scrub(obj)))
    return hashlib.sha256(data).hexdigest()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_scrub(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def overall(decision: Decision) -> str:
    if not decision.allowed:
        return "deny"
    if decision.warnings():
        return "warn"
    return "allow"


def _service_account(user: str) -> str:
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return f"{parts[2]}/{parts[3]}"
    return ""


def _result(o: PolicyOutcome, verdict: str, pset: str) -> dict[str, Any]:
    live = [f for f in o.findings if f.effective]
    actions = sorted({a for f in live for a in f.actions})
    exceptions = [
        {
            "name": f.exception.name,
            "ticket": f.exception.ticket,
            "approvedBy": f.exception.approved_by,
            "reason": f.exception.reason,
            "expires": f.exception.expires.isoformat(),
            "validation": f.validation_name or (str(f.validation) if f.validation is not None else ""),
        }
        for f in o.findings
        if f.exception is not None
    ]
    return {
        "policy": o.policy,
        "policySetDigest": pset,
        "verdict": verdict,
        "action": ",".join(actions),
        "allowed": not any("Deny" in f.actions for f in live),
        "message": live[0].message if live else "",
        "exceptions": exceptions,
    }


def _results(decision: Decision, pset: str) -> list[dict[str, Any]]:
    """Every policy that was not skipped. Most have no findings: their part is built directly
    (a pass, or an unresolved match's error), as `_result` would build it."""
    out = []
    for o in decision.outcomes:
        if o.findings:
            v = o.verdict
        elif o.matched:
            v = "pass"
        elif o.unresolved:
            v = "error"
        else:
            continue
        if v == "skip":
            continue
        if o.findings:
            out.append(_result(o, v, pset))
        else:
            out.append(
                {"policy": o.policy, "policySetDigest": pset, "verdict": v, "action": "", "allowed": True,
                 "message": "", "exceptions": []}
            )  # fmt: skip
    return out


def _s(v: Any) -> str:
    return v if isinstance(v, str) else "" if v is None else str(v)


def _workload(w: dict[str, Any]) -> dict[str, Any]:
    """The workload summary. Every leaf is a string except the accelerator counts, which
    `_numbers_plain` checks: that is what lets the statement skip a full canonicalization walk."""
    acc = w.get("accelerators") or {}
    ident = w.get("identity") or {}
    total = acc.get("total") or {}
    return {
        "accelerators": {
            "count": acc.get("count", 0),
            "total": {_s(k): v for k, v in total.items()} if isinstance(total, dict) else {},
            "products": [_s(x) for x in acc.get("products") or []],
            "migProfiles": [_s(x) for x in acc.get("migProfiles") or []],
        },
        "models": [
            {"uri": _s(m.get("uri")), "name": _s(m.get("name")), "digest": _s(m.get("digest"))}
            for m in w.get("models") or []
            if isinstance(m, dict)
        ],
        "datasets": [
            {"id": _s(d.get("id")), "uri": _s(d.get("uri")), "jurisdiction": _s(d.get("jurisdiction"))}
            for d in w.get("datasets") or []
            if isinstance(d, dict)
        ],
        "serviceAccount": _s(ident.get("serviceAccountName")),
        "team": _s(ident.get("team")),
    }


def _accelerator_numbers(workload: dict[str, Any]) -> list[Any]:
    acc = workload["accelerators"]
    return [acc["count"], *acc["total"].values()]


def prepare(decision: Decision, context: DecisionContext, *, time: str | None = None) -> Prepared:
    """Build the statement for one decision (without its log index) and its query columns."""
    return prepared(statement(decision, context, time=time))


def statement(decision: Decision, context: DecisionContext, *, time: str | None = None) -> dict[str, Any]:
    """The in-toto statement of one decision, its log index a placeholder: plain JSON values only,
    so that it can be spooled as JSON and become the same record in another process."""
    a = decision.attributes
    cluster = context.cluster
    cview: dict[str, Any] | None = None
    cname = ""
    if cluster is not None:
        v = cluster.view()
        cname = v["name"]
        cview = {k: v[k] for k in ("name", "type", "provider", "region", "jurisdiction", "jurisdictions")}
    user_info = a.user_info or {}
    user = str(user_info.get("username", ""))
    groups = [str(g) for g in user_info.get("groups", []) or []]
    pset = context.policy_set_digest
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{cname}/{a.namespace}/{a.kind}/{a.name}",
                "digest": {"sha256": object_digest(a.subject)},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "logIndex": _PLACEHOLDER,
            "decisionId": new_record_id(),
            "time": time or now_text(),
            "shell": context.shell,
            "cluster": cview,
            "request": {
                "user": user,
                "groups": groups,
                "serviceAccount": _service_account(user),
                "uid": a.uid,
                "operation": a.operation,
                "dryRun": a.dry_run,
                "apiVersion": a.api_version,
                "kind": a.kind,
                "namespace": a.namespace,
                "name": a.name,
            },
            "workload": _workload(decision.workload),
            "policySetDigest": pset,
            "results": _results(decision, pset),
            "auditAnnotations": decision.audit_annotations(),
            "decision": overall(decision),
            "allowed": decision.allowed,
        },
    }


def prepared(statement: dict[str, Any]) -> Prepared:
    """The canonical payload template and the query columns of a statement built by `statement`."""
    pred = statement["predicate"]
    req, workload, cview = pred["request"], pred["workload"], pred["cluster"]
    try:
        template = canonical_json_of_strings(statement, _accelerator_numbers(workload))
    except Exception:  # numbers beyond RFC 8785 (e.g. in the workload view): carried as strings
        statement = json_safe(statement)
        pred, workload = statement["predicate"], statement["predicate"]["workload"]
        template = canonical_json(statement)
    keep: dict[str, Any] | None = None
    if template.count(PLACEHOLDER_BYTES) != 1:
        keep = statement
    rows = []
    for r in pred["results"]:
        ex = r["exceptions"]
        rows.append(
            PolicyRow(
                r["policy"],
                r["verdict"],
                ",".join(e["name"] for e in ex),
                ",".join(e["approvedBy"] for e in ex),
            )
        )
    return Prepared(
        record_id=pred["decisionId"],
        time=pred["time"],
        cluster=cview["name"] if cview is not None else "",
        jurisdiction=cview["jurisdiction"] if cview is not None else "",
        namespace=req["namespace"],
        kind=req["kind"],
        name=req["name"],
        user=req["user"],
        operation=req["operation"],
        decision=pred["decision"],
        template=template,
        statement=keep,
        policies=rows,
        datasets=sorted({d["id"] for d in workload["datasets"] if d["id"]}),
        models=sorted({m["digest"] for m in workload["models"] if m["digest"]}),
    )
