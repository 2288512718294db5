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
- server CPU µs per request from /proc (the server and the processes it started, e.g. the audit
  applier; and how much of it is not the event loop's thread), non-2xx answers, uid mismatches;
  after each phase the bench waits for the server's processes to go idle (an applier catching
  up), and that CPU counts for the phase;
- floors measured in the same run: the evaluation floor (charter's engine alone on the same
  reviews, no HTTP, on the server's core: normalization, input conversion, pure CEL evaluation)
  against the CPU budget that 0.6x the echo floor implies, and the durable-commit floor (one
  SQLite WAL synchronous=FULL commit of a 2 KB row, one write+fsync) on the audit DB's
  filesystem right before the audit phases, against the +20 % p99 allowance;
- floor+fsync: `charter serve` answering each review only after a 4.5 KB entry is written and
  fdatasync'd on its loop (FsyncFloorSink): "durable before answering" at its cheapest, in situ;
- floor+audit: `charter serve` with the least a signed durable group-committed log can do per
  decision (FloorSink), signed and committed before answering;
- charter+audit: `--audit` with its default spool (durable in the spool, signed by the applier);
  charter+audit-direct: `--audit-spool off` (signed and committed before answering).
Every phase is bounded in time; the default run takes about 5 minutes (--servers/--loads to cut).
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


class FloorSink:
    """The least a durable, signed decision log can do per decision, as a DecisionSink for
    `charter serve`: the same group commit on a writer thread as charter's audit log (callers on
    the event loop wait for their batch's COMMIT, settled once per batch), but each record is a
    fixed 2 KB payload signed with Ed25519 and inserted as one row of one table (no statement to
    build, no canonical JSON, no Merkle tree, no query columns or indexes); SQLite WAL with
    synchronous=FULL as the audit store. What charter+audit costs above this is charter's own."""

    def __init__(self, path: str) -> None:
        import queue
        import sqlite3
        import threading

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.key = Ed25519PrivateKey.generate()
        self.payload = bytes(range(256)) * 8
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS r (idx INTEGER PRIMARY KEY, payload BLOB, sig BLOB)")
        self.n = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    async def append_async(self, decision: Any, context: Any) -> str:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.q.put((loop, fut))
        return str(await fut)

    def append(self, decision: Any, context: Any) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()

    def _run(self) -> None:
        import queue

        while True:
            item = self.q.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.q.put(None)
                    break
                batch.append(nxt)
            rows = []
            for _ in batch:
                self.n += 1
                payload = b"%d:" % self.n + self.payload
                rows.append((self.n, payload, self.key.sign(payload)))
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO r (idx, payload, sig) VALUES (?,?,?)", rows)
            self.conn.execute("COMMIT")
            loop = batch[0][0]
            loop.call_soon_threadsafe(_settle_all, [(f, r[0]) for (_, f), r in zip(batch, rows, strict=True)])


class FsyncFloorSink:
    """The least that "durable before answering" costs on the event loop, as a DecisionSink: a
    4.5 KB entry (the size of charter's spooled statement) written in place to a zero-filled file
    on the loop and one `fdatasync` per loop turn for every entry written in it; no statement to
    build, no signing, no store. charter's spool does this plus building the statement (its
    applier signs later, at idle priority)."""

    SIZE = 64 << 20

    def __init__(self, path: str) -> None:
        # zero-filled and written in place, like charter's spool segments (no journal commit per fsync)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.pwrite(self.fd, bytes(self.SIZE), 0)
        os.fsync(self.fd)
        self.payload = bytes(range(256)) * 18
        self.offset = 0
        self.pending: list[Any] = []

    async def append_async(self, decision: Any, context: Any) -> str:
        loop = asyncio.get_running_loop()
        if self.offset + len(self.payload) > self.SIZE:
            self.offset = 0
        os.pwrite(self.fd, self.payload, self.offset)
        self.offset += len(self.payload)
        fut = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append(fut)
        await fut
        return ""

    def _flush(self) -> None:
        os.fdatasync(self.fd)
        pending, self.pending = self.pending, []
        for f in pending:
            f.set_result(None)

    def append(self, decision: Any, context: Any) -> str:
        raise NotImplementedError

    def close(self) -> None:
        os.close(self.fd)


def _settle_all(items: list[tuple[Any, int]]) -> None:
    for fut, idx in items:
        if not fut.done():
            fut.set_result(idx)


def floor_server(
    port: int, mport: int, cert: str, key: str, loop: str, http: str, sink: FloorSink | FsyncFloorSink
) -> None:
    """`charter serve` as the bench runs it, with a floor sink instead of the audit log."""
    from charter.admission.server import ServeOptions, run_serve

    opts = ServeOptions(
        policies=[],
        tls_cert=cert,
        tls_key=key,
        cluster="examples/clusters/onprem-sovereign-de.yaml",
        context=["examples/context"],
        port=port,
        metrics_port=mport,
        namespace_source="file:examples/context/namespaces.yaml",
        loop=loop,
        http=http,
    )
    sys.exit(run_serve(opts, sink=sink))  # type: ignore[arg-type]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, argv: list[str], port: int, health: str | None) -> None:
        self.port = port
        # pinned before it starts, so that every process it starts (the audit applier) shares its core
        self.p = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
        )
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
        """The server's CPU and that of the processes it started (the audit applier)."""
        total, todo = 0, [self.p.pid]
        while todo:
            pid = todo.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:  # exited meanwhile
                continue
            total += int(fields[11]) + int(fields[12])
            todo += [int(k) for k in kids]
        return total / os.sysconf("SC_CLK_TCK")

    def settle(self, limit: float = 60.0) -> float:
        """Wait until the server and its processes stop using CPU (an audit applier catching up), so
        that its background work does not land in the next phase (of this or another server)."""
        t0 = time.monotonic()
        last, still = self.cpu_seconds(), 0
        while still < 3 and time.monotonic() - t0 < limit:
            time.sleep(0.1)
            now = self.cpu_seconds()
            still = still + 1 if now == last else 0
            last = now
        return time.monotonic() - t0

    def thread_cpu_seconds(self) -> float:
        """CPU of the server's main thread (the event loop) alone; the rest is other threads and processes."""
        fields = Path(f"/proc/{self.p.pid}/task/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
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
    cpu0, main0 = server.cpu_seconds(), server.thread_cpu_seconds()
    elapsed = asyncio.run(
        closed_loop(load, int(x), seconds) if mode == "closed" else open_loop(load, x, seconds)
    )
    settled = server.settle()  # the applier's catching up counts for the phase that caused it
    cpu = server.cpu_seconds() - cpu0
    main = server.thread_cpu_seconds() - main0
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
        # clock ticks of 10 ms: the difference can come out a tick below zero
        "other_threads_cpu_us_per_req": round(max(0.0, cpu - main) / max(done, 1) * 1e6, 1),
        "settle_s": round(settled, 2),
        "non_2xx": load.non2xx,
        "uid_mismatch": load.mismatch,
        "client_errors": load.errors,
    }


