"""Offline verification of OpenSSF model-signing bundles against a trust policy.

`verify_bundle` checks a signature bundle without the model files (what admission needs):
the DSSE signature, the signer against the trust policy, the in-toto statement. It returns
the verified manifest; `verify_model` then re-hashes a model directory against it.

Sharp edges of model-signing 1.1.1 / sigstore 4.5.1 closed here (each has a test):
- certificate signatures: the chain is built only to the trust policy's own roots (never the
  certifi web PKI), at the *current* time (model-signing validates at the leaf's notBefore, so
  an expired leaf verifies), and the leaf's SAN or subject must be pinned by the policy;
- keyless: `sigstore.verify.Verifier` over a pinned trusted root read from the policy (never
  TUF, never the user cache) and an `Identity` that always carries the issuer;
- the DSSE payload type, statement type, predicate type, the single subject and the root
  digest over the resources are checked here (sigstore's `verify_dsse` leaves that to callers;
  the pre-1.0 compat predicate is refused);
- files not in the signature are never ignored (no `set_ignore_unsigned_files`), `.git*`
  paths are hashed too, and only the paths the signer listed are skipped (and reported);
- only ECDSA P-256/384/521 keys are accepted, with a clear error instead of a crash;
- every exception becomes an error string: callers fail closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from .trust import Identity, TrustPolicy

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
BUNDLE_MEDIA_TYPES = ("application/vnd.dev.sigstore.bundle.v0.3+json",)
_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
# Fulcio OIDC issuer extensions (v2 first, then the deprecated v1).
_OIDC_ISSUER_OIDS = (
    x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"),
    x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"),
)


class VerificationFailure(Exception):
    """A bundle or model that does not verify; the message is the reason."""


@dataclass
class Verification:
    """What verifying one bundle (and optionally a model directory) established."""

    verified: bool = False
    identity: str = ""  # the trust-policy identity that matched
    signer: str = ""  # key hint, certificate SAN/subject, or keyless identity
    method: str = ""  # key | certificate | keyless
    subject_digest: str = ""  # sha256:<root digest> the signature covers
    model_name: str = ""
    hash_type: str = ""
    ignored_paths: list[str] = field(default_factory=list)
    files: int = 0
    errors: list[str] = field(default_factory=list)
    manifest: Any = None


def _b64(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise VerificationFailure(f"bundle: bad base64 ({e})") from e


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _ec_key(pub: Any, what: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name not in _CURVE_HASH:
        kind = getattr(getattr(pub, "curve", None), "name", None) or type(pub).__name__
        raise VerificationFailure(
            f"{what}: unsupported key type {kind}; model-signing supports only ECDSA P-256, P-384 and P-521"
        )
    return pub


def _ecdsa_verify(pub: ec.EllipticCurvePublicKey, sig: bytes, data: bytes) -> None:
    try:
        pub.verify(sig, data, ec.ECDSA(_CURVE_HASH[pub.curve.name]()))
    except InvalidSignature as e:
        raise VerificationFailure("DSSE signature is invalid (payload or signature was altered)") from e


def parse_bundle(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise VerificationFailure(f"bundle is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise VerificationFailure("bundle is not a JSON object")
    if data.get("mediaType") not in BUNDLE_MEDIA_TYPES:
        raise VerificationFailure(f"bundle mediaType {data.get('mediaType')!r} is not a Sigstore bundle v0.3")
    if not isinstance(data.get("verificationMaterial"), dict) or not isinstance(
        data.get("dsseEnvelope"), dict
    ):
        raise VerificationFailure("bundle has no verificationMaterial or no dsseEnvelope")
    return data


def bundle_method(data: dict[str, Any]) -> str:
    vm = data["verificationMaterial"]
    if "publicKey" in vm:
        return "key"
    if "x509CertificateChain" in vm:
        return "certificate"
    if "certificate" in vm:
        return "keyless"
    raise VerificationFailure("bundle verification material is neither a public key nor a certificate")


def _envelope(data: dict[str, Any]) -> tuple[str, bytes, bytes]:
    env = data["dsseEnvelope"]
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise VerificationFailure("DSSE envelope must carry exactly one signature")
    return (
        str(env.get("payloadType", "")),
        _b64(str(env.get("payload", ""))),
        _b64(str(sigs[0].get("sig", ""))),
    )


def check_statement(payload_type: str, payload: bytes) -> tuple[dict[str, Any], Any]:
    """The checks sigstore's verify_dsse leaves to callers; returns (statement, manifest)."""
    from model_signing._signing.signing import dsse_payload_to_manifest

    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationFailure(f"DSSE payloadType is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE}")
    try:
        stmt = json.loads(payload)
    except ValueError as e:
        raise VerificationFailure(f"DSSE payload is not JSON: {e}") from e
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        raise VerificationFailure(f"payload is not an in-toto Statement v1 ({STATEMENT_TYPE})")
    if stmt.get("predicateType") != PREDICATE_TYPE:
        raise VerificationFailure(
            f"predicateType {stmt.get('predicateType')!r} is not a model-signing signature ({PREDICATE_TYPE})"
        )
    subjects = stmt.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise VerificationFailure("statement must have exactly one subject")
    digest = (subjects[0].get("digest") or {}).get("sha256") if isinstance(subjects[0], dict) else None
    if not isinstance(digest, str) or len(digest) != 64:
        raise VerificationFailure("statement subject has no sha256 digest")
    try:
        manifest = dsse_payload_to_manifest(stmt)  # re-derives the root digest from the resources
    except Exception as e:
        raise VerificationFailure(f"statement is inconsistent: {type(e).__name__}: {e}") from e
    return stmt, manifest


