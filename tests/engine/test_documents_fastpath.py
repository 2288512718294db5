"""The yaml-rs fast path of `parse_documents` gives exactly what PyYAML gives.

Every comparison is against `_parse_yaml_pyyaml`, the PyYAML path that `parse_documents`
used alone before: the same documents (values and Python types, key order, float signs),
index, starting line and `kind: List` items, or the same InputError (message, document,
line). The fast path may refuse any text (it then goes to PyYAML); it may never differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from charter.engine import documents
from charter.engine._internal import yamlfast
from charter.engine.documents import _parse_yaml_fast, _parse_yaml_pyyaml, expand_list, parse_documents
from charter.engine.errors import InputError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]

needs_yaml_rs = pytest.mark.skipif(not yamlfast.AVAILABLE, reason="yaml-rs is not installed")


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down, dict keys in the same order, -0.0 != 0.0."""
    stack = [(a, b)]  # iterative: some documents nest thousands deep
    seen: set[tuple[int, int]] = set()  # aliases make recursive documents in PyYAML
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict | list):
            if (id(x), id(y)) in seen:
                continue
            seen.add((id(x), id(y)))
        if isinstance(x, dict):
            if list(x) != list(y):
                return False
            stack.extend(zip(x, y, strict=True))
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, float):
            if repr(x) != repr(y):
                return False
        elif x != y:
            return False
    return True


def outcome(parse: Any, text: str, source: str = "f.yaml") -> tuple[str, Any]:
    try:
        docs = [d for doc in parse(text, source) for d in [doc, *expand_list(doc)]]
    except InputError as e:
        return "error", (str(e), e.message, e.location)
    return "docs", [(d.source, d.index, d.line, d.item, d.data) for d in docs]


def assert_same(text: str, source: str = "f.yaml") -> None:
    new, old = outcome(parse_documents, text, source), outcome(_parse_yaml_pyyaml, text, source)
    assert new[0] == old[0], (text, new, old)
    if new[0] == "error":
        assert new == old, text
        return
    assert len(new[1]) == len(old[1]), (text, new, old)
    for n, o in zip(new[1], old[1], strict=True):
        assert n[:4] == o[:4], (text, n, o)
        assert same(n[4], o[4]), (text, n, o)


def repo_yaml_files() -> list[Path]:
    found = [
        p
        for top in ("examples", "policies", "tests")
        for p in sorted((ROOT / top).rglob("*"))
        if p.suffix in (".yaml", ".yml") and p.is_file()
    ]
    assert len(found) > 20
    return found


def test_every_yaml_file_of_the_repository_parses_the_same() -> None:
    for path in repo_yaml_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        assert_same(text, str(path))


@needs_yaml_rs
def test_most_example_files_take_the_fast_path() -> None:
    files = [p for p in sorted((ROOT / "examples").rglob("*")) if p.suffix in (".yaml", ".yml")]
    fast = [p for p in files if _parse_yaml_fast(p.read_text(encoding="utf-8"), str(p)) is not None]
    # Some examples are YAML 1.1 corner cases on purpose (anchors, `yes`, `...`): those go to PyYAML.
    assert len(fast) >= 0.5 * len(files), [str(p) for p in files if p not in fast]
    plain = {"deployment-vllm.yaml", "list.yaml", "pytorchjob-llama-finetune.yaml"}
    assert {p.name for p in files if p.name in plain} <= {p.name for p in fast}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from corpus import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out = generate(tmp_path_factory.mktemp("corpus"), 1500, 7)
    return sorted(out.rglob("*.yaml"))


def test_the_benchmark_corpus_parses_the_same(corpus: list[Path]) -> None:
    for path in corpus:
        assert_same(path.read_text(encoding="utf-8"), str(path))


@needs_yaml_rs
def test_the_benchmark_corpus_takes_the_fast_path(corpus: list[Path]) -> None:
    texts = [p.read_text(encoding="utf-8") for p in corpus]
    refused = [t for t in texts if _parse_yaml_fast(t, "f.yaml") is None]
    assert len(refused) <= 0.05 * len(texts)


