"""Models a workload loads: declared in annotations or found in its spec, env and args."""

from __future__ import annotations

import json
from typing import Any

from ._common import Ctx, join, text, type_name
from .containers import Container
from .podspecs import Extras, Template
from .uris import DIGEST, digest_in, looks_like_model, model_name, scheme_of

MODEL_URI = "charter.dev/model-uri"
MODEL_DIGEST = "charter.dev/model-digest"
MODELS = "charter.dev/models"
_ENV = ("HF_MODEL_ID", "MODEL_ID", "MODEL_NAME", "MODEL_URI", "MODEL_PATH")
# Flags of vLLM, TGI, SGLang and transformers scripts that name the model to load.
_FLAGS = {
    "--model", "--model-id", "--model_id", "--model-path", "--model_path",
    "--model-name-or-path", "--model_name_or_path", "--pretrained-model-name-or-path",
}  # fmt: skip


def _entry(uri: str, digest: str, source: str, name: str = "") -> dict[str, Any]:
    return {
        "uri": uri,
        "digest": digest or digest_in(uri),
        "source": source,
        "name": name or model_name(uri),
        "scheme": scheme_of(uri),
    }


def _annotations(ann: dict[str, str], path: str, ctx: Ctx) -> list[dict[str, Any]]:
    out = []
    uri, digest = ann.get(MODEL_URI, ""), ann.get(MODEL_DIGEST, "")
    if digest and not DIGEST.fullmatch(digest):
        ctx.problem(join(path, MODEL_DIGEST), f"not a sha256 digest: {digest!r}")
    if uri:
        out.append(_entry(uri, digest, "annotation"))
    if MODELS in ann:
        p = join(path, MODELS)
        try:
            items = json.loads(ann[MODELS])
        except ValueError as e:
            ctx.problem(p, f"not a JSON list: {e}")
            items = []
        if not isinstance(items, list):
            ctx.problem(p, f"expected a JSON list, got {type_name(items)}")
            items = []
        for i, item in enumerate(items):
            if isinstance(item, str) and item:
                out.append(_entry(item, "", "annotation"))
            elif isinstance(item, dict) and isinstance(item.get("uri"), str) and item["uri"]:
                out.append(
                    _entry(item["uri"], text(item.get("digest")), "annotation", text(item.get("name")))
                )
            else:
                ctx.problem(f"{p}[{i}]", "expected a URI or {uri, digest, name}")
    return out


def _from_args(c: Container) -> list[str]:
    argv: list[str] = []
    for key in ("command", "args"):
        v = c.raw.get(key)
        if isinstance(v, list):
            argv.extend(a for a in v if isinstance(a, str))
    found = []
    for i, a in enumerate(argv):
        flag, eq, val = a.partition("=")
        if flag in _FLAGS:
            value = val if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        elif a == "serve" and i > 0 and argv[i - 1].endswith("vllm") and i + 1 < len(argv):
            value = argv[i + 1]  # `vllm serve <model>`
        else:
            continue
        if looks_like_model(value):
            found.append(value)
    return found


def extract(
    annotations: dict[str, str],
    templates: list[Template],
    containers: list[Container],
    extras: Extras,
    ctx: Ctx,
) -> list[dict[str, Any]]:
    out = _annotations(annotations, "metadata.annotations", ctx)
    for t in templates:
        out.extend(_annotations(t.annotations, join(t.meta_path, "annotations"), ctx))
    for uri, _path, name in extras.model_uris:
        out.append(_entry(uri, "", "storageUri", name))
    for c in containers:
        for key in _ENV:
            v = c.view["env"].get(key, "")
            if v and looks_like_model(v):
                out.append(_entry(v, "", "env"))
        out.extend(_entry(v, "", "args") for v in _from_args(c))
    # One entry per model (`hf://org/m` and the repo id `org/m` are one); the first source wins,
    # a digest found by any source is kept.
    merged: dict[str, dict[str, Any]] = {}
    for m in out:
        key = "hf://" + m["name"] if m["scheme"] == "hf" else m["uri"]
        seen = merged.setdefault(key, m)
        if not seen["digest"]:
            seen["digest"] = m["digest"]
    result = list(merged.values())
    digest = annotations.get(MODEL_DIGEST, "")
    if digest and not annotations.get(MODEL_URI):
        # A digest annotation beside a storageUri pins that model, when there is just one.
        if len(result) == 1 and not result[0]["digest"]:
            result[0]["digest"] = digest
        else:
            ctx.problem(join("metadata.annotations", MODEL_DIGEST), f"{MODEL_DIGEST} without {MODEL_URI}")
    return result
