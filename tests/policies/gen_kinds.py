"""Generate policies/<pack>/tests/kinds.yaml and kinds-test.yaml: every supported kind, good and bad.

Run `python tests/policies/gen_kinds.py`, then `charter test policies`.
"""

import copy
import json
from pathlib import Path

import yaml

KINDS = [
    "Pod",
    "Deployment",
    "Job",
    "CronJob",
    "StatefulSet",
    "PyTorchJob",
    "TFJob",
    "MPIJob",
    "RayJob",
    "RayCluster",
    "RayService",
    "InferenceService",
    "LLMInferenceService",
    "JobSet",
    "LeaderWorkerSet",
    "Notebook",
    "TrainJob",
]

API = {
    "Pod": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "PyTorchJob": "kubeflow.org/v1",
    "TFJob": "kubeflow.org/v1",
    "MPIJob": "kubeflow.org/v2beta1",
    "RayJob": "ray.io/v1",
    "RayCluster": "ray.io/v1",
    "RayService": "ray.io/v1",
    "InferenceService": "serving.kserve.io/v1beta1",
    "LLMInferenceService": "serving.kserve.io/v1alpha1",
    "JobSet": "jobset.x-k8s.io/v1alpha2",
    "LeaderWorkerSet": "leaderworkerset.x-k8s.io/v1",
    "Notebook": "kubeflow.org/v1",
    "TrainJob": "trainer.kubeflow.org/v1alpha1",
}


def _strip_gpu(pod):
    """The same pod without accelerator resources (launchers, Ray heads)."""
    p = copy.deepcopy(pod)
    for c in p.get("containers", []):
        for sect in ("limits", "requests"):
            r = c.get("resources", {}).get(sect)
            if r:
                for k in [k for k in r if k not in ("cpu", "memory")]:
                    del r[k]
    return p


def _job_pod(pod):
    p = copy.deepcopy(pod)
    p.setdefault("restartPolicy", "Never")
    return p


