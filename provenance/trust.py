"""The trust policy: which identities may sign which models, per jurisdiction and cluster type.

```yaml
apiVersion: charter.dev/v1alpha1
kind: TrustPolicy
metadata: {name: model-signers}
spec:
  identities:
    - name: release-key                       # method "key": an ECDSA P-256/384/521 public key
      publicKey: keys/release.pub             # path relative to this file (or publicKeyPem: inline)
    - name: corp-ca                           # method "certificate": your own CA
      certificate:
        roots: [pki/root.crt]                 # required: never the web PKI
        sans: [model-signer@example.com]      # leaf SAN (email, URI or DNS) ...
        subjects: ["CN=model-signer"]         # ... or leaf subject (RFC 4514); at least one of the two
    - name: release-workflow                  # method "keyless": Sigstore (Fulcio + Rekor)
      keyless:
        issuer: https://token.actions.githubusercontent.com    # required
        identity: https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main
        trustedRoot: sigstore/trusted_root.json                 # pinned; never fetched
        trustedRootSha256: "6494e21e..."                        # optional pin of that file
  rules:                                      # who may sign what, where
    - identities: [release-key, corp-ca]
      models: ["*"]                           # digests (sha256:...), URI prefixes ending in '*', or '*'
      jurisdictions: []                       # empty: any; else the cluster's jurisdictions must meet it
      clusterTypes: []                        # empty: any; else onprem | cloud | hosted
```
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from charter.engine.documents import parse_documents
from charter.engine.errors import InputError
from pydantic import BaseModel, ConfigDict, Field, model_validator

TRUST_API_VERSION = "charter.dev/v1alpha1"


class TrustPolicyError(Exception):
    """A trust policy that cannot be loaded: a configuration error (exit 2)."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CertificateIdentity(_M):
    roots: list[str] = Field(min_length=1)
    sans: list[str] = []
    subjects: list[str] = []

    @model_validator(mode="after")
    def _pinned(self) -> CertificateIdentity:
        if not self.sans and not self.subjects:
            raise ValueError("a certificate identity needs `sans` or `subjects`: a CA alone pins no signer")
        return self


class KeylessIdentity(_M):
    issuer: str = Field(min_length=1)
    identity: str = Field(min_length=1)
    trusted_root: str = Field(alias="trustedRoot", min_length=1)
    trusted_root_sha256: str | None = Field(default=None, alias="trustedRootSha256")


class Identity(_M):
    name: str = Field(min_length=1)
    public_key: str | None = Field(default=None, alias="publicKey")
    public_key_pem: str | None = Field(default=None, alias="publicKeyPem")
    certificate: CertificateIdentity | None = None
    keyless: KeylessIdentity | None = None

    @model_validator(mode="after")
    def _one_method(self) -> Identity:
        n = sum(
            x is not None for x in (self.public_key or self.public_key_pem, self.certificate, self.keyless)
        )
        if n != 1:
            raise ValueError(
                f"identity {self.name!r} needs exactly one of publicKey/publicKeyPem, certificate, keyless"
            )
        return self

    @property
    def method(self) -> Literal["key", "certificate", "keyless"]:
        if self.certificate is not None:
            return "certificate"
        if self.keyless is not None:
            return "keyless"
        return "key"


class Rule(_M):
    identities: list[str] = Field(min_length=1)
    models: list[str] = ["*"]
    jurisdictions: list[str] = []
    cluster_types: list[Literal["onprem", "cloud", "hosted"]] = Field(default=[], alias="clusterTypes")


class TrustSpec(_M):
    identities: list[Identity] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> TrustSpec:
        names = [i.name for i in self.identities]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"identity names must be unique: {sorted(dup)}")
        for r in self.rules:
            unknown = set(r.identities) - set(names)
            if unknown:
                raise ValueError(f"rule names unknown identities {sorted(unknown)}")
        return self


class _Meta(_M):
    model_config = ConfigDict(extra="allow")
    name: str = ""


