"""`charter audit ...`: the auditors' commands. Heavy imports happen inside each command."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    name="audit",
    help="The signed decision log: keys, auditor queries, verification, evidence bundles, witnessing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class OutFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _die(msg: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


DbOpt = Annotated[
    str, typer.Option("--db", help="sqlite:///PATH, PATH or postgresql://... (default .charter/audit.db)")
]
KeyOpt = Annotated[Path, typer.Option("--public-key", help="The log's Ed25519 public key (PEM).")]


@app.command()
def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for <name>.key (mode 0600) and <name>.pub.")
    ] = Path(".charter"),
    name: Annotated[str, typer.Option(help="File name stem.")] = "audit",
    origin: Annotated[str, typer.Option(help="Log origin, for the note verifier key (<name>.vkey).")] = "",
) -> None:
    """Write an Ed25519 key pair for signing records and checkpoints (or a witness's key)."""
    from .crypto import generate_keypair, keyid, load_public_key, vkey
    from .log import DEFAULT_ORIGIN

    if (out / f"{name}.key").exists():
        _die(f"{out / (name + '.key')} exists; refusing to overwrite a signing key")
    priv, pub = generate_keypair(out, name)
    pk = load_public_key(pub)
    (out / f"{name}.vkey").write_text(vkey(origin or DEFAULT_ORIGIN, pk) + "\n")
    typer.echo(json.dumps({"private": str(priv), "public": str(pub), "keyid": keyid(pk)}))


def _filters(**kw: object) -> object:
    from pydantic import ValidationError

    from .query import Filters

    try:
        return Filters.model_validate({k: v for k, v in kw.items() if v is not None})
    except ValidationError as e:
        _die(str(e))


NsOpt = Annotated[str | None, typer.Option("--namespace")]
ClOpt = Annotated[str | None, typer.Option("--cluster")]
JuOpt = Annotated[str | None, typer.Option("--jurisdiction")]
PoOpt = Annotated[str | None, typer.Option("--policy")]
DeOpt = Annotated[str | None, typer.Option("--decision", help="allow|deny|warn")]
DsOpt = Annotated[str | None, typer.Option("--dataset")]
MdOpt = Annotated[str | None, typer.Option("--model-digest")]
UsOpt = Annotated[str | None, typer.Option("--user")]
SiOpt = Annotated[str | None, typer.Option("--since", help="ISO 8601 time (inclusive)")]
UnOpt = Annotated[str | None, typer.Option("--until", help="ISO 8601 time (exclusive)")]
LiOpt = Annotated[int, typer.Option("--limit")]


@app.command("query")
def query_cmd(
    db: DbOpt = "",
    namespace: NsOpt = None,
    cluster: ClOpt = None,
    jurisdiction: JuOpt = None,
    policy: PoOpt = None,
    decision: DeOpt = None,
    dataset: DsOpt = None,
    model_digest: MdOpt = None,
    user: UsOpt = None,
    since: SiOpt = None,
    until: UnOpt = None,
    limit: LiOpt = 1000,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
) -> None:
    """Decision records matching every filter, newest first."""
    from .query import Filters, query
    from .store import StoreError, open_store

    f = _filters(
        namespace=namespace, cluster=cluster, jurisdiction=jurisdiction, policy=policy, decision=decision,
        dataset=dataset, model_digest=model_digest, user=user, since=since, until=until, limit=limit,
    )  # fmt: skip
    assert isinstance(f, Filters)
    try:
        rows = query(open_store(db), f)
    except (StoreError, ValueError) as e:
        _die(str(e))
    data = [r.model_dump() for r in rows]
    _emit(data, format)


def _emit(data: list[dict[str, object]], format: OutFormat) -> None:
    if format is OutFormat.json:
        typer.echo(json.dumps(data, indent=2))
        return
    if not data:
        if format is OutFormat.table:
            typer.echo("no records")
        return
    flat = [{k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in d.items()} for d in data]
    if format is OutFormat.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
        sys.stdout.write(buf.getvalue())
        return
    from rich.console import Console
    from rich.table import Table

    skip = {"record_id", "operation", "models", "policies"} if "record_id" in flat[0] else set()
    cols = [k for k in flat[0] if k not in skip]
    t = Table(show_lines=False)
    for k in cols:
        t.add_column(k, overflow="fold")
    for d in flat:
        t.add_row(*[str(d[k]) for k in cols])
    Console(highlight=False, width=None if sys.stdout.isatty() else 240).print(t)


@app.command()
def residency(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset id (as in the workload view).")],
    db: DbOpt = "",
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
) -> None:
    """Where the workloads that used a dataset ran: clusters, jurisdictions, decisions, times, exceptions."""
    from .query import residency as res
    from .store import StoreError, open_store

    try:
        rows = res(open_store(db), dataset)
    except StoreError as e:
        _die(str(e))
    _emit([r.model_dump() for r in rows], format)


def _report_failures(failures: list[object], what: str) -> None:
    from .verify import Failure

    fs = sorted((f for f in failures if isinstance(f, Failure)), key=lambda f: (f.index, f.kind))
    typer.echo(f"FAILED: {what}: first bad index {fs[0].index} ({fs[0].kind}): {fs[0].detail}", err=True)
    for f in fs[:20]:
        typer.echo(f"  {f}", err=True)
    if len(fs) > 20:
        typer.echo(f"  ... {len(fs) - 20} more", err=True)


@app.command()
def verify(
    public_key: KeyOpt,
    db: DbOpt = "",
    origin: Annotated[str | None, typer.Option(help="Pin the log origin (default: as stored).")] = None,
    published: Annotated[
        list[Path] | None, typer.Option("--published", help="Append-only checkpoint files auditors kept.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
) -> None:
    """Re-verify every signature and index, recompute the tree, check every checkpoint and their
    consistency. Exit 1 naming the first bad index and the kind of failure."""
    from .crypto import load_public_key
    from .publish import read_published
    from .store import StoreError
    from .verify import verify_log

    try:
        pub = load_public_key(public_key)
    except (OSError, ValueError) as e:
        _die(str(e))
    notes = [n for p in published or [] for n in read_published(p)]
    t0 = time.perf_counter()
    try:
        rep = verify_log(db, pub, origin=origin, published=notes, workers=workers)
    except StoreError as e:
        _die(str(e))
    dt = time.perf_counter() - t0
    if not rep.ok:
        _report_failures(list(rep.failures), f"{rep.records} records")
        raise typer.Exit(EXIT_FAILED)
    typer.echo(
        f"OK: {rep.records} records, tree size {rep.tree_size}, {rep.checkpoints} checkpoints"
        f"{f' + {len(notes)} published' if notes else ''}, root {rep.root.hex() or '-'} ({dt:.2f}s)"
    )


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Bundle directory, or a .tar.gz file.")],
    public_key: KeyOpt,
    db: DbOpt = "",
    namespace: NsOpt = None,
    cluster: ClOpt = None,
    jurisdiction: JuOpt = None,
    policy: PoOpt = None,
    decision: DeOpt = None,
    dataset: DsOpt = None,
    model_digest: MdOpt = None,
    user: UsOpt = None,
    since: SiOpt = None,
    until: UnOpt = None,
    limit: LiOpt = 100_000,
) -> None:
    """An evidence bundle: the selected envelopes, inclusion proofs against the latest checkpoint,
    the checkpoint, the public key and a manifest."""
    from .bundle import BundleError, export_bundle
    from .crypto import NoteError, load_public_key
    from .query import Filters
    from .store import StoreError, open_store

    f = _filters(
        namespace=namespace, cluster=cluster, jurisdiction=jurisdiction, policy=policy, decision=decision,
        dataset=dataset, model_digest=model_digest, user=user, since=since, until=until, limit=limit,
    )  # fmt: skip
    assert isinstance(f, Filters)
    try:
        m = export_bundle(open_store(db), load_public_key(public_key), f, out, datetime.now(UTC).isoformat())
    except (BundleError, StoreError, NoteError, OSError, ValueError) as e:
        _die(str(e), EXIT_FAILED)
    typer.echo(f"wrote {out}: {len(m.records)} records against checkpoint size {m.tree_size}")


@app.command("verify-bundle")
def verify_bundle_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory or .tar.gz")],
    public_key: KeyOpt,
) -> None:
    """Verify an evidence bundle with no database: signatures, indexes, inclusion, checkpoint."""
    from .bundle import BundleError, verify_bundle
    from .crypto import load_public_key

    try:
        manifest, failures = verify_bundle(bundle, load_public_key(public_key))
    except (BundleError, OSError, ValueError) as e:
        _die(str(e), EXIT_FAILED)
    if failures:
        _report_failures(list(failures), f"bundle {bundle}")
        raise typer.Exit(EXIT_FAILED)
    typer.echo(
        f"OK: {len(manifest.records)} records included in {manifest.origin} at size {manifest.tree_size}"
    )


def _load_cp(path: Path, origin: str | None, pub_path: Path) -> tuple[str, object]:
    from .crypto import NoteError, load_public_key, open_checkpoint, parse_checkpoint_body, split_note

    note = path.read_text()
    try:
        name = origin or parse_checkpoint_body(split_note(note)[0]).origin
        return note, open_checkpoint(note, name, load_public_key(pub_path))
    except (NoteError, ValueError, OSError) as e:
        _die(f"{path}: {e}", EXIT_FAILED)


@app.command()
def consistency(
    old: Annotated[Path, typer.Option("--old", help="The older checkpoint (signed note).")],
    new: Annotated[Path, typer.Option("--new", help="The newer checkpoint.")],
    public_key: KeyOpt,
    db: Annotated[str | None, typer.Option("--db", help="Compute the proof from this log.")] = None,
    proof: Annotated[
        Path | None, typer.Option("--proof", help="A consistency proof JSON (no database).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the proof as JSON.")] = None,
    origin: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Prove that the older checkpoint's tree is a prefix of the newer one's."""
    import base64

    from .bundle import read_proof_file
    from .crypto import Checkpoint
    from .merkle import consistency_proof, verify_consistency
    from .store import open_store

    _, a = _load_cp(old, origin, public_key)
    _, b = _load_cp(new, origin, public_key)
    assert isinstance(a, Checkpoint) and isinstance(b, Checkpoint)
    if a.origin != b.origin:
        _die("the checkpoints are from different logs", EXIT_FAILED)
    if proof is not None:
        hashes = read_proof_file(proof)
    elif db is not None:
        hashes = (
            consistency_proof(open_store(db).leaf_hashes(b.size), a.size, b.size) if a.size <= b.size else []
        )
    else:
        _die("give --db or --proof")
    if out is not None:
        out.write_text(
            json.dumps(
                {"size1": a.size, "size2": b.size, "hashes": [base64.b64encode(h).decode() for h in hashes]},
                indent=2,
            )
            + "\n"
        )
    if not verify_consistency(a.size, b.size, a.root, b.root, hashes):
        typer.echo(f"FAILED: checkpoint {a.size} is not a prefix of checkpoint {b.size}", err=True)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"OK: size {a.size} is a prefix of size {b.size}")


@app.command()
def witness(
    checkpoint: Annotated[Path, typer.Argument(help="The log's signed checkpoint to cosign.")],
    log_key: Annotated[Path, typer.Option("--log-key", help="The log's public key (PEM).")],
    key: Annotated[Path, typer.Option("--key", help="The witness's private key.")],
    name: Annotated[str, typer.Option("--name", help="The witness's name (its note key name).")],
    state: Annotated[Path, typer.Option("--state", help="Directory where the witness keeps what it saw.")],
    db: Annotated[str | None, typer.Option("--db", help="Fetch the consistency proof from this log.")] = None,
    proof: Annotated[
        Path | None, typer.Option("--proof", help="Consistency proof JSON from the last seen size.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the cosigned checkpoint here (default stdout).")
    ] = None,
    origin: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Countersign a checkpoint (C2SP tlog-cosignature/v1) after checking it is consistent with the
    last checkpoint this witness saw for the log. Never cosigns a fork or a rollback."""
    import hashlib

    from .bundle import read_proof_file
    from .crypto import Checkpoint, cosign, load_private_key
    from .merkle import consistency_proof, verify_consistency
    from .store import open_store

    note, cpo = _load_cp(checkpoint, origin, log_key)
    assert isinstance(cpo, Checkpoint)
    cp = cpo
    state.mkdir(parents=True, exist_ok=True)
    seen_file = state / (hashlib.sha256(cp.origin.encode()).hexdigest()[:16] + ".checkpoint")
    if seen_file.exists():
        _, lasto = _load_cp(seen_file, cp.origin, log_key)
        assert isinstance(lasto, Checkpoint)
        last = lasto
        if cp.size < last.size:
            _die(f"rollback: checkpoint size {cp.size} is older than the last seen {last.size}", EXIT_FAILED)
        if proof is not None:
            hashes = read_proof_file(proof)
        elif db is not None:
            hashes = consistency_proof(open_store(db).leaf_hashes(cp.size), last.size, cp.size)
        else:
            hashes = []
        if not verify_consistency(last.size, cp.size, last.root, cp.root, hashes):
            _die(
                f"not consistent with the last seen checkpoint (size {last.size}): refusing to cosign",
                EXIT_FAILED,
            )
    signed = cosign(note, name, load_private_key(key), int(time.time()))
    tmp = seen_file.with_suffix(".tmp")
    tmp.write_text(note)
    tmp.replace(seen_file)
    if out is not None:
        out.write_text(signed)
    else:
        sys.stdout.write(signed)
