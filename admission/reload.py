"""Hot reload: policies and their context, and the TLS certificate, swapped without a restart.

A poller thread fingerprints the watched files (path, mtime, size). On a change it builds a
complete new Engine off the request path and swaps one reference; requests read that
reference once, so each is decided by exactly one set. A broken set never replaces a good one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.engine import Engine
from charter.engine.models import ClusterProfile
from charter.engine.normalize import RELATED_KINDS

from charter._internal.session import bundled_policies, load_session

from .metrics import Metrics

log = logging.getLogger("charter.admission.reload")


def fingerprint(paths: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    """Every file under `paths` with its mtime and size; missing paths count as a state too."""
    out: list[tuple[str, int, int]] = []
    for p in paths:
        root = Path(p)
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(f), -1, -1))
    return tuple(out)


@dataclass(frozen=True)
class PolicySetup:
    policies: Sequence[str]
    cluster: str | None = None
    context: Sequence[str] = ()
    exceptions: Sequence[str] = ()
    trust_policy: str | None = None

    def paths(self) -> list[str]:
        # The trust policy is watched too: editing it must re-verify every attestation.
        singles = [p for p in (self.cluster, self.trust_policy) if p]
        return [*(self.policies or [bundled_policies()]), *self.context, *self.exceptions, *singles]


@dataclass(frozen=True)
class Serving:
    """One loaded, compiled policy set: what a request is decided with."""

    engine: Engine
    digest: str
    cluster: ClusterProfile | None
    policy_names: tuple[str, ...]
    loaded_at: float
    # DRA claims and device classes from --context, for the workload view (as `charter check` uses).
    related: tuple[dict[str, Any], ...] = ()


@dataclass
class ReloadStatus:
    last_error: str | None = None
    last_attempt: float = 0.0
    last_success: float = 0.0
    generation: int = 0
    errors: list[str] = field(default_factory=list)


def build(setup: PolicySetup) -> tuple[Serving | None, list[str]]:
    session = load_session(
        list(setup.policies),
        cluster=setup.cluster,
        context=list(setup.context),
        exceptions=list(setup.exceptions),
        trust_policy=setup.trust_policy,
    )
    if session.errors:
        return None, [str(e) for e in session.errors]
    engine = session.engine()
    # What the first review would otherwise compute on the event loop (context constants, policy
    # groups: ~0.2 s for the shipped packs), done here, before the set serves.
    engine.warm()
    return (
        Serving(
            engine=engine,
            digest=session.policies.digest,
            cluster=session.context.cluster,
            policy_names=tuple(p.name for p in session.policies.policies),
            loaded_at=time.time(),
            related=tuple(o for o in session.context.objects if o.get("kind") in RELATED_KINDS),
        ),
        [],
    )


class PolicyHolder:
    """The serving policy set behind a single reference, and how its last reload went."""

    def __init__(self, setup: PolicySetup, metrics: Metrics) -> None:
        self.setup = setup
        self.metrics = metrics
        self.status = ReloadStatus()
        self.current: Serving | None = None
        self._fingerprint = fingerprint(setup.paths())
        self.reload(initial=True)

    def reload(self, *, initial: bool = False) -> bool:
        self.status.last_attempt = time.time()
        try:
            serving, errors = build(self.setup)
        except Exception as e:  # a bug in loading must not take the serving set down
            serving, errors = None, [f"internal error while loading policies: {type(e).__name__}: {e}"]
        if serving is None:
            self.status.last_error = "; ".join(errors[:5]) + (
                f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            )
            self.status.errors = errors
            self.metrics.reloads.labels("policies", "failure").inc()
            log.error(
                "policy load failed; %s",
                "nothing to serve" if self.current is None else "the previous set keeps serving",
                extra={"errors": errors, "initial": initial},
            )
            return False
        self.current = serving  # the swap: one reference assignment
        self.status.last_error = None
        self.status.errors = []
        self.status.last_success = time.time()
        self.status.generation += 1
        self.metrics.reloads.labels("policies", "success").inc()
        self.metrics.policies_loaded.set(len(serving.policy_names))
        log.info(
            "policies loaded",
            extra={"digest": serving.digest, "policies": len(serving.policy_names), "initial": initial},
        )
        return True

    def poll(self) -> bool:
        """Reload when a watched file changed; True when a reload was attempted."""
        fp = fingerprint(self.setup.paths())
        if fp == self._fingerprint:
            return False
        self._fingerprint = fp
        self.reload()
        return True


class TLSReloader:
    """Reload the certificate and key into the live SSLContext, so new handshakes present them.

    The pair is first loaded into a scratch context: a half-written or mismatched pair is
    rejected there and the live context keeps the old one (a failed load_cert_chain on the
    live context could leave it with a new certificate and the old key).
    """

    def __init__(self, context: ssl.SSLContext, certfile: str, keyfile: str, metrics: Metrics) -> None:
        self.context = context
        self.certfile = certfile
        self.keyfile = keyfile
        self.metrics = metrics
        self.last_error: str | None = None
        self._fingerprint = fingerprint([certfile, keyfile])
        self.loop: asyncio.AbstractEventLoop | None = None  # set once serving: handshakes run there

    def _swap(self) -> None:
        """Load the pair into the live context on the event loop's thread. load_cert_chain sets
        the certificate, then the key, without the GIL: from another thread, a handshake running
        in between presented the new certificate signed with the old key, and the client saw the
        connection cut (caught by the rotation test)."""
        loop = self.loop
        if loop is None or not loop.is_running():
            self.context.load_cert_chain(self.certfile, self.keyfile)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def swap() -> None:
            try:
                self.context.load_cert_chain(self.certfile, self.keyfile)
            except BaseException as e:
                done.set_exception(e)
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(swap)
        done.result(timeout=30)

    def poll(self) -> bool:
        fp = fingerprint([self.certfile, self.keyfile])
        if fp == self._fingerprint:
            return False
        try:
            scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            scratch.load_cert_chain(self.certfile, self.keyfile)
            self._swap()
        except (OSError, ssl.SSLError, TimeoutError) as e:
            # Leave the fingerprint: a pair caught mid-write is retried on the next poll.
            self.last_error = f"{type(e).__name__}: {e}"
            self.metrics.reloads.labels("tls", "failure").inc()
            log.warning(
                "certificate reload failed; the previous one keeps serving", extra={"error": self.last_error}
            )
            return False
        self._fingerprint = fp
        self.last_error = None
        self.metrics.reloads.labels("tls", "success").inc()
        log.info("certificate reloaded", extra={"certfile": self.certfile})
        return True


class Poller:
    """One daemon thread calling each `poll` every `interval` seconds until stopped."""

    def __init__(self, polls: Sequence[Callable[[], object]], interval: float = 1.0) -> None:
        self.polls = list(polls)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="charter-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for poll in self.polls:
                try:
                    poll()
                except Exception:
                    log.exception("reload poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


__all__ = ["PolicyHolder", "PolicySetup", "Poller", "ReloadStatus", "Serving", "TLSReloader", "fingerprint"]
