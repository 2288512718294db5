"""A policy's fused program (match conditions, validations and messages in one) is a fast path only.

Every case here is evaluated twice, fused and step by step, and must report the same findings,
messages, errors and their attribution; the cases where the fused program cannot decide
(errors, non-bool values, failing messageExpressions) must fall back, not guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from charter.engine import Engine
from charter.engine import validator as validator_module

from .conftest import evaluate

POLICIES = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: mc-and-messages}
spec:
  validationActions: [Deny]
  matchConditions:
    - name: has-team
      expression: "'team' in workload.labels"
    - name: not-skipped
      expression: "workload.labels.team != 'skip'"
  variables:
    - name: team
      expression: "workload.labels.team"
  validations:
    - expression: "variables.team != 'bad'"
      messageExpression: "'team ' + variables.team + ' is bad'"
    - expression: "variables.team != 'multi'"
      messageExpression: "'line one\\\\nline two'"
      message: "static fallback"
    - expression: "variables.team != 'empty'"
      messageExpression: "'  '"
    - expression: "object.spec.replicas < 10 // a comment"
      messageExpression: "'replicas ' + string(object.spec.replicas) // a comment"
    - expression: "variables.team != 'nomsg'"
    - expression: "variables.team != 'static'"
      message: "  static message  "
    - expression: "variables.team != 'msgerr'"
      messageExpression: "'x' + string(object.spec.missing)"
      message: "message used when the expression fails"
  auditAnnotations:
    - key: team
      valueExpression: "'team=' + variables.team"
    - key: absent
      valueExpression: "variables.team == 'ok' ? dyn(null) : dyn('  padded  ')"
    - key: blank
      valueExpression: "variables.team == 'nomsg' ? '   ' : 'b'"
    - key: typed
      valueExpression: "variables.team == 'static' ? dyn(3) : dyn('three')"
    - key: erring
      valueExpression: "variables.team == 'msgerr' ? string(object.spec.missing) : 'fine'"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: annotation-error-ignored}
spec:
  validationActions: [Audit]
  failurePolicy: Ignore
  validations:
    - expression: "true"
  auditAnnotations:
    - key: replicas
      valueExpression: "'r=' + string(object.spec.replicas)"
    - key: kind
      valueExpression: "object.kind"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: mc-error}
spec:
  validationActions: [Warn]
  failurePolicy: Ignore
  matchConditions:
    - name: errs
      expression: "object.spec.replicas > 0"
  validations:
    - expression: "true"
---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: validation-error}
spec:
  validationActions: [Deny]
  variables:
    - name: missing
      expression: "object.spec.nothere"
  validations:
    - expression: "variables.missing == 1"
    - expression: "dyn(object.spec.replicas)"
    - expression: "object.metadata.name != 'x'"
      messageExpression: "'named ' + object.metadata.name"
  auditAnnotations:
    - key: replicas
      valueExpression: "'r=' + string(object.spec.?replicas.orValue(0))"
"""


def _manifest(team: str | None, replicas: Any = 1) -> dict[str, Any]:
    labels = {} if team is None else {"team": team}
    spec: dict[str, Any] = {
        "template": {"spec": {"containers": [{"name": "c", "image": "i@sha256:" + "a" * 64}]}}
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "ns", "labels": labels},
        "spec": spec,
    }


CASES = [
    _manifest(team) for team in (None, "skip", "ok", "bad", "multi", "empty", "nomsg", "static", "msgerr")
] + [_manifest("ok", 12), _manifest("ok", None), _manifest("ok", "three")]


def _report(engine: Engine) -> list[Any]:
    out = []
    for m in CASES:
        d = evaluate(engine, m)
        out.append(
            [
                (
                    o.policy,
                    o.verdict,
                    o.matched,
                    o.evaluations,
                    sorted(o.audit_annotations.items()),
                    [
                        (f.kind, f.actions, f.message, f.reason, f.validation, f.field, f.expression)
                        for f in o.findings
                    ],
                )
                for o in d.outcomes
            ]
        )
    return out


