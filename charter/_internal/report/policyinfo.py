"""What reports say about a policy (SARIF rules, JUnit suites), taken from the compiled set."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from charter.engine.compiler import CompiledPolicy


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    name: str
    kind: str
    domain: str
    severity: str
    description: str
    remediation: str


def policy_infos(policies: Iterable[CompiledPolicy]) -> list[PolicyInfo]:
    return [PolicyInfo(p.name, p.kind, p.domain, p.severity, p.description, p.remediation) for p in policies]
