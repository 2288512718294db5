"""Batch activations (one CEL activation for many resources) decide exactly as one per resource.

`charter check` evaluates resources in batches that share one activation so the catalog and
cluster profile are converted once; the webhook evaluates one resource at a time. Every verdict,
message, error, audit annotation and trace must be the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from charter.engine import Engine, attributes_for_object
from charter.engine._internal.cel.batch import Batch
from charter.engine.offline import CheckRun, check_paths

from charter._internal.session import load_session

from .test_fused import CASES, POLICIES

ROOT = Path(__file__).resolve().parents[2]


def _outcomes(decision: Any) -> list[Any]:
    return [
        (
            o.policy,
            o.verdict,
            o.matched,
            o.evaluations,
            o.unresolved,
            sorted(o.audit_annotations.items()),
            [
                (f.kind, f.actions, f.message, f.reason, f.validation, f.field, f.expression, f.param)
                for f in o.findings
            ],
            o.trace,
        )
        for o in decision.outcomes
    ]


def _both_ways(
    engine: Engine, manifests: list[dict[str, Any]], *, explain: bool = False
) -> tuple[list[Any], list[Any]]:
    prepared = [engine.prepare(attributes_for_object(m)) for m in manifests]
    batch = Batch([p.base for p in prepared])
    batched = [
        _outcomes(engine.decide(p, explain=explain, slot=batch.slot(i))) for i, p in enumerate(prepared)
    ]
    single = [_outcomes(engine.evaluate(attributes_for_object(m), explain=explain)) for m in manifests]
    return batched, single


def test_errors_fallbacks_and_messages_match(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICIES)
    batched, single = _both_ways(engine, CASES)
    assert batched == single
    kinds = {f[0] for r in single for o in r for f in o[6]}
    assert kinds == {"violation", "error"}  # the cases reach both
    # The step-by-step path (taken on errors) runs batched too.
    for p in engine.policies.policies:
        p.fused = None
    assert _both_ways(engine, CASES) == (batched, batched)


def test_explain_traces_match(make_engine: Callable[..., Engine]) -> None:
    batched, single = _both_ways(make_engine(POLICIES), CASES, explain=True)
    assert batched == single
    assert all(o[7] for r in single for o in r if o[2])  # matched policies carry a trace


def test_expression_too_deep_to_wrap_falls_back_to_its_own_activation(
    make_engine: Callable[..., Engine],
) -> None:
    # The parser allows 32 levels of nesting: this expression fits only without the batch's binds.
    deep = "(" * 32 + "object.spec.replicas" + ")" * 32 + " < 3"
    engine = make_engine(
        f"""
        apiVersion: charter.dev/v1alpha1
        kind: Policy
        metadata: {{name: deep}}
        spec:
          validationActions: [Deny]
          validations:
            - expression: "{deep}"
              message: too many
        """
    )
    batched, single = _both_ways(engine, CASES)
    assert batched == single
    program = engine.policies.policies[0].validations[0].expr.program
    assert program._batched is None  # it really could not be wrapped
    assert sum(1 for r in single for o in r for f in o[6] if f[2] == "too many") == 1


PARAMS = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
      - apiGroups: [apps]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [deployments]
  validations:
    - expression: "object.spec.replicas <= int(params.data.max)"
      messageExpression: "'replicas over ' + params.data.max + ' for ' + object.metadata.name"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {selector: {matchLabels: {limits: "yes"}}, namespace: ns, parameterNotFoundAction: Deny}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: small, namespace: ns, labels: {limits: "yes"}}
data: {max: "2"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: large, namespace: ns, labels: {limits: "yes"}}
data: {max: "20"}
"""


def test_params_match(make_engine: Callable[..., Engine]) -> None:
    batched, single = _both_ways(make_engine(PARAMS), CASES)
    assert batched == single
    params = {f[7] for r in single for o in r for f in o[6]}
    assert params == {"small", "large"}


def _report(run: CheckRun) -> list[Any]:
    return [
        (rd.document.source, rd.document.index, rd.document.item, _outcomes(rd.decision))
        for rd in run.decisions
    ]


