"""End to end on the Docker engine: fixtures graded with ``--backend compose`` match the
manifest (which the local backend is held to in tests/e2e), and leave nothing behind.

The reference and the starter are graded whole; each "only exercise k fixed" fixture is
graded on exercise k (its other exercises are the starter's, graded just before): the same
per-criterion results as locally, in a third of the time. Skipped with the reason where no
engine answers or the images cannot be built.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from fixtures.accuracy import describe, grade_fixture, mismatches
from grader.checks import EXERCISES

from .support import engine_objects, require_compose

# Whole gradings on the engine: about half an hour, a release check (README), not in CI's stages.
pytestmark = [pytest.mark.slow, pytest.mark.release, pytest.mark.timeout(3000)]

GRADINGS = [("reference", None), ("starter", None)] + [(f"only-{ex}", frozenset({ex})) for ex in EXERCISES]


@pytest.fixture(scope="module")
def engine_before():
    require_compose()
    return engine_objects()


@pytest.fixture(scope="module")
def gradings(engine_before):
    """Every grading of GRADINGS, two at a time (as tests/e2e does on the local backend)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="compose-fixture") as pool:
        graded = pool.map(lambda item: grade_fixture(item[0], only=item[1], backend="compose"), GRADINGS)
        return {name: result for (name, _), result in zip(GRADINGS, graded)}


@pytest.mark.parametrize("name", [name for name, _ in GRADINGS])
def test_compose_grading_matches_the_manifest(gradings, name):
    graded = gradings[name]
    found = mismatches(graded)  # the first grading counts: a second try would hide a flaky verdict
    assert not found, describe(found)
    assert graded.report is not None and graded.report.isolation[0].startswith("backend: compose")
    if name == "reference":
        assert graded.report.points == graded.report.max_points == 100


def test_no_container_network_or_volume_is_left_behind(gradings, engine_before):
    assert engine_objects() == engine_before
