"""A deterministic corpus of Kubernetes AI manifests for throughput benchmarks.

`generate(out_dir, docs=10_000, seed=7)` writes `docs` manifests as multi-document
YAML files (1-6 documents each) under `out_dir`, spread over team folders. The same
seed and size always give byte-identical files. The mix follows examples/workloads/:
vLLM Deployments with HF_MODEL_ID, Pods, Jobs, CronJobs, PyTorchJobs with GPU
workers, RayJobs asking for num-gpus, KServe InferenceServices with a storageUri,
JobSets, plus a few Services and ConfigMaps that no workload policy applies to.
Labels, image pinning, GPU counts, service accounts and model annotations vary, so
every benchmark policy both passes and fails on a sizeable share of the corpus.

Run `python bench/corpus.py [--docs N] [--seed S] [--out DIR]` to write one by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

try:
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Dumper = yaml.SafeDumper

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "corpus"
STAMP = ".corpus.json"  # a dot-file: `charter check` skips it

Obj = dict[str, Any]

TEAMS = ["fraud", "recsys", "foundation-models", "search", "vision", "speech", "ads-ranking", "platform"]
# Teams of policies/identity/catalog.yaml with their members and cost centers: most workloads
# carry a consistent owner/team/cost-center triple, the rest an unknown team or a wrong center.
KNOWN_TEAMS = {
    "fraud": (["amelie.roux", "jonas.weber"], "cc-2210"),
    "foundation-models": (["dana.kim", "sam.okafor"], "cc-4120"),
    "recsys": (["li.wei"], "cc-3300"),
}
OWNERS = ["amelie.roux", "dana.kim", "li.wei", "sam.okafor", "noor.haddad", "jonas.berg", "ines.costa"]
NAMESPACES = ["ml-research", "fraud-models", "inference", "training", "default", "batch", "ml-platform"]
GPU_PRODUCTS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L40S", "NVIDIA-L4"]
HF_MODELS = [
    "mistralai/Mistral-7B-Instruct-v0.3",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
    "google/gemma-2-9b-it",
    "sentence-transformers/all-MiniLM-L6-v2",
]
DATASETS = ["eu-customer-transactions", "public-imagenet", "us-clickstream", "c4-en", "internal-tickets"]
MODEL_URIS = [
    "s3://ml-research-models/llama-3.1-70b/",
    "gs://models-eu/fraud/xgb-2024-10/",
    "hf://mistralai/Mistral-7B-Instruct-v0.3",
    "pvc://model-store/qwen2.5-14b",
]
IMAGES = {
    "vllm": ("docker.io/vllm/vllm-openai", "v0.6.3"),
    "pytorch": ("nvcr.io/nvidia/pytorch", "24.05-py3"),
    "ray": ("docker.io/rayproject/ray", "2.9.0-gpu"),
    "jax": ("us-docker.pkg.dev/ml-research/images/jax-train", "0.4.30"),
    "batch": ("registry.eu.example.com/ml/batch-eval", "1.8.2"),
    "notebook": ("quay.io/jupyter/pytorch-notebook", "cuda12-2024-10-07"),
    "guard": ("registry.eu.example.com/fraud/prompt-guard", "1.4.2"),
    "busybox": ("busybox", "1.36"),
}


class Gen:
    """One seeded generator; every choice goes through `self.r` so output is reproducible."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.n = 0

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def hexdigest(self) -> str:
        return f"{self.r.getrandbits(256):064x}"

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}-{self.n:05d}"

    def image(self, key: str) -> str:
        repo, tag = IMAGES[key]
        roll = self.r.random()
        if roll < 0.45:
            return f"{repo}@sha256:{self.hexdigest()}"  # pinned
        if roll < 0.55:
            return f"{repo}:{tag}@sha256:{self.hexdigest()}"  # tag and digest
        if roll < 0.62:
            return f"{repo}:latest"
        if roll < 0.66:
            return repo  # implicitly latest
        return f"{repo}:{tag}"

    def metadata(self, stem: str) -> Obj:
        if self.chance(0.7):
            team = self.r.choice(sorted(KNOWN_TEAMS))
            members, center = KNOWN_TEAMS[team]
            owner = self.r.choice(members)
            if self.chance(0.1):
                center = f"cc-{self.r.randint(1000, 9999)}"
        else:
            team, owner = self.r.choice(TEAMS), self.r.choice(OWNERS)
            center = f"cc-{self.r.randint(1000, 9999)}"
        labels: dict[str, str] = {"app.kubernetes.io/name": stem}
        if self.chance(0.9):
            labels["charter.dev/owner"] = owner
        if self.chance(0.85):
            labels["charter.dev/team"] = team
        if self.chance(0.8):
            labels["charter.dev/cost-center"] = center
        annotations: dict[str, str] = {}
        if self.chance(0.5):
            annotations["charter.dev/datasets"] = ",".join(self.r.sample(DATASETS, self.r.randint(1, 3)))
        if self.chance(0.45):
            annotations["charter.dev/model-uri"] = self.r.choice(MODEL_URIS)
            roll = self.r.random()
            if roll < 0.6:
                annotations["charter.dev/model-digest"] = "sha256:" + self.hexdigest()
            elif roll < 0.75:
                annotations["charter.dev/model-digest"] = "sha256:" + self.hexdigest()[:40]  # truncated
            elif roll < 0.85:
                annotations["charter.dev/model-digest"] = "md5:" + self.hexdigest()[:32]
            # else: no digest at all
        meta: Obj = {"name": self.name(stem), "namespace": self.r.choice(NAMESPACES), "labels": labels}
        if annotations:
            meta["annotations"] = annotations
        return meta

    def gpus(self) -> int:
        return self.r.choice([1, 1, 1, 2, 2, 4, 8, 8, 8, 16])

    def resources(self, gpus: int, as_string: bool | None = None) -> Obj:
        cpu = str(self.r.choice([2, 4, 8, 16, 32]))
        mem = self.r.choice(["16Gi", "32Gi", "64Gi", "128Gi", "512Gi"])
        limits: Obj = {"cpu": cpu, "memory": mem}
        requests: Obj = {"cpu": cpu, "memory": mem}
        if gpus:
            if as_string is None:
                as_string = self.chance(0.5)
            g: Any = str(gpus) if as_string else gpus
            limits["nvidia.com/gpu"] = g
            if self.chance(0.6):
                requests["nvidia.com/gpu"] = g
        return {"requests": requests, "limits": limits}

    def service_account(self, spec: Obj, stem: str) -> None:
        roll = self.r.random()
        if roll < 0.65:
            spec["serviceAccountName"] = f"{stem}-sa"
        elif roll < 0.8:
            spec["serviceAccountName"] = "default"
        # else: none set, so the namespace's default account
        if self.chance(0.5):
            spec["automountServiceAccountToken"] = False

    def gpu_scheduling(self, spec: Obj) -> None:
        if self.chance(0.6):
            spec["nodeSelector"] = {"nvidia.com/gpu.product": self.r.choice(GPU_PRODUCTS)}
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

    def pod_spec(self, stem: str, image_key: str, gpus: int, **container: Any) -> Obj:
        c: Obj = {"name": stem, "image": self.image(image_key), **container}
        c["resources"] = self.resources(gpus)
        spec: Obj = {"containers": [c]}
        if self.chance(0.2):
            spec["initContainers"] = [
                {
                    "name": "fetch",
                    "image": self.image("busybox"),
                    "command": ["sh", "-c", "true"],
                    "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        if self.chance(0.25):
            spec["containers"].append(
                {
                    "name": "metrics",
                    "image": self.image("guard"),
                    "resources": {"limits": {"cpu": "200m", "memory": "256Mi"}},
                }
            )
        self.service_account(spec, stem)
        if gpus:
            self.gpu_scheduling(spec)
        return spec

    # -- kinds -----------------------------------------------------------------------------------------

    def pod(self) -> Obj:
        gpus = self.gpus() if self.chance(0.6) else 0
        spec = self.pod_spec("notebook", "notebook", gpus, ports=[{"containerPort": 8888}])
        spec["restartPolicy"] = "Never"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": self.metadata("notebook"), "spec": spec}

    def deployment(self) -> Obj:
        model = self.r.choice(HF_MODELS)
        gpus = self.r.choice([1, 1, 2, 4, 8])
        meta = self.metadata("vllm")
        env: list[Obj] = [
            {"name": "HF_MODEL_ID", "value": model},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}},
        ]
        spec = self.pod_spec(
            "vllm",
            "vllm",
            gpus,
            args=["--port", "8000", "--tensor-parallel-size", str(gpus)],
            env=env,
            ports=[{"containerPort": 8000}],
            volumeMounts=[{"name": "hf-cache", "mountPath": "/root/.cache/huggingface"}],
        )
        spec["volumes"] = [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}]
        app = {"app": meta["name"]}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": self.r.randint(1, 4),
                "selector": {"matchLabels": app},
                "template": {"metadata": {"labels": dict(app)}, "spec": spec},
            },
        }

    def job_spec(self, stem: str) -> Obj:
        gpus = self.gpus() if self.chance(0.7) else 0
        spec = self.pod_spec(
            stem,
            "batch",
            gpus,
            command=["python", "-m", "evaluate", "--model", self.r.choice(HF_MODELS)],
        )
        spec["restartPolicy"] = "OnFailure"
        return {"backoffLimit": self.r.randint(0, 4), "template": {"spec": spec}}

    def job(self) -> Obj:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.metadata("eval"),
            "spec": self.job_spec("eval"),
        }

    def cronjob(self) -> Obj:
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": self.metadata("nightly-eval"),
            "spec": {
                "schedule": f"{self.r.randint(0, 59)} {self.r.randint(0, 23)} * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {"spec": self.job_spec("nightly-eval")},
            },
        }

    def pytorchjob(self) -> Obj:
        gpus = self.r.choice([1, 2, 4, 8, 8, 8, 16])
        argv = ["torchrun", "train.py", "--model_name_or_path", self.r.choice(HF_MODELS)]
        master = self.pod_spec("pytorch", "pytorch", gpus, command=list(argv))
        worker = self.pod_spec("pytorch", "pytorch", gpus, command=list(argv))
        return {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": self.metadata("finetune"),
            "spec": {
                "runPolicy": {"cleanPodPolicy": "Running"},
                "pytorchReplicaSpecs": {
                    "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": {"spec": master}},
                    "Worker": {
                        "replicas": self.r.randint(1, 8),
                        "restartPolicy": "OnFailure",
                        "template": {"spec": worker},
                    },
                },
            },
        }

    def rayjob(self) -> Obj:
        head = self.pod_spec("ray-head", "ray", 0)
        worker = self.pod_spec(
            "ray-worker", "ray", 0, env=[{"name": "MODEL_ID", "value": self.r.choice(HF_MODELS)}]
        )
        num_gpus = self.r.choice([1, 2, 4, 8, 12])
        if self.chance(0.3):  # some set a real Kubernetes limit too
            worker["containers"][0]["resources"] = self.resources(num_gpus)
        return {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": self.metadata("ray-batch"),
            "spec": {
                "entrypoint": "python /app/embed.py",
                "shutdownAfterJobFinishes": True,
                "rayClusterSpec": {
                    "rayVersion": "2.9.0",
                    "headGroupSpec": {
                        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0"},
                        "template": {"spec": head},
                    },
                    "workerGroupSpecs": [
                        {
                            "groupName": "gpu-workers",
                            "replicas": self.r.randint(1, 6),
                            "minReplicas": 1,
                            "maxReplicas": 8,
                            "rayStartParams": {"num-gpus": str(num_gpus)},
                            "template": {"spec": worker},
                        }
                    ],
                },
            },
        }

    def inferenceservice(self) -> Obj:
        gpus = self.r.choice([0, 1, 1, 2, 4])
        uri = self.r.choice(
            [
                "hf://" + self.r.choice(HF_MODELS),
                "s3://models-eu/fraud/xgb-2024-10/",
                "gs://kfserving-examples/models/sklearn/1.0/model",
            ]
        )
        model: Obj = {
            "modelFormat": {"name": self.r.choice(["huggingface", "sklearn", "xgboost"])},
            "storageUri": uri,
            "resources": self.resources(gpus),
        }
        predictor: Obj = {"model": model}
        sa = self.r.random()
        if sa < 0.6:
            predictor["serviceAccountName"] = "kserve-sa"
        elif sa < 0.75:
            predictor["serviceAccountName"] = "default"
        spec: Obj = {"predictor": predictor}
        if self.chance(0.3):
            spec["transformer"] = {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": self.image("guard"),
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    }
                ]
            }
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": self.metadata("isvc"),
            "spec": spec,
        }

    def jobset(self) -> Obj:
        gpus = self.r.choice([1, 4, 8])
        spec = self.pod_spec("jax", "jax", gpus)
        return {
            "apiVersion": "jobset.x-k8s.io/v1alpha2",
            "kind": "JobSet",
            "metadata": self.metadata("jax-multislice"),
            "spec": {
                "failurePolicy": {"maxRestarts": 3},
                "replicatedJobs": [
                    {
                        "name": "slice",
                        "replicas": self.r.randint(1, 4),
                        "template": {
                            "spec": {
                                "parallelism": 4,
                                "completions": 4,
                                "backoffLimit": 0,
                                "template": {"spec": spec},
                            }
                        },
                    }
                ],
            },
        }

    def service(self) -> Obj:
        meta = self.metadata("vllm-svc")
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": {"app": meta["name"]}, "ports": [{"port": 80, "targetPort": 8000}]},
        }

    def configmap(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata("eval-config"),
            "data": {"config.json": json.dumps({"batch_size": self.r.choice([8, 16, 32])})},
        }


