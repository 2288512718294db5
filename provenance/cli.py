"""`charter model verify` and `charter model inspect`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Model provenance: verify and inspect model signatures offline.", no_args_is_help=True)


def _out(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, indent=2, sort_keys=True))
        return
    for k, v in obj.items():
        if isinstance(v, list):
            typer.echo(f"{k}:")
            for x in v:
                typer.echo(f"  - {x}")
        else:
            typer.echo(f"{k}: {v}")


@app.command()
def verify(
    model_dir: Annotated[Path, typer.Argument(help="The model directory to hash and verify.")],
    signature: Annotated[Path, typer.Option("--signature", "-s", help="The model-signing bundle (.sig).")],
    trust_policy: Annotated[Path, typer.Option("--trust-policy", help="A kind: TrustPolicy file.")],
    digest: Annotated[
        str | None,
        typer.Option("--digest", help="Also require the signature to cover this sha256:... digest."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Hash MODEL_DIR and verify it against the signature and the trust policy (exit 0 verified, 1 not, 2 bad input)."""
    from .trust import TrustPolicyError, load_trust_policy
    from .verifier import verify_model

    try:
        trust = load_trust_policy(trust_policy)
        raw = signature.read_bytes()
    except TrustPolicyError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    except OSError as e:
        typer.echo(f"error: signature {signature}: {e.strerror or e}", err=True)
        raise typer.Exit(2) from None
    if not model_dir.is_dir():
        typer.echo(f"error: model directory {model_dir} does not exist", err=True)
        raise typer.Exit(2)
    v = verify_model(model_dir, raw, trust)
    if v.verified and digest is not None and digest.lower() != v.subject_digest:
        v.verified = False
        v.errors.append(f"the signature covers {v.subject_digest}, not {digest}")
    result = {
        "verdict": "VERIFIED" if v.verified else "NOT VERIFIED",
        "model": str(model_dir),
        "digest": v.subject_digest,
        "method": v.method,
        "signer": v.signer,
        "identity": v.identity,
        "files": v.files,
        "ignoredPaths": v.ignored_paths,
        "reasons": v.errors,
    }
    _out(result, as_json)
    raise typer.Exit(0 if v.verified else 1)


@app.command()
def inspect(
    bundle: Annotated[Path, typer.Argument(help="A model-signing bundle (.sig).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a bundle's signer, method, digests and time. Nothing is verified."""
    from .verifier import VerificationFailure, _b64, _names, bundle_method, parse_bundle

    try:
        data = parse_bundle(bundle.read_bytes())
        method = bundle_method(data)
        env = data["dsseEnvelope"]
        stmt = json.loads(_b64(env.get("payload", "")))
    except OSError as e:
        typer.echo(f"error: {bundle}: {e.strerror or e}", err=True)
        raise typer.Exit(2) from None
    except (VerificationFailure, ValueError) as e:
        typer.echo(f"error: {bundle}: {e}", err=True)
        raise typer.Exit(2) from None
    from cryptography import x509

    vm = data["verificationMaterial"]
    signer, time = "", ""
    if method == "key":
        signer = f"public key sha256 hint {vm['publicKey'].get('hint', '') or '(none)'}"
    else:
        raw = (
            vm["x509CertificateChain"]["certificates"][0]["rawBytes"]
            if method == "certificate"
            else vm["certificate"]["rawBytes"]
        )
        cert = x509.load_der_x509_certificate(base64.b64decode(raw))
        sans, subject = _names(cert)
        signer = ", ".join(sans) or subject
        time = f"certificate valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()}"
    for entry in vm.get("tlogEntries") or []:
        if entry.get("integratedTime"):
            from datetime import UTC, datetime

            time = (
                datetime.fromtimestamp(int(entry["integratedTime"]), UTC).isoformat()
                + " (Rekor integrated time)"
            )
    subj = (stmt.get("subject") or [{}])[0]
    pred = stmt.get("predicate") or {}
    out = {
        "method": method,
        "signer": signer,
        "time": time or "none recorded (key and certificate bundles carry no trusted time)",
        "model": subj.get("name", ""),
        "digest": "sha256:" + str((subj.get("digest") or {}).get("sha256", "")),
        "predicateType": stmt.get("predicateType", ""),
        "serialization": pred.get("serialization", {}),
        "files": [
            f"{r.get('name')} {r.get('algorithm')}:{r.get('digest')}" for r in pred.get("resources") or []
        ],
        "note": "inspect does not verify anything; use `charter model verify`",
    }
    _out(out, as_json)
