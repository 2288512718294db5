"""`charter check --audit`: every decision becomes a signed record; an unaudited run never passes silently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import run_cli
from .test_check import BAD_JOB, CLUSTER, GOOD_POD, POLICIES


@pytest.fixture
def inputs(write: Callable[[str, str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHARTER_AUDIT_KEY", raising=False)
    return [
        write("job.yaml", BAD_JOB),
        write("pod.yaml", GOOD_POD),
        "-p",
        write("p.yaml", POLICIES),
        "-c",
        write("c.yaml", CLUSTER),
    ]


def test_decisions_are_signed_and_verify(inputs: list[str], tmp_path: Path) -> None:
    r = run_cli(["check", *inputs, "--audit", ".charter/audit.db"])
    assert r.code == 1, r.err  # the PyTorchJob is denied; auditing does not change the verdict
    assert "created audit signing key" in r.err and "audited 2 decisions" in r.err
    assert (tmp_path / ".charter" / "audit.key").stat().st_mode & 0o077 == 0
    v = run_cli(["audit", "verify", "--db", ".charter/audit.db", "--public-key", ".charter/audit.pub"])
    assert v.code == 0, v.out + v.err
    q = run_cli(["audit", "query", "--db", ".charter/audit.db", "--decision", "deny", "--format", "json"])
    assert q.code == 0 and "train" in q.out and '"ok"' not in q.out
    # A second run appends to the same log with the same key.
    assert run_cli(["check", *inputs, "--audit", ".charter/audit.db"]).code == 1
    v = run_cli(["audit", "verify", "--db", ".charter/audit.db", "--public-key", ".charter/audit.pub"])
    assert v.code == 0 and "4 records" in v.out


def test_named_key_that_is_missing_is_not_replaced(inputs: list[str]) -> None:
    r = run_cli(["check", *inputs, "--audit", "a.db", "--audit-key", "nope.key"])
    assert r.code == 5
    assert "no decision was audited" in r.err and "nope.key" in r.err


def test_audit_failure_allow_warns_but_keeps_the_verdict_exit_code(inputs: list[str]) -> None:
    broken = inputs[0] + "/a.db"  # under a regular file: no store can be created there
    r = run_cli(["check", *inputs, "--audit", broken, "--audit-failure", "allow"])
    assert r.code == 1  # violations, not an audit failure
    assert "no decision was audited" in r.err
    r = run_cli(["check", *inputs, "--audit", broken])
    assert r.code == 5 and "no decision was audited" in r.err
