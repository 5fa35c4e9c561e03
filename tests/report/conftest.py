"""A sample report whose submission-derived text is hostile in every way we know of."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from grader.checks import CHECKS
from grader.models import (
    CheckResult, CheckStatus, DiffReport, Evidence, ExerciseDiff, FileChange, GradeReport,
    Submission, UnmergedBranch,
)
from grader.rubric import load_rubric
from grader.scoring import score

HOSTILE = (
    "<script>alert(1)</script> [bold red]x[/] \x1b]8;;http://evil\x07click\x1b]8;;\x07 "
    "\x1b[31mred\x1b[0m =HYPERLINK(\"http://x\") [link](http://evil) ![img](x)"
)
HIDDEN_REASON = "drain never ended: SECRET-HIDDEN-DETAIL"
RUBRIC = load_rubric(Path(__file__).resolve().parents[2] / "rubrics" / "llmops-exam.yaml")


@pytest.fixture
def report() -> GradeReport:
    results = {cid: CheckResult(check_id=cid, status=CheckStatus.PASSED, reason="ok") for cid in CHECKS}
    results["ex6.json_logs"] = CheckResult(
        check_id="ex6.json_logs", status=CheckStatus.FAILED, reason=f"non-JSON line: {HOSTILE}",
        evidence=(Evidence(kind="log", summary=HOSTILE, detail=f"line 1\n{HOSTILE}\n```\nline 3"),),
        duration_s=1.5)
    results["ex2.drain_bounded"] = CheckResult(
        check_id="ex2.drain_bounded", status=CheckStatus.FAILED, reason=HIDDEN_REASON,
        evidence=(Evidence(kind="exit", summary="still running after 35 s"),))
    results["ex5.recovers"] = CheckResult(
        check_id="ex5.recovers", status=CheckStatus.FLAKY,
        reason="failed, then passed when re-run in a fresh stack (first run: /health/ready stayed 503)")
    results["ex3.hang_bounded"] = CheckResult(
        check_id="ex3.hang_bounded", status=CheckStatus.ERROR, reason="mock LLM crashed")
    submission = Submission(
        source=f"https://example.org/{HOSTILE}.git", commit_sha="0123abc", ref="main",
        author_date=datetime(2025, 5, 30, tzinfo=UTC), commit_count=7,
        deadline_note=f"last commit before the deadline {HOSTILE}",
        unmerged_branches=(UnmergedBranch(name=f"feature/{HOSTILE}", commits_ahead=2),))
    diff = DiffReport(
        exercises=(ExerciseDiff(exercise_id="ex1", files=(FileChange(
            path="src/api/config/settings.py", exists=True, state="changed", lines=40,
            similarity_to_reference=0.97, near_copy=True),)),),
        overall_similarity=0.61, near_copy_files=("src/api/config/settings.py",))
    return score(RUBRIC, results, submission, grader_version="0.1.0",
                 graded_at=datetime(2025, 6, 1, 12, tzinfo=UTC), diff=diff,
                 warnings=(f"commit message: {HOSTILE}",), isolation=("docker network none",),
                 duration_s=123.4)
