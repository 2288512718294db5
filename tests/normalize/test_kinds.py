"""Pod templates and derived fields for every supported kind."""

from __future__ import annotations

from typing import Any

import pytest
from charter.engine.normalize import extract_pod_templates, normalize

from .conftest import assert_json_like


def container(
    name: str = "main", image: str = "nvcr.io/nvidia/pytorch:24.05-py3", **res: Any
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if res:
        c["resources"] = res
    return c


def pod_spec(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"containers": list(containers) or [container()], **extra}


def tmpl(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "x"}}, "spec": pod_spec(*containers, **extra)}


def obj(kind: str, spec: Any, api: str = "v1", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": "w", "namespace": "ml-research", **meta},
        "spec": spec,
    }


GPU8: dict[str, Any] = {"limits": {"nvidia.com/gpu": 8}}


def paths(w: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(t["path"], t["role"], t["replicas"]) for t in w["podTemplates"]]


def test_pod() -> None:
    w = normalize(obj("Pod", pod_spec(container(**GPU8)), labels={"charter.dev/owner": "dana"}))
    assert paths(w) == [("spec", "", 1)]
    assert w["podTemplates"][0]["labels"] == {"charter.dev/owner": "dana"}
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 8}
    assert w["problems"] == []
    assert_json_like(w)


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet"])
def test_replicated_kinds(kind: str) -> None:
    w = normalize(obj(kind, {"replicas": 3, "template": tmpl(container(**GPU8))}, "apps/v1"))
    assert paths(w) == [("spec.template.spec", "", 3)]
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 24}
    assert w["accelerators"]["perPod"] == {"nvidia.com/gpu": 8}
    assert w["accelerators"]["count"] == 24


def test_deployment_replicas_default_and_zero() -> None:
    assert paths(normalize(obj("Deployment", {"template": tmpl()})))[0][2] == 1
    assert paths(normalize(obj("Deployment", {"replicas": 0, "template": tmpl()})))[0][2] == 0


def test_daemonset() -> None:
    assert paths(normalize(obj("DaemonSet", {"template": tmpl()}, "apps/v1"))) == [
        ("spec.template.spec", "", 1)
    ]


def test_job_parallelism() -> None:
    w = normalize(obj("Job", {"parallelism": 4, "template": tmpl(container(**GPU8))}, "batch/v1"))
    assert paths(w) == [("spec.template.spec", "", 4)]
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 32}


def test_cronjob() -> None:
    w = normalize(
        obj("CronJob", {"schedule": "@daily", "jobTemplate": {"spec": {"template": tmpl()}}}, "batch/v1")
    )
    assert paths(w) == [("spec.jobTemplate.spec.template.spec", "", 1)]


@pytest.mark.parametrize(
    ("kind", "key", "roles"),
    [
        ("PyTorchJob", "pytorchReplicaSpecs", ("Master", "Worker")),
        ("TFJob", "tfReplicaSpecs", ("Chief", "Worker")),
        ("MPIJob", "mpiReplicaSpecs", ("Launcher", "Worker")),
        ("XGBoostJob", "xgbReplicaSpecs", ("Master", "Worker")),
        ("PaddleJob", "paddleReplicaSpecs", ("Master", "Worker")),
        ("JAXJob", "jaxReplicaSpecs", ("Worker",)),
    ],
)
def test_kubeflow_jobs(kind: str, key: str, roles: tuple[str, ...]) -> None:
    spec = {key: {r: {"replicas": 2, "template": tmpl(container(**GPU8))} for r in roles}}
    w = normalize(obj(kind, spec, "kubeflow.org/v1"))
    assert paths(w) == [(f"spec.{key}.{r}.template.spec", r, 2) for r in roles]
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 16 * len(roles)}
    assert [c["podTemplate"] for c in w["containers"]] == list(range(len(roles)))


