"""`charter serve --audit`: every admission decision is a signed record in a log that verifies."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import CA, CHARTER, EXAMPLE_ARGS, REPO, Server, admission_review


@pytest.mark.parametrize("spool", ["auto", "off"])
def test_served_decisions_are_audited_and_verify(ca: CA, tmp_path: Path, spool: str) -> None:
    """auto: durable in the spool beside the log before answering, signed by the applier;
    off: signed and committed before answering."""
    keygen = subprocess.run(
        [CHARTER, "audit", "keygen", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert keygen.returncode == 0, keygen.stderr
    db = tmp_path / "audit.db"
    s = Server(
        tmp_path,
        ca,
        [
            *EXAMPLE_ARGS,
            "--audit",
            str(db),
            "--audit-key",
            str(tmp_path / "audit.key"),
            "--audit-spool",
            spool,
        ],
    )
    docs = [
        d
        for d in yaml.safe_load_all((REPO / "examples/workloads/compliant-fraud-batch.yaml").read_text())
        if d
    ]
    try:
        s.wait_ready()
        answers = [
            s.review(admission_review(doc, uid=f"audit-{i}", dry_run=i == 0))
            for i, doc in enumerate(docs[:5])
        ]
        metrics = s.metrics()
        assert ("charter_audit_applier_up 1.0" in metrics) == (spool == "auto")
        assert ("charter_audit_spool_backlog_bytes" in metrics) == (spool == "auto")
    finally:
        assert s.stop() == 0  # a clean shutdown writes the final checkpoint
    assert [a["uid"] for a in answers] == [f"audit-{i}" for i in range(len(answers))]
    assert (tmp_path / "audit.db.spool" / "spool.id").exists() == (spool == "auto")
    verify = subprocess.run(
        [CHARTER, "audit", "verify", "--db", str(db), "--public-key", str(tmp_path / "audit.pub")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"{len(answers)} records" in verify.stdout
    q = subprocess.run(
        [CHARTER, "audit", "query", "--db", str(db), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    records = json.loads(q.stdout)
    rows = records if isinstance(records, list) else records.get("records", [])
    assert len(rows) == len(answers) and {r["user"] for r in rows} == {"amelie.roux"}
    # The signed statements carry the request identity, and mark the dry run.
    with sqlite3.connect(db) as conn:
        envelopes = [json.loads(e) for (e,) in conn.execute("SELECT envelope FROM records ORDER BY idx")]
    requests = [json.loads(base64.b64decode(e["payload"]))["predicate"]["request"] for e in envelopes]
    assert {r["uid"] for r in requests} == {a["uid"] for a in answers}
    assert [r["uid"] for r in requests if r["dryRun"]] == ["audit-0"]
