"""The example workloads (used by the quickstart) normalize as documented."""

from __future__ import annotations

import time
from typing import Any

import pytest
from charter.engine.normalize import normalize

from .conftest import EXAMPLES, assert_json_like, load_examples

FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def workloads(name: str) -> list[dict[str, Any]]:
    objs = load_examples(name)
    return [normalize(o, objs) for o in objs]


def by_kind(name: str, kind: str) -> dict[str, Any]:
    return next(w for w in workloads(name) if w["kind"] == kind)


def test_enough_examples() -> None:
    assert 15 <= len(FILES) <= 25


@pytest.mark.parametrize("name", FILES)
def test_every_example_normalizes(name: str) -> None:
    for w in workloads(name):
        assert_json_like(w)


@pytest.mark.parametrize(
    ("name", "kind", "total", "problems"),
    [
        ("pytorchjob-llama-finetune.yaml", "PyTorchJob", {"nvidia.com/gpu": 40}, 0),
        ("rayjob-batch-inference.yaml", "RayJob", {"nvidia.com/gpu": 6}, 0),
        ("inferenceservice-fraud-pinned.yaml", "InferenceService", {}, 0),
        ("inferenceservice-hf-llm.yaml", "InferenceService", {"nvidia.com/gpu": 1}, 0),
        ("llminferenceservice.yaml", "LLMInferenceService", {"nvidia.com/gpu": 2}, 0),
        ("jobset-tpu-v5e.yaml", "JobSet", {"google.com/tpu": 32}, 0),
        ("leaderworkerset-vllm.yaml", "LeaderWorkerSet", {"nvidia.com/gpu": 32}, 0),
        ("notebook.yaml", "Notebook", {"nvidia.com/gpu": 1}, 0),
        ("deployment-vllm.yaml", "Deployment", {"nvidia.com/gpu": 2}, 0),
        ("cronjob-nightly-finetune.yaml", "CronJob", {"nvidia.com/gpu": 1}, 0),
        ("dra-gpu-claim.yaml", "Pod", {"gpu.nvidia.com": 2}, 0),
        ("pod-mig.yaml", "Pod", {"nvidia.com/mig-1g.10gb": 1}, 0),
        ("multi-document.yaml", "Deployment", {}, 0),
        ("yaml11-flow-style.yaml", "Job", {"nvidia.com/gpu": 2}, 2),
        ("placeholders.yaml", "Deployment", {}, 4),
        ("list.yaml", "StatefulSet", {"nvidia.com/gpu": 2}, 0),
        ("trainjob.yaml", "TrainJob", {"nvidia.com/gpu": 8}, 0),
        ("raycluster-eks-neuron.yaml", "RayCluster", {"aws.amazon.com/neuron": 64}, 0),
    ],
)
def test_example_accelerators(name: str, kind: str, total: dict[str, int], problems: int) -> None:
    w = by_kind(name, kind)
    assert w["accelerators"]["total"] == total
    assert len(w["problems"]) == problems, w["problems"]


def test_values_yaml_is_not_a_workload() -> None:
    (w,) = workloads("values.yaml")
    assert w["kind"] == "" and w["podTemplates"] == [] and w["problems"] == []


def test_example_details() -> None:
    w = by_kind("inferenceservice-fraud-pinned.yaml", "InferenceService")
    assert w["models"][0]["digest"].startswith("sha256:") and w["models"][0]["scheme"] == "oci"
    w = by_kind("inferenceservice-hf-llm.yaml", "InferenceService")
    assert w["models"][0]["scheme"] == "hf" and w["models"][0]["digest"] == ""
    assert w["identity"]["costCenter"] == ""
    w = by_kind("multi-document.yaml", "Deployment")  # workload identity from the ServiceAccount beside it
    assert (
        w["identity"]["workloadIdentity"]["gcpServiceAccount"]
        == "embedder@ml-research.iam.gserviceaccount.com"
    )
    assert w["containers"][0]["registry"] == "localhost:5000" and w["containers"][0]["latest"] is True
    w = by_kind("dra-gpu-claim.yaml", "Pod")
    assert w["accelerators"]["products"] == ["NVIDIA H100 80GB HBM3"]
    w = by_kind("yaml11-flow-style.yaml", "Job")
    assert w["identity"]["automountServiceAccountToken"] is False and w["labels"]["gpu"] == "true"
    w = by_kind("rayjob-batch-inference.yaml", "RayJob")
    assert {r["source"] for r in w["accelerators"]["requests"]} == {"ray"}


def test_deployment_timing() -> None:
    """A typical Deployment normalizes in well under a millisecond (target: 50 µs on a laptop)."""
    obj = load_examples("deployment-vllm.yaml")[0]
    normalize(obj)
    n = 2000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            normalize(obj)
        best = min(best, (time.perf_counter() - start) / n)
    # Generous bound for slow CI machines; the measured figure is in docs/workload.md.
    assert best < 500e-6, f"{best * 1e6:.1f} µs per Deployment"
