"""Accelerator demand: device-plugin resources, DRA claims, Ray num-gpus, TPU topology."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ._common import PLACEHOLDER, Ctx, at, count, get_list, get_map, get_str, join, type_name
from .containers import Container
from .podspecs import Template

_EXACT = {
    "nvidia.com/gpu", "nvidia.com/gpu.shared", "amd.com/gpu", "google.com/tpu", "habana.ai/gaudi",
    "aws.amazon.com/neuron", "aws.amazon.com/neuroncore", "aws.amazon.com/neurondevice",
    "intel.com/gpu", "gpu.intel.com/i915", "gpu.intel.com/xe",
}  # fmt: skip
# Other vendors' extended resources (huawei.com/Ascend910, xilinx.com/fpga-...) by their name.
_NAME_HINT = re.compile(r"gpu|tpu|mig-|gaudi|neuron|npu|ascend|fpga", re.IGNORECASE)
# Node labels whose values name the accelerator product or the machine that carries it.
PRODUCT_KEYS = (
    "nvidia.com/gpu.product", "cloud.google.com/gke-accelerator", "cloud.google.com/gke-tpu-accelerator",
    "karpenter.k8s.aws/instance-gpu-name", "node.kubernetes.io/instance-type", "amd.com/gpu.product",
    "beta.kubernetes.io/instance-type", "gpu.intel.com/product",
)  # fmt: skip
_DEVICE_PRODUCT_KEYS = tuple(k for k in PRODUCT_KEYS if "instance-type" not in k)
TPU_TOPOLOGY = "cloud.google.com/gke-tpu-topology"
_PRODUCT_IN_CEL = re.compile(r"""\.?productName"?\]?\s*==\s*["']([^"']+)["']""")
_DRA_KINDS = ("ResourceClaim", "ResourceClaimTemplate")


@lru_cache(maxsize=1024)
def is_accelerator(resource: str) -> bool:
    if resource in _EXACT or resource.startswith("nvidia.com/mig-"):
        return True
    domain, slash, name = resource.partition("/")
    return bool(slash) and not domain.endswith("kubernetes.io") and bool(_NAME_HINT.search(name))


def _count(v: Any, path: str, ctx: Ctx) -> int | None:
    n, why = count(v)
    if n is None:
        if isinstance(v, str) and PLACEHOLDER.search(v):
            ctx.problem(path, f"unrendered template placeholder {v!r}; device count unknown")
        else:
            ctx.problem(path, f"device count unknown: {why}")
        return None
    if n < 0:
        ctx.problem(path, f"negative device count {n}")
        return None
    return n


def _required_terms(spec: dict[str, Any]) -> list[dict[str, Any]]:
    aff = spec.get("affinity")
    if not isinstance(aff, dict) or not isinstance(aff.get("nodeAffinity"), dict):
        return []
    req = aff["nodeAffinity"].get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = req.get("nodeSelectorTerms") if isinstance(req, dict) else None
    if not isinstance(terms, list):
        return []
    out: list[dict[str, Any]] = []
    for term in terms:
        exprs = term.get("matchExpressions") if isinstance(term, dict) else None
        if isinstance(exprs, list):
            out.extend(e for e in exprs if isinstance(e, dict))
    return out


def _node_requirements(spec: dict[str, Any]) -> dict[str, list[str]]:
    """{node label: values} a pod spec requires, from nodeSelector and required node affinity `In`."""
    out: dict[str, list[str]] = {}
    ns = spec.get("nodeSelector")
    if isinstance(ns, dict):
        for k, v in ns.items():
            if isinstance(v, str):
                out.setdefault(k, []).append(v)
    for e in _required_terms(spec):
        key, values = e.get("key"), e.get("values")
        if isinstance(key, str) and e.get("operator") == "In" and isinstance(values, list):
            out.setdefault(key, []).extend(v for v in values if isinstance(v, str))
    return out


class _Related:
    def __init__(self, related: Sequence[Any], namespace: str) -> None:
        self.by_name: dict[tuple[str, str], dict[str, Any]] = {}
        for o in related:
            if not isinstance(o, dict) or o.get("kind") not in _DRA_KINDS:
                continue
            meta = o.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            ns = meta.get("namespace")
            # A related object in another namespace cannot be the one a pod refers to.
            if isinstance(ns, str) and ns and namespace and ns != namespace:
                continue
            if isinstance(meta.get("name"), str):
                self.by_name.setdefault((o["kind"], meta["name"]), o)


