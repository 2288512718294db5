"""normalize never raises and always returns JSON-like data, whatever the input's shape."""

from __future__ import annotations

from typing import Any

from charter.engine.normalize import normalize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import EXAMPLES, assert_json_like, load_examples

KINDS = [
    "Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "PyTorchJob", "TFJob",
    "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "TrainJob", "RayJob", "RayCluster", "RayService",
    "InferenceService", "LLMInferenceService", "JobSet", "LeaderWorkerSet", "Notebook", "List", "Widget",
]  # fmt: skip
# Keys the extractors look for, so that random objects reach deep into them.
KEYS = [
    "spec", "template", "metadata", "labels", "annotations", "containers", "initContainers", "resources", "limits",
    "requests", "nvidia.com/gpu", "google.com/tpu", "image", "name", "env", "value", "replicas", "parallelism",
    "jobTemplate", "pytorchReplicaSpecs", "Worker", "headGroupSpec", "workerGroupSpecs", "rayStartParams",
    "num-gpus", "rayClusterSpec", "predictor", "model", "storageUri", "modelFormat", "replicatedJobs",
    "leaderWorkerTemplate", "leaderTemplate", "workerTemplate", "size", "trainer", "resourcesPerNode",
    "numNodes", "resourceClaims", "resourceClaimTemplateName", "volumes", "persistentVolumeClaim", "claimName",
    "csi", "volumeAttributes", "nodeSelector", "affinity", "tolerations", "charter.dev/datasets",
    "charter.dev/model-uri", "charter.dev/models", "serviceAccountName", "args", "command", "devices",
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["1", "500m", "${GPU_LIMIT:-1}", "{{ .Values.gpus }}", "8", "nginx:latest",
                                           "hf://org/m", "[1, 2]", '["a"]', "true", "2x2", "All"]),
)  # fmt: skip
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=6),
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    body=st.dictionaries(st.sampled_from(KEYS), json_like, max_size=6),
    related=st.lists(json_like, max_size=3),
)
def test_never_raises(kind: str, body: dict[str, Any], related: list[Any]) -> None:
    w = normalize({"apiVersion": "v1", **body, "kind": kind}, related)
    assert_json_like(w)
    assert not any(p["message"].startswith("internal error") for p in w["problems"]), w["problems"]


@settings(max_examples=200, deadline=None)
@given(obj=json_like)
def test_any_value(obj: Any) -> None:
    w = normalize(obj)
    assert_json_like(w)
    assert not any(p["message"].startswith("internal error") for p in w["problems"]), w["problems"]


def _subtrees(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(v, dict):
        for k, x in v.items():
            out.extend(_subtrees(x, (*path, k)))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out.extend(_subtrees(x, (*path, i)))
    return out


def _replace(v: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(v, dict):
        return {**v, head: _replace(v[head], rest, new)}
    return [_replace(x, rest, new) if i == head else x for i, x in enumerate(v)]


EXAMPLE_OBJECTS = [o for name in sorted(p.name for p in EXAMPLES.glob("*.yaml")) for o in load_examples(name)]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_examples(data: st.DataObject) -> None:
    """Realistic workloads with one subtree replaced by anything: deep shapes, not just top-level junk."""
    obj = data.draw(st.sampled_from(EXAMPLE_OBJECTS))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_subtrees(obj)))
        obj = _replace(obj, path, data.draw(json_like))
    w = normalize(obj, EXAMPLE_OBJECTS)
    assert_json_like(w)
    assert not any(p["message"].startswith("internal error") for p in w["problems"]), w["problems"]
