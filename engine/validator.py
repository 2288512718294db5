"""One policy, one binding, one param: matchConditions, validations, audit annotations.

Follows k8s.io/apiserver/pkg/admission/plugin/policy/validating/validator.go: a
runtime error is never `false`, it becomes an error decision under failurePolicy;
message fallback is messageExpression -> message -> "failed expression: <expr>".
Variables are bound in place by the compiler, so one activation serves every
expression of every policy for a resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .compiler import CompiledExpr, CompiledPolicy, CompiledValidation

# k8s.io/apiserver/pkg/apis/cel/config.go
MAX_MESSAGE_EXPRESSION_BYTES = 5 * 1024
MAX_AUDIT_ANNOTATION_VALUE_BYTES = 10 * 1024


@dataclass(slots=True)
class Decision:
    validation: int | None  # None: a match condition or another policy-level step
    action: str  # "deny" (failed or erred under Fail) | "admit"
    evaluation: str  # "admit" | "deny" | "error"
    message: str = ""
    reason: str = ""
    field: str | None = None
    expression: str | None = None
    direct: bool = False  # denies whatever the binding's actions (audit annotation errors under Fail)


@dataclass(slots=True)
class ValidateResult:
    matched: bool = True
    decisions: list[Decision] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)
    trace: list[dict[str, Any]] | None = None


def _run(policy: CompiledPolicy, expr: CompiledExpr, activation: Any) -> tuple[Any, str | None]:
    value, err = expr.program.run(activation)
    if err is not None and expr.variables:
        # Name the variable whose own evaluation failed, as the apiserver's lazy variables do.
        for name, var in policy.variables.items():
            if name in expr.variables or _reads(policy, expr.variables, name):
                _, var_err = var.program.run(activation)
                if var_err is not None and var_err == err:
                    return None, f"variables.{name}: {err}"
    return value, err


def _reads(policy: CompiledPolicy, names: frozenset[str], target: str) -> bool:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n == target:
            return True
        if n not in seen:
            seen.add(n)
            todo.extend(policy.variables[n].variables)
    return False


def _worded(v: CompiledValidation, value: Any) -> str:
    """A failed validation's message from its messageExpression's value (None: none, or it erred):
    the value if it is a usable string, else `message`, else "failed expression: <expr>"."""
    message = ""
    if isinstance(value, str):
        value = value.strip()
        if len(value.encode()) <= MAX_MESSAGE_EXPRESSION_BYTES and "\n" not in value:
            message = value
    if not message and v.message:
        message = v.message.strip()
    if not message:
        message = f"failed expression: {v.expr.source.strip()}"
    return message


def _message(policy: CompiledPolicy, activation: Any, index: int) -> str:
    v = policy.validations[index]
    value = None
    if v.message_expr is not None:
        value, err = _run(policy, v.message_expr, activation)
        if err is not None:
            value = None
    return _worded(v, value)


def _audit(
    policy: CompiledPolicy, activation: Any, result: ValidateResult, trace: list[dict[str, Any]] | None
) -> None:
    fail = policy.failure_policy == "Fail"
    for a in policy.audit_annotations:
        value, err = _run(policy, a.expr, activation)
        if trace is not None:
            trace.append({"step": "auditAnnotation", "key": a.key, "value": value, "error": err})
        if err is None and value is not None and not isinstance(value, str):
            err = (
                f"valueExpression '{a.expr.source}' resulted in unsupported return type: "
                f"{type(value).__name__}. Return type must be either string or null."
            )
        if err is not None:
            if fail:
                result.decisions.append(
                    Decision(
                        None, "deny", "error", err, field=a.expr.field, expression=a.expr.source, direct=True
                    )
                )
            continue
        if isinstance(value, str):
            _keep_annotation(result, a.key, value)


def _keep_annotation(result: ValidateResult, key: str, value: str) -> None:
    """An audit annotation's string value as the apiserver keeps it: trimmed, bounded, none if blank."""
    value = value.strip()
    if value:
        result.audit_annotations[key] = value[:MAX_AUDIT_ANNOTATION_VALUE_BYTES]


class Runnable(Protocol):
    """A fused program, or its value already computed (see dispatcher._Given)."""

    def run(self, activation: Any) -> tuple[Any, str | None]: ...


