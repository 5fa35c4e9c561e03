"""The grader's identity: which grader, with which rubric, produced a grading.

A batch re-run compares it with a record's to decide whether the grade still stands
(``grader.batch.runner.regrade_reason``), and ``grade rescore`` relies on it to know which
parts of a grading it may recompute without running anything. Four parts:

- ``version``: the installed package's version (``importlib.metadata``), else pyproject's
  (``grader.__version__``).
- ``code``: SHA-256 (first 16 hex digits) over every ``grader/**/*.py`` file, each taken as
  its path and ``ast.dump`` of its parsed source, so comments, blank lines and formatting do
  not count (docstrings do: they are part of the syntax tree); plus the raw bytes, with their
  path, of every other file under ``grader/`` outside ``grader/report/`` (the compose files
  the stack reads). This is coarser than "the code this grading ran": a code change in any
  module of the package (even the CLI or a report renderer) changes it and regrades a batch.
- ``rubric``: SHA-256 over the validated rubric (its model as JSON), so YAML comments and
  layout do not count; every number, title, hint and binding does.
- ``settings``: SHA-256 over the parts of the rubric that change what the checks observe or
  what the report carries besides scores (``limits``, each exercise's ``settings`` and
  ``files``, ``starter``). A rescore may change the rubric but never these.

Not hashed: ``reference_solution/`` (the diff stage's reference), Python and the machine.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from grader import __version__
from grader.models import GraderIdentity
from grader.rubric import Rubric

PACKAGE_DIR = Path(__file__).resolve().parent


def _digest(parts: list[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        # Length-prefixed, so no two different lists of parts hash alike.
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:16]


def code_hash(root: Path = PACKAGE_DIR) -> str:
    """The hash of the grader's code under ``root`` (see the module docstring for what counts)."""
    parts: list[bytes] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        relative = path.relative_to(root).as_posix().encode()
        if path.suffix == ".py":
            tree = ast.parse(path.read_bytes(), filename=str(path))
            parts += [relative, ast.dump(tree, include_attributes=False).encode()]
        elif not path.is_relative_to(root / "report"):  # templates render reports, decide nothing
            parts += [relative, path.read_bytes()]
    return _digest(parts)


def rubric_hash(rubric: Rubric) -> str:
    return _digest([rubric.model_dump_json().encode()])


def settings_hash(rubric: Rubric) -> str:
    ran_with = {
        "starter": rubric.starter,
        "limits": rubric.limits,
        "exercises": {ex_id: {"settings": ex.settings, "files": ex.files} for ex_id, ex in rubric.exercises.items()},
    }
    return _digest([json.dumps(ran_with, sort_keys=True).encode()])


def grader_identity(rubric: Rubric) -> GraderIdentity:
    """This grader's identity when grading with ``rubric``."""
    return GraderIdentity(version=__version__, code=code_hash(), rubric=rubric_hash(rubric),
                          settings=settings_hash(rubric))
