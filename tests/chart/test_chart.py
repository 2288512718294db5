"""charts/charter rendered by a real helm: lint, Kubernetes schemas, and the deployment's invariants."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer.main
from charter.admission.webhook_config import rules_for
from charter.audit.crypto import load_private_key
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from charter._internal.session import load_session
from charter.cli import app

from .conftest import NAMESPACE

K8S_VERSION = "1.33"
# Custom resources: no schema in kubernetes-validate; checked by the assertions below.
CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor"}

POLICY = """apiVersion: charter.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  validations:
  - expression: "'team' in object.metadata.labels"
"""
PROFILE = """apiVersion: charter.dev/v1alpha1
kind: ClusterProfile
metadata: {name: prod-eu}
spec: {type: cloud, jurisdiction: DE}
"""
PG = {"audit": {"postgres": {"url": "postgresql://charter:secret@db.example:5432/charter"}}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "single-replica-sqlite": {"replicaCount": 1},
    "ha-postgres-everything": {
        **PG,
        "replicaCount": 3,
        "policies": {"files": {"team.yaml": POLICY}, "existingConfigMaps": ["org-policies"]},
        "catalogs": {
            "files": {
                "catalog.yaml": "apiVersion: charter.dev/v1alpha1\nkind: Catalog\nmetadata: {name: c}\nspec: {}\n"
            }
        },
        "clusterProfile": {"profile": PROFILE},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
        "networkPolicy": {"enabled": True},
        "image": {"digest": "sha256:" + "a" * 64},
    },
    "cert-manager-existing-secrets": {
        "replicaCount": 2,
        "audit": {
            "postgres": {"existingSecret": "charter-db"},
            "signingKey": {"existingSecret": "charter-audit-key", "generate": False},
        },
        "tls": {"certManager": {"enabled": True}},
        "clusterProfile": {"existingConfigMap": "profile", "key": "prod.yaml"},
        "podAntiAffinity": "hard",
    },
    "cert-manager-cluster-issuer": {
        **PG,
        "tls": {"certManager": {"enabled": True, "issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}}},
    },
    "existing-tls-custom-rules": {
        **PG,
        "tls": {
            "existingSecret": "my-tls",
            "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        },
        "webhook": {
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
            "excludeNamespaces": ["monitoring"],
            "rules": [
                {
                    "apiGroups": ["kubeflow.org"],
                    "apiVersions": ["v1"],
                    "resources": ["pytorchjobs"],
                    "operations": ["CREATE"],
                }
            ],
        },
    },
    "audit-off": {
        "replicaCount": 2,
        "audit": {"enabled": False},
        "rbac": {"attestations": {"apiGroups": [], "resources": []}},
    },
}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


@pytest.fixture(scope="module")
def rendered(render: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in VALUE_SETS.items()}


@pytest.mark.parametrize("name", [None, *VALUE_SETS])
def test_helm_lint(run_helm: Callable[..., subprocess.CompletedProcess[str]], name: str | None) -> None:
    proc = run_helm("lint", VALUE_SETS[name] if name else {"replicaCount": 1})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_object_is_valid_kubernetes(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    assert docs
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_webhook_points_at_the_service(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    svc = one(docs, "Service")
    vwc = one(docs, "ValidatingWebhookConfiguration")
    deploy = one(docs, "Deployment")
    (hook,) = vwc["webhooks"]
    ref = hook["clientConfig"]["service"]
    assert (ref["namespace"], ref["name"], ref["path"]) == (NAMESPACE, svc["metadata"]["name"], "/validate")
    port = next(p for p in svc["spec"]["ports"] if p["port"] == ref["port"])
    assert port["targetPort"] == "https"
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert any(p["name"] == "https" for p in container["ports"])
    # The Service selects the Deployment's pods.
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
    excluded = hook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["key"] == "kubernetes.io/metadata.name" and excluded["operator"] == "NotIn"
    assert {NAMESPACE, "kube-system"} <= set(excluded["values"])
    assert 1 <= hook["timeoutSeconds"] <= 30


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_pods_are_locked_down(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    deploy = one(rendered[name], "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    metrics = next(p for p in c["ports"] if p["name"] == "metrics")
    assert f"--metrics-port={metrics['containerPort']}" in c["args"]
    # Every writable path is a volume: /tmp and, with SQLite, the audit database's directory.
    mounts = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert "/tmp" in mounts


def test_serve_accepts_the_rendered_arguments(rendered: dict[str, list[dict[str, Any]]]) -> None:
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    options = {o for p in serve.params for o in p.opts}
    for docs in rendered.values():
        args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "serve"
        for a in args[1:]:
            assert a.split("=", 1)[0] in options, a


def test_replicas_spread_and_budgeted(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, values in VALUE_SETS.items():
        docs = rendered[name]
        replicas = values.get("replicaCount", 2)
        deploy = one(docs, "Deployment")
        assert deploy["spec"]["replicas"] == replicas
        if replicas > 1:
            assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
            anti = deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
            key = (
                "requiredDuringSchedulingIgnoredDuringExecution"
                if values.get("podAntiAffinity") == "hard"
                else "preferredDuringSchedulingIgnoredDuringExecution"
            )
            assert key in anti
        else:
            assert not by_kind(docs, "PodDisruptionBudget")
            assert deploy["spec"]["strategy"]["type"] == "Recreate"


def test_generated_ca_signs_the_serving_certificate(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["single-replica-sqlite"]
    (hook,) = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(hook["clientConfig"]["caBundle"]))
    secret = next(s for s in by_kind(docs, "Secret") if s["type"] == "kubernetes.io/tls")
    deploy = one(docs, "Deployment")
    tls_volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == secret["metadata"]["name"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert base64.b64decode(secret["data"]["ca.crt"]) == base64.b64decode(hook["clientConfig"]["caBundle"])
    assert cert.issuer == ca.subject
    pub = ca.public_key()
    assert cert.signature_hash_algorithm is not None
    if isinstance(pub, rsa.RSAPublicKey):
        pub.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
        )
    else:
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    svc = one(docs, "Service")["metadata"]["name"]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert f"{svc}.{NAMESPACE}.svc" in names


def test_cert_manager_injects_the_ca(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["cert-manager-existing-secrets"]
    vwc = one(docs, "ValidatingWebhookConfiguration")
    certs = {c["metadata"]["name"]: c for c in by_kind(docs, "Certificate")}
    serving = next(c for c in certs.values() if not c["spec"].get("isCA"))
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{serving['metadata']['name']}"
    )
    assert "caBundle" not in vwc["webhooks"][0]["clientConfig"]
    assert not [s for s in by_kind(docs, "Secret") if s["type"] == "kubernetes.io/tls"]
    svc = one(docs, "Service")["metadata"]["name"]
    assert f"{svc}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    tls_volume = next(
        v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"
    )
    assert tls_volume["secret"]["secretName"] == serving["spec"]["secretName"]
    # A ClusterIssuer given: no chart-made CA.
    other = rendered["cert-manager-cluster-issuer"]
    assert not by_kind(other, "Issuer")
    assert one(other, "Certificate")["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "corp-ca"}


def test_existing_tls_secret_and_custom_rules(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["existing-tls-custom-rules"]
    (hook,) = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 5
    assert hook["rules"] == VALUE_SETS["existing-tls-custom-rules"]["webhook"]["rules"]
    assert "monitoring" in hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert not [s for s in by_kind(docs, "Secret") if s["type"] == "kubernetes.io/tls"]


def test_default_rules_are_charters_autogen(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Without rules in values, the chart routes what `charter webhook-config` derives for the packs."""
    (hook,) = one(rendered["single-replica-sqlite"], "ValidatingWebhookConfiguration")["webhooks"]
    session = load_session([])
    assert not session.errors
    expected = rules_for(session.policies)

    def norm(rules: list[dict[str, Any]]) -> set[tuple[str, ...]]:
        return {
            (g, r, *sorted(rule["operations"]), rule["scope"])
            for rule in rules
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }

    assert norm(hook["rules"]) == norm(expected)


