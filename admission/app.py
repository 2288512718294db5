"""The webhook's HTTP surface: POST /validate, health, readiness and metrics.

Evaluation runs inline on the event loop: it is CPU-bound Python that a thread would not make
faster (the GIL), and a thread hop would add latency to every review. Reviews that are ready at
the same time (they arrived while others were being decided) are decided together in one CEL
activation, as `charter check` decides its batches, so the catalog and cluster profile are
converted to CEL values once for them all; a lone review is decided alone, with no wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from charter.audit.sink import DecisionContext, DecisionSink, NullSink
from charter.engine import Decision
from charter.engine.dispatcher import Prepared, batch_slots
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from . import response as resp
from .metrics import Metrics
from .namespaces import NamespaceSource, NullNamespaceSource
from .reload import PolicyHolder, TLSReloader
from .request import attributes_from_request, may_nest_deeper, nesting_depth_exceeds
from .review import AdmissionReview, validation_message

MAX_BODY = 3 * 1024 * 1024  # the apiserver never sends more (its own request limit)
BODY_TIMEOUT = 10.0  # seconds to receive a whole body: the apiserver's default webhook timeout

log = logging.getLogger("charter.admission")
decisions_log = logging.getLogger("charter.admission.decision")


@dataclass
class WebhookState:
    holder: PolicyHolder
    metrics: Metrics
    namespaces: NamespaceSource = field(default_factory=NullNamespaceSource)
    sink: DecisionSink = field(default_factory=NullSink)
    audit_failure: str = "deny"  # deny | allow
    tls: TLSReloader | None = None

    def count_verdict(self, policy: str, verdict: str) -> None:
        self.metrics.policy_verdicts.inc(policy, verdict)


class BadRequest(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _status(code: int, reason: str, message: str) -> JSONResponse:
    """A Kubernetes-style Status for requests that are not AdmissionReviews we can answer."""
    return JSONResponse(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": resp.one_line(message, resp.MAX_MESSAGE),
        },
        status_code=code,
    )


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BadRequest(400, "BadRequest", "invalid Content-Length")
        if int(length) > MAX_BODY:
            raise BadRequest(413, "RequestEntityTooLarge", f"request body exceeds {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise BadRequest(413, "RequestEntityTooLarge", f"request body exceeds {MAX_BODY} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(408, "Timeout", f"request body not received within {BODY_TIMEOUT:g}s") from None
    return b"".join(chunks)


def parse_review(body: bytes) -> AdmissionReview:
    if not body:
        raise BadRequest(
            400, "BadRequest", "empty request body: expected an admission.k8s.io/v1 AdmissionReview"
        )
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest(400, "BadRequest", "request body nests too deeply") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(400, "BadRequest", f"request body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "BadRequest", "request body is not a JSON object")
    if may_nest_deeper(body) and nesting_depth_exceeds(data):
        raise BadRequest(400, "BadRequest", "request body nests too deeply")
    try:
        return AdmissionReview.model_validate(data)
    except ValidationError as e:
        raise BadRequest(
            400, "BadRequest", f"not an admission.k8s.io/v1 AdmissionReview: {validation_message(e)}"
        ) from None


Decided = tuple[dict[str, Any], Decision | None, str]  # the response, the decision, the set's digest


def decide(state: WebhookState, review: AdmissionReview) -> Decided:
    """Evaluate one review with the serving set."""
    outcome = decide_together(state, [review])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def decide_together(state: WebhookState, reviews: list[AdmissionReview]) -> list[Decided | BaseException]:
    """Evaluate reviews with the serving set, in one batch activation when there are several;
    each review's outcome, or the exception that evaluating it raised."""
    serving = state.holder.current  # read once: these requests are decided by one set
    if serving is None:
        return [
            (
                resp.denied(r.request.uid, 503, "ServiceUnavailable", "charter has no policy set loaded"),
                None,
                "",
            )
            for r in reviews
        ]
    engine = serving.engine
    prepared: list[Prepared | BaseException] = []
    for review in reviews:
        try:
            attrs = attributes_from_request(review.request)
            if attrs.namespace:
                ns = state.namespaces.get(attrs.namespace)
                if ns is not None:
                    attrs.namespace_object = ns
                    attrs.namespace_known = True
                elif attrs.namespace not in engine.context.namespaces:
                    state.metrics.namespace_unknown.inc()
            prepared.append(engine.prepare(attrs, serving.related))
        except Exception as e:  # this review's own failure: answered on its own
            prepared.append(e)
    slots = iter(batch_slots([p for p in prepared if isinstance(p, Prepared)]))
    out: list[Decided | BaseException] = []
    for review, p in zip(reviews, prepared, strict=True):
        if not isinstance(p, Prepared):
            out.append(p)
            continue
        try:
            decision = engine.decide(p, slot=next(slots))
            out.append((resp.response_for(review.request.uid, decision), decision, serving.digest))
        except Exception as e:
            out.append(e)
    return out


class _Together:
    """Collects the reviews that are ready in one turn of the event loop and decides them together."""

    def __init__(self, state: WebhookState) -> None:
        self.state = state
        self.pending: list[tuple[AdmissionReview, asyncio.Future[Decided]]] = []

    def submit(self, review: AdmissionReview) -> asyncio.Future[Decided]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Decided] = loop.create_future()
        if not self.pending:
            # After the callbacks already queued: the other reviews ready in this turn join first.
            loop.call_soon(self._flush)
        self.pending.append((review, fut))
        return fut

    def _flush(self) -> None:
        items, self.pending = self.pending, []
        self.state.metrics.decided_together.observe(len(items))
        try:
            outcomes: list[Decided | BaseException] = decide_together(self.state, [r for r, _ in items])
        except Exception as e:  # a failure of the batch itself: every review answers with it
            outcomes = [e] * len(items)
        for (_, fut), outcome in zip(items, outcomes, strict=True):
            if fut.done():
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)


