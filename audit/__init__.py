"""charter's signed, tamper-evident audit log of every decision.

Both shells write through `DecisionSink` (see `sink.py`); `open_sink` builds the real one:
DSSE-signed in-toto statements in an RFC 6962 Merkle log with C2SP checkpoints, stored in
SQLite (default `.charter/audit.db`) or PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

from .sink import AuditUnavailable, DecisionContext, DecisionSink, NullSink

DEFAULT_KEY = ".charter/audit.key"

__all__ = [
    "AuditUnavailable",
    "DecisionContext",
    "DecisionSink",
    "NullSink",
    "ensure_default_key",
    "open_sink",
]


def ensure_default_key(key_path: str | None) -> Path | None:
    """Create the default signing key on first use; return its path if it was created.

    Only the default location is filled in: a key the user named (or $CHARTER_AUDIT_KEY)
    that does not exist is an error, never silently replaced by a new identity.
    """
    if key_path or os.environ.get("CHARTER_AUDIT_KEY"):
        return None
    path = Path(DEFAULT_KEY)
    if path.exists():
        return None
    from .crypto import generate_keypair

    try:
        priv, _ = generate_keypair(path.parent, path.stem)
    except OSError as e:
        raise AuditUnavailable(f"cannot create the audit signing key {path}: {e}") from e
    return priv


def open_sink(
    url: str,
    key_path: str | None,
    *,
    origin: str | None = None,
    publish: str | None = None,
    checkpoint_every: int = 1000,
    checkpoint_seconds: float = 10.0,
    writer: str | None = None,
    spool: str | None = None,
) -> DecisionSink:
    """The audit sink for `--audit URL`: `postgresql://...`, `sqlite:///PATH`, a path, or "" for
    `.charter/audit.db`. The signing key is `key_path`, else $CHARTER_AUDIT_KEY, else
    `.charter/audit.key` (create one with `charter audit keygen`). `publish` (or
    $CHARTER_AUDIT_PUBLISH) names an append-only file every checkpoint is also written to.
    `writer` (or $CHARTER_AUDIT_WRITER): auto (default), thread or process; see `AuditLog`.
    `spool`: a directory for `charter serve`'s spool (see `spooled.py`): each decision is durable
    there before the answer and signed into the store by a low-priority applier process; "auto"
    puts it beside a SQLite database (`audit.db.spool`) and uses none for PostgreSQL, whose commits
    are already shared by every replica (a replica's local spool would not be).
    Raises AuditUnavailable when the store or the key cannot be opened."""
    from .crypto import load_private_key
    from .log import DEFAULT_ORIGIN, AuditLog
    from .publish import CheckpointPublisher, FileCheckpointSink
    from .store import open_store

    key_file = key_path or os.environ.get("CHARTER_AUDIT_KEY") or DEFAULT_KEY
    try:
        key = load_private_key(Path(key_file))
    except (OSError, ValueError) as e:
        raise AuditUnavailable(f"audit signing key {key_file}: {e} (create one: charter audit keygen)") from e
    try:
        store = open_store(url)
    except ValueError as e:
        raise AuditUnavailable(str(e)) from e
    pubs: list[CheckpointPublisher] = []
    target = publish or os.environ.get("CHARTER_AUDIT_PUBLISH")
    if target:
        pubs.append(FileCheckpointSink(target))
    mode = writer or os.environ.get("CHARTER_AUDIT_WRITER") or "auto"
    if mode not in ("auto", "thread", "process"):
        raise AuditUnavailable(f"audit writer {mode!r}: expected auto, thread or process")
    spool_dir = spool_path(store, spool)
    if spool_dir is not None:
        from .spooled import SpooledLog

        return SpooledLog(
            store,
            key,
            spool_dir,
            origin=origin or DEFAULT_ORIGIN,
            publishers=pubs,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
        )
    return AuditLog(
        store,
        key,
        origin=origin or DEFAULT_ORIGIN,
        publishers=pubs,
        checkpoint_every=checkpoint_every,
        checkpoint_seconds=checkpoint_seconds,
        writer=mode,
    )


def spool_path(store: object, spool: str | None) -> Path | None:
    """The spool directory `spool` names for `store`: None, "" or "off" for none, "auto" for one
    beside a SQLite database (none for PostgreSQL), else the path itself."""
    from .store import SQLiteStore

    if not spool or spool == "off":
        return None
    if spool == "auto":
        return store.path.with_name(store.path.name + ".spool") if isinstance(store, SQLiteStore) else None
    return Path(spool)
