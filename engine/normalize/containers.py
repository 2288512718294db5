"""Containers of all pod templates, with parsed images, quantities and env."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._common import (
    PLACEHOLDER,
    Ctx,
    at,
    canonical_quantity,
    get_list,
    get_map,
    get_str,
    join,
    scalar_text,
    type_name,
)
from .images import parse_image
from .podspecs import Template


@dataclass
class Container:
    """A container's view plus what other extractors need from the raw container."""

    view: dict[str, Any]
    raw: dict[str, Any]
    path: str
    template: int
    raw_limits: dict[str, Any]
    raw_requests: dict[str, Any]
    sidecar: bool  # an init container with restartPolicy Always runs beside the app containers


def quantities(raw: dict[str, Any], path: str, ctx: Ctx) -> dict[str, str]:
    """{resource: canonical quantity}; text that is not a quantity is kept verbatim and reported."""
    out: dict[str, str] = {}
    for name, v in raw.items():
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            canon, why = canonical_quantity(v)
        else:
            canon, why = None, f"{type_name(v)} is not a quantity"
        if canon is not None:
            out[name] = canon
            continue
        rp = join(path, name)
        if isinstance(v, str) and PLACEHOLDER.search(v):
            ctx.problem(rp, f"unrendered template placeholder {v!r}")
        else:
            ctx.problem(rp, f"not a quantity: {why}")
        out[name] = v if isinstance(v, str) else (scalar_text(v) or "")
    return out


def _env(c: dict[str, Any], path: str, ctx: Ctx) -> dict[str, str]:
    out: dict[str, str] = {}
    ep = join(path, "env")
    for i, e in enumerate(get_list(c, "env", path, ctx)):
        p = at(ep, i)
        if not isinstance(e, dict):
            ctx.problem(p, f"expected an env var, got {type_name(e)}")
            continue
        name = get_str(e, "name", p, ctx)
        if not name:
            ctx.problem(p, "env var has no name")
            continue
        # valueFrom (secrets, field refs) has no value known before admission: "".
        out[name] = get_str(e, "value", p, ctx)
    return out


def extract(templates: list[Template], ctx: Ctx) -> list[Container]:
    out: list[Container] = []
    for ti, t in enumerate(templates):
        for raw, path, ctype, default_name in t.containers:
            if not isinstance(raw, dict):
                ctx.problem(path, f"expected a container, got {type_name(raw)}")
                continue
            name = get_str(raw, "name", path, ctx) or default_name
            if not name:
                ctx.problem(path, "container has no name")
            image_v = raw.get("image")
            if image_v is None and default_name:
                # KServe and TrainJob containers take their image from the serving/training runtime.
                img = parse_image("")[0]
            else:
                img, why = parse_image(get_str(raw, "image", path, ctx))
                if why:
                    ctx.problem(join(path, "image"), why)
            res = get_map(raw, "resources", path, ctx)
            rp = join(path, "resources")
            raw_limits = get_map(res, "limits", rp, ctx)
            raw_requests = get_map(res, "requests", rp, ctx)
            view = {
                "name": name,
                "podTemplate": ti,
                "type": ctype,
                **img,
                "requests": quantities(raw_requests, join(rp, "requests"), ctx),
                "limits": quantities(raw_limits, join(rp, "limits"), ctx),
                "env": _env(raw, path, ctx),
            }
            sidecar = ctype == "init" and raw.get("restartPolicy") == "Always"
            out.append(Container(view, raw, path, ti, raw_limits, raw_requests, sidecar))
    return out
