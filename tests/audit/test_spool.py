"""The audit spool and the spooled log: durable before the answer, signed by the applier, and
neither lost nor duplicated across crashes of either process; corruption is named, never skipped."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from charter.audit import open_sink
from charter.audit.crypto import load_private_key, load_public_key
from charter.audit.record import prepare, prepared, statement
from charter.audit.sink import AuditUnavailable
from charter.audit.spool import HEADER_SIZE, SPARE, Spool, SpoolError, position, prepare_spare, read, segments
from charter.audit.spooled import SpooledLog, position_key
from charter.audit.store import open_store
from charter.audit.verify import verify_log

from tests.audit.helpers import context, decision, kill_after

CHILD = Path(__file__).with_name("writer_child.py")


def _log(tmp_path: Path, keypair: tuple[Path, Path], **kw: object) -> SpooledLog:
    return SpooledLog(
        open_store(str(tmp_path / "audit.db")), load_private_key(keypair[0]), tmp_path / "spool", **kw
    )  # type: ignore[arg-type]


def _ids(db: Path) -> list[str]:
    c = sqlite3.connect(db)
    try:
        return [r[0] for r in c.execute("SELECT record_id FROM records ORDER BY idx")]
    finally:
        c.close()


def _verified(db: Path, pub: Path) -> int:
    rep = verify_log(str(db), load_public_key(pub), workers=1)
    assert rep.ok, rep.failures[:3]
    return rep.tree_size


# ------------------------------------------------------------------ the spool file format


def test_entries_read_back_in_order_across_segments(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp", segment_bytes=4096)
    payloads = [json.dumps({"i": i, "pad": "x" * (i * 37 % 900)}).encode() for i in range(60)]
    ends = [s.write([p]) for p in payloads]
    end = s.sync()
    assert ends == sorted(ends) and end == ends[-1]
    assert len(segments(s.dir)) > 3  # rolled over several times
    got = list(read(s.dir, 0, end))
    assert [p for _, p in got] == payloads
    assert [pos for pos, _ in got] == ends
    # from the middle: exactly the entries after that position
    assert [p for _, p in read(s.dir, ends[9], end)] == payloads[10:]
    s.close()


def test_a_spare_segment_is_used_and_release_keeps_what_is_not_durable(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp", segment_bytes=4096)
    assert prepare_spare(s.dir, 4096) and not prepare_spare(s.dir, 4096)
    ends = [s.write([b"y" * 1000]) for _ in range(12)]
    s.sync()
    assert not (s.dir / SPARE).exists()  # consumed by the first roll-over
    seqs = segments(s.dir)
    assert seqs == list(range(1, seqs[-1] + 1))
    durable = ends[5]
    gone = s.release(durable)
    assert (
        gone == (durable >> 32) - 1 and segments(s.dir)[0] == durable >> 32
    )  # below the durable segment only
    assert [p for _, p in read(s.dir, durable, s.end)] == [b"y" * 1000] * 6
    s.close()


def test_a_torn_tail_is_dropped_and_zeroed_and_writing_resumes_after_the_last_intact_entry(
    tmp_path: Path,
) -> None:
    s = Spool(tmp_path / "sp")
    for i in range(5):
        s.write([b"entry-%d" % i])
    end = s.sync()
    s.close()
    seg = tmp_path / "sp" / "000000000001.seg"
    with open(seg, "r+b") as f:  # a crash after part of a write, before its fdatasync
        f.seek(end & 0xFFFFFFFF)
        f.write(b"CSP1\x40\x00\x00\x00garbage-that-never-got-its-crc")
    s = Spool(tmp_path / "sp")
    assert s.end == end
    with open(seg, "rb") as f:
        f.seek(end & 0xFFFFFFFF)
        assert f.read(64) == bytes(64)
    s.write([b"after"])
    new_end = s.sync()
    assert [p for _, p in read(s.dir, 0, new_end)] == [*(b"entry-%d" % i for i in range(5)), b"after"]
    s.close()


def test_a_corrupt_entry_is_named_with_its_file_and_offset(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp")
    ends = [s.write([b"payload-%03d" % i]) for i in range(10)]
    end = s.sync()
    s.close()
    seg = tmp_path / "sp" / "000000000001.seg"
    third = ends[2] & 0xFFFFFFFF
    data = bytearray(seg.read_bytes())
    data[third + HEADER_SIZE + 3] ^= 0x01  # a flipped bit in the fourth entry's payload
    seg.write_bytes(bytes(data))
    it = read(tmp_path / "sp", 0, end)
    assert [next(it)[1] for _ in range(3)] == [b"payload-000", b"payload-001", b"payload-002"]
    with pytest.raises(SpoolError, match=rf"000000000001\.seg: corrupt entry at offset {third} "):
        next(it)


def test_one_spool_has_one_writer(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp")
    with pytest.raises(SpoolError, match="in use by another charter process"):
        Spool(tmp_path / "sp")
    s.close()
    Spool(tmp_path / "sp").close()


# ------------------------------------------------------------------ statements through JSON


def test_a_spooled_statement_becomes_the_record_prepare_builds() -> None:
    ctx = context()
    for i, d in enumerate([decision(1), decision(2, deny=True), decision(3, exception=True, user="ünï")]):
        t = f"2026-11-23T10:00:0{i}.000000Z"
        st = statement(d, ctx, time=t)
        via_json = prepared(json.loads(json.dumps(st, separators=(",", ":"))))
        direct = prepare(d, ctx, time=t)
        via_json.record_id = direct.record_id = "id"
        assert via_json.template == direct.template.replace(
            direct.template[direct.template.index(b'"decisionId":') :].split(b",", 1)[0],
            via_json.template[via_json.template.index(b'"decisionId":') :].split(b",", 1)[0],
        )
        assert (via_json.policies, via_json.datasets, via_json.models, via_json.decision, via_json.user) == (
            direct.policies, direct.datasets, direct.models, direct.decision, direct.user,
        )  # fmt: skip


def test_a_statement_with_numbers_beyond_rfc_8785_still_round_trips() -> None:
    d = decision(4)
    d.workload["accelerators"] = {"count": 2**60, "total": {"nvidia.com/gpu": 2**60}}
    st = json.loads(json.dumps(statement(d, context())))
    p = prepared(st)
    assert str(2**60).encode() in p.template and p.payload(7).count(b'"logIndex":7') == 1


# ------------------------------------------------------------------ the spooled log


def test_appends_are_signed_into_a_log_that_verifies(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    log = _log(tmp_path, keypair, checkpoint_every=25)
    ids = [log.append(decision(i, deny=i % 3 == 0), context()) for i in range(120)]
    assert log.flush(30)
    log.close()
    assert _ids(tmp_path / "audit.db") == ids
    assert _verified(tmp_path / "audit.db", keypair[1]) == 120
    store = open_store(str(tmp_path / "audit.db"))
    assert int(store.meta()[position_key(log.spool.id)]) == log.spool.synced
    assert store.checkpoints()[-1][0] == 120


def test_concurrent_async_appends_share_one_fdatasync(
    tmp_path: Path, keypair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _log(tmp_path, keypair)
    calls = []
    real = os.fdatasync

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr("charter.audit.spool.os.fdatasync", counted)

    async def main() -> list[str]:
        return await asyncio.gather(*(log.append_async(decision(i), context()) for i in range(32)))

    ids = asyncio.run(main())
    assert len(calls) == 1  # the 32 reviews of one loop turn: one durable write
    monkeypatch.undo()
    log.close()
    assert sorted(_ids(tmp_path / "audit.db")) == sorted(ids)


def test_reopening_applies_what_an_earlier_run_left_in_the_spool(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    log = _log(tmp_path, keypair)
    os.kill(log._applier.proc.pid, signal.SIGSTOP)  # the applier makes no progress
    try:
        ids = [log.append(decision(i), context()) for i in range(40)]
    finally:
        os.kill(log._applier.proc.pid, signal.SIGKILL)
    log._applier.proc.wait()
    log.spool.close()  # this run ends without applying anything: the entries are only spooled
    assert _ids(tmp_path / "audit.db") == []
    again = _log(tmp_path, keypair)
    again.close()
    assert _ids(tmp_path / "audit.db") == ids
    assert _verified(tmp_path / "audit.db", keypair[1]) == 40


def test_a_dead_applier_is_restarted_and_nothing_is_lost_or_doubled(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    log = _log(tmp_path, keypair)
    ids = [log.append(decision(i), context()) for i in range(30)]
    first = log._applier.proc.pid
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while log._applier.proc.pid == first and time.monotonic() < deadline:
        ids.append(log.append(decision(len(ids)), context()))  # still durable in the spool meanwhile
        time.sleep(0.05)
    assert log._applier.proc.pid != first, "the applier was not restarted"
    ids += [log.append(decision(1000 + i), context()) for i in range(30)]
    log.close()
    stored = _ids(tmp_path / "audit.db")
    assert sorted(stored) == sorted(ids) and len(set(stored)) == len(stored)
    assert _verified(tmp_path / "audit.db", keypair[1]) == len(ids)


def test_a_corrupt_spool_entry_stops_the_applier_there(
    tmp_path: Path, keypair: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    log = _log(tmp_path, keypair)
    os.kill(log._applier.proc.pid, signal.SIGSTOP)
    ids = [log.append(decision(i), context()) for i in range(6)]
    seg = tmp_path / "spool" / "000000000001.seg"
    data = bytearray(seg.read_bytes())
    fourth = data.index(ids[3].encode())  # inside the fourth statement
    data[fourth] ^= 0x20
    seg.write_bytes(bytes(data))
    os.kill(log._applier.proc.pid, signal.SIGCONT)
    with caplog.at_level(logging.ERROR, logger="charter.audit"):
        log.close()
    assert _ids(tmp_path / "audit.db") == ids[:3]  # applied up to the corrupt entry, never past it
    assert any(
        "corrupt entry at offset" in r.getMessage() and "000000000001.seg" in r.getMessage()
        for r in caplog.records
    )
    assert any("short of the end" in r.getMessage() for r in caplog.records)


def test_appends_wait_for_a_lagging_applier_then_fail(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    log = _log(tmp_path, keypair, max_lag=5_000, timeout=1.0)
    os.kill(log._applier.proc.pid, signal.SIGSTOP)

    async def burst() -> list[str | BaseException]:
        return await asyncio.gather(
            *(log.append_async(decision(i), context()) for i in range(12)), return_exceptions=True
        )

    try:
        t0 = time.monotonic()
        out = asyncio.run(burst())
        waited = time.monotonic() - t0
    finally:
        os.kill(log._applier.proc.pid, signal.SIGCONT)
    failed = [r for r in out if isinstance(r, BaseException)]
    assert failed and all(isinstance(e, AuditUnavailable) and "behind the spool" in str(e) for e in failed)
    assert waited >= 1.0  # they waited for the applier before giving up
    assert len(failed) < 12  # the ones within the bound were answered
    log.close()
    assert len(_ids(tmp_path / "audit.db")) == 12 - len(failed)


def test_kill_9_of_the_webhook_process_mid_stream(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    db = tmp_path / "audit.db"
    key, pub = keypair
    spool = f"spool={tmp_path / 'spool'}"
    p = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(key), "100000", "4", "40", spool],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    returned = kill_after(p, 400)
    assert p.returncode == -signal.SIGKILL
    r = subprocess.run(
        [sys.executable, str(CHILD), str(db), str(key), "25", "2", "40", spool],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    returned.extend(r.stdout.split())
    stored = _ids(db)
    missing = [x for x in returned if x not in set(stored)]
    assert not missing, f"{len(missing)} acknowledged records lost"
    assert len(set(stored)) == len(stored), "a record was applied twice"
    assert _verified(db, pub) == len(stored) >= len(returned)


def test_open_sink_puts_the_spool_beside_a_sqlite_log_and_none_for_postgresql(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    from charter.audit import spool_path
    from charter.audit.store import PostgresStore

    sink = open_sink(str(tmp_path / "a.db"), str(keypair[0]), spool="auto")
    assert isinstance(sink, SpooledLog) and sink.spool.dir == tmp_path / "a.db.spool"
    sink.close()
    assert spool_path(PostgresStore("postgresql://x/y"), "auto") is None
    assert spool_path(PostgresStore("postgresql://x/y"), str(tmp_path / "s")) == tmp_path / "s"
    assert not isinstance(open_sink(str(tmp_path / "b.db"), str(keypair[0]), spool="off"), SpooledLog)
    assert position(1, 0) == 1 << 32


def test_two_appliers_never_apply_an_entry_twice(tmp_path: Path, signing_key: object) -> None:
    """An applier of an earlier run may still be finishing when the next run's starts: each commit
    is conditional on the position it started from, so the second finds it moved and skips."""
    from charter.audit.log import _Committer
    from charter.audit.spooled import _apply

    s = Spool(tmp_path / "sp")
    ctx = context()
    for i in range(5):
        s.write([json.dumps(statement(decision(i), ctx)).encode()])
    end = s.sync()
    store = open_store(str(tmp_path / "audit.db"))
    store.init({"origin": "o"})
    key = position_key(s.id)
    first = _Committer(store, signing_key, "o", 1000, 10.0)  # type: ignore[arg-type]
    second = _Committer(open_store(str(tmp_path / "audit.db")), signing_key, "o", 1000, 10.0)  # type: ignore[arg-type]
    assert _apply(first, str(s.dir), key, 0, end, [], []) == end
    assert _apply(second, str(s.dir), key, 0, end, [], []) == end  # moved: nothing inserted
    assert len(_ids(tmp_path / "audit.db")) == 5
    s.close()


def test_a_failed_roll_over_leaves_the_spool_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import charter.audit.spool as spool_module

    s = Spool(tmp_path / "sp", segment_bytes=4096)
    first = [s.write([b"a" * 1500]) for _ in range(2)]
    real = spool_module._zero_filled

    def full(path: Path, size: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_module, "_zero_filled", full)
    with pytest.raises(SpoolError, match="No space left"):
        s.write([b"b" * 1500])  # needs a new segment, which cannot be made
    monkeypatch.setattr(spool_module, "_zero_filled", real)
    after = [s.write([b"c" * 1500]) for _ in range(3)]
    end = s.sync()
    assert segments(s.dir) == [1, 2, 3]
    assert [p[:1] for _, p in read(s.dir, 0, end)] == [b"a", b"a", b"c", b"c", b"c"]
    assert [pos for pos, _ in read(s.dir, 0, end)] == first + after
    s.close()


def test_a_failed_fdatasync_is_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import charter.audit.spool as spool_module

    s = Spool(tmp_path / "sp")
    s.write([b"one"])
    s.sync()
    s.write([b"two"])

    def eio(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(spool_module.os, "fdatasync", eio)
    with pytest.raises(SpoolError, match=r"fdatasync: .*Input/output error"):
        s.sync()
    monkeypatch.undo()
    # the kernel may have dropped the pages it could not write: nothing may follow them
    with pytest.raises(SpoolError, match="Input/output error"):
        s.write([b"three"])
    with pytest.raises(SpoolError, match="Input/output error"):
        s.sync()
    s._close_fds()


def test_text_the_log_cannot_hold_is_refused_before_the_answer(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    log = _log(tmp_path, keypair)
    with pytest.raises(AuditUnavailable, match="could not be built"):
        log.append(decision(1, user="a\ud800"), context())
    rid = log.append(decision(2), context())
    log.close()
    assert _ids(tmp_path / "audit.db") == [rid]


def test_an_entry_that_is_no_statement_is_set_aside_and_reported(
    tmp_path: Path, keypair: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    s = Spool(tmp_path / "spool")
    ctx = context()
    good = [statement(decision(i), ctx) for i in range(3)]
    s.write([json.dumps(good[0]).encode()])
    s.write([b'{"not": "a statement"}'])
    s.write([json.dumps(g).encode() for g in good[1:]])
    s.sync()
    s.close()
    with caplog.at_level(logging.ERROR, logger="charter.audit"):
        log = _log(tmp_path, keypair)
        log.close()
    assert _ids(tmp_path / "audit.db") == [g["predicate"]["decisionId"] for g in good]
    aside = list((tmp_path / "spool" / "rejected").iterdir())
    assert [p.read_bytes() for p in aside] == [b'{"not": "a statement"}']
    assert any("is no decision statement" in r.getMessage() for r in caplog.records)


def test_checkpoints_are_published_once_durable_and_the_last_at_close(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    class Collect:
        def __init__(self) -> None:
            self.notes: list[str] = []

        def publish(self, note: str) -> None:
            self.notes.append(note)

    pub = Collect()
    log = _log(tmp_path, keypair, checkpoint_every=10, publishers=[pub])
    for i in range(55):
        log.append(decision(i), context())
    log.close()
    store = open_store(str(tmp_path / "audit.db"))
    stored = [note for _, note in store.checkpoints()]
    assert pub.notes and pub.notes == stored  # every checkpoint written, in order, none twice
    assert stored[-1].split("\n")[1] == "55"


def test_on_the_event_loop_a_dead_applier_is_restarted_while_appends_go_on(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    log = _log(tmp_path, keypair)

    async def main() -> tuple[list[str], int]:
        ids = [await log.append_async(decision(i), context()) for i in range(10)]
        first = log._applier.proc.pid
        os.kill(first, signal.SIGKILL)
        during = 0
        for i in range(3000):  # bounded: ~30 s
            if log._applier.proc.pid != first and not log._applier.dead:
                break
            ids.append(await log.append_async(decision(100 + i), context()))
            during += log._applier._restarting
            await asyncio.sleep(0.01)
        assert log._applier.proc.pid != first, "the applier was not restarted"
        return ids, during

    ids, during = asyncio.run(main())
    assert during > 0  # appends were answered while the new applier was starting
    log.close()
    stored = _ids(tmp_path / "audit.db")
    assert sorted(stored) == sorted(ids) and len(set(stored)) == len(stored)
