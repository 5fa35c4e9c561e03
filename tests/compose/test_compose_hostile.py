"""The hostile fixtures (fixtures/hostile.py, and fixtures/escapes.py's attacks on the grader)
graded with ``--backend compose`` on the exercises tests/e2e grades them on: the same verdicts
as the manifest holds the local backend to, every cell compared, with the canary in the
grader's environment and in no report, and nothing left on the engine. Two at a time, as
tests/e2e grades them locally."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from fixtures.accuracy import describe, grade_fixture, mismatches
from fixtures.escapes import ESCAPES
from fixtures.hostile import HOSTILE
from tests.e2e.graded import CANARY, exercises_graded

from .support import ProjectNames, require_compose

# Gradings on the engine: about half an hour, a release check (README), not in CI's stages.
pytestmark = [pytest.mark.slow, pytest.mark.release, pytest.mark.timeout(5400)]

# lists-network refuses to start when it sees any interface beyond loopback. That is the local
# sandbox's promise (a namespace with loopback alone); a compose API reaches its stand-ins over
# an internal network, so it sees one interface more and is sealed differently: not comparable.
# sdist-writes-everywhere's package is served by an index on the machine's loopback, which a
# compose build cannot reach by design (tests/compose/test_build.py shows it): its install fails
# there, where locally it installs and its build script's writes stay in its own venv.
NOT_COMPARABLE = {"lists-network", "sdist-writes-everywhere"}
NAMES = [name for name, *_ in (*HOSTILE, *ESCAPES) if name not in NOT_COMPARABLE]


def _graded_on(name: str) -> frozenset[str] | None:
    exercises = exercises_graded(name)
    return frozenset(exercises) if exercises else None


@pytest.fixture(scope="module")
def gradings():
    """Every fixture of NAMES graded, and the compose projects the gradings created."""
    require_compose()
    patch = pytest.MonkeyPatch()
    projects = ProjectNames(patch)
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="compose-hostile") as pool:
            patch.setenv(*CANARY)
            graded = dict(zip(NAMES, pool.map(
                lambda name: grade_fixture(name, only=_graded_on(name), backend="compose"), NAMES)))
        yield graded, projects
    finally:
        patch.undo()


@pytest.mark.parametrize("name", NAMES)
def test_compose_grades_the_hostile_fixture_as_the_manifest_says(gradings, name):
    graded = gradings[0][name]
    assert graded.report is not None, graded.could_not_grade
    assert graded.report.isolation[0].startswith("backend: compose")
    found = mismatches(graded)
    assert not found, describe(found)
    assert CANARY[1] not in graded.report.model_dump_json()


def test_nothing_of_theirs_is_left_on_the_engine(gradings):
    projects = gradings[1]
    assert projects.names and projects.left_behind() == {"containers": [], "networks": [], "volumes": []}
