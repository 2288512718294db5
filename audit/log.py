"""The signed, append-only decision log: group commit, signing under the log lock, checkpoints.

Callers (webhook request threads, `charter check`) hand a prepared record to one writer
thread and wait on a future; the writer takes everything queued, and in one transaction
assigns indexes, signs each record (the index is inside the signed payload), inserts them,
and writes a signed checkpoint when one is due. `append` returns only after COMMIT.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from charter.engine.results import Decision
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .crypto import Checkpoint, canonical_json, keyid, public_pem, sign_checkpoint, sign_envelope
from .merkle import Frontier, leaf_hash
from .publish import CheckpointPublisher
from .record import PLACEHOLDER_BYTES, Prepared, now_text, prepare
from .sink import AuditUnavailable, DecisionContext
from .store import Row, Store, StoreError, Tx

log = logging.getLogger("charter.audit")
Item = Prepared | tuple[Decision, DecisionContext]


class _LoopWaiter:
    """An `append_async` caller: an asyncio future on its loop, settled from the writer thread."""

    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[str]) -> None:
        self.loop, self.fut = loop, fut


Waiter = Future[str] | _LoopWaiter


def _expire(fut: asyncio.Future[str]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("audit append timed out"))


def _settle_on_loop(outcomes: list[tuple[asyncio.Future[str], str | BaseException]]) -> None:
    for fut, r in outcomes:
        if fut.done():  # timed out or cancelled
            continue
        if isinstance(r, BaseException):
            fut.set_exception(r)
        else:
            fut.set_result(r)


def _settle(outcomes: list[tuple[Waiter, str | BaseException]]) -> None:
    """Deliver results: thread waiters directly, loop waiters in one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[str], str | BaseException]]] = {}
    for w, r in outcomes:
        if isinstance(w, _LoopWaiter):
            by_loop.setdefault(w.loop, []).append((w.fut, r))
        elif isinstance(r, BaseException):
            w.set_exception(r)
        else:
            w.set_result(r)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_on_loop, items)


DEFAULT_ORIGIN = "charter.local/audit"
AUTO_BATCH = 32  # appends waiting at once from which writer="auto" starts the writer process


@dataclass(slots=True)
class Metrics:
    appended: int = 0
    failures: int = 0
    batches: int = 0
    checkpoints: int = 0


Spec = tuple[Any, ...]  # a Prepared as sent to the writer: see _spec


def _spec(p: Prepared) -> Spec:
    """What the committer needs of a prepared record, as a plain tuple (cheap to pickle)."""
    return (
        p.record_id, p.time, p.cluster, p.jurisdiction, p.namespace, p.kind, p.name, p.user, p.operation,
        p.decision, p.template, p.statement,
        [(r.policy, r.verdict, r.exception, r.approved_by) for r in p.policies], p.datasets, p.models,
    )  # fmt: skip


def publish(note: str, publishers: Sequence[CheckpointPublisher], metrics: Metrics) -> None:
    """Hand a checkpoint written to the store to every publisher; a failure is logged (the
    checkpoint is in the store, and the next one is published again)."""
    metrics.checkpoints += 1
    for p in publishers:
        try:
            p.publish(note)
        except Exception as e:
            log.error("publishing checkpoint to %s failed: %s", p, e)


def open_log(store: Store, key: Ed25519PrivateKey, origin: str) -> str:
    """Create the store's schema and record the log's origin and key where unset; return the
    log's origin. A log started with another key is said so (its checkpoints name the old one)."""
    kid = keyid(key.public_key())
    try:
        meta = store.init(
            {"origin": origin, "public_key": public_pem(key.public_key()).decode(), "keyid": kid}
        )
    except StoreError as e:
        raise AuditUnavailable(str(e)) from e
    if meta.get("keyid") != kid:
        log.warning(
            "audit log %s was started with key %s; now signing with %s", store.url, meta.get("keyid"), kid
        )
    return meta["origin"]


def raw_key(key: Ed25519PrivateKey) -> bytes:
    """The 32 private bytes, as a writer process receives them (over its socket)."""
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def spawn(entry: str, fd: int) -> subprocess.Popen[bytes]:
    """A fresh interpreter (never a fork of a caller that has threads) running `entry`
    ("module:function") with its end of a socket pair as argv[1]."""
    module, function = entry.split(":")
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            # not the caller's working directory first on sys.path (python -c puts it there)
            "import sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
            f"from {module} import {function}; {function}()",
            str(fd),
        ],
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # the app's stdout is its own (reports, JSON); errors go to stderr
    )


