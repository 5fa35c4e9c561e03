"""The CLI's contract: one clear line and the documented exit code for every kind of bad input."""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from grader.cli import EXIT_COULD_NOT_GRADE, EXIT_USAGE, app

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
    (["--backend", "docker"], "unknown backend"),
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
