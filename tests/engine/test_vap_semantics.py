"""An unmodified ValidatingAdmissionPolicy + Binding decides as the apiserver would.

The policy and binding are the ones in the Kubernetes documentation
(reference/access-authn-authz/validating-admission-policy); expected messages are
the apiserver's (validating/dispatcher.go, validator.go).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from charter.engine import Engine

from .conftest import evaluate

DOCS_POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  validations:
    - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "demo-binding-test.example.com"
spec:
  policyName: "demo-policy.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
---
apiVersion: v1
kind: Namespace
metadata: {name: test-ns, labels: {environment: test}}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod-ns, labels: {environment: prod}}
"""


def deployment(replicas: int, namespace: str = "test-ns") -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: {namespace}}}
    spec:
      replicas: {replicas}
      template: {{spec: {{containers: [{{name: c, image: nginx}}]}}}}
    """


def test_documentation_example_denies_with_apiserver_message(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(DOCS_POLICY)
    d = evaluate(engine, deployment(6))
    assert not d.allowed
    assert d.deny_message() == (
        "ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' "
        "denied request: failed expression: object.spec.replicas <= 5"
    )
    assert evaluate(engine, deployment(5)).allowed


def test_binding_namespace_selector_limits_scope(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(DOCS_POLICY)
    d = evaluate(engine, deployment(50, "prod-ns"))
    assert d.allowed
    assert d.outcomes[0].verdict == "skip"


def test_unknown_namespace_labels_are_unresolved_not_matched(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(DOCS_POLICY)
    d = evaluate(engine, deployment(50, "elsewhere"))
    outcome = d.outcomes[0]
    assert not outcome.matched
    assert outcome.unresolved is not None and "elsewhere" in outcome.unresolved
    assert outcome.verdict == "error"


def test_other_kinds_do_not_match(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(DOCS_POLICY)
    d = evaluate(
        engine, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: test-ns}\nspec: {containers: []}\n"
    )
    assert d.outcomes[0].verdict == "skip"


PARAM_POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: replica-limit}}
spec:
  failurePolicy: {failure}
  paramKind: {{apiVersion: v1, kind: ConfigMap}}
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
    - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
      messageExpression: "'object.spec.replicas must be no greater than ' + params.data.maxReplicas"
      reason: Invalid
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: replica-limit-binding}}
spec:
  policyName: replica-limit
  validationActions: [{actions}]
  paramRef: {{name: {param}, namespace: default, parameterNotFoundAction: {not_found}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: replica-limit-params, namespace: default}}
data: {{maxReplicas: "3"}}
"""


def param_engine(
    make_engine: Callable[..., Engine],
    *,
    failure: str = "Fail",
    actions: str = "Deny",
    param: str = "replica-limit-params",
    not_found: str = "Deny",
) -> Engine:
    return make_engine(
        PARAM_POLICY.format(failure=failure, actions=actions, param=param, not_found=not_found)
    )


def test_params_and_message_expression(make_engine: Callable[..., Engine]) -> None:
    engine = param_engine(make_engine)
    d = evaluate(engine, deployment(4, "default"))
    assert d.deny_message().endswith("denied request: object.spec.replicas must be no greater than 3")
    assert d.denials[0].param == "replica-limit-params"
    assert evaluate(engine, deployment(3, "default")).allowed


def test_missing_params_with_deny_action(make_engine: Callable[..., Engine]) -> None:
    engine = param_engine(make_engine, param="absent")
    d = evaluate(engine, deployment(1, "default"))
    assert not d.allowed
    assert (
        d.denials[0].message
        == "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
    )


def test_missing_params_with_allow_action_admits(make_engine: Callable[..., Engine]) -> None:
    engine = param_engine(make_engine, param="absent", not_found="Allow")
    d = evaluate(engine, deployment(100, "default"))
    assert d.allowed and not d.findings()


def test_missing_params_under_ignore_admits_but_records(make_engine: Callable[..., Engine]) -> None:
    engine = param_engine(make_engine, param="absent", failure="Ignore")
    d = evaluate(engine, deployment(1, "default"))
    assert d.allowed
    assert [f.kind for f in d.findings()] == ["error"]


