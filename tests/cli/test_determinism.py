"""The same inputs give byte-identical reports in separate processes.

cel-cpp iterates maps in a per-process order, so a message that joins map keys
without sorting would differ between the webhook and `charter check`; the shipped
packs sort before joining, and this test holds them to it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _report(profile: str) -> bytes:
    cmd = [
        sys.executable,
        "-m",
        "charter.cli",
        "check",
        "examples/workloads",
        "--cluster",
        f"examples/clusters/{profile}.yaml",
        "--context",
        "examples/context",
        "-f",
        "json",
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
    assert r.returncode in (0, 1), r.stderr.decode()
    return r.stdout


def test_reports_are_identical_across_processes() -> None:
    first = _report("onprem-sovereign-de")
    assert b'"results"' in first
    assert _report("onprem-sovereign-de") == first
