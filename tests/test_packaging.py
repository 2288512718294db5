"""`pip install .` (a built wheel, not the editable tree) ships every package and the policy packs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("charter-*.whl")
    return whl


def test_wheel_maps_folders_to_namespaced_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "charter/cli.py",
        "charter/engine/__init__.py",
        "charter/engine/dispatcher.py",
        "charter/engine/_internal/cel/env.py",
        "charter/engine/normalize/__init__.py",
        "charter/admission/__init__.py",
        "charter/audit/__init__.py",
        "charter/policies/__init__.py",
    ):
        assert expected in names, expected
    assert not any(n.startswith(("engine/", "tests/", "bench/")) for n in names)
    assert any(n.startswith("charter/policies/") and n.endswith(".yaml") for n in names), (
        "policy packs not shipped"
    )


def test_every_source_package_is_declared() -> None:
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = {
        "charter": "charter",
        "engine": "charter.engine",
        "admission": "charter.admission",
        "audit": "charter.audit",
        "policies": "charter.policies",
    }
    for top, name in mapping.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            if "tests" in rel:
                continue
            assert ".".join((name, *rel)) in declared, f"{init.parent} is not in [tool.setuptools] packages"


def test_installed_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    # Dependencies come from this environment; the package itself only from the wheel.
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = "import charter.engine, charter.cli, pathlib; print(pathlib.Path(charter.engine.__file__).parent)"
    r = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert r.stdout.strip().startswith(str(target))
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "lint", str(target / "charter" / "policies")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
