from __future__ import annotations

import json
from typing import Any

import pytest
from charter.engine.normalize import normalize

from .test_kinds import container, obj, pod_spec, tmpl

D = "sha256:" + "0123456789abcdef" * 4


def models(w: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [(m["uri"], m["digest"], m["source"], m["name"], m["scheme"]) for m in w["models"]]


def test_annotation_model_with_digest() -> None:
    ann = {"charter.dev/model-uri": "s3://models/llama-3-8b/", "charter.dev/model-digest": D}
    assert models(normalize(obj("Job", {"template": tmpl()}, annotations=ann))) == [
        ("s3://models/llama-3-8b/", D, "annotation", "llama-3-8b", "s3")
    ]


def test_models_json_list_annotation() -> None:
    ann = {
        "charter.dev/models": json.dumps(
            ["hf://org/a", {"uri": "gs://b/c", "digest": D, "name": "c-model"}, 5]
        )
    }
    w = normalize(obj("Job", {"template": tmpl()}, annotations=ann))
    assert models(w) == [
        ("hf://org/a", "", "annotation", "org/a", "hf"),
        ("gs://b/c", D, "annotation", "c-model", "gs"),
    ]
    assert w["problems"][0]["path"] == 'metadata.annotations["charter.dev/models"][2]'
    bad = normalize(obj("Job", {"template": tmpl()}, annotations={"charter.dev/models": "[oops"}))
    assert bad["models"] == [] and len(bad["problems"]) == 1


def test_digest_annotation_pins_the_single_storage_uri() -> None:
    spec = {"predictor": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "pvc://models/fraud"}}}
    w = normalize(obj("InferenceService", spec, annotations={"charter.dev/model-digest": D}))
    assert models(w) == [("pvc://models/fraud", D, "storageUri", "fraud", "pvc")]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HF_MODEL_ID": "mistralai/Mistral-7B-v0.1"}, [("mistralai/Mistral-7B-v0.1", "hf")]),
        ({"MODEL_URI": "https://acct.blob.core.windows.net/models/bert"}, [("https://acct.blob.core.windows.net/models/bert", "azureblob")]),
        ({"MODEL_PATH": "/mnt/models/llama"}, []),  # a local path, not a location
        ({"MODEL_NAME": "llama"}, []),  # a label, not a repo id
        ({"MODEL_ID": "oci://nvcr.io/nim/llama@" + D}, [("oci://nvcr.io/nim/llama@" + D, "oci")]),
    ],
)  # fmt: skip
def test_env_models(env: dict[str, str], expected: list[tuple[str, str]]) -> None:
    c = {**container(), "env": [{"name": k, "value": v} for k, v in env.items()]}
    w = normalize(obj("Deployment", {"template": {"spec": pod_spec(c)}}))
    assert [(m["uri"], m["scheme"]) for m in w["models"]] == expected
    assert all(m["source"] == "env" for m in w["models"])


def test_args_models_and_dedup() -> None:
    c = {
        **container(),
        "command": ["vllm", "serve", "meta-llama/Llama-3.1-8B"],
        "args": ["--model=s3://b/m", "--port", "80"],
    }
    ann = {"charter.dev/model-uri": "hf://meta-llama/Llama-3.1-8B", "charter.dev/model-digest": D}
    w = normalize(obj("Deployment", {"template": {"spec": pod_spec(c)}}, annotations=ann))
    # The annotation and the `vllm serve` positional name the same Hugging Face model: one entry.
    assert models(w) == [("hf://meta-llama/Llama-3.1-8B", D, "annotation", "meta-llama/Llama-3.1-8B", "hf"),
                         ("s3://b/m", "", "args", "m", "s3")]  # fmt: skip


def datasets(w: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(d["id"], d["uri"], d["source"], d["scheme"]) for d in w["datasets"]]


def test_dataset_annotation_forms() -> None:
    ann = {"charter.dev/datasets": "eu-customer-transactions, us-clickstream ,s3://raw/x"}
    assert datasets(normalize(obj("Job", {"template": tmpl()}, annotations=ann))) == [
        ("eu-customer-transactions", "", "annotation", ""),
        ("us-clickstream", "", "annotation", ""),
        ("s3://raw/x", "s3://raw/x", "annotation", "s3"),
    ]
    ann = {"charter.dev/datasets": '["public-imagenet", {"id": "c4", "uri": "gs://corpora/c4"}]'}
    assert datasets(normalize(obj("Job", {"template": tmpl()}, annotations=ann))) == [
        ("public-imagenet", "", "annotation", ""),
        ("c4", "gs://corpora/c4", "annotation", "gs"),
    ]


def test_dataset_volumes_and_env() -> None:
    volumes = [
        {"name": "a", "persistentVolumeClaim": {"claimName": "eu-data"}},
        {"name": "b", "csi": {"driver": "gcsfuse.csi.storage.gke.io", "volumeAttributes": {"bucketName": "corp", "mountOptions": "implicit-dirs,only-dir=eu/tx"}}},
        {"name": "c", "csi": {"driver": "s3.csi.aws.com", "volumeAttributes": {"bucketName": "us-click"}}},
        {"name": "d", "csi": {"driver": "blob.csi.azure.com", "volumeAttributes": {"storageAccount": "acct", "containerName": "imgs"}}},
        {"name": "e", "nfs": {"server": "nfs.example.com", "path": "/exports/data"}},
        {"name": "f", "emptyDir": {}},
        {"name": "g", "csi": {"driver": "gcsfuse.csi.storage.gke.io", "volumeAttributes": {}}},
    ]  # fmt: skip
    c = {
        **container(),
        "env": [
            {"name": "DATASET_ID", "value": "public-imagenet"},
            {"name": "DATA_URI", "value": "gs://x/y"},
        ],
    }
    w = normalize(obj("Job", {"template": {"spec": pod_spec(c, volumes=volumes)}}))
    assert datasets(w) == [
        ("eu-data", "pvc://ml-research/eu-data", "pvc", "pvc"),
        ("corp", "gs://corp/eu/tx", "csi", "gs"),
        ("us-click", "s3://us-click", "csi", "s3"),
        ("imgs", "azureblob://acct/imgs", "csi", "azureblob"),
        ("nfs://nfs.example.com/exports/data", "nfs://nfs.example.com/exports/data", "volume", "nfs"),
        ("gs://x/y", "gs://x/y", "env", "gs"),
        ("public-imagenet", "", "env", ""),
    ]
    assert [p["path"] for p in w["problems"]] == ["spec.template.spec.volumes[6].csi.volumeAttributes"]