@pytest.mark.parametrize(
    ("actions", "verdict", "allowed"),
    [("Warn", "warn", True), ("Audit", "audit", True), ("Deny", "deny", False)],
)
def test_binding_validation_actions(
    make_engine: Callable[..., Engine], actions: str, verdict: str, allowed: bool
) -> None:
    engine = param_engine(make_engine, actions=actions)
    d = evaluate(engine, deployment(9, "default"))
    assert d.outcomes[0].verdict == verdict
    assert d.allowed is allowed
    if actions == "Warn":
        assert d.warnings() == [
            "Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-binding': "
            "object.spec.replicas must be no greater than 3"
        ]


MESSAGES = r"""
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {{name: messages}}
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules: [{{apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [pods]}}]
  validations:
    - expression: "false"
      messageExpression: "'  padded  '"
      message: static
    - expression: "false"
      messageExpression: "'two\\nlines'"
      message: "  static fallback  "
    - expression: "false"
      messageExpression: "object.nosuch"
    - expression: "  1 == 2  "
    - expression: "false"
      messageExpression: "object.metadata.annotations['long']"
      message: too long
    - expression: "object.spec.nosuch == 1"
"""

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: [{name: c, image: x}]}\n"


def test_message_fallback_rules(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(MESSAGES.format(failure="Fail"))
    pod = POD.replace("namespace: default}", "namespace: default, annotations: {long: " + "x" * 5121 + "}}")
    findings = evaluate(engine, pod).findings()
    assert [f.message for f in findings[:5]] == [
        "padded",  # trimmed
        "static fallback",  # multi-line messageExpression falls back to message, trimmed
        "failed expression: false",  # erroring messageExpression, no message
        "failed expression: 1 == 2",  # expression trimmed
        "too long",  # over 5 KiB falls back
    ]
    err = findings[5]
    assert err.kind == "error" and err.actions == ("Deny",)
    assert "nosuch" in err.message
    assert err.field == "spec.validations[5].expression"


def test_runtime_error_is_never_false_and_follows_ignore(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(MESSAGES.format(failure="Ignore"))
    d = evaluate(engine, POD)
    errors = [f for f in d.findings() if f.kind == "error"]
    assert len(errors) == 1 and errors[0].actions == ()
    assert d.outcomes[0].verdict == "error"


AUDIT = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: audit-annotations}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [pods]}]
  matchConditions:
    - name: not-system
      expression: "!object.metadata.name.startsWith('system-')"
  auditAnnotations:
    - key: image
      valueExpression: "object.spec.containers[0].image"
    - key: empty
      valueExpression: "'   '"
    - key: nothing
      valueExpression: "null"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: audit-annotations, validationActions: [Audit]}
