"""PostgreSQL: a real server started by the tests; three appender processes produce one log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from charter.audit import AuditUnavailable
from charter.audit.crypto import load_public_key
from charter.audit.log import AuditLog
from charter.audit.query import Filters, query, residency
from charter.audit.store import PostgresStore
from charter.audit.verify import verify_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .helpers import context, decision

CHILD = Path(__file__).with_name("writer_child.py")


def test_three_concurrent_appenders_one_log(pg_db: str, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    procs = [
        subprocess.Popen([sys.executable, str(CHILD), pg_db, str(key), "60", "3", "25"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    ids: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids.extend(out.split())
    assert len(ids) == len(set(ids)) == 3 * 3 * 60
    rep = verify_log(pg_db, load_public_key(pub), workers=2, chunk=100)
    assert rep.ok, rep.failures[:5]
    assert rep.tree_size == len(ids)
    assert rep.checkpoints >= 3
    with psycopg.connect(pg_db) as c:
        stored = {r[0] for r in c.execute("SELECT record_id FROM records").fetchall()}
        idx = [r[0] for r in c.execute("SELECT idx FROM records ORDER BY idx").fetchall()]
    assert stored == set(ids)
    assert idx == list(range(len(ids)))
    store = PostgresStore(pg_db)
    assert len(query(store, Filters(decision="deny", limit=10_000))) == 3 * 3 * 20
    assert sum(r.records for r in residency(store, "ds-eu-claims")) == len(ids)


def test_postgres_tamper_detected(
    pg_db: str, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    with AuditLog(PostgresStore(pg_db), signing_key, checkpoint_every=10) as log:
        for i in range(25):
            log.append(decision(i), context())
    with psycopg.connect(pg_db) as c:
        c.execute("DELETE FROM records WHERE idx = 11")
    for workers, chunk in ((1, None), (2, 4), (2, None)):  # in one process, and workers reading ranges
        rep = verify_log(pg_db, load_public_key(keypair[1]), workers=workers, chunk=chunk)
        assert rep.first is not None and (rep.first.index, rep.first.kind) == (11, "missing")
        assert rep.tree_size == 11
    store = PostgresStore(pg_db)
    assert [r for b in store.scan_batches(3, 15, 4) for r in b] == list(store.iter_rows(3, 15, chunk=5))


def test_unreachable_postgres_is_unavailable(signing_key: Ed25519PrivateKey, postgres_url: str) -> None:
    with pytest.raises(AuditUnavailable):
        AuditLog(PostgresStore("postgresql://postgres@127.0.0.1:1/postgres"), signing_key)
    # a store that goes away after opening: the append fails loudly, never silently
    import uuid

    name = "gone_" + uuid.uuid4().hex[:8]
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    log = AuditLog(PostgresStore(url), signing_key, timeout=20)
    log.append(decision(0), context())
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")
    with pytest.raises(AuditUnavailable):
        log.append(decision(1), context())
    assert log.metrics.failures >= 1
    log.close()


def test_spooled_replicas_share_one_postgresql_log(
    pg_db: str, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two webhook replicas, each with its own spool, applying into one PostgreSQL log; then a third
    process appending directly: one gap-free log, each spool's position kept apart."""
    key, pub = keypair
    spools = [tmp_path / "replica-a", tmp_path / "replica-b"]
    procs = [
        subprocess.Popen([sys.executable, str(CHILD), pg_db, str(key), "40", "2", "25", f"spool={d}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for d in spools
    ]  # fmt: skip
    procs.append(
        subprocess.Popen([sys.executable, str(CHILD), pg_db, str(key), "40", "2", "25"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    )  # fmt: skip
    ids: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        ids.extend(out.split())
    assert len(ids) == len(set(ids)) == 3 * 2 * 40
    rep = verify_log(pg_db, load_public_key(pub), workers=2, chunk=100)
    assert rep.ok, rep.failures[:5]
    assert rep.tree_size == len(ids)
    store = PostgresStore(pg_db)
    positions = {k: v for k, v in store.meta().items() if k.startswith("spool:")}
    assert len(positions) == 2 and all(int(v) > 0 for v in positions.values())
    with psycopg.connect(pg_db) as c:
        assert {r[0] for r in c.execute("SELECT record_id FROM records").fetchall()} == set(ids)
