"""Every policy against one request: match, bind, collect params, validate, apply exceptions.

Follows k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go so that
an unmodified ValidatingAdmissionPolicy and its bindings decide as the apiserver would.
This is the one evaluation path: the webhook and `charter check` both call `Engine.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._internal.cel.batch import Batch, Slot
from ._internal.cel.env import CONTEXT_CONSTANTS
from ._internal.cel.groups import split_into_groups
from ._internal.cel.program import Program, new_activation
from ._internal.cel.reads import fields_read
from ._internal.kinds import kind_info, split_api_version
from .compiler import CompiledBinding, CompiledPolicy
from .loader import ContextObjects, PolicySet
from .matcher import MATCH, NO_MATCH, MatchResult, matches, selector_matches
from .normalize import normalize
from .policy_exceptions import apply_exceptions
from .request import Attributes
from .results import Decision, Finding, PolicyOutcome
from .validator import Runnable, ValidateResult, validate

ProvenanceProvider = Callable[[dict[str, Any]], dict[str, Any]]


class ParamError(Exception):
    """A binding whose params cannot be collected: a configuration error, as in the apiserver."""


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


class _Activations:
    """The CEL activations for one resource: built on first use, shared by every policy.

    A fresh activation converts all of its inputs when first read (~0.5 ms with a
    large catalog), so one is made per resource, plus one per distinct param object;
    or the resource is a slot of a batch activation shared with other resources.
    """

    def __init__(self, base: dict[str, Any], slot: Slot | None = None) -> None:
        self.base = base
        self._shared: Any = slot
        self._by_param: dict[int, Any] = {}

    def get(self, param: dict[str, Any] | None) -> Any:
        if param is None:
            if self._shared is None:
                self._shared = new_activation(self.base)
            return self._shared
        key = id(param)
        if key not in self._by_param:
            self._by_param[key] = new_activation({**self.base, "params": param})
        return self._by_param[key]


def _json_like(value: Any) -> bool:
    """A value that becomes the same CEL value again when it is passed back in."""
    if value is None or type(value) in (str, bool, int, float):
        return True
    if type(value) is list:
        return all(_json_like(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_like(v) for k, v in value.items())
    return False


def _evaluate_constants(
    policies: Sequence[CompiledPolicy], base: dict[str, Any]
) -> tuple[dict[str, Any], dict[int, Program]]:
    """The policies' context constants evaluated against the context alone, and the programs that
    may use them: a policy whose constants do not all evaluate (an error, a value that would not
    round-trip) keeps its plain fused program, and with it its own errors and their wording."""
    values: dict[str, Any] = {}
    programs: dict[int, Program] = {}
    activation: Any = None
    for policy in policies:
        if policy.fused_constants is None:
            continue
        ok = True
        for key, program in policy.constants:
            if key not in values:
                activation = activation or new_activation(base)
                value, err = program.run(activation)
                if err is not None or not _json_like(value):
                    ok = False
                    break
                values[key] = value
        if ok:
            programs[id(policy)] = policy.fused_constants
    return values, programs


def _sources(policies: Sequence[CompiledPolicy]) -> list[str]:
    """The text of every program the policies can run."""
    out: list[str] = []
    for p in policies:
        exprs = (
            [c for _, c in p.match_conditions]
            + [v.expr for v in p.validations]
            + [v.message_expr for v in p.validations if v.message_expr is not None]
            + list(p.variables.values())
            + [a.expr for a in p.audit_annotations]
        )
        programs = [e.program for e in exprs] + [q for _, q in p.constants] + [p.fused, p.fused_constants]
        out.extend(q.text or q.source for q in programs if q is not None)
    return out


def _only(view: dict[str, Any], fields: frozenset[str] | None) -> dict[str, Any]:
    return view if fields is None else {k: view[k] for k in fields if k in view}


@dataclass(slots=True)
class _Given:
    """A fused program's value already computed by its group: what `validate` runs instead."""

    value: Any

    def run(self, activation: Any) -> tuple[Any, str | None]:
        return self.value, None


