"""The one CEL environment every policy expression is compiled in.

cel-expr-python type-checks at compile time against the variables declared here;
Kubernetes objects are schemaless to us, so they are `dyn`, while charter's own
views are maps with string keys so that indexing a non-string is caught early.
"""

from __future__ import annotations

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


def build_env(variables: Mapping[str, Any]) -> Any:
    """A CEL environment with the standard extensions, the Kubernetes libraries and `variables`."""
    return cel.NewEnv(
        variables=dict(variables),
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
