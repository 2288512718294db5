"""Verification by worker processes that each read their own ranges of the store: the ranges,
the incremental tree, the streamed reads, and tamperings named by index whichever worker sees them."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest
from charter.audit.crypto import load_public_key
from charter.audit.log import AuditLog
from charter.audit.merkle import Tree, leaf_hash, root, verify_consistency
from charter.audit.store import SQLiteStore
from charter.audit.verify import _ranges, verify_log
from charter.audit.verify import _verify_range as _real_verify_range
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import context, decision, mutate, sql

N = 60


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from charter.audit.crypto import generate_keypair, load_private_key

    d = tmp_path_factory.mktemp("par")
    key, pub = generate_keypair(d / "keys")
    with AuditLog(SQLiteStore(d / "audit.db"), load_private_key(key), checkpoint_every=8) as log:
        for i in range(N):
            log.append(decision(i, deny=i % 3 == 0), context())
    return d / "audit.db", pub


@pytest.fixture
def db(clean_db: tuple[Path, Path], tmp_path: Path) -> Path:
    (tmp_path / "audit.db").write_bytes(clean_db[0].read_bytes())
    return tmp_path / "audit.db"


def _envelope(db: Path, idx: int) -> bytearray:
    c = sqlite3.connect(db)
    env = bytearray(c.execute("SELECT envelope FROM records WHERE idx = ?", (idx,)).fetchone()[0])
    c.close()
    return env


def _failures(db: Path, pub: Path, workers: int, chunk: int | None) -> list[tuple[int, str]]:
    rep = verify_log(str(db), load_public_key(pub), workers=workers, chunk=chunk)
    return sorted((f.index, f.kind) for f in rep.failures)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200_000), st.integers(1, 8), st.none() | st.integers(1, 5000))
def test_ranges_cover_every_index_once_in_order(size: int, workers: int, chunk: int | None) -> None:
    ranges = _ranges(size, workers, chunk)
    assert [i for lo, hi in ranges for i in (lo, hi)][1:-1:2] == [lo for lo, _ in ranges][1:]  # contiguous
    assert (ranges[0][0], ranges[-1][1]) == (0, size) if size else ranges == []
    assert all(lo < hi for lo, hi in ranges)
    if chunk:
        assert all(hi - lo == chunk for lo, hi in ranges[:-1])
    else:  # guided: never growing, never below the minimum but for the last
        steps = [hi - lo for lo, hi in ranges]
        assert steps == sorted(steps, reverse=True) or steps[:-1] == sorted(steps[:-1], reverse=True)
        assert all(s >= min(500, size) for s in steps[:-1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=8))
def test_tree_grown_in_pieces_equals_the_tree_built_at_once(pieces: list[int]) -> None:
    rnd = random.Random(len(pieces))
    leaves = [leaf_hash(rnd.randbytes(8)) for _ in range(sum(pieces))]
    t = Tree()
    at = 0
    for p in pieces:
        t.extend(leaves[at : at + p])
        at += p
        assert t.root() == root(leaves[:at])
    whole = Tree(leaves)
    assert t.levels == whole.levels
    for old in range(len(leaves) + 1):
        assert t.root(old) == root(leaves[:old])
        proof = t.consistency_proof(old, len(leaves))
        assert verify_consistency(old, len(leaves), t.root(old), t.root(), proof)


def test_streamed_rows_equal_the_chunked_rows(clean_db: tuple[Path, Path]) -> None:
    store = SQLiteStore(clean_db[0])
    for lo, hi in ((0, N), (5, 17), (59, 60), (30, 30), (50, 1000)):
        for size in (1, 3, 64):
            batches = list(store.scan_batches(lo, hi, size))
            assert all(0 < len(b) <= size for b in batches)
            assert [r for b in batches for r in b] == list(store.iter_rows(lo, hi, chunk=4))


def test_clean_log_any_split(clean_db: tuple[Path, Path]) -> None:
    db, pub = clean_db
    roots = set()
    for workers, chunk in ((1, None), (2, None), (2, 1), (2, 7), (3, 8), (2, 59), (2, 1000)):
        rep = verify_log(str(db), load_public_key(pub), workers=workers, chunk=chunk)
        assert rep.ok, rep.failures
        assert (rep.records, rep.tree_size, rep.checkpoints) == (N, N, 8)
        roots.add(rep.root)
    assert len(roots) == 1


@pytest.mark.parametrize("chunk", [None, 7, 13])
def test_each_worker_names_its_bad_indexes(db: Path, clean_db: tuple[Path, Path], chunk: int | None) -> None:
    """Flipped bits, swapped rows and a bad stored leaf hash in several ranges: every bad index is
    named, with its kind, as the one-process check names it; the first is the smallest."""
    pub = clean_db[1]
    flipped = {}
    for idx, pos in ((3, 40), (44, 100)):
        env = _envelope(db, idx)
        env[pos] ^= 0x04
        flipped[idx] = bytes(env)
    sql(
        db,
        *[("UPDATE records SET envelope = ? WHERE idx = ?", (e, i)) for i, e in flipped.items()],
        ("UPDATE records SET idx = -1 WHERE idx = 20", ()),
        ("UPDATE records SET idx = 20 WHERE idx = 21", ()),
        ("UPDATE records SET idx = 21 WHERE idx = -1", ()),
        ("UPDATE records SET leaf_hash = ? WHERE idx = 33", (b"\x00" * 32,)),
    )
    got = _failures(db, pub, 2, chunk)
    assert got == _failures(db, pub, 1, None)
    kinds = dict(got)
    assert kinds[3] in {"signature", "malformed"} and kinds[44] in {"signature", "malformed"}
    assert (kinds[20], kinds[21], kinds[33]) == ("index-mismatch", "index-mismatch", "leaf-hash")
    assert got[0][0] == 3


@pytest.mark.parametrize("gone", [0, 13, 14, 15, 59])
def test_missing_row_at_a_range_edge(db: Path, clean_db: tuple[Path, Path], gone: int) -> None:
    sql(db, ("DELETE FROM records WHERE idx = ?", (gone,)))
    for workers, chunk in ((2, 7), (2, 14), (1, None)):
        rep = verify_log(str(db), load_public_key(clean_db[1]), workers=workers, chunk=chunk)
        assert rep.first is not None
        if gone == N - 1:  # the last record: the log looks shorter than its last checkpoint
            assert (rep.first.index, rep.first.kind) == (gone, "truncated")
        else:
            assert (rep.first.index, rep.first.kind) == (gone, "missing")
        assert rep.tree_size == gone


def test_worker_reads_only_its_range(clean_db: tuple[Path, Path]) -> None:
    from charter.audit.crypto import raw_public
    from charter.audit.verify import _verify_range

    db, pub = clean_db
    lo, idxs, joined, failures = _verify_range(str(db), raw_public(load_public_key(pub)), 10, 17)
    envs = [env for _, env, _ in SQLiteStore(db).iter_rows(10, 17)]
    assert (lo, idxs, failures) == (10, None, [])
    assert joined == b"".join(leaf_hash(e) for e in envs)


def test_wrong_key_every_index(clean_db: tuple[Path, Path]) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    rep = verify_log(str(clean_db[0]), other, workers=2, chunk=9)
    assert [f.index for f in rep.failures if f.kind == "signature"] == list(range(N))


_ALT = [
    lambda e: e,
    lambda e: json.dumps(json.loads(e), indent=1).encode(),  # same content, another layout
    lambda e: json.dumps({**json.loads(e), "payloadType": "text/plain"}).encode(),
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 11),
            st.integers(0, 4000),
            st.integers(0, 7),
            st.sampled_from(["flip", "insert", "delete", "none"]),
            st.integers(0, len(_ALT) - 1),
            st.booleans(),
        ),
        max_size=6,
    )
)
def test_worker_verdicts_equal_the_full_check(
    clean_db: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, edits: list[tuple]
) -> None:
    """The worker decodes, verifies and checks records a batch at a time; each record's verdict
    is still `check_record`'s (full JSON parsing), then the stored leaf hash's."""
    from charter.audit import verify
    from charter.audit.crypto import key_ids, raw_public
    from charter.audit.verify import Failure, _verify_range, check_record

    db = tmp_path_factory.mktemp("edits") / "audit.db"
    db.write_bytes(clean_db[0].read_bytes())
    stmts = []
    for idx, pos, bit, op, alt, keep_leaf in edits:
        env = bytearray(_ALT[alt](bytes(_envelope(db, idx))))
        pos %= len(env)
        mutate(env, pos, bit, op)
        leaf = b"\x01" * 32 if not keep_leaf else leaf_hash(bytes(env))
        stmts.append(
            ("UPDATE records SET envelope = ?, leaf_hash = ? WHERE idx = ?", (bytes(env), leaf, idx))
        )
    sql(db, *stmts)
    pub = load_public_key(clean_db[1])
    expected = []
    for i, env, stored in SQLiteStore(db).iter_rows(0, 12):
        f = check_record(i, env, pub, key_ids(pub))
        if f is None and stored != leaf_hash(env):
            f = Failure(i, "leaf-hash", "stored leaf hash does not match the envelope")
        if f is not None:
            expected.append(f)
    old = verify._BATCH
    try:
        for batch in (1, 5, 64):
            verify._BATCH = batch
            assert _verify_range(str(db), raw_public(pub), 0, 12)[3] == expected
    finally:
        verify._BATCH = old


def _slow_range(url: str, pub_raw: bytes, lo: int, hi: int) -> object:
    import time

    time.sleep(0.1)
    return _real_verify_range(url, pub_raw, lo, hi)


def test_store_error_while_workers_run_stops_them(
    clean_db: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the parent (here: reading the checkpoints) is raised at once; the ranges not yet
    started are dropped rather than verified first (60 ranges of 0.1 s would take 3 s)."""
    import time

    from charter.audit import verify
    from charter.audit.store import StoreError

    def broken(self: SQLiteStore) -> list[tuple[int, str]]:
        raise StoreError("checkpoints unreadable")

    monkeypatch.setattr(SQLiteStore, "checkpoints", broken)
    monkeypatch.setattr(verify, "_verify_range", _slow_range)
    t0 = time.perf_counter()
    with pytest.raises(StoreError, match="unreadable"):
        verify_log(str(clean_db[0]), load_public_key(clean_db[1]), workers=2, chunk=1)
    assert time.perf_counter() - t0 < 1.5
