"""`charter explain`: why each policy decided what it did, for debugging policies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from charter.engine import check_paths
from charter.engine.dispatcher import Engine
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from .session import load_session


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_explain(
    resource: str,
    policies: Sequence[str],
    cluster: str | None,
    context: Sequence[str],
    exceptions: Sequence[str],
    only: Sequence[str],
    user_info: dict[str, Any] | None,
    fmt: str,
) -> int:
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    session = load_session(policies, cluster=cluster, context=context, exceptions=exceptions)
    if session.errors:
        for e in session.errors:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True)
        return 2
    engine: Engine = session.engine()
    if only:
        unknown = set(only) - {p.name for p in session.policies.policies}
        if unknown:
            err.print(
                "[bold red]error:[/] " + escape(f"no such policy: {', '.join(sorted(unknown))}"), markup=True
            )
            return 2
        session.policies.policies = [p for p in session.policies.policies if p.name in only]
    # The same path as `check` (namespaces, claims, the requester from the context), with traces.
    run = check_paths(engine, [resource], user_info=user_info, explain=True)
    if run.errors:
        for e in run.errors:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True)
        return 2
    out: list[dict[str, Any]] = []
    for rd in run.decisions:
        doc, decision, attrs = rd.document, rd.decision, rd.decision.attributes
        entry: dict[str, Any] = {
            "resource": f"{attrs.kind} {attrs.namespace + '/' if attrs.namespace else ''}{attrs.name}",
            "file": f"{doc.source}:{doc.line}",
            "allowed": decision.allowed,
            "policies": [],
        }
        for o in decision.outcomes:
            entry["policies"].append(
                {
                    "policy": o.policy,
                    "matched": o.matched,
                    "unresolved": o.unresolved,
                    "verdict": o.verdict,
                    "trace": o.trace or [],
                    "findings": [
                        {
                            "message": f.message,
                            "actions": list(f.actions),
                            "kind": f.kind,
                            "exception": f.exception.name if f.exception else None,
                        }
                        for f in o.findings
                    ],
                }
            )
        out.append(entry)
    if fmt == "json":
        console.print_json(json.dumps(out, default=str))
        return 0
    for entry in out:
        e = escape
        tree = Tree(
            f"[bold]{e(entry['resource'])}[/]  {e(entry['file'])}  "
            + ("[green]allowed[/]" if entry["allowed"] else "[bold red]denied[/]")
        )
        for p in entry["policies"]:
            if not p["matched"]:
                why = f" ({p['unresolved']})" if p["unresolved"] else ""
                tree.add(f"[dim]{e(p['policy'] + ': not matched' + why)}[/]")
                continue
            node = tree.add(f"{e(p['policy'])}: [bold]{p['verdict']}[/]")
            for binding in p["trace"]:
                parent = node
                if binding.get("binding") or binding.get("param"):
                    parent = node.add(e(f"binding {binding.get('binding')!r} param {binding.get('param')!r}"))
                for step in binding["steps"]:
                    label = step.get("name") or step.get("key") or f"[{step.get('index')}]"
                    shown = (
                        f"[red]{e('error: ' + step['error'])}[/]"
                        if step.get("error")
                        else e(_short(step.get("value")))
                    )
                    parent.add(f"{step['step']} {e(str(label))}: {shown}")
            for f in p["findings"]:
                exc = f" [cyan]{e('(exception ' + f['exception'] + ')')}[/]" if f["exception"] else ""
                node.add(
                    f"[yellow]{f['kind']} {','.join(f['actions']) or 'ignored'}:[/] {e(f['message'])}{exc}"
                )
        console.print(tree)
    return 0
