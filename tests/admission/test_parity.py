"""Parity: every example manifest as an AdmissionReview gets the verdicts `charter check` gives.

Three views of one document must agree: the live webhook's answer, an in-process Engine
evaluation through the offline path (`attributes_for_object`), and `charter check --format json`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from charter.admission.response import annotation_key, response_for
from charter.engine import attributes_for_object
from charter.engine.documents import Document, read_documents
from charter.engine.loader import classify
from charter.engine.normalize import RELATED_KINDS as RELATED

from charter._internal.session import load_session

from .conftest import CHARTER, EXAMPLE_ARGS, REPO, Server, admission_review
from .tls import CA


def _canon(value: Any) -> Any:
    """Text as the sorted bag of its words.

    cel-cpp iterates CEL maps in a per-process order, so a policy that joins the keys of a
    map (residency-dataset-placement's `variables.ds.filter(...)`) words the same verdict with
    its parts in a different order in another process. Verdicts must agree exactly, and
    texts word for word up to that order.
    """
    if isinstance(value, str):
        return sorted(w for w in re.split(r"[\s,;()]+", value) if w)
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return value


def _inputs() -> list[str]:
    paths = [str(REPO / "examples" / "workloads")]
    paths += [str(p) for p in sorted((REPO / "policies").glob("*/tests")) if any(p.rglob("*.yaml"))]
    return paths


def _resources(paths: list[str]) -> list[Document]:
    read = read_documents(paths)
    return [
        d
        for d in read.documents
        if classify(d) == "resource"
        and isinstance(d.data.get("apiVersion"), str)
        and isinstance(d.data.get("kind"), str)
        and d.data.get("kind") not in ("PolicyTest",)
    ]


@pytest.fixture(scope="module")
def related_context(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DRA claims and classes from the inputs, given to the webhook as context (the apiserver
    would have them in the cluster; `charter check` takes them from its inputs)."""
    docs = [d.data for d in _resources(_inputs()) if d.data.get("kind") in RELATED]
    path = tmp_path_factory.mktemp("related") / "related.yaml"
    path.write_text(yaml.safe_dump_all(docs) if docs else "")
    return str(path)


@pytest.fixture(scope="module")
def parity_server(ca: CA, tmp_path_factory: pytest.TempPathFactory, related_context: str) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("parity"), ca, [*EXAMPLE_ARGS, "--context", related_context])
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


REPORT_ARGS = ["--format", "json", "--fail-on", "never", "--no-progress"]


def _check_report(related_context: str) -> dict[str, Any]:
    out = subprocess.run(
        [CHARTER, "check", *_inputs(), *EXAMPLE_ARGS[:4], "--context", related_context, *REPORT_ARGS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode in (0, 3), out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_every_example_gets_the_verdicts_of_charter_check(
    parity_server: Server, related_context: str
) -> None:
    session = load_session([], cluster=EXAMPLE_ARGS[1], context=[EXAMPLE_ARGS[3], related_context])
    assert not session.errors
    engine = session.engine()
    request_ctx = session.context.request
    assert request_ctx is not None
    user = request_ctx.spec.user_info.model_dump(by_alias=True)
    related = [o for o in session.context.objects if o.get("kind") in RELATED]

    report = _check_report(related_context)
    by_doc = {
        (Path(r["resource"]["file"]).resolve(), r["resource"]["documentIndex"], r["resource"]["item"]): r
        for r in report["resources"]
    }
    docs = [d for d in _resources(_inputs()) if d.data.get("kind") != "Namespace"]
    assert len(docs) >= 15
    denied = warned = 0
    for i, doc in enumerate(docs):
        uid = f"parity-{i}"
        got = parity_server.review(admission_review(doc.data, uid=uid, user=user))
        # In process, through the offline path, with the same session.
        decision = engine.evaluate(attributes_for_object(doc.data, user_info=user), related=related)
        expected = response_for(uid, decision)
        where = f"{doc.source} document {doc.index} item {doc.item}"
        assert got["uid"] == uid
        assert got.keys() == expected.keys(), where
        assert got["allowed"] == expected["allowed"], where
        assert _canon(got) == _canon(expected), where
        # And against the JSON report of `charter check`.
        entry = by_doc[(Path(doc.source).resolve(), doc.index, doc.item)]
        assert got["allowed"] == entry["allowed"], where
        assert _canon(got.get("warnings", [])) == _canon(entry["warnings"]), where
        assert {o.policy: o.verdict for o in decision.outcomes} == entry["verdicts"], where
        for key, value in entry["auditAnnotations"].items():
            # `charter check` keys VAP-style `<policy>/<key>`; the webhook uses qualified names.
            policy, _, name = key.partition("/")
            assert _canon(got["auditAnnotations"][annotation_key(policy, name)]) == _canon(value), where
        if not got["allowed"]:
            denied += 1
            assert got["status"]["code"] in (401, 403, 413, 422)
            assert _canon(got["status"]["message"]) == _canon(decision.deny_message())
            assert "\n" not in got["status"]["message"]
        warned += bool(got.get("warnings"))
    # The examples exercise both outcomes; a parity test over only allows would prove little.
    assert denied and len(docs) - denied


def test_reviews_decided_together_get_the_answers_they_get_alone(parity_server: Server) -> None:
    # Reviews that arrive together are decided in one CEL activation (admission/app.py); each
    # answer must be the one the same review gets on its own.
    from concurrent.futures import ThreadPoolExecutor

    docs = [d for d in _resources(_inputs()) if d.data.get("kind") != "Namespace"]
    reviews = [admission_review(d.data, uid=f"together-{i}") for i, d in enumerate(docs)] * 3
    alone = [parity_server.review(r) for r in reviews]

    def batches() -> float:
        m = re.search(
            r"^charter_admission_reviews_decided_together_count (\S+)$", parity_server.metrics(), re.M
        )
        assert m is not None
        return float(m.group(1))

    before = batches()
    with ThreadPoolExecutor(max_workers=16) as pool:
        together = list(pool.map(parity_server.review, reviews))
    assert [_canon(a) for a in together] == [_canon(a) for a in alone]
    assert sum(not a["allowed"] for a in together) > 10
    assert batches() - before < len(reviews)  # some were decided together
