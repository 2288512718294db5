"""Model provenance: verification MB/s of a generated model directory against `sha256sum` on the
same files in the same run, and the per-admission cost of a cached provenance lookup.

    python bench/provenance_verify.py [--size-mb 1024] [--files 4] [--repeats 3] [--lookups 100000] [--json FILE]

The model directory is written to a temp dir (random bytes) and deleted afterwards. It is signed
once per hash algorithm with a throw-away ECDSA P-256 key (model-signing), then verified with
`charter.provenance.verify_model` (signature + trust policy + re-hash of every file). Both sides
read from the page cache (the files were just written), so this measures hashing, not the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _write_model(root: Path, size_mb: int, files: int) -> int:
    root.mkdir(parents=True)
    block = os.urandom(16 << 20)
    per_file = (size_mb << 20) // files
    total = 0
    for i in range(files):
        with open(root / f"model-{i + 1:05d}-of-{files:05d}.safetensors", "wb") as f:
            left = per_file
            while left > 0:
                n = min(left, len(block))
                # vary each block so files do not repeat byte for byte
                f.write(n.to_bytes(8, "little") + os.urandom(8) + block[16:n])
                left -= n
            total += per_file
    (root / "config.json").write_text(json.dumps({"architectures": ["Bench"], "hidden_size": 4096}))
    return total + (root / "config.json").stat().st_size


def _median_time(fn: Any, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lookups", type=int, default=100_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from charter.provenance import Attestation, ModelAttestationProvider, VerificationCache, load_trust_policy
    from charter.provenance.verifier import verify_bundle, verify_model
    from model_signing import hashing, signing

    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} vCPU, Python {platform.python_version()}",
        "sizeMB": args.size_mb,
        "files": args.files,
        "runs": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="charter-provenance-bench-"))
    try:
        model = tmp / "bench-model"
        t0 = time.perf_counter()
        nbytes = _write_model(model, args.size_mb, args.files)
        print(
            f"wrote {nbytes / 1e6:,.0f} MB in {args.files + 1} files in {time.perf_counter() - t0:.1f} s ({model})"
        )
        mb = nbytes / 1e6

        key = ec.generate_private_key(ec.SECP256R1())
        (tmp / "k.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tmp / "k.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (tmp / "trust.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "charter.dev/v1alpha1",
                    "kind": "TrustPolicy",
                    "spec": {
                        "identities": [{"name": "bench", "publicKey": "k.pub"}],
                        "rules": [{"identities": ["bench"]}],
                    },
                }
            )
        )
        trust = load_trust_policy(tmp / "trust.yaml")

        files = sorted(str(p) for p in model.iterdir())
        sha_t, sha_all = _median_time(
            lambda: subprocess.run(["sha256sum", *files], check=True, capture_output=True), args.repeats
        )
        results["sha256sum"] = {"seconds": sha_t, "MBps": mb / sha_t, "all": sha_all}
        print(f"sha256sum (one process, sequential): {sha_t:.3f} s  {mb / sha_t:,.0f} MB/s")

        def _hashlib_all() -> None:
            for f in files:
                with open(f, "rb") as fh:
                    hashlib.file_digest(fh, "sha256")

        hl_t, hl_all = _median_time(_hashlib_all, args.repeats)
        results["hashlibSha256"] = {"seconds": hl_t, "MBps": mb / hl_t, "all": hl_all}
        print(f"hashlib.sha256 (OpenSSL, one thread, sequential): {hl_t:.3f} s  {mb / hl_t:,.0f} MB/s")

        for algo in ("sha256", "blake3"):
            sig = tmp / f"model.{algo}.sig"
            t0 = time.perf_counter()
            signing.Config().set_hashing_config(
                hashing.Config().use_file_serialization(hashing_algorithm=algo)
            ).use_elliptic_key_signer(private_key=tmp / "k.key").sign(model, sig)
            sign_t = time.perf_counter() - t0
            raw = sig.read_bytes()
            check = verify_model(model, raw, trust)
            assert check.verified, check.errors
            ver_t, ver_all = _median_time(lambda raw=raw: verify_model(model, raw, trust), args.repeats)
            bundle_t, _ = _median_time(lambda raw=raw: verify_bundle(raw, trust), 50)
            results["runs"][algo] = {
                "signSeconds": sign_t,
                "verifySeconds": ver_t,
                "verifyMBps": mb / ver_t,
                "verifyAll": ver_all,
                "vsSha256sum": sha_t / ver_t,
                "vsHashlib": hl_t / ver_t,
                "bundleOnlyMs": bundle_t * 1000,
            }
            print(
                f"charter verify_model {algo}: {ver_t:.3f} s  {mb / ver_t:,.0f} MB/s  "
                f"({sha_t / ver_t:.2f}x sha256sum, {hl_t / ver_t:.2f}x hashlib); sign {sign_t:.2f} s; signature only {bundle_t * 1000:.2f} ms"
            )

        # Admission: the provider was built (and verified) at load time; each admission looks up.
        raw = (tmp / "model.sha256.sig").read_bytes()
        digest = verify_bundle(raw, trust).subject_digest
        cache = VerificationCache()
        t0 = time.perf_counter()
        provider = ModelAttestationProvider(
            trust,
            [Attestation(digest, "s3://bench/model/", raw, "bench")],
            {"type": "onprem", "jurisdiction": "DE"},
            cache,
        )
        build_ms = (time.perf_counter() - t0) * 1000
        workload = {
            "models": [
                {
                    "uri": "s3://bench/model/",
                    "digest": digest,
                    "source": "annotation",
                    "scheme": "s3",
                    "name": "",
                }
            ]
        }
        assert provider(workload)["models"][digest]["verified"]
        t0 = time.perf_counter()
        for _ in range(args.lookups):
            provider(workload)
        per_us = (time.perf_counter() - t0) / args.lookups * 1e6
        results["admission"] = {
            "providerBuildMs": build_ms,
            "cachedLookupUs": per_us,
            "lookups": args.lookups,
            "verificationsOnHotPath": cache.misses - 1,
        }
        print(
            f"provider build (verifies 1 attestation): {build_ms:.2f} ms; cached lookup per admission: "
            f"{per_us:.2f} us over {args.lookups:,} lookups; verifications on the hot path: {cache.misses - 1}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
