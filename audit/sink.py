"""The one interface through which both shells hand decisions to the audit log.

`charter serve` and `charter check --audit URL` call `append` once per evaluated
resource, after the decision and before answering; an exception means the decision
could not be audited, and the caller decides (deny or allow) and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from charter.engine.models import ClusterProfile
from charter.engine.results import Decision


@dataclass(frozen=True, slots=True)
class DecisionContext:
    policy_set_digest: str  # PolicySet.digest: which policies decided
    cluster: ClusterProfile | None
    shell: str  # "admission" | "check"


class AuditUnavailable(Exception):
    """The store could not durably record the decision."""


class DecisionSink(Protocol):
    def append(self, decision: Decision, context: DecisionContext) -> str:
        """Durably record one decision; return its record id. Raise AuditUnavailable on failure."""
        ...

    def close(self) -> None:
        """Flush and write a final checkpoint."""
        ...


class NullSink:
    """Auditing off: records nothing, says so in its id."""

    def append(self, decision: Decision, context: DecisionContext) -> str:
        return ""

    def close(self) -> None:
        return None
