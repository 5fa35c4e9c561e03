"""Sample records for batch tests: real rubric, real scoring, no grading run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from grader import __version__
from grader.checks import CHECKS
from grader.models import CheckResult, CheckStatus, DiffReport, Evidence, GradeReport, Submission
from grader.records import SubmissionRecord, status_of
from grader.rubric import load_rubric
from grader.scoring import score

ROOT = Path(__file__).resolve().parents[2]
RUBRIC = load_rubric(ROOT / "rubrics" / "llmops-exam.yaml")
HOSTILE = "=HYPERLINK(\"http://evil\") <script>alert(1)</script> \x1b[31mred\x1b[0m \x00\x07 ]]> &amp;"
WHEN = datetime(2025, 6, 1, 12, tzinfo=UTC)


def sample_report(failed: tuple[str, ...] = (), errors: tuple[str, ...] = (), not_gradable: tuple[str, ...] = (),
                  flaky: tuple[str, ...] = (), only: set[str] | None = None, similarity: float = 0.3, reason: str = "it failed",
                  sha: str = "0" * 40) -> GradeReport:
    results = {}
    for cid, spec in CHECKS.items():
        if only is not None and spec.exercise not in only:
            continue
        status = (CheckStatus.FAILED if cid in failed else CheckStatus.ERROR if cid in errors
                  else CheckStatus.NOT_GRADABLE if cid in not_gradable else CheckStatus.FLAKY if cid in flaky
                  else CheckStatus.PASSED)
        evidence = (Evidence(kind="log", summary=reason, detail=f"detail\n{reason}"),) if status != "passed" else ()
        results[cid] = CheckResult(check_id=cid, status=status, reason=reason if status != "passed" else "ok",
                                   evidence=evidence, duration_s=1.5)
    submission = Submission(source="file:///x", commit_sha=sha, ref="main", author_date=WHEN, commit_count=3)
    diff = DiffReport(exercises=(), overall_similarity=similarity, near_copy_files=())
    return score(RUBRIC, results, submission, grader_version=__version__, graded_at=WHEN, diff=diff,
                 duration_s=42.0, only=only)


def sample_record(student_id: str, report: GradeReport | None, reason: str | None = None,
                  fingerprint: tuple[str, ...] = ()) -> SubmissionRecord:
    return SubmissionRecord(
        student_id=student_id, source=f"https://example.org/{student_id}.git", status=status_of(report),
        reason=reason if report is None else None, commit_sha=report.submission.commit_sha if report else None,
        resolved_tip=report.submission.commit_sha if report else None,
        rubric_name=RUBRIC.name, rubric_version=RUBRIC.version, grader_version=__version__,
        fingerprint=fingerprint, report=report, started_at=WHEN, finished_at=WHEN, duration_s=42.0)


def sample_records() -> list[SubmissionRecord]:
    """Five students: full marks, hostile failures, incomplete, could not grade, reference copy (one flaky)."""
    return [
        sample_record("alice", sample_report()),
        sample_record("bob", sample_report(failed=("ex6.json_logs", "ex2.drain_bounded", "ex3.hang_bounded"),
                                           not_gradable=("ex5.recovers",), reason=HOSTILE)),
        sample_record("carol", sample_report(failed=("ex1.refuses_short_secret",), errors=("ex4.mlflow_fallback",))),
        sample_record("dave", None, reason=f"repository not found: {HOSTILE}"),
        sample_record("erin", sample_report(similarity=0.99, flaky=("ex2.drains_inflight",))),
    ]
