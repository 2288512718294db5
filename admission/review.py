"""The AdmissionReview boundary (admission.k8s.io/v1): untrusted input, parsed strictly.

Unknown fields are ignored (newer apiservers add some); the fields charter uses are strictly
typed, so a wrong type is a 400 with the field named, never a coercion or a crash.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

API_VERSION = "admission.k8s.io/v1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True, frozen=True)


class GroupVersionKind(_Model):
    group: str = ""
    version: str
    kind: str = Field(min_length=1)


class GroupVersionResource(_Model):
    group: str = ""
    version: str
    resource: str = Field(min_length=1)


class UserInfo(_Model):
    username: str = ""
    uid: str = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}


class AdmissionRequest(_Model):
    uid: str = Field(min_length=1, max_length=256)
    kind: GroupVersionKind
    resource: GroupVersionResource
    sub_resource: str = Field("", alias="subResource")
    request_kind: GroupVersionKind | None = Field(None, alias="requestKind")
    request_resource: GroupVersionResource | None = Field(None, alias="requestResource")
    request_sub_resource: str = Field("", alias="requestSubResource")
    name: str = ""
    namespace: str = ""
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    user_info: UserInfo = Field(UserInfo(), alias="userInfo")
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = Field(None, alias="oldObject")
    dry_run: bool = Field(False, alias="dryRun")
    options: dict[str, Any] | None = None


class AdmissionReview(_Model):
    api_version: Literal["admission.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


def validation_message(e: ValidationError, limit: int = 3) -> str:
    """A short, single-line account of what was wrong, naming fields, never echoing values."""
    parts = []
    for err in e.errors(include_url=False, include_input=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = len(e.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