# -- per-method signature checks -------------------------------------------------------------------


def _key_hint(pub: Any) -> str:
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _verify_key(data: dict[str, Any], trust: TrustPolicy, v: Verification) -> tuple[str, bytes]:
    hint = str((data["verificationMaterial"].get("publicKey") or {}).get("hint", ""))
    ptype, payload, sig = _envelope(data)
    candidates = [i for i in trust.identities.values() if i.method == "key"]
    for ident in candidates:
        pub = _ec_key(
            serialization.load_pem_public_key(trust.material[ident.name]), f"identity {ident.name!r}"
        )
        if hint and hint != _key_hint(pub):
            continue
        _ecdsa_verify(pub, sig, _pae(ptype, payload))
        v.identity, v.signer = ident.name, f"key {ident.name} (sha256:{_key_hint(pub)[:16]}…)"
        return ptype, payload
    raise VerificationFailure(
        f"signed by a key that is not in the trust policy (key hint {hint[:16] or 'none'}…)"
    )


def _names(cert: x509.Certificate) -> tuple[list[str], str]:
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for cls in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
            sans.extend(str(n) for n in ext.get_values_for_type(cls))
    except x509.ExtensionNotFound:
        pass
    return sans, cert.subject.rfc4514_string()


def _verify_certificate(
    data: dict[str, Any], trust: TrustPolicy, v: Verification, now: datetime
) -> tuple[str, bytes]:
    from OpenSSL import crypto

    chain_json = data["verificationMaterial"]["x509CertificateChain"].get("certificates") or []
    try:
        chain = [x509.load_der_x509_certificate(_b64(c["rawBytes"])) for c in chain_json]
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationFailure(f"bundle certificate chain does not parse: {e}") from e
    if not chain:
        raise VerificationFailure("bundle certificate chain is empty")
    leaf = chain[0]
    sans, subject = _names(leaf)
    v.signer = sans[0] if sans else subject
    if not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
        # No trusted timestamp proves when a certificate bundle was signed: the leaf must be valid now.
        raise VerificationFailure(
            f"signing certificate {v.signer} is not valid now (valid {leaf.not_valid_before_utc:%Y-%m-%d} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d}); no trusted timestamp proves an earlier signing time"
        )
    try:
        eku = leaf.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
        if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            raise VerificationFailure("signing certificate lacks the codeSigning extended key usage")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.digital_signature:
            raise VerificationFailure("signing certificate lacks the digitalSignature key usage")
    except x509.ExtensionNotFound:
        pass
    errors: list[str] = []
    for ident in (i for i in trust.identities.values() if i.method == "certificate"):
        assert ident.certificate is not None
        store = crypto.X509Store()
        roots = x509.load_pem_x509_certificates(trust.material[ident.name])
        for r in roots:
            store.add_cert(crypto.X509.from_cryptography(r))
        store.set_time(now.replace(tzinfo=None))
        ctx = crypto.X509StoreContext(
            store, crypto.X509.from_cryptography(leaf), [crypto.X509.from_cryptography(c) for c in chain[1:]]
        )
        try:
            ctx.verify_certificate()
        except crypto.X509StoreContextError as e:
            errors.append(f"identity {ident.name}: certificate chain does not lead to its roots ({e})")
            continue
        if not (set(sans) & set(ident.certificate.sans) or subject in ident.certificate.subjects):
            errors.append(
                f"identity {ident.name}: certificate {', '.join(sans) or subject} is issued by a trusted CA but is "
                f"not a trusted signer (allowed: {', '.join(ident.certificate.sans + ident.certificate.subjects)})"
            )
            continue
        ptype, payload, sig = _envelope(data)
        _ecdsa_verify(_ec_key(leaf.public_key(), "signing certificate"), sig, _pae(ptype, payload))
        v.identity = ident.name
        return ptype, payload
    if not errors:
        raise VerificationFailure("the trust policy has no certificate identities")
    raise VerificationFailure("; ".join(errors))


