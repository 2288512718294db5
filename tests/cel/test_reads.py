"""What a policy set can read of an input: the fields an engine converts, and only those.

A field wrongly left out would silently change a verdict, so every doubtful shape must
answer None (the whole input).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from charter.engine import dispatcher
from charter.engine._internal.cel.reads import fields_read


@pytest.mark.parametrize(
    ("sources", "fields"),
    [
        (["workload.kind == 'Pod'"], {"kind"}),
        (["workload.?labels.orValue({})", "has(workload.identity)"], {"labels", "identity"}),
        (["workload['kind'] + workload[?'name'].orValue('')"], {"kind", "name"}),
        (["workload . podTemplates . exists(t, t.spec.hostNetwork)"], {"podTemplates"}),
        (["x.workload.spec && other.workload"], set()),  # fields of other maps
        (["'workload' + \"workload.labels\" // workload\n + 'a'"], set()),  # literals and comments
        (["'it\\'s workload' + workload.name"], {"name"}),
        (["'''workload\nworkload''' + workload.name"], {"name"}),
        (["workloads.size() + myworkload.x"], set()),  # other names
        (["request.userInfo.username", "workload.kind"], {"userInfo"}),  # asked for `request` below
    ],
)
def test_fields_read(sources: list[str], fields: set[str]) -> None:
    name = "request" if "request" in sources[0] else "workload"
    assert fields_read(sources, name) == frozenset(fields)


@pytest.mark.parametrize(
    "source",
    [
        "size(workload) > 0",  # whole
        "'kind' in workload",  # its keys
        "workload == {}",
        "workload.all(k, k != 'spec')",  # iterated
        "workload.map(k, k)",
        "cel.bind(w, workload, w.labels)",  # aliased
        "[1].exists(workload, workload.x == 1)",  # shadowed
        "workload[variables.key]",  # a computed key
        "workload['with-dash']",  # not an identifier: a key no view has, but say so
        "r'workload' + workload.kind",  # a raw string: not scanned
        'workload.kind + br"x"',
    ],
)
def test_doubtful_shapes_read_everything(source: str) -> None:
    assert fields_read([source], "workload") is None


def test_engine_converts_only_what_the_shipped_packs_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.engine.offline import check_paths

    from charter._internal.session import load_session

    root = Path(__file__).resolve().parents[2]
    session = load_session(
        [str(root / "policies")],
        cluster=str(root / "examples" / "clusters" / "onprem-sovereign-de.yaml"),
        context=[str(root / "examples" / "context")],
    )
    paths = [str(root / "examples" / "workloads"), str(root / "policies")]

    def report() -> list[Any]:
        engine = session.engine()
        run = check_paths(engine, paths)
        got = [
            (rd.document.source, rd.document.index, o.policy, o.verdict, sorted(o.audit_annotations.items()),
             [(f.kind, f.message, f.validation) for f in o.findings])
            for rd in run.decisions for o in rd.decision.outcomes
        ]  # fmt: skip
        return [engine._workload_fields, engine._request_fields, got]

    fields_w, fields_r, projected = report()
    assert fields_w is not None and "podTemplates" in fields_w and "problems" not in fields_w
    assert fields_r == {"userInfo"}
    monkeypatch.setattr(dispatcher, "fields_read", lambda sources, name: None)
    whole = report()
    assert whole[:2] == [None, None]
    assert whole[2] == projected
    assert sum(1 for r in projected if r[3] == "deny") > 50
