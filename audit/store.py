"""Where the log lives: SQLite (WAL, the embedded default) or PostgreSQL (several writers, one log).

Appends are serialized by the database itself (SQLite's write lock via BEGIN IMMEDIATE; a
PostgreSQL transaction-scoped advisory lock), and the tree index is assigned inside that
transaction, so several processes produce one gap-free log.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

DEFAULT_SQLITE = ".charter/audit.db"
_PG_LOCK = 0x63686172  # "char"

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS records (
        idx {bigint} PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, time TEXT NOT NULL,
        cluster TEXT NOT NULL, jurisdiction TEXT NOT NULL, namespace TEXT NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, username TEXT NOT NULL, operation TEXT NOT NULL, decision TEXT NOT NULL,
        exceptions TEXT NOT NULL, summary TEXT NOT NULL, envelope {blob} NOT NULL, leaf_hash {blob} NOT NULL)""",
    # Filter tables: clustered on (value, idx) so a filter reads its records newest first; what
    # a result row shows comes from records.summary, so they need no index on idx.
    "CREATE TABLE IF NOT EXISTS record_policies (policy TEXT NOT NULL, idx {bigint} NOT NULL, "
    "PRIMARY KEY (policy, idx)){without_rowid}",
    "CREATE TABLE IF NOT EXISTS record_datasets (dataset TEXT NOT NULL, idx {bigint} NOT NULL, "
    "PRIMARY KEY (dataset, idx)){without_rowid}",
    "CREATE TABLE IF NOT EXISTS record_models (digest TEXT NOT NULL, idx {bigint} NOT NULL, "
    "PRIMARY KEY (digest, idx)){without_rowid}",
    "CREATE TABLE IF NOT EXISTS checkpoints (size {bigint} PRIMARY KEY, time TEXT NOT NULL, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_time ON records (time)",
    "CREATE INDEX IF NOT EXISTS records_ns ON records (namespace, idx)",
    "CREATE INDEX IF NOT EXISTS records_cluster ON records (cluster, idx)",
    "CREATE INDEX IF NOT EXISTS records_jur ON records (jurisdiction, idx)",
    "CREATE INDEX IF NOT EXISTS records_decision ON records (decision, idx)",
    "CREATE INDEX IF NOT EXISTS records_user ON records (username, idx)",
]

RECORD_COLUMNS = (
    "idx, record_id, time, cluster, jurisdiction, namespace, kind, name, username, operation, decision"
)


@dataclass(slots=True)
class Row:
    """One record as stored, ready to insert."""

    idx: int
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
    envelope: bytes
    leaf_hash: bytes
    policies: list[tuple[str, str, str, str]]  # policy, verdict, exception, approved_by
    datasets: list[str]
    models: list[str]


def _summary(r: Row) -> tuple[str, str]:
    """(exceptions, summary JSON) columns: what query results show without reading the envelope."""
    exceptions = [f"{p}: {e} (approved by {a})" for p, _, e, a in r.policies if e]
    summary = {
        "policies": [f"{p}={v}" for p, v, _, _ in r.policies],
        "exceptions": exceptions,
        "datasets": list(r.datasets),
        "models": list(r.models),
    }
    return "; ".join(exceptions), json.dumps(summary, separators=(",", ":"))


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Any) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class StoreError(Exception):
    """The store failed (unreachable, locked past its timeout, corrupt)."""


