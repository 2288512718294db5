"""Which policies apply to a request: matchConstraints and binding matchResources.

Follows k8s.io/apiserver/pkg/admission/plugin/policy/matching. Offline, a namespace
selector needs the namespace's labels; when they are not known the match is
reported as unresolved, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .models import LabelSelector, MatchResources, ResourceRule
from .request import Attributes


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: bool
    unresolved: str | None = None  # why the match could not be decided


NO_MATCH = MatchResult(False)
MATCH = MatchResult(True)


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelectorAsSelector(...).Matches; a nil or empty selector matches everything."""
    if selector is None:
        return True
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In":
            if not present or labels[req.key] not in req.values:
                return False
        elif req.operator == "NotIn":
            if present and labels[req.key] in req.values:
                return False
        elif req.operator == "Exists":
            if not present:
                return False
        elif present:  # DoesNotExist
            return False
    return True


def _labels(obj: object) -> dict[str, str]:
    if not isinstance(obj, dict):
        return {}
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return {}
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def _namespace_selector_matches(selector: LabelSelector | None, attrs: Attributes) -> MatchResult:
    if selector is None or selector.is_empty():
        return MATCH
    if attrs.kind == "Namespace" and attrs.group == "" and attrs.version == "v1":
        return MatchResult(selector_matches(selector, _labels(attrs.subject)))
    if not attrs.namespaced or not attrs.namespace:
        # Cluster-scoped objects other than namespaces are never excluded by a namespace selector.
        return MATCH
    if not attrs.namespace_known:
        return MatchResult(
            False,
            unresolved=f"namespaceSelector needs the labels of namespace {attrs.namespace!r}, which were not given "
            "(add its Namespace object to the inputs or to --context)",
        )
    return MatchResult(selector_matches(selector, _labels(attrs.namespace_object)))


def _object_selector_matches(selector: LabelSelector | None, attrs: Attributes) -> bool:
    if selector is None or selector.is_empty():
        return True
    # The apiserver matches if either the new or the old object's labels match.
    candidates = [o for o in (attrs.object, attrs.old_object) if o is not None]
    return any(selector_matches(selector, _labels(o)) for o in candidates)


def _resource_matches(pattern: str, resource: str, subresource: str) -> bool:
    if pattern == "*/*":
        return True
    if pattern == "*":
        return not subresource
    res, _, sub = pattern.partition("/")
    if not sub:
        return res == resource and not subresource
    if res == "*":
        return sub == subresource
    if sub == "*":
        return res == resource
    return res == resource and sub == subresource


def rule_matches(rule: ResourceRule, attrs: Attributes, *, any_version: bool = False) -> bool:
    ops = rule.operations
    if "*" not in ops and attrs.operation not in ops:
        return False
    if "*" not in rule.api_groups and attrs.group not in rule.api_groups:
        return False
    if not any_version and "*" not in rule.api_versions and attrs.version not in rule.api_versions:
        return False
    if not any(_resource_matches(p, attrs.resource, attrs.subresource) for p in rule.resources):
        return False
    if rule.scope == "Cluster" and attrs.namespaced:
        return False
    if rule.scope == "Namespaced" and not attrs.namespaced:
        return False
    return not (rule.resource_names and attrs.name not in rule.resource_names)


def _rules_match(rules: list[ResourceRule], attrs: Attributes, equivalent: bool) -> bool:
    if any(rule_matches(r, attrs) for r in rules):
        return True
    # matchPolicy Equivalent: the apiserver converts the object to a version the rule names;
    # offline, other versions of the same group and resource stand for that conversion.
    return equivalent and any(rule_matches(r, attrs, any_version=True) for r in rules)


def matches(constraints: MatchResources, attrs: Attributes) -> MatchResult:
    """Whether `constraints` select the request, in the apiserver's order of checks."""
    ns = _namespace_selector_matches(constraints.namespace_selector, attrs)
    if not ns.matches:
        return ns
    if not _object_selector_matches(constraints.object_selector, attrs):
        return NO_MATCH
    equivalent = constraints.match_policy == "Equivalent"
    # A binding's matchResources with no rules matches every resource the policy matched.
    if constraints.resource_rules and not _rules_match(constraints.resource_rules, attrs, equivalent):
        return NO_MATCH
    if constraints.exclude_resource_rules and _rules_match(
        constraints.exclude_resource_rules, attrs, equivalent
    ):
        return NO_MATCH
    return MATCH
