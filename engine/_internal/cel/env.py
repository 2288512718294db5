"""The one CEL environment every policy expression is compiled in.

cel-expr-python type-checks at compile time against the variables declared here;
Kubernetes objects are schemaless to us, so they are `dyn`, while charter's own
views are maps with string keys so that indexing a non-string is caught early.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings

from . import library

T = cel.Type
STRING_MAP = T.Map(T.STRING, T.DYN)

# The variables of a ValidatingAdmissionPolicy, plus charter's context views.
POLICY_VARIABLES: dict[str, Any] = {
    "object": T.DYN,
    "oldObject": T.DYN,
    "request": STRING_MAP,
    "params": T.DYN,
    "namespaceObject": T.DYN,
    "variables": STRING_MAP,
    "workload": STRING_MAP,
    "cluster": STRING_MAP,
    "catalog": STRING_MAP,
    "provenance": STRING_MAP,
}


# Values computed once per engine context (see compiler.CompiledPolicy.constants), by key.
CONTEXT_CONSTANTS = "__charter_const"

# Inputs that differ per resource. A batch activation carries each as a list,
# `__charter_in_<name>`, read at `__charter_i()` (see batch.py); the rest are shared.
PER_RESOURCE = ("object", "oldObject", "request", "namespaceObject", "workload", "provenance")
BATCH_INDEX = "__charter_i"

_batch_index = threading.local()  # activations are bound to their thread too


def set_batch_index(index: int) -> None:
    _batch_index.value = index


def _current_batch_index() -> int:
    value: int = _batch_index.value
    return value


def build_env(variables: Mapping[str, Any]) -> Any:
    """A CEL environment with the standard extensions, the Kubernetes libraries and `variables`."""
    declared = dict(variables)
    declared[CONTEXT_CONSTANTS] = STRING_MAP
    for name in PER_RESOURCE:
        if name in declared:
            declared[f"__charter_in_{name}"] = T.List(declared[name])
    return cel.NewEnv(
        variables=declared,
        functions=[
            cel.FunctionDecl(
                BATCH_INDEX,
                [cel.Overload(f"{BATCH_INDEX}_int", T.INT, [], impl=_current_batch_index)],
            )
        ],
        extensions=[
            ext_strings.ExtStrings(),
            ext_math.ExtMath(),
            ext_optional.ExtOptional(),
            ext_encoders.ExtEncoders(),
            ext_bindings.ExtBindings(),
            *library.extensions(),
        ],
    )


@lru_cache(maxsize=1)
def policy_env() -> Any:
    """The environment for policy expressions; built once per process."""
    return build_env(POLICY_VARIABLES)