# (weight, generator) for each kind; the weights sum to 100.
MIX: list[tuple[int, Callable[[Gen], Obj]]] = [
    (14, Gen.pod),
    (20, Gen.deployment),
    (10, Gen.job),
    (7, Gen.cronjob),
    (13, Gen.pytorchjob),
    (10, Gen.rayjob),
    (12, Gen.inferenceservice),
    (7, Gen.jobset),
    (4, Gen.service),
    (3, Gen.configmap),
]


def manifests(docs: int, seed: int) -> list[Obj]:
    """`docs` manifests, the same for the same seed."""
    g = Gen(seed)
    weights = [w for w, _ in MIX]
    makers = [m for _, m in MIX]
    return [g.r.choices(makers, weights)[0](g) for _ in range(docs)]


def _stamp(docs: int, seed: int) -> dict[str, Any]:
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return {"docs": docs, "seed": seed, "generator": source}


def generate(out_dir: Path = DEFAULT_OUT, docs: int = 10_000, seed: int = 7, force: bool = False) -> Path:
    """Write the corpus (or keep an identical one already there); return `out_dir`."""
    stamp_path = out_dir / STAMP
    want = _stamp(docs, seed)
    if not force and stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text()) == want:
                return out_dir
        except ValueError:
            pass
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    objs = manifests(docs, seed)
    r = random.Random(seed + 1)
    i = 0
    n = 0
    while i < len(objs):
        k = min(r.randint(1, 6), len(objs) - i)
        team = TEAMS[n % len(TEAMS)]
        folder = out_dir / team
        folder.mkdir(exist_ok=True)
        text = yaml.dump_all(objs[i : i + k], Dumper=_Dumper, sort_keys=False, explicit_start=True)
        (folder / f"manifests-{n:05d}.yaml").write_text(text, encoding="utf-8")
        i += k
        n += 1
    stamp_path.write_text(json.dumps(want))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="rewrite even if an identical corpus is there")
    args = ap.parse_args(argv)
    out = generate(args.out, args.docs, args.seed, args.force)
    files = sum(1 for _ in out.rglob("*.yaml"))
    print(f"{args.docs} manifests in {files} files under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
