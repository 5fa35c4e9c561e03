"""Batch outputs checked against the fields of shared/formats/LMS-EXPORTS.md, with hostile text.

jsonschema is not installed, so the documented fields are checked explicitly (tests/report/lms_formats.py).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from grader.batch.outputs import write_outputs
from grader.batch.summary import render_summary
from grader.report import Audience, for_audience
from grader.report.exports import gradescope_results, prairielearn_results, render_junit, render_prairielearn_csv
from grader.report.exports.classroom import classroom_results
from grader.report.gradebook import render_gradebook, safe_cell
from tests.batch.samples import sample_records
from tests.needs import unavailable
from tests.report.lms_formats import (
    PRAIRIE_CSV_COLUMNS, validate_classroom, validate_gradescope, validate_junit, validate_prairielearn,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def records():
    return sample_records()


def test_gradescope_fields(records):
    for record in records:
        validate_gradescope(json.loads(json.dumps(gradescope_results(record))), record.student_id,
                            graded=record.report is not None)


def test_gradescope_meaning(records):
    alice, bob, carol, dave, _ = (gradescope_results(r) for r in records)
    assert alice["score"] == 100 and alice["visibility"] == "visible"
    assert all(t["status"] == "passed" for t in alice["tests"])
    hidden = [t for t in alice["tests"] if t["visibility"] == "after_published"]
    assert hidden, "the rubric's hidden criteria are shown after publication"
    failed = [t for t in bob["tests"] if t["status"] == "failed"]
    assert failed and any("alert(1)" in t["output"] for t in failed)
    # Gradescope hides the total while a test is not yet visible ("hidden" tests never are, so
    # they hide nothing): an ungraded criterion keeps the lower bound out of the student's sight.
    assert carol["visibility"] == "after_published" and "INCOMPLETE" in carol["output"]
    ungraded = [t for t in carol["tests"] if "NOT GRADED YET" in t["output"]]
    assert ungraded and all(t["visibility"] == "after_published" for t in ungraded)
    assert not any(t["visibility"] == "hidden" for r in (alice, bob, carol, dave) for t in r["tests"])
    # Could not grade: no score at all, one not-yet-visible test that says why.
    assert "score" not in dave and "not your score" in dave["output"]
    assert [(t["score"], t["visibility"]) for t in dave["tests"]] == [(0, "after_published")]
    assert "repository not found" in dave["tests"][0]["output"]
    assert dave["extra_data"]["status"] == "error"


def test_prairielearn_fields(records):
    for record in records:
        validate_prairielearn(json.loads(json.dumps(prairielearn_results(record))), record.student_id)


def test_prairielearn_meaning(records):
    alice, bob, carol, dave, _ = (prairielearn_results(r) for r in records)
    assert alice["gradable"] is True and alice["score"] == 1.0
    assert bob["gradable"] is True and 0 < bob["score"] < 1
    assert carol["gradable"] is False and carol["format_errors"]  # incomplete: no attempt used
    assert dave["gradable"] is False and "repository not found" in dave["format_errors"][0]
    # the student sees no hidden criterion's details
    text = json.dumps(bob)
    assert "hidden criterion" in text and "drain_bounded" not in text


def test_junit_counts_and_mapping(records):
    xml = render_junit(records)
    root = validate_junit(xml, records)
    for suite in root.findall("testsuite"):
        assert suite.find("properties/property[@name='points']") is not None or suite.get("name") == "dave grading"
    dave = root.find("testsuite[@name='dave grading']")
    assert dave.find("testcase/error").get("type") == "could_not_grade"
    skipped = root.find(".//testcase[@name='ex5.recovers'][@classname='bob.ex5']/skipped")
    assert skipped is not None and skipped.get("message")
    assert root.find(".//testcase[@classname='carol.ex4'][@name='ex4.mlflow_fallback']/error") is not None
    assert "<script>" not in xml and "\x1b" not in xml and "\x00" not in xml


@pytest.mark.parametrize("value, expected", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'=x"),
    ("\r=x", "'=x"), ("plain", "plain"), (12.5, 12.5), (4.0, 4), (-3, -3), (None, ""),
])
def test_gradebook_cells_never_formulas(value, expected):
    assert safe_cell(value) == expected


def test_gradebook_rows(records):
    rows = list(csv.reader(io.StringIO(render_gradebook(records))))
    header = rows[0]
    assert header[:7] == ["student_id", "ex1", "ex2", "ex3", "ex4", "ex5", "ex6"]
    assert header[7:] == ["total", "max", "band", "status", "commit_sha", "grader_version", "reason"]
    by_id = {row[0]: dict(zip(header, row)) for row in rows[1:]}
    assert by_id["alice"]["total"] == "100" and by_id["alice"]["status"] == "graded"
    assert by_id["carol"]["status"] == "incomplete"
    dave = by_id["dave"]
    assert dave["status"] == "error" and dave["total"] == "" and dave["ex1"] == ""  # never a 0
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_summary_is_inert_and_flags_what_needs_a_look(records):
    page = render_summary(records)
    assert "<script" not in page and "&lt;script&gt;" in page and "\x1b" not in page
    for external in ("<link", "<img", "<iframe", " src=", " href="):  # no external resource
        assert external not in page
    for chart in ("score-histogram", "criterion-pass-rates", "band-counts"):
        assert f'id="{chart}"' in page
    assert "could not grade" in page and "near-copy of the reference" in page and "incomplete" in page
    assert "ex2.drains_inflight is flaky" in page


def test_summary_flags_students_copying_each_other(records):
    shared = tuple(f"{n:016x}" for n in range(30))
    copies = [r.model_copy(update={"fingerprint": shared}) if r.student_id in ("alice", "bob")
              else r.model_copy(update={"fingerprint": tuple(f"{r.student_id}{n:011x}" for n in range(30))})
              for r in records]
    page = render_summary(copies)
    assert page.count("near-copy of another submission") == 2


def test_write_outputs_layout(records, tmp_path):
    write_outputs(records, tmp_path)
    assert (tmp_path / "gradebook.csv").is_file() and (tmp_path / "summary.html").is_file()
    assert (tmp_path / "exports" / "junit.xml").is_file()
    for record in records:
        for platform in ("gradescope", "prairielearn"):
            json.loads((tmp_path / "exports" / platform / record.student_id / "results.json").read_text())


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_summary_renders_in_a_headless_browser(records, tmp_path):
    browser = _chromium()
    if browser is None:
        unavailable("chromium is absent (apt-get install -y chromium)")
    page = tmp_path / "summary.html"
    page.write_text(render_summary(records), encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / "batch-summary.png"
    png.unlink(missing_ok=True)
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, f"--screenshot={png}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=180, check=True)
    assert png.is_file() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=180, check=True).stdout
    for chart in ("score-histogram", "criterion-pass-rates", "band-counts"):
        assert f'id="{chart}"' in dom
    assert dom.count("<svg") >= 3 and dom.count("<rect") >= 10


def test_prairielearn_csv_rows_and_what_is_left_out(records):
    rows = list(csv.reader(io.StringIO(render_prairielearn_csv(records))))
    assert rows[0] == PRAIRIE_CSV_COLUMNS
    by_key = {(row[0], row[2]): row for row in rows[1:]}
    assert all(row[1] == "1" for row in rows[1:])
    # dave could not be graded: no row at all; carol's ex4 has an ungraded criterion: no row for it
    assert not [key for key in by_key if key[0] == "dave"]
    assert ("carol", "ex4") not in by_key and ("carol", "ex3") in by_key
    assert by_key[("alice", "ex1")][3:] == ["100", "15/15"]
    bob_ex6 = by_key[("bob", "ex6")]
    assert bob_ex6[3] == "65" and bob_ex6[4].startswith("13/20. Lost: Every log line is a JSON object")
    assert "\x1b" not in bob_ex6[4] and not bob_ex6[4].startswith(("=", "+", "-", "@"))
    # the student sees no hidden criterion's title
    assert by_key[("bob", "ex2")][4] == "11/15. Lost: hidden criterion: details not shown"


def test_classroom_results(records):
    alice, bob, carol = (classroom_results(for_audience(r.report, Audience.STUDENT)) for r in records[:3])
    for name, data in (("alice", alice), ("bob", bob), ("carol", carol)):
        validate_classroom(json.loads(json.dumps(data)), name)
    assert (alice["status"], alice["max_score"], sum(t["score"] for t in alice["tests"])) == ("pass", 100, 100)
    assert bob["status"] == ("pass" if records[1].report.passed else "fail")
    assert carol["status"] == "error"  # incomplete: the grader failed on a criterion
    assert [t["status"] for t in carol["tests"] if "not graded" in t["message"]] == ["error"]
