"""JUnit XML output of `charter check`, for CI systems that show test reports.

One <testsuite> per input file, one <testcase> per resource x matched policy, decided by the
engine's verdict: deny fails, error errors, warn/audit pass with their messages in
<system-out> (a warning must not fail a pipeline), skip (policy did not match) is left out.
The mapping is documented in docs/check-report.md; the output validates against the Jenkins
junit-10.xsd (tests/report/schemas).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .model import InputProblem, Report, ResourceRef, Result
from .policyinfo import PolicyInfo

INPUT_ERRORS_SUITE = "charter: input errors"
NO_FILE = "(no file)"

# Everything XML 1.0 cannot carry (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF).
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_Key = tuple[str | None, int | None, int | None, str, str, str, str]


def xml_text(text: str) -> str:
    """Forbidden characters become visible escapes (\\x1b, \\ud800) rather than vanishing."""
    return _FORBIDDEN.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text
    )


def render_junit(report: Report, policies: Sequence[PolicyInfo]) -> str:
    """The JUnit XML document, UTF-8 declared, indented. `policies` orders the testcases of a
    resource as the policy set does; policies not listed follow in the report's order."""
    order = {p.name: i for i, p in enumerate(policies)}
    findings: dict[tuple[_Key, str], list[Result]] = {}
    for r in report.results:
        findings.setdefault((_key(r.resource), r.policy), []).append(r)

    root = ET.Element("testsuites", name="charter check")
    suites: dict[str, ET.Element] = {}
    for rv in report.resources:
        file = rv.resource.file or NO_FILE
        suite = suites.get(file)
        if suite is None:
            suite = suites[file] = ET.SubElement(root, "testsuite", name=xml_text(file))
        verdicts = sorted(rv.verdicts.items(), key=lambda kv: order.get(kv[0], len(order)))
        for policy, verdict in verdicts:
            if verdict == "skip":
                continue
            _testcase(suite, rv.resource, policy, verdict, findings.get((_key(rv.resource), policy), []))
    if report.input_errors:
        suite = ET.SubElement(root, "testsuite", name=INPUT_ERRORS_SUITE)
        for p in report.input_errors:
            _input_error(suite, p)

    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root:
        counts = {
            "tests": len(suite),
            "failures": sum(1 for tc in suite if tc.find("failure") is not None),
            "errors": sum(1 for tc in suite if tc.find("error") is not None),
        }
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        suite.set("skipped", "0")
        suite.set("time", "0")
    # junit-10.xsd defines no `skipped` on <testsuites>; each <testsuite> carries skipped="0".
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", "0")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _key(res: ResourceRef) -> _Key:
    return (res.file, res.document_index, res.item, res.api_version, res.kind, res.namespace, res.name)


def classname(res: ResourceRef) -> str:
    return f"{res.kind}/{res.namespace}/{res.name}"


def _where(res: ResourceRef) -> str:
    return f"{res.file or NO_FILE}:{res.line or 1}"


def _line(r: Result) -> str:
    what = r.type if r.type != "violation" else (r.action if r.action != "None" else "violation")
    text = f"{_where(r.resource)}: [{what}] {r.message}"
    if r.validation_name or r.validation is not None:
        text += f" (validation {r.validation_name or r.validation})"
    if r.exception is not None:
        text += f" -- waived by PolicyException {r.exception.name} ({r.exception.ticket})"
    return text


def _testcase(suite: ET.Element, res: ResourceRef, policy: str, verdict: str, results: list[Result]) -> None:
    tc = ET.SubElement(suite, "testcase", classname=xml_text(classname(res)), name=xml_text(policy))
    tc.set("time", "0")
    live = [r for r in results if r.exception is None]
    body = "\n".join(_line(r) for r in results)
    if verdict == "deny":
        deny = [r for r in live if "Deny" in r.actions] or live
        el = ET.SubElement(tc, "failure", type="Deny", message=xml_text(_summary(deny)))
        el.text = xml_text(body)
    elif verdict == "error":
        errs = [r for r in live if r.type in ("error", "unresolved")] or live
        kind = "Unresolved" if errs and all(r.type == "unresolved" for r in errs) else "EvaluationError"
        el = ET.SubElement(tc, "error", type=kind, message=xml_text(_summary(errs)))
        el.text = xml_text(body)
    elif body:
        # pass, warn and audit pass the test case; what they said (and any waived finding) is kept.
        ET.SubElement(tc, "system-out").text = xml_text(body)


def _summary(results: list[Result]) -> str:
    return "; ".join(r.message for r in results) or "denied"


def _input_error(suite: ET.Element, p: InputProblem) -> None:
    where = p.file or (f"policy {p.policy}" if p.policy else "input")
    if p.line:
        where += f":{p.line}"
    elif p.document_index is not None:
        where += f" (document {p.document_index})"
    tc = ET.SubElement(suite, "testcase", classname="charter.input", name=xml_text(where))
    tc.set("time", "0")
    el = ET.SubElement(tc, "error", type="InputError", message=xml_text(p.message))
    detail = [f"{where}: {p.message}"]
    if p.policy:
        detail.append(f"policy: {p.policy}")
    if p.field:
        detail.append(f"field: {p.field}")
    el.text = xml_text("\n".join(detail))