def _device_requests(obj: dict[str, Any], ctx: Ctx, where: str) -> list[dict[str, Any]]:
    """Device requests of a ResourceClaim(Template) in any resource.k8s.io version."""
    spec = obj.get("spec")
    if obj.get("kind") == "ResourceClaimTemplate":
        spec = spec.get("spec") if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        ctx.problem(where, f"{obj.get('kind')} has no spec")
        return []
    if isinstance(spec.get("resourceClassName"), str):  # v1alpha2, classic DRA: one device per class
        return [
            {
                "request": "",
                "deviceClass": spec["resourceClassName"],
                "count": 1,
                "allocationMode": "",
                "selectors": [],
            }
        ]
    out = []
    devices = spec.get("devices")
    requests = devices.get("requests") if isinstance(devices, dict) else None
    if not isinstance(requests, list):
        ctx.problem(where, f"{obj.get('kind')} has no spec.devices.requests")
        return []
    for i, r in enumerate(requests):
        if not isinstance(r, dict):
            continue
        body = r
        if isinstance(r.get("exactly"), dict):  # v1, v1beta2
            body = r["exactly"]
        elif isinstance(r.get("firstAvailable"), list) and r["firstAvailable"]:
            # Alternatives in order of preference: the first is what the author wants.
            first = r["firstAvailable"][0]
            body = first if isinstance(first, dict) else {}
        mode = body.get("allocationMode") if isinstance(body.get("allocationMode"), str) else "ExactCount"
        n: int | None = 0
        if mode == "All":
            ctx.problem(f"{where}.requests[{i}]", "allocationMode All: device count depends on the node")
        else:
            n = _count(body.get("count", 1), f"{where}.requests[{i}].count", ctx)
        sels = body.get("selectors")
        out.append(
            {
                "request": r.get("name") if isinstance(r.get("name"), str) else "",
                "deviceClass": body.get("deviceClassName")
                if isinstance(body.get("deviceClassName"), str)
                else "",
                "count": n or 0,
                "allocationMode": mode,
                "selectors": sels if isinstance(sels, list) else [],
            }
        )
    return out


def compute(
    templates: list[Template],
    containers: list[Container],
    related: Sequence[Any],
    namespace: str,
    object_labels: dict[str, str],
    ctx: Ctx,
) -> dict[str, Any]:
    requests: list[dict[str, Any]] = []
    dra_claims: list[dict[str, Any]] = []
    products: list[str] = []
    total: dict[str, int] = {}
    per_pod: dict[str, int] = {}
    topology = ""
    rel: _Related | None = None
    by_template: dict[int, list[Container]] = {}
    for c in containers:
        by_template.setdefault(c.template, []).append(c)

    for ti, t in enumerate(templates):
        regular: dict[str, int] = {}
        init_max: dict[str, int] = {}
        first_req = len(requests)
        tcs = by_template.get(ti, [])
        for c in tcs:
            names = [r for r in (*c.raw_limits, *c.raw_requests) if is_accelerator(r)]
            for res in dict.fromkeys(names):
                lim, req = c.raw_limits.get(res), c.raw_requests.get(res)
                if lim is not None:
                    n = _count(lim, join(f"{c.path}.resources.limits", res), ctx)
                    src = "limits"
                else:
                    n = _count(req, join(f"{c.path}.resources.requests", res), ctx)
                    src = "requests"
                if n is None:
                    continue
                # Kubernetes defaults requests to limits for extended resources, and rejects both
                # a request without a limit and a request that differs from the limit.
                equal = req is None or (lim is not None and count(req)[0] == n)
                requests.append(
                    {"podTemplate": ti, "container": c.view["name"], "resource": res, "count": n,
                     "source": src, "requestsEqualLimits": equal}
                )  # fmt: skip
                if c.view["type"] == "init" and not c.sidecar:
                    init_max[res] = max(init_max.get(res, 0), n)
                elif c.view["type"] != "ephemeral":
                    regular[res] = regular.get(res, 0) + n
        first_name = tcs[0].view["name"] if tcs else ""

        if t.ray_num_gpus is not None and "nvidia.com/gpu" not in regular:
            # Ray schedules on num-gpus; without a limit Kubernetes reserves no GPU for the pod.
            n = _count(t.ray_num_gpus, t.ray_params_path, ctx)
            if n:
                requests.append(
                    {"podTemplate": ti, "container": first_name, "resource": "nvidia.com/gpu", "count": n,
                     "source": "ray", "requestsEqualLimits": False}
                )  # fmt: skip
                regular["nvidia.com/gpu"] = regular.get("nvidia.com/gpu", 0) + n

        node = _node_requirements(t.spec)
        topo = (node.get(TPU_TOPOLOGY) or [t.labels.get(TPU_TOPOLOGY, "")])[0]
        if topo:
            if topology and topo != topology:
                ctx.problem(t.path, f"TPU topology {topo!r} differs from {topology!r} in another template")
            topology = topology or topo
            if "google.com/tpu" not in regular:
                n = _tpu_chips_per_pod(topo, t, ctx)
                if n:
                    requests.append(
                        {"podTemplate": ti, "container": first_name, "resource": "google.com/tpu", "count": n,
                         "source": "tpu-topology", "requestsEqualLimits": False}
                    )  # fmt: skip
                    regular["google.com/tpu"] = n

        claims = get_list(t.spec, "resourceClaims", t.path, ctx)
        if claims:
            rel = rel or _Related(related, namespace)
            for req in _dra(t, ti, tcs, claims, rel, dra_claims, products, ctx):
                requests.append(req)
                regular[req["resource"]] = regular.get(req["resource"], 0) + req["count"]

        pod = {r: max(regular.get(r, 0), init_max.get(r, 0)) for r in (*regular, *init_max)}
        for r, n in pod.items():
            per_pod[r] = max(per_pod.get(r, 0), n)
            total[r] = total.get(r, 0) + n * t.replicas
        # An instance type names an accelerator only on pods that ask for one.
        if node:
            for key in PRODUCT_KEYS if (len(requests) > first_req or pod) else _DEVICE_PRODUCT_KEYS:
                products.extend(node.get(key, ()))

    if not topology and object_labels.get(TPU_TOPOLOGY):
        topology = object_labels[TPU_TOPOLOGY]
    mig = [
        r["resource"][len("nvidia.com/mig-") :]
        for r in requests
        if r["resource"].startswith("nvidia.com/mig-")
    ]
    return {
        "requests": requests,
        "total": total,
        "perPod": per_pod,
        "count": sum(total.values()),
        "products": list(dict.fromkeys(products)),
        "migProfiles": list(dict.fromkeys(mig)),
        "tpuTopology": topology,
        "draClaims": dra_claims,
    }


