"""How fast YAML parsers read the benchmark corpus, and whether they agree with PyYAML.

    /tmp/venv/bin/python bench/yaml_parsers.py [--docs N] [--repeat N] [--also DIR ...]

Parsing was a third of `charter check`'s time (see RESULTS.md). First, charter's
`parse_documents` (the yamlfast gate + yaml-rs, PyYAML for every text the gate refuses)
against its reference `_parse_yaml_pyyaml` (PyYAML's C loader, what charter used alone
before), in the same run: every file of the corpus (and of each `--also` directory) must
give the same Documents (index, line, item, values with their types and key order), then
both are timed best-of-N, interleaved, and the ratio is printed with the gate's fallback
rate. Then, for scale, the raw parsers: PyYAML's C and pure-Python loaders and any
optional parser that is importable (yaml_rs from `yaml-rs`), with their own agreement
with the C loader.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from charter.engine.documents import (
    Document,
    _parse_yaml_fast,
    _parse_yaml_pyyaml,
    expand_list,
    parse_documents,
)
from corpus import DEFAULT_OUT, generate

Parser = Callable[[str], list[Any]]


def strictly(x: Any) -> Any:
    """A value that compares equal only with the same types, key order and float spelling."""
    if isinstance(x, dict):
        return ("dict", [(strictly(k), strictly(v)) for k, v in x.items()])
    if isinstance(x, list):
        return ("list", [strictly(v) for v in x])
    return (type(x).__name__, repr(x) if isinstance(x, float) else x)


def charter_docs(parse: Callable[[str, str], Any], text: str, source: str) -> list[Any]:
    docs: list[Document] = [d for doc in parse(text, source) for d in expand_list(doc)]
    return [(d.index, d.line, d.item, strictly(d.data)) for d in docs]


def charter_paths(files: list[Path], texts: list[str], repeat: int) -> None:
    """The new path against the old one: agreement on every file, then best-of-N times and the ratio."""
    disagree = [
        str(f)
        for f, t in zip(files, texts, strict=True)
        if charter_docs(parse_documents, t, str(f)) != charter_docs(_parse_yaml_pyyaml, t, str(f))
    ]
    refused = [t for t in texts if _parse_yaml_fast(t, "f.yaml") is None]
    n = sum(len(charter_docs(_parse_yaml_pyyaml, t, "f.yaml")) for t in texts)
    n_refused = sum(len(charter_docs(_parse_yaml_pyyaml, t, "f.yaml")) for t in refused)
    print(f"agreement (documents, lines, types): {len(files) - len(disagree)}/{len(files)} files")
    for f in disagree[:10]:
        print(f"  DIFFERS: {f}")
    print(
        f"gate fallback to PyYAML: {len(refused)}/{len(texts)} files, {n_refused}/{n} manifests "
        f"({100 * n_refused / max(n, 1):.1f} %)"
    )
    # Kept: every document stays alive, as `read_documents` keeps them (the cyclic GC then
    # rescans a growing heap, which costs both paths alike); dropped: each file's documents are
    # freed at once, the parse cost alone.
    runs: dict[str, Callable[[], object]] = {
        "old kept": lambda: [list(_parse_yaml_pyyaml(t, "f.yaml")) for t in texts],
        "new kept": lambda: [list(parse_documents(t, "f.yaml")) for t in texts],
        "old dropped": lambda: sum(len(list(_parse_yaml_pyyaml(t, "f.yaml"))) for t in texts),
        "new dropped": lambda: sum(len(list(parse_documents(t, "f.yaml"))) for t in texts),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):  # interleaved, so that a noisy neighbour hits both paths alike
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t0)
    us = {k: 1e6 * v / n for k, v in best.items()}
    print(f"| µs/manifest, best of {repeat} | documents kept | dropped |\n|---|---:|---:|")
    print(
        f"| PyYAML CSafeLoader (`_parse_yaml_pyyaml`, before) | {us['old kept']:,.1f} | {us['old dropped']:,.1f} |"
    )
    print(
        f"| `parse_documents` (yamlfast + yaml-rs, now) | {us['new kept']:,.1f} | {us['new dropped']:,.1f} |"
    )
    print(
        f"| speed-up | {us['old kept'] / us['new kept']:.2f}x | {us['old dropped'] / us['new dropped']:.2f}x |"
    )
    print(f"({n} manifests; new path kept: {1e6 / us['new kept']:,.0f} manifests/s)")


def pyyaml(loader: Any) -> Parser:
    def parse(text: str) -> list[Any]:
        return [d for d in yaml.load_all(text, Loader=loader) if d is not None]

    return parse


def optional_parsers() -> dict[str, Parser]:
    found: dict[str, Parser] = {}
    try:
        yaml_rs: Any = importlib.import_module("yaml_rs")

        def parse_rs(text: str) -> list[Any]:
            x = yaml_rs.loads(text, parse_datetime=False)
            docs = x if isinstance(x, list) and text.lstrip().startswith("---") else [x]
            return [d for d in docs if d is not None]

        found["yaml-rs (yaml_rs.loads)"] = parse_rs
    except ImportError:
        pass
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5, help="best of N timed passes (default 5)")
    ap.add_argument("--also", nargs="*", default=[], help="directories to check agreement and fallback on")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw-parser table")
    a = ap.parse_args(argv)
    out = (
        DEFAULT_OUT if a.docs == 10_000 and a.seed == 7 else DEFAULT_OUT.parent / f"corpus-{a.docs}-{a.seed}"
    )
    corpus = generate(out, a.docs, a.seed)
    files = sorted(corpus.rglob("*.yaml"))
    texts = [p.read_text(encoding="utf-8") for p in files]
    print(f"{len(texts)} files under {corpus}")
    charter_paths(files, texts, a.repeat)
    for d in a.also:
        extra = sorted(p for p in Path(d).rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        print(f"\n{len(extra)} files under {d}")
        charter_paths(extra, [p.read_text(encoding="utf-8") for p in extra], a.repeat)
    if a.no_raw:
        return 0
    print()
    parsers: dict[str, Parser] = {"PyYAML CSafeLoader (charter)": pyyaml(yaml.CSafeLoader)}
    parsers.update(optional_parsers())
    parsers["PyYAML SafeLoader (pure Python)"] = pyyaml(yaml.SafeLoader)
    reference = [parsers["PyYAML CSafeLoader (charter)"](t) for t in texts]
    base_rate = 0.0
    print("| parser | manifests/s | µs/manifest | x C loader | agrees |\n|---|---:|---:|---:|---|")
    for name, parse in parsers.items():
        # Timed without keeping the documents (charter keeps them; that adds GC work for every parser).
        t0 = time.perf_counter()
        n = sum(len(parse(t)) for t in texts)
        dt = time.perf_counter() - t0
        base_rate = base_rate or n / dt
        agrees = all(parse(t) == ref for t, ref in zip(texts, reference, strict=True))
        print(f"| {name} | {n / dt:,.0f} | {1e6 * dt / n:,.0f} | {n / dt / base_rate:.1f} | {agrees} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
