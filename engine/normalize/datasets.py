"""Datasets a workload reads: declared in annotations, mounted as volumes, or named in env."""

from __future__ import annotations

import json
from typing import Any

from ._common import Ctx, at, get_list, get_map, get_str, join, text, type_name
from .containers import Container
from .podspecs import Extras, Template
from .uris import scheme_of

DATASETS = "charter.dev/datasets"
_ENV = ("DATASET_URI", "DATA_URI", "DATASET_ID")
_GCS = "gcsfuse.csi.storage.gke.io"
_S3 = "s3.csi.aws.com"
_BLOB = "blob.csi.azure.com"


def _entry(id_: str, uri: str, source: str) -> dict[str, Any]:
    # An entry given only as a URI is identified by that URI, so `id` is never empty.
    return {"id": id_ or uri, "uri": uri, "source": source, "scheme": scheme_of(uri) if uri else ""}


def _item(text: str, source: str) -> dict[str, Any]:
    text = text.strip()
    return _entry("", text, source) if "://" in text else _entry(text, "", source)


def _annotation(ann: dict[str, str], path: str, ctx: Ctx) -> list[dict[str, Any]]:
    raw = ann.get(DATASETS, "").strip()
    if not raw:
        return []
    p = join(path, DATASETS)
    if not raw.startswith("["):
        return [_item(x, "annotation") for x in raw.split(",") if x.strip()]
    try:
        items = json.loads(raw)
    except ValueError as e:
        ctx.problem(p, f"not a JSON list: {e}")
        return []
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item.strip():
            out.append(_item(item, "annotation"))
        elif isinstance(item, dict) and (isinstance(item.get("id"), str) or isinstance(item.get("uri"), str)):
            out.append(_entry(text(item.get("id")), text(item.get("uri")), "annotation"))
        else:
            ctx.problem(at(p, i), f"expected a dataset id, URI or {{id, uri}}, got {type_name(item)}")
    return out


def _csi(csi: dict[str, Any], path: str, ctx: Ctx) -> dict[str, Any] | None:
    driver = get_str(csi, "driver", path, ctx)
    attrs = get_map(csi, "volumeAttributes", path, ctx)
    bucket = attrs.get("bucketName") or attrs.get("bucket") or ""
    bucket = bucket if isinstance(bucket, str) else ""
    if driver == _GCS and bucket:
        uri = f"gs://{bucket}"
        # gcsfuse `only-dir=<prefix>` mounts a folder of the bucket: the dataset is that folder.
        opts = attrs.get("mountOptions")
        for opt in opts.split(",") if isinstance(opts, str) else []:
            k, _, v = opt.strip().partition("=")
            if k in ("only-dir", "only_dir") and v:
                uri += "/" + v.strip("/")
        return _entry(bucket, uri, "csi")
    if driver == _S3 and bucket:
        prefix = attrs.get("prefix")
        uri = f"s3://{bucket}" + (f"/{prefix.strip('/')}" if isinstance(prefix, str) and prefix else "")
        return _entry(bucket, uri, "csi")
    if driver == _BLOB:
        account, container = attrs.get("storageAccount"), attrs.get("containerName")
        if isinstance(account, str) and isinstance(container, str) and account and container:
            return _entry(container, f"azureblob://{account}/{container}", "csi")
    if driver in (_GCS, _S3, _BLOB):
        ctx.problem(join(path, "volumeAttributes"), f"{driver} volume without a bucket")
    return None


def _volumes(t: Template, namespace: str, ctx: Ctx) -> list[dict[str, Any]]:
    out = []
    vp = join(t.path, "volumes")
    for i, v in enumerate(get_list(t.spec, "volumes", t.path, ctx)):
        p = at(vp, i)
        if not isinstance(v, dict):
            ctx.problem(p, f"expected a volume, got {type_name(v)}")
            continue
        if isinstance(v.get("persistentVolumeClaim"), dict):
            claim = get_str(v["persistentVolumeClaim"], "claimName", join(p, "persistentVolumeClaim"), ctx)
            if claim:
                out.append(
                    _entry(claim, f"pvc://{namespace}/{claim}" if namespace else f"pvc://{claim}", "pvc")
                )
        elif isinstance(v.get("csi"), dict):
            e = _csi(v["csi"], join(p, "csi"), ctx)
            if e is not None:
                out.append(e)
        elif isinstance(v.get("nfs"), dict):
            server = get_str(v["nfs"], "server", join(p, "nfs"), ctx)
            share = get_str(v["nfs"], "path", join(p, "nfs"), ctx)
            if server:
                uri = f"nfs://{server}/{share.lstrip('/')}"
                out.append(_entry("", uri, "volume"))
    return out


def extract(
    annotations: dict[str, str],
    namespace: str,
    templates: list[Template],
    containers: list[Container],
    extras: Extras,
    ctx: Ctx,
) -> list[dict[str, Any]]:
    out = _annotation(annotations, "metadata.annotations", ctx)
    for t in templates:
        out.extend(_annotation(t.annotations, join(t.meta_path, "annotations"), ctx))
        out.extend(_volumes(t, namespace, ctx))
    for uri, _path in extras.dataset_uris:
        out.append(_entry("", uri, "storageUri"))
    for c in containers:
        env = c.view["env"]
        for key in _ENV:
            v = env.get(key, "")
            if v:
                out.append(_item(v, "env"))
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for d in out:
        seen.setdefault((d["id"], d["uri"]), d)
    return list(seen.values())
