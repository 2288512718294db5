"""A serving webhook changes under it: policies reload, certificates rotate, SIGTERM drains."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from .conftest import Server, admission_review
from .tls import CA, write_server_cert

POLICY = """\
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata:
  name: test-names
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  validations:
    - expression: "!object.metadata.name.startsWith('{prefix}')"
      message: "names starting with {prefix} are not allowed"
      reason: Forbidden
"""
BROKEN = POLICY.replace("!object.metadata.name.startsWith", "!object.metadata.name.startsWith(((")


def pod(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
    }


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture()
def small(ca: CA, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "names.yaml").write_text(POLICY.format(prefix="bad"))
    s = Server(tmp_path, ca, ["--policies", str(policies)])
    try:
        s.wait_ready()
        yield s, policies / "names.yaml"
    finally:
        s.stop()


def allowed(s: Server, name: str) -> bool:
    return bool(s.review(admission_review(pod(name)))["allowed"])


def test_policy_hot_reload_good_then_broken(small: tuple[Server, Path]) -> None:
    s, policy = small
    assert not allowed(s, "bad-1") and allowed(s, "evil-1")
    _, ready = s.readyz()
    digest, generation = ready["digest"], ready["generation"]

    policy.write_text(POLICY.format(prefix="evil"))
    eventually(lambda: not allowed(s, "evil-1"))
    assert allowed(s, "bad-1")
    status, ready = s.readyz()
    assert status == 200 and ready["digest"] != digest and ready["generation"] == generation + 1

    policy.write_text(BROKEN)
    eventually(lambda: s.readyz()[1]["lastReloadError"] is not None)
    status, ready = s.readyz()
    assert status == 200, "the old set keeps serving, so the webhook stays ready"
    assert "test-names" in ready["lastReloadError"] or "names.yaml" in ready["lastReloadError"]
    assert not allowed(s, "evil-2") and allowed(s, "bad-2")  # the previous verdicts continue
    metrics = s.metrics()
    assert 'charter_reloads_total{result="failure",what="policies"} 1.0' in metrics
    assert 'charter_reloads_total{result="success",what="policies"} 2.0' in metrics
    assert "policy load failed" in s.logs()

    denial = s.review(admission_review(pod("evil-3")))
    assert denial["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "message": "policy 'test-names' denied request: names starting with evil are not allowed",
    }


def _serial(s: Server) -> int:
    with (
        socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw,
        s.ssl.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def test_no_handshake_fails_while_the_certificate_rotates(small: tuple[Server, Path], ca: CA) -> None:
    """Handshakes in a tight loop across several rotations: every one completes, with the old or
    the new certificate (the live context must never hold a new certificate with the old key)."""
    s, _ = small
    failures: list[str] = []
    done = [0]
    stop = threading.Event()

    def handshakes() -> None:
        while not stop.is_set():
            try:
                _serial(s)
                done[0] += 1
            except (ssl.SSLError, OSError) as e:
                failures.append(repr(e))

    t = threading.Thread(target=handshakes, daemon=True)
    t.start()
    try:
        for serial in range(3000, 3006):
            write_server_cert(ca, s.cert, s.key, serial)
            eventually(lambda serial=serial: _serial(s) == serial)  # type: ignore[misc]
    finally:
        stop.set()
        t.join(10)
    assert not failures, failures[:3]
    assert done[0] > 0


def test_certificate_rotation_while_serving(small: tuple[Server, Path], ca: CA) -> None:
    s, _ = small
    assert _serial(s) == 1000
    conn = s.connect()  # a keep-alive connection opened before the rotation
    conn.request("POST", "/validate", body=json.dumps(admission_review(pod("a"))).encode())
    assert conn.getresponse().read()

    write_server_cert(ca, s.cert, s.key, 2002)
    eventually(lambda: _serial(s) == 2002)
    assert allowed(s, "after-rotation")
    conn.request("POST", "/validate", body=json.dumps(admission_review(pod("b"))).encode())
    assert conn.getresponse().status == 200  # existing connections are not cut
    conn.close()

    # A broken pair (key of another certificate) is refused; the live one keeps serving.
    good_key = s.key.read_bytes()
    write_server_cert(ca, s.cert, s.tmp / "other.key", 3003)
    s.key.write_bytes(good_key)
    eventually(lambda: s.readyz()[1]["tlsReloadError"] is not None)
    assert _serial(s) == 2002
    assert 'charter_reloads_total{result="success",what="tls"} 1.0' in s.metrics()


def test_sigterm_drains_in_flight_requests(small: tuple[Server, Path]) -> None:
    s, _ = small
    body = json.dumps(admission_review(pod("bad-x"), uid="in-flight")).encode()
    conn = s.connect()
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Length", str(len(body)))
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    conn.send(body[:100])  # the request is in flight when the signal arrives
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    conn.send(body[100:])
    r = conn.getresponse()
    answer = json.loads(r.read())
    assert r.status == 200 and answer["response"]["uid"] == "in-flight" and not answer["response"]["allowed"]
    conn.close()
    assert s.proc.wait(15) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()


def test_metrics_and_decision_logs(small: tuple[Server, Path]) -> None:
    s, _ = small
    allowed(s, "bad-m")
    allowed(s, "fine")
    metrics = s.metrics()
    assert 'charter_admission_requests_total{decision="denied",policy="test-names"} 1.0' in metrics
    assert 'charter_admission_requests_total{decision="allowed",policy=""} 1.0' in metrics
    assert 'charter_admission_policy_verdicts_total{policy="test-names",verdict="deny"} 1.0' in metrics
    assert "charter_admission_request_duration_seconds_bucket" in metrics
    assert "charter_audit_write_duration_seconds_count 2.0" in metrics
    lines = [json.loads(line) for line in s.logs().splitlines() if '"msg":"decision"' in line]
    assert {line["objectName"]: (line["allowed"], line["denied"]) for line in lines} == {
        "bad-m": (False, ["test-names"]),
        "fine": (True, []),
    }
    assert all(line["latencyMs"] >= 0 and line["operation"] == "CREATE" for line in lines)


def test_bad_policies_refuse_to_start(ca: CA, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "broken.yaml").write_text(BROKEN)
    s = Server(tmp_path, ca, ["--policies", str(tmp_path / "p")])
    assert s.proc.wait(30) == 2
    assert "nothing to serve" in s.logs()
    s.stop()
