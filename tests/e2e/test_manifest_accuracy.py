"""End to end: every fixture of the manifest graded for real, every cell compared.

The manifest is graded as an instructor grades a class: ``grade batch`` over a roster of
file:// URLs, two submissions at a time, each in its own worker process; the batch's
gradebook, summary page and three exports are then checked against their formats. Real
processes, the real MLflow server, real git repositories. What each stage grades, and on which
exercises, is tests/e2e/graded.py: CI's batch grades every fixture but the twelve interaction
baselines (near misses and hostile fixtures on the exercises where they differ from the
solution they build on); the release stage's batch grades those baselines whole and the
reference twice more, to show gradings are stable. The hostile fixtures (fixtures/hostile.py,
fixtures/escapes.py) are graded with a canary credential in the grader's own environment; they
need every protection of the sandbox (CI fails without them; elsewhere they are skipped,
saying so).

The only re-run is the grader's own fairness rule (a marginal failure that passes in a fresh
stack is ``flaky`` and credited, so the manifest's "passed" is met by a flaky check, never its
"failed"; every flaky check is printed). A cell that differs fails its fixture's test with the
cell, the expected and the graded status, the grader's reason and its evidence.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from fixtures.accuracy import checks_of, credits, describe, flaky, mismatches, verdicts
from fixtures.build import build_fixture
from fixtures.hostile import HOSTILE_TEXT
from grader.checks import CHECKS
from grader.models import CheckStatus
from grader.report import Audience, render_html, render_json, render_markdown, render_terminal
from tests.e2e.graded import BASELINES, CANARY, IN_CI, MANIFEST, REPEATED, SANDBOX_MISSING, STARTERS
from tests.report.lms_formats import validate_gradescope, validate_junit, validate_prairielearn


def _show_flaky(graded) -> None:
    # A warning, so CI's summary lists every flaky check even when the test passes.
    for line in flaky(graded):
        warnings.warn(f"flaky: {line}", stacklevel=2)


def _graded(gradings, name: str):
    if name not in gradings:
        missing = f"{name} needs every protection of the sandbox; missing: {'; '.join(SANDBOX_MISSING)}"
        pytest.fail(missing) if IN_CI else pytest.skip(missing)
    return gradings[name][0]


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.release] if name in BASELINES else [])
                                  for name in sorted(MANIFEST.fixtures)])
def test_grading_matches_the_manifest(request, name):
    # The baselines are graded by the release stage's batch, every other fixture by CI's.
    graded = _graded(request.getfixturevalue("release_gradings" if name in BASELINES else "gradings"), name)
    _show_flaky(graded)
    found = mismatches(graded)
    assert not found, f"{name} differs from the manifest:\n{describe(found, graded)}"


@pytest.mark.release
def test_three_gradings_agree(gradings, release_gradings):
    """The same commit earns the same credit check by check (a flaky check is credited)."""
    runs = gradings[REPEATED] + release_gradings[REPEATED]
    assert len(runs) == 3
    assert all(run.report is not None for run in runs), [run.could_not_grade for run in runs]
    for run in runs:
        _show_flaky(run)
    differing = {check_id: [verdicts(run)[check_id] + ": " + _reason(run, check_id) for run in runs]
                 for check_id in credits(runs[0])
                 if len({credits(run).get(check_id) for run in runs}) > 1}
    assert not differing, differing
    assert runs[0].report.points == runs[1].report.points == runs[2].report.points


def _reason(graded, check_id: str) -> str:
    return next(check.reason for check in checks_of(graded) if check.check_id == check_id)


def test_reference_scores_full_marks(gradings):
    report = gradings["reference"][0].report
    assert report.points == report.max_points == 100
    assert report.complete and report.band == "excellence"


@pytest.mark.parametrize("name", sorted(name for name in MANIFEST.fixtures if name in STARTERS))
def test_the_handout_earns_nothing(gradings, name):
    """Every fork starts from the handout: what it does before any fix is worth no point."""
    graded = _graded(gradings, name)
    earned = [f"{c.check_id}: {c.status.value} ({c.reason})" for c in checks_of(graded)
              if c.status not in (CheckStatus.FAILED, CheckStatus.NOT_GRADABLE)]
    assert not earned and graded.report.points == 0, earned


def _renders(graded) -> dict[str, str]:
    console = Console(file=io.StringIO(), width=160, force_terminal=True, color_system="truecolor")
    console.print(render_terminal(graded.report, Audience.INSTRUCTOR))
    return {"terminal": console.file.getvalue(), "json": render_json(graded.report),
            "html": render_html(graded.report, Audience.INSTRUCTOR),
            "markdown": render_markdown(graded.report, Audience.INSTRUCTOR)}


def test_a_secret_of_the_graders_environment_reaches_no_submission(gradings):
    # snoops refuses to start naming any credential-like variable, grader file or ~/.ssh it can
    # see: every dynamic check credited means it saw none, the canary included.
    snoops = _graded(gradings, "snoops")
    refused = [c.reason for c in checks_of(snoops) if not CHECKS[c.check_id].static and not c.status.credited]
    assert not refused, refused
    for runs in gradings.values():
        for run in runs:
            if run.report is not None:
                assert not [fmt for fmt, text in _renders(run).items() if CANARY[1] in text], run.name


@pytest.mark.parametrize("name, limit", [("forks-without-bound", "process limit hit"),
                                         ("allocates-without-bound", "memory limit hit"),
                                         ("writes-gigabytes", "disk limit hit")])
def test_a_runaway_is_stopped_and_its_limit_named(gradings, name, limit):
    dynamic = [c for c in checks_of(_graded(gradings, name)) if not CHECKS[c.check_id].static]
    assert dynamic and all(limit in c.reason for c in dynamic), [c.reason for c in dynamic if limit not in c.reason]


def test_forged_results_neither_score_nor_land_outside_the_grading(gradings, batch):
    forged = _graded(gradings, "forges-results")
    assert {c.check_id: c.status.value for c in checks_of(forged) if c.check_id.startswith("ex2.")} != {
        "ex2.drains_inflight": "passed", "ex2.cleanup_logged": "passed", "ex2.drain_bounded": "passed"}
    # It writes a forged report where it runs and in every folder above it: none may outlive the
    # grading outside its own temporary folders (the batch's output included).
    out = batch[0]
    escaped = [path for path in (Path(tempfile.gettempdir()) / "grade-report.json", Path("/grade-report.json"),
                                 *out.rglob("grade-report.json"), *build_fixture("forges-results").rglob("grade-report.json"))
               if path.exists()]
    assert not escaped, escaped


def test_hostile_output_is_carried_into_the_reports_inert(gradings):
    graded = _graded(gradings, "hostile-output")
    # The raw escapes (an unknown page's body) and the markup did reach the report's evidence.
    assert [e for c in checks_of(graded) for e in c.evidence if "\x1b]8;" in e.summary + e.detail]
    renders = _renders(graded)
    assert "alert(" in renders["html"] and "pwned" in renders["markdown"]
    assert "<script>" not in renders["html"] and "\x1b" not in renders["html"] + renders["markdown"]
    assert "\x1b]8;" not in renders["terminal"] and "\x07" not in renders["terminal"]
    assert HOSTILE_TEXT not in renders["terminal"]


def test_the_batch_writes_a_gradebook_summary_and_exports_in_their_formats(batch, records):
    out, students = batch
    assert {record.student_id for record in records} == set(students)
    rows = {row["student_id"]: row for row in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    assert set(rows) == set(students)
    for record in records:
        row = rows[record.student_id]
        assert row["status"] == record.status.value and row["commit_sha"] == (record.commit_sha or "")
        if record.report is None:
            assert row["total"] == "" and row["reason"], row  # could not grade: never a 0
        else:
            assert abs(float(row["total"]) - record.report.points) < 1e-6, row
        graded = record.report is not None
        validate_gradescope(json.loads((out / "exports" / "gradescope" / record.student_id / "results.json")
                                       .read_text(encoding="utf-8")), record.student_id, graded)
        validate_prairielearn(json.loads((out / "exports" / "prairielearn" / record.student_id / "results.json")
                                         .read_text(encoding="utf-8")), record.student_id)
    validate_junit((out / "exports" / "junit.xml").read_text(encoding="utf-8"), records)
    summary = (out / "summary.html").read_text(encoding="utf-8")
    assert all(f'id="{chart}"' in summary for chart in ("score-histogram", "criterion-pass-rates", "band-counts"))
    assert "near-copy of the reference" in summary  # the reference and its copies are flagged
    assert "<script>" not in summary and CANARY[1] not in summary


def test_nothing_is_left_running_and_the_machine_stays_usable(gradings):
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if "main:app" in (p.info["cmdline"] or [])]
    assert not left
    assert psutil.virtual_memory().available > 2 * 2**30
    assert shutil.disk_usage(tempfile.gettempdir()).free > 2 * 2**30
