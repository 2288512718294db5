"""One policy, one binding, one param: matchConditions, variables, validations, audit annotations.

Follows k8s.io/apiserver/pkg/admission/plugin/policy/validating/validator.go: a
runtime error is never `false`, it becomes an error decision under failurePolicy;
message fallback is messageExpression -> message -> "failed expression: <expr>".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._internal.cel.program import new_activation
from .compiler import CompiledExpr, CompiledPolicy

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


class _Scope:
    """The activation for one evaluation, with variables computed on first use."""

    def __init__(
        self, policy: CompiledPolicy, base: dict[str, Any], trace: list[dict[str, Any]] | None
    ) -> None:
        self.policy = policy
        self.base = base
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.trace = trace
        self._activation: Any = None
        self._activation_vars: frozenset[str] | None = None

    def _resolve(self, names: frozenset[str]) -> None:
        for name in names:
            if name in self.values or name in self.errors:
                continue
            expr = self.policy.variables[name]
            self._resolve(expr.variables)
            value, err = expr.program.run(self._activation_for(expr.variables))
            if err is None:
                self.values[name] = value
            else:
                self.errors[name] = err
            if self.trace is not None:
                self.trace.append({"step": "variable", "name": name, "value": value, "error": err})

    def _activation_for(self, names: frozenset[str]) -> Any:
        if not names:
            if self._activation is None or self._activation_vars:
                # Expressions that read no variables share one activation.
                self._activation = new_activation({**self.base, "variables": {}})
                self._activation_vars = frozenset()
            return self._activation
        available = {n: self.values[n] for n in self._closure(names) if n in self.values}
        return new_activation({**self.base, "variables": available})

    def _closure(self, names: frozenset[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(self.policy.variables[n].variables)
        return seen

    def run(self, expr: CompiledExpr) -> tuple[Any, str | None]:
        self._resolve(expr.variables)
        value, err = expr.program.run(self._activation_for(expr.variables))
        if err is not None:
            failed = sorted(n for n in self._closure(expr.variables) if n in self.errors)
            if failed:
                # The expression read a variable whose own evaluation failed: report that cause.
                err = "; ".join(f"variables.{n}: {self.errors[n]}" for n in failed)
        return value, err


def _message(policy: CompiledPolicy, scope: _Scope, index: int) -> str:
    v = policy.validations[index]
    message = ""
    if v.message_expr is not None:
        value, err = scope.run(v.message_expr)
        if err is None and isinstance(value, str):
            value = value.strip()
            if len(value.encode()) <= MAX_MESSAGE_EXPRESSION_BYTES and "\n" not in value:
                message = value
    if not message and v.message:
        message = v.message.strip()
    if not message:
        message = f"failed expression: {v.expr.source.strip()}"
    return message


def validate(policy: CompiledPolicy, base: dict[str, Any], *, explain: bool = False) -> ValidateResult:
    """Evaluate `policy` with the activation `base` (object, request, params, ... but not variables)."""
    trace: list[dict[str, Any]] | None = [] if explain else None
    scope = _Scope(policy, base, trace)
    result = ValidateResult(trace=trace)
    fail = policy.failure_policy == "Fail"
    error_action = "deny" if fail else "admit"

    for name, cond in policy.match_conditions:
        value, err = scope.run(cond)
        if trace is not None:
            trace.append({"step": "matchCondition", "name": name, "value": value, "error": err})
        if err is not None:
            msg = f"failed to evaluate matchCondition {name!r}: {err}"
            result.decisions.append(
                Decision(None, error_action, "error", msg, field=cond.field, expression=cond.source)
            )
            return result
        if value is not True:
            # A false match condition (or one that is not a bool) means the policy does not apply.
            if not isinstance(value, bool):
                msg = f"matchCondition {name!r} evaluated to {type(value).__name__}, not bool"
                result.decisions.append(
                    Decision(None, error_action, "error", msg, field=cond.field, expression=cond.source)
                )
                return result
            result.matched = False
            return result

    for v in policy.validations:
        value, err = scope.run(v.expr)
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
            result.decisions.append(
                Decision(
                    v.index,
                    "deny",
                    "deny",
                    _message(policy, scope, v.index),
                    v.reason or "Invalid",
                    v.expr.field,
                    v.expr.source,
                )
            )
        else:
            result.decisions.append(Decision(v.index, "admit", "admit"))

    for a in policy.audit_annotations:
        value, err = scope.run(a.expr)
        if trace is not None:
            trace.append({"step": "auditAnnotation", "key": a.key, "value": value, "error": err})
        if err is None and value is not None and not isinstance(value, str):
            err = (
                f"valueExpression '{a.expr.source}' resulted in unsupported return type: {type(value).__name__}. "
                "Return type must be either string or null."
            )
        if err is not None:
            if fail:
                result.decisions.append(
                    Decision(
                        None, "deny", "error", err, field=a.expr.field, expression=a.expr.source, direct=True
                    )
                )
            continue
        if isinstance(value, str) and value.strip():
            result.audit_annotations[a.key] = value.strip()[:MAX_AUDIT_ANNOTATION_VALUE_BYTES]
    return result
