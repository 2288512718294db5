"""Reading YAML and JSON files into located documents.

Every document keeps its file, index and starting line so that any later error
or verdict can point at it. A file that fails to parse is reported with its line
and the documents before the failure are kept; the rest of the run goes on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._internal import yamlfast
from ._internal.aliases import alias_problem
from .errors import InputError, Location

try:  # the C loader is ~7x faster; `charter check` is parse-bound
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 64 * 1024 * 1024
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML/JSON document and where it came from."""

    source: str
    index: int
    line: int
    data: Any
    item: int | None = None  # position inside a `kind: List`

    @property
    def location(self) -> Location:
        return Location(file=self.source, document=self.index, line=self.line)


@dataclass
class ReadResult:
    documents: list[Document] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def expand_paths(
    paths: Iterable[str], skip_dirs: frozenset[str] = frozenset()
) -> tuple[list[str], list[InputError]]:
    """Files named, and manifest files found recursively under directories, in a stable order.

    Hidden directories are never entered; nor are directories named in `skip_dirs`
    (policy packs keep their test fixtures in `tests/`, which must not become policy or context).
    """
    files: list[str] = []
    errors: list[InputError] = []
    for raw in paths:
        if raw == STDIN:
            files.append(STDIN)
            continue
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                str(f)
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix in MANIFEST_SUFFIXES
                and not any(
                    part.startswith(".") or part in skip_dirs for part in f.relative_to(p).parent.parts
                )
                and not f.name.startswith(".")
            )
            files.extend(found)
        elif p.is_file():
            files.append(str(p))
        else:
            errors.append(InputError("no such file or directory", Location(file=raw)))
    return files, errors


def read_text(source: str) -> str:
    if source == STDIN:
        return sys.stdin.read()
    p = Path(source)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", Location(file=source)
            )
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text: {e.reason} at byte {e.start}", Location(file=source)) from e
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", Location(file=source)) from e


def parse_documents(text: str, source: str) -> Iterator[Document]:
    """Yield the documents of a YAML or JSON text; raise InputError at the first that does not parse."""
    stripped = text.lstrip()
    if source.endswith(".json") or (source == STDIN and stripped.startswith(("{", "["))):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(
                f"invalid JSON: {e.msg} (column {e.colno})", Location(file=source, document=0, line=e.lineno)
            ) from e
        yield Document(source, 0, 1, data)
        return
    docs = _parse_yaml_fast(text, source)
    if docs is not None:
        yield from docs
    else:
        yield from _parse_yaml_pyyaml(text, source)


def _parse_yaml_fast(text: str, source: str) -> list[Document] | None:
    """The documents by the yaml-rs fast path, or None when PyYAML must decide (see yamlfast)."""
    docs = []
    try:
        pieces = yamlfast.split(text)
        if pieces is None:
            return None
        for index, (line, chunk) in enumerate(pieces):
            docs.append(Document(source, index, line, None if chunk is None else yamlfast.load(chunk)))
    except Exception:  # any refusal, error message included, is PyYAML's to report
        return None
    return docs


def _parse_yaml_pyyaml(text: str, source: str) -> Iterator[Document]:
    """The reference: PyYAML's documents and errors (every text the fast path does not take)."""
    loader = _Loader(text)
    index = 0
    may_alias = "*" in text  # an alias is `*name`; the (linear) expansion check needs one
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            problem = alias_problem(data) if may_alias else None
            if problem is not None:  # before anything walks the expanded tree
                raise InputError(f"invalid YAML: {problem}", Location(file=source, document=index, line=line))
            yield Document(source, index, line, data)
            index += 1
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise InputError(f"invalid YAML: {what}", Location(file=source, document=index, line=line)) from e
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {e}", Location(file=source, document=index)) from e
    except RecursionError as e:
        raise InputError("invalid YAML: nesting too deep", Location(file=source, document=index)) from e
    finally:
        loader.dispose()


def read_documents(paths: Iterable[str], skip_dirs: frozenset[str] = frozenset()) -> ReadResult:
    """Read every document under `paths`; parse failures become errors, never exceptions."""
    files, errors = expand_paths(paths, skip_dirs)
    result = ReadResult(errors=errors)
    for source in files:
        try:
            text = read_text(source)
            for doc in parse_documents(text, source):
                result.documents.extend(expand_list(doc))
        except InputError as e:
            result.errors.append(e)
    return result


def expand_list(doc: Document) -> list[Document]:
    """A `kind: List` (or `*List`) becomes its items; an empty document becomes nothing."""
    data = doc.data
    if data is None:
        return []
    if (
        isinstance(data, dict)
        and isinstance(data.get("kind"), str)
        and data["kind"].endswith("List")
        and isinstance(data.get("items"), list)
    ):
        return [
            Document(doc.source, doc.index, doc.line, item, item=i)
            for i, item in enumerate(data["items"])
            if item is not None
        ]
    return [doc]
