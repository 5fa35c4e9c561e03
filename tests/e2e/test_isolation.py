"""End to end: nothing a hostile submission does reaches the grader (issue 11).

The class batch of ``conftest.py`` grades every fixture, the hostile ones among them, with a
canary credential in the grader's environment and a local index serving a source-only package
whose build script writes wherever it can. After the batch:

- every hostile fixture is graded (never "could not grade"), and where it fails, the reason
  names what it did;
- the canary is in no file the batch wrote;
- the grader's own files and environment are as they were (``protected.py``), and the build
  script's marks are nowhere but in the venv built for that submission;
- nothing the batch started is still running.

Verdict by verdict, the same fixtures are compared with the manifest by test_manifest_accuracy.
"""

from __future__ import annotations

import os

import psutil
import pytest

from fixtures.escapes import ESCAPES, PLANTED_NAME
from fixtures.hostile import HOSTILE
from grader.cache import default_cache_root
from grader.models import CheckStatus
from grader.records import SubmissionStatus
from tests.e2e.graded import CANARY, GRADED, SANDBOX_MISSING
from tests.e2e.protected import differences, files_named, snapshot

HOSTILE_NAMES = sorted(name for name, *_ in HOSTILE + ESCAPES)
# Where a failed check must say why: a substring of its reason, for each check that fails.
REASONS = {
    "links-files-out": {
        "ex1.refuses_missing_secret": "src/api/requirements.txt is a symlink (not followed)",
        "ex1.env_example_secret_refused": ".env.example is a symlink (not followed)",
    },
    "links-src-out": {
        "ex1.refuses_missing_secret": "src/api/main.py: src is a symlink (not followed)",
        "ex1.no_hardcoded_secret": "src/api: src is a symlink (not followed)",
    },
    "nested-body": {"ex5.ready_when_up": "answered 200 but checks only nothing"},
    "endless-body": {"ex5.ready_when_up": "answered 200 but checks only nothing"},
}
# Deep enough for everything the sdist's build script walked (8 folders below /).
_PLANT_SEARCH_DEPTH = 9


def _records_by_fixture(batch, records):
    return {batch[1][record.student_id]: record for record in records}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_submission_is_graded_with_its_reason_named(batch, records, name):
    if name not in GRADED:
        pytest.skip(f"{name} needs every protection of the sandbox; missing: {'; '.join(SANDBOX_MISSING)}")
    record = _records_by_fixture(batch, records)[name]
    assert record.status is SubmissionStatus.GRADED, record.reason
    assert record.report is not None and record.reason is None
    checks = {check.check_id: check for exercise in record.report.exercises for criterion in exercise.criteria
              for check in criterion.checks}
    for check_id, reason in REASONS.get(name, {}).items():
        assert checks[check_id].status is CheckStatus.FAILED, (check_id, checks[check_id].reason)
        assert reason in checks[check_id].reason, (check_id, checks[check_id].reason)


def test_the_canary_is_in_no_output_of_the_batch(batch):
    out, _ = batch
    canary = CANARY[1].encode()
    leaked = [str(path) for path in out.rglob("*") if path.is_file() and canary in path.read_bytes()]
    logs = [path for path in (default_cache_root() / "venvs").glob("*.log") if canary in path.read_bytes()]
    assert not leaked and not logs, leaked + [str(path) for path in logs]


def test_the_graders_own_files_and_environment_are_unchanged(batch, protected_before):
    assert differences(protected_before, snapshot()) == []


def test_the_build_scripts_marks_are_only_in_the_venv_built_for_it(batch):
    if "sdist-writes-everywhere" not in GRADED:
        pytest.skip("the sdist fixture needs every protection of the sandbox")
    venvs = (default_cache_root() / "venvs").resolve()
    planted = files_named(PLANTED_NAME, _PLANT_SEARCH_DEPTH)
    assert planted, "the build script never ran: the fixture proves nothing"
    outside = [str(path) for path in planted if not path.resolve().is_relative_to(venvs)]
    assert outside == []


def test_nothing_the_batch_started_is_left_running(batch):
    """What the batch started carries the canary in its environment (the grader's processes) or
    names the batch's folder; the submissions' own processes died with the stack phase's PID
    namespace, which the canary-carrying phase process holds."""
    out, _ = batch
    left = []
    for process in psutil.process_iter(["pid", "cmdline", "environ"]):
        try:
            environ = process.info["environ"] or {}
            cmdline = " ".join(process.info["cmdline"] or [])
        except psutil.Error:
            continue
        if process.pid != os.getpid() and (environ.get(CANARY[0]) == CANARY[1] or str(out) in cmdline):
            left.append(f"{process.pid} {cmdline[:120]}")
    assert left == []
