"""The `charter` command line: thin typer commands over charter.engine."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from charter.engine import CharterError
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="charter",
    help="Policy-as-code governance for AI workloads: one set of CEL policies for admission and CI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_INPUT, EXIT_EVAL_ERRORS, EXIT_INTERNAL = 0, 1, 2, 3, 4

err_console = Console(stderr=True, highlight=False)


class Format(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"


class FailOn(StrEnum):
    deny = "deny"
    warn = "warn"
    never = "never"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print_errors(errors: list[CharterError]) -> None:
    for e in errors:
        err_console.print(
            f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True
        )


PoliciesOpt = Annotated[
    list[str],
    typer.Option("--policies", "-p", help="Policy files or directories (default: the bundled packs)."),
]
ClusterOpt = Annotated[
    str | None, typer.Option("--cluster", "-c", help="A ClusterProfile file: where the workloads would run.")
]
ContextOpt = Annotated[
    list[str],
    typer.Option(
        "--context", help="Files with cluster state: Namespaces, catalogs, param objects, a RequestContext."
    ),
]
ExceptionsOpt = Annotated[list[str] | None, typer.Option("--exceptions", "-e", help="PolicyException files.")]
UserOpt = Annotated[
    str | None, typer.Option("--user", help="The requesting user, as request.userInfo.username.")
]
GroupOpt = Annotated[
    list[str] | None, typer.Option("--group", help="A group of the requesting user (repeatable).")
]
TrustPolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--trust-policy",
        help="A TrustPolicy file: verify model signatures (ModelAttestation documents among --context) into `provenance`.",
    ),
]
AuditOpt = Annotated[
    str | None,
    typer.Option(
        "--audit",
        help="Signed audit log of every decision: a path or sqlite:///PATH (e.g. .charter/audit.db), or postgresql://...",
    ),
]
AuditKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--audit-key",
        help="Ed25519 signing key (default $CHARTER_AUDIT_KEY, else .charter/audit.key, which `check` creates on first use).",
    ),
]


def _user_info(user: str | None, groups: list[str] | None) -> dict[str, Any] | None:
    if user is None and not groups:
        return None
    return {"username": user or "", "groups": list(groups or [])}


@app.command()
def check(
    paths: Annotated[list[str], typer.Argument(help="Manifest files or directories; - for stdin.")],
    policies: PoliciesOpt = None,
    cluster: ClusterOpt = None,
    context: ContextOpt = None,
    exceptions: ExceptionsOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Which findings make the exit code 1.")
    ] = FailOn.deny,
    user: UserOpt = None,
    group: GroupOpt = None,
    operation: Annotated[str, typer.Option("--operation", help="CREATE, UPDATE or DELETE.")] = "CREATE",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show allowed resources too.")] = False,
    audit: AuditOpt = None,
    audit_key: AuditKeyOpt = None,
    audit_failure: Annotated[
        str,
        typer.Option(
            "--audit-failure",
            help="deny: a run whose decisions could not be audited exits 5; allow: warn only.",
        ),
    ] = "deny",
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress", help="Progress on stderr (default: when stderr is a terminal)."
        ),
    ] = sys.stderr.isatty(),
    trust_policy: TrustPolicyOpt = None,
) -> None:
    """Evaluate manifests against the policies, as the admission webhook would."""
    from charter._internal.check import run_check

    if operation not in ("CREATE", "UPDATE", "DELETE"):
        _fail(f"--operation must be CREATE, UPDATE or DELETE, not {operation!r}")
    if audit_failure not in ("deny", "allow"):
        _fail(f"--audit-failure must be deny or allow, not {audit_failure!r}")
    code = run_check(
        paths,
        policies=policies,
        cluster=cluster,
        context=context,
        exceptions=exceptions,
        fmt=fmt.value,
        output=output,
        fail_on=fail_on.value,
        user_info=_user_info(user, group),
        operation=operation,
        verbose=verbose,
        progress=progress,
        audit=audit,
        audit_key=audit_key,
        audit_failure=audit_failure,
        trust_policy=trust_policy,
    )
    raise typer.Exit(code)


@app.command()
def lint(paths: Annotated[list[str], typer.Argument(help="Policy files or directories.")]) -> None:
    """Compile and type-check policies; exit 1 on any error."""
    from charter._internal.session import load_session

    session = load_session(paths)
    _print_errors(session.errors)
    for note in session.policies.notes:
        err_console.print(f"[yellow]warning:[/] {escape(note)}", markup=True, highlight=False, soft_wrap=True)
    n = len(session.policies.policies)
    if session.errors:
        err_console.print(f"{len(session.errors)} error(s) in {n + len(session.errors)} policy document(s)")
        raise typer.Exit(EXIT_VIOLATIONS)
    expressions = sum(
        len(p.validations) + len(p.variables) + len(p.match_conditions) + len(p.audit_annotations)
        for p in session.policies.policies
    )
    Console(highlight=False).print(f"{n} policies, {expressions} expressions: all compile and type-check")


@app.command("test")
def test_cmd(
    paths: Annotated[list[str], typer.Argument(help="Directories or files holding PolicyTest documents.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json")] = Format.text,
) -> None:
    """Run policy test suites (kind: PolicyTest); exit 1 on any mismatch."""
    from charter._internal.policytest import run_tests

    raise typer.Exit(run_tests(paths, json_output=fmt == Format.json))


@app.command()
def explain(
    resource: Annotated[str, typer.Argument(help="A manifest file (every resource in it is explained).")],
    policies: PoliciesOpt = None,
    cluster: ClusterOpt = None,
    context: ContextOpt = None,
    exceptions: ExceptionsOpt = None,
    policy: Annotated[list[str] | None, typer.Option("--policy", help="Only these policies.")] = None,
    user: UserOpt = None,
    group: GroupOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json")] = Format.text,
) -> None:
    """Show, per policy, the match decision, each variable and each validation's result."""
    from charter._internal.explain import run_explain

    raise typer.Exit(
        run_explain(
            resource, policies, cluster, context, exceptions, policy, _user_info(user, group), fmt.value
        )
    )


