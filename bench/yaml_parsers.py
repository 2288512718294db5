"""How fast YAML parsers read the benchmark corpus, and whether they agree with PyYAML.

    /tmp/venv/bin/python bench/yaml_parsers.py [--docs N]

Parsing is most of `charter check`'s time (see RESULTS.md). This compares PyYAML's
C loader (what charter uses) with the pure-Python loader and with any optional
parser that is importable (yaml_rs from `yaml-rs`, ryml from `rapidyaml`). To try
one without touching the shared venv:

    /tmp/venv/bin/pip install --target /tmp/yamlalt yaml-rs
    PYTHONPATH=/tmp/yamlalt /tmp/venv/bin/python bench/yaml_parsers.py

Agreement is checked document by document against the C loader before a rate is printed.
Only a measurement: YAML 1.1/1.2 differences, duplicate keys and per-document line
numbers (which charter reports) would all need checking before any switch.
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

from corpus import DEFAULT_OUT, generate

Parser = Callable[[str], list[Any]]


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
    a = ap.parse_args(argv)
    out = (
        DEFAULT_OUT if a.docs == 10_000 and a.seed == 7 else DEFAULT_OUT.parent / f"corpus-{a.docs}-{a.seed}"
    )
    corpus = generate(out, a.docs, a.seed)
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus.rglob("*.yaml"))]
    parsers: dict[str, Parser] = {"PyYAML CSafeLoader (charter)": pyyaml(yaml.CSafeLoader)}
    parsers.update(optional_parsers())
    parsers["PyYAML SafeLoader (pure Python)"] = pyyaml(yaml.SafeLoader)
    reference = [parsers["PyYAML CSafeLoader (charter)"](t) for t in texts]
    base_rate = 0.0
    print(f"{len(texts)} files under {corpus}")
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
