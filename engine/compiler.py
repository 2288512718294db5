"""Policies in, compiled policies out: every expression parsed and type-checked once.

A policy that does not compile is rejected whole, naming the file, document,
policy, field path (spec.validations[2].expression) and the CEL error with its column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._internal.cel.env import CONTEXT_CONSTANTS
from ._internal.cel.groups import nesting
from ._internal.cel.program import CelCompileError, Program, compile_expression
from .errors import CompileError, Location
from .models import (
    Action,
    CharterPolicy,
    Domain,
    FailurePolicy,
    MatchResources,
    ParamKind,
    ParamRef,
    PolicySpecBase,
    Severity,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
)

_VARIABLE_REF = re.compile(
    r"\bvariables\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\])"
)

# Inputs that differ per resource or per param: a variable reading none of them (only `cluster`,
# `catalog` and such variables) has one value per engine context.
_PER_RESOURCE_INPUT = re.compile(
    r"\b(?:object|oldObject|request|params|namespaceObject|workload|provenance|__charter_\w*)\b"
)
# Worth computing once per context instead of per resource: it iterates or sorts, not a lookup.
_COMPUTES = re.compile(r"\.\s*(?:filter|map|exists|all|exists_one|sort|sortBy|distinct|join)\s*\(")
_constant_keys: dict[str, str] = {}  # a context constant's program text -> its key in CONTEXT_CONSTANTS

# What each kind of expression must evaluate to (DYN is checked at run time).
_BOOL = ("BOOL", "DYN")
_STRING = ("STRING", "DYN")
_STRING_OR_NULL = ("STRING", "NULL", "DYN")


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    field: str  # spec.validations[0].expression
    source: str  # as the policy author wrote it
    program: Program  # with the variables it reads bound in place
    variables: frozenset[str]  # variables.<name> the expression reads


@dataclass(frozen=True, slots=True)
class CompiledValidation:
    index: int
    expr: CompiledExpr
    message: str
    message_expr: CompiledExpr | None
    reason: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class CompiledAuditAnnotation:
    key: str
    expr: CompiledExpr


@dataclass(frozen=True, slots=True)
class CompiledBinding:
    name: str  # "" for a charter Policy's own binding
    actions: tuple[Action, ...]
    match: MatchResources | None
    param_ref: ParamRef | None
    location: Location


@dataclass(slots=True)
class CompiledPolicy:
    name: str
    kind: str  # Policy | ValidatingAdmissionPolicy
    location: Location
    match: MatchResources | None  # None: every pod-bearing workload (charter Policy only)
    match_conditions: tuple[tuple[str, CompiledExpr], ...]
    variables: dict[str, CompiledExpr]
    validations: tuple[CompiledValidation, ...]
    audit_annotations: tuple[CompiledAuditAnnotation, ...]
    failure_policy: FailurePolicy
    param_kind: ParamKind | None = None
    domain: Domain = "general"
    severity: Severity = "medium"
    description: str = ""
    remediation: str = ""
    bindings: list[CompiledBinding] = field(default_factory=list)
    # The match conditions, validations, the messages of failed validations and the audit
    # annotations in one program: `[]` when a match condition is false, else the validations'
    # values, then the values of `fused_messages`, then one value per audit annotation (an
    # error or unexpected type anywhere: the step-by-step path decides).
    fused: Program | None = None
    fused_messages: tuple[int, ...] = ()  # indexes of the validations with a messageExpression
    fused_annotations: bool = True  # False: the audit annotations are evaluated on their own
    fused_length: int = 0  # how many values `fused` returns when the policy applies
    fused_bools: bool = False  # every validation is typed bool: its values can only be bools
    # Variables that read only the context (cluster, catalog) and do real work (filter, sort, ...):
    # (key, program). An engine computes them once for its context; `fused_constants` is `fused`
    # reading them from CONTEXT_CONSTANTS[key], for engines where every one of them evaluated.
    constants: tuple[tuple[str, Program], ...] = ()
    fused_constants: Program | None = None

    @property
    def is_vap(self) -> bool:
        return self.kind == "ValidatingAdmissionPolicy"

    @property
    def plain_binding(self) -> CompiledBinding | None:
        """The one binding when it matches everything the policy does and takes no params."""
        if self.param_kind is None and len(self.bindings) == 1 and self.bindings[0].match is None:
            return self.bindings[0]
        return None


def referenced_variables(source: str) -> frozenset[str]:
    return frozenset(a or b for a, b in _VARIABLE_REF.findall(source))


def _rename(source: str, names: set[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return f"__charter_v_{name}" if name in names else m.group(0)

    return _VARIABLE_REF.sub(sub, source)


def _inline_variables(source: str, variables: dict[str, str], constants: dict[str, str] | None = None) -> str:
    """Bind the variables `source` reads with cel.bind, in declaration order.

    cel-expr-python converts every input of a fresh activation (~0.5 ms for a large
    catalog), so all of a resource's policies share one activation; variables are
    therefore evaluated in place rather than carried in a per-policy `variables`
    map. cel-cpp binds lazily, so an unread or short-circuited variable never fails
    the expression, as in the apiserver; optional-typed variables keep their type.
    `constants` (variable name -> key) are bound to their value computed for the context.
    """
    constants = constants or {}
    needed: set[str] = set()
    todo = [n for n in referenced_variables(source) if n in variables]
    while todo:
        n = todo.pop()
        if n not in needed:
            needed.add(n)
            if n not in constants:
                todo.extend(r for r in referenced_variables(variables[n]) if r in variables)
    if not needed:
        return source
    body = _rename(source, needed)
    for name in reversed([n for n in variables if n in needed]):
        value = (
            f"{CONTEXT_CONSTANTS}['{constants[name]}']"
            if name in constants
            else _rename(variables[name], needed)
        )
        body = f"cel.bind(__charter_v_{name}, {value}, {body})"
    return body


def _context_constants(spec: PolicySpecBase, variables: dict[str, CompiledExpr]) -> dict[str, str]:
    """The variables worth computing once per context: variable name -> key."""
    context_only: set[str] = set()
    out: dict[str, str] = {}
    for var in spec.variables:
        src = var.expression
        if _PER_RESOURCE_INPUT.search(src) or not referenced_variables(src) <= context_only:
            continue
        context_only.add(var.name)
        if _COMPUTES.search(src):
            text = variables[var.name].program.source
            out[var.name] = _constant_keys.setdefault(text, f"c{len(_constant_keys)}")
    return out


def _compile(
    source: str,
    field_path: str,
    location: Location,
    allowed_types: tuple[str, ...] | None,
    variables: dict[str, str],
    what: str,
) -> CompiledExpr:
    """Compile `source`; `variables` are the ones declared before it (name -> expression)."""
    loc = Location(location.file, location.document, location.line, location.policy, field_path, source)
    try:
        program = compile_expression(source)
    except CelCompileError as e:
        raise CompileError(f"CEL compile error: {e.message}", loc) from e
    refs = referenced_variables(source)
    unknown = sorted(refs - variables.keys())
    if unknown:
        raise CompileError(
            f"undefined variable {', '.join('variables.' + u for u in unknown)} "
            f"(defined before this point: {', '.join(variables) or 'none'})",
            loc,
        )
    if refs:
        try:
            program = compile_expression(_inline_variables(source, variables))
        except CelCompileError as e:
            # The first compile saw variables as dyn; this one gives them their own types.
            raise CompileError(
                f"CEL type error once variables take their declared types: {e.message}", loc
            ) from e
    if allowed_types is not None and program.return_type not in allowed_types:
        want = " or ".join(t.lower() for t in allowed_types if t != "DYN")
        raise CompileError(
            f"{what} must evaluate to {want}, but its type is {program.return_type.lower()}", loc
        )
    return CompiledExpr(field_path, source, program, refs)


def _compile_spec(name: str, kind: str, spec: PolicySpecBase, location: Location) -> CompiledPolicy:
    loc = Location(location.file, location.document, location.line, name)
    defined: dict[str, str] = {}
    variables: dict[str, CompiledExpr] = {}
    for i, var in enumerate(spec.variables):
        # A variable may use the ones declared before it, as in the apiserver.
        variables[var.name] = _compile(
            var.expression, f"spec.variables[{i}].expression", loc, None, defined, "a variable"
        )
        defined[var.name] = var.expression
    conditions = tuple(
        (
            mc.name,
            _compile(
                mc.expression,
                f"spec.matchConditions[{i}].expression",
                loc,
                _BOOL,
                defined,
                "a match condition",
            ),
        )
        for i, mc in enumerate(spec.match_conditions)
    )
    validations = tuple(
        CompiledValidation(
            index=i,
            expr=_compile(
                v.expression,
                f"spec.validations[{i}].expression",
                loc,
                _BOOL,
                defined,
                "a validation",
            ),
            message=v.message,
            message_expr=(
                _compile(
                    v.message_expression,
                    f"spec.validations[{i}].messageExpression",
                    loc,
                    _STRING,
                    defined,
                    "a messageExpression",
                )
                if v.message_expression
                else None
            ),
            reason=v.reason,
            name=v.name,
        )
        for i, v in enumerate(spec.validations)
    )
    annotations = tuple(
        CompiledAuditAnnotation(
            a.key,
            _compile(
                a.value_expression,
                f"spec.auditAnnotations[{i}].valueExpression",
                loc,
                _STRING_OR_NULL,
                defined,
                "an audit annotation",
            ),
        )
        for i, a in enumerate(spec.audit_annotations)
    )
    fused_annotations = True
    fused, fused_messages = _fuse(spec, defined)
    if fused is None and spec.audit_annotations:  # too deeply nested with them: without them
        fused_annotations = False
        fused, fused_messages = _fuse(spec, defined, annotations=False)
    constants = _context_constants(spec, variables) if fused is not None else {}
    fused_constants = _fuse(spec, defined, constants, annotations=fused_annotations)[0] if constants else None
    return CompiledPolicy(
        name=name,
        kind=kind,
        location=location,
        match=spec.match_constraints,
        match_conditions=conditions,
        variables=variables,
        validations=validations,
        audit_annotations=annotations,
        failure_policy=spec.failure_policy,
        fused=fused,
        fused_messages=fused_messages,
        fused_annotations=fused_annotations,
        fused_length=len(validations) + len(fused_messages) + (len(annotations) if fused_annotations else 0),
        fused_bools=all(v.expr.program.return_type == "BOOL" for v in validations),
        constants=tuple((key, variables[name].program) for name, key in constants.items())
        if fused_constants is not None
        else (),
        fused_constants=fused_constants,
    )


def _fuse(
    spec: PolicySpecBase,
    variables: dict[str, str],
    constants: dict[str, str] | None = None,
    *,
    annotations: bool = True,
) -> tuple[Program | None, tuple[int, ...]]:
    """One program for a policy's match conditions, validations, messageExpressions and
    audit annotations' valueExpressions.

    Shared variables are then computed once per policy and resource instead of once per
    match condition, combined validation and message. It is only a fast path: any error
    or unexpected type in its result sends the policy through the step-by-step path, which
    decides and words every report.

    Every authored expression is the initializer of a `cel.bind`, never a sibling of one:
    cel-cpp (as shipped in cel-expr-python 0.1.3) leaves a short-circuited `exists`/`all`
    iteration variable in its slot, and a lazily bound variable that later takes the same
    slot reads that stale value instead of its own (`xs.exists(b, b) && cel.bind(r, true, r)`
    is false for xs = [true, false]). Initializers get slots of their own, so they cannot collide.
    """
    if not spec.validations:
        return None, ()
    n = len(spec.validations)
    messages = tuple(i for i, v in enumerate(spec.validations) if v.message_expression)
    fused_annotations = spec.audit_annotations if annotations else []
    items = (
        [f"__charter_r{i}" for i in range(n)]
        + [f"dyn(__charter_r{i} ? '' : __charter_m{i})" for i in messages]
        + [f"dyn(__charter_a{k})" for k in range(len(fused_annotations))]
    )
    body = "[" + ", ".join(items) + "]"
    for j in reversed(range(len(spec.match_conditions))):
        body = f"(__charter_c{j} ? {body} : [])"
    fragments = (
        [(f"__charter_c{j}", mc.expression) for j, mc in enumerate(spec.match_conditions)]
        + [(f"__charter_r{i}", v.expression) for i, v in enumerate(spec.validations)]
        + [(f"__charter_m{i}", spec.validations[i].message_expression or "") for i in messages]
        + [(f"__charter_a{k}", a.value_expression) for k, a in enumerate(fused_annotations)]
    )
    # Fragments read only variables, never each other, so any order binds the same values; the
    # parser's nesting limit (32) counts each bind around a fragment plus the fragment's own
    # nesting, so the most deeply nested ones go outermost.
    fragments.sort(key=lambda f: -nesting(f[1]))
    for name, source in reversed(fragments):  # a newline ends each: `//` comments stay inside
        body = f"cel.bind({name}, ({source}\n), {body})"
    try:
        return compile_expression(_inline_variables(body, variables, constants), guard=False), messages
    except CelCompileError:
        return None, ()


def compile_charter_policy(policy: CharterPolicy, location: Location) -> CompiledPolicy:
    spec = policy.spec
    compiled = _compile_spec(policy.metadata.name, "Policy", spec, location)
    compiled.domain = spec.domain
    compiled.severity = spec.severity
    compiled.description = spec.description
    compiled.remediation = spec.remediation
    compiled.bindings.append(CompiledBinding("", tuple(spec.validation_actions), None, None, location))
    return compiled


def compile_vap(policy: ValidatingAdmissionPolicy, location: Location) -> CompiledPolicy:
    spec = policy.spec
    if not spec.match_constraints.resource_rules:
        raise CompileError(
            "matchConstraints.resourceRules is required",
            Location(
                location.file,
                location.document,
                location.line,
                policy.metadata.name,
                "spec.matchConstraints.resourceRules",
            ),
        )
    compiled = _compile_spec(policy.metadata.name, "ValidatingAdmissionPolicy", spec, location)
    compiled.param_kind = spec.param_kind
    return compiled


def compile_binding(binding: ValidatingAdmissionPolicyBinding, location: Location) -> CompiledBinding:
    s = binding.spec
    return CompiledBinding(
        binding.metadata.name, tuple(s.validation_actions), s.match_resources, s.param_ref, location
    )
