"""Policies that cannot load are rejected naming file, document, policy, field path and CEL column."""

from __future__ import annotations

from pathlib import Path

import pytest
from charter.engine import CompileError, PolicyLoadError, load_policy_set

GOOD = """
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: ok}
spec:
  validations:
    - expression: "workload.identity.owner != ''"
"""


def load(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    _, _, errors = load_policy_set([str(f)])
    return [str(e) for e in errors]


@pytest.mark.parametrize(
    ("expression", "field", "expected"),
    [
        (
            "1 + 'a'",
            "spec.validations[2].expression",
            "line 1, column 3: found no matching overload for '_+_' applied to '(int, string)'",
        ),
        ("object.x +", "spec.validations[2].expression", "line 1, column 11: Syntax error"),
        ("nosuchfn(object)", "spec.validations[2].expression", "undeclared reference to 'nosuchfn'"),
        (
            "'a string'",
            "spec.validations[2].expression",
            "a validation must evaluate to bool, but its type is string",
        ),
        (
            "quantity(1) == quantity('1')",
            "spec.validations[2].expression",
            "found no matching overload for 'quantity' applied to '(int)'",
        ),
        ("variables.nope == 1", "spec.validations[2].expression", "undefined variable variables.nope"),
        (
            "authorizer.group('') != null",
            "spec.validations[2].expression",
            "undeclared reference to 'authorizer'",
        ),
    ],
)
def test_compile_errors_name_file_document_policy_field(
    tmp_path: Path, expression: str, field: str, expected: str
) -> None:
    text = (
        GOOD
        + f"""---
apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {{name: broken}}
spec:
  validations:
    - expression: "true"
    - expression: "true"
    - expression: "{expression}"
"""
    )
    errors = load(tmp_path, text)
    assert len(errors) == 1
    msg = errors[0]
    assert f"{tmp_path / 'p.yaml'}:" in msg
    assert "document 1" in msg and "policy 'broken'" in msg and field in msg
    assert expected in msg


def test_message_expression_must_be_string(tmp_path: Path) -> None:
    errors = load(
        tmp_path, GOOD.replace('expression: "workload', 'messageExpression: "1"\n      expression: "workload')
    )
    assert len(errors) == 1
    assert "spec.validations[0].messageExpression" in errors[0] and "must evaluate to string" in errors[0]


def test_schema_errors_name_the_field(tmp_path: Path) -> None:
    errors = load(tmp_path, GOOD.replace("validations:", "validatoins:"))
    assert len(errors) == 1
    assert "spec.validatoins: Extra inputs are not permitted" in errors[0]


def test_variable_forward_reference_rejected(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  validations:",
        "  variables:\n    - {name: a, expression: 'variables.b'}\n    - {name: b, expression: '1'}\n  validations:",
    )
    errors = load(tmp_path, text)
    assert (
        len(errors) == 1
        and "spec.variables[0].expression" in errors[0]
        and "undefined variable variables.b" in errors[0]
    )


def test_binding_to_missing_policy_is_an_error(tmp_path: Path) -> None:
    errors = load(
        tmp_path,
        """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: orphan}
spec: {policyName: nowhere, validationActions: [Deny]}
""",
    )
    assert (
        len(errors) == 1 and "refers to ValidatingAdmissionPolicy 'nowhere', which was not given" in errors[0]
    )


def test_duplicate_policy_names(tmp_path: Path) -> None:
    errors = load(tmp_path, GOOD + "---" + GOOD)
    assert len(errors) == 1 and "duplicate policy name 'ok'" in errors[0]


def test_deny_and_warn_together_rejected(tmp_path: Path) -> None:
    errors = load(tmp_path, GOOD.replace("spec:", "spec:\n  validationActions: [Deny, Warn]"))
    assert len(errors) == 1 and "Deny and Warn may not be used together" in errors[0]


def test_exception_requires_timezone_and_ticket(tmp_path: Path) -> None:
    errors = load(
        tmp_path,
        """
apiVersion: charter.dev/v1alpha1
kind: PolicyException
metadata: {name: x}
spec:
  policies: [{name: ok}]
  expires: "2026-12-01T00:00:00"
  reason: r
  approvedBy: someone
""",
    )
    assert len(errors) == 1
    assert "time zone" in errors[0] and "spec.ticket: Field required" in errors[0]


def test_error_types(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(GOOD.replace("workload.identity.owner != ''", "1 +"))
    _, _, errors = load_policy_set([str(f)])
    assert isinstance(errors[0], CompileError) and isinstance(errors[0], PolicyLoadError)
    assert errors[0].location.field == "spec.validations[0].expression"
    assert errors[0].location.policy == "ok" and errors[0].location.document == 0
