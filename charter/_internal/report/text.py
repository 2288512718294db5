"""The human-readable report: one table per resource that needs attention, then a summary."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .model import Report, ResourceRef, Result

_STYLE = {"Deny": "bold red", "Warn": "yellow", "Audit": "cyan", "Ignore": "magenta", "None": "dim"}


def _where(r: ResourceRef) -> str:
    where = r.file or "<request>"
    if r.line is not None:
        where += f":{r.line}"
    if r.item is not None:
        where += f" (items[{r.item}])"
    return where


def _title(r: ResourceRef) -> str:
    ns = f"{r.namespace}/" if r.namespace else ""
    return f"{r.kind} {ns}{r.name or '<unnamed>'}"


def render_text(report: Report, console: Console, *, verbose: bool = False) -> None:
    by_resource: dict[tuple[str | None, int | None, int | None], list[Result]] = defaultdict(list)
    for res in report.results:
        by_resource[(res.resource.file, res.resource.document_index, res.resource.item)].append(res)
    for rv in report.resources:
        key = (rv.resource.file, rv.resource.document_index, rv.resource.item)
        results = by_resource.get(key, [])
        if not results and not verbose:
            continue
        status = Text("allowed", style="green") if rv.allowed else Text("DENIED", style="bold red")
        console.print(Text.assemble((_where(rv.resource), "bold"), "  ", _title(rv.resource), "  ", status))
        if results:
            table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
            table.add_column("policy", no_wrap=True)
            table.add_column("action", no_wrap=True)
            table.add_column("message", overflow="fold")
            for r in results:
                label = r.action if r.type == "violation" else f"{r.type} ({r.action})"
                message = r.message
                if r.exception is not None:
                    label = f"excepted ({r.action})"
                    message += f"  [exception {r.exception.name}: {r.exception.ticket}, approved by {r.exception.approved_by}]"
                if r.validation is not None:
                    policy = f"{r.policy}[{r.validation_name or r.validation}]"
                else:
                    policy = r.policy
                table.add_row(Text(policy), Text(label, style=_STYLE.get(r.action, "")), Text(message))
            console.print(table)
        for note in rv.notes:
            console.print(Text(f"  note: {note}", style="yellow"))
        console.print()
    for n in report.notes:
        console.print(Text(f"note: {n}", style="dim"))
    for e in report.expired_exceptions:
        console.print(
            Text(
                f"warning: exception {e.name!r} ({e.ticket}, {e.file}) expired {e.expires.isoformat()} and no longer applies",
                style="yellow",
            )
        )
    s = report.summary
    console.print(
        f"{s.resources} resources, {s.policies} policies, {s.evaluations} evaluations: "
        f"{s.resources_denied} resources denied; {s.denied} deny, {s.warned} warn, {s.audited} audit findings, "
        f"{s.errors} errors, {s.unresolved} unresolved, {s.exceptions_applied} excepted, {s.input_errors} input errors"
    )
