"""Webhook latency: `charter serve` with the shipped packs against the echo floor, same run.

    python bench/webhook_latency.py [--seconds 4] [--stack auto|plain] [--json FILE]

Both servers are the same FastAPI-on-uvicorn stack over TLS on 127.0.0.1: the echo server
parses the AdmissionReview and answers a constant allow with its uid; charter evaluates the
shipped policy packs (cluster onprem-sovereign-de, quickstart context). The load generator is
aiohttp in this process, pinned to another core than the server (os.sched_setaffinity).

- closed loop at concurrency 1/16/64: req/s, latency percentiles (mostly queueing at 64);
- open loop at 100/300/500 reviews/s: latency from the *scheduled* send time, so a stalled
  server shows up as latency instead of as a slower offered rate;
- the generator's ceiling: closed loop at 64 against a raw asyncio TLS responder;
- server CPU µs per request from /proc/PID/stat, non-2xx answers and uid mismatches.
Every phase is bounded in time; the default run takes under 3 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

# Module level on purpose: with postponed annotations, FastAPI resolves `request: Request` in the
# module's globals; imported inside the function it becomes a query parameter and every call a 422.
from fastapi import Request
from fastapi.responses import Response

REPO = Path(__file__).resolve().parents[1]
CHARTER = str(Path(sys.executable).with_name("charter"))
SERVER_CPU, CLIENT_CPU = 0, 1


# -- certificates -------------------------------------------------------------------------------


def make_cert(tmp: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    c, k = tmp / "tls.crt", tmp / "tls.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(c), str(k)


# -- servers ------------------------------------------------------------------------------------


def echo_server(port: int, cert: str, key: str, loop: str, http: str) -> None:
    """The floor: the same stack, parse the review, answer allowed with its uid."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        review = json.loads(await request.body())
        out = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
        return Response(json.dumps(out, separators=(",", ":")), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        log_level="warning",
        access_log=False,
        loop=loop,
        http=http,
        lifespan="off",
    )


def raw_server(port: int, cert: str, key: str) -> None:
    """A responder that does almost nothing: what the generator can drive at most."""
    body = (
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}'
    )
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t, self.buf = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                length = 0
                for line in self.buf[:end].split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if len(self.buf) < end + 4 + length:
                    return
                self.buf = self.buf[end + 4 + length :]
                self.t.write(head + body)

    async def main() -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", port, ssl=ctx)
        await srv.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, argv: list[str], port: int, health: str | None) -> None:
        self.port = port
        self.p = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.sched_setaffinity(self.p.pid, {SERVER_CPU})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise SystemExit(f"server exited {self.p.returncode}: {argv}")
            try:
                if health is None:
                    import socket

                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                else:
                    urllib.request.urlopen(health, timeout=1, context=_insecure()).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"server not up in 60 s: {argv}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- load ---------------------------------------------------------------------------------------


def bodies() -> list[dict[str, Any]]:
    """Every example workload as an AdmissionReview, as the apiserver would send it."""
    from charter.engine._internal.kinds import kind_info, split_api_version
    from charter.engine.documents import read_documents
    from charter.engine.loader import classify

    out = []
    for d in read_documents([str(REPO / "examples" / "workloads")]).documents:
        if classify(d) != "resource" or not isinstance(d.data.get("kind"), str):
            continue
        obj = d.data
        group, version = split_api_version(str(obj.get("apiVersion", "")))
        info = kind_info(group, obj["kind"])
        meta = obj.get("metadata") or {}
        gvk = {"group": group, "version": version, "kind": obj["kind"]}
        gvr = {"group": group, "version": version, "resource": info.resource}
        out.append(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "",
                    "kind": gvk,
                    "resource": gvr,
                    "requestKind": gvk,
                    "requestResource": gvr,
                    "name": meta.get("name", ""),
                    "namespace": (meta.get("namespace") or "default") if info.namespaced else "",
                    "operation": "CREATE",
                    "userInfo": {"username": "amelie.roux", "groups": ["team-fraud", "system:authenticated"]},
                    "object": obj,
                    "dryRun": False,
                },
            }
        )
    return out