@pytest.mark.parametrize("profile", ["onprem-sovereign-de", "aws-eu-central-1", "hosted-gpu-cloud-us"])
def test_shipped_packs_on_examples_match(profile: str) -> None:
    session = load_session(
        [str(ROOT / "policies")],
        cluster=str(ROOT / "examples" / "clusters" / f"{profile}.yaml"),
        context=[str(ROOT / "examples" / "context")],
    )
    assert not session.errors
    engine = Engine(session.policies, session.context)
    paths = [str(ROOT / "examples" / "workloads")]
    single = check_paths(engine, paths, batch_size=1)
    assert len(single.decisions) > 40
    for size in (7, 256):
        assert _report(check_paths(engine, paths, batch_size=size)) == _report(single)
    denied = sum(1 for rd in single.decisions if not rd.decision.allowed)
    assert 0 < denied < len(single.decisions)


def test_large_runs_batch_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    examples = sorted((ROOT / "examples" / "workloads").glob("*.yaml"))
    for i in range(3):  # enough resources for the default to batch
        for f in examples:
            (tmp_path / f"{i}-{f.name}").write_text(f.read_text())
    session = load_session(
        [str(ROOT / "policies")], cluster=str(ROOT / "examples" / "clusters" / "onprem-sovereign-de.yaml")
    )
    engine = Engine(session.policies, session.context)
    seen: list[Any] = []
    original = Batch.__init__

    def spy(self: Batch, bases: Any) -> None:
        seen.append(len(bases))
        original(self, bases)

    monkeypatch.setattr(Batch, "__init__", spy)
    batched = check_paths(engine, [str(tmp_path)])
    monkeypatch.undo()
    assert seen and sum(seen) == len(batched.decisions) >= 64
    assert _report(batched) == _report(check_paths(engine, [str(tmp_path)], batch_size=1))


UNCONVERTIBLE = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: replicas}
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  validations:
    - expression: "object.spec.?replicas.orValue(1) < 10"
      message: too many replicas
"""


def test_a_resource_whose_input_cannot_convert_does_not_fail_its_batch(
    make_engine: Callable[..., Engine],
) -> None:
    # An int beyond int64 and an unquoted YAML date cannot become CEL values: that resource's
    # policies error, as they do alone, and the rest of its batch decides as usual.
    import datetime

    bad_int = {**CASES[2], "spec": {**CASES[2]["spec"], "replicas": 2**70}}
    bad_date = {**CASES[2], "spec": {**CASES[2]["spec"], "since": datetime.date(2026, 1, 1)}}
    manifests = [
        CASES[2],
        bad_int,
        CASES[3],
        bad_date,
        {**CASES[3], "spec": {**CASES[3]["spec"], "replicas": 12}},
    ]
    engine = make_engine(UNCONVERTIBLE)
    batched, single = _both_ways(engine, manifests)
    assert batched == single
    verdicts = [r[0][1] for r in single]
    assert verdicts == ["pass", "error", "pass", "error", "deny"]
    messages = [f[2] for r in single for o in r for f in o[6]]
    assert all("__charter" not in m for m in messages)
    assert any("out of range for 'object" in m for m in messages)


def test_generated_corpus_decides_the_same_batched(tmp_path: Path) -> None:
    # The benchmark's seeded generator: 600 mixed AI manifests, every profile feature exercised.
    import importlib.util

    spec = importlib.util.spec_from_file_location("charter_bench_corpus", ROOT / "bench" / "corpus.py")
    assert spec is not None and spec.loader is not None
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    out = corpus.generate(tmp_path / "corpus", docs=600, seed=11)
    session = load_session(
        [str(ROOT / "policies")], cluster=str(ROOT / "examples" / "clusters" / "aws-eu-central-1.yaml")
    )
    engine = Engine(session.policies, session.context)
    single = check_paths(engine, [str(out)], batch_size=1)
    assert len(single.decisions) == 600 and not single.errors
    assert _report(check_paths(engine, [str(out)], batch_size=128)) == _report(single)