async def audit(
    state: WebhookState, uid: str, response: dict[str, Any], decision: Decision, digest: str
) -> dict[str, Any]:
    """Record the decision before answering; what cannot be recorded is denied (or allowed, by choice).

    With a sink that offers `append_async`, the loop serves other reviews while the
    writer commits, so concurrent reviews share one durable group commit.
    """
    serving = state.holder.current
    context = DecisionContext(digest, serving.cluster if serving is not None else None, "admission")
    started = perf_counter()
    try:
        append_async = getattr(state.sink, "append_async", None)
        if append_async is not None:
            await append_async(decision, context)
        else:
            state.sink.append(decision, context)
    except Exception as e:  # AuditUnavailable, or any sink failure: the decision is unrecorded
        state.metrics.audit_failures.inc()
        log.error("audit append failed", extra={"uid": uid, "error": f"{type(e).__name__}: {e}"})
        if state.audit_failure == "deny" and response["allowed"]:
            return resp.denied(
                uid,
                503,
                "ServiceUnavailable",
                "charter could not record this decision in its audit log, and denies what it cannot audit",
            )
    finally:
        state.metrics.audit_latency.observe(perf_counter() - started)
    return response


def _record(
    state: WebhookState,
    review: AdmissionReview,
    response: dict[str, Any],
    decision: Decision | None,
    t0: float,
) -> None:
    elapsed = perf_counter() - t0
    req = review.request
    live = [f for f in decision.findings() if f.effective] if decision is not None else []
    denied = [f.policy for f in live if "Deny" in f.actions]
    warned = sorted({f.policy for f in live if "Warn" in f.actions})
    errors = [f for f in live if f.kind == "error"]
    label = "allowed" if response["allowed"] else "denied"
    if decision is not None:
        verdicts = state.metrics.policy_verdicts
        for o in decision.outcomes:
            if o.matched or o.unresolved:
                verdicts.inc(o.policy, o.verdict)
        for f in errors:
            state.metrics.evaluation_errors.labels(f.policy, "Fail" if f.actions else "Ignore").inc()
    state.metrics.requests.labels(label, denied[0] if denied else "").inc()
    state.metrics.latency.labels(label).observe(elapsed)
    decisions_log.info(
        "decision",
        extra={
            "uid": req.uid,
            "kind": f"{req.kind.group}/{req.kind.version}/{req.kind.kind}".lstrip("/"),
            "namespace": req.namespace,
            "objectName": req.name,  # `name` is a LogRecord attribute
            "operation": req.operation,
            "subResource": req.sub_resource,
            "dryRun": req.dry_run,
            "user": req.user_info.username,
            "allowed": response["allowed"],
            "denied": denied,
            "warned": warned,
            "errors": [f.policy for f in errors],
            "latencyMs": round(elapsed * 1000, 3),
        },
    )


def _health_routes(app: FastAPI, state: WebhookState) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        serving = state.holder.current
        st = state.holder.status
        ns_ready = state.namespaces.ready()
        ready = serving is not None and ns_ready
        detail = {
            "ready": ready,
            "policies": len(serving.policy_names) if serving else 0,
            "digest": serving.digest if serving else None,
            "generation": st.generation,
            "lastReloadError": st.last_error,
            "lastReloadAttempt": st.last_attempt or None,
            "lastReloadSuccess": st.last_success or None,
            "tlsReloadError": state.tls.last_error if state.tls else None,
            "namespaceSourceReady": ns_ready,
        }
        return JSONResponse(detail, status_code=200 if ready else 503)


def create_app(state: WebhookState) -> FastAPI:
    """The admission app (served over TLS): /validate plus health and readiness."""
    app = FastAPI(title="charter admission webhook", docs_url=None, redoc_url=None, openapi_url=None)
    together = _Together(state)

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        t0 = perf_counter()
        try:
            review = parse_review(await _read_body(request))
        except BadRequest as e:
            state.metrics.bad_requests.labels(e.reason).inc()
            return _status(e.code, e.reason, e.message)
        try:
            response, decision, digest = await together.submit(review)
            if decision is not None:
                response = await audit(state, review.request.uid, response, decision, digest)
        except Exception as e:  # a bug must still be an answer: deny, say why, never a 500
            log.exception("evaluation failed", extra={"uid": review.request.uid})
            response, decision = (
                resp.denied(
                    review.request.uid,
                    500,
                    "InternalError",
                    f"charter failed to evaluate: {type(e).__name__}",
                ),
                None,
            )
        try:
            _record(state, review, response, decision, t0)
        except Exception:  # metrics or logging must never turn an answer into a 500
            log.exception("recording the decision failed", extra={"uid": review.request.uid})
        return Response(
            json.dumps(resp.review(response), separators=(",", ":")), media_type="application/json"
        )

    _health_routes(app, state)
    return app


def create_metrics_app(state: WebhookState) -> FastAPI:
    """The plain-HTTP app for probes and Prometheus: /healthz, /readyz, /metrics."""
    app = FastAPI(title="charter metrics", docs_url=None, redoc_url=None, openapi_url=None)
    _health_routes(app, state)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
