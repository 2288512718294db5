"""`charter test`: policy test suites (kind: PolicyTest), in the spirit of `kyverno test`.

A suite names policies, resources and context relative to its own file and the
expected verdict per resource and policy; any difference fails the run with a diff.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from charter.engine import CharterError, Decision, Engine, check_paths
from charter.engine.documents import read_documents
from charter.engine.errors import InputError, Location
from charter.engine.loader import classify, pydantic_errors
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from rich.console import Console
from rich.markup import escape

from .session import load_session

Expected = Literal["pass", "deny", "warn", "audit", "error", "skip"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ResourceSelector(_Model):
    kind: str
    name: str
    namespace: str | None = None


class Expectation(_Model):
    resource: ResourceSelector
    policy: str
    result: Expected
    message: str | None = None  # a substring every message of this resource x policy must contain


class UserInfo(_Model):
    username: str = ""
    groups: list[str] = []


class PolicyTestSpec(_Model):
    policies: list[str] = Field(min_length=1)
    resources: list[str] = Field(min_length=1)
    cluster: str | None = None
    context: list[str] = []
    exceptions: list[str] = []
    trust_policy: str | None = None  # a TrustPolicy: ModelAttestations in `context` are verified against it
    user_info: UserInfo | None = None
    operation: Literal["CREATE", "UPDATE", "DELETE"] = "CREATE"
    now: datetime | None = None  # fixes the clock, so exception expiry is reproducible
    expect: list[Expectation] = Field(min_length=1)


class PolicyTestMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class PolicyTest(_Model):
    api_version: Literal["charter.dev/v1alpha1"]
    kind: Literal["PolicyTest"]
    metadata: PolicyTestMeta
    spec: PolicyTestSpec


class CaseResult(BaseModel):
    suite: str
    file: str
    resource: str
    policy: str
    expected: str
    actual: str
    ok: bool
    detail: str = ""


def _rel(base: Path, p: str) -> str:
    return str(base / p) if not Path(p).is_absolute() else p


def run_suite(test: PolicyTest, file: str) -> list[CaseResult]:
    base = Path(file).parent
    s = test.spec
    session = load_session(
        [_rel(base, p) for p in s.policies],
        cluster=_rel(base, s.cluster) if s.cluster else None,
        context=[_rel(base, p) for p in s.context],
        exceptions=[_rel(base, p) for p in s.exceptions],
        trust_policy=_rel(base, s.trust_policy) if s.trust_policy else None,
    )
    if session.errors:
        raise session.errors[0]
    now = s.now
    engine = Engine(
        session.policies,
        session.context,
        now=(lambda: now) if now is not None else None,
        provenance=session.provenance,
    )
    run = check_paths(
        engine,
        [_rel(base, p) for p in s.resources],
        user_info=s.user_info.model_dump() if s.user_info else None,
        operation=s.operation,
    )
    if run.errors:
        raise run.errors[0]
    results: list[CaseResult] = []
    for exp in s.expect:
        sel = exp.resource
        label = f"{sel.kind} {sel.namespace + '/' if sel.namespace else ''}{sel.name}"
        matches = [
            rd
            for rd in run.decisions
            if rd.decision.attributes.kind == sel.kind
            and rd.decision.attributes.name == sel.name
            and (sel.namespace is None or rd.decision.attributes.namespace == sel.namespace)
        ]
        result = _judge(exp, [rd.decision for rd in matches])
        results.append(
            CaseResult(
                suite=test.metadata.name,
                file=file,
                resource=label,
                policy=exp.policy,
                expected=exp.result,
                **result,
            )
        )
    return results


def _judge(exp: Expectation, matches: list[Decision]) -> dict[str, Any]:
    """actual, ok and detail for one expectation against the decisions of the resources it names."""
    if len(matches) != 1:
        why = (
            "no such resource among the suite's resources"
            if not matches
            else f"{len(matches)} resources match; add a namespace"
        )
        return {"actual": "?", "ok": False, "detail": why}
    outcome = next((o for o in matches[0].outcomes if o.policy == exp.policy), None)
    if outcome is None:
        return {"actual": "?", "ok": False, "detail": "no such policy in the suite's policies"}
    messages = [f.message for f in outcome.findings if f.effective]
    ok = outcome.verdict == exp.result
    detail = "; ".join(messages)
    if ok and exp.message is not None and not any(exp.message in m for m in messages):
        ok = False
        detail = f"no message contains {exp.message!r}; messages: {detail or '(none)'}"
    return {"actual": outcome.verdict, "ok": ok, "detail": detail}


def run_tests(paths: list[str], *, json_output: bool = False) -> int:
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    read = read_documents(paths)
    problems: list[CharterError] = list(read.errors)
    results: list[CaseResult] = []
    suites = 0
    for doc in read.documents:
        if classify(doc) != "test":
            continue
        suites += 1
        try:
            test = PolicyTest.model_validate(doc.data)
        except ValidationError as e:
            problems.append(InputError(f"invalid PolicyTest: {pydantic_errors(e)}", doc.location))
            continue
        try:
            results.extend(run_suite(test, doc.source))
        except CharterError as e:
            problems.append(
                CharterError(
                    f"suite {test.metadata.name!r} ({doc.source}) could not run: {e}",
                    Location(file=doc.source),
                )
            )
    failed = [r for r in results if not r.ok]
    if json_output:
        console.print_json(
            json.dumps(
                {
                    "suites": suites,
                    "cases": len(results),
                    "failed": len(failed),
                    "errors": [str(p) for p in problems],
                    "results": [r.model_dump() for r in results],
                }
            )
        )
    else:
        for r in failed:
            console.print(
                "[bold red]FAIL[/] " + escape(f"{r.file} [{r.suite}] {r.resource} / {r.policy}"), markup=True
            )
            console.print(f"  - expected: {r.expected}\n  + actual:   {r.actual}", markup=False)
            if r.detail:
                console.print(f"    {r.detail}", markup=False)
        for p in problems:
            err.print(f"[bold red]error:[/] {escape(str(p))}", markup=True)
        console.print(
            f"{suites} suites, {len(results)} cases: {len(results) - len(failed)} passed, {len(failed)} failed"
        )
    if problems:
        return 2
    if suites == 0:
        err.print("error: no PolicyTest documents found")
        return 2
    return 1 if failed else 0
