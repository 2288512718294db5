from __future__ import annotations

import pytest
from charter.engine.normalize.images import parse_image

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest", "latest"),
    [
        ("nginx", "docker.io", "library/nginx", "", "", True),
        ("nginx:latest", "docker.io", "library/nginx", "latest", "", True),
        ("vllm/vllm-openai:v0.6.3", "docker.io", "vllm/vllm-openai", "v0.6.3", "", False),
        ("docker.io/vllm/vllm-openai:v0.6.3", "docker.io", "vllm/vllm-openai", "v0.6.3", "", False),
        ("localhost:5000/x", "localhost:5000", "x", "", "", True),
        ("localhost/x:1", "localhost", "x", "1", "", False),
        (
            "registry.eu.example.com:8443/team/app:2.0",
            "registry.eu.example.com:8443",
            "team/app",
            "2.0",
            "",
            False,
        ),
        (f"nvcr.io/nvidia/pytorch@{D}", "nvcr.io", "nvidia/pytorch", "", D, False),
        (f"nvcr.io/nvidia/pytorch:24.05-py3@{D}", "nvcr.io", "nvidia/pytorch", "24.05-py3", D, False),
        (f"nvcr.io/nvidia/pytorch:latest@{D}", "nvcr.io", "nvidia/pytorch", "latest", D, True),
    ],
)
def test_parse(ref: str, registry: str, repository: str, tag: str, digest: str, latest: bool) -> None:
    img, why = parse_image(ref)
    assert why is None
    assert (img["registry"], img["repository"], img["tag"], img["digest"]) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert img["pinned"] is bool(digest) and img["latest"] is latest and img["image"] == ref


@pytest.mark.parametrize(
    "ref", ["", "  ", "x@sha256:zz", "UPPER/case:1", "app:${TAG}", "{{ .Values.image }}", "a:b:c:d"]
)
def test_malformed(ref: str) -> None:
    img, why = parse_image(ref)
    assert why is not None and img["image"] == ref


def test_result_is_a_fresh_dict() -> None:
    a, _ = parse_image("nginx")
    a["tag"] = "mutated"
    assert parse_image("nginx")[0]["tag"] == ""


# Placeholders seen in upstream samples (jobset, lws, kuberay) are not Docker Hub images.
@pytest.mark.parametrize(
    "image", ["<CHANGE ME>", "<image>", "$VLLM_IMAGE", "${IMAGE}", "{{ .Values.image }}"]
)
def test_image_placeholders_are_problems(image: str) -> None:
    from charter.engine.normalize import normalize

    w = normalize(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }
    )
    assert w["containers"][0]["registry"] == ""
    assert any("placeholder" in p["message"] for p in w["problems"])


def test_trainer_runtimes_are_not_workloads() -> None:
    from charter.engine.normalize import normalize

    for kind in ("TrainingRuntime", "ClusterTrainingRuntime"):
        obj = {
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": kind,
            "metadata": {"name": "r"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
        }
        assert normalize(obj)["podTemplates"] == []
