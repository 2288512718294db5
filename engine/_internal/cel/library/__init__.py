"""The Kubernetes CEL libraries (k8s.io/apiserver/pkg/cel/library) for cel-expr-python.

Quantity, URL, IP, CIDR and Semver values are tagged maps (see `_common`), because
cel-expr-python cannot return opaque types from Python functions.
"""

from __future__ import annotations

from typing import Any

from cel_expr_python import cel

from . import compare, lists, network, quantity, regex, semver, sets, urls


def extensions() -> list[Any]:
    """Every Kubernetes library as a cel-expr-python CelExtension."""
    return [
        cel.CelExtension("kubernetes.lists", lists.functions()),
        cel.CelExtension("kubernetes.regex", regex.functions()),
        cel.CelExtension("kubernetes.urls", urls.functions()),
        cel.CelExtension("kubernetes.quantity", quantity.functions()),
        cel.CelExtension("kubernetes.semver", semver.functions()),
        # isGreaterThan/isLessThan/compareTo serve both quantity and semver.
        cel.CelExtension("kubernetes.compare", compare.functions()),
        cel.CelExtension("kubernetes.net", network.functions()),
        cel.CelExtension("sets", sets.functions()),
    ]
