"""`charter check`: load, evaluate, report, and pick the exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from charter.engine import CheckRun, check_paths
from charter.engine._internal.collector import collector_paused, settle_long_lived
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .report.model import Report, build_report
from .report.policyinfo import policy_infos
from .report.text import render_text
from .session import Session, load_session

EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_INPUT, EXIT_EVAL_ERRORS, EXIT_AUDIT = 0, 1, 2, 3, 5


def exit_code(report: Report, fail_on: str) -> int:
    """2 bad input > 3 evaluation errors under failurePolicy Fail > 1 violations (per --fail-on) > 0."""
    if report.input_errors:
        return EXIT_BAD_INPUT
    if any(r.type == "error" and r.exception is None and r.actions for r in report.results):
        return EXIT_EVAL_ERRORS
    live = [r for r in report.results if r.exception is None and r.type == "violation"]
    if fail_on == "deny" and any("Deny" in r.actions for r in live):
        return EXIT_VIOLATIONS
    if fail_on == "warn" and any("Deny" in r.actions or "Warn" in r.actions for r in live):
        return EXIT_VIOLATIONS
    return EXIT_OK


def run_check(
    paths: Sequence[str],
    *,
    policies: Sequence[str],
    cluster: str | None,
    context: Sequence[str],
    exceptions: Sequence[str],
    fmt: str,
    output: Path | None,
    fail_on: str,
    user_info: dict[str, Any] | None,
    operation: str,
    verbose: bool = False,
    progress: bool = False,
    audit: str | None = None,
    audit_key: str | None = None,
    audit_failure: str = "deny",
    trust_policy: str | None = None,
) -> int:
    session = load_session(
        policies, cluster=cluster, context=context, exceptions=exceptions, trust_policy=trust_policy
    )
    err = Console(stderr=True, highlight=False)
    policy_errors = list(session.errors)
    if policy_errors:
        # A broken policy set is never evaluated in part: the verdicts would be wrong.
        for e in policy_errors:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, soft_wrap=True)
        err.print(f"{len(policy_errors)} error(s) loading policies and context; nothing was evaluated")
        return EXIT_BAD_INPUT
    engine = session.engine()
    settle_long_lived()
    if progress:
        with Progress(
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("check", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            with collector_paused():
                run = check_paths(engine, paths, user_info=user_info, operation=operation, progress=update)
    else:
        with collector_paused():
            run = check_paths(engine, paths, user_info=user_info, operation=operation)
    audit_problem = None
    if audit is not None:
        audit_problem = record_decisions(run, session, audit, audit_key, err)
    report = build_report(run, len(session.policies.policies))
    infos = policy_infos(session.policies.policies)
    out = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        if fmt == "json":
            out.write(report.model_dump_json(by_alias=True, indent=2) + "\n")
        elif fmt == "sarif":
            from .report.sarif import render_sarif

            out.write(json.dumps(render_sarif(report, infos), indent=2) + "\n")
        elif fmt == "junit":
            from .report.junit import render_junit

            out.write(render_junit(report, infos))
        else:
            # Piped output (CI logs) is not 80 columns wide; do not fold messages to fit it.
            width = None if out.isatty() else 180
            console = Console(
                file=out, highlight=False, soft_wrap=True, no_color=output is not None, width=width
            )
            render_text(report, console, verbose=verbose)
    finally:
        if output is not None:
            out.close()
    if report.input_errors:
        for p in report.input_errors:
            err.print(
                "[bold red]error:[/] "
                + escape(f"{p.file or ''}{':' + str(p.line) if p.line else ''}: {p.message}"),
                markup=True,
                soft_wrap=True,
            )
    code = exit_code(report, fail_on)
    if audit_problem is not None:
        # Nothing is silently unaudited: with --audit-failure deny an unaudited run fails.
        err.print(f"[bold red]audit:[/] {escape(audit_problem)}", markup=True, soft_wrap=True)
        if audit_failure == "deny":
            return max(code, EXIT_AUDIT)
    return code


def record_decisions(run: CheckRun, session: Session, url: str, key: str | None, err: Console) -> str | None:
    """Append every decision to the signed audit log; return why not, if it could not be done."""
    from charter.audit import AuditUnavailable, DecisionContext, ensure_default_key, open_sink

    try:
        created = ensure_default_key(key)
        if created is not None:
            err.print(
                f"created audit signing key {created} (public key beside it); keep it safe", highlight=False
            )
        sink = open_sink(url, key)
    except AuditUnavailable as e:
        return f"no decision was audited: {e}"
    context = DecisionContext(session.policies.digest, session.context.cluster, "check")
    written = 0
    try:
        for rd in run.decisions:
            sink.append(rd.decision, context)
            written += 1
    except AuditUnavailable as e:
        return f"{len(run.decisions) - written} of {len(run.decisions)} decisions were not audited: {e}"
    finally:
        try:
            sink.close()
        except AuditUnavailable as e:
            return f"the final checkpoint could not be written: {e}"
    err.print(f"audited {written} decisions in {url or '.charter/audit.db'}", highlight=False)
    return None