def build(kind, name, namespace, pod, labels=None, annotations=None, model_uri=None, trainjob=None):
    """pod: a PodSpec dict. model_uri: for LLMInferenceService (spec.model.uri).
    trainjob: {image, resourcesPerNode, numNodes, env, dataset, model} for TrainJob."""
    meta = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    obj = {"apiVersion": API[kind], "kind": kind, "metadata": meta}
    sel = {"app.kubernetes.io/name": name}
    tmeta = {"labels": dict(sel)}
    pod = copy.deepcopy(pod)
    aux = _strip_gpu(pod)
    if kind == "Pod":
        obj["spec"] = pod
    elif kind in ("Deployment", "StatefulSet"):
        obj["spec"] = {
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {"metadata": tmeta, "spec": pod},
        }
        if kind == "StatefulSet":
            obj["spec"]["serviceName"] = name
    elif kind == "Job":
        obj["spec"] = {"backoffLimit": 2, "template": {"metadata": tmeta, "spec": _job_pod(pod)}}
    elif kind == "CronJob":
        obj["spec"] = {
            "schedule": "0 2 * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": {"metadata": tmeta, "spec": _job_pod(pod)}}},
        }
    elif kind == "PyTorchJob":
        obj["spec"] = {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": {"spec": pod}},
                "Worker": {
                    "replicas": 1,
                    "restartPolicy": "OnFailure",
                    "template": {"spec": copy.deepcopy(pod)},
                },
            }
        }
    elif kind == "TFJob":
        obj["spec"] = {
            "tfReplicaSpecs": {
                "Chief": {"replicas": 1, "restartPolicy": "OnFailure", "template": {"spec": pod}},
                "Worker": {
                    "replicas": 1,
                    "restartPolicy": "OnFailure",
                    "template": {"spec": copy.deepcopy(pod)},
                },
            }
        }
    elif kind == "MPIJob":
        obj["spec"] = {
            "slotsPerWorker": 1,
            "runPolicy": {"cleanPodPolicy": "Running"},
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": {"spec": aux}},
                "Worker": {"replicas": 1, "template": {"spec": pod}},
            },
        }
    elif kind in ("RayCluster", "RayJob", "RayService"):
        rc = {
            "rayVersion": "2.40.0",
            "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0"}, "template": {"spec": aux}},
            "workerGroupSpecs": [
                {
                    "groupName": "gpu-workers",
                    "replicas": 1,
                    "minReplicas": 1,
                    "maxReplicas": 1,
                    "rayStartParams": {},
                    "template": {"spec": pod},
                }
            ],
        }
        if kind == "RayCluster":
            obj["spec"] = rc
        elif kind == "RayJob":
            obj["spec"] = {
                "entrypoint": "python /home/ray/jobs/run.py",
                "shutdownAfterJobFinishes": True,
                "rayClusterSpec": rc,
            }
        else:
            obj["spec"] = {
                "serveConfigV2": "applications:\n- name: app\n  import_path: serve_app:app\n",
                "rayClusterConfig": rc,
            }
    elif kind == "InferenceService":
        pred = copy.deepcopy(pod)
        pred["minReplicas"] = 1
        pred["maxReplicas"] = 1
        obj["spec"] = {"predictor": pred}
    elif kind == "LLMInferenceService":
        obj["spec"] = {
            "model": {"uri": model_uri, "name": name},
            "replicas": 1,
            "template": pod,
            "router": {"route": {}, "gateway": {}},
        }
    elif kind == "JobSet":
        obj["spec"] = {
            "replicatedJobs": [
                {
                    "name": "workers",
                    "replicas": 1,
                    "template": {
                        "spec": {
                            "parallelism": 1,
                            "completions": 1,
                            "backoffLimit": 0,
                            "template": {"spec": _job_pod(pod)},
                        }
                    },
                }
            ]
        }
    elif kind == "LeaderWorkerSet":
        obj["spec"] = {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": {"metadata": tmeta, "spec": pod},
                "workerTemplate": {"metadata": tmeta, "spec": copy.deepcopy(pod)},
            },
        }
    elif kind == "Notebook":
        obj["spec"] = {"template": {"spec": pod}}
    elif kind == "TrainJob":
        t = trainjob or {}
        trainer = {"numNodes": t.get("numNodes", 1)}
        if t.get("image"):
            trainer["image"] = t["image"]
        trainer["command"] = ["torchrun", "/workspace/train.py"]
        if t.get("env"):
            trainer["env"] = t["env"]
        if t.get("resourcesPerNode"):
            trainer["resourcesPerNode"] = t["resourcesPerNode"]
        spec = {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
                "name": "torch-distributed",
            },
            "trainer": trainer,
        }
        init = {}
        if t.get("dataset"):
            init["dataset"] = {"storageUri": t["dataset"]}
        if t.get("model"):
            init["model"] = {"storageUri": t["model"]}
        if init:
            spec["initializer"] = init
        if t.get("patch"):
            spec["runtimePatches"] = [
                {
                    "manager": "charter.dev/examples",
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {"name": "node", "template": {"spec": {"template": {"spec": t["patch"]}}}}
                                ]
                            }
                        }
                    },
                }
            ]
        obj["spec"] = spec
    return obj


ROOT = str(Path(__file__).resolve().parents[2] / "policies")


def D(c):
    return "sha256:" + c * 64


CLUSTERS = "../../../examples/clusters/"


class Dumper(yaml.SafeDumper):
    pass


def _str(d, s):
    style = '"' if s in ("true", "false", "yes", "no", "on", "off") or s[:1].isdigit() else None
    return d.represent_scalar("tag:yaml.org,2002:str", s, style=style)


Dumper.add_representer(str, _str)


def dump_docs(docs):
    return yaml.dump_all(docs, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=120)


def exp(kind, name, policy, result, message=None):
    e = {"resource": {"kind": kind, "name": name}, "policy": policy, "result": result}
    if message:
        e["message"] = message
    return e


def fv(v):
    return (
        json.dumps(v)
        if isinstance(v, str)
        else yaml.dump(v, Dumper=Dumper, default_flow_style=True, width=400).strip()
    )


def flow(expects):
    # one expectation per line, in flow style, like the hand-written suites
    return "\n".join(
        "    - " + yaml.dump(e, Dumper=Dumper, default_flow_style=True, width=400).strip() for e in expects
    )


def write(pack, header, resources, suites):
    with open(f"{ROOT}/{pack}/tests/kinds.yaml", "w") as f:
        f.write(header + dump_docs(resources))
    out = []
    for meta, spec_head, expects in suites:
        out.append(
            f"{meta}apiVersion: charter.dev/v1alpha1\nkind: PolicyTest\nmetadata:\n  name: {spec_head['name']}\nspec:\n"
            + "".join(f"  {k}: {fv(v)}\n" for k, v in spec_head.items() if k != "name")
            + "  expect:\n"
            + flow(expects)
            + "\n"
        )
    with open(f"{ROOT}/{pack}/tests/kinds-test.yaml", "w") as f:
        f.write("---\n".join(out))
    return sum(len(s[2]) for s in suites)


