"""Prometheus metrics for the webhook, in a registry per server (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Admission latency is sub-millisecond to a few ms; the apiserver's timeout is at most 30 s.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "charter_admission_requests",
            "Admission reviews answered, by decision (allowed|denied|error) and deciding policy.",
            ["decision", "policy"],
            registry=r,
        )
        self.latency = Histogram(
            "charter_admission_request_duration_seconds",
            "Time from receiving a review to answering it, by decision.",
            ["decision"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.policy_verdicts = Counter(
            "charter_admission_policy_verdicts",
            "Per-policy verdicts for matched policies (deny|warn|audit|error|pass).",
            ["policy", "verdict"],
            registry=r,
        )
        self.evaluation_errors = Counter(
            "charter_admission_evaluation_errors",
            "Policy evaluation errors, by policy and failurePolicy.",
            ["policy", "failure_policy"],
            registry=r,
        )
        self.bad_requests = Counter(
            "charter_admission_bad_requests",
            "Requests answered 4xx without evaluation, by reason.",
            ["reason"],
            registry=r,
        )
        self.audit_latency = Histogram(
            "charter_audit_write_duration_seconds",
            "Time to append one decision to the audit sink.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.audit_failures = Counter(
            "charter_audit_write_failures", "Decisions the audit sink could not record.", registry=r
        )
        self.reloads = Counter(
            "charter_reloads",
            "Reloads of policies or the TLS certificate, by what and result (success|failure).",
            ["what", "result"],
            registry=r,
        )
        self.policies_loaded = Gauge("charter_policies_loaded", "Policies in the serving set.", registry=r)
        self.namespace_unknown = Counter(
            "charter_admission_namespace_unknown",
            "Requests whose namespace had no labels in the namespace source.",
            registry=r,
        )
