"""Typed models of everything charter loads: policies, bindings, exceptions, context.

They mirror admissionregistration.k8s.io/v1 so that users can read a charter
Policy as a ValidatingAdmissionPolicy. Unknown fields are rejected (`extra=forbid`)
because a misspelt field in a policy silently changes what it enforces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

CHARTER_API_VERSION = "charter.dev/v1alpha1"
VAP_API_VERSIONS = ("admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1beta1")

Action = Literal["Deny", "Warn", "Audit"]
FailurePolicy = Literal["Fail", "Ignore"]
Domain = Literal["residency", "provenance", "identity", "accelerators", "general"]
Severity = Literal["low", "medium", "high", "critical"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(min_length=1)
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class LabelSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = []

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} requires values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(Model):
    match_labels: dict[str, str] = {}
    match_expressions: list[LabelSelectorRequirement] = []

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


Operation = Literal["*", "CREATE", "UPDATE", "DELETE", "CONNECT"]


class ResourceRule(Model):
    api_groups: list[str] = []
    api_versions: list[str] = []
    resources: list[str] = []
    operations: list[Operation] = []
    scope: Literal["*", "Cluster", "Namespaced"] = "*"
    resource_names: list[str] = []


class MatchResources(Model):
    namespace_selector: LabelSelector | None = None
    object_selector: LabelSelector | None = None
    resource_rules: list[ResourceRule] = []
    exclude_resource_rules: list[ResourceRule] = []
    match_policy: Literal["Exact", "Equivalent"] = "Equivalent"


class NamedExpression(Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    expression: str = Field(min_length=1)


class MatchCondition(Model):
    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)


class Validation(Model):
    expression: str = Field(min_length=1)
    message: str = ""
    message_expression: str = ""
    reason: str | None = None
    # charter extension: a stable name that exceptions and tests can refer to
    name: str | None = None


class AuditAnnotation(Model):
    key: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
    value_expression: str = Field(min_length=1)


class ParamKind(Model):
    api_version: str
    kind: str


class PolicySpecBase(Model):
    match_constraints: MatchResources | None = None
    match_conditions: list[MatchCondition] = []
    variables: list[NamedExpression] = []
    validations: list[Validation] = []
    audit_annotations: list[AuditAnnotation] = []
    failure_policy: FailurePolicy = "Fail"

    @model_validator(mode="after")
    def _something_to_do(self) -> PolicySpecBase:
        if not self.validations and not self.audit_annotations:
            raise ValueError("validations and auditAnnotations may not both be empty")
        return self

    @field_validator("variables")
    @classmethod
    def _unique_variables(cls, v: list[NamedExpression]) -> list[NamedExpression]:
        seen: set[str] = set()
        for var in v:
            if var.name in seen:
                raise ValueError(f"duplicate variable name {var.name!r}")
            seen.add(var.name)
        return v


class CharterPolicySpec(PolicySpecBase):
    validation_actions: list[Action] = ["Deny"]
    domain: Domain = "general"
    severity: Severity = "medium"
    description: str = ""
    remediation: str = ""

    @field_validator("validation_actions")
    @classmethod
    def _valid_actions(cls, v: list[Action]) -> list[Action]:
        if not v:
            raise ValueError("at least one validation action is required")
        if "Deny" in v and "Warn" in v:
            raise ValueError("Deny and Warn may not be used together")
        if len(set(v)) != len(v):
            raise ValueError("validation actions must be unique")
        return v


class CharterPolicy(Model):
    api_version: Literal["charter.dev/v1alpha1"]
    kind: Literal["Policy"]
    metadata: ObjectMeta
    spec: CharterPolicySpec


class VAPSpec(PolicySpecBase):
    param_kind: ParamKind | None = None
    match_constraints: MatchResources  # required by the apiserver


class ValidatingAdmissionPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)
    api_version: str
    kind: Literal["ValidatingAdmissionPolicy"]
    metadata: ObjectMeta
    spec: VAPSpec


class ParamRef(Model):
    name: str | None = None
    namespace: str | None = None
    selector: LabelSelector | None = None
    parameter_not_found_action: Literal["Allow", "Deny"] = "Deny"

    @model_validator(mode="after")
    def _name_xor_selector(self) -> ParamRef:
        if (self.name is None) == (self.selector is None):
            raise ValueError("exactly one of name or selector must be set")
        return self


class BindingSpec(Model):
    policy_name: str = Field(min_length=1)
    param_ref: ParamRef | None = None
    match_resources: MatchResources | None = None
    validation_actions: list[Action]

    @field_validator("validation_actions")
    @classmethod
    def _valid_actions(cls, v: list[Action]) -> list[Action]:
        return CharterPolicySpec._valid_actions(v)


class ValidatingAdmissionPolicyBinding(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)
    api_version: str
    kind: Literal["ValidatingAdmissionPolicyBinding"]
    metadata: ObjectMeta
    spec: BindingSpec


class ExceptionPolicyRef(Model):
    name: str = Field(min_length=1)
    # indexes of validations, or their charter `name`; empty means the whole policy
    validations: list[int | str] = []


class ExceptionMatch(Model):
    namespaces: list[str] = []  # shell-style globs
    names: list[str] = []  # shell-style globs
    kinds: list[str] = []
    selector: LabelSelector | None = None


class PolicyExceptionSpec(Model):
    policies: list[ExceptionPolicyRef] = Field(min_length=1)
    match: ExceptionMatch = ExceptionMatch()
    expires: datetime
    ticket: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)

    @field_validator("expires")
    @classmethod
    def _timezone_required(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError(
                "expires must be an RFC 3339 timestamp with a time zone, e.g. 2026-12-31T23:59:59Z"
            )
        return v


class PolicyException(Model):
    api_version: Literal["charter.dev/v1alpha1"]
    kind: Literal["PolicyException"]
    metadata: ObjectMeta
    spec: PolicyExceptionSpec


# --- context: where the workload runs, and the facts policies look up --------------------------------


class AcceleratorOffer(Model):
    resource: str  # e.g. nvidia.com/gpu
    product: str = ""  # e.g. NVIDIA-H100-80GB-HBM3
    count: int | None = Field(default=None, ge=0)


class ClusterProfileSpec(Model):
    type: Literal["onprem", "cloud", "hosted"]
    provider: str = ""
    region: str = ""
    jurisdiction: str = Field(min_length=1)  # ISO 3166 code or a bloc such as EU
    jurisdictions: list[str] = []  # every jurisdiction the cluster counts as in (e.g. [DE, EU])
    sovereign: bool = False
    accelerators: list[AcceleratorOffer] = []
    labels: dict[str, str] = {}
    settings: dict[str, Any] = {}  # pack settings, e.g. residency.unknownDataset: deny|warn


class ClusterProfile(Model):
    api_version: Literal["charter.dev/v1alpha1"]
    kind: Literal["ClusterProfile"]
    metadata: ObjectMeta
    spec: ClusterProfileSpec

    def view(self) -> dict[str, Any]:
        """The `cluster` variable seen by CEL."""
        s = self.spec
        jurisdictions = list(dict.fromkeys([s.jurisdiction, *s.jurisdictions]))
        return {
            "name": self.metadata.name,
            "type": s.type,
            "provider": s.provider,
            "region": s.region,
            "jurisdiction": s.jurisdiction,
            "jurisdictions": jurisdictions,
            "sovereign": s.sovereign,
            "accelerators": [a.model_dump(by_alias=True) for a in s.accelerators],
            "labels": dict(s.labels),
            "settings": dict(s.settings),
        }


class Catalog(Model):
    """Facts policies look up by id: `catalog.<section>['<id>']`.

    The sections are open (datasets, models, accelerators, registries, teams, ...);
    each entry is an object. Several catalogs merge; a repeated id is an error.
    """

    api_version: Literal["charter.dev/v1alpha1"]
    kind: Literal["Catalog"]
    metadata: ObjectMeta
    spec: dict[str, dict[str, dict[str, Any]] | list[Any]]


class UserInfo(Model):
    username: str = ""
    uid: str = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}


class RequestContextSpec(Model):
    """Offline stand-ins for what the apiserver would know."""

    user_info: UserInfo = UserInfo()
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"] = "CREATE"
    dry_run: bool = False


class RequestContext(Model):
    api_version: Literal["charter.dev/v1alpha1"]
    kind: Literal["RequestContext"]
    metadata: ObjectMeta
    spec: RequestContextSpec
