"""`charter scan`: the workloads running in a live cluster, through the same Engine path as `charter check`.

Like Kyverno's and Gatekeeper's background audit: the pod-bearing kinds the server serves
(core, apps, batch and the AI CRDs) are listed with the `kubernetes` client (the current
kubeconfig, or the in-cluster service account), Namespace labels come from the live
Namespaces, and every object is evaluated as if it were being created now.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from charter.admission.webhook_config import POD_BEARING
from charter.engine import CheckRun, ResourceDecision, Source, attributes_for_object
from charter.engine.documents import Document
from charter.engine.normalize import RELATED_KINDS
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .check import EXIT_BAD_INPUT, exit_code
from .report.model import Report, build_report
from .session import load_session

PAGE_SIZE = 500
REQUEST_TIMEOUT = 30.0


class ScanError(Exception):
    """The cluster could not be reached or read."""


@dataclass(frozen=True, slots=True)
class ServedKind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


def connect(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient for the named kubeconfig/context, the default kubeconfig, or the in-cluster config."""
    from kubernetes import client, config

    cfg = client.Configuration()
    default = Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    try:
        if kubeconfig or context or default.is_file():
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
            )
        else:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except Exception as e:  # the client raises ConfigException, OSError, yaml errors...
        raise ScanError(f"cannot load the cluster configuration: {e}") from e
    return client.ApiClient(cfg)


