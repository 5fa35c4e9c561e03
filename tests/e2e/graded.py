"""What the end-to-end stages grade: every fixture of the manifest, as two class batches.

CI's e2e stage grades one batch (``GRADED``); the release stage (``pytest -m release``) grades
the rest (``RELEASE_GRADED``): the twelve "only exercise k" and "all but exercise k" baselines
whole, and the reference twice more to show gradings are stable. Both stages together compare
every cell of the manifest; CI alone could not fit them in its time (about fifty whole gradings
at two a minute). Shared by every e2e module through the session-scoped fixtures of
``conftest.py``, so each batch is graded once per session whatever the modules that read it.
"""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path
from typing import Mapping

from fixtures.build import build_fixture
from fixtures.manifest import load_manifest
from grader.sandbox import detect

MANIFEST = load_manifest()
SANDBOX_MISSING = detect().missing
GRADABLE = sorted(name for name, expected in MANIFEST.fixtures.items()
                  if not (expected.needs_sandbox and SANDBOX_MISSING))
# The interaction baselines: each is graded whole, where one exercise's fix or defect decides
# another's checks (the manifest's ``# interaction:`` cells).
BASELINES = frozenset(name for name in MANIFEST.fixtures if name.startswith(("only-ex", "all-but-ex")))
GRADED = [name for name in GRADABLE if name not in BASELINES]
REPEATED = "reference"
RELEASE_GRADED = {name: name for name in GRADABLE if name in BASELINES} | {f"{REPEATED}.{n}": REPEATED for n in (2, 3)}
NEAR_MISS = "near-miss-"
# A hostile fixture is graded on the exercises where what it does shows, not whole: the rest of
# it is the reference, graded whole as ``reference``. At import or install (install, checkout
# walk, start-up, the static checks): ex1, which installs it and starts it several times.
_HOSTILE_EXERCISES = {
    **dict.fromkeys(("snoops", "lists-network", "forks-without-bound", "allocates-without-bound",
                     "writes-gigabytes", "links-files-out", "links-src-out", "sdist-writes-everywhere",
                     "configures-uv", "deep-tree", "creates-user-namespace"), ("ex1",)),
    "forges-results": ("ex2",),  # it forges ex2's results: ex2 must be graded to see them refused
    "nested-body": ("ex5",), "endless-body": ("ex5",),  # their readiness bodies
    "burns-cpu": ("ex3",),  # its burners beside ex3's timed checks
}


def exercises_graded(name: str) -> tuple[str, ...] | None:
    """The exercises the stages grade for fixture ``name``; None: every one (see also
    ``_HOSTILE_EXERCISES``).

    A near miss (fixtures/near_misses.py) is the second solution plus one edit that breaks one
    criterion: it is graded on that criterion's exercise, where the edit must show, while its
    other exercises are the second solution's code, graded whole as ``second-solution``. Half an
    hour of CI saved on twenty-six gradings, at the price of not seeing an edit's effect on
    another exercise (each near miss's manifest entry reasons that there is none).
    """
    if name.startswith(NEAR_MISS):
        return (name.removeprefix(NEAR_MISS).split(".")[0],)
    return _HOSTILE_EXERCISES.get(name)


def write_roster(roster: Path, students: Mapping[str, str]) -> Path:
    """``roster``, a ``grade batch`` roster of ``students`` (student id -> fixture), each row
    graded on the exercises ``exercises_graded`` gives its fixture."""
    with roster.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student_id", "repo_url", "exercises"])
        for student, name in students.items():
            writer.writerow([student, f"file://{build_fixture(name)}", " ".join(exercises_graded(name) or ())])
    return roster


# The handout as students receive it, and made to start: each must score 0, every check failed or
# not gradable (a fixture of these names missing from the manifest is simply not checked).
STARTERS = frozenset({"starter", "handout"})
# CI treats a missing protection as a failure, never a reason to grade less (.ci/run installs them).
IN_CI = bool(os.environ.get("CI"))
CANARY = ("GRADER_CANARY_TOKEN", f"canary-{uuid.uuid4().hex}")
