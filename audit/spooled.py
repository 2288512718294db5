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
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from charter.engine.results import Decision
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import spool
from .log import DEFAULT_ORIGIN, MetaMoved, Metrics, _Committer, _spec, open_log, publish, raw_key, spawn
from .publish import CheckpointPublisher
from .record import prepared, statement
from .sink import AuditUnavailable, DecisionContext
from .spool import SEGMENT_BYTES, Spool, SpoolError, distance, position, prepare_spare, read, segments
from .store import SQLiteStore, Store, StoreError, open_store

log = logging.getLogger("charter.audit")

APPLY_BATCH = 256  # entries per applier transaction
APPLY_DELAY = 0.05  # seconds entries wait for more to share their transaction (the answer does not wait)
APPLY_BYTES = 256 << 10  # ... unless this much is pending
TELL_SECONDS = 0.01  # how often the event loop tells the applier how far the spool is durable
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
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.store, self.key = store, key
        self.publishers = list(publishers)
        self.max_lag, self.timeout = max_lag, timeout
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.metrics = Metrics()
        try:
            self.origin = open_log(store, key, origin)
        finally:
            store.close()  # the applier writes; this process only spools
        try:
            self.spool = Spool(spool_dir, segment_bytes)
        except SpoolError as e:
            raise AuditUnavailable(str(e)) from e
        self._lock = threading.Lock()
        self._pending: list[asyncio.Future[str]] = []
        self._progress: list[asyncio.Future[None]] = []  # appends waiting for the applier to catch up
        self._tell_at: asyncio.TimerHandle | None = None
        self._flush_due = False  # a flush is scheduled for this loop turn
        self._reader_on: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.applied = 0  # what the applier reports as committed (not necessarily durable yet)
        self.durable = 0
        self.applier_error: str | None = None
        self._restarted = 0.0
        try:
            self._applier = _Applier(self)
        except BaseException:
            self.spool.close()
            raise

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
            self._check_open()
        try:
            self.spool.write([payload])
        except SpoolError as e:
            self._fail(str(e))
        fut: asyncio.Future[str] = loop.create_future()
        self._pending.append(fut)
        if not self._flush_due:
            self._flush_due = True
            loop.call_soon(self._flush)
        await fut
        self.metrics.appended += 1
        return rid

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._tell_at is not None:
                self._tell_at.cancel()
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

    def backlog(self) -> float:
        """Spool bytes not yet applied (a metric)."""
        return float(self._lag())

    def applier_up(self) -> bool:
        return not self._applier.dead and self.applier_error is None

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
            # ensure_ascii=False: text the log cannot hold (a lone surrogate) fails here, before
            # the answer, as it would when signing, not later in the applier
            return st["predicate"]["decisionId"], json.dumps(
                st, separators=(",", ":"), ensure_ascii=False
            ).encode()
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
        self._flush_due = False
        pending, self._pending = self._pending, []
        try:
            self.spool.sync()
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
        # The applier waits APPLY_DELAY for more anyway: telling it once per TELL_SECONDS spares a
        # message and a wake-up of the applier per loop turn.
        loop = asyncio.get_running_loop()
        if self._tell_at is None:
            self._tell_at = loop.call_later(TELL_SECONDS, self._tell)

    def _tell(self) -> None:
        self._tell_at = None
        self._applier.tell(self.spool.synced)

    def _lag(self) -> int:
        return distance(self.applied, self.spool.end, self.spool.segment_bytes)

    async def _wait_for_applier(self, loop: asyncio.AbstractEventLoop) -> None:
        """Backpressure: wait (without spinning: the applier runs only when this process is idle)
        until the applier reports progress that brings the lag under the bound."""
        deadline = loop.time() + self.timeout
        self._applier.tell(self.spool.synced)
        while self._lag() > self.max_lag:
            left = deadline - loop.time()
            if left <= 0 or self._applier.dead:
                self._fail(
                    f"the applier is {self._lag()} bytes behind the spool ({self.applier_error or 'busy'})"
                )
            fut: asyncio.Future[None] = loop.create_future()
            self._progress.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, min(left, 1.0))
            self._applier.revive()

    def _wait_for_applier_sync(self) -> None:
        deadline = time.monotonic() + self.timeout
        self._applier.poll(0)
        while self._lag() > self.max_lag:
            if time.monotonic() > deadline or self._applier.dead:
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
            progress, self._progress = self._progress, []
            for f in progress:
                if not f.done():
                    f.set_result(None)
        elif kind == "durable":
            self.durable = max(self.durable, int(value))
            if not self._closed:
                self.spool.release(self.durable)
        elif kind == "cp":
            self._published(str(value))
        elif kind == "closed":
            if value is not None:
                self._published(str(value))
        elif kind == "err":
            self.applier_error = str(value)
            self.metrics.failures += 1
            log.error("audit applier: %s", value)

    def _published(self, note: str) -> None:
        publish(note, self.publishers, self.metrics)


