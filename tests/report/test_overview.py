"""The lead of every report: verdict, a bar per exercise, then "fix these first" by points lost."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from rich.console import Console

from grader.checks import CHECKS
from grader.models import CheckResult, CheckStatus, GradeReport, Submission
from grader.report import Audience, for_audience, render_html, render_markdown, render_terminal
from grader.report.overview import FixFirst, exercise_bars, fix_first, verdict_line
from grader.scoring import score

from .conftest import RUBRIC

FAILED = {
    "ex1.refuses_short_secret": "a 12-character secret was accepted",  # 1 of 3 proportional checks: -2.67
    "ex4.unknown_model_404": "an unknown model answered 500",  # -3
    "ex6.json_logs": "line 3 is not JSON: 'INFO: started'",  # -7
    "ex4.error_body_fields": "the 500 body has no incident_id",  # -2
}


@pytest.fixture
def graded() -> GradeReport:
    results = {cid: CheckResult(check_id=cid, status=CheckStatus.PASSED, reason="ok") for cid in CHECKS}
    for cid, reason in FAILED.items():
        results[cid] = CheckResult(check_id=cid, status=CheckStatus.FAILED, reason=reason)
    results["ex3.hang_bounded"] = CheckResult(check_id="ex3.hang_bounded", status=CheckStatus.ERROR,
                                              reason="mock LLM crashed")
    submission = Submission(source="/tmp/s", commit_sha="abc", ref="main", author_date=None, commit_count=2)
    return score(RUBRIC, results, submission, grader_version="0.1.0", graded_at=datetime(2025, 6, 1, tzinfo=UTC))


EXPECTED = [
    FixFirst("ex6", "Every log line is a JSON object with timestamp, level, message", 7.0, 7.0,
             "line 3 is not JSON: 'INFO: started'"),
    FixFirst("ex4", "An unknown model answers 404 naming it", 3.0, 3.0, "an unknown model answered 500"),
    FixFirst("ex1", "Refuses to start without a strong JWT secret", 2.67, 8.0, "a 12-character secret was accepted"),
    FixFirst("ex4", "Error bodies carry incident_id, timestamp and a message", 2.0, 2.0,
             "the 500 body has no incident_id"),
]


def test_fix_first_is_largest_loss_first_and_leaves_ungraded_out(graded):
    assert fix_first(graded) == EXPECTED  # ex3's ungraded criterion is the grader's failure, not a fix


def test_bars_and_verdict(graded):
    bars = {bar.exercise_id: (bar.points, bar.max_points, bar.complete) for bar in exercise_bars(graded)}
    assert bars == {"ex1": (12.33, 15, True), "ex2": (15, 15, True), "ex3": (10, 15, False),
                    "ex4": (15, 20, True), "ex5": (15, 15, True), "ex6": (13, 20, True)}
    assert verdict_line(graded) == "Total 80.33/100 (lower bound, incomplete), band fail, NOT PASSED"  # min_complete: only ex2 of ex1, ex2, ex6
    ex1 = exercise_bars(graded)[0]
    assert ex1.text_bar() == "█" * 16 + "░" * 4


def test_a_hidden_criterion_is_listed_without_its_details_for_students(report):
    student = fix_first(for_audience(report, Audience.STUDENT))
    assert [(f.exercise_id, f.title, f.lost, f.reason) for f in student][1] == (
        "ex2", "hidden criterion", 4.0, "its details are not shown to students")


def _terminal(report: GradeReport) -> str:
    console = Console(file=StringIO(), width=400, color_system=None)
    console.print(render_terminal(report, Audience.STUDENT))
    return console.file.getvalue()


@pytest.mark.parametrize("render", [_terminal, lambda r: render_markdown(r, Audience.STUDENT),
                                    lambda r: render_html(r, Audience.STUDENT)])
def test_every_format_opens_with_the_same_lead(graded, render):
    text = render(graded).replace("\\", "")  # Markdown escapes its specials
    positions = [text.index("Total 80.33/100")]
    positions += [text.index(f"{bar.exercise_id} {bar.title}") for bar in exercise_bars(graded)]
    positions.append(text.index("Fix these first"))
    positions += [text.index(f"-{fix.lost:g}") for fix in EXPECTED]
    for fix in EXPECTED:
        assert fix.title in text
        assert fix.reason in text.replace("&#39;", "'")
    detail = text.index("ex1 Secure configuration: ")  # the first exercise's detail table
    assert positions == sorted(positions) and positions[-1] < detail
