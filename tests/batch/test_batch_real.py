"""``grade batch`` for real, as a subprocess, on cheap fixtures with ``--only ex1``: interrupted
half way and run again, no submission is graded twice and none is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from fixtures.build import build_fixture
from grader.records import SubmissionStatus, read_records
from tests.needs import unavailable

pytestmark = pytest.mark.slow

GRADE = [str(Path(sys.executable).with_name("grade"))]


def _events(out: Path) -> Counter[tuple[str, str]]:
    lines = (out / "batch-log.jsonl").read_text(encoding="utf-8").splitlines()
    return Counter((event["event"], event["student_id"]) for event in map(json.loads, lines))


@pytest.mark.e2e  # three batch runs of real gradings: minutes the ten-minute test command cannot spare; the long stage
@pytest.mark.release  # and beyond what CI can spare: run by hand before a release (README)
def test_interrupted_batch_resumes_without_regrading(tmp_path):
    url = f"file://{build_fixture('broken-import')}"
    students = ["s1", "s2", "s3"]
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url\n" + "".join(f"{s},{url}\n" for s in students)
                      + f"gone,file://{tmp_path}/missing-repo\n", encoding="utf-8")
    out = tmp_path / "out"
    command = [*GRADE, "batch", str(roster), "--out", str(out), "--only", "ex1", "--jobs", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    while not any(p.name != "gone.json" for p in (out / "submissions").glob("*.json")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() - started < 400, "no submission graded in 400 s"
        time.sleep(0.5)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert b"interrupted" in proc.stderr.read()
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running after Ctrl-C: {[p.pid for p in alive]}"
    first = {path.name: path.stat().st_mtime_ns for path in (out / "submissions").glob("*.json")}
    assert first and len(first) < len(students) + 1, "interrupted before the end"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 3, rerun.stderr  # 'gone' cannot be cloned: recorded, batch completes
    events = _events(out)
    for student in students:
        assert events[("graded", student)] == 1, events  # none graded twice, none lost
    assert events[("error", "gone")] >= 1
    for name, mtime in first.items():  # what was written stays as it was (bar the retried error)
        if name != "gone.json":
            assert (out / "submissions" / name).stat().st_mtime_ns == mtime
    records = {r.student_id: r for r in read_records([out])}
    assert set(records) == {*students, "gone"}
    assert records["gone"].status is SubmissionStatus.ERROR and "not found" in records["gone"].reason
    graded = records["s1"]
    assert graded.commit_sha == graded.resolved_tip and graded.fingerprint
    assert graded.report is not None and [e.exercise_id for e in graded.report.exercises] == ["ex1"]
    assert (out / "gradebook.csv").read_text().count("\n") == 5
    assert (out / "exports" / "gradescope" / "s2" / "results.json").is_file()

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)  # a third run grades nothing
    assert "3 kept" in again.stderr, again.stderr
    assert sum(n for (event, _), n in _events(out).items() if event == "graded") == 3


@pytest.mark.e2e  # builds the compose backend's images from Debian's packages: minutes, the long stage
def test_a_batch_grades_on_the_backend_it_is_given(tmp_path):
    from grader.stack.compose.engine import engine_problem
    from grader.stack.compose.images import missing_requirements

    problem = engine_problem() or missing_requirements()
    if problem:
        unavailable(f"compose backend unavailable here: {problem}")
    roster = tmp_path / "roster.csv"
    roster.write_text(f"student_id,repo_url\ns1,file://{build_fixture('no-src-api')}\n", encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run([*GRADE, "batch", str(roster), "--out", str(out), "--only", "ex1", "--backend", "compose"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    record = read_records([out])[0]
    assert record.backend == "compose" and record.report.isolation[0] == "backend: compose (asked for)"


def test_a_batch_refuses_an_unknown_backend_before_grading(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(f"student_id,repo_url\ns1,file://{build_fixture('no-src-api')}\n", encoding="utf-8")
    done = subprocess.run([*GRADE, "batch", str(roster), "--out", str(tmp_path / "out"), "--backend", "docker"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "'docker' is not one of 'local', 'compose', 'auto'" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "submissions").exists()