def test_pytorchjob_8_h100_per_worker() -> None:
    spec = {
        "pytorchReplicaSpecs": {
            "Worker": {
                "replicas": 4,
                "template": tmpl(
                    container(**GPU8), nodeSelector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
                ),
            }
        }
    }
    a = normalize(obj("PyTorchJob", spec, "kubeflow.org/v1"))["accelerators"]
    assert a["requests"] == [
        {"podTemplate": 0, "container": "main", "resource": "nvidia.com/gpu", "count": 8, "source": "limits",
         "requestsEqualLimits": True}
    ]  # fmt: skip
    assert a["perPod"] == {"nvidia.com/gpu": 8}
    assert a["total"] == {"nvidia.com/gpu": 32}
    assert a["products"] == ["NVIDIA-H100-80GB-HBM3"]


def test_trainjob() -> None:
    spec = {
        "runtimeRef": {"name": "torch-distributed", "kind": "ClusterTrainingRuntime", "apiGroup": "trainer.kubeflow.org"},
        "initializer": {"model": {"storageUri": "hf://Qwen/Qwen2.5-7B"}, "dataset": {"storageUri": "s3://b/d"}},
        "trainer": {"image": "nvcr.io/nvidia/pytorch:24.05-py3", "numNodes": 2,
                    "resourcesPerNode": {"limits": {"nvidia.com/gpu": 4}}, "env": [{"name": "A", "value": "1"}]},
    }  # fmt: skip
    w = normalize(obj("TrainJob", spec, "trainer.kubeflow.org/v1alpha1"))
    assert paths(w) == [("spec.trainer", "trainer", 2)]
    assert w["containers"][0]["name"] == "node" and w["containers"][0]["env"] == {"A": "1"}
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 8}
    assert w["runtimeRef"] == {
        "name": "torch-distributed",
        "kind": "ClusterTrainingRuntime",
        "apiGroup": "trainer.kubeflow.org",
    }
    assert w["models"][0]["uri"] == "hf://Qwen/Qwen2.5-7B" and w["models"][0]["source"] == "storageUri"
    assert w["datasets"] == [{"id": "s3://b/d", "uri": "s3://b/d", "source": "storageUri", "scheme": "s3"}]


def test_trainjob_runtime_patches_are_the_trainer_templates_patches() -> None:
    sa = {"serviceAccountName": "trainer-sa"}
    tol = {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
    spec = {
        "runtimeRef": {"name": "torch"},
        "trainer": {"numNodes": 1},
        "runtimePatches": [
            {"manager": "me", "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
                {"name": "node", "template": {"spec": {"template": {"spec": sa}}}},
                {"name": "init"},  # no pod spec: nothing to lay over
                {"name": "bad", "template": {"spec": {"template": {"spec": "oops"}}}},
            ]}}}},
            "not-a-patch",
        ],
        "podTemplateOverrides": [{"targetJobs": [{"name": "node"}], "spec": tol}],
        "podSpecOverrides": [{"automountServiceAccountToken": False}],
    }  # fmt: skip
    w = normalize(obj("TrainJob", spec, "trainer.kubeflow.org/v1alpha1"))
    (t,) = w["podTemplates"]
    assert t["patches"] == [sa, tol, {"automountServiceAccountToken": False}]
    assert t["serviceAccountName"] == "" and t["tolerations"] == []  # the template's own fields stay its own
    assert sorted(p["path"] for p in w["problems"]) == [
        "spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[2].template.spec.template.spec",
        "spec.runtimePatches[1]",
    ]
    # other kinds have no patches
    assert normalize(obj("Pod", pod_spec()))["podTemplates"][0]["patches"] == []


def test_trainjob_without_trainer_uses_runtime() -> None:
    w = normalize(obj("TrainJob", {"runtimeRef": {"name": "torch"}}))
    assert w["podTemplates"] == [] and w["runtimeRef"]["name"] == "torch" and w["problems"] == []


def ray_cluster(worker_params: dict[str, Any], worker: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "headGroupSpec": {"rayStartParams": {}, "template": tmpl(container("ray-head"))},
        "workerGroupSpecs": [
            {"groupName": "gpu", "replicas": 3, "rayStartParams": worker_params,
             "template": tmpl(worker or container("ray-worker"))}
        ],
    }  # fmt: skip


