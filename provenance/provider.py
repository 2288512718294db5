"""The `provenance` CEL variable: signature facts per model digest, from ModelAttestations.

A `ModelAttestation` names a model digest and its OpenSSF model-signing bundle:

```yaml
apiVersion: charter.dev/v1alpha1
kind: ModelAttestation
metadata: {name: fraud-bert-lora}
spec:
  model:
    uri: oci://registry.eu.example.com/models/fraud-bert-lora   # optional, for rules by URI
    digest: sha256:3c2b...                                       # the digest workloads pin
  bundle:
    path: signatures/fraud-bert-lora.sig    # relative to this file; or
    # json: {...}                           # the bundle inline (a ConfigMap in the cluster)
```

`ModelAttestationProvider(trust, attestations, cluster)` verifies every attestation once,
when it is built (session load or webhook reload), into a `VerificationCache` keyed by
(model digest, bundle digest, trust-policy digest); evaluating a workload is then dict
lookups only. The provider never raises: every problem is an `errors` entry, and
`verified` is true only when the bundle verified, signs exactly this digest, and the
trust policy lets its signer sign this model on this cluster.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.engine.documents import parse_documents
from charter.engine.errors import InputError

from .trust import TrustPolicy
from .verifier import Verification, verify_bundle

ATTESTATION_KIND = "ModelAttestation"
API_VERSION = "charter.dev/v1alpha1"


@dataclass(frozen=True)
class Attestation:
    digest: str
    uri: str
    bundle: bytes
    source: str
    error: str = ""

    @property
    def bundle_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.bundle).hexdigest()


def attestation_from_document(data: Any, base: Path | None, source: str) -> Attestation | None:
    """An Attestation from a `kind: ModelAttestation` document, or None for other documents."""
    if (
        not isinstance(data, dict)
        or data.get("kind") != ATTESTATION_KIND
        or data.get("apiVersion") != API_VERSION
    ):
        return None
    spec: dict[str, Any] = data["spec"] if isinstance(data.get("spec"), dict) else {}
    model: dict[str, Any] = spec["model"] if isinstance(spec.get("model"), dict) else {}
    digest = str(model.get("digest", "")).lower()
    uri = str(model.get("uri", ""))
    bundle: dict[str, Any] = spec["bundle"] if isinstance(spec.get("bundle"), dict) else {}
    if not digest.startswith("sha256:") or len(digest) != 71:
        return Attestation(
            digest, uri, b"", source, "ModelAttestation spec.model.digest must be sha256:<64 hex>"
        )
    try:
        if "json" in bundle:
            raw = json.dumps(bundle["json"]).encode()
        elif "path" in bundle:
            p = Path(str(bundle["path"]))
            raw = (p if p.is_absolute() or base is None else base / p).read_bytes()
        else:
            return Attestation(
                digest, uri, b"", source, "ModelAttestation spec.bundle needs `path` or `json`"
            )
    except OSError as e:
        return Attestation(digest, uri, b"", source, f"bundle {bundle.get('path')}: {e.strerror or e}")
    return Attestation(digest, uri, raw, source)


def load_attestations(paths: Iterable[str]) -> list[Attestation]:
    """Every ModelAttestation in these files or directories (other documents are ignored)."""
    out: list[Attestation] = []
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml", ".json")))
        elif p.is_file():
            files.append(p)
    for f in files:
        try:
            docs = [d.data for d in parse_documents(f.read_text(encoding="utf-8"), str(f))]
        except (OSError, InputError, UnicodeDecodeError):
            continue  # the context loader reports unreadable files (and refuses alias bombs)
        for d in docs:
            a = attestation_from_document(d, f.parent, str(f))
            if a is not None:
                out.append(a)
    return out


class VerificationCache:
    """Verification results keyed by (model digest, bundle digest, trust-policy digest)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._data: dict[tuple[str, str, str], Verification] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = self.misses = 0

    def get_or_verify(self, att: Attestation, trust: TrustPolicy) -> Verification:
        key = (att.digest, att.bundle_digest, trust.digest)
        hit = self._data.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        v = verify_bundle(att.bundle, trust)
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._data.pop(next(iter(self._data)))
            self._data[key] = v
        return v

    def __len__(self) -> int:
        return len(self._data)


