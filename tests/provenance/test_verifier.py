"""Verification of the fixture signatures: each method, and each way a model or bundle is wrong."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from charter.provenance import TrustPolicyError, load_trust_policy, verify_bundle, verify_model
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .conftest import FIX, IBM, KEYLESS_DIR, TINY_DIGEST

SIG = FIX / "signatures"
MODELS = FIX / "models"


def _verify(model: str, sig: str, trust: Path) -> tuple[bool, str, list[str]]:
    v = verify_model(MODELS / model, (SIG / sig).read_bytes(), load_trust_policy(trust))
    return v.verified, v.method, v.errors


@pytest.mark.parametrize(
    ("sig", "method", "identity"),
    [
        ("tiny-model.p256.sig", "key", "p256"),
        ("tiny-model.p384.sig", "key", "p384"),
        ("tiny-model.p256.blake3.sig", "key", "p256"),
        ("tiny-model.cert-chain.sig", "certificate", "test-ca"),
    ],
)
def test_each_method_verifies(sig: str, method: str, identity: str, make_trust: Callable[..., Path]) -> None:
    v = verify_model(MODELS / "tiny-model", (SIG / sig).read_bytes(), load_trust_policy(make_trust()))
    assert v.verified, v.errors
    assert (v.method, v.identity) == (method, identity)
    assert v.files == 3
    if "blake3" not in sig:
        assert v.subject_digest == TINY_DIGEST


def test_certificate_signer_is_the_san(make_trust: Callable[..., Path]) -> None:
    v = verify_bundle((SIG / "tiny-model.cert-chain.sig").read_bytes(), load_trust_policy(make_trust()))
    assert v.verified and v.signer == "model-signer@test.invalid"


def test_keyless_production_bundle_verifies_offline(make_trust: Callable[..., Path]) -> None:
    trust = load_trust_policy(make_trust())
    v = verify_model(KEYLESS_DIR, (KEYLESS_DIR / "model.sig").read_bytes(), trust)
    assert v.verified, v.errors
    assert v.method == "keyless" and v.identity == "ibm"
    assert v.signer == "stefanb@us.ibm.com (https://sigstore.verify.ibm.com/oauth2)"
    assert "ignore-me" in v.ignored_paths  # the signer chose to skip it, and we say so


@pytest.mark.parametrize(
    ("model", "sig", "reason"),
    [
        ("tiny-model-tampered-weights", "tiny-model.p256.sig", "hash mismatch): weights.bin"),
        (
            "tiny-model-extra-file",
            "tiny-model.p256.sig",
            "extra files not covered by the signature: extra.py",
        ),
        ("tiny-model-missing-file", "tiny-model.p256.sig", "missing files: tokenizer.json"),
        ("tiny-model-tampered-weights", "tiny-model.cert-chain.sig", "hash mismatch): weights.bin"),
        ("tiny-model", "tiny-model.p256.payload-edited.sig", "DSSE signature is invalid"),
    ],
)
def test_model_or_bundle_changed_is_rejected(
    model: str, sig: str, reason: str, make_trust: Callable[..., Path]
) -> None:
    ok, _, errors = _verify(model, sig, make_trust())
    assert not ok
    assert any(reason in e for e in errors), errors


def test_extra_file_is_never_ignored(make_trust: Callable[..., Path]) -> None:
    """model-signing's set_ignore_unsigned_files(True) accepts injected files; charter never does."""
    ok, _, errors = _verify("tiny-model-extra-file", "tiny-model.p256.blake3.sig", make_trust())
    assert not ok and any("extra.py" in e for e in errors)


def test_wrong_key_is_rejected(make_trust: Callable[..., Path]) -> None:
    trust = make_trust([{"name": "other", "publicKey": str(FIX / "keys" / "test-ecdsa-p256-wrong.pub")}])
    ok, _, errors = _verify("tiny-model", "tiny-model.p256.sig", trust)
    assert not ok
    assert any("signed by a key that is not in the trust policy" in e for e in errors), errors


def test_ed25519_key_is_a_clean_error(make_trust: Callable[..., Path]) -> None:
    trust = make_trust([{"name": "ed", "publicKey": str(FIX / "keys" / "test-ed25519.pub")}])
    ok, _, errors = _verify("tiny-model", "tiny-model.p256.sig", trust)
    assert not ok
    assert any("supports only ECDSA P-256, P-384 and P-521" in e for e in errors), errors


def test_untrusted_certificate_identity_is_rejected(make_trust: Callable[..., Path]) -> None:
    """model-signing checks no signer identity: any leaf under the CA would pass."""
    trust = make_trust(
        [
            {
                "name": "ca",
                "certificate": {
                    "roots": [str(FIX / "pki" / "test-ca-root.crt")],
                    "sans": ["release@example.com"],
                },
            }
        ]
    )
    ok, _, errors = _verify("tiny-model", "tiny-model.cert-chain.sig", trust)
    assert not ok
    assert any("is issued by a trusted CA but is not a trusted signer" in e for e in errors), errors