def test_raycluster_num_gpus() -> None:
    w = normalize(obj("RayCluster", ray_cluster({"num-gpus": "2"}), "ray.io/v1"))
    assert paths(w) == [
        ("spec.headGroupSpec.template.spec", "head", 1),
        ("spec.workerGroupSpecs[0].template.spec", "gpu", 3),
    ]
    reqs = w["accelerators"]["requests"]
    assert reqs == [{"podTemplate": 1, "container": "ray-worker", "resource": "nvidia.com/gpu", "count": 2,
                     "source": "ray", "requestsEqualLimits": False}]  # fmt: skip
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 6}


def test_raycluster_num_gpus_with_explicit_limit_not_double_counted() -> None:
    w = normalize(
        obj(
            "RayCluster",
            ray_cluster({"num-gpus": "2"}, container("ray-worker", limits={"nvidia.com/gpu": 2})),
        )
    )
    assert [r["source"] for r in w["accelerators"]["requests"]] == ["limits"]
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 6}


def test_raycluster_multihost_and_min_replicas() -> None:
    spec = ray_cluster({})
    del spec["workerGroupSpecs"][0]["replicas"]
    spec["workerGroupSpecs"][0].update(minReplicas=2, numOfHosts=4)
    assert paths(normalize(obj("RayCluster", spec)))[1][2] == 8


def test_rayjob_and_rayservice() -> None:
    w = normalize(obj("RayJob", {"entrypoint": "python x.py", "rayClusterSpec": ray_cluster({"num-gpus": 1}),
                                 "submitterPodTemplate": tmpl(container("submit"))}))  # fmt: skip
    assert [p[0] for p in paths(w)] == [
        "spec.rayClusterSpec.headGroupSpec.template.spec",
        "spec.rayClusterSpec.workerGroupSpecs[0].template.spec",
        "spec.submitterPodTemplate.spec",
    ]
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 3}
    w = normalize(obj("RayJob", {"clusterSelector": {"ray.io/cluster": "shared"}}))
    assert w["podTemplates"] == [] and w["problems"] == []
    w = normalize(obj("RayService", {"rayClusterConfig": ray_cluster({})}))
    assert paths(w)[0][0] == "spec.rayClusterConfig.headGroupSpec.template.spec"


def test_inferenceservice_model_form() -> None:
    spec = {
        "predictor": {
            "minReplicas": 2,
            "serviceAccountName": "sa",
            "model": {"modelFormat": {"name": "xgboost"}, "runtime": "kserve-xgbserver",
                      "storageUri": "oci://registry.eu.example.com/m/fraud@sha256:" + "a" * 64,
                      "resources": {"limits": {"nvidia.com/gpu": "1"}}},
        }
    }  # fmt: skip
    w = normalize(obj("InferenceService", spec, "serving.kserve.io/v1beta1"))
    assert paths(w) == [("spec.predictor", "predictor", 2)]
    assert w["inference"] == {"modelFormat": "xgboost", "runtime": "kserve-xgbserver",
                              "storageUri": spec["predictor"]["model"]["storageUri"]}  # fmt: skip
    assert w["identity"]["serviceAccountName"] == "sa"
    c = w["containers"][0]
    assert c["name"] == "kserve-container" and c["image"] == "" and c["limits"] == {"nvidia.com/gpu": "1"}
    m = w["models"][0]
    assert (m["source"], m["scheme"], m["digest"], m["name"]) == (
        "storageUri",
        "oci",
        "sha256:" + "a" * 64,
        "fraud",
    )
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 2}
    assert w["problems"] == []


