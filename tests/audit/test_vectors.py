"""The shared interoperability vectors (shared/fixtures/provenance/README.md, rows 20-24)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from charter.audit.crypto import (
    EnvelopeError,
    NoteError,
    load_public_key,
    open_checkpoint,
    parse_vkey,
    spki_keyid,
    verify_envelope,
)
from charter.audit.merkle import leaf_hash, verify_consistency, verify_inclusion


def _cp(fixtures_dir: Path, size: int):  # type: ignore[no-untyped-def]
    name, pub = parse_vkey((fixtures_dir / "audit/log/vkey.txt").read_text())
    return open_checkpoint((fixtures_dir / f"audit/log/checkpoint-{size}.txt").read_text(), name, pub)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_20_records_verify(fixtures_dir: Path, n: int) -> None:
    pub = load_public_key(fixtures_dir / "keys/test-ed25519.pub")
    env = (fixtures_dir / f"audit/decision-000{n}.dsse.json").read_bytes()
    assert json.loads(env)["signatures"][0]["keyid"] == spki_keyid(pub)
    st = json.loads(verify_envelope(env, pub))
    assert st["_type"] == "https://in-toto.io/Statement/v1"


def test_21_tampered_record_rejected(fixtures_dir: Path) -> None:
    pub = load_public_key(fixtures_dir / "keys/test-ed25519.pub")
    with pytest.raises(EnvelopeError) as e:
        verify_envelope((fixtures_dir / "audit/decision-0002.tampered.dsse.json").read_bytes(), pub)
    assert e.value.kind == "signature"


def test_22_checkpoint_opens(fixtures_dir: Path) -> None:
    cp = _cp(fixtures_dir, 3)
    assert (cp.origin, cp.size) == ("audit.govengine.test/test-log", 3)


def test_22_edited_checkpoint_rejected(fixtures_dir: Path) -> None:
    name, pub = parse_vkey((fixtures_dir / "audit/log/vkey.txt").read_text())
    note = (fixtures_dir / "audit/log/checkpoint-3.txt").read_text().replace("\n3\n", "\n4\n", 1)
    with pytest.raises(NoteError):
        open_checkpoint(note, name, pub)
    other = load_public_key(
        fixtures_dir / "keys/test-ed25519.pub"
    )  # same key, wrong name: no signature found
    with pytest.raises(NoteError):
        open_checkpoint((fixtures_dir / "audit/log/checkpoint-3.txt").read_text(), "other.example/log", other)


def test_23_inclusion(fixtures_dir: Path) -> None:
    cp = _cp(fixtures_dir, 3)
    proof = json.loads((fixtures_dir / "audit/log/inclusion-proof-decision-0002.json").read_text())
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    good = leaf_hash((fixtures_dir / "audit/decision-0002.dsse.json").read_bytes())
    bad = leaf_hash((fixtures_dir / "audit/decision-0002.tampered.dsse.json").read_bytes())
    assert verify_inclusion(good, proof["leafIndex"], proof["treeSize"], hashes, cp.root)
    assert not verify_inclusion(bad, proof["leafIndex"], proof["treeSize"], hashes, cp.root)
    assert not verify_inclusion(good, 0, 3, hashes, cp.root)


def test_24_consistency(fixtures_dir: Path) -> None:
    a, b = _cp(fixtures_dir, 2), _cp(fixtures_dir, 3)
    proof = json.loads((fixtures_dir / "audit/log/consistency-proof-2-3.json").read_text())
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    assert verify_consistency(a.size, b.size, a.root, b.root, hashes)
    assert not verify_consistency(a.size, b.size, b.root, a.root, hashes)
    assert not verify_consistency(a.size, b.size, a.root, b.root, [])


def test_log_built_from_fixture_records_matches_checkpoints(fixtures_dir: Path) -> None:
    from charter.audit.merkle import root

    leaves = [leaf_hash((fixtures_dir / f"audit/decision-000{n}.dsse.json").read_bytes()) for n in (1, 2, 3)]
    assert root(leaves[:2]) == _cp(fixtures_dir, 2).root
    assert root(leaves) == _cp(fixtures_dir, 3).root
