"""Evidence bundles: selected envelopes with inclusion proofs against the latest checkpoint,
the checkpoint, the public key and a manifest. `verify_bundle` needs no database."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from .crypto import NoteError, keyid, load_public_key, open_checkpoint, public_pem
from .merkle import Tree, leaf_hash, verify_inclusion
from .query import Filters, query
from .store import Store
from .verify import Failure, check_record

BUNDLE_VERSION = "charter.dev/audit-bundle/v1"


class BundleRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    index: int = Field(ge=0)
    record_id: str = Field(alias="recordId")
    envelope: str  # path inside the bundle
    envelope_sha256: str = Field(alias="envelopeSha256", pattern="^[0-9a-f]{64}$")
    inclusion_proof: list[str] = Field(alias="inclusionProof")  # base64 hashes, RFC 9162 order


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    version: str = BUNDLE_VERSION
    origin: str
    created: str
    tree_size: int = Field(alias="treeSize", ge=0)
    checkpoint: str = "checkpoint.txt"
    public_key: str = Field(default="public-key.pem", alias="publicKey")
    keyid: str
    filters: dict[str, object] = {}
    records: list[BundleRecord]


class BundleError(Exception):
    pass


def export_bundle(store: Store, pub: Ed25519PublicKey, filters: Filters, out: Path, created: str) -> Manifest:
    meta = store.meta()
    cps = store.checkpoints()
    if not cps:
        raise BundleError("the log has no checkpoint yet")
    size, note = cps[-1]
    open_checkpoint(note, meta["origin"], pub)  # never export against a checkpoint that does not verify
    rows = [r for r in query(store, filters) if r.index < size]
    tree = Tree(store.leaf_hashes(size))
    envs = store.envelopes([r.index for r in rows])
    work = out if not str(out).endswith((".tar.gz", ".tgz")) else Path(tempfile.mkdtemp())
    (work / "envelopes").mkdir(parents=True, exist_ok=True)
    records = []
    for r in sorted(rows, key=lambda r: r.index):
        env = envs[r.index]
        name = f"envelopes/{r.index:012d}.dsse.json"
        (work / name).write_bytes(env)
        proof = tree.inclusion_proof(r.index, size)
        records.append(
            BundleRecord(
                index=r.index,
                record_id=r.record_id,
                envelope=name,
                envelope_sha256=hashlib.sha256(env).hexdigest(),
                inclusion_proof=[base64.b64encode(h).decode() for h in proof],
            )
        )
    (work / "checkpoint.txt").write_text(note)
    (work / "public-key.pem").write_bytes(public_pem(pub))
    manifest = Manifest(
        origin=meta["origin"],
        created=created,
        tree_size=size,
        keyid=keyid(pub),
        filters=filters.model_dump(exclude_none=True),
        records=records,
    )
    (work / "manifest.json").write_text(manifest.model_dump_json(by_alias=True, indent=2) + "\n")
    if work != out:
        with tarfile.open(out, "w:gz") as tar:
            tar.add(work, arcname=".")
    return manifest


def verify_bundle(bundle: Path, pub: Ed25519PublicKey | None = None) -> tuple[Manifest, list[Failure]]:
    """Verify every record's signature, signed index and inclusion proof against the bundle's
    checkpoint, and the checkpoint's signature. `pub` is the auditor's trusted key; the key in
    the bundle is used only when none is given, and must match it when one is."""
    if bundle.is_file():
        tmp = Path(tempfile.mkdtemp())
        with tarfile.open(bundle, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        bundle = tmp
    try:
        manifest = Manifest.model_validate_json((bundle / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"manifest: {e}") from e
    root_dir = bundle.resolve()

    def inside(name: str) -> Path:
        p = (root_dir / name).resolve()
        if not p.is_relative_to(root_dir):
            raise BundleError(f"{name}: path leaves the bundle")
        return p

    bundled = load_public_key(inside(manifest.public_key))
    key = pub or bundled
    failures: list[Failure] = []
    if pub is not None and keyid(bundled) != keyid(pub):
        failures.append(Failure(0, "public-key", "the bundle's public key is not the one given"))
    try:
        cp = open_checkpoint(inside(manifest.checkpoint).read_text(), manifest.origin, key)
    except (NoteError, OSError) as e:
        return manifest, [*failures, Failure(max(manifest.tree_size - 1, 0), "checkpoint-signature", str(e))]
    if cp.size != manifest.tree_size:
        failures.append(
            Failure(cp.size, "checkpoint-size", "manifest and checkpoint disagree on the tree size")
        )
    for r in manifest.records:
        try:
            env = inside(r.envelope).read_bytes()
        except OSError as e:
            failures.append(Failure(r.index, "missing", str(e)))
            continue
        if hashlib.sha256(env).hexdigest() != r.envelope_sha256:
            failures.append(Failure(r.index, "manifest-hash", "envelope does not match the manifest"))
        f = check_record(r.index, env, key)
        if f is not None:
            failures.append(f)
        try:
            proof = [base64.b64decode(h, validate=True) for h in r.inclusion_proof]
        except ValueError:
            proof = []
        if not verify_inclusion(leaf_hash(env), r.index, cp.size, proof, cp.root):
            failures.append(Failure(r.index, "inclusion", "not included in the checkpointed tree"))
    return manifest, failures


def read_proof_file(path: Path) -> list[bytes]:
    data = json.loads(path.read_text())
    return [base64.b64decode(h, validate=True) for h in data["hashes"]]
