"""SARIF output: valid against the OASIS SARIF 2.1.0 schema, and mapped as docs/check-report.md says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from charter._internal.report.model import Report
from charter._internal.report.policyinfo import PolicyInfo
from charter._internal.report.sarif import FINGERPRINT_KEY, SRCROOT, render_sarif

from .conftest import build, clean, ref, result

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text("utf-8"))


def validate(log: dict[str, Any]) -> None:
    # Round-trip through JSON text first: that is what code scanning receives.
    doc = json.loads(json.dumps(log))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(doc)


def by_message(log: dict[str, Any], fragment: str) -> dict[str, Any]:
    [hit] = [r for r in log["runs"][0]["results"] if fragment in r["message"]["text"]]
    return hit


def test_schema_is_the_official_one() -> None:
    assert SCHEMA["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(SCHEMA)


def test_validator_rejects_an_invalid_log(report: Report, policies: list[PolicyInfo]) -> None:
    # Guards the validation tests below against a schema that accepts anything.
    log = render_sarif(report, policies)
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate(log)
    log = render_sarif(report, policies)
    del log["runs"][0]["tool"]["driver"]["name"]
    with pytest.raises(jsonschema.ValidationError):
        validate(log)


@pytest.mark.parametrize("make", [build, clean])
def test_valid_sarif(make: Any, policies: list[PolicyInfo]) -> None:
    validate(render_sarif(make(), policies))


def test_valid_without_policy_infos(report: Report) -> None:
    log = render_sarif(report, [])
    validate(log)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert sorted(r["id"] for r in rules) == sorted({r.policy for r in report.results})


def test_tool_and_rules(report: Report, policies: list[PolicyInfo]) -> None:
    log = render_sarif(report, policies)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "charter"
    assert driver["version"] and driver["informationUri"].startswith("https://")
    rules = {r["id"]: r for r in driver["rules"]}
    assert list(rules) == [p.name for p in policies]
    prov = rules["require-model-provenance"]
    assert prov["name"] == "require-model-provenance"
    assert prov["shortDescription"]["text"] == "Models must come from a signed registry."
    assert prov["fullDescription"]["text"] == policies[0].description
    assert prov["help"]["text"] == policies[0].remediation
    assert prov["defaultConfiguration"]["level"] == "error"
    assert prov["properties"]["domain"] == "provenance"
    assert prov["properties"]["severity"] == "critical"
    assert "provenance" in prov["properties"]["tags"]
    assert rules["gpu-quota"]["defaultConfiguration"]["level"] == "warning"
    assert "help" not in rules["gpu-quota"]  # no remediation given
    assert rules["label-owner"]["defaultConfiguration"]["level"] == "note"
    # No description: the short one falls back to the name, the full one is left out.
    assert rules["eu-residency"]["shortDescription"]["text"] == "eu-residency"
    assert "fullDescription" not in rules["eu-residency"]


def test_results_levels_and_rule_index(report: Report, policies: list[PolicyInfo]) -> None:
    log = render_sarif(report, policies)
    run = log["runs"][0]
    results = run["results"]
    assert len(results) == len(report.results)
    for r in results:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    assert by_message(log, "w.bin is unsigned")["level"] == "error"  # Deny
    assert by_message(log, "quota is 4")["level"] == "warning"  # Warn
    assert by_message(log, "no owner label")["level"] == "note"  # Audit
    assert by_message(log, "no such key")["level"] == "error"  # error under failurePolicy Fail
    assert by_message(log, "division by zero")["level"] == "warning"  # error under Ignore
    unresolved = by_message(log, "not in the context")
    assert unresolved["level"] == "warning"
    assert unresolved["properties"]["type"] == "unresolved"
    assert by_message(log, "no such key")["properties"]["type"] == "error"


def test_locations(report: Report, policies: list[PolicyInfo]) -> None:
    log = render_sarif(report, policies)
    hit = by_message(log, "s3://bucket")
    [loc] = hit["locations"]
    phys = loc["physicalLocation"]
    assert phys["artifactLocation"] == {"uri": "deploy/train.yaml", "uriBaseId": SRCROOT}
    assert phys["region"]["startLine"] == 3
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "Deployment/ml/trainer"
    assert hit["message"]["text"].startswith("Deployment ml/trainer: ")
    # No line known: region still starts at line 1 (SARIF lines are 1-based).
    assert by_message(log, "division by zero")["locations"][0]["physicalLocation"]["region"]["startLine"] == 1


def test_absolute_paths_are_made_relative_to_root(tmp_path: Path) -> None:
    inside = tmp_path / "my dir" / "a.yaml"
    res = ref(str(inside), "Pod", "ns", "p", 5)
    outside = ref("/elsewhere/b.yaml", "Pod", "ns", "q", 5)
    up = ref("../sibling/c.yaml", "Pod", "ns", "r", 5)
    down = ref("sub/../d.yaml", "Pod", "ns", "s", 5)
    results = [result(res, "x"), result(outside, "x"), result(up, "x"), result(down, "x")]
    log = render_sarif(clean().model_copy(update={"results": results}), [], root=tmp_path)
    validate(log)
    first, second, third, fourth = (
        r["locations"][0]["physicalLocation"]["artifactLocation"] for r in log["runs"][0]["results"]
    )
    # A relative path that leaves the root cannot be expressed against %SRCROOT%.
    assert third == {"uri": (tmp_path.parent / "sibling" / "c.yaml").resolve().as_uri()}
    assert fourth == {"uri": "d.yaml", "uriBaseId": SRCROOT}
    assert first == {"uri": "my%20dir/a.yaml", "uriBaseId": SRCROOT}
    assert second == {"uri": "file:///elsewhere/b.yaml"}


def test_waived_results_are_suppressed_not_dropped(report: Report, policies: list[PolicyInfo]) -> None:
    log = render_sarif(report, policies)
    waived = [r for r in log["runs"][0]["results"] if "suppressions" in r]
    assert len(waived) == 1
    [s] = waived[0]["suppressions"]
    assert s["kind"] == "external"
    assert s["justification"] == "allow-legacy-trainer (SEC-1234): migration to signed registry in Q3"
    assert waived[0]["level"] == "error"  # still a Deny finding; code scanning shows it dismissed


def test_fingerprints(report: Report, policies: list[PolicyInfo]) -> None:
    first = render_sarif(report, policies)["runs"][0]["results"]
    # Same findings on other lines with other messages (the manifest was edited above them).
    moved = report.model_copy(deep=True)
    for r in moved.results:
        r.resource.line = (r.resource.line or 0) + 10
        r.message += " (reworded)"
    second = render_sarif(moved, policies)["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in first]
    assert prints == [r["partialFingerprints"][FINGERPRINT_KEY] for r in second]
    # Every finding of the report is its own alert, including two validations of one policy
    # on one resource.
    assert len(set(prints)) == len(prints)
    signed, digest = (
        by_message(render_sarif(report, policies), m) for m in ("s3://bucket", "digest missing")
    )
    assert signed["partialFingerprints"] != digest["partialFingerprints"]


def test_fingerprint_changes_with_identity(report: Report, policies: list[PolicyInfo]) -> None:
    base = render_sarif(report, policies)["runs"][0]["results"][0]["partialFingerprints"]
    for change in ({"name": "trainer-2"}, {"namespace": "ml2"}, {"kind": "StatefulSet"}, {"file": "x.yaml"}):
        other = report.model_copy(deep=True)
        other.results[0].resource = other.results[0].resource.model_copy(update=change)
        assert render_sarif(other, policies)["runs"][0]["results"][0]["partialFingerprints"] != base, change


def test_input_errors_are_notifications(report: Report, policies: list[PolicyInfo]) -> None:
    [inv] = render_sarif(report, policies)["runs"][0]["invocations"]
    assert inv["executionSuccessful"] is False
    notes = inv["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error", "error"]
    phys = notes[0]["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uri"] == "deploy/broken.yaml"
    assert phys["region"]["startLine"] == 17
    assert "locations" not in notes[1]  # a policy problem with no file
    assert "gpu-quota" in notes[1]["message"]["text"]
    [expired] = inv["toolConfigurationNotifications"]
    assert "old-waiver" in expired["message"]["text"]


def test_clean_run_is_successful(policies: list[PolicyInfo]) -> None:
    [run] = render_sarif(clean(), policies)["runs"]
    assert run["results"] == []
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_control_and_unicode_characters_survive_json(report: Report, policies: list[PolicyInfo]) -> None:
    text = json.dumps(render_sarif(report, policies), ensure_ascii=False)
    back = json.loads(text)
    msg = by_message(back, "digest missing")["message"]["text"]
    assert "«ünïcode» 模型" in msg and "\x1b[31m" in msg and "\x00end" in msg