class MetaMoved(Exception):
    """Another writer moved a meta value this commit was conditional on; args[0] is its value."""


class _Committer:
    """Signs, inserts and checkpoints: one transaction per batch, holding the log's lock.

    Indexes are assigned inside the transaction (so several processes still produce one
    gap-free log), each record is signed for its index, and a checkpoint is written in the same
    transaction when due. Runs on the writer thread, or in the writer process."""

    def __init__(
        self,
        store: Store,
        key: Ed25519PrivateKey,
        origin: str,
        checkpoint_every: int,
        checkpoint_seconds: float,
    ) -> None:
        self.store, self.key, self.origin = store, key, origin
        self.kid = keyid(key.public_key())
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_seconds = checkpoint_seconds
        self.frontier = Frontier()
        self.last_cp_time = time.monotonic()

    def due_in(self) -> float:
        return max(0.05, self.checkpoint_seconds - (time.monotonic() - self.last_cp_time))

    def _catch_up(self, tx: Tx, frontier: Frontier, size: int) -> Frontier:
        if frontier.size > size:  # the store lost records we had seen committed: start over
            log.error("audit store has %d records, fewer than the %d this writer saw", size, frontier.size)
            frontier = Frontier()
        if frontier.size < size:
            f = _copy(frontier)
            step = 100_000
            for lo in range(f.size, size, step):
                f.extend(tx.leaf_hashes(lo, min(size, lo + step)))
            if f.size != size:
                raise StoreError(f"audit store has gaps below index {size}")
            return f
        return _copy(frontier)

    def _maybe_checkpoint(self, tx: Tx, f: Frontier, force: bool) -> str | None:
        last = tx.last_checkpoint_size()
        due = f.size - last >= self.checkpoint_every or (
            f.size > last and (force or time.monotonic() - self.last_cp_time >= self.checkpoint_seconds)
        )
        if not due or f.size <= last:
            return None
        note = sign_checkpoint(Checkpoint(self.origin, f.size, f.root()), self.key)
        tx.insert_checkpoint(f.size, now_text(), note)
        return note

    def commit(
        self,
        batch: Sequence[Spec],
        meta: dict[str, str] | None = None,
        expect: tuple[str, str] | None = None,
    ) -> str | None:
        """Append the batch (COMMIT), with `meta` set in the same transaction; return the checkpoint
        note written with it, if any. Raises on any store failure, with nothing appended; raises
        MetaMoved, appending nothing, if `expect` (key, value) no longer holds in the store."""
        key, kid, sign = self.key, self.kid, sign_envelope
        with self.store.transaction() as tx:
            if expect is not None and (found := tx.get_meta(expect[0]) or "0") != expect[1]:
                raise MetaMoved(found)
            start = tx.size()
            f = self._catch_up(tx, self.frontier, start)
            rows = []
            for i, s in enumerate(batch):
                idx = start + i
                rid, t, cl, jur, ns, kind, name, user, op, dec, template, statement, pols, ds, ms = s
                env = sign(key, kid, _payload(template, statement, idx))
                lh = leaf_hash(env)
                f.push(lh)
                rows.append(Row(idx, rid, t, cl, jur, ns, kind, name, user, op, dec, env, lh, pols, ds, ms))
            tx.insert(rows)
            for k, v in (meta or {}).items():
                tx.set_meta(k, v)
            note = self._maybe_checkpoint(tx, f, force=False)
        self.frontier = f
        if note is not None:
            self.last_cp_time = time.monotonic()
        return note

    def checkpoint(self, force: bool) -> str | None:
        with self.store.transaction() as tx:
            f = self._catch_up(tx, self.frontier, tx.size())
            note = self._maybe_checkpoint(tx, f, force=force)
        self.frontier = f
        self.last_cp_time = time.monotonic()
        return note


def _payload(template: bytes, statement: dict[str, Any] | None, index: int) -> bytes:
    if statement is not None:
        statement["predicate"]["logIndex"] = index
        return canonical_json(statement)
    return template.replace(PLACEHOLDER_BYTES, b'"logIndex":%d' % index, 1)


