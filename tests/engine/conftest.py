from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from charter.engine import Decision, Engine, attributes_for_object
from charter.engine.documents import read_documents
from charter.engine.loader import add_context, build_policy_set


@pytest.fixture
def make_engine(tmp_path: Path) -> Callable[..., Engine]:
    """An Engine from YAML text (policies, bindings, params, profiles, catalogs) written to a file."""

    def build(text: str, *, now: datetime | None = None) -> Engine:
        f = tmp_path / f"policies-{len(list(tmp_path.iterdir()))}.yaml"
        f.write_text(textwrap.dedent(text))
        read = read_documents([str(f)])
        errors: list[Any] = list(read.errors)
        pset, others = build_policy_set(read.documents, errors)
        from charter.engine import ContextObjects

        ctx = ContextObjects()
        add_context(ctx, others, errors)
        assert not errors, [str(e) for e in errors]
        fixed = now or datetime(2026, 11, 23, tzinfo=UTC)
        return Engine(pset, ctx, now=lambda: fixed)

    return build


def evaluate(engine: Engine, manifest: str | dict[str, Any], **kw: Any) -> Decision:
    obj = yaml.safe_load(textwrap.dedent(manifest)) if isinstance(manifest, str) else manifest
    return engine.evaluate(attributes_for_object(obj, **kw))
