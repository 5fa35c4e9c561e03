"""The CLI's contract: one clear line and the documented exit code for every kind of bad input."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from grader import __version__
from grader.cli import app
from grader.errors import EXIT_COULD_NOT_GRADE, EXIT_USAGE
from grader.report.overview import verdict_line
from tests.batch.samples import sample_report

runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(app, list(args))
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("·")]
    return result.exit_code, lines


def test_help_lists_the_verbs_and_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("repo", "check"):
        assert word in result.output
    result = runner.invoke(app, ["repo", "--help"])
    for option in ("--ref", "--deadline", "--rubric", "--backend", "--only", "--format", "--out", "--audience",
                   "--fail-under"):
        assert option in result.output


@pytest.mark.parametrize("source", ["/nonexistent/repo", "file:///nope/x.git", "https://127.0.0.1:9/none.git"])
def test_an_unreachable_repository_is_one_line_and_could_not_grade(source):
    code, lines = _run(source)
    assert code == EXIT_COULD_NOT_GRADE
    assert len(lines) == 1 and lines[0].startswith("could not grade:")
    assert "Traceback" not in lines[0]


def test_an_empty_repository_could_not_be_graded(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    code, lines = _run(str(tmp_path))
    assert code == EXIT_COULD_NOT_GRADE
    assert lines == [f"could not grade: repository {tmp_path} is empty (no commits)"]


def test_a_missing_branch_is_named(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "x").write_text("x")
    subprocess.run(["git", "-C", str(repo), "add", "x"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"],
                   check=True)
    code, lines = _run(str(repo), "--ref", "ex3-branch")
    assert code == EXIT_COULD_NOT_GRADE
    assert len(lines) == 1 and "ex3-branch" in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["--only", "ex9"], "unknown exercise"),
    (["--backend", "docker"], "is not one of"),
    (["--deadline", "yesterday"], "ISO 8601"),
    (["--deadline", "2026-06-01T23:59"], "time zone"),
])
def test_bad_options_are_usage_errors(args, needle):
    code, lines = _run("/nonexistent/repo", *args)
    assert code == EXIT_USAGE
    assert any(needle in line for line in lines)


def test_an_invalid_rubric_names_file_line_and_field(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("name: x\nversion: 1\npass_mark: 60\nbands: []\nexercises: {}\n")
    code, lines = _run("/nonexistent/repo", "--rubric", str(rubric))
    assert code == EXIT_USAGE
    assert len(lines) == 1 and f"{rubric}, line 2, version" in lines[0]


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["repo", "-h"], ["check", "-h"], ["batch", "-h"],
                                  ["merge", "-h"], ["export", "-h"], ["export", "gradescope-autograder", "-h"]])
def test_short_and_long_help_everywhere(args):
    result = runner.invoke(app, args, prog_name="grade")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: grade")
    # readable metavars: no Typer type labels nor braces
    assert "<list[" not in result.output and "{" not in result.output and "<str>" not in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"grade {__version__}\n")


def test_show_completion_prints_a_bash_completion_script():
    result = runner.invoke(app, ["--show-completion", "bash"], prog_name="grade")
    assert result.exit_code == 0, result.output
    assert "complete -o default -F _grade_completion grade" in result.output


def test_help_lists_the_choices():
    text = runner.invoke(app, ["repo", "-h"]).output
    assert "<local|compose|auto>" in text and "<instructor|student>" in text
    assert "<terminal|classroom|html|json|markdown|text>" in text
    assert "GRADE_BACKEND" in text and "GRADE_RUBRIC" in text
    assert "<prairielearn-csv>" in runner.invoke(app, ["batch", "-h"]).output
    assert "GRADE_JOBS" in runner.invoke(app, ["batch", "-h"]).output


def test_an_unknown_choice_is_refused_before_grading():
    result = runner.invoke(app, ["/nonexistent/repo", "-f", "pdf"])
    assert result.exit_code == EXIT_USAGE and "'pdf' is not one of" in result.output


@pytest.mark.parametrize("variable, value, needle", [
    ("GRADE_BACKEND", "docker", "'docker' is not one of 'local', 'compose', 'auto'"),
    ("GRADE_RUBRIC", "/nonexistent/rubric.yaml", "/nonexistent/rubric.yaml: cannot read rubric"),
])
def test_environment_equivalents(variable, value, needle):
    result = runner.invoke(app, ["/nonexistent/repo"], env={variable: value})
    assert result.exit_code == EXIT_USAGE and needle in result.output


def test_grade_jobs_from_the_environment(tmp_path):
    result = runner.invoke(app, ["batch", str(tmp_path / "roster.csv")], env={"GRADE_JOBS": "0"})
    assert result.exit_code == EXIT_USAGE and "--jobs must be at least 1" in result.output


def test_stdout_takes_exactly_one_report_file():
    result = runner.invoke(app, ["/nonexistent/repo", "-f", "json", "-f", "html", "-o", "-"])
    assert result.exit_code == EXIT_USAGE and "-o - writes one report file to stdout" in result.output


@pytest.fixture
def graded(monkeypatch):
    """``grade`` returns a scored report without running a grading (the routing of the output
    is under test here; tests/test_cli_output.py runs real gradings)."""
    report = sample_report(failed=("ex6.json_logs",))
    monkeypatch.setattr("grader.cli.grade", lambda request, progress=None: report)
    return report


def test_json_on_stdout_alone(graded):
    result = runner.invoke(app, ["/some/repo", "-f", "json", "-o", "-"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["points"] == graded.points
    assert verdict_line(graded) not in result.stdout


def test_quiet_prints_the_verdict_line_only(graded, tmp_path):
    result = runner.invoke(app, ["/some/repo", "-q", "-f", "json", "-o", str(tmp_path)])
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == (verdict_line(graded) + "\n", "")
    assert (tmp_path / "grade-report.instructor.json").is_file()


def test_check_keeps_its_output_folder_out_of_git(graded, tmp_path):
    out = tmp_path / "grading-output"
    result = runner.invoke(app, ["check", str(tmp_path), "-q", "-f", "markdown", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / ".gitignore").read_text() == "*\n"
    assert (out / "grade-report.student.md").is_file()


def test_classroom_format(graded):
    result = runner.invoke(app, ["/some/repo", "-f", "classroom", "-o", "-",
                                                      "--audience", "student"])
    data = json.loads(result.stdout)
    assert (data["version"], data["status"], data["max_score"]) == (1, "pass", 100)
    assert sum(test["score"] for test in data["tests"]) == graded.points == 93
    failed = [test for test in data["tests"] if test["status"] != "pass"]
    assert [test["name"] for test in failed] == ["ex6 Every log line is a JSON object with timestamp, level, message"]