# Texts on which YAML 1.1 (PyYAML) and 1.2 (yaml-rs) differ, or which the gate must see.
RISKY_CASES = [
    "a: yes\nb: No\nc: ON\nd: off\ne: y\nf: n\n",
    "on: push\nyes: 1\n",
    "a: [yes, no]\nb: {c: on}\n",
    '{"a":yes}\n',
    "a: 0755\nb: 0o17\nc: 0x1F\nd: 0X1F\ne: 0b101\nf: 1_000\ng: 1:20\nh: 1:20.5\n",
    "a: 1e3\nb: 1.5e3\nc: 1E5\nd: 5e-3\ne: 1e400\nf: 0.1e1\ng: ._5\nh: _1\n",
    "a: .inf\nb: -.inf\nc: .NaN\nd: +1\ne: -0\nf: 00\ng: 09\nh: 1.\n",
    "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\nc: 2001-12-14 21:59:43.10 -5\n",
    "a: ~\nb: null\nc: Null\nd: NULL\ne: nULL\nf:\ng: tRue\nh: FALSE\n",
    "a: &x {c: 1}\nb: *x\n",
    "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
    "a: !!str 1\nb: !!int '2'\n",
    "a: 1\na: 2\n",
    "[a, b]: c\n",
    "? a\n: b\n",
    ": x\n",
    "- : x\n",
    "a: =\n",
    "%YAML 1.1\n---\na: 1\n",
    "a: 1\n...\n---\nb: 2\n",
    "--- a\n--- b\n",
    "--- |\n  x\n",
    'a: "tab\\there"\nb: "\\u00e9"\n',
    "a:\tb\n",
    "a: b\r\nc: d\r\n",
    "\ufeffa: b\n",
    "a: b\u2028c\n",
    "a: b\x85c\n",
    "a: \x01\n",
    "a: |2\n   x\n",
    "a: |\n  x\n---\nb: |+\n  y\n\n",
    "a: >\n  folded\n  text\n\n  para\n",
    "a: 'x\n\n  y'\nb: \"x\n  \n  y\"\n",
    'a: "x\n\n  y  \n z"\n',
    "k" * 1100 + ": v\n",
    "a: " + "x" * 1100 + "\n",
    "---\n---\n",
    "a: 1\n---\n# only a comment\n\n",
    "# c\n---\n\n  a: 1\n",
    "---",
    "a: 1\n--- # c\nb: 2\n---  \n",
    "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n- null\n- kind: Service\n",
    "a: [\n  b,\n  c\n]\n",
    "a: 1.5\nb: -2\nc: 0.25\nd: 1.4.2\ne: 10.0.0.1\nf: -1.2.3\ng: 123456789012345678901234567890\n",
    "schedule: 5 * * * *\nimage: x@sha256:2fc1ec5d6106c0645bbfd7f62b8028c42c685f56166426023e4edec5de432e5e\n",
]

MALFORMED = [
    "a: b: c\n",
    "a:\n  - b\n  c: d\n",
    "- a\nb: c\n",
    "a: 'b'c\n",
    "a:\n  b: 1\n c: 2\n",
    "key: value\n  more: x\n",
    "a: [b\n",
    "a: {b: c\n",
    "a: 'unterminated\n",
    'a: "unterminated\n',
    "a: 1\n---\nb: [\n---\nc: 1\n",
    "a: 1\n---\nb: 2\n---\n  c: 1\nd: 2\n",
    "a: *nope\n",
    "a: |\n   x\n  y\n",
    "a: -\n",
    "a: x\n  # c\n  y\n",
    "a: @x\n",
    "a: `x\n",
    "[a]:x\n",
    "[#c\n a]\n",
    "\t- a\n",
    "[" * 5000 + "]" * 5000 + "\n",
]


@pytest.mark.parametrize("text", RISKY_CASES + MALFORMED)
def test_risky_and_malformed_texts_parse_the_same(text: str) -> None:
    assert_same(text)