def _dra(
    t: Template,
    ti: int,
    tcs: list[Container],
    claims: list[Any],
    rel: _Related,
    dra_claims: list[dict[str, Any]],
    products: list[str],
    ctx: Ctx,
) -> list[dict[str, Any]]:
    """Accelerator requests of a template's resource claims; fills draClaims and DRA products."""
    users: dict[str, str] = {}  # claim name -> first container that uses it
    for c in tcs:
        rv = c.raw.get("resources")
        used: Any = rv.get("claims") if isinstance(rv, dict) else None
        for cl in used if isinstance(used, list) else ():
            if isinstance(cl, dict) and isinstance(cl.get("name"), str):
                users.setdefault(cl["name"], c.view["name"])
    out: list[dict[str, Any]] = []
    for i, claim in enumerate(claims):
        for entry in _claim(claim, at(join(t.path, "resourceClaims"), i), ti, rel, ctx):
            dra_claims.append({k: v for k, v in entry.items() if k != "selectors"})
            for s in entry["selectors"]:
                cel = s.get("cel") if isinstance(s, dict) else None
                expr = cel.get("expression") if isinstance(cel, dict) else None
                if isinstance(expr, str):
                    products.extend(_PRODUCT_IN_CEL.findall(expr))
            if entry["deviceClass"] and entry["count"]:
                # A claim is allocated whole to the pod: nothing like requests < limits can happen.
                out.append(
                    {"podTemplate": ti, "container": users.get(entry["name"], ""), "resource": entry["deviceClass"],
                     "count": entry["count"], "source": "dra", "requestsEqualLimits": True}
                )  # fmt: skip
    return out


def _tpu_chips_per_pod(topology: str, t: Template, ctx: Ctx) -> int | None:
    """Chips per pod when only a slice topology is given: the slice spread over the template's pods."""
    try:
        dims = [int(d) for d in topology.lower().split("x")]
    except ValueError:
        ctx.problem(t.path, f"TPU topology {topology!r} is not of the form AxB or AxBxC")
        return None
    chips = 1
    for d in dims:
        chips *= d
    if t.replicas <= 0 or chips % t.replicas:
        ctx.problem(
            t.path, f"TPU topology {topology!r} ({chips} chips) does not divide over {t.replicas} pods"
        )
        return None
    return chips // t.replicas


def _claim(claim: Any, path: str, ti: int, rel: _Related, ctx: Ctx) -> list[dict[str, Any]]:
    if not isinstance(claim, dict):
        ctx.problem(path, f"expected a pod resource claim, got {type_name(claim)}")
        return []
    name = get_str(claim, "name", path, ctx)
    src = get_map(claim, "source", path, ctx)  # v1alpha2 nested the reference under `source`
    claim_name = get_str(claim, "resourceClaimName", path, ctx) or get_str(
        src, "resourceClaimName", path, ctx
    )
    template = get_str(claim, "resourceClaimTemplateName", path, ctx) or get_str(
        src, "resourceClaimTemplateName", path, ctx
    )
    base = {"podTemplate": ti, "name": name, "claimName": claim_name, "template": template}
    kind, ref = ("ResourceClaim", claim_name) if claim_name else ("ResourceClaimTemplate", template)
    obj = rel.by_name.get((kind, ref)) if ref else None
    if obj is None:
        ctx.problem(path, f"{kind} {ref!r} not found among the related objects; device class unknown"
                    if ref else "pod resource claim names neither a claim nor a template")  # fmt: skip
        return [
            {
                **base,
                "request": "",
                "deviceClass": "",
                "count": 0,
                "allocationMode": "",
                "apiVersion": "",
                "selectors": [],
            }
        ]
    api = obj.get("apiVersion") if isinstance(obj.get("apiVersion"), str) else ""
    return [{**base, **r, "apiVersion": api} for r in _device_requests(obj, ctx, f"{kind} {ref}")]