class AuditFailure(StrEnum):
    deny = "deny"
    allow = "allow"


@app.command()
def serve(
    tls_cert: Annotated[str, typer.Option("--tls-cert", help="PEM certificate (chain); reloaded on change.")],
    tls_key: Annotated[str, typer.Option("--tls-key", help="PEM private key; reloaded on change.")],
    policies: PoliciesOpt = None,
    cluster: ClusterOpt = None,
    context: ContextOpt = None,
    exceptions: ExceptionsOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address for the TLS admission port.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TLS admission port (POST /validate).")] = 8443,
    metrics_port: Annotated[
        int,
        typer.Option("--metrics-port", help="Plain-HTTP port for /healthz, /readyz, /metrics; 0 for none."),
    ] = 9090,
    metrics_host: Annotated[
        str | None, typer.Option("--metrics-host", help="Address for the metrics port (default: --host).")
    ] = None,
    audit: AuditOpt = None,
    audit_key: AuditKeyOpt = None,
    audit_failure: Annotated[
        AuditFailure,
        typer.Option("--audit-failure", help="When a decision cannot be audited: deny or allow."),
    ] = AuditFailure.deny,
    audit_spool: Annotated[
        str,
        typer.Option(
            "--audit-spool",
            help="Directory where each decision is durable before the answer; a low-priority process "
            "signs it into the log. auto: beside a SQLite log, none for PostgreSQL; off: sign and "
            "commit before answering.",
        ),
    ] = "auto",
    namespace_source: Annotated[
        str | None,
        typer.Option(
            "--namespace-source", help="Namespace labels: 'kube' (list+watch) or 'file:PATH[,PATH]'."
        ),
    ] = None,
    reload_interval: Annotated[
        float, typer.Option("--reload-interval", help="Seconds between checks for changed files.")
    ] = 1.0,
    loop: Annotated[str, typer.Option("--loop", hidden=True)] = "auto",
    http: Annotated[str, typer.Option("--http", hidden=True)] = "auto",
    trust_policy: TrustPolicyOpt = None,
) -> None:
    """Run the validating admission webhook (HTTPS POST /validate)."""
    from charter.admission.server import ServeOptions, run_serve

    sink = None
    if audit is not None:
        from charter.audit import AuditUnavailable, open_sink

        try:
            sink = open_sink(audit, audit_key, spool=audit_spool)
        except AuditUnavailable as e:
            _fail(f"audit log: {e}")
    code = run_serve(
        ServeOptions(
            policies=policies or [],
            tls_cert=tls_cert,
            tls_key=tls_key,
            cluster=cluster,
            context=context or [],
            exceptions=exceptions or [],
            trust_policy=trust_policy,
            host=host,
            port=port,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            audit_failure=audit_failure.value,
            namespace_source=namespace_source,
            reload_interval=reload_interval,
            loop=loop,
            http=http,
        ),
        sink=sink,
    )
    raise typer.Exit(code)


