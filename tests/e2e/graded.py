"""What the end-to-end stage grades: the manifest's fixtures, as one class batch.

Shared by every e2e module through the session-scoped fixtures of ``conftest.py``, so the
manifest is graded once per session whatever the modules that read it.
"""

from __future__ import annotations

import uuid

from fixtures.manifest import load_manifest
from grader.checks import EXERCISES
from grader.sandbox import detect

MANIFEST = load_manifest()
SANDBOX_MISSING = detect().missing
GRADED = sorted(name for name, expected in MANIFEST.fixtures.items()
                if not (expected.needs_sandbox and SANDBOX_MISSING))
REPEATED = "reference"
# only-exK on exK: the exercises it leaves broken fail in all-but-exJ and the starter, graded
# whole. The hostile fixtures on an exercise where their hostility shows: each starts the API
# several times (at import they snoop, list, fork, allocate, write, forge), ex2 is what the
# forgery claims, ex5 and ex6 record the bodies that carry the markup. An API that never serves
# fails every exercise alike (ex1 shows it); a signal ignored shows in ex2, a flood in ex6's logs.
PARTIAL = {**{f"only-{ex}": frozenset({ex}) for ex in EXERCISES},
           **dict.fromkeys(["snoops", "lists-network", "forks-without-bound", "allocates-without-bound",
                            "writes-gigabytes", "never-binds", "exits-at-once", "broken-syntax",
                            "broken-import"], frozenset({"ex1"})),
           "forges-results": frozenset({"ex2"}), "hostile-output": frozenset({"ex5", "ex6"}),
           "ignores-sigterm": frozenset({"ex2"}), "floods-stdout": frozenset({"ex6"})}
CANARY = ("GRADER_CANARY_TOKEN", f"canary-{uuid.uuid4().hex}")