class _Channel:
    """Messages over a SOCK_SEQPACKET socket: one JSON value per packet, so a packet is sent whole or
    not at all (the parent's end is non-blocking: the event loop watches it and never waits on it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, msg: Any) -> bool:
        """Send; False if it would block (the peer is behind)."""
        try:
            self.sock.send(json.dumps(msg).encode())
            return True
        except BlockingIOError:
            return False

    def recv(self, timeout: float | None) -> list[Any]:
        """Every message waiting, after waiting up to `timeout` for the first; raises EOFError."""
        out: list[Any] = []
        ready = select.select([self.sock], [], [], timeout)[0] if timeout != 0 else [self.sock]
        while ready:
            try:
                data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data:
                if out:
                    break
                raise EOFError
            out.append(json.loads(data))
        return out

    def close(self) -> None:
        self.sock.close()


class _Applier:
    """The parent's side of the applier process: a channel, its replies, and restarts if it dies."""

    def __init__(self, owner: SpooledLog) -> None:
        self.owner = owner
        self.loop: asyncio.AbstractEventLoop | None = None
        self.dead = True
        self._restarting = False
        self._start()

    def _start(self) -> None:
        self._adopt(*self._spawn())

    def _spawn(self) -> tuple[subprocess.Popen[bytes], _Channel, int]:
        """Start an applier process and wait until it is ready (its store open): blocking, and
        touching nothing of this object, so that a restart can run on a thread."""
        o = self.owner
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        chan = _Channel(mine)
        try:
            proc = spawn("charter.audit.spooled:_applier_entry", theirs.fileno())
        except OSError:
            chan.close()
            raise
        finally:
            theirs.close()
        # the key goes over the socket, not the command line
        config = [
            o.store.url, raw_key(o.key).hex(), o.origin, o.checkpoint_every, o.checkpoint_seconds,
            str(o.spool.dir), o.spool.id, o.spool.segment_bytes,
        ]  # fmt: skip
        try:
            chan.send(config)
            got = chan.recv(o.timeout + 30)
            ready = got[0] if got else ["err", "no answer"]
        except (EOFError, OSError) as e:
            ready = ["err", f"exited ({e or 'EOF'})"]
        if ready[0] != "ready":
            chan.close()
            proc.kill()
            proc.wait()
            raise AuditUnavailable(f"audit applier did not start: {ready[1]}")
        return proc, chan, int(ready[1])

    def _adopt(self, proc: subprocess.Popen[bytes], chan: _Channel, applied: int) -> None:
        o = self.owner
        self.proc, self.chan = proc, chan
        chan.sock.setblocking(False)
        # nothing lies below the oldest segment still in the spool
        floor = position(min(segments(o.spool.dir), default=o.spool.seq), 0)
        o.applied = o.durable = max(applied, floor)
        self.dead = False
        self.told, self.want = -1, -1
        self.tell(o.spool.synced)  # what an earlier run left unapplied is applied first
        if self.loop is not None:
            self.watch(self.loop)

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read replies on the event loop as they come (no thread: nothing else wants the GIL)."""
        self.loop = loop
        if not self.dead and not loop.is_closed():
            loop.add_reader(self.chan.fileno(), self.poll, 0)

    def _unwatch(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                self.loop.remove_reader(self.chan.fileno())
                self.loop.remove_writer(self.chan.fileno())

    def tell(self, end: int) -> None:
        """The spool is durable up to `end`: the applier may apply that far. Never blocks: if the
        applier is behind on reading, the newest position is sent once it can take it."""
        self.want = max(self.want, end)
        if self.want <= self.told or self.dead:
            return
        try:
            sent = self.chan.send(["end", self.want])
        except OSError as e:
            self._died(f"audit applier: {e}")
            return
        if sent:
            self.told = self.want
        elif self.loop is not None and not self.loop.is_closed():
            self.loop.add_writer(self.chan.fileno(), self._writable)

    def _writable(self) -> None:
        if self.loop is not None:
            self.loop.remove_writer(self.chan.fileno())
        self.tell(self.want)

    def poll(self, timeout: float) -> None:
        if self.dead:
            return
        try:
            for kind, value in self.chan.recv(timeout):
                self.owner._on_reply(kind, value)
        except (EOFError, OSError, ValueError) as e:
            self._died(f"audit applier exited ({e or 'EOF'})")

    def _died(self, why: str) -> None:
        if self.dead:
            return
        self._unwatch()
        self.dead = True
        self.owner.applier_error = why
        self.owner.metrics.failures += 1
        log.error("%s; decisions stay in the spool until it is restarted", why)
        self.revive()
        if self.dead and not self._restarting and self.loop is not None and not self.loop.is_closed():
            self.loop.call_later(5.1, self.revive)  # restarts are at most every 5 s: try again then

    def revive(self, force: bool = False) -> None:
        """Restart a dead applier (at most every 5 s): it resumes from the store's position. On the
        event loop the new process is started on a thread (it takes ~0.5 s, longer with a slow
        store) and adopted by the loop once ready; reviews are served meanwhile."""
        o = self.owner
        if (
            not self.dead
            or self._restarting
            or (not force and (o._closed or time.monotonic() - o._restarted < 5.0))
        ):
            return
        o._restarted = time.monotonic()
        self.chan.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        loop = self.loop
        if loop is not None and loop.is_running():
            self._restarting = True
            threading.Thread(target=self._restart_on_thread, args=(loop,), daemon=True).start()
            return
        try:
            self._start()
        except (AuditUnavailable, OSError) as e:
            log.error("audit applier did not restart: %s", e)

    def _restart_on_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            started: tuple[subprocess.Popen[bytes], _Channel, int] | BaseException = self._spawn()
        except (AuditUnavailable, OSError) as e:
            started = e
        with contextlib.suppress(RuntimeError):  # the loop has closed: close() restarts it itself
            loop.call_soon_threadsafe(self._on_restart, started)

    def _on_restart(self, started: tuple[subprocess.Popen[bytes], _Channel, int] | BaseException) -> None:
        self._restarting = False
        if isinstance(started, BaseException):
            log.error("audit applier did not restart: %s", started)
            if self.loop is not None and not self.loop.is_closed():
                self.loop.call_later(5.1, self.revive)
            return
        if self.owner._closed:  # closing meanwhile: close() has restarted one itself, or will
            proc, chan, _ = started
            chan.close()
            proc.wait()
            return
        self._adopt(*started)
        log.info("audit applier restarted")

    def close(self, end: int) -> None:
        o = self.owner
        self._unwatch()
        self.loop = None
        self.revive(force=True)  # a dead applier gets one more try, so that a clean stop leaves nothing
        if not self.dead:
            self.chan.sock.setblocking(True)
            self.told = -1
            self.tell(end)
            try:
                self.chan.send(None)
                deadline = time.monotonic() + o.timeout + 30
                closed = False
                while not closed and time.monotonic() < deadline:
                    for kind, value in self.chan.recv(0.5):
                        o._on_reply(kind, value)
                        closed = closed or kind == "closed"
            except (EOFError, OSError, ValueError) as e:
                log.error(
                    "audit applier exited while closing (%s); the spool keeps what it had not applied", e
                )
        if o.applied < end:
            log.error(
                "audit applier stopped %d spool bytes short of the end; they are applied at the next start",
                o._lag(),
            )
        self.chan.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()


# ---------------------------------------------------------------- the applier process


def _applier_entry() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    chan = _Channel(socket.socket(fileno=int(sys.argv[1])))
    try:
        config = chan.recv(None)[0]
    except (EOFError, IndexError):
        return
    _lower_priority()
    _applier_main(chan, *config)


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
    conn: _Channel,
    url: str,
    key_hex: str,
    origin: str,
    every: int,
    seconds: float,
    spool_dir: str,
    sid: str,
    segment_bytes: int,
) -> None:
    try:
        store = open_store(url)
        if isinstance(store, SQLiteStore):
            store.synchronous = "NORMAL"  # durable at `sync`; the spool keeps entries until then
        store.sync()  # what an earlier run committed is durable before the spool lets go of it
        applied = int(store.meta().get(position_key(sid), "0"))
    except Exception as e:
        conn.send(("err", _bounded(str(e))))
        return
    c = _Committer(
        store, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key_hex)), origin, every, seconds
    )
    conn.send(("ready", applied))
    key = position_key(sid)
    end, durable, closing = applied, applied, False
    last_sync = time.monotonic()
    pending_since: float | None = None  # when entries began waiting to be applied
    retry_at, backoff = 0.0, 0.0
    try:
        while True:
            now = time.monotonic()
            wait = c.due_in()
            if applied > durable:
                wait = min(wait, DURABLE_SECONDS - (now - last_sync))
            if applied < end:
                pending_since = now if pending_since is None else pending_since
                wait = min(wait, _apply_at(pending_since, applied, end, retry_at) - now)
            try:
                for msg in conn.recv(0 if closing else max(0.0, wait)):
                    if msg is None:
                        closing = True
                    else:
                        end = max(end, msg[1])
            except EOFError:  # the parent is gone: apply what is durable, then stop
                closing = True
            now = time.monotonic()
            if applied < end:
                pending_since = now if pending_since is None else pending_since
                if closing or now >= _apply_at(pending_since, applied, end, retry_at):
                    before, notes, rejected = applied, [], []
                    try:
                        while applied < end:
                            applied = _apply(c, spool_dir, key, applied, end, notes, rejected)
                        failure = None
                    except (StoreError, AuditUnavailable, SpoolError) as e:
                        # the store is down, or an entry is corrupt: keep it in the spool, never skip
                        failure = f"store: {e}" if not isinstance(e, SpoolError) else str(e)
                    if notes:  # a checkpoint is published only once the records it covers are durable
                        durable = _sync(store, conn, applied, durable)
                        last_sync = time.monotonic()
                        for note in notes:
                            conn.send(("cp", note))
                    if applied > before:
                        conn.send(("applied", applied))
                    for r in rejected:
                        conn.send(("err", _bounded(r)))
                    if failure is None:
                        pending_since, backoff = None, 0.0
                    else:
                        conn.send(("err", _bounded(failure)))
                        if closing:
                            conn.send(("closed", None))
                            return
                        backoff = min(5.0, max(0.1, backoff * 2))
                        retry_at = time.monotonic() + backoff
                        continue
            if applied > durable and (closing or now - last_sync >= DURABLE_SECONDS):
                last_sync = time.monotonic()
                durable = _sync(store, conn, applied, durable)
            if closing or time.monotonic() - c.last_cp_time >= c.checkpoint_seconds:
                note = _checkpoint(c, closing)
                if note is not None:
                    durable = _sync(store, conn, applied, durable)
                if closing:
                    conn.send(("closed", note))
                    return
                if note is not None:
                    conn.send(("cp", note))
            if applied >= end:
                try:
                    prepare_spare(spool_dir, segment_bytes)
                except OSError as e:  # the writer zero-fills its next segment itself
                    log.error("audit spool %s: preparing the next segment: %s", spool_dir, e)
    except (OSError, ValueError):  # the parent's end of the pipe is gone
        return
    finally:
        store.close()


def _bounded(text: str, limit: int = 4000) -> str:
    """An error for the parent, short enough for one packet (the channel reads 64 KiB at most)."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _sync(store: Store, conn: _Channel, applied: int, durable: int) -> int:
    """Make the store's commits durable; report and return the new durable position."""
    try:
        store.sync()
    except StoreError as e:  # the spool keeps everything above `durable`
        conn.send(("err", _bounded(f"store: {e}")))
        return durable
    conn.send(("durable", applied))
    return applied


