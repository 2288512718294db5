"""Publishing checkpoints somewhere the operator cannot rewrite.

A checkpoint signed only by the operator proves nothing against the operator: auditors keep
copies (the file sink below: an append-only file, e.g. on a WORM mount or in the auditors'
own repository) or witnesses cosign them (`charter audit witness`). `charter audit verify
--published FILE` then checks the database against every checkpoint ever published.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from .crypto import parse_checkpoint_body, split_note


class CheckpointPublisher(Protocol):
    def publish(self, note: str) -> None:
        """Hand one signed checkpoint note to a place the log operator cannot rewrite."""
        ...


class FileCheckpointSink:
    """Append-only JSON Lines file, one `{"size": N, "note": "..."}` per checkpoint, fsync'd."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def publish(self, note: str) -> None:
        text, _ = split_note(note)
        size = parse_checkpoint_body(text).size
        line = json.dumps({"size": size, "note": note}, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"FileCheckpointSink({str(self.path)!r})"


def read_published(path: str | Path) -> Iterator[str]:
    for line in Path(path).read_text().splitlines():
        if line.strip():
            yield str(json.loads(line)["note"])


PutObject = Callable[[str, bytes], None]


class ObjectStoreCheckpointSink:
    """The object-store interface: each checkpoint is written once under `<prefix><size>.checkpoint`.

    `put` must create the object with a retention lock (S3 Object Lock in compliance mode,
    GCS bucket lock, Azure immutable blobs) and must refuse to overwrite, so the operator
    cannot replace a published checkpoint. charter ships no cloud SDK: pass e.g.
    `lambda key, data: s3.put_object(Bucket=b, Key=key, Body=data, ObjectLockMode="COMPLIANCE",
    ObjectLockRetainUntilDate=until, IfNoneMatch="*")`.
    """

    def __init__(self, put: PutObject, prefix: str = "checkpoints/") -> None:
        self.put, self.prefix = put, prefix

    def publish(self, note: str) -> None:
        text, _ = split_note(note)
        size = parse_checkpoint_body(text).size
        self.put(f"{self.prefix}{size:020d}.checkpoint", note.encode())