def test_fused_program_reports_exactly_as_step_by_step(
    make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(POLICIES)
    assert all(p.fused is not None for p in engine.policies.policies)
    decided = 0
    real = validator_module._validate_fused

    def counting(policy: Any, activation: Any, fused: Any) -> Any:
        nonlocal decided
        r = real(policy, activation, fused)
        decided += r is not None
        return r

    monkeypatch.setattr(validator_module, "_validate_fused", counting)
    fused = _report(engine)
    assert decided > len(CASES)  # the fast path decided most cases
    for p in engine.policies.policies:
        p.fused = None
    assert _report(engine) == fused


def test_messages_as_the_apiserver_words_them(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICIES)

    def messages(team: str) -> list[str]:
        return [
            f.message
            for f in evaluate(engine, _manifest(team)).findings()
            if f.policy == "mc-and-messages" and f.validation is not None
        ]

    assert messages("bad") == ["team bad is bad"]
    assert messages("multi") == ["static fallback"]
    assert messages("empty") == ["failed expression: variables.team != 'empty'"]
    assert messages("nomsg") == ["failed expression: variables.team != 'nomsg'"]
    assert messages("static") == ["static message"]
    assert messages("msgerr") == ["message used when the expression fails"]
    assert messages("skip") == []


def test_audit_annotations_as_the_apiserver_keeps_them(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(POLICIES)

    def outcome(team: str, policy: str = "mc-and-messages") -> Any:
        return next(o for o in evaluate(engine, _manifest(team)).outcomes if o.policy == policy)

    # null and blank values are left out, values are trimmed
    assert outcome("ok").audit_annotations == {
        "team": "team=ok",
        "blank": "b",
        "typed": "three",
        "erring": "fine",
    }
    assert outcome("nomsg").audit_annotations["absent"] == "padded"
    assert "blank" not in outcome("nomsg").audit_annotations
    # a value that is neither string nor null is an error, under the policy's failurePolicy (Fail)
    typed = [f for f in outcome("static").findings if f.validation is None]
    assert [f.message for f in typed] == [
        "valueExpression 'variables.team == 'static' ? dyn(3) : dyn('three')' resulted in unsupported "
        "return type: int. Return type must be either string or null."
    ]
    erring = [f for f in outcome("msgerr").findings if f.validation is None]
    assert len(erring) == 1 and "missing" in erring[0].message and erring[0].kind == "error"
    # under Ignore an erring annotation is left out and the others are kept
    ignored = next(
        o for o in evaluate(engine, _manifest("ok", None)).outcomes if o.policy == "annotation-error-ignored"
    )
    assert ignored.audit_annotations == {"kind": "Deployment"}
    assert ignored.findings == []


STALE_SLOT = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: short-circuit-then-bind}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
  matchConditions:
    - name: any-flag
      expression: "object.spec.flags.exists(f, f)"
    - name: all-positive
      expression: "object.spec.counts.all(c, c > 0) || cel.bind(x, true, x)"
  validations:
    - expression: "1 == 1"
    - expression: "object.spec.flags.exists(f, f) && cel.bind(y, 2, y == 2)"
      messageExpression: "object.spec.flags.all(f, f) ? 'all' : cel.bind(z, 'some flags', z)"
    - expression: "object.spec.counts.size() < 3"
      messageExpression: "cel.bind(z, 'too many counts', z)"
"""


def test_fused_program_is_immune_to_stale_comprehension_slots(
    make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    # cel-cpp leaves a short-circuited exists()'s iteration variable (here `false`, the element
    # after the first `true`) in a slot that a sibling cel.bind then reads as its own value.
    engine = make_engine(STALE_SLOT)
    fallbacks = 0
    real = validator_module._validate_fused

    def counting(policy: Any, activation: Any, fused: Any) -> Any:
        nonlocal fallbacks
        r = real(policy, activation, fused)
        fallbacks += r is None
        return r

    monkeypatch.setattr(validator_module, "_validate_fused", counting)
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    ok = evaluate(engine, {**base, "spec": {"flags": [True, False], "counts": [1, 2]}})
    assert [o.verdict for o in ok.outcomes] == ["pass"]
    bad = evaluate(engine, {**base, "spec": {"flags": [True, False], "counts": [-1, 2, 3]}})
    assert [f.message for f in bad.findings()] == ["too many counts"]
    skipped = evaluate(engine, {**base, "spec": {"flags": [False, False], "counts": [1]}})
    assert [o.matched for o in skipped.outcomes] == [False]
    assert fallbacks == 0  # the fused program decided every case, and decided it right
    # The step-by-step path runs each authored expression guarded against the same slot reuse.
    for p in engine.policies.policies:
        p.fused = None
    assert [
        o.verdict
        for o in evaluate(engine, {**base, "spec": {"flags": [True, False], "counts": [1, 2]}}).outcomes
    ] == ["pass"]
    again = evaluate(engine, {**base, "spec": {"flags": [True, False], "counts": [-1, 2, 3]}})
    assert [f.message for f in again.findings()] == ["too many counts"]


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("object.flags.exists(f, f) && cel.bind(r, true, r)", True),
        ("[object.flags.all(f, f), cel.bind(r, 5, r)]", [False, 5]),
        ("object.counts.all(c, c > 0) || cel.bind(x, true, x)", True),
        (
            "[object.flags.exists(f, f), object.counts.map(c, [object.flags.exists(f, f), cel.bind(q, 3, q)])]",
            [True, [[True, 3], [True, 3], [True, 3]]],
        ),
    ],
)
def test_expressions_with_binds_after_short_circuits_evaluate_right(expression: str, value: Any) -> None:
    from charter.engine._internal.cel.program import compile_expression, new_activation

    program = compile_expression(expression)
    assert program.text != program.source  # guarded
    activation = new_activation({"object": {"flags": [True, False], "counts": [-1, 2, 3]}})
    assert program.run(activation) == (value, None)


@pytest.mark.parametrize("profile", ["onprem-sovereign-de", "gcp-us-central1"])
def test_shipped_packs_fused_equal_step_by_step(profile: str) -> None:
    # Every shipped policy on every example: the fused programs and the expressions one by one.
    from pathlib import Path

    from charter.engine.offline import check_paths

    from charter._internal.session import load_session

    root = Path(__file__).resolve().parents[2]
    session = load_session(
        [str(root / "policies")],
        cluster=str(root / "examples" / "clusters" / f"{profile}.yaml"),
        context=[str(root / "examples" / "context")],
    )
    engine = Engine(session.policies, session.context)
    paths = [str(root / "examples" / "workloads"), str(root / "policies")]

    def report() -> list[Any]:
        run = check_paths(engine, paths, batch_size=1)
        return [
            (rd.document.source, rd.document.index, o.policy, o.verdict, sorted(o.audit_annotations.items()),
             [(f.kind, f.message, f.validation) for f in o.findings])
            for rd in run.decisions for o in rd.decision.outcomes
        ]  # fmt: skip

    policies = engine.policies.policies
    assert [p.name for p in policies if p.fused is None] == []  # none too deeply nested to fuse
    assert [p.name for p in policies if p.constants and p.fused_constants is None] == []
    fused = report()
    assert sum(1 for r in fused if r[3] == "deny") > 50
    # every policy with context constants ran its constant-reading program
    assert {p.name for p in policies if p.constants} == {
        p.name for p in policies if engine._fused_for(p) is p.fused_constants is not None
    }
    assert len([p for p in policies if p.constants]) >= 5
    # and every one of them was grouped with others (see test_groups.py)
    assert engine._groups and sorted(p.name for g in engine._groups for p in g.members) == sorted(
        p.name for p in policies
    )
    for p in engine.policies.policies:
        p.fused = None
    assert report() == fused


def test_annotations_too_deep_to_fuse_are_evaluated_on_their_own(make_engine: Callable[..., Engine]) -> None:
    deep = "(" * 30 + "'deep-' + variables.a" + ")" * 30  # compiles alone, not inside the fused binds
    engine = make_engine(
        f"""
        apiVersion: charter.dev/v1alpha1
        kind: Policy
        metadata: {{name: deep}}
        spec:
          validationActions: [Deny]
          variables:
            - {{name: a, expression: "workload.name"}}
          validations:
            - expression: "variables.a != 'bad'"
              messageExpression: "'named ' + variables.a"
          auditAnnotations:
            - {{key: deep, valueExpression: "{deep}"}}
            - {{key: shallow, valueExpression: "'s-' + variables.a"}}
        """
    )
    (policy,) = engine.policies.policies
    assert policy.fused is not None and not policy.fused_annotations

    def report(name: str) -> Any:
        m = _manifest("ok")
        m["metadata"]["name"] = name
        (o,) = evaluate(engine, m).outcomes
        return o.verdict, sorted(o.audit_annotations.items()), [f.message for f in o.findings]

    fused = [report("good"), report("bad")]
    assert fused[1] == ("deny", [("deep", "deep-bad"), ("shallow", "s-bad")], ["named bad"])
    policy.fused = None
    assert [report("good"), report("bad")] == fused