def test_inferenceservice_framework_and_flat_forms() -> None:
    spec = {
        "predictor": {
            "sklearn": {"storageUri": "gs://models/iris", "image": "docker.io/kserve/sklearnserver:v0.13"}
        },
        "transformer": {"containers": [container("kserve-container", "registry.eu.example.com/t:1")]},
        "explainer": {"containers": [container("explain", "registry.eu.example.com/e:1")]},
    }
    w = normalize(obj("InferenceService", spec))
    assert [p[:2] for p in paths(w)] == [("spec.predictor", "predictor"), ("spec.transformer", "transformer"),
                                         ("spec.explainer", "explainer")]  # fmt: skip
    assert w["inference"]["modelFormat"] == "sklearn" and w["inference"]["storageUri"] == "gs://models/iris"
    assert [(c["name"], c["podTemplate"]) for c in w["containers"]] == [
        ("kserve-container", 0), ("kserve-container", 1), ("explain", 2)
    ]  # fmt: skip
    assert w["models"] == [
        {"uri": "gs://models/iris", "digest": "", "source": "storageUri", "name": "iris", "scheme": "gs"}
    ]


def test_inferenceservice_flat_predictor_storage_uri() -> None:
    spec = {"predictor": {"containers": [container()], "storageUri": "s3://m/llama"}}
    w = normalize(obj("InferenceService", spec))
    assert w["models"][0]["uri"] == "s3://m/llama" and w["inference"]["storageUri"] == "s3://m/llama"


def test_llminferenceservice() -> None:
    spec = {
        "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "name": "llama"},
        "replicas": 2,
        "template": pod_spec(container(limits={"nvidia.com/gpu": "1"})),
        "worker": pod_spec(container(limits={"nvidia.com/gpu": "1"})),
        "prefill": {"replicas": 1, "template": pod_spec(container(limits={"nvidia.com/gpu": "2"}))},
    }
    w = normalize(obj("LLMInferenceService", spec, "serving.kserve.io/v1alpha1"))
    assert paths(w) == [
        ("spec.template", "main", 2),
        ("spec.worker", "worker", 2),
        ("spec.prefill.template", "prefill", 1),
    ]
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 6}
    assert w["models"][0]["name"] == "llama" and w["models"][0]["scheme"] == "hf"


