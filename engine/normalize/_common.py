"""Shared helpers: problem collection, tolerant accessors, JSON cleaning.

Every accessor takes the dotted path of the value so that a wrong shape becomes a
precise `problems` entry instead of an exception.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .._internal.quantity import QuantityError, parse_quantity, try_count

_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Unrendered template text: ${VAR}, {{ .Values.x }}, <%= %>, and in image references also $VAR and <CHANGE ME>.
PLACEHOLDER = re.compile(r"\$\{|\{\{|\}\}|<%|%>")
IMAGE_PLACEHOLDER = re.compile(r"\$\{|\{\{|\}\}|<%|%>|\$[A-Za-z_]|<[^>]*>")
_INT64 = 2**63
MAX_DEPTH = 64  # deeper input is not Kubernetes; bounds recursion on hostile input
MISSING: Any = object()


# Quantities and device counts repeat across objects ("1", "32Gi"); Decimal parsing is the
# costliest step of normalization, so results are memoized (typed: 1, 1.0 and "1" differ).
@lru_cache(maxsize=4096, typed=True)
def canonical_quantity(v: str | int | float) -> tuple[str | None, str]:
    """(canonical text, "") or (None, why it is not a quantity)."""
    try:
        return parse_quantity(v).canonical(), ""
    except QuantityError as e:
        return None, str(e)


@lru_cache(maxsize=4096, typed=True)
def _count_cached(v: str | int | float) -> tuple[int | None, str | None]:
    return try_count(v)


def count(v: Any) -> tuple[int | None, str | None]:
    """try_count, memoized for hashable scalars."""
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return _count_cached(v)
    return try_count(v)


@lru_cache(maxsize=8192)  # paths repeat from object to object
def join(path: str, key: str) -> str:
    """`a.b` for plain keys, `a["nvidia.com/gpu"]` for keys that contain dots or slashes."""
    if _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def at(path: str, i: int) -> str:
    return f"{path}[{i}]"


def type_name(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    return type(v).__name__


class Ctx:
    """Collects problems; one per normalize() call."""

    __slots__ = ("_paths", "problems")

    def __init__(self) -> None:
        self.problems: list[dict[str, str]] = []
        self._paths: set[str] = set()

    def problem(self, path: str, message: str) -> None:
        # One problem per path: a bad value read by two extractors is reported once.
        if path not in self._paths:
            self._paths.add(path)
            self.problems.append({"path": path, "message": message})


def get_map(parent: dict[str, Any], key: str, path: str, ctx: Ctx) -> dict[str, Any]:
    """parent[key] as a map; absent or null is {}, any other type is a problem."""
    v = parent.get(key)
    if v is None:
        return {}
    if isinstance(v, dict):
        return v
    ctx.problem(join(path, key), f"expected a map, got {type_name(v)}")
    return {}


def get_list(parent: dict[str, Any], key: str, path: str, ctx: Ctx) -> list[Any]:
    v = parent.get(key)
    if v is None:
        return []
    if isinstance(v, list):
        return v
    ctx.problem(join(path, key), f"expected a list, got {type_name(v)}")
    return []


def get_str(parent: dict[str, Any], key: str, path: str, ctx: Ctx) -> str:
    """parent[key] as text; numbers and booleans (YAML 1.1 `yes`) are converted and reported."""
    v = parent.get(key)
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    text = scalar_text(v)
    if text is None:
        ctx.problem(join(path, key), f"expected a string, got {type_name(v)}")
        return ""
    ctx.problem(join(path, key), f"expected a string, got {type_name(v)} {text!r}")
    return text


def get_bool(parent: dict[str, Any], key: str, path: str, ctx: Ctx) -> bool | None:
    v = parent.get(key)
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        ctx.problem(join(path, key), f"expected a boolean, got string {v!r}")
        return v.lower() == "true"
    ctx.problem(join(path, key), f"expected a boolean, got {type_name(v)}")
    return None


def text(v: object) -> str:
    """v if it is a string, else "" (for values whose wrong type is reported elsewhere or harmless)."""
    return v if isinstance(v, str) else ""


def scalar_text(v: object) -> str | None:
    """Text of a scalar as Kubernetes would have wanted it quoted, or None for maps/lists."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v)
    return None


