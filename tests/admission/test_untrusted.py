"""Hostile and broken AdmissionReviews: never a 500, never a hang, always a clear answer."""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Server, admission_review

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "sandbox"},
    "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
}
FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _clear(status: int, body: dict[str, Any]) -> None:
    assert status < 500, body
    if status == 200:
        assert body["kind"] == "AdmissionReview" and isinstance(body["response"]["allowed"], bool)
    else:
        assert body["kind"] == "Status" and body["code"] == status and body["message"], body
        assert "\n" not in body["message"] and len(body["message"]) <= 1024


def test_valid_review_round_trip(server: Server) -> None:
    got = server.review(admission_review(POD, uid="abc"))
    assert got["uid"] == "abc" and isinstance(got["allowed"], bool)


def test_delete_uses_old_object_and_subresources_and_dry_run(server: Server) -> None:
    got = server.review(admission_review(None, old=POD, operation="DELETE", uid="del"))
    assert got["uid"] == "del"
    status = server.review(
        admission_review(POD, uid="st", sub_resource="status", operation="UPDATE", old=POD)
    )
    assert status["uid"] == "st"
    dry = server.review(admission_review(POD, uid="dry", dry_run=True))
    assert dry["uid"] == "dry"
    assert '"uid":"dry"' in server.logs() and '"dryRun":true' in server.logs()


def test_missing_uid_wrong_version_wrong_kind(server: Server) -> None:
    review = admission_review(POD)
    del review["request"]["uid"]
    status, body = server.post(json.dumps(review).encode())
    assert status == 400 and "request.uid" in body["message"]
    for field, value in (("apiVersion", "admission.k8s.io/v1beta1"), ("kind", "AdmissionResponse")):
        review = {**admission_review(POD), field: value}
        status, body = server.post(json.dumps(review).encode())
        assert status == 400 and field in body["message"], body


def test_wrong_types_are_named_not_coerced(server: Server) -> None:
    for path, value in (
        (("request", "operation"), "PATCH"),
        (("request", "dryRun"), "true"),
        (("request", "namespace"), 7),
        (("request", "object"), [1, 2]),
        (("request", "userInfo", "groups"), "system:masters"),
        (("request", "kind"), None),
    ):
        review = admission_review(POD)
        target = review
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        status, body = server.post(json.dumps(review).encode())
        assert status == 400, (path, body)
        assert ".".join(path) in body["message"], body
        assert repr(value) not in body["message"] or value is None  # values are never echoed


def test_deep_nesting_is_rejected_not_crashing(server: Server) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    status, body = server.post(
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":' + deep.encode() + b"}"
    )
    assert status == 400 and "nests too deeply" in body["message"]
    obj: dict[str, Any] = {}
    cur = obj
    for _ in range(500):  # under json's recursion limit, over charter's nesting bound
        cur["a"] = {}
        cur = cur["a"]
    review = admission_review({**POD, "spec": {**POD["spec"], "x": obj}})  # type: ignore[dict-item]
    status, body = server.post(json.dumps(review).encode())
    assert status == 400 and "nests too deeply" in body["message"]


def test_oversized_body_is_413(server: Server) -> None:
    review = admission_review(
        {**POD, "metadata": {**POD["metadata"], "annotations": {"x": "y" * (3 * 1024 * 1024)}}}
    )  # type: ignore[dict-item]
    status, body = server.post(json.dumps(review).encode())
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"


def test_oversized_chunked_body_is_413(server: Server) -> None:
    """No Content-Length: the limit holds while streaming."""
    conn = server.connect()
    try:
        conn.putrequest("POST", "/validate")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b"x" * 65536
        try:
            for _ in range(60):  # 3.75 MiB
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close once it has answered
        r = conn.getresponse()
        assert r.status == 413
    finally:
        conn.close()


def test_slow_body_does_not_hang_the_server(server: Server) -> None:
    """A client that stops sending mid-body holds only its own connection."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    tls = server.ssl.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        t0 = time.monotonic()
        got = server.review(admission_review(POD, uid="other"))
        assert got["uid"] == "other" and time.monotonic() - t0 < 5
    finally:
        tls.close()


def test_huge_strings_are_answered(server: Server) -> None:
    big = "x" * (1024 * 1024)  # twice in the review: name and metadata.name
    review = admission_review({**POD, "metadata": {**POD["metadata"], "name": big}}, uid="big")  # type: ignore[dict-item]
    got = server.review(review)
    assert got["uid"] == "big"
    status, body = server.post(
        json.dumps({**review, "request": {**review["request"], "uid": "u" * 300}}).encode()
    )
    assert status == 400 and "uid" in body["message"]


def test_not_https_is_refused(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, TimeoutError):
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")


def test_untrusted_ca_is_refused(server: Server) -> None:
    ctx = ssl.create_default_context()  # system CAs: the test CA is not among them
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        try:
            ctx.wrap_socket(s, server_hostname="127.0.0.1")
            raise AssertionError("handshake should fail")
        except ssl.SSLCertVerificationError:
            pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=2000))
def test_truncated_json(server: Server, cut: int) -> None:
    body = json.dumps(admission_review(POD)).encode()
    status, answer = server.post(body[: cut % len(body)])
    _clear(status, answer)
    assert status == 400


@FUZZ
@given(
    field=st.sampled_from(
        [
            "uid",
            "kind",
            "resource",
            "subResource",
            "name",
            "namespace",
            "operation",
            "userInfo",
            "object",
            "oldObject",
            "dryRun",
            "options",
            "requestKind",
        ]
    ),
    value=_json,
)
def test_wrong_types_in_any_field(server: Server, field: str, value: Any) -> None:
    review = admission_review(POD, uid="fz")
    review["request"][field] = value
    status, answer = server.post(json.dumps(review).encode())
    _clear(status, answer)
    if status == 200:
        assert answer["response"]["uid"] == review["request"]["uid"]


@FUZZ
@given(body=st.binary(max_size=200) | _json.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies(server: Server, body: bytes) -> None:
    status, answer = server.post(body)
    _clear(status, answer)
    assert status == 400