DEFAULT_CACHE = VerificationCache()


def facts_for(
    v: Verification | None, att: Attestation | None, digest: str, uri: str, trust: TrustPolicy, cluster: Any
) -> dict[str, Any]:
    if att is None:
        return {
            "verified": False,
            "signer": "",
            "method": "",
            "digestMatch": False,
            "errors": [f"no ModelAttestation names {digest}"],
        }
    if att.error or v is None:
        return {"verified": False, "signer": "", "method": "", "digestMatch": False, "errors": [att.error]}
    errors = list(v.errors)
    match = v.verified and v.subject_digest == digest
    if v.verified and not match:
        errors.append(f"the signature covers {v.subject_digest}, not {digest}")
    allowed = v.verified and trust.allowed(v.identity, digest, uri or att.uri, cluster)
    if v.verified and not allowed:
        where = f" on a {cluster.get('type')} cluster in {cluster.get('jurisdiction')}" if cluster else ""
        errors.append(f"trust policy does not let {v.identity} ({v.signer}) sign this model{where}")
    return {
        "verified": bool(v.verified and match and allowed),
        "signer": v.signer,
        "method": v.method,
        "digestMatch": bool(match),
        "errors": errors,
    }


class ModelAttestationProvider:
    """A charter.engine ProvenanceProvider: `workload -> {"models": {digest: facts}}`."""

    def __init__(
        self,
        trust: TrustPolicy,
        attestations: Iterable[Attestation],
        cluster: dict[str, Any] | None = None,
        cache: VerificationCache | None = None,
    ) -> None:
        self.trust = trust
        self.cluster = cluster
        self.cache = cache if cache is not None else DEFAULT_CACHE
        self._by_digest: dict[str, list[Attestation]] = {}
        for a in attestations:
            self._by_digest.setdefault(a.digest, []).append(a)
        # Verify everything now (load/reload time), so admissions only look up.
        self._facts: dict[tuple[str, str], dict[str, Any]] = {}
        for atts in self._by_digest.values():
            for a in atts:
                if not a.error:
                    self.cache.get_or_verify(a, trust)

    def facts(self, digest: str, uri: str) -> dict[str, Any]:
        key = (digest, uri)
        got = self._facts.get(key)
        if got is not None:
            return got
        atts: list[Attestation | None] = list(self._by_digest.get(digest) or [None])
        best: dict[str, Any] = {}
        for a in atts:
            v = self.cache.get_or_verify(a, self.trust) if a is not None and not a.error else None
            f = facts_for(v, a, digest, uri, self.trust, self.cluster)
            if f["verified"] or not best:
                best = f
            if f["verified"]:
                break
        if len(self._facts) < 65536:  # bounded: URIs come from workloads
            self._facts[key] = best
        return best

    def __call__(self, workload: dict[str, Any]) -> dict[str, Any]:
        models: dict[str, Any] = {}
        try:
            for m in workload.get("models") or []:
                digest = str(m.get("digest") or "") if isinstance(m, dict) else ""
                if digest:
                    models[digest] = self.facts(digest.lower(), str(m.get("uri") or ""))
        except Exception as e:  # never raise into the engine: the policy denies on the error
            for m in workload.get("models") or []:
                if isinstance(m, dict) and m.get("digest"):
                    models.setdefault(
                        str(m["digest"]),
                        {
                            "verified": False,
                            "signer": "",
                            "method": "",
                            "digestMatch": False,
                            "errors": [f"provenance provider failed: {type(e).__name__}: {e}"],
                        },
                    )
        return {"models": models}
