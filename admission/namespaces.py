"""Namespace labels for namespaceSelector and `namespaceObject`, never fetched per request.

`KubeNamespaceSource` lists and watches Namespaces in a background thread and answers from
its cache; `FileNamespaceSource` reads Namespace manifests (tests, offline use).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from charter.engine.documents import read_documents

log = logging.getLogger("charter.admission.namespaces")


class NamespaceSource(Protocol):
    def get(self, name: str) -> dict[str, Any] | None:
        """The Namespace object, or None when it is not known."""
        ...

    def ready(self) -> bool:
        """Whether the source has its first full picture of the cluster."""
        ...

    def close(self) -> None: ...


class NullNamespaceSource:
    """No namespace labels: policies with a namespaceSelector fall back to --context Namespaces."""

    def get(self, name: str) -> dict[str, Any] | None:
        return None

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        return None


def _is_namespace(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("apiVersion") == "v1" and obj.get("kind") == "Namespace"


def _name(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


class FileNamespaceSource:
    """Namespace objects from YAML files or directories; other documents are ignored."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._namespaces: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.reload()

    def reload(self) -> None:
        read = read_documents(self.paths)
        found: dict[str, dict[str, Any]] = {}
        for doc in read.documents:
            if _is_namespace(doc.data) and (name := _name(doc.data)) is not None:
                found[name] = doc.data
        self.errors = [str(e) for e in read.errors]
        self._namespaces = found  # one reference swap: readers see the old or the new map

    def get(self, name: str) -> dict[str, Any] | None:
        return self._namespaces.get(name)

    def ready(self) -> bool:
        return not self.errors

    def close(self) -> None:
        return None


class KubeNamespaceSource:
    """A list+watch cache of Namespaces, kept by a daemon thread with the `kubernetes` client.

    On any watch error (410 Gone, a dropped connection) it waits and lists again, so the cache
    resyncs; requests are answered from whatever the cache holds and never call the API.
    """

    def __init__(self, *, api: Any = None, retry_seconds: float = 2.0, watch_timeout: int = 300) -> None:
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._retry = retry_seconds
        self._watch_timeout = watch_timeout
        self._api = api if api is not None else self._default_api()
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="namespace-watch", daemon=True)
        self._thread.start()

    @staticmethod
    def _default_api() -> Any:
        from kubernetes import client, config

        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        return client.CoreV1Api()

    def _to_dict(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict):
            return obj
        d = self._api.api_client.sanitize_for_serialization(obj)
        d.setdefault("apiVersion", "v1")
        d.setdefault("kind", "Namespace")
        return d  # type: ignore[no-any-return]

    # The two state changes, separate from the thread so they can be tested without an apiserver.
    def replace_all(self, items: Sequence[dict[str, Any]]) -> None:
        fresh = {n: o for o in items if (n := _name(o)) is not None}
        with self._lock:
            self._cache = fresh
        self._synced.set()

    def apply_event(self, event_type: str, obj: dict[str, Any]) -> None:
        name = _name(obj)
        if name is None:
            return
        with self._lock:
            if event_type == "DELETED":
                self._cache.pop(name, None)
            elif event_type in ("ADDED", "MODIFIED"):
                self._cache[name] = obj

    def _run(self) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            try:
                listing = self._api.list_namespace()
                self.replace_all([self._to_dict(o) for o in listing.items])
                rv = listing.metadata.resource_version
                self.last_error = None
                w = watch.Watch()  # type: ignore[no-untyped-call]
                for event in w.stream(  # type: ignore[no-untyped-call]
                    self._api.list_namespace, resource_version=rv, timeout_seconds=self._watch_timeout
                ):
                    if self._stop.is_set():
                        w.stop()  # type: ignore[no-untyped-call]
                        return
                    if event.get("type") == "ERROR":
                        raise RuntimeError(f"watch error: {event.get('raw_object')}")
                    self.apply_event(str(event.get("type")), self._to_dict(event["object"]))
            except Exception as e:  # resync from a fresh list after any failure
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("namespace watch failed; relisting", extra={"error": self.last_error})
                self._stop.wait(self._retry)

    def get(self, name: str) -> dict[str, Any] | None:
        return self._cache.get(name)

    def ready(self) -> bool:
        return self._synced.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def close(self) -> None:
        self._stop.set()


def namespace_source(spec: str | None) -> NamespaceSource:
    """`--namespace-source kube|file:PATH[,PATH...]`; none given: no live labels."""
    if spec is None or spec == "":
        return NullNamespaceSource()
    if spec == "kube":
        return KubeNamespaceSource()
    if spec.startswith("file:"):
        return FileNamespaceSource([p for p in spec[5:].split(",") if p])
    raise ValueError(f"--namespace-source must be 'kube' or 'file:PATH', not {spec!r}")


__all__ = [
    "FileNamespaceSource",
    "KubeNamespaceSource",
    "NamespaceSource",
    "NullNamespaceSource",
    "namespace_source",
]
