"""append_async: results and failures reach the event loop (settled once per batch), timeouts too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from charter.audit.log import AuditLog
from charter.audit.sink import AuditUnavailable
from charter.audit.store import SQLiteStore, StoreError, Tx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.audit.helpers import context, decision


class _Failing(SQLiteStore):
    """Opens (the schema is written), then every write transaction fails or blocks."""

    def __init__(self, path: Path, gate: threading.Event | None = None) -> None:
        super().__init__(path)
        self.ready = False
        self.gate = gate

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self.ready:
            if self.gate is None:
                raise StoreError("disk on fire")
            self.gate.wait(10)
        with super().transaction() as tx:
            yield tx


def test_store_failure_raises_audit_unavailable_on_the_loop(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    store = _Failing(tmp_path / "f.db")
    log = AuditLog(store, signing_key)
    store.ready = True

    async def main() -> list[object]:
        return list(
            await asyncio.gather(
                *(log.append_async(decision(i), context()) for i in range(20)), return_exceptions=True
            )
        )

    out = asyncio.run(main())
    assert all(isinstance(x, AuditUnavailable) and "disk on fire" in str(x) for x in out)
    assert log.metrics.failures >= 20
    store.ready = False
    log.close()


def test_append_async_times_out(tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    gate = threading.Event()
    store = _Failing(tmp_path / "t.db", gate)
    log = AuditLog(store, signing_key, timeout=0.3)
    store.ready = True

    async def main() -> None:
        with pytest.raises(AuditUnavailable, match="timed out"):
            await log.append_async(decision(1), context())

    asyncio.run(main())
    gate.set()  # the late commit finds its loop closed: nothing is raised in the writer
    store.ready = False
    log.close()
    assert SQLiteStore(tmp_path / "t.db").size() == 1