class Cluster:
    """GETs of JSON from the apiserver through the kubernetes client's auth and TLS set-up."""

    def __init__(self, api_client: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.api = api_client
        self.timeout = timeout

    def get(self, path: str, query: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The decoded body; None for 404 (not served). Raises ScanError otherwise."""
        from kubernetes.client.exceptions import ApiException

        url_path = path + ("?" + urlencode(query) if query else "")
        try:
            if hasattr(self.api, "param_serialize"):
                method, url, headers, body, post = self.api.param_serialize(
                    "GET",
                    url_path,
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                )
                resp = self.api.call_api(method, url, headers, body, post, _request_timeout=self.timeout)
                resp.read()
                status, data = resp.status, resp.data
            else:  # kubernetes < 34: the older generated client
                resp = self.api.call_api(
                    url_path,
                    "GET",
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _return_http_data_only=True,
                    _request_timeout=self.timeout,
                )
                status, data = resp.status, resp.data
        except ApiException as e:
            status, data = e.status, (e.body or b"")
        except Exception as e:  # connection refused, TLS, timeouts
            raise ScanError(f"GET {path}: {e}") from e
        if status == 404:
            return None
        if status != 200:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            with contextlib.suppress(ValueError, AttributeError):
                text = json.loads(text).get("message", text)
            raise ScanError(f"GET {path}: HTTP {status}: {text}")
        try:
            decoded = json.loads(data)
        except ValueError as e:
            raise ScanError(f"GET {path}: not JSON: {e}") from e
        if not isinstance(decoded, dict):
            raise ScanError(f"GET {path}: not a JSON object")
        return decoded

    def list(self, path: str, api_version: str, kind: str) -> Iterator[dict[str, Any]]:
        """Every item of a list, page by page, with apiVersion and kind filled in."""
        token = ""
        while True:
            query: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                query["continue"] = token
            body = self.get(path, query)
            if body is None:
                return
            for item in body.get("items") or []:
                if isinstance(item, dict):
                    item.setdefault("apiVersion", api_version)
                    item.setdefault("kind", kind)
                    yield item
            token = (body.get("metadata") or {}).get("continue") or ""
            if not token:
                return


def _resources(body: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {
        r["name"]: r
        for r in (body or {}).get("resources") or []
        if isinstance(r, dict) and isinstance(r.get("name"), str) and "/" not in r["name"]
    }


def discover(cluster: Cluster) -> tuple[list[ServedKind], list[str]]:
    """The pod-bearing kinds this server serves (preferred version first), and notes on the rest."""
    wanted: dict[str, list[str]] = {}
    for group, plural in POD_BEARING:
        wanted.setdefault(group, []).append(plural)
    groups: dict[str, list[str]] = {}
    body = cluster.get("/apis") or {}
    for g in body.get("groups") or []:
        versions = [v["version"] for v in g.get("versions") or [] if isinstance(v, dict) and "version" in v]
        preferred = (g.get("preferredVersion") or {}).get("version")
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        groups[g.get("name", "")] = versions
    groups[""] = ["v1"]
    served: list[ServedKind] = []
    notes: list[str] = []
    for group, plurals in wanted.items():
        if group not in groups:
            notes.append(f"not served, skipped: {', '.join(f'{p}.{group}' for p in plurals)}")
            continue
        lists = {
            v: _resources(cluster.get(f"/apis/{group}/{v}" if group else f"/api/{v}")) for v in groups[group]
        }
        for plural in plurals:
            version = next((v for v in groups[group] if plural in lists[v]), None)
            if version is None:
                notes.append(f"not served, skipped: {plural}{'.' + group if group else ''}")
                continue
            r = lists[version][plural]
            served.append(
                ServedKind(group, version, plural, r.get("kind", ""), bool(r.get("namespaced", True)))
            )
    return served, notes


@dataclass
class Inventory:
    workloads: list[dict[str, Any]] = field(default_factory=list)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    related: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    owned_skipped: int = 0


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def collect(cluster: Cluster, namespace: str | None = None, *, include_owned: bool = False) -> Inventory:
    inv = Inventory()
    kinds, inv.notes = discover(cluster)
    for ns in cluster.list("/api/v1/namespaces", "v1", "Namespace"):
        name = (ns.get("metadata") or {}).get("name")
        if isinstance(name, str):
            inv.namespaces[name] = ns
    # ServiceAccounts: what identity policies look up beside the workload.
    sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts" if namespace else "/api/v1/serviceaccounts"
    inv.related.extend(cluster.list(sa_path, "v1", "ServiceAccount"))
    evaluated_kinds = {(k.group, k.kind) for k in kinds}
    for k in kinds:
        try:
            items = list(cluster.list(k.path(namespace), k.api_version, k.kind))
        except ScanError as e:
            if "HTTP 403" in str(e):
                inv.notes.append(f"forbidden, skipped: {k.plural}{'.' + k.group if k.group else ''}")
                continue
            raise
        for obj in items:
            ref = _controller(obj)
            if ref is not None and not include_owned:
                group = str(ref.get("apiVersion", "")).rpartition("/")[0]
                if (group, ref.get("kind")) in evaluated_kinds:
                    # Judged through its controller (a Pod through its ReplicaSet's Deployment...).
                    inv.owned_skipped += 1
                    continue
            inv.workloads.append(obj)
    if inv.owned_skipped:
        inv.notes.append(
            f"{inv.owned_skipped} object(s) owned by a listed controller were judged through it (--include-owned to list them too)"
        )
    return inv


def evaluate(inv: Inventory, session: Any, origin: str) -> CheckRun:
    engine = session.engine()
    # Live labels win over any Namespace documents found beside the policies.
    engine.context.namespaces.update(inv.namespaces)
    run = CheckRun(notes=list(inv.notes))
    related = [*inv.related, *(o for o in engine.context.objects if o.get("kind") in RELATED_KINDS)]
    for i, obj in enumerate(inv.workloads):
        meta = obj.get("metadata") or {}
        where = f"{origin}:{meta.get('namespace') or ''}/{obj.get('kind')}/{meta.get('name')}"
        attrs = attributes_for_object(obj, operation="CREATE", user_info={}, source=Source(where, i, None))
        run.decisions.append(
            ResourceDecision(Document(where, i, 0, obj), engine.evaluate(attrs, related=related))
        )
    return run


def render_table(report: Report, console: Console, *, verbose: bool = False) -> None:
    table = Table(title=None, show_lines=False, expand=False)
    for col in ("NAMESPACE", "KIND", "NAME", "POLICY", "RESULT", "MESSAGE"):
        table.add_column(col, overflow="fold")
    rows = 0
    for r in report.results:
        result = "waived" if r.exception else (r.action.lower() if r.type == "violation" else r.type)
        table.add_row(
            r.resource.namespace, r.resource.kind, r.resource.name, r.policy, result, escape(r.message)
        )
        rows += 1
    if verbose:
        for rv in report.resources:
            for policy, verdict in rv.verdicts.items():
                if verdict == "pass":
                    table.add_row(
                        rv.resource.namespace, rv.resource.kind, rv.resource.name, policy, "pass", ""
                    )
                    rows += 1
    if rows:
        console.print(table)
    s = report.summary
    console.print(
        f"{s.resources} workload(s), {s.policies} policies: {s.resources_denied} would be denied, "
        f"{s.denied} denial(s), {s.warned} warning(s), {s.audited} audit finding(s), {s.errors} error(s)"
    )
    for note in report.notes:
        console.print(f"note: {escape(note)}")


def run_scan(
    *,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    policies: Sequence[str],
    cluster_profile: str | None,
    context_files: Sequence[str],
    exceptions: Sequence[str],
    fmt: str,
    output: Path | None,
    fail_on: str,
    include_owned: bool = False,
    verbose: bool = False,
    now: datetime | None = None,
) -> int:
    err = Console(stderr=True, highlight=False)
    session = load_session(policies, cluster=cluster_profile, context=context_files, exceptions=exceptions)
    if session.errors:
        for e in session.errors:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, soft_wrap=True)
        err.print(f"{len(session.errors)} error(s) loading policies and context; nothing was scanned")
        return EXIT_BAD_INPUT
    try:
        api = connect(kubeconfig, context)
        try:
            inv = collect(Cluster(api), namespace, include_owned=include_owned)
        finally:
            api.close()
    except ScanError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, soft_wrap=True)
        return EXIT_BAD_INPUT
    run = evaluate(inv, session, context or "cluster")
    report = build_report(run, len(session.policies.policies))
    out = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        if fmt == "json":
            out.write(report.model_dump_json(by_alias=True, indent=2) + "\n")
        elif fmt == "policyreport":
            import yaml

            from .policyreport import policy_reports

            uids = {
                (
                    o.get("apiVersion", ""),
                    o.get("kind", ""),
                    (o.get("metadata") or {}).get("namespace") or "",
                    (o.get("metadata") or {}).get("name") or "",
                ): (o.get("metadata") or {}).get("uid") or ""
                for o in inv.workloads
            }
            docs = policy_reports(report, uids=uids, now=now or datetime.now(UTC))
            out.write(yaml.safe_dump_all(docs, sort_keys=False))
        else:
            render_table(
                report, Console(file=out, highlight=False, soft_wrap=True, width=200), verbose=verbose
            )
    finally:
        if output is not None:
            out.close()
    return exit_code(report, fail_on)
