"""The batch machinery. A scripted stand-in worker plays the grader's own failures (a hang, a
crash: the real grader cannot be made to fail on purpose) and counts re-runs; shards are
merged from real gradings."""

from __future__ import annotations

import sys
from xml.etree import ElementTree
from pathlib import Path

import pytest

from fixtures.build import build_fixture
from grader.batch.outputs import merge, write_outputs
from grader.records import SubmissionStatus, read_records, record_path
from grader.batch.roster import Shard
from grader.batch.runner import BatchOptions, run_batch

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))


@pytest.fixture(scope="module")
def repo_url() -> str:
    return f"file://{build_fixture('broken-import')}"  # a real repository: ls-remote names its tip


def _roster(tmp_path: Path, ids: list[str], url: str) -> Path:
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url\n" + "".join(f"{s},{url}\n" for s in ids), encoding="utf-8")
    return roster


def _options(roster: Path, out: Path, **kwargs) -> BatchOptions:
    # The stand-in worker runs nothing of a submission: no sandbox to require.
    return BatchOptions(roster=roster, out=out, worker_command=FAKE_WORKER,
                        **{"only": frozenset({"ex1"}), "jobs": 2, "timeout_s": 60, "require_sandbox": False, **kwargs})


def test_hang_crash_and_clone_failure_are_recorded_and_the_batch_goes_on(tmp_path, repo_url, monkeypatch):
    monkeypatch.setattr("grader.batch.runner.STOP_GRACE_S", 2.0)
    roster = _roster(tmp_path, ["hang1", "crash1", "nograde1", "ok1", "ok2"], repo_url)
    result = run_batch(_options(roster, tmp_path / "out", timeout_s=20))
    by_id = {r.student_id: r for r in result.records}
    assert set(by_id) == {"hang1", "crash1", "nograde1", "ok1", "ok2"}
    assert by_id["hang1"].status is SubmissionStatus.ERROR and "time limit" in by_id["hang1"].reason
    assert by_id["crash1"].status is SubmissionStatus.ERROR and "something broke" in by_id["crash1"].reason
    assert by_id["nograde1"].reason.startswith("repository not found")
    assert by_id["ok1"].status is SubmissionStatus.GRADED and by_id["ok1"].fingerprint
    assert by_id["ok1"].resolved_tip and by_id["ok1"].rubric_version
    for sid in by_id:  # every one written at once, as a file of its own
        assert record_path(tmp_path / "out", sid).is_file()


def test_rerun_skips_graded_and_retries_errors(tmp_path, repo_url, monkeypatch):
    log = tmp_path / "worker.log"
    monkeypatch.setenv("FAKE_WORKER_LOG", str(log))
    roster = _roster(tmp_path, ["ok1", "ok2", "nograde1"], repo_url)
    out = tmp_path / "out"
    first = run_batch(_options(roster, out))
    assert (first.graded, first.skipped) == (3, 0)
    second = run_batch(_options(roster, out))
    assert (second.graded, second.skipped) == (1, 2)
    assert sorted(log.read_text().split()) == ["nograde1", "nograde1", "ok1", "ok2"]
    # another exercise selection is another grading
    third = run_batch(_options(roster, out, only=frozenset({"ex1", "ex2"})))
    assert third.skipped == 0


@pytest.mark.slow
@pytest.mark.e2e  # eighteen real gradings: minutes, the long stage
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
def test_three_shards_merged_equal_one_unsharded_run(tmp_path):
    """Real gradings (the real worker, cheap submissions, ex1 only): sharding changes nothing."""
    fixtures = {"st01": "broken-import", "st02": "no-src-api", "st03": "exits-at-once",
                "st04": "broken-requirement", "st05": "empty-repo", "st06": "broken-import"}
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url\n" + "".join(
        f"{sid},file://{build_fixture(name)}\n" for sid, name in fixtures.items()), encoding="utf-8")
    real = {"only": frozenset({"ex1"}), "jobs": 2, "timeout_s": 600}
    whole = tmp_path / "whole"
    run_batch(BatchOptions(roster=roster, out=whole, **real))
    write_outputs(read_records([whole]), whole)
    shards = []
    for i in (1, 2, 3):
        shard_out = tmp_path / f"shard{i}"
        result = run_batch(BatchOptions(roster=roster, out=shard_out, shard=Shard(i, 3), **real))
        assert all(Shard(i, 3).holds(r.student_id) for r in result.records)
        shards.append(shard_out)
    records, _ = merge(shards, tmp_path / "merged")
    assert [r.student_id for r in records] == sorted(fixtures)
    assert (tmp_path / "merged" / "gradebook.csv").read_text() == (whole / "gradebook.csv").read_text()
    # The JUnit evidence quotes timings, which differ per run: compare the verdicts.
    assert _verdicts(tmp_path / "merged" / "exports" / "junit.xml") == _verdicts(whole / "exports" / "junit.xml")


def _verdicts(junit: Path) -> list[tuple[str, str, str]]:
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    return sorted((case.get("classname", ""), case.get("name", ""),
                   next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed"))
                  for case in cases)
