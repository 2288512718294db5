"""Pod templates of every pod-bearing kind.

This is what makes one policy apply to all kinds (Kyverno's "autogen"): a rule
written against `podTemplates`/`containers` sees the pods of a Deployment, a
PyTorchJob worker, a Ray worker group or a KServe predictor alike. Kinds are
matched on `kind` only, so any API version or group of a kind works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._common import (
    PLACEHOLDER,
    Ctx,
    at,
    count,
    get_bool,
    get_list,
    get_map,
    get_str,
    join,
    str_map,
    type_name,
)

# (raw container, its path, container type, name to use when it has none)
ContainerSource = tuple[Any, str, str, str]

_CONTAINER_LISTS = (
    ("containers", "container"),
    ("initContainers", "init"),
    ("ephemeralContainers", "ephemeral"),
)
_SIMPLE = {"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController", "Notebook"}
# KServe component keys holding one container with a storageUri: the "framework" forms.
KSERVE_FRAMEWORKS = (
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "pmml",
    "lightgbm", "paddle", "huggingface", "alibi", "art",
)  # fmt: skip
_KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")


@dataclass
class Template:
    path: str
    role: str
    replicas: int
    spec: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    containers: list[ContainerSource] = field(default_factory=list)
    ray_num_gpus: Any = None  # rayStartParams["num-gpus"], raw
    ray_params_path: str = ""
    meta_path: str = ""  # where the template's labels and annotations are, for problem paths
    patches: list[dict[str, Any]] = field(default_factory=list)  # pod specs the object lays over it

    def view(self, ctx: Ctx) -> dict[str, Any]:
        p = self.path
        spec = self.spec
        sa = get_str(spec, "serviceAccountName", p, ctx) or get_str(spec, "serviceAccount", p, ctx)
        affinity = spec.get("affinity")
        if affinity is not None and not isinstance(affinity, dict):
            ctx.problem(join(p, "affinity"), f"expected a map, got {type_name(affinity)}")
            affinity = None
        return {
            "path": p,
            "role": self.role,
            "replicas": self.replicas,
            "serviceAccountName": sa,
            "automountServiceAccountToken": get_bool(spec, "automountServiceAccountToken", p, ctx),
            "nodeSelector": str_map(spec.get("nodeSelector"), join(p, "nodeSelector"), ctx),
            "tolerations": get_list(spec, "tolerations", p, ctx),
            "affinity": affinity or {},
            "labels": self.labels,
            "annotations": self.annotations,
            "spec": spec,
            "patches": self.patches,
        }


@dataclass
class Extras:
    """What some kinds carry besides pod templates."""

    inference: dict[str, str] = field(
        default_factory=lambda: {"modelFormat": "", "runtime": "", "storageUri": ""}
    )
    # (uri, path, name) of model locations written in the spec: KServe storageUri, LLMInferenceService
    # model.uri, TrainJob initializer.model.storageUri
    model_uris: list[tuple[str, str, str]] = field(default_factory=list)
    dataset_uris: list[tuple[str, str]] = field(default_factory=list)
    runtime_ref: dict[str, str] = field(default_factory=lambda: {"name": "", "kind": "", "apiGroup": ""})


def count_of(v: Any, path: str, ctx: Ctx, default: int = 1) -> int:
    """A replica-like count: absent is `default`; unparsable is reported and `default`."""
    if v is None:
        return default
    n, why = count(v)
    if n is None or n < 0:
        if isinstance(v, str) and PLACEHOLDER.search(v):
            why = f"unrendered template placeholder {v!r}"
        ctx.problem(path, f"not a count: {why or repr(v)}; assuming {default}")
        return default
    return n


def _pod(
    spec: Any, path: str, role: str, replicas: int, meta: dict[str, Any], meta_path: str, ctx: Ctx
) -> Template | None:
    """A template from a pod spec (`path` is the pod spec's own path)."""
    if not isinstance(spec, dict):
        what = "missing" if spec is None else f"expected a map, got {type_name(spec)}"
        ctx.problem(path, f"pod spec {what}")
        return None
    t = Template(
        path=path,
        role=role,
        replicas=replicas,
        spec=spec,
        labels=str_map(meta.get("labels"), join(meta_path, "labels"), ctx) if meta else {},
        annotations=str_map(meta.get("annotations"), join(meta_path, "annotations"), ctx) if meta else {},
        meta_path=meta_path,
    )
    for key, ctype in _CONTAINER_LISTS:
        lp = join(path, key)
        for i, c in enumerate(get_list(spec, key, path, ctx)):
            t.containers.append((c, at(lp, i), ctype, ""))
    return t


def _template(tpl: Any, path: str, role: str, replicas: int, ctx: Ctx) -> Template | None:
    """A template from a PodTemplateSpec `{metadata, spec}` at `path`."""
    if not isinstance(tpl, dict):
        what = "missing" if tpl is None else f"expected a map, got {type_name(tpl)}"
        ctx.problem(path, f"pod template {what}")
        return None
    meta = get_map(tpl, "metadata", path, ctx)
    return _pod(tpl.get("spec"), join(path, "spec"), role, replicas, meta, join(path, "metadata"), ctx)


# Kubeflow Trainer runtimes hold a JobSet template that only a TrainJob runs.
_RUNTIME_TEMPLATES = frozenset({"TrainingRuntime", "ClusterTrainingRuntime"})


def extract(obj: dict[str, Any], ctx: Ctx) -> tuple[list[Template], Extras]:
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else ""
    extras = Extras()
    out: list[Template | None] = []
    spec_v = obj.get("spec")
    if kind == "PodTemplate":
        out.append(_template(obj.get("template"), "template", "", 1, ctx))
        return [t for t in out if t], extras
    if kind in _RUNTIME_TEMPLATES:
        return [], extras  # blueprints that TrainJobs instantiate: judged on the TrainJob, not here
    if not isinstance(spec_v, dict) and kind not in _KNOWN:
        return [], extras  # an unknown kind's spec may be anything: nothing to report
    if not isinstance(spec_v, dict):
        what = "missing" if spec_v is None else f"expected a map, got {type_name(spec_v)}"
        ctx.problem("spec", f"spec {what}")
        return [], extras
    spec: dict[str, Any] = spec_v
    if kind == "Pod":
        meta = get_map(obj, "metadata", "", ctx)
        out.append(_pod(spec, "spec", "", 1, meta, "metadata", ctx))
    elif kind in _SIMPLE:
        out.append(_template(spec.get("template"), "spec.template", "", _replicas(spec, "spec", ctx), ctx))
    elif kind == "DaemonSet":
        out.append(_template(spec.get("template"), "spec.template", "", 1, ctx))
    elif kind == "Job":
        n = count_of(spec.get("parallelism"), "spec.parallelism", ctx)
        out.append(_template(spec.get("template"), "spec.template", "", n, ctx))
    elif kind == "CronJob":
        job = get_map(get_map(spec, "jobTemplate", "spec", ctx), "spec", "spec.jobTemplate", ctx)
        n = count_of(job.get("parallelism"), "spec.jobTemplate.spec.parallelism", ctx)
        out.append(_template(job.get("template"), "spec.jobTemplate.spec.template", "", n, ctx))
    elif kind == "TrainJob":
        out.append(_trainjob(spec, extras, ctx))
    elif kind == "RayCluster":
        out.extend(_ray_cluster(spec, "spec", ctx))
    elif kind == "RayJob":
        # Without rayClusterSpec the job runs on an existing cluster (clusterSelector): no pods here.
        if spec.get("rayClusterSpec") is not None:
            out.extend(_ray_cluster(get_map(spec, "rayClusterSpec", "spec", ctx), "spec.rayClusterSpec", ctx))
        if spec.get("submitterPodTemplate") is not None:
            out.append(
                _template(spec["submitterPodTemplate"], "spec.submitterPodTemplate", "submitter", 1, ctx)
            )
    elif kind == "RayService":
        cfg = get_map(spec, "rayClusterConfig", "spec", ctx)
        out.extend(_ray_cluster(cfg, "spec.rayClusterConfig", ctx))
    elif kind == "InferenceService":
        out.extend(_inference_service(spec, extras, ctx))
    elif kind == "LLMInferenceService":
        out.extend(_llm_inference_service(spec, extras, ctx))
    elif kind == "JobSet":
        out.extend(_jobset(spec, ctx))
    elif kind == "LeaderWorkerSet":
        out.extend(_leader_worker_set(spec, ctx))
    elif any(k.endswith("ReplicaSpecs") for k in spec):
        out.extend(_kubeflow(spec, ctx))
    elif isinstance(spec.get("template"), dict) and isinstance(spec["template"].get("spec"), dict):
        out.append(_template(spec["template"], "spec.template", "", _replicas(spec, "spec", ctx), ctx))
    elif isinstance(spec.get("containers"), list):
        out.append(_pod(spec, "spec", "", 1, get_map(obj, "metadata", "", ctx), "metadata", ctx))
    elif kind in _KUBEFLOW:
        ctx.problem("spec", f"{kind} has no spec.*ReplicaSpecs")
    return [t for t in out if t], extras


_KUBEFLOW = {"PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "MXJob"}
_KNOWN = (
    _SIMPLE
    | _KUBEFLOW
    | {"Pod", "DaemonSet", "Job", "CronJob", "TrainJob", "RayCluster", "RayJob", "RayService"}
    | {"InferenceService", "LLMInferenceService", "JobSet", "LeaderWorkerSet"}
)


def _replicas(spec: dict[str, Any], path: str, ctx: Ctx) -> int:
    return count_of(spec.get("replicas"), join(path, "replicas"), ctx)


def _kubeflow(spec: dict[str, Any], ctx: Ctx) -> list[Template | None]:
    out: list[Template | None] = []
    for key, roles in spec.items():
        if not key.endswith("ReplicaSpecs"):
            continue
        path = join("spec", key)
        if not isinstance(roles, dict):
            ctx.problem(path, f"expected a map of roles, got {type_name(roles)}")
            continue
        for role, rs in roles.items():
            rp = join(path, role)
            if not isinstance(rs, dict):
                ctx.problem(rp, f"expected a replica spec, got {type_name(rs)}")
                continue
            n = count_of(rs.get("replicas"), join(rp, "replicas"), ctx)
            out.append(_template(rs.get("template"), join(rp, "template"), role, n, ctx))
    return out


def _ray_cluster(spec: dict[str, Any], path: str, ctx: Ctx) -> list[Template | None]:
    out: list[Template | None] = []
    groups: list[tuple[Any, str, bool]] = []
    if "headGroupSpec" in spec:
        groups.append((spec["headGroupSpec"], join(path, "headGroupSpec"), True))
    else:
        ctx.problem(path, "Ray cluster has no headGroupSpec")
    wp = join(path, "workerGroupSpecs")
    groups.extend((g, at(wp, i), False) for i, g in enumerate(get_list(spec, "workerGroupSpecs", path, ctx)))
    for group, gp, head in groups:
        if not isinstance(group, dict):
            ctx.problem(gp, f"expected a group spec, got {type_name(group)}")
            continue
        if head:
            role, n = "head", 1
        else:
            role = get_str(group, "groupName", gp, ctx) or "worker"
            raw = group.get("replicas", group.get("minReplicas"))
            key = "replicas" if "replicas" in group else "minReplicas"
            # Multi-host groups (TPU slices) start numOfHosts pods per replica.
            n = count_of(raw, join(gp, key), ctx) * count_of(
                group.get("numOfHosts"), join(gp, "numOfHosts"), ctx
            )
        t = _template(group.get("template"), join(gp, "template"), role, n, ctx)
        if t is not None:
            params = get_map(group, "rayStartParams", gp, ctx)
            t.ray_num_gpus = params.get("num-gpus")
            t.ray_params_path = join(join(gp, "rayStartParams"), "num-gpus")
        out.append(t)
    return out


def _inference_service(spec: dict[str, Any], extras: Extras, ctx: Ctx) -> list[Template | None]:
    out: list[Template | None] = []
    for comp in _KSERVE_COMPONENTS:
        c = spec.get(comp)
        if c is None:
            if comp == "predictor":
                ctx.problem("spec.predictor", "InferenceService has no predictor")
            continue
        path = join("spec", comp)
        if not isinstance(c, dict):
            ctx.problem(path, f"expected a component spec, got {type_name(c)}")
            continue
        # A component is a pod spec inline plus extension fields (replicas, labels, annotations).
        meta = {"labels": c.get("labels"), "annotations": c.get("annotations")}
        n = count_of(c.get("minReplicas"), join(path, "minReplicas"), ctx)
        t = _pod(c, path, comp, n, meta, path, ctx)
        if t is None:
            continue
        out.append(t)
        _kserve_uri(c, "storageUri", path, comp, extras, ctx)
        _kserve_uri(get_map(c, "storage", path, ctx), "storageUri", join(path, "storage"), comp, extras, ctx)
        for i, su in enumerate(get_list(c, "storageUris", path, ctx)):
            if isinstance(su, dict):
                _kserve_uri(su, "uri", at(join(path, "storageUris"), i), comp, extras, ctx)
        for fw in KSERVE_FRAMEWORKS:
            body = c.get(fw)
            if body is None:
                continue
            fp = join(path, fw)
            if not isinstance(body, dict):
                ctx.problem(fp, f"expected a model spec, got {type_name(body)}")
                continue
            t.containers.insert(0, (body, fp, "container", "kserve-container"))
            _kserve_uri(body, "storageUri", fp, comp, extras, ctx)
            _kserve_uri(
                get_map(body, "storage", fp, ctx), "storageUri", join(fp, "storage"), comp, extras, ctx
            )
            if comp != "predictor":
                continue
            inf = extras.inference
            if fw == "model":
                mf = get_map(body, "modelFormat", fp, ctx)
                inf["modelFormat"] = inf["modelFormat"] or get_str(mf, "name", join(fp, "modelFormat"), ctx)
                inf["runtime"] = inf["runtime"] or get_str(body, "runtime", fp, ctx)
            else:
                inf["modelFormat"] = inf["modelFormat"] or fw
    return out


def _kserve_uri(body: dict[str, Any], key: str, path: str, comp: str, extras: Extras, ctx: Ctx) -> None:
    uri = get_str(body, key, path, ctx)
    if not uri:
        return
    extras.model_uris.append((uri, join(path, key), ""))
    if comp == "predictor" and not extras.inference["storageUri"]:
        extras.inference["storageUri"] = uri


def _llm_inference_service(spec: dict[str, Any], extras: Extras, ctx: Ctx) -> list[Template | None]:
    model = get_map(spec, "model", "spec", ctx)
    uri = get_str(model, "uri", "spec.model", ctx)
    if uri:
        extras.model_uris.append((uri, "spec.model.uri", get_str(model, "name", "spec.model", ctx)))
        extras.inference["storageUri"] = uri
    extras.inference["runtime"] = "llm-d"  # LLMInferenceService always runs vLLM under llm-d
    out: list[Template | None] = []
    for part, path, prefix in (
        (spec, "spec", ""),
        (get_map(spec, "prefill", "spec", ctx), "spec.prefill", "prefill"),
    ):
        if path != "spec" and not part:
            continue
        n = count_of(part.get("replicas"), join(path, "replicas"), ctx)
        for key, role in (
            ("template", prefix or "main"),
            ("worker", f"{prefix}-worker" if prefix else "worker"),
        ):
            v = part.get(key)
            if v is None:
                continue
            # The API has a bare PodSpec here; a PodTemplateSpec {metadata, spec} is accepted too.
            if isinstance(v, dict) and isinstance(v.get("spec"), dict) and "containers" not in v:
                out.append(_template(v, join(path, key), role, n, ctx))
            else:
                out.append(_pod(v, join(path, key), role, n, {}, "", ctx))
    return out


def _jobset(spec: dict[str, Any], ctx: Ctx) -> list[Template | None]:
    out: list[Template | None] = []
    for i, rj in enumerate(get_list(spec, "replicatedJobs", "spec", ctx)):
        rp = at("spec.replicatedJobs", i)
        if not isinstance(rj, dict):
            ctx.problem(rp, f"expected a replicated job, got {type_name(rj)}")
            continue
        job = get_map(get_map(rj, "template", rp, ctx), "spec", join(rp, "template"), ctx)
        jp = f"{rp}.template.spec"
        n = count_of(rj.get("replicas"), join(rp, "replicas"), ctx) * count_of(
            job.get("parallelism"), join(jp, "parallelism"), ctx
        )
        role = get_str(rj, "name", rp, ctx)
        out.append(_template(job.get("template"), join(jp, "template"), role, n, ctx))
    return out


def _leader_worker_set(spec: dict[str, Any], ctx: Ctx) -> list[Template | None]:
    groups = _replicas(spec, "spec", ctx)
    lwt = get_map(spec, "leaderWorkerTemplate", "spec", ctx)
    lp = "spec.leaderWorkerTemplate"
    size = count_of(lwt.get("size"), join(lp, "size"), ctx)
    out: list[Template | None] = []
    has_leader = lwt.get("leaderTemplate") is not None
    if has_leader:
        out.append(_template(lwt["leaderTemplate"], join(lp, "leaderTemplate"), "leader", groups, ctx))
    # `size` counts the leader; without a leaderTemplate the leader runs the worker template.
    workers = groups * (max(size - 1, 0) if has_leader else size)
    out.append(_template(lwt.get("workerTemplate"), join(lp, "workerTemplate"), "worker", workers, ctx))
    return out


def _trainjob(spec: dict[str, Any], extras: Extras, ctx: Ctx) -> Template | None:
    ref = get_map(spec, "runtimeRef", "spec", ctx)
    for k in ("name", "kind", "apiGroup"):
        extras.runtime_ref[k] = get_str(ref, k, "spec.runtimeRef", ctx)
    init = get_map(spec, "initializer", "spec", ctx)
    for what in ("model", "dataset"):
        body = get_map(init, what, "spec.initializer", ctx)
        uri = get_str(body, "storageUri", join("spec.initializer", what), ctx)
        if uri and what == "model":
            extras.model_uris.append((uri, "spec.initializer.model.storageUri", ""))
        elif uri:
            extras.dataset_uris.append((uri, "spec.initializer.dataset.storageUri"))
    if spec.get("trainer") is None:
        return None  # the runtime's own template applies; nothing in this object to read
    trainer = get_map(spec, "trainer", "spec", ctx)
    n = count_of(trainer.get("numNodes"), "spec.trainer.numNodes", ctx)
    # The trainer block is one container per node: resourcesPerNode is its resources.
    container = {
        "name": "node",
        "image": trainer.get("image"),
        "env": trainer.get("env"),
        "command": trainer.get("command"),
        "args": trainer.get("args"),
        "resources": trainer.get("resourcesPerNode"),
    }
    t = Template(path="spec.trainer", role="trainer", replicas=n, spec=trainer, labels={}, annotations={})
    t.patches = _trainjob_patches(spec, ctx)
    if trainer.get("image") is not None or trainer.get("resourcesPerNode") is not None:
        t.containers.append((container, "spec.trainer", "container", "node"))
    return t


def _trainjob_patches(spec: dict[str, Any], ctx: Ctx) -> list[dict[str, Any]]:
    """The pod specs a TrainJob lays over its runtime's pods (ServiceAccount, tolerations, ...).

    Kubeflow Trainer's `spec.runtimePatches[].trainingRuntimeSpec.template.spec.replicatedJobs[]
    .template.spec.template.spec`, and the older APIs' `spec.podTemplateOverrides[].spec` and
    `spec.podSpecOverrides[]`; each as written, in that order.
    """
    out: list[dict[str, Any]] = []

    def add(v: Any, path: str) -> None:
        if isinstance(v, dict):
            out.append(v)
        elif v is not None:
            ctx.problem(path, f"pod spec patch: expected a map, got {type_name(v)}")

    for i, patch in enumerate(get_list(spec, "runtimePatches", "spec", ctx)):
        pp = at("spec.runtimePatches", i)
        if not isinstance(patch, dict):
            add(patch, pp)
            continue
        jobs_path = f"{pp}.trainingRuntimeSpec.template.spec"
        body: Any = patch
        for key in ("trainingRuntimeSpec", "template", "spec"):
            body = body.get(key) if isinstance(body, dict) else None
        jobs = body.get("replicatedJobs") if isinstance(body, dict) else None
        if jobs is not None and not isinstance(jobs, list):
            ctx.problem(join(jobs_path, "replicatedJobs"), f"expected a list, got {type_name(jobs)}")
            jobs = None
        for j, job in enumerate(jobs or []):
            pod: Any = job
            for key in ("template", "spec", "template", "spec"):
                pod = pod.get(key) if isinstance(pod, dict) else None
            add(pod, at(join(jobs_path, "replicatedJobs"), j) + ".template.spec.template.spec")
    for i, o in enumerate(get_list(spec, "podTemplateOverrides", "spec", ctx)):
        add(o.get("spec") if isinstance(o, dict) else o, at("spec.podTemplateOverrides", i) + ".spec")
    for i, o in enumerate(get_list(spec, "podSpecOverrides", "spec", ctx)):
        add(o, at("spec.podSpecOverrides", i))
    return out
