"""The grader's identity: what its code hash counts, and the batch re-run it decides (a changed
grader regrades every row and says why; ``--force`` and ``--student`` regrade on request)."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import pytest

from grader import __version__
from grader.batch.runner import run_batch
from grader.errors import UsageError
from grader.identity import PACKAGE_DIR, code_hash, grader_identity, rubric_hash, settings_hash
from grader.rubric import load_rubric
from tests.batch.samples import ROOT, RUBRIC
from tests.batch.test_runner import _options, _roster, repo_url  # noqa: F401 (a fixture)

SCENARIO = Path("scenarios") / "ex3_timeouts.py"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    copy = tmp_path / "grader"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_version_is_the_package_metadata():
    assert __version__ == metadata.version("llmops-grader") == grader_identity(RUBRIC).version


def test_a_comment_does_not_change_the_code_hash_and_code_does(package):
    before = code_hash(package)
    assert before == code_hash(PACKAGE_DIR)
    scenario = package / SCENARIO
    source = scenario.read_text(encoding="utf-8")
    scenario.write_text(f"# a comment only\n{source}# and another one\n", encoding="utf-8")
    assert code_hash(package) == before
    scenario.write_text(source + "\nSTRICTER = True\n", encoding="utf-8")
    assert code_hash(package) != before


def test_a_compose_file_counts_and_a_report_template_does_not(package):
    before = code_hash(package)
    template = package / "report" / "templates" / "report.md.j2"
    template.write_text(template.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert code_hash(package) == before
    compose = package / "stack" / "compose" / "offline.yml"
    compose.write_text(compose.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert code_hash(package) != before


def test_the_rubric_hash_ignores_yaml_comments_and_the_settings_hash_sees_only_what_checks_run_with(tmp_path):
    text = (ROOT / "rubrics" / "llmops-exam.yaml").read_text(encoding="utf-8")
    commented = tmp_path / "commented.yaml"
    commented.write_text("# reworded\n" + text, encoding="utf-8")
    assert rubric_hash(load_rubric(commented)) == rubric_hash(RUBRIC)
    pass_mark = tmp_path / "pass-mark.yaml"
    pass_mark.write_text(text.replace("pass_mark: 60", "pass_mark: 80"), encoding="utf-8")
    moved = load_rubric(pass_mark)
    assert rubric_hash(moved) != rubric_hash(RUBRIC) and settings_hash(moved) == settings_hash(RUBRIC)
    limits = tmp_path / "limits.yaml"
    limits.write_text(text.replace("pass_mark: 60", "pass_mark: 60\nlimits: {install_s: 300}"), encoding="utf-8")
    assert settings_hash(load_rubric(limits)) != settings_hash(RUBRIC)


def test_a_changed_grader_regrades_every_row_and_says_why(tmp_path, repo_url, monkeypatch):  # noqa: F811
    log = tmp_path / "worker.log"
    monkeypatch.setenv("FAKE_WORKER_LOG", str(log))
    roster = _roster(tmp_path, ["ok1", "ok2"], repo_url)
    out = tmp_path / "out"
    first = run_batch(_options(roster, out))
    assert (first.graded, first.regraded) == (2, {})
    assert {r.identity for r in first.records} == {grader_identity(RUBRIC)}
    assert run_batch(_options(roster, out)).skipped == 2  # the same grader keeps every grade

    changed = grader_identity(RUBRIC).model_copy(update={"code": "0" * 16})
    monkeypatch.setattr("grader.batch.runner.grader_identity", lambda rubric: changed)
    second = run_batch(_options(roster, out))
    assert second.graded == 2
    assert set(second.regraded) == {"ok1", "ok2"}
    assert all(why.startswith("grader code changed") for why in second.regraded.values()), second.regraded
    assert run_batch(_options(roster, out)).skipped == 2  # now graded by the changed grader
    assert log.read_text().split().count("ok1") == 2


def test_student_regrades_only_those_rows_and_force_regrades_all(tmp_path, repo_url, monkeypatch):  # noqa: F811
    log = tmp_path / "worker.log"
    monkeypatch.setenv("FAKE_WORKER_LOG", str(log))
    roster = _roster(tmp_path, ["ok1", "ok2"], repo_url)
    out = tmp_path / "out"
    run_batch(_options(roster, out))
    one = run_batch(_options(roster, out, students=frozenset({"ok2"})))
    assert [r.student_id for r in one.records] == ["ok2"]
    assert one.regraded == {"ok2": "regrade asked for"}
    forced = run_batch(_options(roster, out, force=True))
    assert forced.graded == 2 and forced.skipped == 0
    assert sorted(log.read_text().split()) == ["ok1", "ok1", "ok2", "ok2", "ok2"]
    with pytest.raises(UsageError, match="--student nobody: not in the roster"):
        run_batch(_options(roster, out, students=frozenset({"nobody", "ok1"})))
