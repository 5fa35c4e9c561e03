"""The documented fields of the LMS exports (shared/formats/LMS-EXPORTS.md), checked field by
field (jsonschema is not installed): used on sample records and on a real batch's files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from grader.models import CheckStatus
from grader.records import SubmissionRecord

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
NUMBER = (int, float)

GRADESCOPE_TOP = {"score": NUMBER, "execution_time": NUMBER, "output": str, "output_format": str,
                  "test_output_format": str, "test_name_format": str, "visibility": str,
                  "stdout_visibility": str, "extra_data": dict, "leaderboard": list, "tests": list}
GRADESCOPE_TEST = {"score": NUMBER, "max_score": NUMBER, "status": str, "name": str, "name_format": str,
                   "number": str, "output": str, "output_format": str, "tags": list, "visibility": str,
                   "extra_data": dict}
PRAIRIE_TOP = {"gradable": bool, "score": NUMBER, "message": str, "output": str, "images": list,
               "tests": list, "format_errors": list}
PRAIRIE_TEST = {"name": str, "description": str, "points": NUMBER, "max_points": NUMBER, "message": str,
                "output": str, "images": list}


def check_fields(data: dict, fields: dict, where: str) -> None:
    """Only documented fields, each of its documented type; no control or escape character."""
    unknown = set(data) - set(fields)
    assert not unknown, f"{where}: undocumented field(s) {unknown}"
    for key, value in data.items():
        expected = fields[key]
        typed = isinstance(value, bool) if expected is bool else (
            isinstance(value, expected) and not isinstance(value, bool))
        assert typed, f"{where}.{key}: {value!r} is not {expected}"
        if isinstance(value, str):
            assert "\x1b" not in value and "\x00" not in value and "\x07" not in value, f"{where}.{key}"



def validate_gradescope(data: dict, where: str, graded: bool) -> None:
    """A Gradescope results.json: documented fields only, scores within bounds and adding up."""
    check_fields(data, GRADESCOPE_TOP, where)
    assert "score" in data or data["tests"], f"{where}: neither a score nor tests' scores"
    assert data.get("visibility", "visible") in VISIBILITY and data.get("stdout_visibility") in VISIBILITY
    assert data.get("output_format", "text") in FORMATS
    numbers = []
    for test in data["tests"]:
        check_fields(test, GRADESCOPE_TEST, f"{where} test")
        assert test["status"] in {"passed", "failed"} and test["visibility"] in VISIBILITY
        assert 0 <= test["score"] <= test["max_score"]
        assert test["number"].count(".") == 1
        numbers.append(test["number"])
    assert len(numbers) == len(set(numbers))
    if graded:
        assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-6
    else:  # could not grade: the total stays out of a student's sight until an instructor publishes
        assert "score" not in data and data["tests"]
        assert all(t["visibility"] in {"after_due_date", "after_published"} for t in data["tests"])


def validate_prairielearn(data: dict, where: str) -> None:
    """A PrairieLearn results.json: documented fields only, score in 0..1, under its size limit."""
    check_fields(data, PRAIRIE_TOP, where)
    assert 0 <= data["score"] <= 1
    for test in data.get("tests", []):
        check_fields(test, PRAIRIE_TEST, f"{where} test")
        assert 0 <= test["points"] <= test["max_points"]
    assert len(json.dumps(data).encode()) < 1_000_000


def validate_junit(xml: str, records: list[SubmissionRecord]) -> ET.Element:
    """JUnit XML that parses and counts every check of ``records`` (one error per could-not-grade)."""
    root = ET.fromstring(xml.encode("utf-8"))  # parses: every text escaped and XML-valid
    assert root.tag == "testsuites"
    graded = [r for r in records if r.report]
    ungraded = len(records) - len(graded)
    suites = root.findall("testsuite")
    assert len(suites) == sum(len(r.report.exercises) for r in graded) + ungraded
    checks = [c for r in graded for ex in r.report.exercises for cr in ex.criteria for c in cr.checks]
    expect = {"failures": sum(c.status is CheckStatus.FAILED for c in checks),
              "errors": sum(c.status is CheckStatus.ERROR for c in checks) + ungraded,
              "skipped": sum(c.status is CheckStatus.NOT_GRADABLE for c in checks),
              "tests": len(checks) + ungraded}
    assert {k: int(root.get(k)) for k in expect} == expect
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
    assert "<script>" not in xml and "\x1b" not in xml and "\x00" not in xml
    return root


CLASSROOM_TOP = {"version": int, "status": str, "max_score": NUMBER, "tests": list}
CLASSROOM_TEST = {"name": str, "status": str, "score": NUMBER, "message": str, "execution_time": str}
CLASSROOM_STATUS = {"pass", "fail", "error"}
PRAIRIE_CSV_COLUMNS = ["uid", "instance", "qid", "score_perc", "feedback"]


def validate_classroom(data: dict, where: str) -> None:
    """GitHub Classroom's reporter JSON: documented fields, statuses, points adding up."""
    check_fields(data, CLASSROOM_TOP, where)
    assert data["version"] == 1 and data["status"] in CLASSROOM_STATUS
    for test in data["tests"]:
        check_fields(test, CLASSROOM_TEST, f"{where} test")
        assert test["status"] in CLASSROOM_STATUS and test["score"] >= 0
    assert sum(test["score"] for test in data["tests"]) <= data["max_score"]
