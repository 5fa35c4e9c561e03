"""One JUnit XML file for a whole batch (shared/formats/LMS-EXPORTS.md).

Layout chosen: one ``<testsuite>`` per student per exercise, named ``"<student> <exercise>
<title>"`` with a ``points`` property (``4/5``), and one ``<testcase>`` per check
(``classname`` ``<student>.<exercise>``, ``name`` the check id): CI reporters then group by
student and show which check failed. ``failed`` -> ``<failure>``, ``not_gradable`` ->
``<skipped message=reason>``, grader ``error`` -> ``<error>``. A submission that could not be
graded is one suite ``"<student> grading"`` with one testcase holding an ``<error>``.
ElementTree escapes every text and attribute; ``safe_text`` removes what XML cannot hold.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader.models import CheckStatus
from grader.records import SubmissionRecord
from grader.report.exports.text import check_output, safe_text


def _suite(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, "testsuite", name=safe_text(name, one_line=True, limit=300))


def _count(suite: ET.Element) -> dict[str, int]:
    cases = suite.findall("testcase")
    return {"tests": len(cases),
            "failures": sum(case.find("failure") is not None for case in cases),
            "errors": sum(case.find("error") is not None for case in cases),
            "skipped": sum(case.find("skipped") is not None for case in cases)}


def render_junit(records: list[SubmissionRecord], name: str = "grade batch") -> str:
    root = ET.Element("testsuites", name=safe_text(name, one_line=True))
    total_time = 0.0
    for record in sorted(records, key=lambda r: r.student_id):
        student = record.student_id
        if record.report is None:
            suite = _suite(root, f"{student} grading")
            case = ET.SubElement(suite, "testcase", classname=student, name="grading", time="0")
            reason = safe_text(record.reason or "could not grade", one_line=True, limit=500)
            error = ET.SubElement(case, "error", message=reason, type="could_not_grade")
            error.text = safe_text(f"could not grade {record.source}: {record.reason}")
            suite.attrib.update({k: str(v) for k, v in _count(suite).items()}, time="0")
            continue
        for exercise in record.report.exercises:
            suite = _suite(root, f"{student} {exercise.exercise_id} {exercise.title}")
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property", name="points",
                          value=f"{exercise.points:g}/{exercise.max_points:g}")
            ET.SubElement(properties, "property", name="commit", value=record.commit_sha or "")
            suite_time = 0.0
            for criterion in exercise.criteria:
                for check in criterion.checks:
                    suite_time += check.duration_s
                    case = ET.SubElement(suite, "testcase", classname=f"{student}.{exercise.exercise_id}",
                                         name=safe_text(check.check_id, one_line=True),
                                         time=f"{check.duration_s:.1f}")
                    message = safe_text(check.reason, one_line=True, limit=500)
                    if check.status is CheckStatus.FAILED:
                        ET.SubElement(case, "failure", message=message, type="failed").text = \
                            safe_text(check_output(check))
                    elif check.status is CheckStatus.ERROR:
                        ET.SubElement(case, "error", message=message, type="grader_error").text = \
                            safe_text(check_output(check))
                    elif check.status is CheckStatus.NOT_GRADABLE:
                        ET.SubElement(case, "skipped", message=message)
                    if check.evidence:
                        ET.SubElement(case, "system-out").text = safe_text(check_output(check))
            total_time += suite_time
            suite.attrib.update({k: str(v) for k, v in _count(suite).items()}, time=f"{suite_time:.1f}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.findall("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    root.attrib.update({k: str(v) for k, v in totals.items()}, time=f"{total_time:.1f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
