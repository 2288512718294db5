"""`charter serve`'s audit sink: durable in a local spool before answering, signed into the log by
a low-priority applier process.

Why: on one core, signing, canonicalizing and indexing a record (~600 µs of CPU) on the webhook's
own process competes with evaluation for the GIL and the core, and a review answered only after
its batch is signed and committed waits for all of it. Here the event loop builds the statement,
appends it to the spool and makes it durable with one `fdatasync` per loop turn (reviews decided
in the same turn share it); the applier, a separate process at SCHED_IDLE priority, signs,
inserts and checkpoints in the store when the core is otherwise idle, and records how far it has
applied in the same transaction as the records, so a crash of either side neither loses nor
duplicates a record. A decision is answered only once it is durable in the spool; if the applier
falls more than `max_lag` bytes behind, appends wait for it, then fail (AuditUnavailable).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from charter.engine.results import Decision
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .crypto import keyid, public_pem
from .log import DEFAULT_ORIGIN, Metrics, _Committer, _spec
from .publish import CheckpointPublisher
from .record import prepared, statement
from .sink import AuditUnavailable, DecisionContext
from .spool import Spool, SpoolError, position, read, segments, split
from .store import SQLiteStore, Store, StoreError, open_store

log = logging.getLogger("charter.audit")

APPLY_BATCH = 256  # entries per applier transaction
DURABLE_SECONDS = 0.5  # how often the applier makes its commits durable (and the spool releasable)
MAX_LAG = 32 << 20  # spool bytes the applier may be behind before appends wait for it


def position_key(spool_id: str) -> str:
    """The store's meta key holding how far a spool has been applied."""
    return f"spool:{spool_id}"