def str_map(v: Any, path: str, ctx: Ctx) -> dict[str, str]:
    """A string-to-string map (labels, annotations, nodeSelector); non-strings converted, reported."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        ctx.problem(path, f"expected a map of strings, got {type_name(v)}")
        return {}
    out: dict[str, str] = {}
    for k, x in v.items():
        if isinstance(x, str):
            out[k] = x
        elif x is None:
            out[k] = ""
        else:
            text = scalar_text(x)
            if text is None:
                ctx.problem(join(path, k), f"expected a string, got {type_name(x)}")
                continue
            ctx.problem(join(path, k), f"expected a string, got {type_name(x)} {text!r}")
            out[k] = text
    return out


# --- cleaning: the input becomes plain JSON-like data before anything reads it ---------

_Chain = tuple[Any, ...]  # (parent chain, key) built lazily: rendered only when a problem occurs


def _render(chain: _Chain | None) -> str:
    keys: list[str | int] = []
    while chain is not None:
        chain, key = chain
        keys.append(key)
    path = ""
    for key in reversed(keys):
        path = at(path, key) if isinstance(key, int) else join(path, key)
    return path


def _key_text(k: object) -> str:
    text = scalar_text(k)
    return text if text is not None else repr(k)


class _Unusual(Exception):
    """Raised by the fast copy on anything it does not handle; the careful copy then runs."""


def _fast_map(v: dict[Any, Any], depth: int) -> dict[str, Any]:
    if depth >= MAX_DEPTH:
        raise _Unusual
    out: dict[str, Any] = {}
    for k, x in v.items():
        if type(k) is not str:
            raise _Unusual
        t = type(x)
        if t is str or t is bool or x is None:
            out[k] = x
        elif t is dict:
            out[k] = _fast_map(x, depth + 1)
        elif t is list:
            out[k] = _fast_list(x, depth + 1)
        elif (t is int and -_INT64 <= x < _INT64) or (t is float and math.isfinite(x)):
            out[k] = x
        else:
            raise _Unusual
    return out


def _fast_list(v: list[Any], depth: int) -> list[Any]:
    if depth >= MAX_DEPTH:
        raise _Unusual
    out: list[Any] = []
    for x in v:
        t = type(x)
        if t is str or t is bool or x is None:
            out.append(x)
        elif t is dict:
            out.append(_fast_map(x, depth + 1))
        elif t is list:
            out.append(_fast_list(x, depth + 1))
        elif (t is int and -_INT64 <= x < _INT64) or (t is float and math.isfinite(x)):
            out.append(x)
        else:
            raise _Unusual
    return out


def clean_object(v: Mapping[Any, Any], ctx: Ctx) -> dict[str, Any]:
    """A JSON-like copy of an object: a fast copy for the usual input, the careful one otherwise."""
    if type(v) is dict:
        try:
            return _fast_map(v, 0)
        except _Unusual:
            pass
    out: dict[str, Any] = clean(v, ctx)
    return out


def clean(v: Any, ctx: Ctx, chain: _Chain | None = None, depth: int = 0) -> Any:
    """A copy of v with only str/int/float/bool/None/list/dict[str, ...] in it; the rest reported."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is dict:
        if depth >= MAX_DEPTH:
            ctx.problem(_render(chain), f"nested deeper than {MAX_DEPTH} levels; dropped")
            return None
        out: dict[str, Any] = {}
        for k, x in v.items():
            if type(k) is not str:
                ks = _key_text(k)
                ctx.problem(_render((chain, ks)), f"map key {k!r} is not a string")
                k = ks
            out[k] = clean(x, ctx, (chain, k), depth + 1)
        return out
    if t is list:
        if depth >= MAX_DEPTH:
            ctx.problem(_render(chain), f"nested deeper than {MAX_DEPTH} levels; dropped")
            return None
        return [clean(x, ctx, (chain, i), depth + 1) for i, x in enumerate(v)]
    if t is int:
        if -_INT64 <= v < _INT64:
            return v
        ctx.problem(_render(chain), "integer out of int64 range; kept as text")
        return str(v)
    if t is float:
        if math.isfinite(v):
            return v
        ctx.problem(_render(chain), f"{v!r} is not a JSON number; dropped")
        return None
    return _clean_other(v, ctx, chain, depth)


def _clean_other(v: Any, ctx: Ctx, chain: _Chain | None, depth: int) -> Any:
    # Rarer types: subclasses, tuples, YAML timestamps, Decimal. Converted, not dropped.
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, int):
        return clean(int(v), ctx, chain, depth)
    if isinstance(v, float):
        return clean(float(v), ctx, chain, depth)
    if isinstance(v, Decimal):
        f = float(v) if v.is_finite() else math.nan  # float() first: int() of 1e999999 is huge
        return clean(int(v) if f.is_integer() and abs(f) < _INT64 else f, ctx, chain, depth)
    if isinstance(v, Mapping):
        return clean(dict(v), ctx, chain, depth)
    if isinstance(v, (list, tuple)):
        return clean(list(v), ctx, chain, depth)
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()  # an unquoted YAML timestamp: its text is what the author wrote
    ctx.problem(_render(chain), f"value of type {type(v).__name__} is not JSON-like; dropped")
    return None