"""


def test_audit_annotations_and_match_conditions(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(AUDIT)
    d = evaluate(engine, POD)
    assert d.audit_annotations() == {"audit-annotations/image": "x"}
    skipped = evaluate(engine, POD.replace("name: p,", "name: system-p,"))
    assert skipped.audit_annotations() == {}


def test_operation_rules_and_delete_uses_old_object(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(
        DOCS_POLICY.replace('["CREATE", "UPDATE"]', '["DELETE"]').replace("object.spec", "oldObject.spec")
    )
    assert evaluate(engine, deployment(9)).outcomes[0].verdict == "skip"
    d = evaluate(engine, deployment(9), operation="DELETE")
    assert not d.allowed


def test_lazy_variables_error_only_when_read(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(
        """
        apiVersion: charter.dev/v1alpha1
        kind: Policy
        metadata: {name: lazy}
        spec:
          matchConstraints:
            resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [pods]}]
          variables:
            - {name: broken, expression: "object.spec.nosuch"}
            - {name: name, expression: "object.metadata.name"}
            - {name: shout, expression: "variables.name.upperAscii()"}
          validations:
            - expression: "variables.shout == 'P'"
            - expression: "false && variables.broken == 1"
              message: short-circuited
            - expression: "variables.broken == 1"
        """
    )
    findings = evaluate(engine, POD).findings()
    assert [(f.validation, f.kind) for f in findings] == [(1, "violation"), (2, "error")]
    assert findings[1].message.startswith("variables.broken: ")


def test_optional_variables_are_usable_downstream(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(
        """
        apiVersion: charter.dev/v1alpha1
        kind: Policy
        metadata: {name: optional-vars}
        spec:
          matchConstraints:
            resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [pods]}]
          variables:
            - {name: team, expression: "object.metadata.?labels[?'team']"}
            - {name: teamName, expression: "variables.team.orValue('none')"}
            - {name: upper, expression: "variables.team.hasValue() ? variables.team.value().upperAscii() : ''"}
          validations:
            - expression: "variables.team.hasValue()"
              messageExpression: "'team is ' + variables.teamName"
            - expression: "variables.upper == 'ML'"
              messageExpression: "'upper is ' + variables.upper"
        """
    )
    labelled = evaluate(engine, POD.replace("namespace: default}", "namespace: default, labels: {team: ml}}"))
    assert labelled.findings() == []
    bare = evaluate(engine, POD)
    assert [f.message for f in bare.findings()] == ["team is none", "upper is"]  # messages are trimmed


def test_runaway_expression_stopped_by_cost_budget(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(
        """
        apiVersion: charter.dev/v1alpha1
        kind: Policy
        metadata: {name: runaway}
        spec:
          matchConstraints:
            resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [configmaps]}]
          validations:
            - expression: "object.data.keys.all(a, object.data.keys.all(b, a != b || a == b))"
        """
    )
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "default"},
        "data": {"keys": [str(i) for i in range(500)]},
    }
    (finding,) = evaluate(engine, cm).findings()
    assert finding.kind == "error" and finding.actions == ("Deny",)
    assert finding.message.startswith("cost budget exceeded")
    small = dict(cm, data={"keys": ["a", "b"]})
    assert evaluate(engine, small).findings() == []


SELECTORS = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: selectors}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: ["", "apps"], apiVersions: ["*"], operations: ["CREATE"], resources: ["*"], scope: Namespaced}
    excludeResourceRules:
      - {apiGroups: [""], apiVersions: ["*"], operations: ["*"], resources: [configmaps]}
    objectSelector:
      matchExpressions:
        - {key: tier, operator: NotIn, values: [system]}
  validations:
    - expression: "false"
      message: matched
"""


@pytest.mark.parametrize(
    ("manifest", "verdict"),
    [
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x"}}, "deny"),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "x"}},
            "deny",
        ),
        # excluded resource
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}}, "skip"),
        # object selector
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "s", "namespace": "x", "labels": {"tier": "system"}},
            },
            "skip",
        ),
        # scope: Namespaced excludes cluster-scoped kinds
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, "skip"),
        # group not listed
        ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "x"}}, "skip"),
    ],
)
def test_rules_exclusions_selectors_scope(
    make_engine: Callable[..., Engine], manifest: dict[str, object], verdict: str
) -> None:
    engine = make_engine(SELECTORS)
    assert evaluate(engine, manifest).outcomes[0].verdict == verdict


def test_rule_operations_and_match_policy(make_engine: Callable[..., Engine]) -> None:
    exact = make_engine(
        DOCS_POLICY.replace("  matchConstraints:\n", "  matchConstraints:\n    matchPolicy: Exact\n", 1)
    )
    v1beta = deployment(9).replace("apiVersion: apps/v1", "apiVersion: apps/v1beta2")
    assert evaluate(exact, v1beta).outcomes[0].verdict == "skip"  # Exact: the version must be listed
    equivalent = make_engine(DOCS_POLICY)
    assert evaluate(equivalent, v1beta).outcomes[0].verdict == "deny"  # Equivalent (the default) converts
    assert evaluate(equivalent, deployment(9), operation="DELETE").outcomes[0].verdict == "skip"
