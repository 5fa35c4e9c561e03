"""The e2e stages' gradings of the manifest (CI's class batch, the release stage's), shared by every
e2e module (session scope)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.accuracy import Graded
from fixtures.index import hostile_index
from grader.batch.outputs import write_outputs
from grader.batch.runner import BatchOptions, run_batch
from grader.records import SubmissionRecord, read_records
from tests.e2e.graded import CANARY, GRADED, IN_CI, RELEASE_GRADED, SANDBOX_MISSING, write_roster
from tests.e2e.protected import snapshot

_E2E = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items) -> None:
    """Every e2e test is slow, and whichever runs first sets up the whole batch: many minutes,
    not the default 600 s."""
    for item in items:
        if item.path.is_relative_to(_E2E):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(4800))


@pytest.fixture(scope="session")
def protected_before() -> dict[str, tuple]:
    """The grader's own files and environment as they were before the batch (tests/e2e/protected.py)."""
    return snapshot()


def _grade_class(folder: Path, students: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """``students`` (student id -> fixture) graded as one ``grade batch``: its output folder, and
    ``students``."""
    if SANDBOX_MISSING and IN_CI:
        pytest.fail(f"CI grades the hostile fixtures, which need every protection: missing {'; '.join(SANDBOX_MISSING)}")
    roster = write_roster(folder / "roster.csv", students)
    with pytest.MonkeyPatch.context() as patch, hostile_index() as index:
        patch.setenv(*CANARY)  # what an instructor's shell holds: no submission may see it
        # The machine's configuration names one more index: the sdist fixture's plain requirement resolves there.
        patch.setenv("UV_EXTRA_INDEX_URL", index)
        # Protections required when all are here: the hostile fixtures are graded only with them.
        run_batch(BatchOptions(roster=roster, out=folder / "out", jobs=2, require_sandbox=not SANDBOX_MISSING))
    write_outputs(read_records([folder / "out"]), folder / "out")
    return folder / "out", students


def _by_fixture(students: dict[str, str], records: list[SubmissionRecord]) -> dict[str, list[Graded]]:
    """Fixture name -> its gradings among ``records``, as the accuracy helpers take them."""
    by_name: dict[str, list[Graded]] = {}
    for record in records:
        name = students[record.student_id]
        only = frozenset(record.only) if record.only is not None else None
        by_name.setdefault(name, []).append(Graded(name, record.report, record.reason, only))
    return by_name


@pytest.fixture(scope="session")
def batch(tmp_path_factory, protected_before) -> tuple[Path, dict[str, str]]:
    """CI's class batch (tests/e2e/graded.py GRADED): its output folder, and the fixture each student id stands for."""
    return _grade_class(tmp_path_factory.mktemp("class"), {name: name for name in GRADED})


@pytest.fixture(scope="session")
def records(batch) -> list[SubmissionRecord]:
    return read_records([batch[0]])


@pytest.fixture(scope="session")
def gradings(batch, records) -> dict[str, list[Graded]]:
    return _by_fixture(batch[1], records)


@pytest.fixture(scope="session")
def release_gradings(tmp_path_factory) -> dict[str, list[Graded]]:
    """The release stage's class batch (tests/e2e/graded.py RELEASE_GRADED), by fixture."""
    out, students = _grade_class(tmp_path_factory.mktemp("release-class"), RELEASE_GRADED)
    return _by_fixture(students, read_records([out]))