def test_certificate_subject_can_pin_the_signer(make_trust: Callable[..., Path]) -> None:
    trust = make_trust(
        [
            {
                "name": "ca",
                "certificate": {
                    "roots": [str(FIX / "pki" / "test-ca-root.crt")],
                    "subjects": ["CN=test-model-signer,O=TEST ONLY governance fixtures"],
                },
            }
        ]
    )
    ok, _, errors = _verify("tiny-model", "tiny-model.cert-chain.sig", trust)
    assert ok, errors


def test_invalid_chain_is_rejected(make_trust: Callable[..., Path]) -> None:
    trust = make_trust(
        [
            {
                "name": "ca",
                "certificate": {
                    "roots": [str(FIX / "pki" / "test-ca-unrelated-root.crt")],
                    "sans": ["model-signer@test.invalid"],
                },
            }
        ]
    )
    ok, _, errors = _verify("tiny-model", "tiny-model.cert-chain.sig", trust)
    assert not ok
    assert any("certificate chain does not lead to its roots" in e for e in errors), errors


def test_intermediate_alone_is_not_a_trust_anchor(make_trust: Callable[..., Path]) -> None:
    trust = make_trust(
        [
            {
                "name": "ca",
                "certificate": {
                    "roots": [str(FIX / "pki" / "test-ca-intermediate.crt")],
                    "sans": ["model-signer@test.invalid"],
                },
            }
        ]
    )
    assert not _verify("tiny-model", "tiny-model.cert-chain.sig", trust)[0]


def test_certificate_identity_needs_roots_and_a_pinned_signer(make_trust: Callable[..., Path]) -> None:
    """With no roots model-signing falls back to the web PKI; a CA alone pins no signer."""
    with pytest.raises(TrustPolicyError, match="roots"):
        load_trust_policy(make_trust([{"name": "ca", "certificate": {"roots": [], "sans": ["x@y"]}}]))
    with pytest.raises(TrustPolicyError, match="needs `sans` or `subjects`"):
        load_trust_policy(
            make_trust([{"name": "ca", "certificate": {"roots": [str(FIX / "pki" / "test-ca-root.crt")]}}])
        )


def test_keyless_identity_needs_an_issuer(make_trust: Callable[..., Path]) -> None:
    """sigstore's Identity(issuer=None) skips the issuer check: the trust policy requires one."""
    with pytest.raises(TrustPolicyError, match="issuer"):
        load_trust_policy(
            make_trust([{"name": "k", "keyless": {k: v for k, v in IBM.items() if k != "issuer"}}])
        )


def _expired_leaf_bundle(tmp_path: Path) -> tuple[Path, Path]:
    """A root and a leaf that expired a year ago, signing tiny-model with model-signing."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from model_signing import signing

    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired-test-root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=800))
        .not_valid_after(now + timedelta(days=800))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-signer")]))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=730))
        .not_valid_after(now - timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("old-signer@test.invalid")]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "root.crt").write_bytes(root.public_bytes(pem))
    (tmp_path / "leaf.crt").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    sig = tmp_path / "expired.sig"
    signing.Config().use_certificate_signer(
        private_key=tmp_path / "leaf.key",
        signing_certificate=tmp_path / "leaf.crt",
        certificate_chain=[tmp_path / "root.crt"],
    ).sign(MODELS / "tiny-model", sig)
    return tmp_path / "root.crt", sig


def test_expired_signing_certificate_is_rejected(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    """model-signing validates the chain at the leaf's notBefore, so an expired leaf passes there."""
    from model_signing import verifying

    root, sig = _expired_leaf_bundle(tmp_path)
    verifying.Config().use_certificate_verifier(certificate_chain=[root]).verify(MODELS / "tiny-model", sig)
    trust = make_trust(
        [{"name": "old", "certificate": {"roots": [str(root)], "sans": ["old-signer@test.invalid"]}}]
    )
    v = verify_model(MODELS / "tiny-model", sig.read_bytes(), load_trust_policy(trust))
    assert not v.verified
    assert any("is not valid now" in e for e in v.errors), v.errors


def test_keyless_untrusted_identity_is_rejected(make_trust: Callable[..., Path]) -> None:
    trust = make_trust([{"name": "k", "keyless": {**IBM, "identity": "mallory@example.com"}}])
    v = verify_bundle((KEYLESS_DIR / "model.sig").read_bytes(), load_trust_policy(trust))
    assert not v.verified
    assert any(
        "keyless signer stefanb@us.ibm.com" in e and "is not a trusted identity" in e for e in v.errors
    )