def k8s(kind):
    return kind.lower()


# ---------------------------------------------------------------- identity
def identity():
    res, good, bad = [], [], []
    for kind in KINDS:
        n = k8s(kind)
        ok_pod = {
            "serviceAccountName": f"{n}-runner",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": f"registry.eu.example.com/fraud/{n}:1.4.0@{D('1')}",
                    "resources": {"limits": {"cpu": "2", "memory": "8Gi"}},
                }
            ],
        }
        bad_pod = {
            "containers": [
                {
                    "name": "main",
                    "image": f"registry.eu.example.com/research/{n}:0.9.0@{D('2')}",
                    "resources": {"limits": {"cpu": "2", "memory": "8Gi"}},
                }
            ]
        }
        labels_ok = {
            "charter.dev/owner": "amelie.roux",
            "charter.dev/team": "fraud",
            "charter.dev/cost-center": "cc-2210",
        }
        tj_ok = {
            "image": f"registry.eu.example.com/fraud/{n}:1.4.0@{D('1')}",
            "patch": {"serviceAccountName": f"{n}-runner", "automountServiceAccountToken": False},
        }
        tj_bad = {"image": f"registry.eu.example.com/research/{n}:0.9.0@{D('2')}"}
        res.append(
            build(
                kind,
                f"{n}-id-ok",
                "fraud-models",
                ok_pod,
                labels=labels_ok,
                model_uri="oci://registry.eu.example.com/models/fraud-xgb",
                trainjob=tj_ok,
            )
        )
        res.append(
            build(
                kind,
                f"{n}-id-bad",
                "ml-research",
                bad_pod,
                labels={"team": "foundation-models"},
                annotations={
                    "iam.gke.io/gcp-service-account": "scratch@unknown-project.iam.gserviceaccount.com"
                },
                model_uri="oci://registry.eu.example.com/models/fraud-xgb",
                trainjob=tj_bad,
            )
        )
        g, b = f"{n}-id-ok", f"{n}-id-bad"
        good += [
            exp(kind, g, "identity-ownership-labels", "pass"),
            exp(kind, g, "identity-no-default-service-account", "pass"),
            exp(kind, g, "identity-automount-token", "pass"),
            exp(kind, g, "identity-requester-team", "pass"),
            exp(kind, g, "identity-workload-identity-provider", "pass"),
            exp(kind, g, "identity-workload-identity-team", "skip"),
        ]
        bad += [
            exp(kind, b, "identity-ownership-labels", "deny", f"{kind} {b} has no owner label"),
            exp(kind, b, "identity-no-default-service-account", "deny", "runs as the default ServiceAccount"),
            exp(kind, b, "identity-automount-token", "deny", "automountServiceAccountToken is unset"),
            exp(
                kind,
                b,
                "identity-requester-team",
                "deny",
                "user amelie.roux is not a member of team foundation-models",
            ),
            exp(kind, b, "identity-workload-identity-provider", "deny", "whose provider is aws, not gcp"),
            exp(
                kind,
                b,
                "identity-workload-identity-team",
                "deny",
                "cloud identity scratch@unknown-project.iam.gserviceaccount.com is not in the identity catalog",
            ),
        ]
    header = (
        "# Identity pack, one good (<kind>-id-ok) and one bad (<kind>-id-bad) workload of every supported kind.\n"
        "# Generated shapes; the bad ones lack owner and cost-center labels, run as the default\n"
        "# ServiceAccount with an automounted token, sit in another team's namespace and borrow an\n"
        "# uncatalogued GKE identity.\n"
    )
    spec = {
        "name": "identity-kinds-aws-eu-central-1",
        "policies": [
            "../ownership.yaml",
            "../service-accounts.yaml",
            "../requester.yaml",
            "../workload-identity.yaml",
            "../catalog.yaml",
        ],
        "resources": ["kinds.yaml"],
        "cluster": CLUSTERS + "aws-eu-central-1.yaml",
        "context": ["../../../examples/context/namespaces.yaml"],
        "userInfo": {"username": "amelie.roux", "groups": ["team-fraud"]},
    }
    return write(
        "identity",
        header,
        res,
        [
            (
                "# Every supported kind, good and bad, on EKS (provider aws) as a member of team fraud.\n",
                spec,
                good + bad,
            )
        ],
    )