def test_errors_keep_message_document_and_line() -> None:
    text = "a: 1\n---\nb: 2\n---\nc: [\n"
    with pytest.raises(InputError) as new:
        list(parse_documents(text, "x.yaml"))
    assert new.value.location.document == 2
    assert new.value.location.line == 6
    assert new.value.message.startswith("invalid YAML: ")
    assert_same(text, "x.yaml")


def test_deep_nesting_does_not_crash() -> None:
    # Block nesting deeper than yaml-rs can recurse needs long lines: the gate refuses those.
    deep_block = "".join(" " * i + "a:\n" for i in range(3000))
    assert yamlfast.split(deep_block) is None
    assert_same(deep_block)
    # Nesting within the line-length bound is taken and parses the same.
    assert_same("".join(" " * i + "a:\n" for i in range(900)) + " " * 900 + "b\n")
    assert_same("- " * 450 + "x\n")
    assert_same("[" * 300 + "]" * 300 + "\n")


def test_without_yaml_rs_everything_goes_to_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlfast, "_loads", None)
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
    assert yamlfast.split(text) is None
    assert_same(text)


@needs_yaml_rs
def test_a_plain_manifest_takes_the_fast_path() -> None:
    text = "# header\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {a: b}\n---\n---\n"
    docs = _parse_yaml_fast(text, "f.yaml")
    assert docs is not None
    assert [(d.index, d.line, d.data is None) for d in docs] == [(0, 3, False), (1, 9, True), (2, 10, True)]
    assert_same(text)


@needs_yaml_rs
def test_a_yaml_rs_failure_falls_back_to_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(chunk: str, **_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(yamlfast, "_loads", broken)
    assert _parse_yaml_fast("a: 1\n", "f.yaml") is None
    assert [d.data for d in documents.parse_documents("a: 1\n", "f.yaml")] == [{"a": 1}]


# ---------------------------------------------------------------------------------------
# Property: generated YAML texts full of YAML 1.1/1.2 corner cases parse the same.

PLAIN = [
    "yes", "Yes", "YES", "no", "No", "on", "On", "off", "OFF", "y", "Y", "n", "true", "True", "TRUE",
    "tRUE", "false", "FALSE", "null", "Null", "NULL", "~", "", "0", "-0", "+0", "7", "-7", "+7", "0755",
    "0o17", "0x1F", "0X1f", "0b11", "1_000", "1__0", "_1", "1_", "1:20", "1:20.5", "190:20:30", "1e3",
    "1E3", "1.5e3", "1.0e+5", "5e-3", "1.", ".5", "1.5", "-1.5", "0.25", "00.5", "1.5_0", "-0.0",
    ".inf", "-.inf", "+.inf", ".Inf", ".NaN", ".nan", "nan", "inf", "1.4.2", "10.0.0.1", "-1.2.3",
    "2.9.0-gpu", "24.05-py3", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "2002-12-14", "512Gi", "200m", "v1", "a b", "on the way", "yes please", "x#y", "a:b", "http://x.y/z",
    "sha256:2fc1ec5d", "123456789012345678901234567890", "1,000", "a - b", "5 * * * *", "-x", "--",
    "=", "<<", "!x", "&x", "*x", "%x", "@x", "?x", ":x", "x:", "|", ">", "0:0", "12e", "3.14159",
    "é", "日本", "tab\there", "a\\b",
]  # fmt: skip
QUOTED = ["'yes'", '"no"', "'1:20'", '"0755"', "'it''s'", '"x\\ty"', '"\\u00e9"', "''", '""', "'#'", '"a: b"']
# What ordinary manifests hold: the texts made of these mostly take the fast path.
SAFE = ["x", "a b", "v1", "512Gi", "200m", "0", "7", "-7", "1.5", "0.25", "1.4.2", "true", "False", "null",
        "~", "", "nginx:1.25", "x@sha256:2fc1", "http://x.y/z", "'q'", "'yes'", '"k"', "é", "5 * * * *"]  # fmt: skip
SCALARS = st.sampled_from(PLAIN) | st.sampled_from(QUOTED) | st.sampled_from(SAFE)
KEYS = st.sampled_from(
    ["a", "b", "kind", "items", "yes", "on", "1", "0755", "1:20", "'q'", '"k"', "<<", "~", "-1"]
)
SAFE_KEYS = st.sampled_from(["a", "b", "kind", "items", "name", "1", "'q'", '"k"', "x y", "0.5"])
COMMENT = st.sampled_from(["", " # c", "  #yes", " #"])


def indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + line if line else line for line in lines]


