"""A real `charter serve` on 127.0.0.1 with a test CA, and an HTTPS client that verifies it."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from .tls import CA, make_ca, write_server_cert

REPO = Path(__file__).resolve().parents[2]
CHARTER = str(Path(sys.executable).with_name("charter"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`charter serve` in a subprocess; every wait is bounded."""

    def __init__(self, tmp: Path, ca: CA, args: Sequence[str], serial: int = 1000) -> None:
        self.tmp = tmp
        self.ca = ca
        self.cert, self.key = tmp / "tls.crt", tmp / "tls.key"
        write_server_cert(ca, self.cert, self.key, serial)
        (tmp / "ca.pem").write_bytes(ca.pem())
        self.port, self.metrics_port = free_port(), free_port()
        self.log = (tmp / "serve.log").open("w+")
        self.proc = subprocess.Popen(
            [
                CHARTER,
                "serve",
                "--tls-cert",
                str(self.cert),
                "--tls-key",
                str(self.key),
                "--port",
                str(self.port),
                "--metrics-port",
                str(self.metrics_port),
                "--reload-interval",
                "0.2",
                *args,
            ],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ssl = ssl.create_default_context(cafile=str(tmp / "ca.pem"))

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"charter serve exited {self.proc.returncode}:\n{self.logs()}")
            try:
                status, _ = self.readyz()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"charter serve not ready in {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        return (self.tmp / "serve.log").read_text()

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def connect(self, timeout: float = 10) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl, timeout=timeout)

    def post(
        self, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> tuple[int, dict[str, Any]]:
        conn = self.connect(timeout)
        try:
            conn.request(
                "POST",
                "/validate",
                body=body,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            conn.close()

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        status, body = self.post(json.dumps(review).encode())
        assert status == 200, body
        assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
        return body["response"]  # type: ignore[no-any-return]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def ca() -> CA:
    return make_ca()


EXAMPLE_ARGS = [
    "--cluster",
    "examples/clusters/onprem-sovereign-de.yaml",
    "--context",
    "examples/context",
    "--namespace-source",
    "file:examples/context/namespaces.yaml",
]


@pytest.fixture(scope="session")
def server(ca: CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with the shipped packs and the quickstart context, shared by the read-only tests."""
    s = Server(tmp_path_factory.mktemp("serve"), ca, EXAMPLE_ARGS)
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


def admission_review(
    obj: dict[str, Any] | None,
    *,
    uid: str = "00000000-0000-0000-0000-000000000001",
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    namespace: str | None = None,
    user: dict[str, Any] | None = None,
    resource: str | None = None,
    sub_resource: str = "",
    dry_run: bool = False,
) -> dict[str, Any]:
    """An AdmissionReview as the apiserver would send it for `obj` (kind/resource from the engine's map)."""
    from charter.engine._internal.kinds import kind_info, split_api_version

    subject = obj if obj is not None else old or {}
    group, version = split_api_version(str(subject.get("apiVersion", "")))
    kind = str(subject.get("kind", ""))
    info = kind_info(group, kind)
    meta = subject.get("metadata") or {}
    ns = (
        namespace
        if namespace is not None
        else ((meta.get("namespace") or "default") if info.namespaced else "")
    )
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource or info.resource}
    request: dict[str, Any] = {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": meta.get("name", ""),
        "namespace": ns,
        "operation": operation,
        "userInfo": user or {"username": "amelie.roux", "groups": ["team-fraud", "system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        if operation == "CREATE"
        else None,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


__all__ = ["EXAMPLE_ARGS", "REPO", "Server", "admission_review", "free_port"]