def _apply_at(since: float, applied: int, end: int, retry_at: float) -> float:
    """When to apply what is pending: after a short wait, so that one transaction takes many
    records (their index pages written once, not once per record), sooner if much is pending."""
    soon = since if distance(applied, end) >= APPLY_BYTES else since + APPLY_DELAY
    return max(soon, retry_at)


def _apply(
    c: _Committer, spool_dir: str, key: str, start: int, end: int, notes: list[str], rejected: list[str]
) -> int:
    """One transaction: up to APPLY_BATCH entries from `start`, with the position after them; a
    checkpoint written with them goes to `notes`. The entries before a corrupt one are applied;
    the next call starts at it, and raises. An intact entry that is no decision statement (which
    the event loop never writes) is set aside in `rejected/` and named in `rejected`, so that one
    bad statement cannot hold up every decision after it."""
    specs, pos = [], start
    try:
        for after, payload in read(spool_dir, start, end):
            try:
                specs.append(_spec(prepared(json.loads(payload))))
            except Exception as e:
                rejected.append(_set_aside(spool_dir, after, payload, e))
            pos = after
            if len(specs) >= APPLY_BATCH:
                break
    except SpoolError:
        if pos == start:
            raise
    if pos == start:
        return end  # nothing between (a released segment's tail): caught up
    try:
        note = c.commit(specs, meta={key: str(pos)}, expect=(key, str(start)))
    except MetaMoved as e:  # an applier of an earlier run, still finishing, got there first
        return int(e.args[0])
    if note is not None:
        notes.append(note)
    return pos


def _set_aside(spool_dir: str, after: int, payload: bytes, error: Exception) -> str:
    where = Path(spool_dir) / "rejected" / f"{after:016x}.json"
    where.parent.mkdir(exist_ok=True)
    where.write_bytes(payload)
    spool._fsync(where)
    spool._fsync(where.parent)
    return f"the spool entry ending at position {after:#x} is no decision statement ({type(error).__name__}: {error}); set aside as {where}"


def _checkpoint(c: _Committer, force: bool) -> str | None:
    try:
        return c.checkpoint(force)
    except (StoreError, AuditUnavailable) as e:
        log.error("audit checkpoint failed: %s", e)
        return None
