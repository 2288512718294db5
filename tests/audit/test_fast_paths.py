"""The append path's shortcuts give exactly the bytes of their references (`rfc8785`, strftime)."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime

import rfc8785
from charter.audit.crypto import _plain_text, _plain_text_reference, canonical_json
from charter.audit.record import TIME_FORMAT, now_text, object_digest, prepare
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import context, decision, mutate

# Strings full of digits, dots, exponents, quotes and escapes: what the number check must see past.
tricky_text = st.text(alphabet=st.sampled_from('0123456789.eE-+"\\/ \n\tabc\u00e9\u2028'), max_size=40)
numbers = (
    st.integers(-(2**53) + 1, 2**53 - 1)
    | st.integers(-(10**15) + 1, 10**15 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    st.none() | st.booleans() | numbers | tricky_text | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(tricky_text | st.text(), c, max_size=4),
    max_leaves=25,
)


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(values)
def test_number_check_agrees_with_the_reference(value: object) -> None:
    text = _dumps(value)
    assert _plain_text(text) == _plain_text_reference(text)


@settings(max_examples=500, deadline=None)
@given(values)
def test_canonical_json_equals_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:
        return
    assert canonical_json(value) == expected


def test_number_check_edges() -> None:
    assert _plain_text('{"a":123456789012345,"b":"1.5e3","c":"1234567890123456"}')
    assert not _plain_text('{"a":1234567890123456}')
    assert not _plain_text('{"a":1.5}')
    assert not _plain_text('{"a":1e+20}')
    assert not _plain_text('{"a":"x\\"","b":2.0}')
    assert _plain_text('[-1,true,false,null,"\\\\",0]')


def test_statement_payload_is_rfc8785() -> None:
    ctx = context()
    for i, d in enumerate([decision(1), decision(2, deny=True), decision(3, exception=True)]):
        payload = prepare(d, ctx).payload(10**9 + i)
        assert payload == rfc8785.dumps(json.loads(payload))
        assert json.loads(payload)["predicate"]["logIndex"] == 10**9 + i
        subject = d.attributes.subject
        assert object_digest(subject) == hashlib.sha256(rfc8785.dumps(subject)).hexdigest()


def test_now_text_is_time_format() -> None:
    for _ in range(200):
        t = now_text()
        assert datetime.strptime(t, TIME_FORMAT).strftime(TIME_FORMAT) == t


keys = st.text(alphabet=st.sampled_from("aZ_/.-09\u00e9\u2028\ue000\U0001f600"), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(keys, st.text(max_size=5) | st.integers(-5, 5), max_size=5),
    st.dictionaries(keys, st.integers(0, 64) | st.text(max_size=3), max_size=4),
    st.booleans(),
)
def test_statement_is_rfc8785_for_any_annotations(
    annotations: dict[str, object], total: dict[str, object], deny: bool
) -> None:
    """Whatever the order and content of the annotations, accelerator totals and exceptions, the
    statement's bytes are rfc8785's."""
    d = decision(4, deny=deny, exception=not deny)
    for k, v in reversed(list(annotations.items())):
        d.outcomes[0].audit_annotations[k] = v  # type: ignore[assignment]
    d.workload.setdefault("accelerators", {})["total"] = dict(reversed(list(total.items())))
    payload = prepare(d, context()).payload(3)
    assert payload == rfc8785.dumps(json.loads(payload))


def test_outside_dicts_are_canonicalized() -> None:
    d = decision(5)
    d.outcomes[0].audit_annotations["z"] = {"b": 1, "a": 2}  # type: ignore[assignment]
    d.workload.setdefault("accelerators", {})["count"] = {"y": 1, "x": 2}
    payload = prepare(d, context()).payload(3)
    assert payload == rfc8785.dumps(json.loads(payload))


# ---------------------------------------------------------------- verification fast path

_KEY = Ed25519PrivateKey.generate()


@functools.cache
def _envelopes() -> tuple[bytes, ...]:
    from charter.audit.crypto import keyid, sign_envelope, spki_keyid

    p = prepare(decision(3), context())
    kid = keyid(_KEY.public_key())
    env = sign_envelope(_KEY, kid, p.payload(5))
    as_json = json.loads(env)
    return (
        env,
        sign_envelope(_KEY, spki_keyid(_KEY.public_key()), p.payload(5)),
        sign_envelope(_KEY, "", p.payload(5)),
        sign_envelope(_KEY, kid, p.payload(6)),  # signed for another index
        sign_envelope(_KEY, kid, b'{"other":"statement"}'),
        json.dumps(as_json, indent=1).encode(),  # same content, another layout
        json.dumps({**as_json, "payload": as_json["payload"].replace("A", "\\u0041", 1)}).encode(),
    )


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, 6),
    st.integers(0, 4000),
    st.integers(0, 7),
    st.sampled_from(["flip", "insert", "delete", "none"]),
)
def test_fast_record_check_agrees_with_the_full_check(which: int, pos: int, bit: int, op: str) -> None:
    from charter.audit.crypto import key_ids
    from charter.audit.verify import check_record, check_record_fast

    env = bytearray(_envelopes()[which])
    pos %= len(env)
    mutate(env, pos, bit, op)
    pub = _KEY.public_key()
    ids = key_ids(pub)
    for index in (5, 6):
        assert check_record_fast(index, bytes(env), pub, frozenset(i.encode() for i in ids)) == check_record(
            index, bytes(env), pub, ids
        )


@given(
    st.lists(
        st.tuples(
            st.booleans(),  # matched
            st.sampled_from([None, "namespace labels unknown"]),  # unresolved
            st.lists(
                st.tuples(
                    st.sampled_from(["violation", "error"]),
                    st.sampled_from([(), ("Deny",), ("Warn",), ("Audit",), ("Deny", "Warn")]),
                    st.booleans(),
                ),
                max_size=3,
            ),
        ),
        max_size=8,
    )
)
@settings(max_examples=200, deadline=None)
def test_policy_results_shortcut_equals_the_general_path(
    shapes: list[tuple[bool, str | None, list[tuple[str, tuple[str, ...], bool]]]],
) -> None:
    from charter.audit.record import _result, _results
    from charter.engine.results import Decision, ExceptionUse, Finding, PolicyOutcome

    ex = ExceptionUse("exc-1", "T-1", "bob", "why", datetime(2027, 1, 1), "ex.yaml")
    outcomes = [
        PolicyOutcome(
            f"p{i}", "Policy", "d", "low", matched, "Fail", unresolved=unresolved,
            findings=[Finding(f"p{i}", "", kind, actions, f"m{i}", "Forbidden", exception=ex if waived else None)
                      for kind, actions, waived in findings],
        )
        for i, (matched, unresolved, findings) in enumerate(shapes)
    ]  # fmt: skip
    d = Decision(decision(1).attributes, outcomes, {})
    assert _results(d, "sha256:x") == [
        _result(o, v, "sha256:x") for o in outcomes if (v := o.verdict) != "skip"
    ]