def test_audit_storage_and_keys(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    # One replica: SQLite on a kept PVC, and a generated Ed25519 key charter can load.
    docs = rendered["single-replica-sqlite"]
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--audit=/var/lib/charter/audit.db" in c["args"]
    assert one(docs, "PersistentVolumeClaim")["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    key_secret = next(s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-audit-key"))
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(base64.b64decode(key_secret["data"]["audit.key"]))
    load_private_key(key_file)  # raises unless an Ed25519 private key
    # Several replicas: the PostgreSQL URL from a Secret, never on the command line.
    docs = rendered["ha-postgres-everything"]
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--audit=$(CHARTER_AUDIT_URL)" in c["args"]
    assert not any("secret@" in a for a in c["args"])
    env = next(e for e in c["env"] if e["name"] == "CHARTER_AUDIT_URL")
    secret = next(
        s
        for s in by_kind(docs, "Secret")
        if s["metadata"]["name"] == env["valueFrom"]["secretKeyRef"]["name"]
    )
    assert base64.b64decode(secret["data"]["url"]).decode().startswith("postgresql://")
    assert not by_kind(docs, "PersistentVolumeClaim")
    # Existing Secrets are used, not generated.
    docs = rendered["cert-manager-existing-secrets"]
    vols = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert vols["audit-key"]["secret"]["secretName"] == "charter-audit-key"
    assert not [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-audit-key")]
    # Audit off: no key, no --audit.
    c = one(rendered["audit-off"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not [a for a in c["args"] if a.startswith("--audit")]


def test_policies_catalogs_and_profile_from_configmaps(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["ha-postgres-everything"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    maps = {m["metadata"]["name"]: m for m in by_kind(docs, "ConfigMap")}
    own = next(n for n in maps if n.endswith("-policies"))
    assert maps[own]["data"]["team.yaml"] == POLICY
    assert f"--policies=/etc/charter/policies/{own}" in c["args"]
    assert "--policies=/etc/charter/policies/org-policies" in c["args"]
    mounted = {
        m["mountPath"]: next(v for v in pod["volumes"] if v["name"] == m["name"]) for m in c["volumeMounts"]
    }
    for arg in c["args"]:
        flag, _, path = arg.partition("=")
        if flag in ("--policies", "--context"):
            assert "configMap" in mounted[path]
    assert mounted["/etc/charter/policies/org-policies"]["configMap"]["name"] == "org-policies"
    cluster = next(n for n in maps if n.endswith("-cluster"))
    assert "--cluster=/etc/charter/cluster/cluster.yaml" in c["args"]
    assert mounted["/etc/charter/cluster"]["configMap"]["name"] == cluster
    assert c["image"] == "ghcr.io/charter-dev/charter@sha256:" + "a" * 64
    # No policy ConfigMap: the packs in the image.
    c = one(rendered["single-replica-sqlite"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not [a for a in c["args"] if a.startswith("--policies")]
    c = one(rendered["cert-manager-existing-secrets"], "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert "--cluster=/etc/charter/cluster/prod.yaml" in c["args"]


def test_rbac_reads_namespaces_and_attestations(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["ha-postgres-everything"]
    rules = one(docs, "ClusterRole")["rules"]
    assert {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]} in rules
    assert any("modelattestations" in r["resources"] for r in rules)
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in rules)
    binding = one(docs, "ClusterRoleBinding")
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == sa
    sm = one(docs, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["port"] == "metrics" and sm["metadata"]["labels"]["release"] == "prom"
    np = one(docs, "NetworkPolicy")
    assert [p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]] == ["https", "metrics"]
    assert not by_kind(rendered["single-replica-sqlite"], "ServiceMonitor")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "SQLite is a single-writer store"),
        ({"replicaCount": 3, "audit": {"sqlite": {"path": "/data/a.db"}}}, "replicaCount > 1"),
        ({"replicaCount": 1, "tls": {"existingSecret": "x"}}, "tls.existingSecret needs tls.caBundle"),
        (
            {"replicaCount": 1, "audit": {"signingKey": {"generate": False}}},
            "charter audit keygen",
        ),
        ({"replicaCount": 1, "securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"replicaCount": 1, "podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"replicaCount": 1, "webhook": {"failurePolicy": "Maybe"}}, "failurePolicy"),
        ({"replicaCount": 1, "webhook": {"timeoutSeconds": 60}}, "timeoutSeconds"),
        ({"replicaCount": 1, "unknownKey": 1}, "unknownKey"),
    ],
)
def test_refused_configurations(
    run_helm: Callable[..., subprocess.CompletedProcess[str]], values: dict[str, Any], message: str
) -> None:
    proc = run_helm("template", values)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
