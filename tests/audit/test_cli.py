"""The auditor commands end to end: keygen, query, residency, export / verify-bundle, consistency, witness."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from charter.audit import AuditUnavailable, open_sink
from typer.testing import CliRunner

from charter.cli import app

from .helpers import context, decision

runner = CliRunner()


def _run(*args: str, code: int = 0) -> str:
    r = runner.invoke(app, ["audit", *args])
    assert r.exit_code == code, r.output
    return r.output


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    out = json.loads(_run("keygen", "--out", str(tmp_path / "k")))
    key, pub = Path(out["private"]), Path(out["public"])
    db = tmp_path / "audit.db"
    sink = open_sink(str(db), str(key), checkpoint_every=8, publish=str(tmp_path / "published.jsonl"))
    for i in range(30):
        ns = "ml-team-a" if i % 2 else "ml-team-b"
        ds = "ds-eu" if i % 3 else "ds-us"
        ctx = context("eu-1", "DE") if i % 5 else context("us-1", "US")
        sink.append(decision(i, deny=i % 4 == 0, namespace=ns, dataset=ds, exception=i == 10), ctx)
    sink.close()
    return {"key": key, "pub": pub, "db": db, "dir": tmp_path}


def test_keygen_mode_and_refuses_overwrite(tmp_path: Path) -> None:
    _run("keygen", "--out", str(tmp_path))
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    assert (tmp_path / "audit.vkey").read_text().startswith("charter.local/audit+")
    _run("keygen", "--out", str(tmp_path), code=2)


def test_open_sink_without_key_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(AuditUnavailable, match="keygen"):
        open_sink(str(tmp_path / "a.db"), str(tmp_path / "nokey"))


def test_unwritable_store_is_unavailable(env: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(AuditUnavailable):
        open_sink(str(tmp_path / "adir"), str(env["key"]))


def test_query_filters_and_formats(env: dict[str, Path]) -> None:
    rows = json.loads(_run("query", "--db", str(env["db"]), "--decision", "deny", "--format", "json"))
    assert len(rows) == 8 and all(r["decision"] == "deny" for r in rows)
    assert rows[0]["index"] > rows[-1]["index"]
    rows = json.loads(
        _run("query", "--db", str(env["db"]), "--namespace", "ml-team-a", "--dataset", "ds-us",
             "--cluster", "eu-1", "--format", "json")
    )  # fmt: skip
    assert {(r["namespace"], tuple(r["datasets"]), r["cluster"]) for r in rows} == {
        ("ml-team-a", ("ds-us",), "eu-1")
    }
    assert (
        len(json.loads(_run("query", "--db", str(env["db"]), "--jurisdiction", "US", "--format", "json")))
        == 6
    )
    assert (
        len(json.loads(_run("query", "--db", str(env["db"]), "--policy", "gpu-quota", "--format", "json")))
        == 30
    )
    digest = "sha256:" + "cd" * 32
    assert (
        len(json.loads(_run("query", "--db", str(env["db"]), "--model-digest", digest, "--format", "json")))
        == 30
    )
    assert json.loads(_run("query", "--db", str(env["db"]), "--user", "mallory", "--format", "json")) == []
    assert (
        json.loads(_run("query", "--db", str(env["db"]), "--since", "2999-01-01", "--format", "json")) == []
    )
    assert (
        len(json.loads(_run("query", "--db", str(env["db"]), "--until", "2999-01-01", "--format", "json")))
        == 30
    )
    csv = _run("query", "--db", str(env["db"]), "--limit", "3", "--format", "csv")
    assert csv.splitlines()[0].startswith("index,record_id,time") and len(csv.splitlines()) == 4
    assert "trainer-29" in _run("query", "--db", str(env["db"]), "--limit", "1")
    _run("query", "--db", str(env["db"]), "--decision", "maybe", code=2)


def test_residency(env: dict[str, Path]) -> None:
    rows = json.loads(_run("residency", "--db", str(env["db"]), "--dataset", "ds-eu", "--format", "json"))
    assert {(r["cluster"], r["jurisdiction"]) for r in rows} == {("eu-1", "DE"), ("us-1", "US")}
    assert sum(r["records"] for r in rows) == 20
    assert any("exc-1 (approved by bob)" in e for r in rows for e in r["exceptions"])
    assert all(r["first"] <= r["last"] for r in rows)


@pytest.mark.parametrize("name", ["bundle", "bundle.tar.gz"])
def test_export_and_verify_bundle_without_database(env: dict[str, Path], name: str) -> None:
    out = env["dir"] / name
    _run(
        "export",
        "--db",
        str(env["db"]),
        "--public-key",
        str(env["pub"]),
        "--dataset",
        "ds-us",
        "--out",
        str(out),
    )
    moved = env["dir"] / "elsewhere" / name
    moved.parent.mkdir()
    shutil.move(out, moved)
    env["db"].unlink()  # no database from here on
    assert "OK: 10 records" in _run("verify-bundle", str(moved), "--public-key", str(env["pub"]))
    other = json.loads(_run("keygen", "--out", str(env["dir"] / "other")))
    r = _run("verify-bundle", str(moved), "--public-key", other["public"], code=1)
    assert "first bad index" in r


def test_tampered_bundle_fails(env: dict[str, Path]) -> None:
    out = env["dir"] / "b"
    _run("export", "--db", str(env["db"]), "--public-key", str(env["pub"]), "--out", str(out))
    env_file = sorted((out / "envelopes").iterdir())[3]
    index = int(env_file.name.split(".")[0])
    data = json.loads(env_file.read_bytes())
    data["signatures"][0]["sig"] = data["signatures"][0]["sig"][::-1]
    env_file.write_text(json.dumps(data))
    r = _run("verify-bundle", str(out), "--public-key", str(env["pub"]), code=1)
    assert f"first bad index {index}" in r
    m = json.loads((out / "manifest.json").read_text())
    m["records"][0]["envelope"] = "../../etc/passwd"
    (out / "manifest.json").write_text(json.dumps(m))
    _run("verify-bundle", str(out), "--public-key", str(env["pub"]), code=1)


def test_consistency_and_witness(env: dict[str, Path], tmp_path: Path) -> None:
    from charter.audit.publish import read_published

    notes = list(read_published(env["dir"] / "published.jsonl"))
    assert len(notes) == 4  # 8, 16, 24 and 30 at close
    for i, n in enumerate(notes):
        (tmp_path / f"cp{i}.txt").write_text(n)
    db = str(env["db"])
    pub = str(env["pub"])
    assert "OK: size 8 is a prefix of size 30" in _run(
        "consistency", "--db", db, "--old", str(tmp_path / "cp0.txt"), "--new", str(tmp_path / "cp3.txt"),
        "--public-key", pub, "--out", str(tmp_path / "proof.json"),
    )  # fmt: skip
    _run("consistency", "--proof", str(tmp_path / "proof.json"), "--old", str(tmp_path / "cp0.txt"),
         "--new", str(tmp_path / "cp3.txt"), "--public-key", pub)  # fmt: skip
    _run("consistency", "--proof", str(tmp_path / "proof.json"), "--old", str(tmp_path / "cp1.txt"),
         "--new", str(tmp_path / "cp3.txt"), "--public-key", pub, code=1)  # fmt: skip

    w = json.loads(_run("keygen", "--out", str(tmp_path / "w"), "--name", "witness"))
    state = tmp_path / "state"
    common = [
        "--log-key",
        pub,
        "--key",
        w["private"],
        "--name",
        "witness.test",
        "--state",
        str(state),
        "--db",
        db,
    ]
    out1 = _run("witness", str(tmp_path / "cp1.txt"), *common)
    from charter.audit.crypto import load_public_key, verify_cosignature

    assert verify_cosignature(out1, "witness.test", load_public_key(w["public"])) > 0
    _run("witness", str(tmp_path / "cp3.txt"), *common, "--out", str(tmp_path / "cosigned.txt"))
    r = _run("witness", str(tmp_path / "cp0.txt"), *common, code=1)  # rollback
    assert "rollback" in r
    # a fork: a checkpoint of the same size signed by the log key over another tree
    from charter.audit.crypto import Checkpoint, load_private_key, sign_checkpoint

    fork = sign_checkpoint(Checkpoint("charter.local/audit", 30, b"\x05" * 32), load_private_key(env["key"]))
    (tmp_path / "fork.txt").write_text(fork)
    assert "refusing to cosign" in _run("witness", str(tmp_path / "fork.txt"), *common, code=1)


def test_verify_with_published_checkpoints(env: dict[str, Path]) -> None:
    out = _run("verify", "--db", str(env["db"]), "--public-key", str(env["pub"]),
               "--published", str(env["dir"] / "published.jsonl"))  # fmt: skip
    assert "OK: 30 records" in out and "4 published" in out
