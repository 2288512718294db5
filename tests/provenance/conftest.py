"""Shared fixtures: the provenance fixture tree, trust policies, and no network at all."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

FIX = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "provenance"
TINY_DIGEST = "sha256:3c2b0044943ed0d77dcc5442561bab1b6a7096738bce9d22bc9a461e014e8ed8"
KEYLESS_DIR = FIX / "keyless" / "model-transparency-v1.1.0-sigstore"
IBM = {
    "issuer": "https://sigstore.verify.ibm.com/oauth2",
    "identity": "stefanb@us.ibm.com",
    "trustedRoot": str(FIX / "keyless" / "trusted_root.production.json"),
}

if not FIX.is_dir():  # pragma: no cover - shared/ must sit beside the checkout, as in CI
    raise RuntimeError(f"provenance fixtures not found at {FIX}: shared/ must be beside the repository")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Sigstore must never reach out: any connect or DNS lookup fails the test."""
    attempts: list[Any] = []

    def deny(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is blocked in provenance tests")

    monkeypatch.setattr(socket.socket, "connect", deny)
    monkeypatch.setattr(socket, "getaddrinfo", deny)
    monkeypatch.setattr(socket, "create_connection", deny)
    yield attempts
    assert not attempts, f"network was attempted: {attempts}"


def all_identities() -> list[dict[str, Any]]:
    return [
        {"name": "p256", "publicKey": str(FIX / "keys" / "test-ecdsa-p256.pub")},
        {"name": "p384", "publicKey": str(FIX / "keys" / "test-ecdsa-p384.pub")},
        {
            "name": "test-ca",
            "certificate": {
                "roots": [str(FIX / "pki" / "test-ca-root.crt")],
                "sans": ["model-signer@test.invalid"],
            },
        },
        {"name": "ibm", "keyless": dict(IBM)},
    ]


@pytest.fixture
def make_trust(tmp_path: Path) -> Callable[..., Path]:
    """Write a TrustPolicy; default: every fixture identity may sign every model anywhere."""
    n = [0]

    def make(
        identities: list[dict[str, Any]] | None = None, rules: list[dict[str, Any]] | None = None
    ) -> Path:
        ids = identities if identities is not None else all_identities()
        doc = {
            "apiVersion": "charter.dev/v1alpha1",
            "kind": "TrustPolicy",
            "metadata": {"name": "test"},
            "spec": {"identities": ids, "rules": rules or [{"identities": [i["name"] for i in ids]}]},
        }
        n[0] += 1
        p = tmp_path / f"trust-{n[0]}.yaml"
        p.write_text(yaml.safe_dump(doc))
        return p

    return make