def test_jobset_tpu() -> None:
    tpl = tmpl(container(limits={"google.com/tpu": 4}),
               nodeSelector={"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                             "cloud.google.com/gke-tpu-topology": "4x4"})  # fmt: skip
    spec = {
        "replicatedJobs": [
            {"name": "slice", "replicas": 2, "template": {"spec": {"parallelism": 4, "template": tpl}}}
        ]
    }
    w = normalize(obj("JobSet", spec, "jobset.x-k8s.io/v1alpha2"))
    assert paths(w) == [("spec.replicatedJobs[0].template.spec.template.spec", "slice", 8)]
    a = w["accelerators"]
    assert a["total"] == {"google.com/tpu": 32} and a["perPod"] == {"google.com/tpu": 4}
    assert a["tpuTopology"] == "4x4" and a["products"] == ["tpu-v5-lite-podslice"]


def test_tpu_topology_without_limit_is_estimated() -> None:
    spec = {"template": tmpl(nodeSelector={"cloud.google.com/gke-tpu-topology": "2x2"})}
    a = normalize(obj("Job", spec))["accelerators"]
    assert a["requests"][0]["source"] == "tpu-topology" and a["total"] == {"google.com/tpu": 4}


def test_leaderworkerset() -> None:
    lwt = {"size": 4, "leaderTemplate": tmpl(container(**GPU8)), "workerTemplate": tmpl(container(**GPU8))}
    w = normalize(obj("LeaderWorkerSet", {"replicas": 2, "leaderWorkerTemplate": lwt}))
    assert paths(w) == [("spec.leaderWorkerTemplate.leaderTemplate.spec", "leader", 2),
                        ("spec.leaderWorkerTemplate.workerTemplate.spec", "worker", 6)]  # fmt: skip
    assert w["accelerators"]["total"] == {"nvidia.com/gpu": 64}
    del lwt["leaderTemplate"]
    assert paths(normalize(obj("LeaderWorkerSet", {"replicas": 2, "leaderWorkerTemplate": lwt}))) == [
        ("spec.leaderWorkerTemplate.workerTemplate.spec", "worker", 8)
    ]


def test_notebook() -> None:
    w = normalize(
        obj("Notebook", {"template": tmpl(container(image="jupyter/scipy-notebook"))}, "kubeflow.org/v1")
    )
    assert paths(w) == [("spec.template.spec", "", 1)]
    c = w["containers"][0]
    assert (c["registry"], c["repository"], c["latest"]) == ("docker.io", "jupyter/scipy-notebook", True)


def test_unknown_kinds() -> None:
    assert normalize(obj("ConfigMap", None))["podTemplates"] == []
    assert normalize({"kind": "ConfigMap", "data": {"a": "b"}})["problems"] == []
    assert paths(normalize(obj("Rollout", {"replicas": 2, "template": tmpl()}, "argoproj.io/v1alpha1"))) == [
        ("spec.template.spec", "", 2)
    ]
    assert paths(normalize(obj("Sandbox", pod_spec()))) == [("spec", "", 1)]
    assert normalize(obj("Widget", {"size": 3}))["podTemplates"] == []
    assert normalize(obj("Widget", "text"))["problems"] == []
    assert normalize({"kind": "List", "items": [obj("Pod", pod_spec())]})["podTemplates"] == []


def test_pod_template_fields() -> None:
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["h100"]}]}
    ]}}}  # fmt: skip
    spec = tmpl(container(**GPU8), serviceAccountName="trainer", automountServiceAccountToken=False,
                nodeSelector={"a": "b"}, tolerations=[{"key": "k", "operator": "Exists"}], affinity=aff)  # fmt: skip
    spec["metadata"]["annotations"] = {"x": "y"}
    t = normalize(obj("Deployment", {"template": spec}))["podTemplates"][0]
    assert t["serviceAccountName"] == "trainer" and t["automountServiceAccountToken"] is False
    assert t["nodeSelector"] == {"a": "b"} and t["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert t["affinity"] == aff and t["labels"] == {"app": "x"} and t["annotations"] == {"x": "y"}
    assert t["spec"] == spec["spec"]
    assert normalize(obj("Deployment", {"template": spec}))["accelerators"]["products"] == ["h100"]


def test_extract_pod_templates() -> None:
    assert [t["path"] for t in extract_pod_templates(obj("Deployment", {"template": tmpl()}))] == [
        "spec.template.spec"
    ]


def test_container_types_and_sidecars() -> None:
    spec = pod_spec(
        container("app", limits={"nvidia.com/gpu": 1}),
        initContainers=[container("warmup", limits={"nvidia.com/gpu": 4}),
                        {**container("proxy", limits={"nvidia.com/gpu": 1}), "restartPolicy": "Always"}],
        ephemeralContainers=[container("debug", "docker.io/library/busybox:1.36")],
    )  # fmt: skip
    w = normalize(obj("Pod", spec))
    assert [(c["name"], c["type"]) for c in w["containers"]] == [
        ("app", "container"), ("warmup", "init"), ("proxy", "init"), ("debug", "ephemeral")
    ]  # fmt: skip
    # warmup runs alone (4); app and the proxy sidecar run together (2).
    assert w["accelerators"]["perPod"] == {"nvidia.com/gpu": 4}


def test_identity() -> None:
    labels = {
        "owner": "a",
        "charter.dev/owner": "b",
        "team": "t",
        "cost-center": "cc",
        "azure.workload.identity/use": "true",
    }
    spec = tmpl(serviceAccountName="runner")
    spec["metadata"]["annotations"] = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}
    sa = {"kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": "ml-research",
          "annotations": {"iam.gke.io/gcp-service-account": "r@p.iam.gserviceaccount.com",
                          "azure.workload.identity/client-id": "0000-1111"}}}  # fmt: skip
    w = normalize(obj("Deployment", {"template": spec}, labels=labels), [sa])
    assert w["identity"] == {
        "serviceAccountName": "runner", "automountServiceAccountToken": None,
        "owner": "b", "team": "t", "costCenter": "cc",
        "workloadIdentity": {"gcpServiceAccount": "r@p.iam.gserviceaccount.com", "awsRoleArn": "arn:aws:iam::1:role/r",
                             "azureClientId": "0000-1111", "azureUseWorkloadIdentity": True},
    }  # fmt: skip
    assert normalize(obj("ConfigMap", None))["identity"]["owner"] == ""