# ---------------------------------------------------------------- accelerators
def accelerators():
    res, good, bad = [], [], []
    sched = {
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "charter.dev/node-pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    for kind in KINDS:
        n = k8s(kind)
        img = f"registry.eu.example.com/research/{n}:2.1.0@{D('3')}"
        ok_pod = {
            "serviceAccountName": "gpu-runner",
            "automountServiceAccountToken": False,
            **sched,
            "containers": [
                {
                    "name": "main",
                    "image": img,
                    "resources": {"limits": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"}},
                }
            ],
        }
        bad_pod = {
            "serviceAccountName": "gpu-runner",
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
            "containers": [
                {
                    "name": "main",
                    "image": img,
                    "resources": {
                        "requests": {"nvidia.com/gpu": "1"},
                        "limits": {"nvidia.com/gpu": "2", "nvidia.com/mig-2g.20gb": "1"},
                    },
                }
            ],
        }
        tj_ok = {
            "image": img,
            "resourcesPerNode": {"limits": {"nvidia.com/gpu": "1"}},
            "patch": {"nodeSelector": sched["nodeSelector"], "tolerations": sched["tolerations"]},
        }
        tj_bad = {
            "image": img,
            "resourcesPerNode": {
                "requests": {"nvidia.com/gpu": "1"},
                "limits": {"nvidia.com/gpu": "2", "nvidia.com/mig-2g.20gb": "1"},
            },
        }
        g, b = f"{n}-gpu-ok", f"{n}-gpu-bad"
        res.append(
            build(
                kind,
                g,
                "ml-research",
                ok_pod,
                model_uri="oci://registry.eu.example.com/models/fraud-xgb",
                trainjob=tj_ok,
            )
        )
        res.append(
            build(
                kind,
                b,
                "sandbox",
                bad_pod,
                model_uri="oci://registry.eu.example.com/models/fraud-xgb",
                trainjob=tj_bad,
            )
        )
        good += [
            exp(kind, g, "accelerators-approved-resources", "pass"),
            exp(kind, g, "accelerators-mig-profiles", "skip"),
            exp(kind, g, "accelerators-scheduling", "pass"),
            exp(kind, g, "accelerators-entitlements", "pass"),
            exp(kind, g, "accelerators-requests-equal-limits", "pass"),
        ]
        bad += [
            exp(
                kind,
                b,
                "accelerators-approved-resources",
                "deny",
                "is not on the DE sovereign accelerator list",
            ),
            exp(
                kind,
                b,
                "accelerators-mig-profiles",
                "deny",
                "MIG profile 2g.20gb is not offered by cluster onprem-sovereign-de",
            ),
            exp(
                kind,
                b,
                "accelerators-scheduling",
                "deny",
                "lacks the toleration(s) cluster onprem-sovereign-de requires",
            ),
            exp(
                kind,
                b,
                "accelerators-entitlements",
                "deny",
                "namespace sandbox has no accelerator entitlement",
            ),
            exp(
                kind,
                b,
                "accelerators-requests-equal-limits",
                "deny",
                "nvidia.com/gpu requested without an equal limit",
            ),
        ]
    header = (
        "# Accelerators pack, one good (<kind>-gpu-ok) and one bad (<kind>-gpu-bad) workload of every supported kind.\n"
        "# Good: one H100 per pod in the entitled namespace ml-research, with the GPU pool's toleration and\n"
        "# nodeSelector. Bad: namespace sandbox (no entitlement), an L4 product and a MIG 2g.20gb slice the\n"
        "# sovereign cluster does not offer, request below limit, no toleration or node-pool selector.\n"
    )
    spec = {
        "name": "accelerators-kinds-onprem-sovereign-de",
        "policies": ["../placement.yaml", "../entitlements.yaml", "../catalog.yaml"],
        "resources": ["kinds.yaml"],
        "cluster": CLUSTERS + "onprem-sovereign-de.yaml",
    }
    return write(
        "accelerators",
        header,
        res,
        [("# Every supported kind, good and bad, on the sovereign on-prem cluster.\n", spec, good + bad)],
    )


# ---------------------------------------------------------------- residency
def residency():
    res, good, bad, gcp = [], [], [], []
    for kind in KINDS:
        n = k8s(kind)
        g, b = f"{n}-res-ok", f"{n}-res-bad"
        ok_pod = {
            "serviceAccountName": "fraud-trainer",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": f"registry.eu.example.com/fraud/{n}:3.0.1@{D('4')}",
                    "volumeMounts": [{"name": "transactions", "mountPath": "/data", "readOnly": True}],
                }
            ],
            "volumes": [
                {
                    "name": "transactions",
                    "persistentVolumeClaim": {"claimName": "eu-transactions-2024", "readOnly": True},
                }
            ],
        }
        bad_pod = {
            "serviceAccountName": "fraud-trainer",
            "containers": [{"name": "main", "image": "docker.io/library/python:3.12-slim"}],
        }
        eu_model = "oci://registry.eu.example.com/models/fraud-xgb"
        hf_model = "hf://mistralai/Mistral-7B-Instruct-v0.3"
        ok_ann = {"charter.dev/model-uri": eu_model}
        bad_ann = {"charter.dev/datasets": "us-clickstream,scratch-notes", "charter.dev/model-uri": hf_model}
        tj_ok = {
            "image": f"registry.eu.example.com/fraud/{n}:3.0.1@{D('4')}",
            "dataset": "s3://fraud-data-eu/transactions/2024/",
            "model": eu_model,
        }
        tj_bad = {"image": "docker.io/library/python:3.12-slim", "model": hf_model}
        res.append(
            build(
                kind,
                g,
                "fraud-models",
                ok_pod,
                annotations=None if kind in ("TrainJob", "LLMInferenceService") else ok_ann,
                model_uri=eu_model,
                trainjob=tj_ok,
            )
        )
        res.append(
            build(
                kind,
                b,
                "fraud-models",
                bad_pod,
                annotations={"charter.dev/datasets": bad_ann["charter.dev/datasets"]}
                if kind in ("TrainJob", "LLMInferenceService")
                else bad_ann,
                model_uri=hf_model,
                trainjob=tj_bad,
            )
        )
        good += [
            exp(kind, g, "residency-dataset-placement", "pass"),
            exp(kind, g, "residency-unknown-dataset", "pass"),
            exp(kind, g, "residency-unknown-dataset-warn", "skip"),
            exp(kind, g, "residency-image-registries", "pass"),
            exp(kind, g, "residency-model-stores", "pass"),
        ]
        bad += [
            exp(
                kind,
                b,
                "residency-dataset-placement",
                "deny",
                "dataset us-clickstream (personal, US) may be processed only in US",
            ),
            exp(
                kind,
                b,
                "residency-unknown-dataset",
                "deny",
                "dataset scratch-notes from annotation is not in the residency catalog",
            ),
            exp(
                kind,
                b,
                "residency-image-registries",
                "deny",
                "image docker.io/library/python:3.12-slim comes from registry docker.io in US",
            ),
            exp(
                kind,
                b,
                "residency-model-stores",
                "deny",
                "model hf://mistralai/Mistral-7B-Instruct-v0.3 comes from store huggingface-hub in US",
            ),
        ]
        gcp += [
            exp(
                kind,
                g,
                "residency-dataset-placement",
                "deny",
                "dataset eu-customer-transactions is personal data of EU and must stay in EU",
            ),
            exp(kind, g, "residency-model-stores", "pass"),
            exp(kind, b, "residency-dataset-placement", "pass"),
            exp(kind, b, "residency-unknown-dataset", "skip"),
            exp(
                kind,
                b,
                "residency-unknown-dataset-warn",
                "warn",
                "dataset scratch-notes from annotation is not in the residency catalog",
            ),
        ]
    header = (
        "# Residency pack, one good (<kind>-res-ok) and one bad (<kind>-res-bad) workload of every supported kind.\n"
        "# Good: EU transactions through the catalogued PVC (a TrainJob: its dataset initializer), weights and\n"
        "# image from the DE registry. Bad: US personal data and an uncatalogued dataset by annotation, a\n"
        "# Docker Hub image and Hugging Face weights.\n"
    )
    pol = [
        "../dataset-placement.yaml",
        "../unknown-dataset.yaml",
        "../image-registries.yaml",
        "../model-stores.yaml",
        "../catalog.yaml",
    ]
    s1 = {
        "name": "residency-kinds-onprem-sovereign-de",
        "policies": pol,
        "resources": ["kinds.yaml"],
        "cluster": CLUSTERS + "onprem-sovereign-de.yaml",
    }
    s2 = {
        "name": "residency-kinds-gcp-us-central1",
        "policies": pol,
        "resources": ["kinds.yaml"],
        "cluster": CLUSTERS + "gcp-us-central1.yaml",
    }
    return write(
        "residency",
        header,
        res,
        [
            ("# Every supported kind on the sovereign DE cluster.\n", s1, good + bad),
            ("# The same workloads in the US (GKE, unknown datasets only warn): verdicts flip.\n", s2, gcp),
        ],
    )


