"""kill -9 a writer mid-stream: every record whose append returned survives, and the log verifies."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from charter.audit.crypto import load_public_key
from charter.audit.verify import verify_log

from tests.audit.helpers import kill_after

CHILD = Path(__file__).with_name("writer_child.py")


def test_kill_9_mid_stream(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    db = tmp_path / "audit.db"
    key, pub = keypair
    p = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(key), "100000", "4", "40"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    returned = kill_after(p, 600)
    assert p.returncode == -signal.SIGKILL

    # restart: a new writer picks up the tree where the store left it, appends, and closes cleanly
    r = subprocess.run(
        [sys.executable, str(CHILD), str(db), str(key), "25", "2", "40"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    returned.extend(r.stdout.split())

    c = sqlite3.connect(db)
    stored = {row[0] for row in c.execute("SELECT record_id FROM records")}
    c.close()
    missing = [x for x in returned if x not in stored]
    assert not missing, f"{len(missing)} acknowledged records lost"
    rep = verify_log(str(db), load_public_key(pub), workers=2)
    assert rep.ok, rep.failures[:5]
    assert rep.tree_size == len(stored) >= len(returned)
    assert rep.checkpoints >= 1


def test_several_processes_open_a_fresh_sqlite_log_at_once(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    db = tmp_path / "fresh.db"
    procs = [
        subprocess.Popen([sys.executable, str(CHILD), str(db), str(keypair[0]), "30", "2", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids += out.split()
    assert len(set(ids)) == 180
    rep = verify_log(str(db), load_public_key(keypair[1]), workers=2)
    assert rep.ok, rep.failures[:3]
    assert rep.tree_size == 180
