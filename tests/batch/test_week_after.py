"""The week after grading, on records around a real grading's report: ``grade rescore`` (scores
equal to fresh scoring under the new rubric, nothing started), ``grade diff`` and
``grade feedback`` (no hidden criterion reaches a student)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.batch.rescore import rescore_report, stored_checks
from grader.batch.runner import BatchOptions
from grader.cli import app
from grader.errors import EXIT_DIFFERENT, EXIT_GRADED, EXIT_USAGE
from grader.models import GradeReport
from grader.records import read_records
from grader.report.json import render_json
from grader.rubric import load_rubric
from grader.scoring import score
from tests.batch.real_records import REAL_REPORT, RUBRIC_PATH, criterion, moved_points, rubric_yaml, write_batch
from tests.batch.samples import RUBRIC
from tests.batch.test_runner import FAKE_WORKER, _roster, repo_url  # noqa: F401 (a fixture)
from tests.needs import unavailable

runner = CliRunner()


def _grade(*args: object):
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.stdout, [line for line in result.stderr.splitlines() if line.strip()]


def _without(report: GradeReport, check_id: str) -> GradeReport:
    """``report`` as an older grader without ``check_id`` in its catalogue would have written it."""
    exercises = tuple(ex.model_copy(update={"criteria": tuple(
        c.model_copy(update={"checks": tuple(k for k in c.checks if k.check_id != check_id)}) for c in ex.criteria)})
        for ex in report.exercises)
    return report.model_copy(update={"exercises": exercises})


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    out = tmp_path / "batch"
    write_batch(out, {"s1": REAL_REPORT, "s2": REAL_REPORT, "s3": None})
    return out


@pytest.fixture
def new_rubric(tmp_path: Path) -> Path:
    return rubric_yaml(tmp_path / "moved.yaml", moved_points)


def test_rescore_equals_fresh_scoring_starts_nothing_and_tables_who_changed(batch, new_rubric, tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError(f"rescore started a process: {args[:1]}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setenv("COLUMNS", "160")  # the table's rows on one line each
    started = time.monotonic()
    code, stdout, stderr = _grade("rescore", batch, "--rubric", new_rubric, "-o", tmp_path / "rescored")
    assert time.monotonic() - started < 10
    assert code == EXIT_GRADED, stderr
    rubric = load_rubric(new_rubric)
    before = {r.student_id: r for r in read_records([batch])}
    after = {r.student_id: r for r in read_records([tmp_path / "rescored"])}
    assert set(after) == {"s1", "s2", "s3"} and after["s3"].report is None
    for sid in ("s1", "s2"):
        fresh = score(rubric, stored_checks(before[sid].report), REAL_REPORT.submission,
                      grader_version=REAL_REPORT.grader_version, graded_at=REAL_REPORT.graded_at)
        got = after[sid].report
        assert (got.points, got.band, got.passed, got.exercises) == (fresh.points, fresh.band, fresh.passed,
                                                                   fresh.exercises)
        assert (got.points, got.passed) == (21.0, True) and before[sid].report.points == 19.0
        assert after[sid].rubric_version == "2025.1-rescored"
    for sid in ("s1", "s2"):  # the table: old, new and the criteria that moved
        assert sid in stdout
    assert "19/100 band fail, not passed" in stdout and "21/100 band pass, passed" in stdout
    assert "ex2.drain" in stdout and "ex2.bounded" in stdout and "s3" not in stdout
    gradebook = (tmp_path / "rescored" / "gradebook.csv").read_text(encoding="utf-8")
    assert gradebook.count(",21,100,pass,") == 2, gradebook
    assert (tmp_path / "rescored" / "exports" / "gradescope" / "s1" / "results.json").is_file()
    assert stderr[-1] == "3 record(s) rescored under llmops-exam 2025.1-rescored: 2 changed total, band or pass"
    assert read_records([batch])[0].report == REAL_REPORT  # the original batch is left as it was


def test_rescore_refuses_what_only_a_regrade_decides(batch, tmp_path):
    write_batch(batch, {"s2": _without(REAL_REPORT, "ex3.body_limit_chunked")})
    code, _, stderr = _grade("rescore", batch, "--rubric", RUBRIC_PATH)
    assert code == EXIT_USAGE
    assert stderr == ["error: s2: the rubric binds check ex3.body_limit_chunked, which this grading never ran: "
                      "only a regrade can decide it"]
    assert not (batch / "gradebook.csv").exists()  # refused before writing anything


def test_rescore_refuses_other_settings_and_an_invalid_rubric_in_one_line(batch, tmp_path):
    slower = rubric_yaml(tmp_path / "slower.yaml", lambda data: data.update(limits={"install_s": 300}))
    code, _, stderr = _grade("rescore", batch, "--rubric", slower)
    assert code == EXIT_USAGE and len(stderr) == 1 and "only a regrade can decide" in stderr[0], stderr
    broken = rubric_yaml(tmp_path / "broken.yaml", lambda data: criterion(data, "ex1.cors").update(points=99))
    code, _, stderr = _grade("rescore", batch, "--rubric", broken)
    assert code == EXIT_USAGE and len(stderr) == 1 and stderr[0].startswith("error: ") and "criteria sum" in stderr[0]
    code, _, stderr = _grade("rescore", tmp_path / "nowhere", "--rubric", broken)
    assert code == EXIT_USAGE
    assert stderr == [f"error: {tmp_path / 'nowhere'}: not a batch folder (no submissions/ in it)"]


def test_diff_of_a_batch_with_itself_is_nothing_and_with_its_rescore_exactly_the_rescored(batch, new_rubric, tmp_path):
    code, stdout, _ = _grade("diff", batch, batch)
    assert code == EXIT_GRADED and stdout.splitlines() == ["0 improved, 0 worsened, 0 changed, 3 unchanged"]
    assert _grade("rescore", batch, "--rubric", new_rubric, "-o", tmp_path / "rescored")[0] == EXIT_GRADED
    code, stdout, _ = _grade("diff", batch, tmp_path / "rescored")
    assert code == EXIT_DIFFERENT
    lines = stdout.splitlines()
    assert lines[-1] == "2 improved, 0 worsened, 0 changed, 1 unchanged"
    for sid in ("s1", "s2"):
        at = lines.index(f"{sid}: 19/100 band fail, not passed -> 21/100 band pass, passed (improved)")
        assert lines[at + 1:at + 3] == ["  ex2.drain: failed 0/6 -> failed 0/4",
                                        "  ex2.bounded: passed 4/4 -> passed 6/6"]
    assert not [line for line in lines if line.startswith("s3")]


def test_diff_of_two_reports_and_refusals(tmp_path, new_rubric):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(render_json(REAL_REPORT), encoding="utf-8")
    second.write_text(render_json(REAL_REPORT.model_copy(update={"graded_at": datetime(2030, 1, 1)})), encoding="utf-8")
    assert _grade("diff", first, second)[:2] == (EXIT_GRADED, "0 improved, 0 worsened, 0 changed, 1 unchanged\n")
    second.write_text(render_json(rescore_report(REAL_REPORT, load_rubric(new_rubric))), encoding="utf-8")
    code, stdout, _ = _grade("diff", first, second)
    assert code == EXIT_DIFFERENT
    assert stdout.startswith("report: 19/100 band fail, not passed -> 21/100 band pass, passed (improved)\n")
    code, _, stderr = _grade("diff", first, tmp_path)
    assert code == EXIT_USAGE and len(stderr) == 1, stderr
    (tmp_path / "junk.json").write_text("{}", encoding="utf-8")
    code, _, stderr = _grade("diff", first, tmp_path / "junk.json")
    assert code == EXIT_USAGE and stderr == [f"error: {tmp_path / 'junk.json'}: not a grade report JSON "
                                             "(grade -f json) nor a batch folder"]


def _hidden_words() -> list[str]:
    """The title and check ids of every hidden criterion of the rubric."""
    return [word for ex in RUBRIC.exercises.values() for c in ex.criteria if c.visibility == "hidden"
            for word in (c.title, *c.checks)]


def test_feedback_writes_one_student_report_per_record_with_nothing_hidden(batch, tmp_path):
    code, _, stderr = _grade("feedback", batch, "-o", tmp_path / "mail")
    assert code == EXIT_GRADED, stderr
    rows = list(csv.DictReader((tmp_path / "mail" / "feedback.csv").open(encoding="utf-8")))
    assert [(r["student_id"], r["status"], r["html"], r["markdown"]) for r in rows] == [
        ("s1", "graded", "s1/grade-report.student.html", "s1/grade-report.student.md"),
        ("s2", "graded", "s2/grade-report.student.html", "s2/grade-report.student.md"),
        ("s3", "error", "", ""),
    ]
    hidden = _hidden_words()
    assert any(word in (batch / "submissions" / "s1.json").read_text() for word in hidden)  # the record has them
    # Markdown escapes punctuation (ex3\.hang\_bounded): read it as a reader sees it.
    markdown = (tmp_path / "mail" / "s1" / "grade-report.student.md").read_text(encoding="utf-8").replace("\\", "")
    assert "ex3.hang_bounded" in markdown and not [word for word in hidden if word in markdown]
    assert "similarity" not in markdown.lower()  # no reference diff
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        unavailable("chromium is absent (apt-get install -y chromium)")
    page = tmp_path / "mail" / "s1" / "grade-report.student.html"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Secure configuration" in dom and "ex3.hang_bounded" in dom  # rendered, public checks shown
    assert not [word for word in hidden if word in dom]


def test_batch_feedback_and_regrade_lines_from_the_command(tmp_path, repo_url, monkeypatch):  # noqa: F811
    monkeypatch.setattr("grader.cli.BatchOptions", partial(BatchOptions, worker_command=FAKE_WORKER))
    roster, out = _roster(tmp_path, ["ok1", "ok2"], repo_url), tmp_path / "out"
    command = ("batch", roster, "-o", out, "--only", "ex1", "--allow-unsandboxed", "-q")
    code, _, stderr = _grade(*command, "--feedback")
    assert code == EXIT_GRADED, stderr
    assert sorted(p.name for p in (out / "feedback").iterdir()) == ["feedback.csv", "ok1", "ok2"]
    code, _, stderr = _grade(*command, "--student", "ok2")
    assert code == EXIT_GRADED and stderr == ["regraded ok2: regrade asked for",
                                              "1 submission(s): 1 run now, 0 kept from a previous run, "
                                              "0 could not be graded"], stderr