class SpooledLog:
    """A DecisionSink: spool first (durable before the answer), signed log second (the applier).

    The event loop (or, for `append`, any thread: a lock serializes them) owns the spool."""

    def __init__(
        self,
        store: Store,
        key: Ed25519PrivateKey,
        spool_dir: str | Path,
        *,
        origin: str = DEFAULT_ORIGIN,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        publishers: Sequence[CheckpointPublisher] = (),
        max_lag: int = MAX_LAG,
        timeout: float = 30.0,
    ) -> None:
        self.store, self.key = store, key
        self.publishers = list(publishers)
        self.max_lag, self.timeout = max_lag, timeout
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.metrics = Metrics()
        kid = keyid(key.public_key())
        try:
            meta = store.init(
                {"origin": origin, "public_key": public_pem(key.public_key()).decode(), "keyid": kid}
            )
        except StoreError as e:
            raise AuditUnavailable(str(e)) from e
        finally:
            store.close()  # the applier writes; this process only spools
        self.origin = meta["origin"]
        if meta.get("keyid") != kid:
            log.warning(
                "audit log %s was started with key %s; now signing with %s", store.url, meta.get("keyid"), kid
            )
        try:
            self.spool = Spool(spool_dir)
        except SpoolError as e:
            raise AuditUnavailable(str(e)) from e
        self._lock = threading.Lock()
        self._pending: list[asyncio.Future[str]] = []
        self._flush_at: asyncio.AbstractEventLoop | None = None
        self._reader_on: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.applied = 0  # what the applier reports as committed (not necessarily durable yet)
        self.durable = 0
        self.applier_error: str | None = None
        self._restarted = 0.0
        self._applier = _Applier(self)

    # ------------------------------------------------------------ DecisionSink

    def append(self, decision: Decision, context: DecisionContext) -> str:
        rid, payload = self._entry(decision, context)
        with self._lock:
            self._check_open()
            self._wait_for_applier_sync()
            try:
                self.spool.write([payload])
                end = self.spool.sync()
            except SpoolError as e:
                self._fail(str(e))
            self._applier.tell(end)
        self.metrics.appended += 1
        return rid

    async def append_async(self, decision: Decision, context: DecisionContext) -> str:
        """Append on the event loop: the entry is written now; one `fdatasync` at the end of this
        loop turn makes every entry written in the turn durable, and only then are they answered."""
        loop = asyncio.get_running_loop()
        if self._reader_on is not loop:
            self._reader_on = loop
            self._applier.watch(loop)
        rid, payload = self._entry(decision, context)
        self._check_open()
        if self._lag() > self.max_lag:
            await self._wait_for_applier(loop)
        try:
            self.spool.write([payload])
        except SpoolError as e:
            self._fail(str(e))
        fut: asyncio.Future[str] = loop.create_future()
        self._pending.append(fut)
        if self._flush_at is None:
            self._flush_at = loop
            loop.call_soon(self._flush)
        await fut
        self.metrics.appended += 1
        return rid

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                end = self.spool.sync()
            except SpoolError as e:
                log.error("%s", e)
                end = self.spool.synced
            self._applier.close(end)
            self.spool.close()
            if self.durable:
                self.spool.release(self.durable)

    def __enter__(self) -> SpooledLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the applier has committed everything spooled so far (tests, shutdown)."""
        end = self.spool.synced
        deadline = time.monotonic() + timeout
        while self.applied < end and time.monotonic() < deadline:
            self._applier.poll(0.05)
        return self.applied >= end

    # ------------------------------------------------------------ internals

    def _entry(self, decision: Decision, context: DecisionContext) -> tuple[str, bytes]:
        try:
            st = statement(decision, context)
            return st["predicate"]["decisionId"], json.dumps(st, separators=(",", ":")).encode()
        except Exception as e:  # a record we cannot build is a decision we cannot audit
            self.metrics.failures += 1
            log.error("audit record could not be built: %s", e)
            raise AuditUnavailable(f"audit record could not be built: {e}") from e

    def _check_open(self) -> None:
        if self._closed:
            raise AuditUnavailable("audit log is closed")

    def _fail(self, error: str) -> None:
        self.metrics.failures += 1
        log.error("audit spool unavailable: %s", error)
        raise AuditUnavailable(f"audit spool unavailable: {error}")

    def _flush(self) -> None:
        self._flush_at = None
        pending, self._pending = self._pending, []
        try:
            end = self.spool.sync()
        except SpoolError as e:
            self.metrics.failures += len(pending)
            log.error("audit spool unavailable, %d decisions not recorded: %s", len(pending), e)
            err = AuditUnavailable(f"audit spool unavailable: {e}")
            for f in pending:
                if not f.done():
                    f.set_exception(err)
            return
        for f in pending:
            if not f.done():
                f.set_result("")
        self._applier.tell(end)

    def _lag(self) -> int:
        (es, eo), (aps, apo) = split(self.spool.end), split(self.applied)
        return (es - aps) * self.spool.segment_bytes + eo - apo if es > aps else eo - apo

    async def _wait_for_applier(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = loop.time() + self.timeout
        while self._lag() > self.max_lag:
            if loop.time() > deadline:
                self._fail(
                    f"the applier is {self._lag()} bytes behind the spool ({self.applier_error or 'busy'})"
                )
            self._applier.revive()
            await asyncio.sleep(0.005)

    def _wait_for_applier_sync(self) -> None:
        deadline = time.monotonic() + self.timeout
        self._applier.poll(0)
        while self._lag() > self.max_lag:
            if time.monotonic() > deadline:
                self._fail(
                    f"the applier is {self._lag()} bytes behind the spool ({self.applier_error or 'busy'})"
                )
            self._applier.revive()
            self._applier.poll(0.005)

    # replies from the applier

    def _on_reply(self, kind: str, value: Any) -> None:
        if kind == "applied":
            self.applied = max(self.applied, int(value))
            self.applier_error = None
            self.metrics.batches += 1
        elif kind == "durable":
            self.durable = max(self.durable, int(value))
            if not self._closed:
                self.spool.release(self.durable)
        elif kind == "cp":
            self._published(str(value))
        elif kind == "err":
            self.applier_error = str(value)
            self.metrics.failures += 1
            log.error("audit applier: %s", value)

    def _published(self, note: str) -> None:
        self.metrics.checkpoints += 1
        for p in self.publishers:
            try:
                p.publish(note)
            except Exception as e:  # the checkpoint is in the store; publishing is retried next time
                log.error("publishing checkpoint to %s failed: %s", p, e)


class _Applier:
    """The parent's side of the applier process: a pipe, its replies, and restarts if it dies."""

    def __init__(self, owner: SpooledLog) -> None:
        self.owner = owner
        self.told = -1
        self.loop: asyncio.AbstractEventLoop | None = None
        self._start()

    def _start(self) -> None:
        import socket
        import subprocess
        from multiprocessing.connection import Connection

        o = self.owner
        mine, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
                "from charter.audit.spooled import _applier_entry; _applier_entry()",
                str(theirs.fileno()),
            ],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(mine.detach())
        raw = o.key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        self.conn.send(
            (
                o.store.url,
                raw,
                o.origin,
                o.checkpoint_every,
                o.checkpoint_seconds,
                str(o.spool.dir),
                o.spool.id,
            )
        )
        try:
            ready = self.conn.recv() if self.conn.poll(o.timeout + 30) else ("err", "no answer")
        except (EOFError, OSError) as e:
            ready = ("err", f"exited ({e or 'EOF'})")
        if ready[0] != "ready":
            self.conn.close()
            self.proc.kill()
            self.proc.wait()
            raise AuditUnavailable(f"audit applier did not start: {ready[1]}")
        # nothing lies below the oldest segment still in the spool
        floor = position(min(segments(o.spool.dir), default=o.spool.seq), 0)
        o.applied = o.durable = max(int(ready[1]), floor)
        self.dead = False
        self.told = -1
        self.tell(o.spool.synced)  # what an earlier run left unapplied is applied first
        if self.loop is not None:
            self.watch(self.loop)

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read replies on the event loop as they come (no thread: nothing else wants the GIL)."""
        self.loop = loop
        loop.add_reader(self.conn.fileno(), self.poll, 0)

    def tell(self, end: int) -> None:
        """The spool is durable up to `end`: the applier may apply that far."""
        if end <= self.told or self.dead:
            return
        try:
            self.conn.send(("end", end))
            self.told = end
        except (OSError, ValueError) as e:
            self._died(f"audit applier: {e}")

    def poll(self, timeout: float) -> None:
        try:
            while self.conn.poll(timeout):
                kind, value = self.conn.recv()
                self.owner._on_reply(kind, value)
                if kind == "closed":
                    return
                timeout = 0
        except (EOFError, OSError, ValueError) as e:
            self._died(f"audit applier exited ({e or 'EOF'})")

    def _died(self, why: str) -> None:
        if self.dead:
            return
        self.dead = True
        self.owner.applier_error = why
        self.owner.metrics.failures += 1
        log.error("%s; decisions stay in the spool until it is restarted", why)
        if self.loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(self.conn.fileno())
        self.revive()

    def revive(self) -> None:
        """Restart a dead applier (at most every 5 s): it resumes from the store's position."""
        o = self.owner
        if not self.dead or o._closed or time.monotonic() - o._restarted < 5.0:
            return
        o._restarted = time.monotonic()
        self.conn.close()
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        try:
            self._start()
        except AuditUnavailable as e:
            log.error("%s", e)

    def close(self, end: int) -> None:
        o = self.owner
        if self.loop is not None:
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                self.loop.remove_reader(self.conn.fileno())
        if self.dead:  # one more try, so that a clean shutdown leaves nothing in the spool
            o._restarted = 0.0
            o._closed, closed = False, o._closed
            self.revive()
            o._closed = closed
        if not self.dead:
            self.tell(end)
            try:
                self.conn.send(None)
                deadline = time.monotonic() + o.timeout + 30
                while time.monotonic() < deadline:
                    if not self.conn.poll(0.5):
                        continue
                    kind, value = self.conn.recv()
                    o._on_reply(kind, value)
                    if kind == "closed":
                        break
            except (EOFError, OSError, ValueError) as e:
                log.error(
                    "audit applier exited while closing (%s); the spool keeps what it had not applied", e
                )
        if o.applied < end:
            log.error(
                "audit applier stopped %d spool bytes short of the end; they are applied at the next start",
                o._lag(),
            )
        self.conn.close()
        try:
            self.proc.wait(timeout=30)
        except Exception:  # pragma: no cover
            self.proc.kill()