@dataclass(slots=True)
class _Group:
    members: tuple[CompiledPolicy, ...]  # in the order of the program's values
    program: Program


@dataclass(slots=True)
class Prepared:
    """A request normalized and its CEL inputs gathered: what `Engine.decide` evaluates."""

    attrs: Attributes
    workload: dict[str, Any]
    base: dict[str, Any]  # the activation's inputs


def _record(
    outcome: PolicyOutcome,
    policy: CompiledPolicy,
    binding: CompiledBinding,
    param_name: str | None,
    result: ValidateResult,
) -> None:
    """One binding's (and param's) validation result, as findings and audit annotations."""
    if not result.matched:
        return  # a false matchCondition: the policy does not apply
    outcome.matched = True
    outcome.evaluations += len(policy.validations)
    for d in result.decisions:
        if d.evaluation == "admit":
            continue
        if d.direct:
            actions: tuple[str, ...] = ("Deny",)
        elif d.action == "deny":
            actions = binding.actions
        else:
            actions = ()  # an error under failurePolicy Ignore: recorded, admits
        v = policy.validations[d.validation] if d.validation is not None else None
        outcome.findings.append(
            Finding(
                policy=policy.name,
                binding=binding.name,
                kind="error" if d.evaluation == "error" else "violation",
                actions=actions,
                message=d.message,
                reason=d.reason or ("InternalError" if d.evaluation == "error" else "Invalid"),
                validation=d.validation,
                validation_name=v.name if v is not None else None,
                field=d.field,
                expression=d.expression,
                param=param_name,
            )
        )
    for key, value in result.audit_annotations.items():
        prev = outcome.audit_annotations.get(key)
        # Distinct values from several bindings/params are joined, as the apiserver does.
        if prev is None:
            outcome.audit_annotations[key] = value
        elif value not in prev.split(", "):
            outcome.audit_annotations[key] = f"{prev}, {value}"


def batch_slots(prepared: Sequence[Prepared]) -> list[Slot | None]:
    """The places of several prepared resources in one CEL activation, for `Engine.decide`: their
    shared inputs (catalog, cluster profile, context constants) are then converted once for all.
    A lone resource gets None: its own activation."""
    if len(prepared) < 2:
        return [None] * len(prepared)
    batch = Batch([p.base for p in prepared])
    return [batch.slot(j) for j in range(len(prepared))]