# -- floors measured in the same run ----------------------------------------------------------------


def _dist(samples: list[float], cpu: float = 0.0) -> dict[str, Any]:
    """Latency percentiles in ms of per-operation durations in seconds, and the CPU (this
    thread's, kernel time included) per operation."""
    return {
        "n": len(samples),
        "cpu_us": round(cpu / max(len(samples), 1) * 1e6, 1),
        "p50_ms": round(pct(samples, 0.50), 3),
        "p95_ms": round(pct(samples, 0.95), 3),
        "p99_ms": round(pct(samples, 0.99), 3),
        "max_ms": round(max(samples) * 1000, 3) if samples else None,
    }


def commit_floor(
    directory: Path, n: int = 2000, seconds: float = 8.0, row_bytes: int = 2048
) -> dict[str, Any]:
    """What one durable append costs at least on this disk: one SQLite commit of one ~2 KB row
    (WAL, synchronous=FULL, as the audit store opens it) and one raw write+fsync, in `directory`
    (the audit DB's own, so the same filesystem). At most `n` operations or `seconds` each."""
    import sqlite3

    out: dict[str, Any] = {"directory_fs": _fs_of(directory), "row_bytes": row_bytes}
    db = directory / "commit-floor.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        samples: list[float] = []
        cpu = time.thread_time()
        end = time.perf_counter() + seconds
        while len(samples) < n and time.perf_counter() < end:
            row = os.urandom(row_bytes)
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (payload) VALUES (?)", (row,))
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - t)
        out["sqlite_commit"] = _dist(samples, time.thread_time() - cpu)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    raw = directory / "fsync-floor.bin"
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        samples = []
        cpu = time.thread_time()
        end = time.perf_counter() + seconds
        while len(samples) < n and time.perf_counter() < end:
            row = os.urandom(row_bytes)
            t = time.perf_counter()
            os.write(fd, row)
            os.fsync(fd)
            samples.append(time.perf_counter() - t)
        out["write_fsync"] = _dist(samples, time.thread_time() - cpu)
    finally:
        os.close(fd)
        raw.unlink(missing_ok=True)
    return out