# ---------------------------------------------------------------- the applier process


def _applier_entry() -> None:
    import signal
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    conn = Connection(int(sys.argv[1]))
    try:
        args = conn.recv()
    except EOFError:
        return
    _lower_priority()
    _applier_main(conn, *args)


def _lower_priority() -> None:
    """SCHED_IDLE: the kernel runs the applier only when the webhook has nothing to do, and
    preempts it the moment a review arrives (measured: an idle-priority CPU hog on the webhook's
    core leaves its p99 where it was)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


def _applier_main(
    conn: Any, url: str, raw_key: bytes, origin: str, every: int, seconds: float, spool_dir: str, sid: str
) -> None:
    try:
        store = open_store(url)
        if isinstance(store, SQLiteStore):
            store.synchronous = "NORMAL"  # durable at `sync`; the spool keeps entries until then
        store.sync()  # what an earlier run committed is durable before the spool lets go of it
        applied = int(store.meta().get(position_key(sid), "0"))
    except Exception as e:
        conn.send(("err", str(e)))
        return
    c = _Committer(store, Ed25519PrivateKey.from_private_bytes(raw_key), origin, every, seconds)
    conn.send(("ready", applied))
    key = position_key(sid)
    end, durable, closing = applied, applied, False
    last_sync = time.monotonic()
    backoff = 0.0
    try:
        while True:
            wait = c.due_in()
            if applied > durable:
                wait = min(wait, max(0.0, DURABLE_SECONDS - (time.monotonic() - last_sync)))
            if applied < end:
                wait = min(wait, backoff)
            try:
                while conn.poll(wait if not closing else 0):
                    msg = conn.recv()
                    if msg is None:
                        closing = True
                    else:
                        end = max(end, msg[1])
                    wait = 0
            except EOFError:  # the parent is gone: apply what is durable, then stop
                closing = True
            if applied < end:
                try:
                    applied = _apply(c, spool_dir, key, applied, end)
                    conn.send(("applied", applied))
                    backoff = 0.0
                except (StoreError, AuditUnavailable) as e:
                    conn.send(("err", f"store: {e}"))
                    backoff = min(5.0, max(0.1, backoff * 2))
                    if closing:
                        break
                    time.sleep(backoff)
                    continue
                except SpoolError as e:  # a corrupt entry: stop here, never skip it
                    conn.send(("err", str(e)))
                    backoff = 5.0
                    if closing:
                        break
                    time.sleep(backoff)
                    continue
                if applied < end and not closing:
                    continue  # more to apply: another transaction, the next wait is zero
            if applied > durable and (closing or time.monotonic() - last_sync >= DURABLE_SECONDS):
                store.sync()
                durable, last_sync = applied, time.monotonic()
                conn.send(("durable", durable))
            if closing and applied >= end:
                note = _checkpoint(c, True)
                store.sync()
                conn.send(("closed", note))
                return
            if closing:  # could not apply everything: say so, leave the rest in the spool
                conn.send(("closed", None))
                return
            if time.monotonic() - c.last_cp_time >= c.checkpoint_seconds:
                note = _checkpoint(c, False)
                if note is not None:
                    conn.send(("cp", note))
    except (OSError, ValueError):  # the parent's end of the pipe is gone
        return
    finally:
        store.close()


def _apply(c: _Committer, spool_dir: str, key: str, start: int, end: int) -> int:
    """One transaction: up to APPLY_BATCH entries from `start`, with the position after them."""
    specs, pos = [], start
    for after, payload in read(spool_dir, start, end):
        try:
            specs.append(_spec(prepared(json.loads(payload))))
        except (ValueError, KeyError, TypeError) as e:
            raise SpoolError(
                f"{spool_dir}: entry before position {after:#x} is not a decision statement: {e}"
            ) from e
        pos = after
        if len(specs) >= APPLY_BATCH:
            break
    if pos == start:
        return end  # nothing between (a released segment's tail): caught up
    c.commit(specs, meta={key: str(pos)})
    return pos


def _checkpoint(c: _Committer, force: bool) -> str | None:
    try:
        return c.checkpoint(force)
    except (StoreError, AuditUnavailable) as e:
        log.error("audit checkpoint failed: %s", e)
        return None
