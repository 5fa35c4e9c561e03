"""What the end-to-end stage grades: every fixture of the manifest, whole, as one class batch.

Shared by every e2e module through the session-scoped fixtures of ``conftest.py``, so the
manifest is graded once per session whatever the modules that read it.
"""

from __future__ import annotations

import os
import uuid

from fixtures.manifest import load_manifest
from grader.sandbox import detect

MANIFEST = load_manifest()
SANDBOX_MISSING = detect().missing
GRADED = sorted(name for name, expected in MANIFEST.fixtures.items()
                if not (expected.needs_sandbox and SANDBOX_MISSING))
REPEATED = "reference"
NEAR_MISS = "near-miss-"


def exercises_graded(name: str) -> tuple[str, ...] | None:
    """The exercises the stage grades for fixture ``name``; None: every one.

    A near miss (fixtures/near_misses.py) is the second solution plus one edit that breaks one
    criterion: it is graded on that criterion's exercise, where the edit must show, while its
    other exercises are the second solution's code, graded whole as ``second-solution``. Half an
    hour of CI saved on twenty-six gradings, at the price of not seeing an edit's effect on
    another exercise (each near miss's manifest entry reasons that there is none).
    """
    if name.startswith(NEAR_MISS):
        return (name.removeprefix(NEAR_MISS).split(".")[0],)
    return None
# The handout as students receive it, and made to start: each must score 0, every check failed or
# not gradable (a fixture of these names missing from the manifest is simply not checked).
STARTERS = frozenset({"starter", "handout"})
# CI treats a missing protection as a failure, never a reason to grade less (.ci/run installs them).
IN_CI = bool(os.environ.get("CI"))
CANARY = ("GRADER_CANARY_TOKEN", f"canary-{uuid.uuid4().hex}")
