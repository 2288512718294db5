"""writer="process" and "auto": records built here, signed and committed by a writer process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from charter.audit.crypto import load_public_key
from charter.audit.log import AuditLog
from charter.audit.publish import FileCheckpointSink
from charter.audit.sink import AuditUnavailable
from charter.audit.store import SQLiteStore
from charter.audit.verify import verify_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.audit.helpers import context, decision, kill_after

CHILD = Path(__file__).with_name("writer_child.py")


def _burst(log: AuditLog, n: int, base: int = 0) -> list[str]:
    async def main() -> list[str]:
        return list(
            await asyncio.gather(*(log.append_async(decision(base + i), context()) for i in range(n)))
        )

    return asyncio.run(main())


def _until_started(log: AuditLog, base: int) -> list[str]:
    """Concurrent bursts until the writer thread has seen AUTO_BATCH appends waiting at once."""
    ids: list[str] = []
    for k in range(10):
        ids += _burst(log, 200, base + 1000 * k)
        if log._starter is not None:
            log._starter.join(30)
            return ids
    raise AssertionError("auto never started the writer process")


def _stored(db: Path) -> set[str]:
    c = sqlite3.connect(db)
    try:
        return {r[0] for r in c.execute("SELECT record_id FROM records")}
    finally:
        c.close()


def test_process_writer_appends_checkpoints_and_publishes(
    tmp_path: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    db, published = tmp_path / "p.db", tmp_path / "published.jsonl"
    log = AuditLog(
        SQLiteStore(db), signing_key, checkpoint_every=50, writer="process",
        publishers=[FileCheckpointSink(published)],
    )  # fmt: skip
    assert log._proc is not None
    ids = _burst(log, 300)
    ids += [log.append(decision(1000 + i), context()) for i in range(5)]  # a thread caller too
    log.close()
    assert len(set(ids)) == 305 and set(ids) == _stored(db)
    # a checkpoint is due every 50 records; one commit may cover more (one checkpoint each)
    assert log.metrics.appended == 305 and log.metrics.checkpoints >= 3
    notes = [json.loads(x)["note"] for x in published.read_text().splitlines()]
    assert len(notes) == log.metrics.checkpoints
    rep = verify_log(str(db), load_public_key(keypair[1]), published=notes)
    assert rep.ok, rep.failures[:3]
    assert rep.tree_size == 305
    assert SQLiteStore(db).checkpoints()[-1][0] == 305
    with pytest.raises(AuditUnavailable, match="closed"):
        log.append(decision(0), context())


def test_auto_writer_starts_the_process_under_load(
    tmp_path: Path, keypair: tuple[Path, Path], signing_key: Ed25519PrivateKey
) -> None:
    db = tmp_path / "a.db"
    log = AuditLog(SQLiteStore(db), signing_key)
    ids = [log.append(decision(i), context()) for i in range(3)]  # one at a time: stays a thread
    assert log._starter is None
    ids += _until_started(log, 100)
    assert log._proc is not None
    ids += _burst(log, 200, 100_000)  # through the process
    assert log._switched is log._proc
    log.close()
    assert len(set(ids)) == len(ids) and set(ids) == _stored(db)
    rep = verify_log(str(db), load_public_key(keypair[1]), workers=2)
    assert rep.ok and rep.tree_size == len(ids), rep.failures[:3]


def test_a_process_that_cannot_open_the_store(tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    store = SQLiteStore(tmp_path / "ok.db")
    (tmp_path / "adir").mkdir()
    store.url = f"sqlite:///{tmp_path / 'adir'}"  # what the process opens: a directory
    with pytest.raises(AuditUnavailable, match="did not start"):
        AuditLog(store, signing_key, writer="process")
    log = AuditLog(store, signing_key)  # auto: stays on the writer thread
    _until_started(log, 0)
    assert log._proc is None
    assert len(_burst(log, 50, 100_000)) == 50
    log.close()


def _gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as f:  # a zombie (not reaped yet) counts as gone
            if f.read().split(")")[1].split()[0] == "Z":
                return True
        time.sleep(0.05)
    return False


def _start(db: Path, key: Path, mode: str, count: int) -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(key), str(count), "4", "40", mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stderr is not None
    line = p.stderr.readline()
    assert line.startswith("writer-pid "), line
    return p, int(line.split()[1])


def test_kill_9_the_app_process_its_writer_process_exits(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    db = tmp_path / "audit.db"
    p, wpid = _start(db, keypair[0], "process", 100_000)
    assert wpid > 0
    returned = kill_after(p, 600)
    assert _gone(wpid), "the writer process outlived its parent"
    missing = [x for x in returned if x not in _stored(db)]
    assert not missing, f"{len(missing)} acknowledged records lost"
    rep = verify_log(str(db), load_public_key(keypair[1]), workers=2)
    assert rep.ok, rep.failures[:5]


def test_kill_9_the_writer_process_the_thread_takes_over(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    db = tmp_path / "audit.db"
    p, wpid = _start(db, keypair[0], "process", 300)
    assert p.stdout is not None
    returned: list[str] = []
    for line in p.stdout:
        returned.append(line.strip())
        if len(returned) >= 200:
            break
    os.kill(wpid, signal.SIGKILL)
    drain = threading.Thread(target=lambda: returned.extend(x.strip() for x in p.stdout or [] if x.strip()))
    drain.start()
    _, err = p.communicate(timeout=120)
    drain.join()
    assert p.returncode == 0, err
    assert len(returned) > 300, "appends did not go on after the writer process died"
    missing = [x for x in returned if x not in _stored(db)]
    assert not missing, f"{len(missing)} acknowledged records lost"
    rep = verify_log(str(db), load_public_key(keypair[1]), workers=2)
    assert rep.ok, rep.failures[:5]
    assert rep.checkpoints >= 1


def test_auto_stays_a_thread_on_one_cpu(tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        log = AuditLog(SQLiteStore(tmp_path / "one.db"), signing_key)
        for k in range(3):
            _burst(log, 200, 1000 * k)
        assert log._starter is None and log._proc is None
        log.close()
    finally:
        os.sched_setaffinity(0, cpus)
