"""Catalog matching in the shipped packs: path boundaries, and one deterministic entry per model.

A location without a trailing slash covers that path, its `:tag`, `@digest` and sub-paths, never a
longer name that starts with it. When a model matches several catalog entries, the entry with the
smallest id decides, in every process (cel-cpp iterates maps in a per-process order).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHADOW = """
apiVersion: charter.dev/v1alpha1
kind: Catalog
metadata: {name: shadow}
spec:
  models:
    - id: aaa-shadow
      locations: [oci://registry.eu.example.com/models/fraud-xgb]
      approved: false
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: scorer
  namespace: fraud-models
  annotations:
    charter.dev/model-uri: oci://registry.eu.example.com/models/fraud-xgb:{tag}
    charter.dev/model-digest: sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
spec:
  containers: [{{name: main, image: "registry.eu.example.com/fraud/app:1"}}]
"""


def _catalog_messages(tmp_path: Path, tag: str) -> list[str]:
    (tmp_path / "shadow.yaml").write_text(SHADOW)
    pod = tmp_path / f"pod-{tag}.yaml"
    pod.write_text(POD.format(tag=tag))
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "check", str(pod), "--context", str(tmp_path / "shadow.yaml"),
         "--fail-on", "never", "-f", "json"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    return [
        x["message"] for x in json.loads(r.stdout)["results"] if x["policy"] == "provenance-model-catalog"
    ]


def test_the_smallest_matching_catalog_id_decides_in_every_process(tmp_path: Path) -> None:
    seen = {tuple(_catalog_messages(tmp_path, "v1")) for _ in range(3)}
    assert seen == {
        (
            "model oci://registry.eu.example.com/models/fraud-xgb:v1 (catalog entry aaa-shadow) is not approved",
        )
    }
