"""A fake apiserver on 127.0.0.1 serving recorded list and discovery responses from fixtures/."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "test-token"
_NAMESPACED = re.compile(r"^(/api/v1|/apis/[^/]+/[^/]+)/namespaces/([^/]+)/([^/]+)$")


@dataclass
class FakeApiserver:
    url: str
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)


def _served_plurals() -> dict[str, set[str]]:
    """groupVersion path prefix -> plurals its discovery fixture lists."""
    out: dict[str, set[str]] = {}
    for f in FIXTURES.glob("api*.json"):
        body = json.loads(f.read_text())
        if body.get("kind") == "APIResourceList":
            gv = body["groupVersion"]
            prefix = "/api/v1" if gv == "v1" else f"/apis/{gv}"
            out[prefix] = {r["name"] for r in body["resources"]}
    return out


def _handler(server: FakeApiserver) -> type[BaseHTTPRequestHandler]:
    served = _served_plurals()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str) -> None:
            self._send(
                code,
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason, "code": code},
            )

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            server.requests.append((parts.path, query))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._status(401, "Unauthorized")
            path, namespace = parts.path, None
            m = _NAMESPACED.match(path)
            if m:
                path, namespace = f"{m.group(1)}/{m.group(3)}", m.group(2)
            if path in server.forbidden:
                return self._status(403, f"cannot list {path}")
            name = path.strip("/").replace("/", "_")
            if "continue" in query:
                name += f"__continue={query['continue'][0]}"
            f = FIXTURES / f"{name}.json"
            if f.is_file():
                body = json.loads(f.read_text())
                if namespace is not None:
                    body["items"] = [i for i in body["items"] if i["metadata"].get("namespace") == namespace]
                return self._send(200, body)
            prefix, _, plural = path.rpartition("/")
            if plural in served.get(prefix, set()):
                return self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []})
            return self._status(404, "the server could not find the requested resource")

    return Handler


@pytest.fixture
def apiserver() -> Iterator[FakeApiserver]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FakeApiserver(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(state)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def kubeconfig(apiserver: FakeApiserver, tmp_path: Path) -> Path:
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": apiserver.url}}],
        "users": [{"name": "scanner", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "scanner"}}],
        "current-context": "fake",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path