@st.composite
def block_scalar(draw: st.DrawFn) -> list[str]:
    header = draw(st.sampled_from(["|", "|-", "|+", ">", ">-", ">+", "|2", "| # c"]))
    body = draw(
        st.lists(
            st.sampled_from(["x", "yes", "  indented", "", "---", "- item", "# hash", "a: b"]), max_size=4
        )
    )
    return [header] + ["  " + b if b else "" for b in body]


@st.composite
def node(draw: st.DrawFn, depth: int = 0, safe: bool = False) -> list[str]:
    """A YAML node as lines; the first line is what follows `key: ` or `- `."""
    scalars, keys = (st.sampled_from(SAFE), SAFE_KEYS) if safe else (SCALARS, KEYS)
    kinds = ["scalar", "flow", "block"] + (["map", "seq", "map"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return [draw(scalars) + draw(COMMENT)]
    if kind == "block":
        return draw(block_scalar())
    if kind == "flow":
        items = draw(st.lists(scalars, max_size=3))
        if draw(st.booleans()):
            return ["[" + ", ".join(items) + "]"]
        keys_ = draw(st.lists(keys, max_size=3))
        return ["{" + ", ".join(f"{k}: {v}" for k, v in zip(keys_, items, strict=False)) + "}"]
    lines: list[str] = []
    if kind == "map":
        for key in draw(st.lists(keys, min_size=1, max_size=4)):
            child = draw(node(depth + 1, safe))
            anchor = "" if safe else draw(st.sampled_from(["", "", "&x ", "*x", "!!str "]))
            if anchor == "*x":
                lines.append(f"{key}: *x")
            elif (len(child) == 1 and not child[0].startswith(("|", ">"))) or draw(st.booleans()):
                lines.append(f"{key}: {anchor}{child[0]}")
                lines.extend(indent(child[1:], 2))
            else:
                lines.append(f"{key}:{draw(COMMENT)}")
                lines.extend(indent(child, 2))
            if draw(st.integers(0, 9)) == 0:
                lines.append(draw(st.sampled_from(["", "# comment", "  # indented comment"])))
    else:
        for _ in range(draw(st.integers(1, 3))):
            child = draw(node(depth + 1, safe))
            lines.append(f"- {child[0]}")
            lines.extend(indent(child[1:], 2))
    return ["", *lines] if depth else lines


@st.composite
def yaml_text(draw: st.DrawFn, safe: bool = False) -> str:
    parts: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        if i or draw(st.booleans()):
            parts.append(draw(st.sampled_from(["---", "--- # c", "---  ", "---\n# c", "---\n", "...\n---"])))
        if draw(st.integers(0, 5)):
            lines = draw(node(1, safe))[1:] or ["x"]
            parts.extend(lines)
    text = "\n".join(parts)
    return text + draw(st.sampled_from(["\n", "", "\n\n", "\n# end\n"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_text())
def test_generated_yaml_parses_the_same(text: str) -> None:
    assert_same(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_text(safe=True))
def test_generated_plain_yaml_parses_the_same(text: str) -> None:
    assert_same(text)


NOISE = st.lists(
    st.sampled_from(
        ["a", "b", "1", "0", ".", "-", " ", "  ", "\n", ":", ": ", "- ", "#", "'", '"', "[", "]", "{", "}", ",",
         "|", ">", "yes", "on", "---", "\n---\n", "&a", "*a", "!", "?", "~", "e3", "x", "é"]
    ),
    max_size=40,
).map("".join)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(NOISE)
def test_structural_noise_parses_the_same(text: str) -> None:
    assert_same(text)
