"""Every tampering in the suite is detected, with the first bad index named."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from charter.audit.crypto import Checkpoint, keyid, load_public_key, sign_checkpoint, sign_envelope
from charter.audit.log import AuditLog
from charter.audit.merkle import leaf_hash
from charter.audit.store import SQLiteStore
from charter.audit.verify import verify_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from charter.cli import app

from .helpers import context, decision, sql

N = 40


@pytest.fixture
def log_db(tmp_path: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey) -> Path:
    db = tmp_path / "audit.db"
    with AuditLog(SQLiteStore(db), signing_key, checkpoint_every=10) as log:
        for i in range(N):
            log.append(decision(i, deny=i % 4 == 0), context())
    return db


def _first(db: Path, pub: Path, **kw: object) -> tuple[int, str]:
    """The first bad index and its kind, the same in one process and with two worker processes
    each reading its own ranges (of 7 records, so a tampering lands inside or across ranges)."""
    firsts = []
    for workers, chunk in ((1, None), (2, 7), (2, None)):
        rep = verify_log(str(db), load_public_key(pub), workers=workers, chunk=chunk, **kw)  # type: ignore[arg-type]
        assert not rep.ok
        f = rep.first
        assert f is not None
        firsts.append((f.index, f.kind, sorted((x.index, x.kind) for x in rep.failures)))
    assert firsts[1] == firsts[0] and firsts[2] == firsts[0]
    return firsts[0][0], firsts[0][1]


def test_clean_log_verifies(log_db: Path, keypair: tuple[Path, Path]) -> None:
    rep = verify_log(str(log_db), load_public_key(keypair[1]), workers=2, chunk=7)
    assert rep.ok, rep.failures
    assert (rep.records, rep.tree_size, rep.checkpoints) == (N, N, 4)


def test_flipped_bit(log_db: Path, keypair: tuple[Path, Path]) -> None:
    c = sqlite3.connect(log_db)
    env = bytearray(c.execute("SELECT envelope FROM records WHERE idx = 17").fetchone()[0])
    c.close()
    env[40] ^= 0x01  # inside the base64 payload
    sql(log_db, ("UPDATE records SET envelope = ? WHERE idx = 17", (bytes(env),)))
    assert _first(log_db, keypair[1]) in {(17, "signature"), (17, "malformed")}


def test_payload_edited_and_resigned_with_another_key(log_db: Path, keypair: tuple[Path, Path]) -> None:
    c = sqlite3.connect(log_db)
    env = json.loads(c.execute("SELECT envelope FROM records WHERE idx = 12").fetchone()[0])
    c.close()
    payload = base64.b64decode(env["payload"]).replace(b'"decision":"deny"', b'"decision":"allow"')
    mallory = Ed25519PrivateKey.generate()
    forged = sign_envelope(mallory, keyid(mallory.public_key()), payload)
    sql(
        log_db, ("UPDATE records SET envelope = ?, leaf_hash = ? WHERE idx = 12", (forged, leaf_hash(forged)))
    )
    assert _first(log_db, keypair[1]) == (12, "signature")


def test_deleted_row(log_db: Path, keypair: tuple[Path, Path]) -> None:
    sql(log_db, ("DELETE FROM records WHERE idx = 23", ()))
    assert _first(log_db, keypair[1]) == (23, "missing")


def test_deleted_row_renumbered(log_db: Path, keypair: tuple[Path, Path]) -> None:
    sql(
        log_db,
        ("DELETE FROM records WHERE idx = 23", ()),
        ("UPDATE records SET idx = -(idx - 1) WHERE idx > 23", ()),
        ("UPDATE records SET idx = -idx WHERE idx < 0", ()),
    )
    assert _first(log_db, keypair[1]) == (23, "index-mismatch")


def test_swapped_rows(log_db: Path, keypair: tuple[Path, Path]) -> None:
    sql(
        log_db,
        ("UPDATE records SET idx = -1 WHERE idx = 5", ()),
        ("UPDATE records SET idx = 5 WHERE idx = 9", ()),
        ("UPDATE records SET idx = 9 WHERE idx = -1", ()),
    )
    assert _first(log_db, keypair[1]) == (5, "index-mismatch")


def test_truncated_log(log_db: Path, keypair: tuple[Path, Path]) -> None:
    sql(log_db, ("DELETE FROM records WHERE idx >= 33", ()))
    assert _first(log_db, keypair[1]) == (33, "truncated")


def test_truncated_log_and_checkpoints_caught_by_published_copy(
    tmp_path: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    from charter.audit.publish import FileCheckpointSink, read_published

    db, pub_file = tmp_path / "p.db", tmp_path / "published.jsonl"
    with AuditLog(
        SQLiteStore(db), signing_key, checkpoint_every=10, publishers=[FileCheckpointSink(pub_file)]
    ) as log:
        for i in range(25):
            log.append(decision(i), context())
    notes = list(read_published(pub_file))
    assert len(notes) == 3  # sizes 10, 20 and the one at close
    sql(db, ("DELETE FROM records WHERE idx >= 15", ()), ("DELETE FROM checkpoints WHERE size > 10", ()))
    assert verify_log(str(db), load_public_key(keypair[1]), workers=1).ok  # the database alone looks fine
    assert _first(db, keypair[1], published=notes) == (15, "truncated")


def test_replaced_checkpoint(log_db: Path, keypair: tuple[Path, Path]) -> None:
    c = sqlite3.connect(log_db)
    note = c.execute("SELECT note FROM checkpoints WHERE size = 20").fetchone()[0]
    c.close()
    mallory = Ed25519PrivateKey.generate()
    origin = note.split("\n", 1)[0]
    forged = sign_checkpoint(Checkpoint(origin, 20, b"\x07" * 32), mallory)
    sql(log_db, ("UPDATE checkpoints SET note = ? WHERE size = 20", (forged,)))
    assert _first(log_db, keypair[1]) == (19, "checkpoint-signature")


def test_rewritten_checkpoint_signed_by_the_operator(
    log_db: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    c = sqlite3.connect(log_db)
    note = c.execute("SELECT note FROM checkpoints WHERE size = 30").fetchone()[0]
    c.close()
    forged = sign_checkpoint(Checkpoint(note.split("\n", 1)[0], 30, b"\x07" * 32), signing_key)
    sql(log_db, ("UPDATE checkpoints SET note = ? WHERE size = 30", (forged,)))
    assert _first(log_db, keypair[1]) == (29, "checkpoint-root")


def test_wrong_public_key(log_db: Path, tmp_path: Path) -> None:
    from charter.audit.crypto import generate_keypair

    _, other = generate_keypair(tmp_path / "other")
    assert _first(log_db, other) == (0, "signature")


def test_cli_names_first_bad_index(log_db: Path, keypair: tuple[Path, Path], tmp_path: Path) -> None:
    good = CliRunner().invoke(app, ["audit", "verify", "--db", str(log_db), "--public-key", str(keypair[1])])
    assert good.exit_code == 0, good.output
    assert f"OK: {N} records" in good.output
    bad_db = tmp_path / "bad.db"
    shutil.copy(log_db, bad_db)
    sql(bad_db, ("DELETE FROM records WHERE idx = 7", ()))
    r = CliRunner().invoke(app, ["audit", "verify", "--db", str(bad_db), "--public-key", str(keypair[1])])
    assert r.exit_code == 1
    assert "first bad index 7 (missing)" in r.output


def test_append_async_batches_concurrent_reviews(
    tmp_path: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    import asyncio

    db = tmp_path / "async.db"
    log = AuditLog(SQLiteStore(db), signing_key)

    async def main() -> list[str]:
        return list(await asyncio.gather(*(log.append_async(decision(i), context()) for i in range(200))))

    ids = asyncio.run(main())
    assert len(set(ids)) == 200
    assert log.metrics.batches < 200  # group commit shared between concurrent reviews
    log.close()
    with pytest.raises(Exception, match="closed"):
        log.append(decision(0), context())
    assert verify_log(str(db), load_public_key(keypair[1]), workers=1).ok


def test_checkpoint_every_t_seconds_and_object_store_interface(
    tmp_path: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    import time

    from charter.audit.crypto import open_checkpoint
    from charter.audit.publish import ObjectStoreCheckpointSink

    bucket: dict[str, bytes] = {}

    def put(key: str, data: bytes) -> None:  # an object-locked bucket: no overwrites
        if key in bucket:
            raise PermissionError(f"{key} is retained")
        bucket[key] = data

    db = tmp_path / "t.db"
    log = AuditLog(
        SQLiteStore(db), signing_key, checkpoint_every=1000, checkpoint_seconds=0.2,
        publishers=[ObjectStoreCheckpointSink(put)],
    )  # fmt: skip
    for i in range(3):
        log.append(decision(i), context())
    deadline = time.monotonic() + 5
    while not bucket and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(bucket) == ["checkpoints/00000000000000000003.checkpoint"]
    assert SQLiteStore(db).checkpoints()[-1][0] == 3  # written by the timer, before close
    log.close()
    note = bucket["checkpoints/00000000000000000003.checkpoint"].decode()
    assert open_checkpoint(note, "charter.local/audit", load_public_key(keypair[1])).size == 3
