"""The Kubernetes CEL libraries (k8s.io/apiserver/pkg/cel/library) for cel-expr-python."""

from __future__ import annotations

from typing import Any


def extensions() -> list[Any]:
    """Every Kubernetes library as a cel-expr-python CelExtension."""
    return []
