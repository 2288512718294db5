"""Shared helpers: tagged maps standing in for Kubernetes' opaque CEL types.

cel-expr-python cannot return opaque types from Python functions, so Quantity, URL,
IP, CIDR and Semver travel as `{"__k8s": <kind>, "v": <canonical text>}`. The text
is canonical so that CEL `==` on two maps agrees with upstream `Equal`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cel_expr_python import cel

T = cel.Type
TAGGED = T.Map(T.STRING, T.DYN)
DYN_LIST = T.List(T.DYN)
TAG = "__k8s"


class LibraryError(ValueError):
    """Raised inside a library function; cel-expr-python turns it into a CEL error value."""


def tagged(kind: str, value: str) -> dict[str, str]:
    return {TAG: kind, "v": value}


def kind_of(arg: object) -> str | None:
    if isinstance(arg, Mapping):
        kind = arg.get(TAG)
        if isinstance(kind, str) and isinstance(arg.get("v"), str):
            return kind
    return None


def untag(arg: object, kind: str, function: str) -> str:
    """The payload of a tagged map of `kind`, or the upstream 'no such overload' error."""
    if kind_of(arg) != kind:
        raise no_such_overload(function)
    v: str = arg["v"]  # type: ignore[index]
    return v


def no_such_overload(function: str) -> LibraryError:
    return LibraryError(f"no such overload: {function}")


def overload(
    overload_id: str,
    result: Any,
    params: list[Any],
    impl: Callable[..., Any],
    *,
    member: bool = False,
) -> Any:
    return cel.Overload(overload_id, result, params, is_member=member, impl=impl)


def function(name: str, *overloads: Any) -> Any:
    return cel.FunctionDecl(name, list(overloads))


def cel_equal(a: object, b: object) -> bool:
    """CEL equality on the Python forms of CEL values (bool is not a number, 1 == 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray):
        return bytes(a) == bytes(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if len(a) != len(b):
            return False
        for k, v in a.items():
            match = [bv for bk, bv in b.items() if cel_equal(k, bk)]
            if not match or not cel_equal(v, match[0]):
                return False
        return True
    if type(a) is not type(b) and not (isinstance(a, datetime | timedelta) and type(a) is type(b)):
        return False
    return a == b