# ---------------------------------------------------------------- provenance
def provenance():
    res, ex = [], []
    lora = "oci://registry.eu.example.com/models/fraud-bert-lora"
    lora_digest = "sha256:0d6e3f1c2b4a59687a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f"
    for kind in KINDS:
        n = k8s(kind)
        g, b = f"{n}-prov-ok", f"{n}-prov-bad"
        ok_pod = {
            "serviceAccountName": "scorer",
            "automountServiceAccountToken": False,
            "containers": [{"name": "main", "image": f"registry.eu.example.com/fraud/{n}:5.2.0@{D('5')}"}],
        }
        bad_pod = {
            "serviceAccountName": "scorer",
            "containers": [{"name": "main", "image": f"quay.io/someone/{n}:latest"}],
        }
        ok_ann = {"charter.dev/model-uri": lora, "charter.dev/model-digest": lora_digest}
        bad_models = '["oci://registry.eu.example.com/models/chat-uncensored-ft", "hf://someone/random-7b"]'
        tj_ok = {
            "image": f"registry.eu.example.com/fraud/{n}:5.2.0@{D('5')}",
            "model": lora + "@" + lora_digest,
        }
        tj_bad = {
            "image": f"quay.io/someone/{n}:latest",
            "model": "oci://registry.eu.example.com/models/chat-uncensored-ft",
        }
        if kind in ("TrainJob", "LLMInferenceService"):
            oka, mu_ok = None, lora + "@" + lora_digest
            bada, mu_bad = (
                {"charter.dev/models": '["hf://someone/random-7b"]'},
                "oci://registry.eu.example.com/models/chat-uncensored-ft",
            )
        else:
            oka, mu_ok, bada, mu_bad = ok_ann, None, {"charter.dev/models": bad_models}, None
        res.append(build(kind, g, "fraud-models", ok_pod, annotations=oka, model_uri=mu_ok, trainjob=tj_ok))
        res.append(
            build(kind, b, "fraud-models", bad_pod, annotations=bada, model_uri=mu_bad, trainjob=tj_bad)
        )
        ex += [
            exp(kind, g, "provenance-model-digest", "pass"),
            exp(kind, g, "provenance-model-catalog", "pass"),
            exp(
                kind,
                g,
                "provenance-model-signature",
                "deny",
                "no signature verification facts are available for model " + lora,
            ),
            exp(kind, g, "provenance-fine-tune-base", "pass"),
            exp(kind, g, "provenance-image-digest", "pass"),
            exp(kind, g, "provenance-image-registries", "pass"),
            exp(
                kind,
                b,
                "provenance-model-digest",
                "deny",
                "oci://registry.eu.example.com/models/chat-uncensored-ft",
            ),
            exp(
                kind,
                b,
                "provenance-model-catalog",
                "deny",
                "model hf://someone/random-7b is not in the model catalog",
            ),
            exp(kind, b, "provenance-model-signature", "skip"),
            exp(
                kind,
                b,
                "provenance-fine-tune-base",
                "deny",
                "is fine-tuned from uncensored-7b, which is not approved",
            ),
            exp(
                kind,
                b,
                "provenance-image-digest",
                "deny",
                f"image quay.io/someone/{n}:latest is not pinned by digest",
            ),
            exp(kind, b, "provenance-image-registries", "deny", "comes from untrusted registry quay.io"),
        ]
    header = (
        "# Provenance pack, one good (<kind>-prov-ok) and one bad (<kind>-prov-bad) workload of every supported kind.\n"
        "# Good: the pinned, catalogued LoRA fine-tune of an approved base, pinned image from a trusted registry\n"
        "# (still denied by provenance-model-signature: `charter test` has no verifier facts). Bad: a fine-tune\n"
        "# of an unapproved base and an uncatalogued model, both unpinned, and a tagged quay.io image.\n"
    )
    spec = {
        "name": "provenance-kinds",
        "policies": ["../models.yaml", "../images.yaml", "../catalog.yaml"],
        "resources": ["kinds.yaml"],
    }
    return write(
        "provenance", header, res, [("# Every supported kind; no cluster profile is needed.\n", spec, ex)]
    )


if __name__ == "__main__":
    for f in (identity, accelerators, residency, provenance):
        print(f.__name__, f())