def _fs_of(path: Path) -> str:
    """The mount holding `path`: device, mount point, type (from /proc/self/mounts)."""
    best = ("?", "/", "?")
    try:
        real = os.path.realpath(path)
        for line in Path("/proc/self/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[1]):
                best = (dev, mnt, fstype)
    except OSError:
        pass
    return f"{best[0]} on {best[1]} ({best[2]})"


def eval_floor(rounds: int = 15) -> dict[str, Any]:
    """charter's per-review CPU without HTTP, on the server's core, set up as the bench's `charter
    serve` (shipped packs, onprem-sovereign-de, quickstart context and namespaces), over the same
    example reviews: each stage's µs per review, best round of `rounds` (the best case).

    The CEL runtime's share is timed around each program call (`program.eval` and its result's
    conversion) by wrapping the engine's one call site in this process only. A review's first
    evaluation in a fresh activation also converts its inputs (workload, catalog, cluster) to CEL
    values; evaluating it again in the same activation does not: that second pass is the pure
    CEL evaluation, and the difference is the conversion."""
    import gc

    from charter.admission.app import parse_review
    from charter.admission.namespaces import FileNamespaceSource
    from charter.admission.reload import PolicySetup, build
    from charter.admission.request import attributes_from_request
    from charter.admission.response import response_for
    from charter.engine._internal.cel import program as cel_program
    from charter.engine._internal.cel.program import new_activation
    from charter.engine._internal.collector import settle_long_lived

    serving, errors = build(
        PolicySetup([], "examples/clusters/onprem-sovereign-de.yaml", ["examples/context"])
    )
    if serving is None:
        raise SystemExit(f"policies do not load: {errors}")
    namespaces = FileNamespaceSource(["examples/context/namespaces.yaml"])
    engine, related = serving.engine, serving.related
    cel_ns = [0]
    original = cel_program._evaluate

    def timed(program: Any, activation: Any) -> Any:
        t = time.perf_counter_ns()
        try:
            return original(program, activation)
        finally:
            cel_ns[0] += time.perf_counter_ns() - t

    bodies_ = []
    for i, r in enumerate(bodies()):
        r["request"]["uid"] = f"floor-{i}"
        bodies_.append(json.dumps(r).encode())
    settle_long_lived()
    cpu = time.process_time_ns
    stages = (
        "parse",
        "attributes",
        "normalize",
        "decide_fresh",
        "cel_fresh",
        "decide_warm",
        "cel_warm",
        "response",
    )
    best: dict[str, float] = {k: float("inf") for k in stages}
    policies = len(serving.policy_names)
    cel_program._evaluate = timed
    try:
        for _ in range(rounds):
            acc = dict.fromkeys(stages, 0)
            for body in bodies_:
                t0 = cpu()
                review = parse_review(body)
                t1 = cpu()
                attrs = attributes_from_request(review.request)
                ns = namespaces.get(attrs.namespace) if attrs.namespace else None
                if ns is not None:
                    attrs.namespace_object, attrs.namespace_known = ns, True
                t2 = cpu()
                prepared = engine.prepare(attrs, related)
                t3 = cpu()
                activation = new_activation(prepared.base)
                c0 = cel_ns[0]
                decision = engine.decide(prepared, slot=activation)
                t4 = cpu()
                c1 = cel_ns[0]
                again = engine.decide(prepared, slot=activation)  # inputs already converted
                t5 = cpu()
                c2 = cel_ns[0]
                response_for(review.request.uid, decision)
                t6 = cpu()
                if again.allowed != decision.allowed:
                    raise SystemExit("the warm pass decided differently")
                for k, v in (
                    ("parse", t1 - t0), ("attributes", t2 - t1), ("normalize", t3 - t2),
                    ("decide_fresh", t4 - t3), ("cel_fresh", c1 - c0), ("decide_warm", t5 - t4),
                    ("cel_warm", c2 - c1), ("response", t6 - t5),
                ):  # fmt: skip
                    acc[k] += v
            for k in stages:
                best[k] = min(best[k], acc[k] / len(bodies_) / 1000)
            gc.collect(0)
    finally:
        cel_program._evaluate = original
    us = {k: round(v, 1) for k, v in best.items()}
    return {
        "reviews": len(bodies_),
        "policies": policies,
        "rounds": rounds,
        "us_per_review": us,
        # derived
        "conversion_us": round(us["cel_fresh"] - us["cel_warm"], 1),
        "engine_python_us": round(us["decide_warm"] - us["cel_warm"], 1),
        "engine_total_us": round(us["normalize"] + us["decide_fresh"], 1),
        "webhook_no_http_us": round(
            sum(us[k] for k in ("parse", "attributes", "normalize", "decide_fresh", "response")), 1
        ),
    }


def measure_eval_floor() -> dict[str, Any]:
    """eval_floor() in a fresh process pinned to the server's core."""
    out = subprocess.run(
        [sys.executable, __file__, "--eval-floor"], cwd=REPO, capture_output=True, text=True, check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
    )  # fmt: skip
    return dict(json.loads(out.stdout))


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
    ap.add_argument(
        "--servers",
        default="echo,charter,floor+fsync,floor+audit,charter+audit,charter+audit-direct",
        help="comma-separated subset of echo,charter,floor+fsync,floor+audit,charter+audit,charter+audit-direct",
    )
    ap.add_argument(
        "--loads", default="c1,c16,c64,r100,r300,r500", help="cN: closed loop at N; rN: open loop at N/s"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="extra 500/s phases per server, in turn (median p99 for the targets)",
    )
    ap.add_argument("--floors-only", action="store_true", help="only the evaluation and commit floors")
    ap.add_argument("--eval-floor", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--echo-server", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    ap.add_argument("--raw-server", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    ap.add_argument("--floor-audit-server", nargs=3, metavar=("CERT", "KEY", "DB"), help=argparse.SUPPRESS)
    ap.add_argument("--floor-fsync-server", nargs=3, metavar=("CERT", "KEY", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--metrics-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    loop, http = ("auto", "auto") if args.stack == "auto" else ("asyncio", "h11")
    if args.echo_server:
        echo_server(int(args.echo_server[0]), args.echo_server[1], args.echo_server[2], loop, http)
        return 0
    if args.raw_server:
        raw_server(int(args.raw_server[0]), args.raw_server[1], args.raw_server[2])
        return 0
    if args.floor_audit_server or args.floor_fsync_server:
        cert, key, path = args.floor_audit_server or args.floor_fsync_server
        sink = FloorSink(path) if args.floor_audit_server else FsyncFloorSink(path)
        floor_server(args.port, args.metrics_port, cert, key, loop, http, sink)
        return 0
    if args.eval_floor:
        print(json.dumps(eval_floor()))
        return 0
    wanted = [n for n in args.servers.split(",") if n]
    loads = [x for x in args.loads.split(",") if x]

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
    # The evaluation floor, on the server's core, before any load (and again after it: the best of both).
    results["eval_floor"] = measure_eval_floor()
    print(f"evaluation floor: {json.dumps(results['eval_floor'])}", file=sys.stderr)
    if args.floors_only:
        adir = Path(tempfile.mkdtemp(prefix="charter-bench-audit-"))
        try:
            results["commit_floor"] = commit_floor(adir)
        finally:
            shutil.rmtree(adir, ignore_errors=True)
        print("\n".join(render_floors(results)))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0
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

        serve = [
            CHARTER, "serve", "--tls-cert", cert, "--tls-key", key,
            "--cluster", "examples/clusters/onprem-sovereign-de.yaml", "--context", "examples/context",
            "--namespace-source", "file:examples/context/namespaces.yaml", "--loop", loop, "--http", http,
        ]  # fmt: skip
        servers: dict[str, Proc] = {}
        adir = Path(tempfile.mkdtemp(prefix="charter-bench-audit-"))
        try:
            if "echo" in wanted:
                port = free_port()
                servers["echo"] = Proc(
                    [*me, "--echo-server", str(port), cert, key], port, f"https://127.0.0.1:{port}/healthz"
                )
            # Each server but echo: its command line after --port/--metrics-port (a charter serve, or
            # this script's floor servers); all answer /readyz on the metrics port once ready.
            audited = ["--audit-key", str(adir / "audit.key")]
            commands = {
                "charter": [*serve],
                # the same server writing every decision to a signed SQLite audit log: durable in
                # the spool before answering (the default) or signed and committed before answering
                "charter+audit": [*serve, "--audit", str(adir / "audit.db"), *audited],
                "charter+audit-direct": [
                    *serve, "--audit", str(adir / "direct.db"), *audited, "--audit-spool", "off",
                ],
                "floor+audit": [*me, "--floor-audit-server", cert, key, str(adir / "floor.db")],
                "floor+fsync": [*me, "--floor-fsync-server", cert, key, str(adir / "floor.spool")],
            }  # fmt: skip
            if any(n.startswith("charter+audit") for n in wanted):
                subprocess.run(
                    [CHARTER, "audit", "keygen", "--out", str(adir)], check=True, capture_output=True
                )
            for name, command in commands.items():
                if name in wanted:
                    mport, port = free_port(), free_port()
                    servers[name] = Proc(
                        [*command, "--port", str(port), "--metrics-port", str(mport)],
                        port,
                        f"http://127.0.0.1:{mport}/readyz",
                    )
            order = (
                "echo", "charter", "floor+fsync", "floor+audit", "charter+audit", "charter+audit-direct",
            )  # fmt: skip
            for name, server in sorted(servers.items(), key=lambda kv: order.index(kv[0])):
                if name in ("floor+audit", "charter+audit"):
                    # The durable-commit floor on the audit DB's filesystem, right before each audit
                    # server's phases; the targets use the one measured just before charter+audit's.
                    results["commit_floor"] = commit_floor(adir)
                    results.setdefault("commit_floors", {})[name] = results["commit_floor"]
                    print(
                        f"commit floor before {name}: {json.dumps(results['commit_floor'])}", file=sys.stderr
                    )
                for load in loads:
                    mode, level = ("closed", int(load[1:])) if load[0] == "c" else ("open", int(load[1:]))
                    r = {"server": name, **phase(server, reviews, mode, level, args.seconds)}
                    results["phases"].append(r)
                    print(json.dumps(r), file=sys.stderr)
            # 500/s again, the servers in turn, so that a neighbour's burst does not decide the
            # comparison: the targets use each server's median p99 over all its 500/s phases.
            results["repeats"] = []
            for i in range(args.repeat):
                for name in order:
                    if name in servers and name != "echo":
                        r = {
                            "server": name,
                            "round": i + 1,
                            **phase(servers[name], reviews, "open", 500, args.seconds),
                        }
                        results["repeats"].append(r)
                        print(json.dumps(r), file=sys.stderr)
        finally:
            for s in servers.values():
                s.stop()
            shutil.rmtree(adir, ignore_errors=True)
    if not args.floors_only:
        again = measure_eval_floor()
        print(f"evaluation floor, after the load: {json.dumps(again)}", file=sys.stderr)
        if again["engine_total_us"] < results["eval_floor"]["engine_total_us"]:
            results["eval_floor"] = again
    results["targets"] = targets(results)
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _phase(results: dict[str, Any], server: str, mode: str, level: int) -> dict[str, Any] | None:
    return next(
        (p for p in results["phases"] if p["server"] == server and p["mode"] == mode and p["level"] == level),
        None,
    )


def _at500(results: dict[str, Any], server: str) -> dict[str, Any] | None:
    """The server's 500/s phases: median p99 (and the p99s it is the median of), mean CPU."""
    runs = [
        p for p in results["phases"] if p["server"] == server and p["mode"] == "open" and p["level"] == 500
    ]
    runs += [p for p in results.get("repeats", []) if p["server"] == server]
    if not runs:
        return None
    return {
        "p99_ms": round(statistics.median(p["p99_ms"] for p in runs), 3),
        "p99s_ms": [p["p99_ms"] for p in runs],
        "server_cpu_us_per_req": round(statistics.fmean(p["server_cpu_us_per_req"] for p in runs), 1),
        "other_threads_cpu_us_per_req": round(
            statistics.fmean(p["other_threads_cpu_us_per_req"] for p in runs), 1
        ),
    }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Each target, and for the unmet ones the floor measured in this run against the budget."""
    t: dict[str, Any] = {}
    sat = {}
    for n in ("echo", "charter"):
        closed = [p["req_s"] for p in results["phases"] if p["server"] == n and p["mode"] == "closed"]
        if closed:
            sat[n] = max(closed)
    if len(sat) == 2:
        results["saturation_ratio"] = round(sat["charter"] / sat["echo"], 2)
        t["saturation_ok"] = results["saturation_ratio"] >= 0.6
    at500 = _at500(results, "charter")
    audited500 = _at500(results, "charter+audit")
    floor500 = _at500(results, "floor+audit")
    t["at500"] = {
        n: v
        for n in (
            "charter",
            "floor+fsync",
            "floor+audit",
            "charter+audit",
            "charter+audit-direct",
        )
        if (v := _at500(results, n)) is not None
    }
    fsync500 = _at500(results, "floor+fsync")
    if at500 is not None and fsync500 is not None:
        # "Durable before answering" at its cheapest, under the same load: if that alone adds more
        # than 20 % to p99, no audit log that answers after a durable write can meet the target.
        t["durability_floor"] = {
            "p99_ms": fsync500["p99_ms"],
            "overhead": round(fsync500["p99_ms"] / at500["p99_ms"] - 1, 3),
            "blocked": fsync500["p99_ms"] > 1.2 * at500["p99_ms"],
        }
    if floor500 is not None:
        t["floor_audit_p99_at_500_ms"] = floor500["p99_ms"]
    if at500 is not None:
        t["p99_at_500_ms"] = at500["p99_ms"]
        t["p99_at_500_ok"] = at500["p99_ms"] <= 5.0
    if audited500 is not None:
        t["audit_p99_at_500_ms"] = audited500["p99_ms"]
    if at500 is not None and audited500 is not None:
        t["audit_p99_overhead"] = round(audited500["p99_ms"] / at500["p99_ms"] - 1, 3)
        t["audit_p99_ok"] = audited500["p99_ms"] <= 1.2 * at500["p99_ms"]
    # Saturation: the budget per review that 0.6x the echo floor allows, against the evaluation floor.
    echo_sat = max(
        (p for p in results["phases"] if p["server"] == "echo" and p["mode"] == "closed"),
        key=lambda p: p["req_s"],
        default=None,
    )
    ef = results.get("eval_floor")
    if echo_sat is not None and ef is not None:
        echo_us = echo_sat["server_cpu_us_per_req"]
        budget = echo_us / 0.6
        cel = ef["us_per_review"]["cel_warm"]
        t["saturation_floor"] = {
            "echo_cpu_us_per_req": echo_us,
            "budget_us_per_review": round(budget, 1),
            "budget_left_after_http_us": round(budget - echo_us, 1),
            "cel_eval_floor_us": cel,
            "engine_floor_us": ef["engine_total_us"],
            # the best ratio possible if everything but the CEL runtime cost nothing beyond echo's stack
            "ceiling_ratio": round(echo_us / (echo_us + cel), 2),
            "blocked": cel > budget - echo_us,
        }
    # Audit: the +20 % allowance on the no-audit p99, against one durable commit's p99.
    cf = results.get("commit_floor")
    if at500 is not None and cf is not None:
        commit_p99 = cf["sqlite_commit"]["p99_ms"]
        allowance = 0.2 * at500["p99_ms"]
        t["audit_floor"] = {
            "allowance_ms": round(allowance, 3),
            "commit_p99_ms": commit_p99,
            "fsync_p99_ms": cf["write_fsync"]["p99_ms"],
            "blocked": commit_p99 > allowance,
        }
        if audited500 is not None:
            # What audit adds beyond no-audit p99 + one commit's p99: charter's own cost.
            t["audit_floor"]["expected_p99_ms"] = round(at500["p99_ms"] + commit_p99, 3)
            t["audit_floor"]["excess_ms"] = round(audited500["p99_ms"] - at500["p99_ms"] - commit_p99, 3)
    return t


def _ok(v: bool) -> str:
    return "met" if v else "NOT met"


def render(results: dict[str, Any]) -> str:
    lines = [
        f"stack: {results['stack']}; {results['reviews']} example reviews, median body {results['median_body_bytes']} B; "
        f"generator ceiling {results['generator_ceiling']['req_s']:,.0f} req/s (c=64, raw TLS responder)",
        "",
        "| server | load | req/s | p50 ms | p95 ms | p99 ms | server CPU µs/req | of which not the loop thread | non-2xx | uid mismatch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["phases"]:
        load = f"closed c={p['level']}" if p["mode"] == "closed" else f"open {p['level']}/s"
        lines.append(
            f"| {p['server']} | {load} | {p['req_s']:,.0f} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | "
            f"{p['server_cpu_us_per_req']} | {p['other_threads_cpu_us_per_req']} | {p['non_2xx']} | {p['uid_mismatch']} |"
        )
    lines += ["", *render_floors(results)]
    t = results["targets"]
    if t.get("at500"):
        lines += [
            "Open loop 500/s, every phase of each server (the table's and the repeats, in turn): p99 ms",
            "",
            "| server | p99 per phase | median p99 | server CPU µs/req (mean) | of which not the loop thread |",
            "|---|---|---|---|---|",
        ]
        for n, v in t["at500"].items():
            lines.append(
                f"| {n} | {', '.join(str(x) for x in v['p99s_ms'])} | {v['p99_ms']} | "
                f"{v['server_cpu_us_per_req']} | {v['other_threads_cpu_us_per_req']} |"
            )
    lines.append("")
    if "saturation_ok" in t:
        lines.append(
            f"saturation charter/echo: {results['saturation_ratio']} (target >= 0.6: {_ok(t['saturation_ok'])})"
        )
    if "p99_at_500_ok" in t:
        lines.append(
            f"p99 at 500/s (median of its phases): {t['p99_at_500_ms']} ms (target <= 5 ms: {_ok(t['p99_at_500_ok'])})"
        )
    if "audit_p99_ok" in t:
        lines.append(
            f"audit on: p99 {t['audit_p99_at_500_ms']} ms at 500/s (median), {t['audit_p99_overhead']:+.0%} "
            f"(target <= +20%: {_ok(t['audit_p99_ok'])})"
        )
    f = t.get("saturation_floor")
    if f is not None and not t.get("saturation_ok", True):
        lines.append(
            f"VERDICT saturation: 0.6x echo allows {f['budget_us_per_review']} µs of server CPU per review "
            f"(echo {f['echo_cpu_us_per_req']} µs / 0.6), {f['budget_left_after_http_us']} µs of it beyond the "
            f"HTTP/TLS stack echo itself needs; the CEL runtime alone takes {f['cel_eval_floor_us']} µs per "
            f"review (inputs already converted, best case) and charter's engine {f['engine_floor_us']} µs; "
            f"with nothing but echo's stack and the CEL runtime the ratio would be at most {f['ceiling_ratio']}x: "
            + ("BLOCKED by the CEL runtime's floor" if f["blocked"] else "NOT blocked by the CEL floor")
        )
    d = t.get("durability_floor")
    if d is not None and not t.get("audit_p99_ok", True):
        lines.append(
            f"VERDICT audit (in situ): floor+fsync, the webhook answering each review only after a 4.5 KB "
            f"write and an fdatasync on its loop (one per loop turn) and nothing else, has p99 {d['p99_ms']} ms "
            f"at 500/s, {d['overhead']:+.0%} over charter without audit: "
            + ("BLOCKED by the durability floor" if d["blocked"] else "NOT blocked by the durability floor")
        )
    a = t.get("audit_floor")
    if a is not None:
        line = (
            f"VERDICT audit: +20% of the no-audit p99 allows {a['allowance_ms']} ms; one durable SQLite commit "
            f"(WAL, synchronous=FULL, 2 KB row) has p99 {a['commit_p99_ms']} ms on this filesystem "
            f"(raw write+fsync p99 {a['fsync_p99_ms']} ms): "
            + ("BLOCKED by the fsync floor" if a["blocked"] else "NOT blocked by the fsync floor")
        )
        if "excess_ms" in a:
            line += (
                f"; audit-on p99 {t['audit_p99_at_500_ms']} ms vs no-audit p99 + commit p99 = "
                f"{a['expected_p99_ms']} ms (charter's own excess {a['excess_ms']:+} ms)"
            )
        if "floor_audit_p99_at_500_ms" in t:
            at = t["at500"]
            line += (
                f"; floor+audit (sign + insert + FULL commit of a 2 KB record, same group commit) p99 "
                f"{t['floor_audit_p99_at_500_ms']} ms with {at['floor+audit']['other_threads_cpu_us_per_req']} µs "
                f"of writer CPU per review"
            )
            if "charter+audit" in at:
                line += f", charter+audit {at['charter+audit']['other_threads_cpu_us_per_req']} µs"
        lines.append(line)
    return "\n".join(lines)


def render_floors(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    ef = results.get("eval_floor")
    if ef is not None:
        u = ef["us_per_review"]
        lines += [
            f"Evaluation floor (no HTTP, server core, {ef['reviews']} reviews x {ef['policies']} policies, "
            f"best of {ef['rounds']} rounds), CPU µs per review:",
            "",
            "| parse+pydantic | attributes | normalize | decide (fresh activation) | of which CEL calls | "
            "decide (converted inputs) | of which CEL calls = pure CEL | conversion | engine Python | "
            "response | engine total | webhook without HTTP |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {u['parse']} | {u['attributes']} | {u['normalize']} | {u['decide_fresh']} | {u['cel_fresh']} | "
            f"{u['decide_warm']} | {u['cel_warm']} | {ef['conversion_us']} | {ef['engine_python_us']} | "
            f"{u['response']} | {ef['engine_total_us']} | {ef['webhook_no_http_us']} |",
            "",
        ]
    cf = results.get("commit_floor")
    if cf is not None:
        lines += [
            f"Durable-commit floor ({cf['directory_fs']}, {cf['row_bytes']} B per commit):",
            "",
            "| operation | n | p50 ms | p95 ms | p99 ms | max ms | CPU µs per op |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, label in (
            ("sqlite_commit", "SQLite WAL synchronous=FULL commit"),
            ("write_fsync", "write+fsync"),
        ):
            d = cf[name]
            lines.append(
                f"| {label} | {d['n']} | {d['p50_ms']} | {d['p95_ms']} | {d['p99_ms']} | {d['max_ms']} | {d['cpu_us']} |"
            )
        lines.append("")
    return lines


if __name__ == "__main__":
    sys.exit(main())
