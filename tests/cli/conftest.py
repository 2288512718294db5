from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from charter.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(args: list[str], stdin: str = "") -> Run:
    """Run the console entry point in-process, as a user would, capturing output and exit code."""
    old = sys.argv, sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["charter", *args]
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = old
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    def w(name: str, text: str) -> str:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
        return str(p)

    return w
