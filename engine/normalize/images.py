"""Container image references (github.com/distribution/reference grammar, tolerantly)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ._common import IMAGE_PLACEHOLDER

DEFAULT_REGISTRY = "docker.io"
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_PATH = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")


def parse_image(ref: str) -> tuple[dict[str, Any], str | None]:
    """The parts of an image reference (a fresh dict), and why it is malformed (None when fine)."""
    parts, why = _parse(ref)
    return dict(parts), why


@lru_cache(maxsize=4096)
def _parse(ref: str) -> tuple[dict[str, Any], str | None]:
    """A registry is the first component when it looks like a host (has a dot or a
    port, or is localhost), as the container runtime decides; otherwise docker.io.
    """
    out: dict[str, Any] = {
        "image": ref,
        "registry": "",
        "repository": "",
        "tag": "",
        "digest": "",
        "pinned": False,
        "latest": False,
    }
    text = ref.strip()
    if not text:
        return out, "image is empty"
    if IMAGE_PLACEHOLDER.search(text):
        return out, f"image {ref!r} contains an unrendered template placeholder"
    name, _, digest = text.partition("@")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a colon after the last slash is a tag, before it a registry port
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, name
        if "/" not in repository:
            repository = "library/" + repository  # official images, as docker pull resolves them
    out.update(registry=registry, repository=repository, tag=tag, digest=digest)
    out["pinned"] = bool(digest)
    out["latest"] = tag == "latest" or (not tag and not digest)
    if digest and not _DIGEST.fullmatch(digest):
        return out, f"image {ref!r} has a malformed digest"
    if tag and not _TAG.fullmatch(tag):
        return out, f"image {ref!r} has a malformed tag"
    if not _PATH.fullmatch(repository):
        return out, f"image {ref!r} has a malformed repository name"
    return out, None
