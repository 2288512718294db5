"""The official cel-spec conformance tests (vendored subset) against charter's CEL environment.

Every runnable test in `testdata/*.textproto` becomes one pytest case, evaluated in
`build_env` exactly as policies are. Tests that cannot be expressed through the Python
API (proto messages, enums, wrappers, containers, `check_only`, ...) are filtered out
at collection, counted per reason, and the counts are pinned in `EXPECTED_FILTERED`
(and stated in testdata/ORIGIN.md), so the filter cannot silently grow.

Known divergences of cel-expr-python are listed in `KNOWN_FAILURES`; each one is
asserted to still fail, so the list cannot go stale.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cel_expr_python import cel
from charter.engine._internal.cel.env import build_env

from .textproto import Ident, Message, parse

T = cel.Type
TESTDATA = Path(__file__).parent / "testdata"

# test id ("file/section/test") -> why cel-expr-python 0.1.3 (or our harness) diverges.
KNOWN_FAILURES: dict[str, str] = {
    "fields/qualified_identifier_resolution/map_value_repeat_key_heterogeneous": (
        "cel-cpp keeps 0 and 0u as distinct keys in a map literal; the spec says they collide "
        "(`{0: 1, 0u: 2}[0.0]` returns 1 instead of an error)"
    ),
    "fields/qualified_identifier_resolution/qualified_identifier_resolution_unchecked": (
        "with disable_check, cel-cpp does not resolve the dotted variable `a.b.c` by longest prefix "
        "(qualified-identifier rewriting is not exposed); charter always type-checks, where it works"
    ),
}

# Filter reason -> number of upstream tests dropped for it (also in testdata/ORIGIN.md).
EXPECTED_FILTERED: dict[str, int] = {
    "container (needs cel-spec's test proto packages)": 241,
    "proto message (cel-spec test protos)": 11,
    "protobuf wrapper type input (google.protobuf.*Value)": 9,
    "protobuf message input (Struct, Value, ListValue, Any)": 9,
}


class Unsupported(Exception):
    """The test needs something the Python API cannot express; the message is the filter reason."""


# ---------------------------------------------------------------------------------------------
# Typed canonical values: both the runtime's result and the expected cel.expr.Value are turned
# into nested tuples tagged with the CEL type, so 1 vs 1u vs 1.0 and b"a" vs "a" never compare
# equal, as they would in Python.
# ---------------------------------------------------------------------------------------------

Canon = Hashable


def _canon_double(x: float) -> Canon:
    # NaN equals NaN and -0.0 differs from 0.0 here: the suite pins exact results.
    if math.isnan(x):
        return ("double", "nan")
    return ("double", x, math.copysign(1.0, x))


def _canon_map(items: list[tuple[Canon, Canon]]) -> Canon:
    return ("map", frozenset(items))


# cel.Type.name() for a type value -> the CEL type name used by cel-spec's `type_value`.
_TYPE_NAMES = {
    "INT": "int",
    "UINT": "uint",
    "DOUBLE": "double",
    "BOOL": "bool",
    "STRING": "string",
    "BYTES": "bytes",
    "NULL": "null_type",
    "TYPE": "type",
    "TIMESTAMP": "google.protobuf.Timestamp",
    "DURATION": "google.protobuf.Duration",
    "DYN": "dyn",
}


def _type_name(t: Any) -> str:
    name: str = t.name()
    for prefix, cel_name in (("LIST<", "list"), ("MAP<", "map"), ("optional_type<", "optional_type")):
        if name.startswith(prefix):
            return cel_name
    return _TYPE_NAMES.get(name, name)


def _canon_key(key: Any) -> Canon:
    # Map keys come back as plain Python values, so an int key and a uint key are
    # indistinguishable here (and in the expected side below, uint keys become "int").
    if isinstance(key, bool):
        return ("bool", key)
    if isinstance(key, int):
        return ("int", key)
    if isinstance(key, str):
        return ("string", key)
    raise TypeError(f"unexpected map key {key!r}")


def canon_actual(value: Any) -> Canon:
    """A cel.Value (not an error) as a typed canonical tuple."""
    kind = value.type()
    name = kind.name()
    v = value.value()
    if name == "INT":
        return ("int", v)
    if name == "UINT":
        return ("uint", v)
    if name == "DOUBLE":
        return _canon_double(v)
    if name == "BOOL":
        return ("bool", v)
    if name == "STRING":
        return ("string", v)
    if name == "BYTES":
        return ("bytes", bytes(v))
    if name == "NULL":
        return ("null",)
    if name == "TIMESTAMP":
        return ("timestamp", v)
    if name == "DURATION":
        return ("duration", v)
    if name == "TYPE":
        return ("type", _type_name(v))
    if name.startswith("LIST"):
        return ("list", tuple(canon_actual(x) for x in v))
    if name.startswith("MAP"):
        return _canon_map([(_canon_key(k), canon_actual(x)) for k, x in v.items()])
    raise TypeError(f"unexpected result type {name}")


def _double(raw: Any) -> float:
    if isinstance(raw, Ident):
        # The text format spells special doubles as identifiers.
        return float(raw.lower().replace("infinity", "inf"))
    return float(raw)


def _int(raw: Any) -> int:
    if not isinstance(raw, int):
        raise TypeError(f"expected an integer, got {raw!r}")
    return raw


def _wkt_time(any_msg: Message) -> tuple[str, Any]:
    """A google.protobuf.Any holding a Timestamp or Duration -> ("timestamp"|"duration", value)."""
    for url, inner in ((n, any_msg.msg(n)) for n in any_msg.names()):
        assert inner is not None
        seconds = _int(inner.one("seconds") or 0)
        nanos = _int(inner.one("nanos") or 0)
        if url == "[type.googleapis.com/google.protobuf.Timestamp]":
            epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
            return "timestamp", epoch + datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
        if url == "[type.googleapis.com/google.protobuf.Duration]":
            return "duration", datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
    raise Unsupported("proto message value")


def canon_expected(value: Message) -> Canon:
    """A cel.expr.Value message as a typed canonical tuple."""
    (kind,) = value.names()
    raw = value.one(kind)
    match kind:
        case "null_value":
            return ("null",)
        case "bool_value":
            return ("bool", raw == Ident("true"))
        case "int64_value":
            return ("int", _int(raw))
        case "uint64_value":
            return ("uint", _int(raw))
        case "double_value":
            return _canon_double(_double(raw))
        case "string_value":
            return ("string", value.text(kind))
        case "bytes_value":
            assert isinstance(raw, bytes)
            return ("bytes", raw)
        case "type_value":
            return ("type", value.text(kind))
        case "list_value":
            assert isinstance(raw, Message)
            return ("list", tuple(canon_expected(x) for x in raw.messages("values")))
        case "map_value":
            assert isinstance(raw, Message)
            items = []
            for entry in raw.messages("entries"):
                key, val = entry.msg("key"), entry.msg("value")
                assert key is not None and val is not None
                k = canon_expected(key)
                if k[0] == "uint":  # see _canon_key
                    k = ("int", k[1])
                items.append((k, canon_expected(val)))
            return _canon_map(items)
        case "object_value":
            assert isinstance(raw, Message)
            return _wkt_time(raw)
        case "enum_value":
            raise Unsupported("enum value")
    raise Unsupported(f"value kind {kind}")


def python_input(value: Message) -> tuple[Any, bool]:
    """A cel.expr.Value binding as the Python object to put in the activation.

    Returns the value and whether it contains a uint (which a Python int can only carry
    when the variable is declared `uint`).
    """
    (kind,) = value.names()
    raw = value.one(kind)
    match kind:
        case "null_value":
            return None, False
        case "bool_value":
            return raw == Ident("true"), False
        case "int64_value":
            return _int(raw), False
        case "uint64_value":
            return _int(raw), True
        case "double_value":
            return _double(raw), False
        case "string_value":
            return value.text(kind), False
        case "bytes_value":
            return raw, False
        case "list_value":
            assert isinstance(raw, Message)
            items = [python_input(x) for x in raw.messages("values")]
            return [v for v, _ in items], any(u for _, u in items)
        case "map_value":
            assert isinstance(raw, Message)
            out: dict[Any, Any] = {}
            has_uint = False
            for entry in raw.messages("entries"):
                key, val = entry.msg("key"), entry.msg("value")
                assert key is not None and val is not None
                (k, ku), (v, vu) = python_input(key), python_input(val)
                out[k] = v
                has_uint = has_uint or ku or vu
            return out, has_uint
        case "object_value":
            assert isinstance(raw, Message)
            return _wkt_time(raw)[1], False
    raise Unsupported(f"{kind} input")


_PRIMITIVES = {
    "BOOL": T.BOOL,
    "INT64": T.INT,
    "UINT64": T.UINT,
    "DOUBLE": T.DOUBLE,
    "STRING": T.STRING,
    "BYTES": T.BYTES,
}


_WRAPPERS = {
    f"{kind}Value"
    for kind in ("Bool", "Bytes", "Double", "Float", "Int32", "Int64", "String", "UInt32", "UInt64")
}


def cel_type(t: Message) -> Any:
    """A cel.expr.Type message as a cel.Type."""
    (kind,) = t.names()
    match kind:
        case "primitive":
            return _PRIMITIVES[str(t.one(kind))]
        case "dyn":
            return T.DYN
        case "null":
            return T.NULL
        case "list_type":
            inner = t.msg(kind)
            assert inner is not None
            elem = inner.msg("elem_type")
            return T.List(cel_type(elem) if elem is not None else T.DYN)
        case "map_type":
            inner = t.msg(kind)
            assert inner is not None
            key, val = inner.msg("key_type"), inner.msg("value_type")
            assert key is not None and val is not None
            return T.Map(cel_type(key), cel_type(val))
        case "well_known":
            wk = str(t.one(kind))
            if wk == "TIMESTAMP":
                return T.TIMESTAMP
            if wk == "DURATION":
                return T.DURATION
        case "message_type":
            name = t.text(kind)
            if name == "google.protobuf.Timestamp":
                return T.TIMESTAMP
            if name == "google.protobuf.Duration":
                return T.DURATION
            if name.removeprefix("google.protobuf.") in _WRAPPERS:
                raise Unsupported("protobuf wrapper type input (google.protobuf.*Value)")
            raise Unsupported("protobuf message input (Struct, Value, ListValue, Any)")
        case "wrapper":
            raise Unsupported("wrapper type in type_env")
    raise Unsupported(f"type_env type {kind}")


# ---------------------------------------------------------------------------------------------
# Collection
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    expr: str
    disable_check: bool
    variables: tuple[tuple[str, Any], ...]  # (name, cel.Type)
    bindings: tuple[tuple[str, Any], ...]  # (name, Python value)
    expect_error: bool
    expected: Canon | None


def _build_case(case_id: str, test: Message) -> Case:
    """A runnable Case, or Unsupported with the reason it is filtered."""
    if test.flag("check_only"):
        raise Unsupported("check_only (type-checker only, no evaluation)")
    if test.text("container"):
        raise Unsupported("container (needs cel-spec's test proto packages)")
    if test.flag("disable_macros"):
        raise Unsupported("disable_macros (no such option in cel-expr-python)")
    if "TestAllTypes" in test.text("expr") or "cel.expr.conformance" in test.text("expr"):
        raise Unsupported("proto message (cel-spec test protos)")

    declared: dict[str, Any] = {}
    for decl in test.messages("type_env"):
        ident = decl.msg("ident")
        if ident is None:
            raise Unsupported("function declaration in type_env")
        t = ident.msg("type")
        assert t is not None
        declared[decl.text("name")] = cel_type(t)

    bindings: dict[str, Any] = {}
    for binding in test.messages("bindings"):
        expr_value = binding.msg("value")
        assert expr_value is not None
        value = expr_value.msg("value")
        if value is None:
            raise Unsupported("error/unknown binding")
        name = binding.text("key")
        py, has_uint = python_input(value)
        if has_uint and declared.get(name) != T.UINT:
            raise Unsupported("uint inside a dyn input")
        bindings[name] = py
        # An undeclared binding (only in disable_check tests) is declared dyn.
        declared.setdefault(name, T.DYN)

    expected: Canon | None = None
    if test.has("value"):
        value = test.msg("value")
        assert value is not None
        expected, expect_error = canon_expected(value), False
    elif test.has("eval_error") or test.has("any_eval_errors"):
        expect_error = True
    elif test.has("typed_result"):
        raise Unsupported("typed_result (deduced types)")
    elif test.has("unknown") or test.has("any_unknowns"):
        raise Unsupported("unknown results (partial evaluation)")
    else:
        # No matcher means the expected result is `true`.
        expected, expect_error = ("bool", True), False

    return Case(
        id=case_id,
        expr=test.text("expr"),
        disable_check=test.flag("disable_check"),
        variables=tuple(sorted(declared.items())),
        bindings=tuple(bindings.items()),
        expect_error=expect_error,
        expected=expected,
    )


def _collect() -> tuple[list[Case], Counter[str]]:
    cases: list[Case] = []
    filtered: Counter[str] = Counter()
    seen: set[str] = set()
    for path in sorted(TESTDATA.glob("*.textproto")):
        doc = parse(path.read_text(encoding="utf-8"))
        for section in doc.messages("section"):
            for test in section.messages("test"):
                case_id = f"{path.stem}/{section.text('name')}/{test.text('name')}"
                # Upstream repeats a few names within a section; number the repeats.
                base, n = case_id, 1
                while case_id in seen:
                    n += 1
                    case_id = f"{base}#{n}"
                seen.add(case_id)
                try:
                    cases.append(_build_case(case_id, test))
                except Unsupported as why:
                    filtered[str(why)] += 1
    return cases, filtered


CASES, FILTERED = _collect()


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


_ENVS: dict[tuple[tuple[str, str], ...], Any] = {}


def _env(variables: tuple[tuple[str, Any], ...]) -> Any:
    # Most cases declare nothing; share environments (cel.Type is unhashable: key on names).
    key = tuple((name, t.name()) for name, t in variables)
    if key not in _ENVS:
        _ENVS[key] = build_env(dict(variables))
    return _ENVS[key]


def _is_error(value: Any) -> bool:
    if value.type() != T.ERROR:
        return False
    # Optional values also report type ERROR but cannot be converted: they are not errors.
    try:
        value.value()
    except TypeError:
        return False
    return True


def run_case(case: Case) -> str | None:
    """Evaluate a case; None if it matches the expectation, else what went wrong."""
    env = _env(case.variables)
    try:
        program = env.compile(case.expr, disable_check=case.disable_check)
        result = program.eval(env.Activation(dict(case.bindings)))
    except RuntimeError as exc:
        # Compile errors and some evaluation errors (duplicate map key, unconvertible input) raise.
        return None if case.expect_error else f"raised {exc}"
    if _is_error(result):
        return None if case.expect_error else f"error {result.value()}"
    if case.expect_error:
        return f"expected an error, got {result.type().name()}"
    try:
        actual = canon_actual(result)
    except TypeError as exc:
        return f"result not representable: {exc}"
    if actual != case.expected:
        return f"got {actual!r}, expected {case.expected!r}"
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case: Case) -> None:
    problem = run_case(case)
    if case.id in KNOWN_FAILURES:
        assert problem is not None, (
            f"{case.id} now passes: remove it from KNOWN_FAILURES ({KNOWN_FAILURES[case.id]})"
        )
    else:
        assert problem is None, f"{case.expr!r}: {problem}"


def test_known_failures_exist() -> None:
    # A renamed or filtered upstream test would otherwise leave a dead entry behind.
    ids = {c.id for c in CASES}
    assert sorted(set(KNOWN_FAILURES) - ids) == []


def test_filtered_counts_are_pinned() -> None:
    # Keeps ORIGIN.md's numbers true and stops the filter from quietly dropping more tests.
    assert dict(FILTERED) == EXPECTED_FILTERED


def test_harness_distinguishes_typed_values() -> None:
    # The comparison must not collapse CEL's distinct types the way Python equality does.
    assert ("int", 1) != ("uint", 1) != _canon_double(1.0)
    assert _canon_double(0.0) != _canon_double(-0.0)
    assert _canon_double(math.nan) == _canon_double(math.nan)
    env = _env(())
    assert canon_actual(env.compile("[1, 1u, 1.0, b'a', 'a', null]").eval()) == (
        "list",
        (("int", 1), ("uint", 1), _canon_double(1.0), ("bytes", b"a"), ("string", "a"), ("null",)),
    )
    assert run_case(Case("x", "1 == 1", False, (), (), False, ("bool", False))) is not None
    assert run_case(Case("x", "1 / 0", False, (), (), False, ("int", 0))) is not None
    assert run_case(Case("x", "1", False, (), (), True, None)) is not None


def test_textproto_reader() -> None:
    # The constructs cel-spec's files rely on, decoded as protobuf's text format does.
    doc = parse(
        r"""
        # comment
        name: "a" 'b'  # adjacent literals concatenate
        raw: "\303\277\x41\X42\u00e9\U0001F600\a\?\'\"\\"
        n: -0.0 m: 0x1F, k: -9223372036854775808; d: 1e3 f: 2.5f
        special: [inf, -inf, nan]
        sub { x: 1 } sub: { x: 2 } angle < y: true >
        any { [type.googleapis.com/google.protobuf.Duration] { seconds: 3 } }
        null_value: NullValue.NULL_VALUE
        """
    )
    assert doc.text("name") == "ab"
    assert doc.one("raw") == b"\xc3\xbfAB\xc3\xa9\xf0\x9f\x98\x80\a?'\"\\"
    n = doc.one("n")
    assert isinstance(n, float) and math.copysign(1.0, n) == -1.0
    assert (doc.one("m"), doc.one("k"), doc.one("d"), doc.one("f")) == (31, -(2**63), 1000.0, 2.5)
    assert [str(x) for x in doc.all("special")] == ["inf", "-inf", "nan"]
    assert [m.one("x") for m in doc.messages("sub")] == [1, 2]
    angle = doc.msg("angle")
    assert angle is not None and angle.flag("y")
    any_msg = doc.msg("any")
    assert any_msg is not None and _wkt_time(any_msg) == ("duration", datetime.timedelta(seconds=3))
    assert doc.one("null_value") == Ident("NULL_VALUE")
    with pytest.raises(ValueError):
        parse('name: "unterminated')