def test_keyless_wrong_issuer_is_rejected(make_trust: Callable[..., Path]) -> None:
    trust = make_trust([{"name": "k", "keyless": {**IBM, "issuer": "https://accounts.google.com"}}])
    v = verify_bundle((KEYLESS_DIR / "model.sig").read_bytes(), load_trust_policy(trust))
    assert not v.verified
    assert any("OIDCIssuer" in e or "issuer" in e.lower() for e in v.errors), v.errors


def test_keyless_against_another_trusted_root_is_rejected(make_trust: Callable[..., Path]) -> None:
    trust = make_trust(
        [{"name": "k", "keyless": {**IBM, "trustedRoot": str(FIX / "keyless" / "trusted_root.staging.json")}}]
    )
    v = verify_bundle((KEYLESS_DIR / "model.sig").read_bytes(), load_trust_policy(trust))
    assert not v.verified
    assert any("CertValidationError" in e for e in v.errors), v.errors


def test_trusted_root_pin_is_checked(make_trust: Callable[..., Path]) -> None:
    with pytest.raises(TrustPolicyError, match="does not match trustedRootSha256"):
        load_trust_policy(make_trust([{"name": "k", "keyless": {**IBM, "trustedRootSha256": "0" * 64}}]))


def test_keyless_bundle_that_is_not_model_signing_is_rejected(make_trust: Callable[..., Path]) -> None:
    """verify_dsse leaves payload and predicate types to the caller: an SLSA statement is not a model signature."""
    beacon = (
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
        "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
    )
    trust = make_trust(
        [
            {
                "name": "beacon",
                "keyless": {
                    "issuer": "https://token.actions.githubusercontent.com",
                    "identity": beacon,
                    "trustedRoot": str(FIX / "keyless" / "trusted_root.staging.json"),
                },
            }
        ]
    )
    raw = (
        FIX / "keyless" / "sigstore-python-staging-dsse" / "a.dsse.staging-rekor-v2.txt.sigstore.json"
    ).read_bytes()
    v = verify_bundle(raw, load_trust_policy(trust))
    assert not v.verified
    assert any(
        "predicateType 'https://slsa.dev/provenance/v1' is not a model-signing signature" in e
        for e in v.errors
    )


def _resign(payload_type: str, statement: dict, tmp_path: Path) -> bytes:
    """A key bundle over an arbitrary statement, signed with the P-256 test key."""
    key = serialization.load_pem_private_key((FIX / "keys" / "test-ecdsa-p256.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    bundle = json.loads((SIG / "tiny-model.p256.sig").read_text())
    payload = json.dumps(statement).encode()
    pae = b"DSSEv1 %d %b %d %b" % (len(payload_type), payload_type.encode(), len(payload), payload)
    bundle["dsseEnvelope"] = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"sig": base64.b64encode(key.sign(pae, ec.ECDSA(hashes.SHA256()))).decode()}],
    }
    return json.dumps(bundle).encode()


def _statement() -> dict:
    bundle = json.loads((SIG / "tiny-model.p256.sig").read_text())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_payload_type_is_checked(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    trust = load_trust_policy(make_trust())
    assert verify_bundle(_resign("application/vnd.in-toto+json", _statement(), tmp_path), trust).verified
    v = verify_bundle(_resign("text/plain", _statement(), tmp_path), trust)
    assert not v.verified and any("payloadType is 'text/plain'" in e for e in v.errors)


def test_subject_digest_must_match_the_resources(tmp_path: Path, make_trust: Callable[..., Path]) -> None:
    stmt = _statement()
    stmt["subject"][0]["digest"]["sha256"] = "1" * 64
    v = verify_bundle(
        _resign("application/vnd.in-toto+json", stmt, tmp_path), load_trust_policy(make_trust())
    )
    assert not v.verified and any("Manifest is inconsistent" in e for e in v.errors), v.errors


def test_git_paths_are_hashed_unless_the_signer_listed_them(
    tmp_path: Path, make_trust: Callable[..., Path]
) -> None:
    import shutil

    stmt = _statement()
    stmt["predicate"]["serialization"]["ignore_paths"] = []
    model = tmp_path / "tiny-model"
    shutil.copytree(MODELS / "tiny-model", model)
    (model / ".gitattributes").write_text("* filter=evil\n")
    v = verify_model(
        model, _resign("application/vnd.in-toto+json", stmt, tmp_path), load_trust_policy(make_trust())
    )
    assert not v.verified and any(".gitattributes" in e for e in v.errors), v.errors


@pytest.mark.parametrize(
    "raw", [b"", b"{}", b"[]", b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}']
)
def test_garbage_bundles_fail_closed(raw: bytes, make_trust: Callable[..., Path]) -> None:
    v = verify_bundle(raw, load_trust_policy(make_trust()))
    assert not v.verified and v.errors