class Tx:
    """The write transaction: the log's lock is held for its whole life."""

    def __init__(self, store: Store, cur: Cursor) -> None:
        self.store, self.cur = store, cur

    def q(self, sql: str) -> str:
        return self.store.q(sql)

    def size(self) -> int:
        self.cur.execute("SELECT MAX(idx) FROM records")
        m = self.cur.fetchone()[0]
        return 0 if m is None else int(m) + 1

    def leaf_hashes(self, lo: int, hi: int) -> list[bytes]:
        self.cur.execute(
            self.q("SELECT leaf_hash FROM records WHERE idx >= ? AND idx < ? ORDER BY idx"), (lo, hi)
        )
        return [bytes(r[0]) for r in self.cur.fetchall()]

    def last_checkpoint_size(self) -> int:
        self.cur.execute("SELECT MAX(size) FROM checkpoints")
        m = self.cur.fetchone()[0]
        return 0 if m is None else int(m)

    def insert(self, rows: Sequence[Row]) -> None:
        q = self.q
        self.cur.executemany(
            q(
                "INSERT INTO records (idx, record_id, time, cluster, jurisdiction, namespace, kind, name, "
                "username, operation, decision, exceptions, summary, envelope, leaf_hash) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            ),
            [
                (
                    r.idx, r.record_id, r.time, r.cluster, r.jurisdiction, r.namespace, r.kind, r.name,
                    r.user, r.operation, r.decision, *_summary(r), r.envelope, r.leaf_hash,
                )
                for r in rows
            ],
        )  # fmt: skip
        pol = [(p, r.idx) for r in rows for p in dict.fromkeys(x[0] for x in r.policies)]
        if pol:
            self.cur.executemany(q("INSERT INTO record_policies (policy, idx) VALUES (?,?)"), pol)
        ds = [(d, r.idx) for r in rows for d in dict.fromkeys(r.datasets)]
        if ds:
            self.cur.executemany(q("INSERT INTO record_datasets (dataset, idx) VALUES (?,?)"), ds)
        ms = [(m, r.idx) for r in rows for m in dict.fromkeys(r.models)]
        if ms:
            self.cur.executemany(q("INSERT INTO record_models (digest, idx) VALUES (?,?)"), ms)

    def get_meta(self, key: str) -> str | None:
        self.cur.execute(self.q("SELECT value FROM meta WHERE key = ?"), (key,))
        row = self.cur.fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.cur.execute(
            self.q(
                "INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            (key, value),
        )

    def insert_checkpoint(self, size: int, time: str, note: str) -> None:
        self.cur.execute(
            self.q("INSERT INTO checkpoints (size, time, note) VALUES (?,?,?)"), (size, time, note)
        )


class Store:
    """Common reads; the backends differ in connections, placeholders and locking."""

    url: str
    placeholder = "?"
    _writer: Any = None  # the connection appends go through, opened on first use

    def q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def connect(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        raise NotImplementedError
        yield  # pragma: no cover

    def sync(self) -> None:
        """Make every committed transaction durable (a store that commits durably has nothing to do)."""

    def close(self) -> None:
        """Close the writer connection, if any."""
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None

    @contextmanager
    def reader(self) -> Iterator[Any]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def init(self, meta: dict[str, str]) -> dict[str, str]:
        """Create the schema; record `meta` where unset; return the stored meta."""
        with self.transaction() as tx:
            for stmt in _SCHEMA:
                tx.cur.execute(
                    stmt.format(bigint=self.bigint, blob=self.blob, without_rowid=self.without_rowid)
                )
            for k, v in meta.items():
                tx.cur.execute(self.q(self.insert_ignore("meta", "key", "?, ?")), (k, v))
            tx.cur.execute("SELECT key, value FROM meta")
            return {str(k): str(v) for k, v in tx.cur.fetchall()}

    bigint = "INTEGER"
    blob = "BLOB"
    without_rowid = " WITHOUT ROWID"

    def insert_ignore(self, table: str, key: str, values: str) -> str:
        return f"INSERT OR IGNORE INTO {table} VALUES ({values})"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.reader() as conn:
            cur = conn.cursor()
            cur.execute(self.q(sql), tuple(params))
            return list(cur.fetchall())

    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.fetch("SELECT key, value FROM meta")}

    def size(self) -> int:
        m = self.fetch("SELECT MAX(idx) FROM records")[0][0]
        return 0 if m is None else int(m) + 1

    def count(self) -> int:
        return int(self.fetch("SELECT COUNT(*) FROM records")[0][0])

    def checkpoints(self) -> list[tuple[int, str]]:
        return [(int(s), str(n)) for s, n in self.fetch("SELECT size, note FROM checkpoints ORDER BY size")]

    def iter_rows(self, lo: int, hi: int, chunk: int = 5000) -> Iterator[tuple[int, bytes, bytes]]:
        """(idx, envelope, stored leaf hash) for lo <= idx < hi, in order."""
        with self.reader() as conn:
            cur = conn.cursor()
            start = lo
            while start < hi:
                cur.execute(
                    self.q(
                        "SELECT idx, envelope, leaf_hash FROM records WHERE idx >= ? AND idx < ? ORDER BY idx"
                    ),
                    (start, min(hi, start + chunk)),
                )
                for i, env, lh in cur.fetchall():
                    yield int(i), bytes(env), bytes(lh)
                start += chunk

    def scan_batches(self, lo: int, hi: int, size: int = 64) -> Iterator[list[tuple[int, bytes, bytes]]]:
        """(idx, envelope, stored leaf hash) for lo <= idx < hi, in order, `size` rows at a time:
        what verification reads, once. A generic store reads it in chunks; SQLite streams it."""
        rows = self.iter_rows(lo, hi)
        while batch := list(itertools.islice(rows, size)):
            yield batch

    def leaf_hashes(self, hi: int) -> list[bytes]:
        return [
            bytes(r[0]) for r in self.fetch("SELECT leaf_hash FROM records WHERE idx < ? ORDER BY idx", (hi,))
        ]

    def envelopes(self, indices: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for k in range(0, len(indices), 500):
            part = list(indices[k : k + 500])
            marks = ",".join("?" * len(part))
            for i, env in self.fetch(f"SELECT idx, envelope FROM records WHERE idx IN ({marks})", part):
                out[int(i)] = bytes(env)
        return out


class SQLiteStore(Store):
    def __init__(self, path: str | Path, timeout: float = 30.0, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        # FULL: each COMMIT is durable. NORMAL (the spool's applier, whose entries stay in the
        # spool until `sync`): commits are atomic and ordered, and durable at the next `sync`.
        self.synchronous = synchronous
        self._writer: sqlite3.Connection | None = None

    def sync(self) -> None:
        # In WAL mode every commit is in the -wal file (or, once checkpointed, in the database,
        # which NORMAL syncs at each checkpoint): syncing both makes every commit so far durable.
        # (and the directory: a -wal file created since the last sync has a name to make durable)
        for path in (self.path.with_name(self.path.name + "-wal"), self.path, self.path.parent):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise StoreError(f"{path}: {e}") from e
            try:
                os.fsync(fd)
            except OSError as e:
                raise StoreError(f"{path}: fsync: {e}") from e
            finally:
                os.close(fd)

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            # Switching a new database to WAL takes an exclusive lock and does not wait on the busy
            # handler: several writers opening a fresh log at once retry here.
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path}: {e}") from e
        return conn

    # Verification reads each record once, in order: through a memory map (no read() call and no
    # copy into SQLite's page cache per page; ~2 us less per record), streamed from one statement
    # (no list of the whole range held). The map is of the file's first bytes, up to this size;
    # pages past it are read as usual. File-backed and clean: it costs address space, not memory.
    scan_mmap = 1 << 30

    def scan_batches(self, lo: int, hi: int, size: int = 64) -> Iterator[list[tuple[int, bytes, bytes]]]:
        with self.reader() as conn:
            try:
                conn.execute(f"PRAGMA mmap_size={int(self.scan_mmap)}")
                cur = conn.execute(
                    "SELECT idx, envelope, leaf_hash FROM records WHERE idx >= ? AND idx < ? ORDER BY idx",
                    (lo, hi),
                )
                while batch := cur.fetchmany(size):
                    yield batch
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: {e}") from e

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        try:
            if self._writer is None:
                self._writer = self.connect()
            conn = self._writer
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self.close()
            raise StoreError(f"{self.path}: {e}") from e
        try:
            yield Tx(self, cur)
            cur.execute("COMMIT")
        except BaseException as e:
            try:
                cur.execute("ROLLBACK")
            except sqlite3.Error:
                self.close()
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"{self.path}: {e}") from e
            raise


class PostgresStore(Store):
    placeholder = "%s"
    bigint = "BIGINT"
    blob = "BYTEA"
    without_rowid = ""

    def __init__(self, url: str) -> None:
        self.url = url
        self._writer: Any = None

    def insert_ignore(self, table: str, key: str, values: str) -> str:
        return f"INSERT INTO {table} VALUES ({values}) ON CONFLICT ({key}) DO NOTHING"

    def connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"postgresql: {e}") from e

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        import psycopg

        try:
            if self._writer is None or self._writer.closed:
                self._writer = self.connect()
            conn = self._writer
            cur = conn.cursor()
            # One lock for the whole log: indexes are assigned inside it, so writers interleave
            # whole batches and the log stays gap-free. Released at COMMIT/ROLLBACK.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
        except psycopg.Error as e:
            self.close()
            raise StoreError(f"postgresql: {e}") from e
        try:
            yield Tx(self, cur)
            conn.commit()
        except BaseException as e:
            try:
                conn.rollback()
            except psycopg.Error:
                self.close()
            if isinstance(e, psycopg.Error):
                raise StoreError(f"postgresql: {e}") from e
            raise


def open_store(url: str | None) -> Store:
    """`postgresql://...` / `postgres://...`, `sqlite:///path`, a file path, or None for the default."""
    if not url:
        return SQLiteStore(DEFAULT_SQLITE)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :])
    if url.startswith("sqlite://"):
        return SQLiteStore(url[len("sqlite://") :])
    if "://" in url:
        raise ValueError(f"unsupported audit store URL {url!r} (sqlite:///PATH, PATH or postgresql://...)")
    return SQLiteStore(url)