_SIGSTORE_VERIFIERS: dict[str, Any] = {}


def _sigstore_verifier(material: bytes) -> Any:
    """A sigstore Verifier over a pinned trusted root: no TUF, no cache directory, no network."""
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier
    from sigstore_models.trustroot import v1 as trustroot_v1

    key = hashlib.sha256(material).hexdigest()
    if key not in _SIGSTORE_VERIFIERS:
        doc = json.loads(material)
        if isinstance(doc, dict) and "trustedRoot" in doc:  # a ClientTrustConfig: take its root
            doc = doc["trustedRoot"]
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(json.dumps(doc)))
        _SIGSTORE_VERIFIERS[key] = Verifier(trusted_root=root)
    return _SIGSTORE_VERIFIERS[key]


def _der_string(raw: bytes) -> str:
    """The Fulcio issuer extension: a DER UTF8String (v2 OID) or raw bytes (v1 OID)."""
    if len(raw) >= 2 and raw[0] == 0x0C:
        n, off = raw[1], 2
        if n & 0x80:
            k = n & 0x7F
            n, off = int.from_bytes(raw[2 : 2 + k], "big"), 2 + k
        raw = raw[off : off + n]
    return raw.decode(errors="replace")


def _verify_keyless(raw: bytes, trust: TrustPolicy, v: Verification) -> tuple[str, bytes]:
    from sigstore.models import Bundle
    from sigstore.verify import policy

    try:
        bundle = Bundle.from_json(raw)
    except Exception as e:
        raise VerificationFailure(f"invalid Sigstore bundle: {type(e).__name__}: {e}") from e
    sans, subject = _names(bundle.signing_certificate)
    issuer = ""
    for oid in _OIDC_ISSUER_OIDS:
        try:
            val = bundle.signing_certificate.extensions.get_extension_for_oid(oid).value
            issuer = _der_string(getattr(val, "value", b""))
            break
        except x509.ExtensionNotFound:
            continue
    v.signer = sans[0] if sans else subject
    candidates = [
        i for i in trust.identities.values() if i.keyless is not None and i.keyless.identity in sans
    ]
    if not candidates:
        raise VerificationFailure(
            f"keyless signer {v.signer} (issuer {issuer or 'unknown'}) is not a trusted identity"
        )
    errors: list[str] = []
    for ident in candidates:
        assert ident.keyless is not None
        try:
            # Identity with an issuer, always: issuer=None would skip the issuer check.
            ptype, payload = _sigstore_verifier(trust.material[ident.name]).verify_dsse(
                bundle, policy.Identity(identity=ident.keyless.identity, issuer=ident.keyless.issuer)
            )
        except Exception as e:
            errors.append(f"identity {ident.name}: {type(e).__name__}: {e}")
            continue
        v.identity = ident.name
        v.signer = f"{ident.keyless.identity} ({ident.keyless.issuer})"
        return str(ptype), bytes(payload)
    raise VerificationFailure("; ".join(errors))


def _identity_of(trust: TrustPolicy, name: str) -> Identity | None:
    return trust.identities.get(name)