class Load:
    def __init__(self, port: int, reviews: list[dict[str, Any]], check_uid: bool = True) -> None:
        self.url = f"https://127.0.0.1:{port}/validate"
        self.reviews = reviews
        self.check_uid = check_uid
        self.n = 0
        self.latencies: list[float] = []
        self.non2xx = 0
        self.mismatch = 0
        self.errors = 0

    def _next(self) -> tuple[str, bytes]:
        self.n += 1
        review = self.reviews[self.n % len(self.reviews)]
        uid = f"bench-{self.n}"
        review["request"]["uid"] = uid
        return uid, json.dumps(review).encode()

    async def one(self, session: Any, started: float) -> None:
        uid, body = self._next()
        try:
            async with session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as r:
                data = await r.read()
                if r.status != 200:
                    self.non2xx += 1
                elif self.check_uid and json.loads(data)["response"]["uid"] != uid:
                    self.mismatch += 1
        except Exception:
            self.errors += 1
            return
        self.latencies.append(time.perf_counter() - started)


def _session(limit: int) -> Any:
    import aiohttp

    ctx = _insecure()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=ctx), timeout=aiohttp.ClientTimeout(total=10)
    )


async def closed_loop(load: Load, concurrency: int, seconds: float) -> float:
    async with _session(concurrency) as session:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < end:
                await load.one(session, time.perf_counter())

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def open_loop(load: Load, rate: float, seconds: float) -> float:
    async with _session(256) as session:
        t0 = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(load.one(session, scheduled)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def phase(
    server: Proc, reviews: list[dict[str, Any]], mode: str, x: float, seconds: float, uid: bool = True
) -> dict[str, Any]:
    load = Load(server.port, reviews, uid)
    asyncio.run(closed_loop(Load(server.port, reviews, uid), 4, 0.5))  # warm connections and caches
    cpu0 = server.cpu_seconds()
    elapsed = asyncio.run(
        closed_loop(load, int(x), seconds) if mode == "closed" else open_loop(load, x, seconds)
    )
    cpu = server.cpu_seconds() - cpu0
    done = len(load.latencies)
    return {
        "mode": mode,
        "level": x,
        "requests": done,
        "req_s": round(done / elapsed, 1),
        "p50_ms": round(pct(load.latencies, 0.50), 3),
        "p95_ms": round(pct(load.latencies, 0.95), 3),
        "p99_ms": round(pct(load.latencies, 0.99), 3),
        "mean_ms": round(statistics.fmean(load.latencies) * 1000, 3) if done else None,
        "server_cpu_us_per_req": round(cpu / max(done, 1) * 1e6, 1),
        "non_2xx": load.non2xx,
        "uid_mismatch": load.mismatch,
        "client_errors": load.errors,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="per phase")
    ap.add_argument(
        "--stack",
        choices=["auto", "plain"],
        default="auto",
        help="auto: uvloop+httptools; plain: asyncio+h11",
    )
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--echo-server", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    ap.add_argument("--raw-server", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    loop, http = ("auto", "auto") if args.stack == "auto" else ("asyncio", "h11")
    if args.echo_server:
        echo_server(int(args.echo_server[0]), args.echo_server[1], args.echo_server[2], loop, http)
        return 0
    if args.raw_server:
        raw_server(int(args.raw_server[0]), args.raw_server[1], args.raw_server[2])
        return 0

    os.sched_setaffinity(0, {CLIENT_CPU})
    reviews = bodies()
    sizes = sorted(len(json.dumps(r)) for r in reviews)
    results: dict[str, Any] = {
        "stack": args.stack,
        "reviews": len(reviews),
        "median_body_bytes": sizes[len(sizes) // 2],
        "cpus": os.cpu_count(),
        "phases": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(Path(tmp))
        me = [sys.executable, __file__, "--stack", args.stack]

        port = free_port()
        raw = Proc([*me, "--raw-server", str(port), cert, key], port, None)
        try:
            results["generator_ceiling"] = phase(raw, reviews, "closed", 64, args.seconds, uid=False)
        finally:
            raw.stop()
        print(f"generator ceiling: {results['generator_ceiling']['req_s']} req/s", file=sys.stderr)

        port = free_port()
        servers = {
            "echo": Proc(
                [*me, "--echo-server", str(port), cert, key], port, f"https://127.0.0.1:{port}/healthz"
            ),
        }
        mport = free_port()
        port2 = free_port()
        servers["charter"] = Proc(
            [
                CHARTER, "serve", "--tls-cert", cert, "--tls-key", key, "--port", str(port2),
                "--metrics-port", str(mport), "--cluster", "examples/clusters/onprem-sovereign-de.yaml",
                "--context", "examples/context", "--namespace-source", "file:examples/context/namespaces.yaml",
                "--loop", loop, "--http", http,
            ],
            port2,
            f"http://127.0.0.1:{mport}/readyz",
        )  # fmt: skip
        # The same server writing every decision to a signed SQLite audit log (durable before answering).
        adir = Path(tempfile.mkdtemp(prefix="charter-bench-audit-"))
        subprocess.run([CHARTER, "audit", "keygen", "--out", str(adir)], check=True, capture_output=True)
        mport3, port3 = free_port(), free_port()
        servers["charter+audit"] = Proc(
            [
                CHARTER, "serve", "--tls-cert", cert, "--tls-key", key, "--port", str(port3),
                "--metrics-port", str(mport3), "--cluster", "examples/clusters/onprem-sovereign-de.yaml",
                "--context", "examples/context", "--namespace-source", "file:examples/context/namespaces.yaml",
                "--loop", loop, "--http", http, "--audit", str(adir / "audit.db"), "--audit-key", str(adir / "audit.key"),
            ],
            port3,
            f"http://127.0.0.1:{mport3}/readyz",
        )  # fmt: skip
        try:
            for name, server in servers.items():
                for c in (1, 16, 64):
                    r = {"server": name, **phase(server, reviews, "closed", c, args.seconds)}
                    results["phases"].append(r)
                    print(json.dumps(r), file=sys.stderr)
                for rate in (100, 300, 500):
                    r = {"server": name, **phase(server, reviews, "open", rate, args.seconds)}
                    results["phases"].append(r)
                    print(json.dumps(r), file=sys.stderr)
        finally:
            for s in servers.values():
                s.stop()
            shutil.rmtree(adir, ignore_errors=True)
    sat = {
        n: max(p["req_s"] for p in results["phases"] if p["server"] == n and p["mode"] == "closed")
        for n in servers
    }
    results["saturation_ratio"] = round(sat["charter"] / sat["echo"], 2)
    at500 = next(
        p for p in results["phases"] if p["server"] == "charter" and p["mode"] == "open" and p["level"] == 500
    )
    audited500 = next(
        p
        for p in results["phases"]
        if p["server"] == "charter+audit" and p["mode"] == "open" and p["level"] == 500
    )
    results["targets"] = {
        "p99_at_500_ms": at500["p99_ms"],
        "p99_at_500_ok": at500["p99_ms"] <= 5.0,
        "saturation_ok": results["saturation_ratio"] >= 0.6,
        "audit_p99_at_500_ms": audited500["p99_ms"],
        "audit_p99_overhead": round(audited500["p99_ms"] / at500["p99_ms"] - 1, 3),
        "audit_p99_ok": audited500["p99_ms"] <= 1.2 * at500["p99_ms"],
    }
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def render(results: dict[str, Any]) -> str:
    lines = [
        f"stack: {results['stack']}; {results['reviews']} example reviews, median body {results['median_body_bytes']} B; "
        f"generator ceiling {results['generator_ceiling']['req_s']:,.0f} req/s (c=64, raw TLS responder)",
        "",
        "| server | load | req/s | p50 ms | p95 ms | p99 ms | server CPU µs/req | non-2xx | uid mismatch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["phases"]:
        load = f"closed c={p['level']}" if p["mode"] == "closed" else f"open {p['level']}/s"
        lines.append(
            f"| {p['server']} | {load} | {p['req_s']:,.0f} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | "
            f"{p['server_cpu_us_per_req']} | {p['non_2xx']} | {p['uid_mismatch']} |"
        )
    t = results["targets"]
    lines += [
        "",
        f"saturation charter/echo: {results['saturation_ratio']} (target >= 0.6: {'met' if t['saturation_ok'] else 'NOT met'}); "
        f"p99 at 500/s: {t['p99_at_500_ms']} ms (target <= 5 ms: {'met' if t['p99_at_500_ok'] else 'NOT met'}); "
        f"audit on: p99 {t['audit_p99_at_500_ms']} ms at 500/s, {t['audit_p99_overhead']:+.0%} "
        f"(target <= +20%: {'met' if t['audit_p99_ok'] else 'NOT met'})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
