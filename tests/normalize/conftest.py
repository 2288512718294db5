from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


def load_examples(name: str) -> list[dict[str, Any]]:
    """The objects of an example file, with `kind: List` expanded and empty documents skipped."""
    out: list[dict[str, Any]] = []
    with open(EXAMPLES / name) as f:
        for doc in yaml.safe_load_all(f):
            if isinstance(doc, dict) and doc.get("kind") == "List":
                out.extend(doc["items"])
            elif doc is not None:
                out.append(doc)
    return out


def assert_json_like(value: Any) -> None:
    """Only str/int/float/bool/None/list/dict[str, ...], and strict JSON round-trips it."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            assert all(type(k) is str for k in v), v
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        else:
            assert v is None or type(v) in (str, int, float, bool), (type(v), v)
    assert json.loads(json.dumps(value, allow_nan=False)) == value
