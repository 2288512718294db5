"""The signed, append-only decision log: group commit, signing under the log lock, checkpoints.

Callers (webhook request threads, `charter check`) hand a prepared record to one writer
thread and wait on a future; the writer takes everything queued, and in one transaction
assigns indexes, signs each record (the index is inside the signed payload), inserts them,
and writes a signed checkpoint when one is due. `append` returns only after COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from charter.engine.results import Decision
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .crypto import Checkpoint, keyid, public_pem, sign_checkpoint, sign_envelope
from .merkle import Frontier, leaf_hash
from .publish import CheckpointPublisher
from .record import Prepared, now_text, prepare
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


@dataclass(slots=True)
class Metrics:
    appended: int = 0
    failures: int = 0
    batches: int = 0
    checkpoints: int = 0


class AuditLog:
    """A DecisionSink writing to a Store. Thread-safe; one writer thread per instance."""

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
    ) -> None:
        self.store = store
        self.key = key
        self.kid = keyid(key.public_key())
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_seconds = checkpoint_seconds
        self.publishers = list(publishers)
        self.batch_max = batch_max
        self.timeout = timeout
        self.metrics = Metrics()
        try:
            meta = store.init(
                {"origin": origin, "public_key": public_pem(key.public_key()).decode(), "keyid": self.kid}
            )
        except StoreError as e:
            raise AuditUnavailable(str(e)) from e
        self.origin = meta["origin"]
        if meta.get("keyid") != self.kid:
            log.warning(
                "audit log %s was started with key %s; now signing with %s",
                store.url,
                meta.get("keyid"),
                self.kid,
            )
        self._frontier = Frontier()
        self._last_cp_time = time.monotonic()
        # SimpleQueue (C): no Python-level lock and condition per put/get, which the writer and
        # every waiting caller otherwise contend for under the GIL.
        self._queue: queue.SimpleQueue[tuple[Item, Waiter] | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
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

    def _run(self) -> None:
        while True:
            wait = max(0.05, self.checkpoint_seconds - (time.monotonic() - self._last_cp_time))
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                self._safe_checkpoint()
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
            if batch:
                self._commit(batch)
            if stop:
                return

    def _safe_checkpoint(self) -> None:
        try:
            self._checkpoint_only(force=False)
        except (StoreError, AuditUnavailable) as e:
            log.error("audit checkpoint failed: %s", e)

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
            f.size > last and (force or time.monotonic() - self._last_cp_time >= self.checkpoint_seconds)
        )
        if not due or f.size <= last:
            return None
        note = sign_checkpoint(Checkpoint(self.origin, f.size, f.root()), self.key)
        tx.insert_checkpoint(f.size, now_text(), note)
        return note

    def _commit(self, items: list[tuple[Item, Waiter]]) -> None:
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
        if not batch:
            return
        note: str | None = None
        try:
            with self.store.transaction() as tx:
                start = tx.size()
                f = self._catch_up(tx, self._frontier, start)
                rows = []
                for i, (p, _) in enumerate(batch):
                    idx = start + i
                    env = sign_envelope(self.key, self.kid, p.payload(idx))
                    lh = leaf_hash(env)
                    f.push(lh)
                    rows.append(
                        Row(
                            idx, p.record_id, p.time, p.cluster, p.jurisdiction, p.namespace, p.kind, p.name,
                            p.user, p.operation, p.decision, env, lh,
                            [(r.policy, r.verdict, r.exception, r.approved_by) for r in p.policies],
                            p.datasets, p.models,
                        )
                    )  # fmt: skip
                tx.insert(rows)
                note = self._maybe_checkpoint(tx, f, force=False)
        except Exception as e:
            self.metrics.failures += len(batch)
            log.error("audit store unavailable, %d decisions not recorded: %s", len(batch), e)
            err = AuditUnavailable(f"audit store unavailable: {e}")
            _settle([(fut, err) for _, fut in batch])
            return
        self._frontier = f
        self.metrics.appended += len(batch)
        self.metrics.batches += 1
        _settle([(fut, p.record_id) for p, fut in batch])
        if note is not None:
            self._published(note)

    def _checkpoint_only(self, force: bool) -> None:
        with self.store.transaction() as tx:
            f = self._catch_up(tx, self._frontier, tx.size())
            note = self._maybe_checkpoint(tx, f, force=force)
        self._frontier = f
        self._last_cp_time = time.monotonic()
        if note is not None:
            self._published(note)

    def _published(self, note: str) -> None:
        self._last_cp_time = time.monotonic()
        self.metrics.checkpoints += 1
        for p in self.publishers:
            try:
                p.publish(note)
            except Exception as e:  # the checkpoint is in the store; publishing is retried next time
                log.error("publishing checkpoint to %s failed: %s", p, e)


def _copy(f: Frontier) -> Frontier:
    g = Frontier()
    g.size, g.stack = f.size, list(f.stack)
    return g