# Shared results, read and never written.
_PASSED = ValidateResult()  # every validation admitted, no audit annotations
_NOT_MATCHED = ValidateResult(matched=False)  # a false match condition: the policy does not apply


def _validate_fused(policy: CompiledPolicy, activation: Any, fused: Runnable) -> ValidateResult | None:
    """The policy decided by its one fused program, or None: take the step-by-step path."""
    values, err = fused.run(activation)
    if err is not None or type(values) is not list:
        return None
    if not values:
        return _NOT_MATCHED if policy.match_conditions else None
    if len(values) != policy.fused_length:
        return None
    validations = policy.validations
    n = len(validations)
    # The usual case, all admitted; `count` compares with ==, exact only where every value is a bool.
    if policy.fused_bools and values[:n].count(True) == n and not policy.audit_annotations:
        return _PASSED
    first_annotation = n + len(policy.fused_messages)
    fused_annotations = policy.audit_annotations if policy.fused_annotations else ()
    decisions: list[Decision] = []  # the denials only: an admitted validation reports nothing
    for i in range(n):  # the first n values: the validations
        value = values[i]
        if value is True:
            continue
        if value is not False:
            return None  # a non-bool validation: reported with its own program
        v = validations[i]
        message = _worded(
            v, values[n + policy.fused_messages.index(i)] if v.message_expr is not None else None
        )
        decisions.append(
            Decision(i, "deny", "deny", message, v.reason or "Invalid", v.expr.field, v.expr.source)
        )
    if not decisions and not policy.audit_annotations:
        return _PASSED  # nothing to report: one shared result, never modified
    result = ValidateResult(decisions=decisions)
    for a, value in zip(fused_annotations, values[first_annotation:], strict=True):
        if type(value) is str:
            _keep_annotation(result, a.key, value)
        elif value is not None:
            return None  # an unsupported type: the step-by-step path words the error
    if not policy.fused_annotations:
        _audit(policy, activation, result, None)
    return result


def validate(
    policy: CompiledPolicy, activation: Any, *, explain: bool = False, fused: Runnable | None = None
) -> ValidateResult:
    """Evaluate `policy` against `activation` (object, request, params, workload, ...).

    `fused`: the policy's fused program to run (`policy.fused` or its context-constant form).
    """
    fused = fused or policy.fused
    if not explain and fused is not None:
        fast = _validate_fused(policy, activation, fused)
        if fast is not None:
            return fast
    trace: list[dict[str, Any]] | None = [] if explain else None
    result = ValidateResult(trace=trace)
    fail = policy.failure_policy == "Fail"
    error_action = "deny" if fail else "admit"

    if trace is not None:
        for name, var in policy.variables.items():
            value, err = var.program.run(activation)
            trace.append({"step": "variable", "name": name, "value": value, "error": err})

    for name, cond in policy.match_conditions:
        value, err = _run(policy, cond, activation)
        if trace is not None:
            trace.append({"step": "matchCondition", "name": name, "value": value, "error": err})
        if err is None and not isinstance(value, bool):
            err = f"evaluated to {type(value).__name__}, not bool"
        if err is not None:
            msg = f"failed to evaluate matchCondition {name!r}: {err}"
            result.decisions.append(
                Decision(None, error_action, "error", msg, field=cond.field, expression=cond.source)
            )
            return result
        if value is not True:
            result.matched = False  # a false match condition: the policy does not apply
            return result

    for v in policy.validations:
        value, err = _run(policy, v.expr, activation)
        if trace is not None:
            trace.append(
                {
                    "step": "validation",
                    "index": v.index,
                    "name": v.name,
                    "expression": v.expr.source,
                    "value": value,
                    "error": err,
                }
            )
        if err is None and not isinstance(value, bool):
            err = f"validation expression returned {type(value).__name__}, expected bool"
        if err is not None:
            result.decisions.append(
                Decision(v.index, error_action, "error", err, field=v.expr.field, expression=v.expr.source)
            )
        elif value is not True:
            message = _message(policy, activation, v.index)
            result.decisions.append(
                Decision(v.index, "deny", "deny", message, v.reason or "Invalid", v.expr.field, v.expr.source)
            )
        else:
            result.decisions.append(Decision(v.index, "admit", "admit"))

    _audit(policy, activation, result, trace)
    return result
