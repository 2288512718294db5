"""What the SARIF and JUnit renderers need to know about each policy, beyond the report itself.

The report names policies by name only; SARIF describes each one as a rule (descriptions,
remediation, severity), so the CLI hands the renderers this small, engine-free view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter.engine.compiler import CompiledPolicy


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    name: str
    domain: str = "general"
    severity: str = "medium"  # low | medium | high | critical
    description: str = ""
    remediation: str = ""
    kind: str = "Policy"  # Policy | ValidatingAdmissionPolicy


def policy_infos(policies: Iterable[CompiledPolicy]) -> list[PolicyInfo]:
    return [
        PolicyInfo(
            name=p.name,
            domain=p.domain,
            severity=p.severity,
            description=p.description,
            remediation=p.remediation,
            kind=p.kind,
        )
        for p in policies
    ]
