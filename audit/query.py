"""Auditor queries over the indexed columns: filters, rows as pydantic models, residency."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .record import TIME_FORMAT
from .store import RECORD_COLUMNS, Store


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str | None = None
    cluster: str | None = None
    jurisdiction: str | None = None
    policy: str | None = None
    decision: str | None = Field(default=None, pattern="^(allow|deny|warn)$")
    dataset: str | None = None
    model_digest: str | None = None
    user: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = Field(default=1000, ge=1, le=1_000_000)


class QueryRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    index: int
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
    policies: list[str] = []  # policy=verdict
    exceptions: list[str] = []  # policy: exception (approved by ...)
    datasets: list[str] = []
    models: list[str] = []


class ResidencyRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    dataset: str
    cluster: str
    jurisdiction: str
    decision: str
    records: int
    first: str
    last: str
    exceptions: list[str] = []


def normalize_time(text: str) -> str:
    """An ISO 8601 time (date, naive = UTC, or with offset) in the stored form, for comparisons."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime(TIME_FORMAT)


_SELECTIVE = 20_000  # side-table matches below which the side index drives the query


def _where(f: Filters, store: Store | None = None) -> tuple[str, list[Any]]:
    cond: list[str] = []
    params: list[Any] = []
    for col, val in (
        ("namespace", f.namespace),
        ("cluster", f.cluster),
        ("jurisdiction", f.jurisdiction),
        ("decision", f.decision),
        ("username", f.user),
    ):
        if val is not None:
            cond.append(f"r.{col} = ?")
            params.append(val)
    if f.since:
        cond.append("r.time >= ?")
        params.append(normalize_time(f.since))
    if f.until:
        cond.append("r.time < ?")
        params.append(normalize_time(f.until))
    for table, col, val in (
        ("record_policies", "policy", f.policy),
        ("record_datasets", "dataset", f.dataset),
        ("record_models", "digest", f.model_digest),
    ):
        if val is None:
            continue
        # A value with few records drives the query from its own index (IN); a common one is
        # checked per candidate record (EXISTS) while records are read newest first up to the
        # limit. Counting is bounded, so choosing costs at most _SELECTIVE index entries.
        if store is not None and _bounded_count(store, table, col, val) < _SELECTIVE:
            cond.append(f"r.idx IN (SELECT idx FROM {table} WHERE {col} = ?)")
        else:
            cond.append(f"EXISTS (SELECT 1 FROM {table} s WHERE s.{col} = ? AND s.idx = r.idx)")
        params.append(val)
    return (" WHERE " + " AND ".join(cond)) if cond else "", params


def _bounded_count(store: Store, table: str, col: str, val: str) -> int:
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {col} = ? LIMIT {_SELECTIVE}) t"
    return int(store.fetch(sql, [val])[0][0])


def query(store: Store, f: Filters) -> list[QueryRow]:
    where, params = _where(f, store)
    cols = ", ".join(f"r.{c.strip()}" for c in RECORD_COLUMNS.split(",")) + ", r.summary"
    rows = store.fetch(f"SELECT {cols} FROM records r{where} ORDER BY r.idx DESC LIMIT ?", [*params, f.limit])
    if not rows:
        return []
    out = []
    for r in rows:
        summary = json.loads(r[11])
        out.append(
            QueryRow(
                index=int(r[0]),
                record_id=r[1],
                time=r[2],
                cluster=r[3],
                jurisdiction=r[4],
                namespace=r[5],
                kind=r[6],
                name=r[7],
                user=r[8],
                operation=r[9],
                decision=r[10],
                policies=summary["policies"],
                exceptions=summary["exceptions"],
                datasets=summary["datasets"],
                models=summary["models"],
            )
        )
    return out


def residency(store: Store, dataset: str) -> list[ResidencyRow]:
    """Where workloads that used `dataset` ran: per cluster, jurisdiction and decision."""
    rows = store.fetch(
        "SELECT r.cluster, r.jurisdiction, r.decision, COUNT(*), MIN(r.time), MAX(r.time) "
        "FROM record_datasets d JOIN records r ON r.idx = d.idx WHERE d.dataset = ? "
        "GROUP BY r.cluster, r.jurisdiction, r.decision ORDER BY r.cluster, r.jurisdiction, r.decision",
        [dataset],
    )
    exc: dict[tuple[str, str, str], set[str]] = {}
    for c, j, dec, e in store.fetch(
        "SELECT r.cluster, r.jurisdiction, r.decision, r.exceptions "
        "FROM record_datasets d JOIN records r ON r.idx = d.idx WHERE d.dataset = ? AND r.exceptions <> ''",
        [dataset],
    ):
        exc.setdefault((c, j, dec), set()).update(e.split("; "))
    return [
        ResidencyRow(
            dataset=dataset, cluster=c, jurisdiction=j, decision=dec, records=int(n), first=lo, last=hi,
            exceptions=sorted(exc.get((c, j, dec), set())),
        )
        for c, j, dec, n, lo, hi in rows
    ]  # fmt: skip
