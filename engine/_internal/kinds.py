"""Kind -> resource and scope for offline evaluation (the apiserver's RESTMapper, frozen).

Offline there is no discovery, so the well-known kinds are listed and other kinds
get the apiserver's own guess (UnsafeGuessKindToResource) and are taken as namespaced.
"""

from __future__ import annotations

from typing import NamedTuple


class KindInfo(NamedTuple):
    resource: str
    namespaced: bool


_KNOWN: dict[tuple[str, str], KindInfo] = {
    ("", "Pod"): KindInfo("pods", True),
    ("", "Namespace"): KindInfo("namespaces", False),
    ("", "ConfigMap"): KindInfo("configmaps", True),
    ("", "Secret"): KindInfo("secrets", True),
    ("", "Service"): KindInfo("services", True),
    ("", "ServiceAccount"): KindInfo("serviceaccounts", True),
    ("", "PersistentVolumeClaim"): KindInfo("persistentvolumeclaims", True),
    ("", "PersistentVolume"): KindInfo("persistentvolumes", False),
    ("", "Node"): KindInfo("nodes", False),
    ("", "Endpoints"): KindInfo("endpoints", True),
    ("", "ReplicationController"): KindInfo("replicationcontrollers", True),
    ("apps", "Deployment"): KindInfo("deployments", True),
    ("apps", "ReplicaSet"): KindInfo("replicasets", True),
    ("apps", "StatefulSet"): KindInfo("statefulsets", True),
    ("apps", "DaemonSet"): KindInfo("daemonsets", True),
    ("batch", "Job"): KindInfo("jobs", True),
    ("batch", "CronJob"): KindInfo("cronjobs", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): KindInfo("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): KindInfo("clusterrolebindings", False),
    ("storage.k8s.io", "StorageClass"): KindInfo("storageclasses", False),
    ("resource.k8s.io", "DeviceClass"): KindInfo("deviceclasses", False),
    ("resource.k8s.io", "ResourceClaim"): KindInfo("resourceclaims", True),
    ("resource.k8s.io", "ResourceClaimTemplate"): KindInfo("resourceclaimtemplates", True),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): KindInfo("customresourcedefinitions", False),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): KindInfo(
        "validatingadmissionpolicies", False
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): KindInfo(
        "validatingadmissionpolicybindings", False
    ),
    ("kubeflow.org", "PyTorchJob"): KindInfo("pytorchjobs", True),
    ("kubeflow.org", "TFJob"): KindInfo("tfjobs", True),
    ("kubeflow.org", "MPIJob"): KindInfo("mpijobs", True),
    ("kubeflow.org", "XGBoostJob"): KindInfo("xgboostjobs", True),
    ("kubeflow.org", "PaddleJob"): KindInfo("paddlejobs", True),
    ("kubeflow.org", "JAXJob"): KindInfo("jaxjobs", True),
    ("kubeflow.org", "Notebook"): KindInfo("notebooks", True),
    ("trainer.kubeflow.org", "TrainJob"): KindInfo("trainjobs", True),
    ("ray.io", "RayJob"): KindInfo("rayjobs", True),
    ("ray.io", "RayCluster"): KindInfo("rayclusters", True),
    ("ray.io", "RayService"): KindInfo("rayservices", True),
    ("serving.kserve.io", "InferenceService"): KindInfo("inferenceservices", True),
    ("serving.kserve.io", "LLMInferenceService"): KindInfo("llminferenceservices", True),
    ("jobset.x-k8s.io", "JobSet"): KindInfo("jobsets", True),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): KindInfo("leaderworkersets", True),
}


def guess_resource(kind: str) -> str:
    """k8s.io/apimachinery/pkg/api/meta.UnsafeGuessKindToResource."""
    if not kind:
        return ""
    singular = kind.lower()
    if singular.endswith("s"):
        return singular + "es"
    if singular.endswith("y"):
        return singular[:-1] + "ies"
    return singular + "s"


def split_api_version(api_version: str) -> tuple[str, str]:
    """("apps", "v1") from "apps/v1"; ("", "v1") from "v1"."""
    if "/" in api_version:
        group, _, version = api_version.partition("/")
        return group, version
    return "", api_version


def kind_info(group: str, kind: str) -> KindInfo:
    found = _KNOWN.get((group, kind))
    if found is not None:
        return found
    return KindInfo(guess_resource(kind), True)


def known_kinds() -> dict[tuple[str, str], KindInfo]:
    return dict(_KNOWN)
