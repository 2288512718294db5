from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from charter.audit.crypto import generate_keypair, load_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "provenance"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES / "audit").is_dir():
        raise RuntimeError(
            f"shared test vectors not found at {FIXTURES} (shared/ must sit beside the repository)"
        )
    return FIXTURES


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


@pytest.fixture
def signing_key(keypair: tuple[Path, Path]) -> Ed25519PrivateKey:
    return load_private_key(keypair[0])


# ------------------------------------------------------------------ PostgreSQL


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


def _ensure_postgres() -> Path:
    """initdb/pg_ctl, installing Debian's postgresql package when absent (idempotent)."""
    b = _pg_bin()
    if b is not None:
        return b
    if os.getuid() != 0:
        raise RuntimeError(
            "PostgreSQL (initdb/pg_ctl) is not installed and apt-get needs root: install 'postgresql'"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    b = _pg_bin()
    if b is None:
        raise RuntimeError("apt-get install postgresql did not provide initdb/pg_ctl")
    return b


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1, started in a temp dir for this test session."""
    bindir = _ensure_postgres()
    root = Path(tempfile.mkdtemp(prefix="charter-pg-"))
    data = root / "data"
    prefix: list[str] = []
    if os.getuid() == 0:  # initdb refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as e:
            raise RuntimeError("running as root and there is no 'postgres' user to run the server") from e
        os.chown(root, pw.pw_uid, pw.pw_gid)
        root.chmod(0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    r = subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"initdb failed: {r.stderr[-2000:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=50"
    r = subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if r.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {r.stderr[-2000:]} {log[-2000:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_db(postgres_url: str) -> str:
    """A fresh database per test."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name
