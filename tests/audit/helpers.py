"""Decisions to record, built the way the engine builds them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter.audit.sink import DecisionContext
from charter.engine import attributes_for_object
from charter.engine.models import ClusterProfile
from charter.engine.normalize import normalize
from charter.engine.results import Decision, ExceptionUse, Finding, PolicyOutcome

PSET = "sha256:" + "ab" * 32


def cluster(name: str = "eu-1", jurisdiction: str = "DE") -> ClusterProfile:
    return ClusterProfile.model_validate(
        {
            "apiVersion": "charter.dev/v1alpha1",
            "kind": "ClusterProfile",
            "metadata": {"name": name},
            "spec": {"type": "cloud", "provider": "aws", "region": "eu-central-1", "jurisdiction": jurisdiction,
                     "jurisdictions": ["EU"]},
        }
    )  # fmt: skip


def pod(i: int, namespace: str = "ml-team-a", dataset: str = "ds-eu-claims") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"trainer-{i}",
            "namespace": namespace,
            "annotations": {
                "charter.dev/datasets": dataset,
                "charter.dev/model-uri": "hf://acme/llama-ft",
                "charter.dev/model-digest": "sha256:" + "cd" * 32,
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "t",
                    "image": "registry.example/trainer:1",
                    "resources": {"limits": {"nvidia.com/gpu": "2"}},
                }
            ]
        },
    }


def decision(
    i: int = 0, *, deny: bool = False, namespace: str = "ml-team-a", dataset: str = "ds-eu-claims",
    exception: bool = False, user: str = "alice",
) -> Decision:  # fmt: skip
    obj = pod(i, namespace, dataset)
    attrs = attributes_for_object(obj, user_info={"username": user, "groups": ["ml", "system:authenticated"]})
    findings = []
    if deny or exception:
        ex = (
            ExceptionUse("exc-1", "TICKET-7", "bob", "migration", datetime(2027, 1, 1, tzinfo=UTC), "ex.yaml")
            if exception
            else None
        )
        findings.append(
            Finding("residency-dataset", "", "violation", ("Deny",), f"dataset {dataset} not allowed here", "Forbidden",
                    exception=ex)
        )  # fmt: skip
    outcomes = [
        PolicyOutcome("residency-dataset", "Policy", "residency", "high", True, "Fail", findings=findings,
                      audit_annotations={"dataset": dataset}),
        PolicyOutcome("gpu-quota", "Policy", "accelerators", "medium", True, "Fail"),
        PolicyOutcome("unmatched", "Policy", "general", "low", False, "Fail"),
    ]  # fmt: skip
    return Decision(attrs, outcomes, normalize(obj))


def context(name: str = "eu-1", jurisdiction: str = "DE") -> DecisionContext:
    return DecisionContext(PSET, cluster(name, jurisdiction), "admission")


def kill_after(p: subprocess.Popen[str], lines: int) -> list[str]:
    """Read `lines` acknowledged record ids from a writer child's stdout, kill -9 it mid-stream,
    and return every id it acknowledged (those read, then whatever was already in the pipe)."""
    assert p.stdout is not None
    returned: list[str] = []
    for line in p.stdout:
        returned.append(line.strip())
        if len(returned) >= lines:
            break
    os.kill(p.pid, signal.SIGKILL)
    returned.extend(x.strip() for x in p.stdout.read().splitlines() if x.strip())
    p.wait()
    return returned


def sql(db: Path, *stmts: tuple[str, tuple[object, ...]]) -> None:
    """Edit an audit database behind the log's back, as a tamperer would."""
    c = sqlite3.connect(db)
    for s, p in stmts:
        c.execute(s, p)
    c.commit()
    c.close()


def mutate(env: bytearray, pos: int, bit: int, op: str) -> None:
    """One edit of an envelope at `pos`: flip `bit`, insert a JSON-significant byte, or delete one."""
    if op == "flip":
        env[pos] ^= 1 << bit
    elif op == "insert":
        env[pos:pos] = b'" \\=A\n'[bit % 6 : bit % 6 + 1]
    elif op == "delete":
        del env[pos]
