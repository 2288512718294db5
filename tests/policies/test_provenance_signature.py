"""provenance-model-signature with verifier facts, which `charter test` suites cannot supply."""

from __future__ import annotations

from pathlib import Path

import pytest
from charter.engine import Engine, check_paths

from charter._internal.session import load_session

PACK = Path(__file__).resolve().parents[2] / "policies" / "provenance"
DIGEST = "sha256:0d6e3f1c2b4a59687a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f"


def _verdict(facts: dict, tmp_path: Path) -> tuple[str, list[str]]:
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        f"""apiVersion: v1
kind: Pod
metadata:
  name: lora
  namespace: fraud-models
  annotations:
    charter.dev/model-uri: oci://registry.eu.example.com/models/fraud-bert-lora
    charter.dev/model-digest: "{DIGEST}"
spec:
  containers:
    - name: main
      image: registry.eu.example.com/fraud/scorer:1@sha256:{"5" * 64}
"""
    )
    session = load_session([str(PACK / "models.yaml"), str(PACK / "catalog.yaml")])
    assert not session.errors
    engine = Engine(session.policies, session.context, provenance=lambda workload: facts)
    run = check_paths(engine, [str(pod)])
    assert not run.errors
    (rd,) = run.decisions
    outcome = next(o for o in rd.decision.outcomes if o.policy == "provenance-model-signature")
    return str(outcome.verdict), [f.message for f in outcome.findings]


def test_verified_signature_passes(tmp_path: Path) -> None:
    verdict, _ = _verdict(
        {"models": {DIGEST: {"verified": True, "signer": "fraud-release@example.com"}}}, tmp_path
    )
    assert verdict.endswith("pass")


@pytest.mark.parametrize(
    ("facts", "needle"),
    [
        ({}, "no signature verification facts are available"),
        (
            {"models": {DIGEST: {"verified": False, "signer": "someone@example.com", "errors": ["bad sig"]}}},
            "did not verify",
        ),
    ],
)
def test_missing_or_failed_signature_denies(facts: dict, needle: str, tmp_path: Path) -> None:
    verdict, messages = _verdict(facts, tmp_path)
    assert verdict.endswith("deny")
    assert any(needle in m for m in messages), messages
