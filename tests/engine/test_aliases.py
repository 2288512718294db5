"""YAML alias bombs and self-referencing anchors are refused, as Kubernetes' decoder refuses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from charter.engine._internal.aliases import alias_problem
from charter.engine.documents import read_documents


def _bomb(levels: int, width: int = 9) -> str:
    lines = ["apiVersion: v1", "kind: Pod", "metadata: {name: lol, namespace: default}", "x-bomb:"]
    lines.append(f"  l0: &l0 [{', '.join(['lol'] * width)}]")
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    lines += ["spec:", "  containers:", "    - name: c", "      image: nginx", f"      args: *l{levels - 1}"]
    return "\n".join(lines) + "\n"


def _load(text: str) -> object:
    return yaml.load(text, Loader=yaml.CSafeLoader)


@pytest.mark.parametrize("levels", [5, 7, 9, 12])
def test_alias_bombs_are_refused(levels: int) -> None:
    problem = alias_problem(_load(_bomb(levels)))
    assert problem is not None and problem.startswith("document contains excessive aliasing")


def test_ordinary_anchors_are_accepted() -> None:
    # Anchors as people use them: a shared block reused a few times, merge keys, repeated lists.
    text = """
    defaults: &defaults {image: nginx, resources: {limits: {cpu: "1"}}, env: [{name: A, value: "1"}]}
    containers:
      - {<<: *defaults, name: a}
      - {<<: *defaults, name: b}
      - *defaults
    tolerations: &tol [{key: gpu, operator: Exists}]
    more: [*tol, *tol, *tol]
    """
    assert alias_problem(_load(text)) is None
    wide = "a: &a [" + ", ".join(str(i) for i in range(2000)) + "]\nb: [*a, *a]\n"
    assert alias_problem(_load(wide)) is None  # 4,000 aliased nodes of 6,000: under go-yaml's ratio


@pytest.mark.parametrize("text", ["a: &a [1, *a]", "a: &a {x: [1, {y: *a}]}"])
def test_anchors_containing_themselves_are_refused(text: str) -> None:
    assert alias_problem(_load(text)) == "an anchor's value contains its own alias"


def test_read_documents_reports_a_bomb_and_keeps_the_documents_before_it(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    ok = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n"
    f.write_text(ok + "---\n" + _bomb(9))
    read = read_documents([str(f)])
    assert [d.data["metadata"]["name"] for d in read.documents] == ["fine"]
    (err,) = read.errors
    assert "excessive aliasing" in str(err) and err.location.document == 1 and err.location.line == 5


def test_charter_check_exits_2_on_a_bomb_instead_of_running_out_of_memory(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(_bomb(10))  # 3.8 billion nodes expanded
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "check", str(f)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, r.stderr
    assert "excessive aliasing" in r.stdout + r.stderr and "Traceback" not in r.stderr