def verify_bundle(raw: bytes, trust: TrustPolicy, *, now: datetime | None = None) -> Verification:
    """Verify a signature bundle's signature and signer; never raises."""
    v = Verification()
    try:
        data = parse_bundle(raw)
        v.method = bundle_method(data)
        if v.method == "key":
            ptype, payload = _verify_key(data, trust, v)
        elif v.method == "certificate":
            ptype, payload = _verify_certificate(data, trust, v, now or datetime.now(UTC))
        else:
            ptype, payload = _verify_keyless(raw, trust, v)
        stmt, manifest = check_statement(ptype, payload)
        v.subject_digest = "sha256:" + stmt["subject"][0]["digest"]["sha256"]
        v.model_name = str(stmt["subject"][0].get("name", ""))
        ser = stmt.get("predicate", {}).get("serialization", {})
        v.hash_type = str(ser.get("hash_type", ""))
        v.ignored_paths = sorted(str(p) for p in ser.get("ignore_paths") or [])
        v.files = len(stmt.get("predicate", {}).get("resources") or [])
        v.manifest = manifest
        v.verified = True
    except VerificationFailure as e:
        v.errors.append(str(e))
    except Exception as e:  # fail closed on anything the libraries raise
        v.errors.append(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    return v


def _hashing_config(serialization_args: dict[str, Any]) -> Any:
    """An explicit hashing config (model-signing's guess fails for blake2 and shards)."""
    from model_signing import hashing

    method = serialization_args.get("method")
    algo = str(serialization_args.get("hash_type", "sha256"))
    algo = {"blake2b": "blake2"}.get(algo, algo)
    symlinks = bool(serialization_args.get("allow_symlinks", False))
    if method == "files":
        cfg = hashing.Config().use_file_serialization(hashing_algorithm=algo, allow_symlinks=symlinks)
    elif method == "shards":
        cfg = hashing.Config().use_shard_serialization(
            hashing_algorithm=algo, shard_size=int(serialization_args["shard_size"]), allow_symlinks=symlinks
        )
    else:
        raise VerificationFailure(f"unknown serialization method {method!r}")
    return cfg


def hash_model(model_dir: Path, manifest: Any) -> Any:
    """Hash `model_dir` as the signature says, skipping only the paths the signer listed."""
    args = dict(manifest.serialization_type)
    cfg = _hashing_config(args)
    # .git, .github, .gitignore, .gitattributes are hashed too: a change there is a change.
    cfg.set_ignored_paths(paths=[], ignore_git_paths=False)
    if args.get("ignore_paths"):
        cfg.add_ignored_paths(model_path=model_dir, paths=list(args["ignore_paths"]))
    return cfg.hash(model_dir)


def manifest_diff(actual: Any, expected: Any) -> list[str]:
    a = {str(rd.identifier): rd.digest for rd in actual.resource_descriptors()}
    e = {str(rd.identifier): rd.digest for rd in expected.resource_descriptors()}
    out: list[str] = []
    if extra := sorted(set(a) - set(e)):
        out.append(f"extra files not covered by the signature: {', '.join(extra)}")
    if missing := sorted(set(e) - set(a)):
        out.append(f"missing files: {', '.join(missing)}")
    if changed := sorted(k for k in set(a) & set(e) if a[k] != e[k]):
        out.append(f"content differs from the signature (hash mismatch): {', '.join(changed)}")
    return out


def verify_model(
    model_dir: str | Path, raw: bytes, trust: TrustPolicy, *, now: datetime | None = None
) -> Verification:
    """Verify the bundle, then re-hash the model directory against it; never raises."""
    v = verify_bundle(raw, trust, now=now)
    if not v.verified:
        return v
    try:
        path = Path(model_dir)
        if not path.is_dir():
            raise VerificationFailure(f"model directory {path} does not exist")
        actual = hash_model(path, v.manifest)
        diff = manifest_diff(actual, v.manifest)
        if diff:
            v.verified = False
            v.errors.extend(diff)
    except VerificationFailure as e:
        v.verified, v.errors = False, [*v.errors, str(e)]
    except Exception as e:
        v.verified, v.errors = False, [*v.errors, f"{type(e).__name__}: {e}"]
    return v
