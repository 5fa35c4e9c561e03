"""The README's fresh-machine commands are the ones CI and docs/fresh_machine.py run."""

from __future__ import annotations

from tests.docs_scripts import ROOT, load_docs_script


def _fresh_machine():
    return load_docs_script("fresh_machine")


def test_the_readme_gives_a_newcomer_two_commands_that_set_up_and_run():
    commands = _fresh_machine().readme_commands()
    assert list(commands) == ["prerequisites", "grade", "test"]
    # Each sets itself up, never with a bare pip install (PEP 668 refuses it on stock distributions).
    assert commands["grade"].startswith("python3 -m venv ") and commands["test"].startswith("python3 -m venv ")
    assert "uv run grade " in commands["grade"] and "pytest" in commands["test"]


def test_ci_runs_the_readme_test_commands_verbatim():
    commands = _fresh_machine().readme_commands()
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    tests = commands["test"].splitlines()
    assert lines[-len(tests):] == tests
