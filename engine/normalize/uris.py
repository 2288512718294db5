"""Model and dataset locations: URI schemes and names."""

from __future__ import annotations

import re
from functools import lru_cache

_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://")
# A Hugging Face repo id: org/name, as vLLM and TGI accept for --model / HF_MODEL_ID.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@lru_cache(maxsize=4096)
def scheme_of(uri: str) -> str:
    """`hf`, `s3`, `gs`, `pvc`, `oci`, `https`, `azureblob`, ...; `hf` for a bare repo id; "" if none."""
    m = _SCHEME.match(uri)
    if m is None:
        if _REPO_ID.fullmatch(uri):
            return "hf"
        return "file" if uri.startswith("/") else ""
    scheme = m.group(1).lower()
    if scheme in ("gcs",):
        return "gs"
    if scheme in ("https", "http") and ".blob.core.windows.net" in uri[m.end() :].split("/", 1)[0]:
        return "azureblob"
    if scheme in ("az", "abfs", "abfss", "wasb", "wasbs"):
        return "azureblob"
    return scheme


def looks_like_model(value: str) -> bool:
    """Whether an env/arg value names a model location rather than a local path or a label."""
    return bool(_SCHEME.match(value)) or bool(_REPO_ID.fullmatch(value))


@lru_cache(maxsize=4096)
def digest_in(uri: str) -> str:
    """A digest written into the URI itself (`oci://...@sha256:...`, `hf://org/m@sha256:...`)."""
    m = DIGEST.search(uri)
    return m.group(0) if m else ""


@lru_cache(maxsize=4096)
def model_name(uri: str) -> str:
    """`org/model` for Hugging Face, else the last path segment without tag or digest."""
    rest = uri.split("@", 1)[0]
    m = _SCHEME.match(rest)
    scheme = scheme_of(uri)
    if m:
        rest = rest[m.end() :]
    rest = rest.strip("/")
    if scheme == "hf":
        parts = rest.split("/")
        return "/".join(parts[:2]).split(":", 1)[0]
    last = rest.rsplit("/", 1)[-1]
    if scheme == "oci":
        last = last.split(":", 1)[0]
    return last
