"""The provenance pack admits a workload only when its model verifies: through `charter check --trust-policy`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from charter.engine import check_paths

from charter._internal.session import load_session

from .conftest import FIX, TINY_DIGEST

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policies" / "provenance"


def _files(tmp_path: Path, sig: str, digest: str = TINY_DIGEST) -> tuple[Path, Path]:
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        f"""apiVersion: v1
kind: Pod
metadata:
  name: scorer
  namespace: fraud-models
  annotations:
    charter.dev/model-uri: oci://registry.eu.example.com/models/fraud-xgb
    charter.dev/model-digest: "{digest}"
spec:
  containers:
    - name: main
      image: registry.eu.example.com/fraud/scorer:1@sha256:{"5" * 64}
"""
    )
    att = tmp_path / "attestations.yaml"
    att.write_text(
        f"""apiVersion: charter.dev/v1alpha1
kind: ModelAttestation
metadata: {{name: fraud-xgb}}
spec:
  model: {{uri: oci://registry.eu.example.com/models/fraud-xgb, digest: "{digest}"}}
  bundle: {{path: {FIX / "signatures" / sig}}}
"""
    )
    return pod, att


def _check(pod: Path, att: Path, trust: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "charter.cli", "check", str(pod),
            "--policies", str(PACK / "models.yaml"),
            "--context", str(PACK / "catalog.yaml"), "--context", str(att),
            "--trust-policy", str(trust), "--format", "json", "--no-progress", *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )  # fmt: skip


def _signature_results(out: str) -> list[dict]:
    report = json.loads(out)
    return [r for r in report["results"] if r.get("policy") == "provenance-model-signature"]


def test_signed_model_is_admitted(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    pod, att = _files(tmp_path, "tiny-model.p256.sig")
    r = _check(pod, att, make_trust())
    assert r.returncode == 0, r.stdout + r.stderr
    assert _signature_results(r.stdout) == []


@pytest.mark.parametrize(
    ("sig", "digest", "trust_ids", "reason"),
    [
        ("tiny-model.p256.sig", TINY_DIGEST, "wrong-key", "signed by a key that is not in the trust policy"),
        ("tiny-model.p256.payload-edited.sig", TINY_DIGEST, None, "DSSE signature is invalid"),
        ("tiny-model.p256.sig", "sha256:" + "ab" * 32, None, f"the signature covers {TINY_DIGEST}"),
    ],
)
def test_unverified_model_is_denied_with_the_reason(
    sig: str, digest: str, trust_ids: str | None, reason: str, tmp_path: Path, make_trust: Callable[..., Path]
) -> None:
    pod, att = _files(tmp_path, sig, digest)
    ids = (
        [{"name": "wrong-key", "publicKey": str(FIX / "keys" / "test-ecdsa-p256-wrong.pub")}]
        if trust_ids
        else None
    )
    r = _check(pod, att, make_trust(ids))
    assert r.returncode == 1, r.stdout + r.stderr
    (finding,) = _signature_results(r.stdout)
    assert "did not verify" in finding["message"] and reason in finding["message"], finding


def test_without_trust_policy_the_pack_still_denies(tmp_path: Path) -> None:
    pod, _ = _files(tmp_path, "tiny-model.p256.sig")
    session = load_session([str(PACK / "models.yaml"), str(PACK / "catalog.yaml")])
    assert session.provenance is None
    (rd,) = check_paths(session.engine(), [str(pod)]).decisions
    outcome = next(o for o in rd.decision.outcomes if o.policy == "provenance-model-signature")
    assert str(outcome.verdict).endswith("deny")


def test_session_trust_policy_argument(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    pod, att = _files(tmp_path, "tiny-model.cert-chain.sig")
    session = load_session(
        [str(PACK / "models.yaml")],
        context=[str(PACK / "catalog.yaml"), str(att)],
        trust_policy=str(make_trust()),
    )
    assert not session.errors and session.provenance is not None
    (rd,) = check_paths(session.engine(), [str(pod)]).decisions
    outcome = next(o for o in rd.decision.outcomes if o.policy == "provenance-model-signature")
    assert str(outcome.verdict).endswith("pass")


def test_bad_trust_policy_is_an_input_error(tmp_path: Path) -> None:
    pod, att = _files(tmp_path, "tiny-model.p256.sig")
    bad = tmp_path / "trust.yaml"
    bad.write_text("apiVersion: charter.dev/v1alpha1\nkind: TrustPolicy\nspec: {identities: [], rules: []}\n")
    r = _check(pod, att, bad)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "trust policy" in r.stderr
    # A YAML alias bomb is refused before anything expands it.
    rows = ["  l0: &l0 [" + ", ".join(["x"] * 9) + "]"]
    rows += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bad.write_text("apiVersion: charter.dev/v1alpha1\nkind: TrustPolicy\nbomb:\n" + "\n".join(rows) + "\n")
    r = _check(pod, att, bad)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "excessive aliasing" in r.stderr


def test_model_verify_cli(make_trust: Callable[..., Path]) -> None:
    def run(model: str, sig: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable, "-m", "charter.cli", "model", "verify", str(FIX / "models" / model),
                "--signature", str(FIX / "signatures" / sig), "--trust-policy", str(make_trust()),
            ],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip

    ok = run("tiny-model", "tiny-model.cert-chain.sig")
    assert (
        ok.returncode == 0 and "verdict: VERIFIED" in ok.stdout and "model-signer@test.invalid" in ok.stdout
    )
    bad = run("tiny-model-tampered-weights", "tiny-model.p256.sig")
    assert bad.returncode == 1 and "NOT VERIFIED" in bad.stdout and "weights.bin" in bad.stdout
    missing = run("does-not-exist", "tiny-model.p256.sig")
    assert missing.returncode == 2


def test_model_inspect_cli() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "model", "inspect", "--json", str(FIX / "signatures" / "tiny-model.cert-chain.sig")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == "certificate" and out["signer"] == "model-signer@test.invalid"
    assert out["digest"] == TINY_DIGEST and len(out["files"]) == 3


def test_reason_is_in_the_signed_audit_record(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    import base64
    import sqlite3

    pod, att = _files(tmp_path, "tiny-model.p256.payload-edited.sig")
    r = subprocess.run(
        [
            sys.executable, "-m", "charter.cli", "check", str(pod),
            "--policies", str(PACK / "models.yaml"),
            "--context", str(PACK / "catalog.yaml"), "--context", str(att),
            "--trust-policy", str(make_trust()), "--no-progress",
            "--audit", str(tmp_path / "audit.db"),
        ],
        capture_output=True, text=True, cwd=tmp_path,  # the signing key is created in ./.charter/
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    (envelope,) = sqlite3.connect(tmp_path / "audit.db").execute("select envelope from records").fetchone()
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    (result,) = [x for x in statement["predicate"]["results"] if x["policy"] == "provenance-model-signature"]
    assert result["verdict"] == "deny"
    assert "DSSE signature is invalid" in result["message"]


def test_webhook_reload_builds_the_provider(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    from charter.admission.reload import PolicySetup, build

    pod, att = _files(tmp_path, "tiny-model.p256.sig")
    trust = str(make_trust())
    setup = PolicySetup(
        policies=[str(PACK / "models.yaml")],
        context=[str(PACK / "catalog.yaml"), str(att)],
        trust_policy=trust,
    )
    assert trust in setup.paths()  # watched: editing the trust policy reloads and re-verifies
    serving, errors = build(setup)
    assert not errors and serving is not None
    (rd,) = check_paths(serving.engine, [str(pod)]).decisions
    outcome = next(o for o in rd.decision.outcomes if o.policy == "provenance-model-signature")
    assert outcome.verdict == "pass"


def test_policy_test_suite_with_trust_policy(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    """`charter test` verifies ModelAttestations against the suite's trustPolicy, as check does."""
    pod, att = _files(tmp_path, "tiny-model.p256.sig")
    trust = make_trust()
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"""apiVersion: charter.dev/v1alpha1
kind: PolicyTest
metadata: {{name: signed-model}}
spec:
  policies: [{PACK / "models.yaml"}]
  context: [{PACK / "catalog.yaml"}, {att.name}]
  trustPolicy: {trust}
  resources: [{pod.name}]
  expect:
    - {{resource: {{kind: Pod, name: scorer}}, policy: provenance-model-signature, result: pass}}
"""
    )
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "test", str(suite)], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 cases: 1 passed, 0 failed" in r.stdout
    # Without the trust policy the same suite fails: no verification facts, so the pack denies.
    suite.write_text(suite.read_text().replace(f"  trustPolicy: {trust}\n", ""))
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "test", str(suite)], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 1 and "+ actual:   deny" in r.stdout