class TrustPolicyDoc(_M):
    api_version: Literal["charter.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["TrustPolicy"]
    metadata: _Meta = _Meta()
    spec: TrustSpec


class TrustPolicy:
    """A loaded trust policy: the document, its file material and a digest over both."""

    def __init__(self, doc: TrustPolicyDoc, base: Path, source: str = "<inline>") -> None:
        self.doc = doc
        self.source = source
        self.identities = {i.name: i for i in doc.spec.identities}
        self.material: dict[
            str, bytes
        ] = {}  # identity name -> public key PEM / roots PEM / trusted root JSON
        h = hashlib.sha256(json.dumps(doc.model_dump(by_alias=True, mode="json"), sort_keys=True).encode())
        for ident in doc.spec.identities:
            data = self._read_material(ident, base)
            self.material[ident.name] = data
            h.update(ident.name.encode() + b"\0" + hashlib.sha256(data).digest())
        # Covers the document and every key, root and trusted root it names: any change invalidates caches.
        self.digest = "sha256:" + h.hexdigest()

    @staticmethod
    def _read(base: Path, p: str, what: str) -> bytes:
        path = Path(p) if Path(p).is_absolute() else base / p
        try:
            return path.read_bytes()
        except OSError as e:
            raise TrustPolicyError(f"{what} {path}: {e.strerror or e}") from e

    def _read_material(self, ident: Identity, base: Path) -> bytes:
        if ident.keyless is not None:
            data = self._read(base, ident.keyless.trusted_root, f"identity {ident.name!r}: trustedRoot")
            pin = ident.keyless.trusted_root_sha256
            if pin is not None and hashlib.sha256(data).hexdigest() != pin.removeprefix("sha256:").lower():
                raise TrustPolicyError(
                    f"identity {ident.name!r}: trustedRoot {ident.keyless.trusted_root} does not match trustedRootSha256"
                )
            return data
        if ident.certificate is not None:
            return b"".join(
                self._read(base, r, f"identity {ident.name!r}: certificate root")
                for r in ident.certificate.roots
            )
        if ident.public_key_pem is not None:
            return ident.public_key_pem.encode()
        assert ident.public_key is not None
        return self._read(base, ident.public_key, f"identity {ident.name!r}: publicKey")

    def allowed(self, identity: str, digest: str, uri: str, cluster: dict[str, Any] | None) -> bool:
        """Whether `identity` may sign the model (digest, uri) for a cluster (its `cluster` CEL view)."""
        for rule in self.doc.spec.rules:
            if identity not in rule.identities:
                continue
            if not any(_model_matches(p, digest, uri) for p in rule.models):
                continue
            if cluster is not None:
                if rule.cluster_types and cluster.get("type") not in rule.cluster_types:
                    continue
                if rule.jurisdictions:
                    have = {cluster.get("jurisdiction", "")} | set(cluster.get("jurisdictions") or [])
                    if not have & set(rule.jurisdictions):
                        continue
            elif rule.cluster_types or rule.jurisdictions:
                continue  # a scoped rule never applies when the cluster is unknown
            return True
        return False


def _model_matches(pattern: str, digest: str, uri: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("sha256:"):
        return pattern.lower() == digest.lower()
    if pattern.endswith("*"):
        return bool(uri) and uri.startswith(pattern[:-1])
    return pattern == uri


def load_trust_policy(path: str | Path) -> TrustPolicy:
    p = Path(path)
    try:
        docs = [d.data for d in parse_documents(p.read_text(encoding="utf-8"), str(p)) if d.data is not None]
    except OSError as e:
        raise TrustPolicyError(f"trust policy {p}: {e.strerror or e}") from e
    except InputError as e:
        raise TrustPolicyError(f"trust policy {p}: not YAML: {e.message}") from e
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "TrustPolicy"]
    if len(found) != 1:
        raise TrustPolicyError(
            f"trust policy {p}: expected exactly one kind: TrustPolicy document, found {len(found)}"
        )
    try:
        doc = TrustPolicyDoc.model_validate(found[0])
    except ValueError as e:
        raise TrustPolicyError(f"trust policy {p}: {e}") from e
    return TrustPolicy(doc, p.resolve().parent, str(p))