class AuditLog:
    """A DecisionSink writing to a Store. Thread-safe.

    `writer="thread"`: one writer thread builds, signs, inserts and commits.
    `writer="process"`: the writer thread only builds records (which needs the decisions, costly
    to send elsewhere) and hands them to a writer process that signs, inserts and commits, so
    appends use two cores; a reader thread settles the callers when the process reports each
    commit. The process costs about half a second to start.
    `writer="auto"` (default): thread, until AUTO_BATCH or more appends are waiting at once (a
    busy server) and this process may run on two or more CPUs; the process is then started in the
    background, and used once it is ready.
    If the process dies, the writer thread goes back to committing itself."""

    def __init__(
        self,
        store: Store,
        key: Ed25519PrivateKey,
        *,
        origin: str = DEFAULT_ORIGIN,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        publishers: Sequence[CheckpointPublisher] = (),
        batch_max: int = 1024,
        timeout: float = 30.0,
        writer: str = "auto",
    ) -> None:
        if writer not in ("thread", "process", "auto"):
            raise ValueError(f"writer must be 'thread', 'process' or 'auto', not {writer!r}")
        self.store = store
        self.key = key
        self.kid = keyid(key.public_key())
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_seconds = checkpoint_seconds
        self.publishers = list(publishers)
        self.batch_max = batch_max
        self.timeout = timeout
        self.metrics = Metrics()
        self.origin = open_log(store, key, origin)
        self._committer = _Committer(store, key, self.origin, checkpoint_every, checkpoint_seconds)
        # SimpleQueue (C): no Python-level lock and condition per put/get, which the writer and
        # every waiting caller otherwise contend for under the GIL.
        self._queue: queue.SimpleQueue[tuple[Item, Waiter] | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._writer = writer
        self._proc: _WriterProcess | None = None
        self._starter: threading.Thread | None = None
        self._switched: _WriterProcess | None = None
        if writer == "process":
            self._proc = _WriterProcess(self)
        self._thread = threading.Thread(target=self._run, name="charter-audit-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ DecisionSink

    def append(self, decision: Decision, context: DecisionContext) -> str:
        # The record is built by the writer thread: callers only wait, so request threads do not
        # fight the writer for the GIL (measured: this is what makes group commit pay off).
        return self._wait(self._submit((decision, context)))

    async def append_async(self, decision: Decision, context: DecisionContext) -> str:
        """`append` for an event loop. The record is built and signed by the writer thread, not on
        the loop; the loop serves other requests until the writer has COMMITted this record, so
        concurrent reviews share one group commit and none is answered before its record is durable.

        The writer settles every waiter of a batch on the same loop with one `call_soon_threadsafe`
        (one wake-up of the loop per group commit, not one per record)."""
        import asyncio

        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        self._submit((decision, context), _LoopWaiter(loop, fut))
        timer = loop.call_later(self.timeout, _expire, fut)
        try:
            return await fut
        except AuditUnavailable:
            raise
        except Exception as e:
            self.metrics.failures += 1
            log.error("audit append failed: %s", e)
            raise AuditUnavailable(str(e)) from e
        finally:
            timer.cancel()

    def _submit(self, item: Item, waiter: Waiter | None = None) -> Future[str]:
        fut: Future[str] = Future()
        with self._lock:
            if self._closed:
                raise AuditUnavailable("audit log is closed")
            self._queue.put((item, waiter if waiter is not None else fut))
        return fut

    def append_prepared(self, prepared: Prepared) -> str:
        return self._wait(self._submit(prepared))

    def _wait(self, fut: Future[str]) -> str:
        try:
            return fut.result(timeout=self.timeout)
        except AuditUnavailable:
            raise
        except Exception as e:
            self.metrics.failures += 1
            log.error("audit append failed: %s", e)
            raise AuditUnavailable(str(e)) from e

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        if self._starter is not None:
            self._starter.join()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_close()
            proc.close()  # the process writes the final checkpoint
            if proc.dead is None:
                self.store.close()
                return
        try:
            self._checkpoint_only(force=True)
        except (StoreError, AuditUnavailable) as e:
            log.error("final audit checkpoint failed: %s", e)
        self.store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ writer

    def _batches(self) -> Iterator[tuple[list[tuple[Item, Waiter]], bool]]:
        """(everything queued, up to batch_max; whether close was asked), or ([], False) when a
        timed checkpoint may be due."""
        while True:
            try:
                # with a writer process, timed checkpoints are its business
                item = self._queue.get(timeout=self._committer.due_in() if self._proc is None else 1.0)
            except queue.Empty:
                yield [], False
                continue
            stop = item is None
            batch: list[tuple[Item, Waiter]] = [] if item is None else [item]
            while len(batch) < self.batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            yield batch, stop
            if stop:
                return

    def _run(self) -> None:
        for batch, stop in self._batches():
            proc = self._proc
            if proc is not None and proc.dead is not None:
                log.error("%s; the writer thread commits from now on", proc.dead)
                self._proc = proc = None
            if proc is not None:
                if self._switched is not proc:  # this thread commits no more: release its connection
                    self._switched = proc
                    self.store.close()
                self._feed(proc, batch)
            elif batch:
                self._commit(batch)
                if (
                    self._writer == "auto"
                    and len(batch) >= AUTO_BATCH
                    and self._starter is None
                    and _usable_cpus() >= 2
                ):
                    starter = threading.Thread(target=self._start_process, daemon=True)
                    starter.start()
                    self._starter = starter
            elif not stop:
                self._safe_checkpoint()

    def _start_process(self) -> None:
        try:
            proc = _WriterProcess(self)
        except AuditUnavailable as e:
            log.warning("%s; appends stay on the writer thread", e)
            return
        self._proc = proc  # if close() has begun, it sends the close message and waits

    def _feed(self, proc: _WriterProcess, batch: list[tuple[Item, Waiter]]) -> None:
        """Build the records and hand them to the writer process, in small chunks as they are
        built, so that the process signs and commits one chunk while this thread builds the next
        (it merges whatever has arrived into one group commit): one batch sent whole would leave
        each side idle half the time."""
        step = proc.chunk
        for k in range(0, len(batch), step):
            prepared = self._prepare(batch[k : k + step])
            if prepared:
                proc.send(prepared)

    def _safe_checkpoint(self) -> None:
        try:
            self._checkpoint_only(force=False)
        except (StoreError, AuditUnavailable) as e:
            log.error("audit checkpoint failed: %s", e)

    def _prepare(self, items: list[tuple[Item, Waiter]]) -> list[tuple[Prepared, Waiter]]:
        batch: list[tuple[Prepared, Waiter]] = []
        failed: list[tuple[Waiter, str | BaseException]] = []
        for item, fut in items:
            if isinstance(item, Prepared):
                batch.append((item, fut))
                continue
            try:
                batch.append((prepare(*item), fut))
            except Exception as e:  # a record we cannot build is a decision we cannot audit
                self.metrics.failures += 1
                log.error("audit record could not be built: %s", e)
                failed.append((fut, AuditUnavailable(f"audit record could not be built: {e}")))
        if failed:
            _settle(failed)
        return batch

    def _commit(self, items: list[tuple[Item, Waiter]]) -> None:
        batch = self._prepare(items)
        if not batch:
            return
        try:
            note = self._committer.commit([_spec(p) for p, _ in batch])
        except Exception as e:
            self._failed([fut for _, fut in batch], str(e))
            return
        self._committed([(fut, p.record_id) for p, fut in batch], note)

    def _failed(self, waiters: list[Waiter], error: str) -> None:
        self.metrics.failures += len(waiters)
        log.error("audit store unavailable, %d decisions not recorded: %s", len(waiters), error)
        err = AuditUnavailable(f"audit store unavailable: {error}")
        _settle([(w, err) for w in waiters])

    def _committed(self, done: list[tuple[Waiter, str | BaseException]], note: str | None) -> None:
        self.metrics.appended += len(done)
        self.metrics.batches += 1
        _settle(done)
        if note is not None:
            self._published(note)

    def _checkpoint_only(self, force: bool) -> None:
        note = self._committer.checkpoint(force)
        if note is not None:
            self._published(note)

    def _published(self, note: str) -> None:
        publish(note, self.publishers, self.metrics)


class _WriterProcess:
    """The parent's side of writer="process": a pipe to the process and a thread reading its replies.

    Messages to the process: a list of specs (one batch), or None (close). Replies, in order:
    ("ok", note|None) or ("err", text) per batch, ("cp", note) for a timed checkpoint, and
    ("closed", note|None) last."""

    def __init__(self, owner: AuditLog) -> None:
        import socket
        from multiprocessing.connection import Connection

        self.owner = owner
        # Pickled messages over a socket pair; the key goes over the socket, not the command line.
        mine, theirs = socket.socketpair()
        self.proc = spawn("charter.audit.log:_writer_entry", theirs.fileno())
        theirs.close()
        self.conn = Connection(mine.detach())
        c = owner._committer
        raw = raw_key(owner.key)
        self.conn.send(
            (owner.store.url, raw, owner.origin, c.checkpoint_every, c.checkpoint_seconds, owner.batch_max)
        )
        # Ready (its store open) before the first append, or the constructor fails.
        try:
            ready = self.conn.recv() if self.conn.poll(owner.timeout + 30) else ("err", "no answer")
        except (EOFError, OSError) as e:
            ready = ("err", f"exited ({e or 'EOF'})")
        if ready[0] != "ready":
            self.conn.close()
            self.proc.kill()
            self.proc.wait()
            raise AuditUnavailable(f"audit writer process did not start: {ready[1]}")
        self.chunk = 16
        self.closing = False
        self.inflight: collections.deque[list[tuple[Waiter, str]]] = collections.deque()
        self.dead: str | None = None
        self.send_lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="charter-audit-replies", daemon=True)
        self.reader.start()

    def send(self, batch: list[tuple[Prepared, Waiter]]) -> None:
        waiters = [(fut, p.record_id) for p, fut in batch]
        with self.send_lock:
            if self.dead is None:
                self.inflight.append(waiters)  # before sending: the reply may come at once
                try:
                    self.conn.send([_spec(p) for p, _ in batch])
                    return
                except (OSError, ValueError) as e:
                    self.inflight.pop()
                    self.dead = f"audit writer process: {e}"
        self.owner._failed([w for w, _ in waiters], self.dead)

    def send_close(self) -> None:
        with self.send_lock:
            if self.dead is None and not self.closing:
                self.closing = True
                with contextlib.suppress(OSError, ValueError):
                    self.conn.send(None)

    def _read(self) -> None:
        owner = self.owner
        while True:
            try:
                kind, value = self.conn.recv()
            except (EOFError, OSError) as e:
                with self.send_lock:
                    self.dead = self.dead or f"audit writer process exited ({e or 'EOF'})"
                    pending = list(self.inflight)
                    self.inflight.clear()
                for waiters in pending:
                    owner._failed([w for w, _ in waiters], self.dead)
                return
            if kind == "ok":
                owner._committed(list(self.inflight.popleft()), value)
            elif kind == "err":
                owner._failed([w for w, _ in self.inflight.popleft()], value)
            elif kind == "cp":
                owner._published(value)
            elif kind == "closed":
                if value is not None:
                    owner._published(value)
                return

    def close(self) -> None:
        self.reader.join(timeout=self.owner.timeout + 30)
        try:
            self.proc.wait(timeout=30)
        except Exception:  # pragma: no cover
            log.error("audit writer process did not exit; terminating it")
            self.proc.terminate()
        self.conn.close()


def _writer_entry() -> None:
    """`python -c ...` entry of the writer process: argv[1] is its end of the socket pair."""
    import signal
    import sys
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (Ctrl-C reaches both)
    conn = Connection(int(sys.argv[1]))
    try:
        args = conn.recv()
    except EOFError:
        return
    _writer_main(conn, *args)


def _writer_main(
    conn: Any, url: str, key_bytes: bytes, origin: str, every: int, seconds: float, batch_max: int
) -> None:
    """The writer process: sign, insert, commit what the parent built; report each batch in order."""
    from .store import open_store

    try:
        store = open_store(url)
        store.meta()  # opens it: fail now, not at the first append
    except Exception as e:
        conn.send(("err", str(e)))
        return
    c = _Committer(store, Ed25519PrivateKey.from_private_bytes(key_bytes), origin, every, seconds)
    conn.send(("ready", None))
    try:
        while True:
            try:
                if not conn.poll(c.due_in()):
                    note = _safe(c.checkpoint, False)
                    if note is not None:
                        conn.send(("cp", note))
                    continue
                # Everything the parent has sent so far becomes one group commit (one fsync),
                # reported batch by batch.
                msgs = [conn.recv()]
                n = len(msgs[0] or ())
                while msgs[-1] is not None and n < batch_max and conn.poll():
                    msgs.append(conn.recv())
                    n += len(msgs[-1] or ())
            except EOFError:  # the parent is gone: nobody is waiting for anything
                _safe(c.checkpoint, True)
                return
            stop = msgs[-1] is None
            batches = [m for m in msgs if m is not None]
            if batches:
                try:
                    note = c.commit([s for b in batches for s in b])
                except Exception as e:
                    log.error("audit store unavailable, %d decisions not recorded: %s", n, e)
                    for _ in batches:
                        conn.send(("err", str(e)))
                else:
                    for k in range(len(batches)):
                        conn.send(("ok", note if k == len(batches) - 1 else None))
            if stop:
                conn.send(("closed", _safe(c.checkpoint, True)))
                return
    finally:
        c.store.close()


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, which children inherit): a writer process on
    the same single CPU only adds its own cost (measured: the webhook bench pins its server to one
    core, and a writer process there took p99 at 500 reviews/s from 38 to 187 ms)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _safe(fn: Callable[[bool], str | None], force: bool) -> str | None:
    try:
        return fn(force)
    except (StoreError, AuditUnavailable) as e:
        log.error("audit checkpoint failed: %s", e)
        return None


def _copy(f: Frontier) -> Frontier:
    g = Frontier()
    g.size, g.stack = f.size, list(f.stack)
    return g
