"""Canonical JSON, DSSE and signed notes: the negative cases matter most."""

from __future__ import annotations

import base64
import json

import pytest
import rfc8785
from charter.audit.crypto import (
    Checkpoint,
    EnvelopeError,
    NoteError,
    canonical_json,
    cosign,
    json_safe,
    keyid,
    open_checkpoint,
    parse_vkey,
    sign_checkpoint,
    sign_envelope,
    verify_cosignature,
    verify_envelope,
    vkey,
)
from charter.audit.record import object_digest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fast_canonical_path_equals_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:
        return  # e.g. lone surrogates: rfc8785 refuses, and so must we
    assert canonical_json(value) == expected


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(), st.floats(allow_nan=False, allow_infinity=False), max_size=3))
def test_floats_go_through_rfc8785(value: dict[str, float]) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_big_numbers_are_carried_as_strings() -> None:
    obj = {"a": 2**64, "b": float("nan"), "c": [1, 2**53 + 1]}
    assert json_safe(obj) == {"a": str(2**64), "b": "nan", "c": [1, str(2**53 + 1)]}
    assert len(object_digest(obj)) == 64
    assert len(object_digest({"s": "\ud800"})) == 64  # a lone surrogate never stops a record


KEY = Ed25519PrivateKey.generate()
KID = keyid(KEY.public_key())


def test_envelope_roundtrip_and_negatives() -> None:
    env = sign_envelope(KEY, KID, b'{"x":1}')
    assert verify_envelope(env, KEY.public_key()) == b'{"x":1}'
    other = Ed25519PrivateKey.generate()
    with pytest.raises(EnvelopeError, match="signature"):
        verify_envelope(env, other.public_key())
    d = json.loads(env)
    d["payloadType"] = "text/plain"
    with pytest.raises(EnvelopeError) as e:
        verify_envelope(json.dumps(d).encode(), KEY.public_key())
    assert e.value.kind == "payload-type"
    for bad in (
        b"",
        b"[]",
        b"{}",
        b'{"payload":"!!","payloadType":"application/vnd.in-toto+json","signatures":[]}',
    ):
        with pytest.raises(EnvelopeError) as e:
            verify_envelope(bad, KEY.public_key())
        assert e.value.kind == "malformed"
    # payload edited, signature kept
    d = json.loads(env)
    d["payload"] = base64.b64encode(b'{"x":2}').decode()
    with pytest.raises(EnvelopeError, match="signature"):
        verify_envelope(json.dumps(d).encode(), KEY.public_key())
    # a signature claiming another key id is not even tried
    d = json.loads(env)
    d["signatures"][0]["keyid"] = "00" * 32
    with pytest.raises(EnvelopeError):
        verify_envelope(json.dumps(d).encode(), KEY.public_key())


def test_checkpoint_note_roundtrip_and_negatives() -> None:
    cp = Checkpoint("example.test/log", 5, b"\x01" * 32)
    note = sign_checkpoint(cp, KEY)
    assert open_checkpoint(note, "example.test/log", KEY.public_key()) == cp
    name, pub = parse_vkey(vkey("example.test/log", KEY.public_key()))
    assert open_checkpoint(note, name, pub) == cp
    with pytest.raises(NoteError):
        open_checkpoint(note.replace("\n5\n", "\n6\n"), name, pub)
    with pytest.raises(NoteError):
        open_checkpoint(note, name, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(NoteError):
        open_checkpoint(note.rstrip("\n"), name, pub)
    with pytest.raises(NoteError):
        open_checkpoint(cp.body(), name, pub)
    # an extra signature by an unknown key is ignored
    extra = cosign(note, "witness.test", Ed25519PrivateKey.generate(), 1700000000)
    assert open_checkpoint(extra, name, pub) == cp


def test_cosignature() -> None:
    w = Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint("example.test/log", 5, b"\x01" * 32), KEY)
    signed = cosign(note, "witness.test", w, 1700000000)
    assert verify_cosignature(signed, "witness.test", w.public_key()) == 1700000000
    with pytest.raises(NoteError):
        verify_cosignature(signed, "witness.test", KEY.public_key())
    with pytest.raises(NoteError):
        verify_cosignature(note, "witness.test", w.public_key())
    with pytest.raises(NoteError):
        verify_cosignature(signed.replace("\n5\n", "\n6\n"), "witness.test", w.public_key())


def test_signed_index_fast_path_and_full_parse_agree() -> None:
    from charter.audit.verify import _signed_index, check_record

    def env_for(statement: dict[str, object]) -> bytes:
        return sign_envelope(KEY, KID, canonical_json(statement))

    base = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://charter.dev/decision/v1",
        "subject": [],
    }
    fast = {**base, "predicate": {"decisionId": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "logIndex": 7,
                                  "policySetDigest": "sha256:x"}}  # fmt: skip
    slow = {**base, "predicate": {"logIndex": 7, "note": '"logIndex":8'}}
    assert _signed_index(canonical_json(fast)) == 7
    assert _signed_index(canonical_json(slow)) is None
    for stmt in (fast, slow):
        assert check_record(7, env_for(stmt), KEY.public_key()) is None
        f = check_record(8, env_for(stmt), KEY.public_key())
        assert f is not None and f.kind == "index-mismatch"
    other = {**base, "predicateType": "https://example.test/other", "predicate": {"logIndex": 7}}
    f = check_record(7, env_for(other), KEY.public_key())
    assert f is not None and f.kind == "payload"


def test_record_ids_differ_across_fork() -> None:
    import os

    from charter.audit import record

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(w, str(record._ids.getrandbits(128)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = int(os.read(r, 100))
    assert child != record._ids.getrandbits(128)


def test_record_ids_are_time_ordered_uuid7() -> None:
    import time
    import uuid

    from charter.audit.record import new_record_id

    before = time.time_ns() // 1_000_000
    ids = [new_record_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for x in ids:
        u = uuid.UUID(x)
        assert str(u) == x and u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after
    assert [x[:13] for x in ids] == sorted(x[:13] for x in ids)  # ms prefix never goes back
