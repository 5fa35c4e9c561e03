"""A batch folder of records around a real grading's report (``docs/img/sample-report.json``,
fixture only-ex3 graded for real), and a rubric that moves points and the pass mark: what the
week-after commands (rescore, diff, feedback) are tested on without grading again."""

from __future__ import annotations

from pathlib import Path

import yaml

from grader import __version__
from grader.identity import grader_identity
from grader.models import GradeReport
from grader.records import SubmissionRecord, status_of, write_record
from tests.batch.samples import ROOT, RUBRIC

REAL_REPORT = GradeReport.model_validate_json((ROOT / "docs" / "img" / "sample-report.json").read_bytes())
RUBRIC_PATH = ROOT / "rubrics" / "llmops-exam.yaml"
IDENTITY = grader_identity(RUBRIC)  # hashing the grader's code takes a second: once


def record(student_id: str, report: GradeReport | None) -> SubmissionRecord:
    """The record ``grade batch`` writes around ``report`` (None: could not be graded)."""
    return SubmissionRecord(
        student_id=student_id, source=f"https://example.org/{student_id}.git", status=status_of(report),
        reason=None if report else "repository not found", resolved_tip=report and report.submission.commit_sha,
        commit_sha=report and report.submission.commit_sha, rubric_name=RUBRIC.name, rubric_version=RUBRIC.version,
        grader_version=__version__, identity=IDENTITY, report=report,
        started_at=REAL_REPORT.graded_at, finished_at=REAL_REPORT.graded_at, duration_s=REAL_REPORT.duration_s)


def write_batch(out: Path, reports: dict[str, GradeReport | None]) -> list[SubmissionRecord]:
    records = [record(student_id, report) for student_id, report in reports.items()]
    for each in records:
        write_record(out, each)
    return records


def rubric_yaml(path: Path, edit) -> Path:
    """The exam's rubric with ``edit(data)`` applied, written to ``path``."""
    data = yaml.safe_load(RUBRIC_PATH.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def criterion(data: dict, criterion_id: str) -> dict:
    exercise = data["exercises"][criterion_id.split(".")[0]]
    return next(c for c in exercise["criteria"] if c["id"] == criterion_id)


def moved_points(data: dict) -> None:
    """Two points from ex2.drain (failed in the real report) to ex2.bounded (passed), a pass mark
    of 20 and a gate that ex3 alone satisfies: the real report's student now passes."""
    criterion(data, "ex2.drain")["points"] -= 2
    criterion(data, "ex2.bounded")["points"] += 2
    data["version"] = "2025.1-rescored"
    data["pass_mark"] = 20
    data["bands"] = [{"name": "excellence", "min": 90}, {"name": "pass", "min": 20}, {"name": "fail", "min": 0}]
    data["min_complete"] = {"count": 1, "of": ["ex3", "ex6"]}
