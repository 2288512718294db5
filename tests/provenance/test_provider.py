"""The ProvenanceProvider: facts per workload model, cached, scoped by the trust policy, never raising."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from charter.provenance import (
    Attestation,
    ModelAttestationProvider,
    VerificationCache,
    attestation_from_document,
    load_trust_policy,
)

from .conftest import FIX, TINY_DIGEST

P256 = (FIX / "signatures" / "tiny-model.p256.sig").read_bytes()
OTHER = "sha256:" + "ab" * 32
URI = "oci://registry.eu.example.com/models/fraud-xgb"


def _workload(*digests: str) -> dict:
    return {
        "models": [
            {"uri": URI, "digest": d, "source": "annotation", "scheme": "oci", "name": ""} for d in digests
        ]
    }


def test_verified_model_facts(make_trust: Callable[..., Path]) -> None:
    provider = ModelAttestationProvider(
        load_trust_policy(make_trust()), [Attestation(TINY_DIGEST, URI, P256, "t")], cache=VerificationCache()
    )
    facts = provider(_workload(TINY_DIGEST))["models"][TINY_DIGEST]
    assert facts["verified"] is True and facts["digestMatch"] is True
    assert facts["method"] == "key" and facts["errors"] == []


def test_bundle_for_another_digest_is_rejected(make_trust: Callable[..., Path]) -> None:
    provider = ModelAttestationProvider(
        load_trust_policy(make_trust()), [Attestation(OTHER, URI, P256, "t")], cache=VerificationCache()
    )
    facts = provider(_workload(OTHER))["models"][OTHER]
    assert facts["verified"] is False and facts["digestMatch"] is False
    assert facts["errors"] == [f"the signature covers {TINY_DIGEST}, not {OTHER}"]


def test_model_without_attestation(make_trust: Callable[..., Path]) -> None:
    provider = ModelAttestationProvider(load_trust_policy(make_trust()), [], cache=VerificationCache())
    facts = provider(_workload(OTHER))["models"][OTHER]
    assert facts["verified"] is False and facts["errors"] == [f"no ModelAttestation names {OTHER}"]


def test_rules_scope_signers_by_jurisdiction_and_cluster_type(make_trust: Callable[..., Path]) -> None:
    trust = load_trust_policy(
        make_trust(
            rules=[
                {
                    "identities": ["p256"],
                    "models": ["oci://registry.eu.example.com/*"],
                    "jurisdictions": ["EU"],
                    "clusterTypes": ["onprem"],
                }
            ]
        )
    )
    att = [Attestation(TINY_DIGEST, URI, P256, "t")]
    cache = VerificationCache()
    de = {"type": "onprem", "jurisdiction": "DE", "jurisdictions": ["DE", "EU"]}
    us = {"type": "onprem", "jurisdiction": "US", "jurisdictions": ["US"]}
    hosted = {"type": "hosted", "jurisdiction": "DE", "jurisdictions": ["DE", "EU"]}
    assert ModelAttestationProvider(trust, att, de, cache)(_workload(TINY_DIGEST))["models"][TINY_DIGEST][
        "verified"
    ]
    for cluster in (us, hosted, None):
        f = ModelAttestationProvider(trust, att, cluster, cache)(_workload(TINY_DIGEST))["models"][
            TINY_DIGEST
        ]
        assert not f["verified"] and f["digestMatch"]
        assert any("trust policy does not let p256" in e for e in f["errors"]), f
    assert cache.misses == 1  # the signature was checked once for all four clusters


def test_cache_is_filled_at_build_time_and_keyed_by_trust_policy(make_trust: Callable[..., Path]) -> None:
    cache = VerificationCache()
    att = [Attestation(TINY_DIGEST, URI, P256, "t")]
    trust = load_trust_policy(make_trust())
    provider = ModelAttestationProvider(trust, att, cache=cache)
    assert (cache.misses, len(cache)) == (1, 1)
    for _ in range(100):
        provider(_workload(TINY_DIGEST))
    assert cache.misses == 1  # never verified on the hot path
    ModelAttestationProvider(trust, att, cache=cache)
    assert cache.misses == 1 and cache.hits >= 1
    # A different trust policy is a different key: re-verified, and here rejected.
    wrong = load_trust_policy(
        make_trust([{"name": "w", "publicKey": str(FIX / "keys" / "test-ecdsa-p256-wrong.pub")}])
    )
    f = ModelAttestationProvider(wrong, att, cache=cache)(_workload(TINY_DIGEST))["models"][TINY_DIGEST]
    assert cache.misses == 2 and not f["verified"]


def test_trust_policy_digest_covers_key_material(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    key = tmp_path / "k.pub"
    key.write_bytes((FIX / "keys" / "test-ecdsa-p256.pub").read_bytes())
    path = make_trust([{"name": "k", "publicKey": str(key)}])
    d1 = load_trust_policy(path).digest
    key.write_bytes((FIX / "keys" / "test-ecdsa-p256-wrong.pub").read_bytes())
    assert load_trust_policy(path).digest != d1


def test_provider_never_raises(make_trust: Callable[..., Path]) -> None:
    provider = ModelAttestationProvider(
        load_trust_policy(make_trust()),
        [Attestation(TINY_DIGEST, URI, b"not json", "t")],
        cache=VerificationCache(),
    )
    assert provider({}) == {"models": {}}
    assert provider({"models": [None, 3, {"digest": None}]}) == {"models": {}}
    f = provider(_workload(TINY_DIGEST))["models"][TINY_DIGEST]
    assert not f["verified"] and f["errors"]


def test_attestation_documents(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "charter.dev/v1alpha1",
        "kind": "ModelAttestation",
        "metadata": {"name": "m"},
        "spec": {
            "model": {"uri": URI, "digest": TINY_DIGEST},
            "bundle": {"path": str(FIX / "signatures" / "tiny-model.p256.sig")},
        },
    }
    a = attestation_from_document(doc, tmp_path, "x")
    assert a is not None and a.bundle == P256 and not a.error
    assert attestation_from_document({"kind": "Pod"}, tmp_path, "x") is None
    bad = attestation_from_document(
        {**doc, "spec": {"model": {"digest": "md5:1"}, "bundle": {}}}, tmp_path, "x"
    )
    assert bad is not None and "sha256:<64 hex>" in bad.error
    missing = attestation_from_document(
        {**doc, "spec": {**doc["spec"], "bundle": {"path": "nope.sig"}}}, tmp_path, "x"
    )
    assert missing is not None and "nope.sig" in missing.error


def test_cached_lookup_is_cheap(make_trust: Callable[..., Path]) -> None:
    provider = ModelAttestationProvider(
        load_trust_policy(make_trust()), [Attestation(TINY_DIGEST, URI, P256, "t")], cache=VerificationCache()
    )
    w = _workload(TINY_DIGEST)
    t0 = time.perf_counter()
    for _ in range(1000):
        provider(w)
    assert (time.perf_counter() - t0) / 1000 < 0.001  # well under a millisecond per admission


def test_model_signing_without_pinned_roots_would_reach_out(no_network: list) -> None:
    """Why the roots are pinned: model-signing's keyless verifier without trust_config goes to TUF."""
    import pytest
    from model_signing import verifying

    with pytest.raises(Exception):  # noqa: B017 - TUFError or an OSError from the guard
        verifying.Config().use_sigstore_verifier(
            identity="x@example.com", oidc_issuer="https://issuer.example"
        )
    assert no_network, "expected a blocked network attempt"
    no_network.clear()
