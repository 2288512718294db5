"""JUnit output: valid against the Jenkins junit-10.xsd, and mapped as docs/check-report.md says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from charter._internal.report.junit import INPUT_ERRORS_SUITE, render_junit, xml_text
from charter._internal.report.model import Report
from charter._internal.report.policyinfo import PolicyInfo

from .conftest import build, clean

XSD = xmlschema.XMLSchema10(Path(__file__).parent / "schemas" / "junit-10.xsd")


def parse(text: str) -> ET.Element:
    # Parse the bytes as a consumer would: the declaration must match the encoding.
    return ET.fromstring(text.encode("utf-8"))


def suite(root: ET.Element, name: str) -> ET.Element:
    [s] = [s for s in root if s.get("name") == name]
    return s


def case(root: ET.Element, file: str, cls: str, policy: str) -> ET.Element:
    [c] = [c for c in suite(root, file) if c.get("classname") == cls and c.get("name") == policy]
    return c


def test_validator_rejects_an_invalid_document() -> None:
    # Guards the validation tests below against a schema that accepts anything.
    assert not XSD.is_valid('<testsuites><testsuite name="x"/></testsuites>')  # counts missing
    assert not XSD.is_valid('<testsuites><testcase name="x"/></testsuites>')


@pytest.mark.parametrize("make", [build, clean])
def test_valid_junit(make: Any, policies: list[PolicyInfo]) -> None:
    text = render_junit(make(), policies)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    XSD.validate(text)


def test_empty_report_is_valid() -> None:
    empty = clean().model_copy(update={"resources": []})
    text = render_junit(empty, [])
    XSD.validate(text)
    assert parse(text).get("tests") == "0"


def test_suites_cases_and_verdicts(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    assert root.tag == "testsuites"
    names = [s.get("name") for s in root]
    assert names == ["deploy/train.yaml", "jobs/batch.yaml", "legacy/old.yaml", INPUT_ERRORS_SUITE]
    train = suite(root, "deploy/train.yaml")
    # trainer: 3 matched policies (eu-residency skipped), infer: 3 (gpu-quota skipped).
    assert [(c.get("classname"), c.get("name")) for c in train] == [
        ("Deployment/ml/trainer", "require-model-provenance"),
        ("Deployment/ml/trainer", "gpu-quota"),
        ("Deployment/ml/trainer", "label-owner"),
        ("Deployment/ml/infer", "require-model-provenance"),
        ("Deployment/ml/infer", "eu-residency"),
        ("Deployment/ml/infer", "label-owner"),
    ]
    assert (train.get("tests"), train.get("failures"), train.get("errors"), train.get("skipped")) == (
        "6",
        "1",
        "1",
        "0",
    )


def test_deny_is_a_failure_with_every_message(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    tc = case(root, "deploy/train.yaml", "Deployment/ml/trainer", "require-model-provenance")
    [failure] = tc.findall("failure")
    assert failure.get("type") == "Deny"
    assert "s3://bucket/w.bin is unsigned" in failure.get("message", "")
    body = failure.text or ""
    assert body.count("deploy/train.yaml:3: [Deny]") == 2
    assert "model s3://bucket/w.bin is unsigned" in body and "digest missing" in body


def test_warn_and_audit_pass_with_output(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    for file, cls, policy, text in (
        ("deploy/train.yaml", "Deployment/ml/trainer", "gpu-quota", "[Warn] 8 GPUs requested"),
        ("deploy/train.yaml", "Deployment/ml/infer", "label-owner", "[Audit] no owner label"),
    ):
        tc = case(root, file, cls, policy)
        assert tc.find("failure") is None and tc.find("error") is None
        assert text in (tc.findtext("system-out") or "")
    passed = case(root, "deploy/train.yaml", "Deployment/ml/trainer", "label-owner")
    assert list(passed) == []


def test_errors_and_unresolved(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    err = case(root, "deploy/train.yaml", "Deployment/ml/infer", "eu-residency").find("error")
    assert err is not None and err.get("type") == "EvaluationError"
    assert "no such key: region" in (err.text or "")
    unresolved = case(root, "jobs/batch.yaml", "Job/batch/nightly", "eu-residency").find("error")
    assert unresolved is not None and unresolved.get("type") == "Unresolved"
    # A resource with no known line is reported at line 1.
    assert "jobs/batch.yaml:1:" in (unresolved.text or "")


def test_waived_finding_passes(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    tc = case(root, "legacy/old.yaml", "Pod/ml/legacy", "require-model-provenance")
    assert tc.find("failure") is None
    assert "waived by PolicyException allow-legacy-trainer (SEC-1234)" in (tc.findtext("system-out") or "")


def test_totals(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    suites = list(root)
    for s in suites:
        assert s.get("tests") == str(len(s))
        assert s.get("failures") == str(sum(1 for c in s if c.find("failure") is not None))
        assert s.get("errors") == str(sum(1 for c in s if c.find("error") is not None))
    # 6 + 3 + 1 test cases, plus 2 input errors; 1 failure; 1 + 2 evaluation errors + 2 input errors.
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("time")) == (
        "12",
        "1",
        "5",
        "0",
    )


def test_input_errors_suite(report: Report, policies: list[PolicyInfo]) -> None:
    root = parse(render_junit(report, policies))
    cases = list(suite(root, INPUT_ERRORS_SUITE))
    assert len(cases) == 2
    first, second = (c.find("error") for c in cases)
    assert cases[0].get("name") == "deploy/broken.yaml:17"
    assert first is not None and first.get("type") == "InputError"
    assert first.get("message") == "mapping values are not allowed here\\x07"
    assert cases[1].get("name") == "policy gpu-quota"
    assert second is not None and "policy: gpu-quota" in (second.text or "")


def test_forbidden_characters_escaped_unicode_kept(report: Report, policies: list[PolicyInfo]) -> None:
    text = render_junit(report, policies)
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    body = case(
        parse(text), "deploy/train.yaml", "Deployment/ml/trainer", "require-model-provenance"
    ).findtext("failure")
    assert body is not None
    assert "«ünïcode» 模型 \\x1b[31mred\\x1b[0m\\x00end" in body


def test_xml_text() -> None:
    assert xml_text("a\tb\nc\rd") == "a\tb\nc\rd"
    assert xml_text("\x00\x1f\x7f") == "\\x00\\x1f\x7f"  # DEL is allowed in XML 1.0
    assert xml_text("\ud800\ufffe\uffff") == "\\ud800\\ufffe\\uffff"
    assert xml_text("😀 模型") == "😀 模型"
