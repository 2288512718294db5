"""`charter serve`: the admission app on TLS, probes and metrics on plain HTTP, one process.

Both uvicorn servers share one event loop. Signals are handled here rather than by each
uvicorn server (each would install its own and the last would win): SIGTERM or SIGINT asks
both to stop accepting and drain in-flight requests; a second one forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from charter.audit.sink import DecisionSink, NullSink
from charter.engine._internal.collector import settle_long_lived

from . import logs
from .app import WebhookState, create_app, create_metrics_app
from .metrics import Metrics, watch_sink
from .namespaces import FileNamespaceSource, namespace_source
from .reload import PolicyHolder, PolicySetup, Poller, TLSReloader, fingerprint

log = logging.getLogger("charter.admission")


@dataclass
class ServeOptions:
    policies: Sequence[str]
    tls_cert: str
    tls_key: str
    cluster: str | None = None
    context: Sequence[str] = ()
    exceptions: Sequence[str] = ()
    trust_policy: str | None = None  # TrustPolicy for ModelAttestations among the context
    host: str = "127.0.0.1"
    port: int = 8443
    metrics_host: str | None = None  # default: --host
    metrics_port: int = 9090  # 0: no plain-HTTP listener
    audit_failure: str = "deny"
    namespace_source: str | None = None
    reload_interval: float = 1.0
    graceful_timeout: float = 25.0  # under the default 30 s terminationGracePeriodSeconds
    loop: str = "auto"  # auto | asyncio | uvloop
    http: str = "auto"  # auto | h11 | httptools
    log_level: str = "info"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are ours (see the module docstring)


def _file_poll(source: FileNamespaceSource) -> Callable[[], None]:
    last = [fingerprint(source.paths)]

    def poll() -> None:
        fp = fingerprint(source.paths)
        if fp != last[0]:
            last[0] = fp
            source.reload()

    return poll


def _tls_context(config: uvicorn.Config) -> ssl.SSLContext:
    ctx = config.ssl
    assert ctx is not None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def _serve_all(servers: Sequence[_Server], tls: TLSReloader | None = None) -> None:
    loop = asyncio.get_running_loop()
    if tls is not None:
        tls.loop = loop

    def stop(sig: signal.Signals) -> None:
        for s in servers:
            if s.should_exit:
                s.force_exit = True
            s.should_exit = True
        log.info("shutting down: draining in-flight requests", extra={"signal": sig.name})

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    # If one listener cannot start (port in use), stop the others instead of serving half.
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for t in done:
        if t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


def run_serve(opts: ServeOptions, sink: DecisionSink | None = None) -> int:
    logs.configure(opts.log_level)
    metrics = Metrics()
    setup = PolicySetup(
        list(opts.policies), opts.cluster, list(opts.context), list(opts.exceptions), opts.trust_policy
    )
    holder = PolicyHolder(setup, metrics)
    if holder.current is None:
        for e in holder.status.errors:
            print(f"error: {e}", file=sys.stderr)
        print("charter serve: the policy set does not load; nothing to serve", file=sys.stderr)
        return 2
    try:
        namespaces = namespace_source(opts.namespace_source)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the kubernetes client's config errors
        print(f"error: --namespace-source kube: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    # Full collections stay short on the request path (see collector.py).
    settle_long_lived()
    state = WebhookState(
        holder=holder,
        metrics=metrics,
        namespaces=namespaces,
        sink=sink or NullSink(),
        audit_failure=opts.audit_failure,
    )
    watch_sink(metrics, state.sink)
    common: dict[str, Any] = {
        "log_config": None,
        "access_log": False,  # one structured line per decision instead
        "lifespan": "off",
        "loop": "none",  # the loop is ours: both servers share it
        "http": opts.http,
        "timeout_graceful_shutdown": opts.graceful_timeout,
        "server_header": False,
    }
    try:
        config = uvicorn.Config(
            create_app(state),
            host=opts.host,
            port=opts.port,
            ssl_certfile=opts.tls_cert,
            ssl_keyfile=opts.tls_key,
            timeout_keep_alive=30,  # the apiserver keeps connections to webhooks alive
            limit_concurrency=2048,  # beyond this, 503 at once instead of an unbounded queue
            **common,
        )
        config.load()
    except (OSError, ssl.SSLError) as e:
        print(f"error: cannot load the TLS certificate and key: {e}", file=sys.stderr)
        return 2
    state.tls = TLSReloader(_tls_context(config), opts.tls_cert, opts.tls_key, metrics)
    servers = [_Server(config)]
    if opts.metrics_port:
        servers.append(
            _Server(
                uvicorn.Config(
                    create_metrics_app(state),
                    host=opts.metrics_host or opts.host,
                    port=opts.metrics_port,
                    **common,
                )
            )
        )
    polls: list[Callable[[], object]] = [holder.poll, state.tls.poll]
    if isinstance(namespaces, FileNamespaceSource):
        polls.append(_file_poll(namespaces))
    poller = Poller(polls, opts.reload_interval)
    poller.start()
    log.info(
        "serving",
        extra={
            "address": f"https://{opts.host}:{opts.port}/validate",
            "metrics": f"http://{opts.metrics_host or opts.host}:{opts.metrics_port}/metrics"
            if opts.metrics_port
            else None,
            "policies": len(holder.current.policy_names),
            "digest": holder.current.digest,
        },
    )
    try:
        _run(_serve_all(servers, state.tls), opts.loop)
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        return int(e.code or 1)
    finally:
        poller.stop()
        namespaces.close()
        state.sink.close()
    return 0


def _run(coro: Any, loop: str) -> None:
    if loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            uvloop.run(coro)
            return
    asyncio.run(coro)