@app.command("webhook-config")
def webhook_config(
    service: Annotated[str, typer.Option("--service", help="The webhook Service as NAMESPACE/NAME.")],
    ca_bundle: Annotated[
        Path, typer.Option("--ca-bundle", help="PEM CA that signed the serving certificate.")
    ],
    policies: PoliciesOpt = None,
    failure_policy: Annotated[str, typer.Option("--failure-policy", help="Fail or Ignore.")] = "Fail",
    timeout_seconds: Annotated[int, typer.Option("--timeout-seconds", min=1, max=30)] = 10,
    path: Annotated[str, typer.Option("--path")] = "/validate",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 443,
    name: Annotated[str, typer.Option("--name", help="metadata.name of the configuration.")] = "charter.dev",
) -> None:
    """Print the ValidatingWebhookConfiguration (YAML) that routes the policies' resources to charter."""
    import yaml
    from charter.admission.webhook_config import webhook_configuration

    from charter._internal.session import load_session

    ns, _, svc = service.partition("/")
    if not ns or not svc or "/" in svc:
        _fail(f"--service must be NAMESPACE/NAME, not {service!r}")
    if failure_policy not in ("Fail", "Ignore"):
        _fail(f"--failure-policy must be Fail or Ignore, not {failure_policy!r}")
    if not path.startswith("/"):
        _fail(f"--path must start with /, not {path!r}")
    try:
        ca = ca_bundle.read_bytes()
    except OSError as e:
        _fail(f"--ca-bundle: {e}")
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        _fail(f"--ca-bundle {ca_bundle}: no PEM certificate in this file")
    session = load_session(policies or [])
    if session.errors:
        _print_errors(session.errors)
        raise typer.Exit(EXIT_BAD_INPUT)
    config = webhook_configuration(
        session.policies,
        service_namespace=ns,
        service_name=svc,
        ca_bundle=ca,
        name=name,
        failure_policy=failure_policy,
        timeout_seconds=timeout_seconds,
        path=path,
        port=port,
    )
    sys.stdout.write(yaml.safe_dump(config, sort_keys=False))


@app.command("export-vap")
def export_vap(
    policies: PoliciesOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the YAML here instead of stdout.")
    ] = None,
) -> None:
    """Translate policies that need nothing of charter's into ValidatingAdmissionPolicy + Binding YAML."""
    import yaml

    from charter._internal.export_vap import export_policies
    from charter._internal.session import bundled_policies

    result = export_policies(policies or [bundled_policies()])
    if result.errors:
        _print_errors(result.errors)
        raise typer.Exit(EXIT_BAD_INPUT)
    text = yaml.safe_dump_all(result.objects, sort_keys=False) if result.objects else ""
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for s in result.skipped:
        err_console.print(
            f"[yellow]not exported:[/] {escape(s.name)} ({escape(s.source)}): {escape('; '.join(s.reasons))}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
    err_console.print(
        f"{len(result.exported)} polic{'y' if len(result.exported) == 1 else 'ies'} exported, "
        f"{len(result.skipped)} not exportable",
        highlight=False,
    )


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    policyreport = "policyreport"


@app.command()
def scan(
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)."
        ),
    ] = None,
    kube_context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig context to use.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: all).")
    ] = None,
    policies: PoliciesOpt = None,
    cluster: ClusterOpt = None,
    context_files: Annotated[
        list[str] | None,
        typer.Option("--context-file", help="Files with catalogs, param objects and other context."),
    ] = None,
    exceptions: ExceptionsOpt = None,
    fmt: Annotated[
        ScanFormat,
        typer.Option("--format", "-f", help="table, json, or policyreport (wgpolicyk8s.io/v1alpha2)."),
    ] = ScanFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Which findings make the exit code 1.")
    ] = FailOn.never,
    include_owned: Annotated[
        bool,
        typer.Option(
            "--include-owned",
            help="Also evaluate objects owned by a listed controller (e.g. Pods of a Deployment).",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show passing results too.")] = False,
) -> None:
    """Evaluate the workloads running in a live cluster (a background audit)."""
    from charter._internal.scan import run_scan

    raise typer.Exit(
        run_scan(
            kubeconfig=kubeconfig,
            context=kube_context,
            namespace=namespace,
            policies=policies or [],
            cluster_profile=cluster,
            context_files=context_files or [],
            exceptions=exceptions or [],
            fmt=fmt.value,
            output=output,
            fail_on=fail_on.value,
            include_owned=include_owned,
            verbose=verbose,
        )
    )


@app.command()
def version() -> None:
    """Print charter's version and its CEL runtime."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        print(json.dumps({"charter": v("charter"), "cel-expr-python": v("cel-expr-python")}))
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        print(json.dumps({"charter": "unknown"}))


def _register_audit() -> None:
    # The audit commands live in charter.audit.cli; their heavy imports are inside each command.
    from charter.audit.cli import app as audit_app

    app.add_typer(audit_app, name="audit")


_register_audit()


def _register_model() -> None:
    # `charter model verify|inspect`; model-signing and sigstore are imported inside each command.
    from charter.provenance.cli import app as model_app

    app.add_typer(model_app, name="model")


_register_model()


def main() -> None:
    try:
        app()
    except CharterError as e:
        _print_errors([e])
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # never a traceback for users; the message names the bug
        err_console.print(
            "[bold red]internal error:[/] "
            + escape(f"{type(e).__name__}: {e} (this is a bug in charter; please report it)"),
            markup=True,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":  # pragma: no cover
    main()