class Engine:
    """Compiled policies plus the cluster context they are evaluated in."""

    def __init__(
        self,
        policies: PolicySet,
        context: ContextObjects | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        provenance: ProvenanceProvider | None = None,
    ) -> None:
        self.policies = policies
        self.context = context or ContextObjects()
        self._now = now or (lambda: datetime.now(UTC))
        self._provenance = provenance
        self._cluster_view = self.context.cluster.view() if self.context.cluster is not None else {}
        self._constants: dict[str, Any] | None = None  # computed on first use (see _evaluate_constants)
        self._fused: dict[int, Program] = {}  # id(policy) -> the fused program reading the constants
        # The fields of the `workload` and `request` views the policies can read (None: any):
        # only those are converted to CEL values, the costliest part of a resource's inputs.
        self._workload_fields: frozenset[str] | None = None
        self._request_fields: frozenset[str] | None = None
        self._groups: list[_Group] | None = None  # built on first use (see _policy_groups)

    # -- matching -------------------------------------------------------------------------------

    def _policy_matches(
        self, policy: CompiledPolicy, attrs: Attributes, workload: dict[str, Any]
    ) -> MatchResult:
        m = policy.match
        if m is None or not m.resource_rules:
            # A charter Policy without resource rules covers every pod-bearing workload (autogen):
            # it is written against `workload`, which normalization fills for every such kind.
            if not workload.get("podTemplates"):
                return NO_MATCH
            if m is None:
                return MATCH
        return matches(m, attrs)

    def _binding_matches(self, binding: CompiledBinding, attrs: Attributes) -> MatchResult:
        if binding.match is None:
            return MATCH
        return matches(binding.match, attrs)

    # -- params -----------------------------------------------------------------------------------

    def _collect_params(
        self, policy: CompiledPolicy, binding: CompiledBinding, attrs: Attributes
    ) -> list[dict[str, Any] | None]:
        """generic.CollectParams: the param objects a binding selects, from the context objects."""
        if policy.param_kind is None:
            return [None]
        ref = binding.param_ref
        if ref is None:
            raise ParamError(
                f"policy {policy.name!r} has paramKind {policy.param_kind.kind} but binding {binding.name!r} has no paramRef"
            )
        group, _ = split_api_version(policy.param_kind.api_version)
        namespaced = kind_info(group, policy.param_kind.kind).namespaced
        namespace = ""
        if namespaced:
            namespace = ref.namespace or attrs.namespace
            if not namespace:
                raise ParamError(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                )
        elif ref.namespace:
            raise ParamError(
                f"paramRef.namespace must not be set for cluster-scoped paramKind {policy.param_kind.kind}"
            )
        found: list[dict[str, Any] | None] = []
        for obj in self.context.objects:
            if (
                obj.get("apiVersion") != policy.param_kind.api_version
                or obj.get("kind") != policy.param_kind.kind
            ):
                continue
            meta = _meta(obj)
            if namespaced and (meta.get("namespace") or "default") != namespace:
                continue
            if ref.name is not None:
                if meta.get("name") == ref.name:
                    found.append(obj)
            elif selector_matches(
                ref.selector, {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
            ):
                found.append(obj)
        if not found and ref.parameter_not_found_action == "Deny":
            raise ParamError("no params found for policy binding with `Deny` parameterNotFoundAction")
        return found

    # -- evaluation -------------------------------------------------------------------------------

    def warm(self) -> None:
        """Compute now what the first evaluation would (context constants, the fields the policies
        read, policy groups: ~0.2 s for the shipped packs), e.g. before a webhook reports ready."""
        self._prepare_context()
        if self._groups is None:
            self._groups = self._policy_groups()
        for policy in self.policies.policies:  # the forms that batches of resources run
            fused = self._fused_for(policy)
            if fused is not None:
                fused.batched()

    def _prepare_context(self) -> None:
        if self._constants is None:
            context = {"cluster": self._cluster_view, "catalog": self.context.catalog}
            self._constants, self._fused = _evaluate_constants(self.policies.policies, context)
            sources = _sources(self.policies.policies)
            self._workload_fields = fields_read(sources, "workload")
            self._request_fields = fields_read(sources, "request")

    def base_activation(self, attrs: Attributes, workload: dict[str, Any]) -> dict[str, Any]:
        self._prepare_context()
        assert self._constants is not None
        return {
            CONTEXT_CONSTANTS: self._constants,
            "object": attrs.object,
            "oldObject": attrs.old_object,
            "request": _only(attrs.request_view(), self._request_fields),
            "namespaceObject": attrs.namespace_object,
            "params": None,
            "variables": {},
            "workload": _only(workload, self._workload_fields),
            "cluster": self._cluster_view,
            "catalog": self.context.catalog,
            "provenance": self._provenance(workload) if self._provenance is not None else {},
        }

    def evaluate(
        self, attrs: Attributes, *, related: Sequence[dict[str, Any]] = (), explain: bool = False
    ) -> Decision:
        return self.decide(self.prepare(attrs, related), explain=explain)

    def prepare(self, attrs: Attributes, related: Sequence[dict[str, Any]] = ()) -> Prepared:
        if not attrs.namespace_known and attrs.namespace and attrs.namespace in self.context.namespaces:
            attrs.namespace_object = self.context.namespaces[attrs.namespace]
            attrs.namespace_known = True
        workload = normalize(attrs.subject, related)
        return Prepared(attrs, workload, self.base_activation(attrs, workload))

    def decide(self, prepared: Prepared, *, explain: bool = False, slot: Slot | None = None) -> Decision:
        """Every policy against a prepared request; `slot`: its place in a batch activation."""
        attrs, workload = prepared.attrs, prepared.workload
        activations = _Activations(prepared.base, slot)
        given = self._run_groups(activations) if not explain and workload.get("podTemplates") else {}
        outcomes = [
            self._evaluate_policy(p, attrs, workload, activations, explain, given.get(id(p)))
            for p in self.policies.policies
        ]
        decision = Decision(attrs, outcomes, workload)
        findings = decision.findings()
        decision.expired_exceptions = apply_exceptions(self.policies.exceptions, attrs, findings, self._now())
        for exc in decision.expired_exceptions:
            decision.notes.append(
                f"exception {exc.name!r} ({exc.ticket}) expired at {exc.expires.isoformat()} and no longer applies"
            )
        return decision

    def _policy_groups(self) -> list[_Group]:
        """The charter Policies that apply to every pod-bearing workload (no resource rules, their own
        binding, no params), their fused programs grouped into as few programs as compile."""
        members = [
            p
            for p in self.policies.policies
            if p.match is None and p.plain_binding is not None and self._fused_for(p) is not None
        ]
        programs = [q for q in (self._fused_for(p) for p in members) if q is not None]
        return [
            _Group(tuple(members[i] for i in indexes), program)
            for indexes, program in split_into_groups(programs)
            if program is not None
        ]

    def _run_groups(self, activations: _Activations) -> dict[int, _Given]:
        """id(policy) -> its fused value, for the members of every group that ran without error."""
        if self._groups is None:
            self._groups = self._policy_groups()
        given: dict[int, _Given] = {}
        if not self._groups:
            return given
        activation = activations.get(None)
        for group in self._groups:
            values, err = group.program.run(activation)
            if err is None and type(values) is list and len(values) == len(group.members):
                for policy, value in zip(group.members, values, strict=True):
                    given[id(policy)] = _Given(value)
        return given

    def _fused_for(self, policy: CompiledPolicy) -> Program | None:
        """The policy's fused program, reading the context constants when they all evaluated."""
        if policy.fused is None:  # no fused form (or switched off): step by step
            return None
        return self._fused.get(id(policy), policy.fused)

    def _evaluate_policy(
        self,
        policy: CompiledPolicy,
        attrs: Attributes,
        workload: dict[str, Any],
        activations: _Activations,
        explain: bool,
        given: _Given | None = None,
    ) -> PolicyOutcome:
        outcome = PolicyOutcome(
            policy.name, policy.kind, policy.domain, policy.severity, False, policy.failure_policy
        )
        m = self._policy_matches(policy, attrs, workload)
        if not m.matches:
            outcome.unresolved = m.unresolved
            return outcome
        plain = policy.plain_binding
        if plain is not None and not explain:  # a charter Policy: its own binding, no params
            fused: Runnable | None = self._fused_for(policy)
            if fused is not None and given is not None:  # (a switched-off fused program stays off)
                fused = given
            _record(outcome, policy, plain, None, validate(policy, activations.get(None), fused=fused))
            return outcome
        fail = policy.failure_policy == "Fail"
        trace: list[dict[str, Any]] | None = [] if explain else None
        for binding in policy.bindings:
            bm = self._binding_matches(binding, attrs)
            if not bm.matches:
                if bm.unresolved:
                    outcome.unresolved = bm.unresolved
                continue
            try:
                params = self._collect_params(policy, binding, attrs)
            except ParamError as e:
                outcome.matched = True
                if fail:
                    outcome.findings.append(
                        Finding(
                            policy.name,
                            binding.name,
                            "error",
                            ("Deny",),
                            f"failed to configure binding: {e}",
                            "Invalid",
                        )
                    )
                else:
                    outcome.findings.append(
                        Finding(
                            policy.name,
                            binding.name,
                            "error",
                            (),
                            f"failed to configure binding: {e}",
                            "Invalid",
                        )
                    )
                continue
            for param in params:
                result = validate(
                    policy, activations.get(param), explain=explain, fused=self._fused_for(policy)
                )
                if trace is not None and result.trace is not None:
                    trace.append(
                        {
                            "binding": binding.name,
                            "param": _meta(param).get("name") if param else None,
                            "steps": result.trace,
                        }
                    )
                _record(outcome, policy, binding, _meta(param).get("name") if param else None, result)
        outcome.trace = trace
        return outcome
