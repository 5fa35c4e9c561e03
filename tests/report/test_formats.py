"""Every format renders the sample report; hostile submission text stays inert in each."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from grader.errors import UsageError
from grader.models import GradeReport
from grader.report import (
    Audience, json_schema, render_html, render_json, render_markdown, render_terminal, write_reports,
)
from grader.report.json import SCHEMA_PATH

from .conftest import HIDDEN_REASON


def _terminal(report: GradeReport, audience: Audience) -> str:
    console = Console(file=StringIO(), record=True, width=140, force_terminal=True, color_system="truecolor")
    console.print(render_terminal(report, audience))
    return console.export_text(styles=False)


def test_committed_schema_matches_the_model():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == json_schema(), (
        "schema drifted: run `uv run python -m grader.report.json`")


def test_json_round_trips_with_schema_version(report):
    data = json.loads(render_json(report))
    assert data["schema_version"] == 1
    assert GradeReport.model_validate(data) == report


def test_terminal_shows_scores_header_and_strips_escapes(report):
    text = _terminal(report, Audience.INSTRUCTOR)
    assert "\x1b" not in text and "\x07" not in text
    assert "[bold red]x[/]" in text  # shown literally, not interpreted as markup
    assert "INCOMPLETE" in text and "lower bound" in text
    assert "Unmerged branch" in text and "last commit before the deadline" in text
    assert "Total 84/100 (lower bound, incomplete)" in text and "band fail" in text and "capped at 'fail'" in text


def test_terminal_markup_is_not_interpreted(report):
    console = Console(file=StringIO(), record=True, width=140, force_terminal=True, color_system="truecolor")
    console.print(render_terminal(report, Audience.INSTRUCTOR))
    raw = console.file.getvalue()
    # the only escapes are rich's own styles: no OSC hyperlink, no bell
    assert "\x1b]8;" not in raw and "\x07" not in raw


def test_html_is_inert(report):
    page = render_html(report, Audience.INSTRUCTOR)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page and "\x07" not in page
    assert 'href="http://evil"' not in page and "<img" not in page
    assert "<details>" in page and "Diff against the reference" in page


def test_markdown_is_inert_when_rendered(report):
    source = render_markdown(report, Audience.INSTRUCTOR)
    assert "\x1b" not in source and "\x07" not in source
    rendered = MarkdownIt("commonmark").enable("table").render(source)
    assert "<script>" not in rendered
    assert "<a " not in rendered and "<img" not in rendered
    assert "alert(1)" in rendered and "Diff against the reference" in rendered


@pytest.mark.parametrize("render", [render_html, render_markdown, _terminal])
def test_student_audience_hides_hidden_criteria_and_diff(report, render):
    student = render(report, Audience.STUDENT)
    instructor = render(report, Audience.INSTRUCTOR)
    assert "SECRET-HIDDEN-DETAIL" in instructor and "SECRET-HIDDEN-DETAIL" not in student
    assert "drain_bounded" not in student and "hidden criterion" in student.lower()
    assert "similarity" not in student.lower() and "similarity" in instructor.lower()
    assert "Bound the drain" not in student  # hidden hint
    assert "JSON formatter" in student  # public hints are shown for lost points


@pytest.mark.parametrize("render", [render_html, render_markdown, _terminal])
def test_flaky_checks_are_credited_and_listed_for_instructors(report, render):
    instructor, student = render(report, Audience.INSTRUCTOR), render(report, Audience.STUDENT)
    line = "ex5.recovers is flaky: failed, then passed when re-run in a fresh stack"
    assert "Needs a human look" in instructor and line in instructor
    assert "Needs a human look" not in student
    assert report.points == 84  # ex5.recovers earned its points


def test_student_json_is_redacted(report):
    data = render_json(report)
    assert HIDDEN_REASON in data
    from grader.report import for_audience
    student = render_json(for_audience(report, Audience.STUDENT))
    assert HIDDEN_REASON not in student and '"diff": null' in student


def test_write_reports(report, tmp_path):
    paths = write_reports(report, {"json", "markdown", "html", "text"}, tmp_path, Audience.STUDENT)
    assert sorted(p.name for p in paths) == [
        "grade-report.student.html", "grade-report.student.json",
        "grade-report.student.md", "grade-report.student.txt"]
    assert all(HIDDEN_REASON not in p.read_text() for p in paths)
    with pytest.raises(UsageError, match="pdf"):
        write_reports(report, {"pdf"}, tmp_path, Audience.STUDENT)
