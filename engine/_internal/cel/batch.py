"""One CEL activation for many resources, so the shared inputs are converted once.

cel-expr-python converts an activation's Python inputs to CEL values on first use and
cannot reuse converted values across activations. The catalog and cluster profile are
the same for every resource of a `charter check` run, yet converting them costs about
as much as the rest of a resource's inputs. A batch activation therefore holds the
shared inputs once and each per-resource input as a list; a batched program reads its
resource's entry through `__charter_i()`, which returns the index set for the running thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .env import PER_RESOURCE, policy_env

BATCH_INPUT = "__charter_in_"  # prefix of the per-resource input lists


class Batch:
    """The inputs of several resources in one activation (built on first use)."""

    def __init__(self, bases: Sequence[dict[str, Any]]) -> None:
        self.bases = bases
        self._activation: Any = None
        self.unconvertible = False  # an input failed to convert: every resource decides alone

    def activation(self) -> Any:
        if self._activation is None:
            first = self.bases[0]
            data = {k: v for k, v in first.items() if k not in PER_RESOURCE}
            for name in PER_RESOURCE:
                data[f"{BATCH_INPUT}{name}"] = [b[name] for b in self.bases]
            self._activation = policy_env().Activation(data)
        return self._activation

    def slot(self, index: int) -> Slot:
        return Slot(self, index)


@dataclass(slots=True)
class Slot:
    """One resource of a batch: what a program runs against instead of an activation."""

    batch: Batch
    index: int
    _single: Any = field(default=None, repr=False)

    def single(self) -> Any:
        """This resource's own activation, for a program that has no batched form."""
        if self._single is None:
            self._single = policy_env().Activation(self.batch.bases[self.index])
        return self._single
