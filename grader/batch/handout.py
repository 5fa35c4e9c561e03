"""The handout as the near-copy baseline: ``OUT/handout.json``.

Code every student received is not evidence of copying. When the handout is known (``grade
batch --handout REPO`` or the rubric's ``handout:``), its fingerprint is what the near-copy
check removes; without it, the check guesses (code most submissions share) and the summary says
so. The fingerprint is kept in the batch folder, beside the records, so ``grade merge`` and a
re-run compute the same summary without fetching the handout again.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.batch.fingerprint import fingerprint
from grader.errors import UsageError
from grader.fetch import fetch
from grader.records import write_atomic

HANDOUT_FILE = "handout.json"


class HandoutBaseline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str  # as given (a URL's password removed by the caller)
    commit_sha: str | None
    fingerprint: tuple[str, ...]  # see grader.batch.fingerprint


def resolve_source(handout: str, rubric_path: Path) -> str:
    """A rubric's relative ``handout:`` path is relative to the rubric file's folder."""
    if "://" in handout or handout.startswith(("git@", "/")):
        return handout
    return str((rubric_path.parent / handout).resolve())


def capture_baseline(source: str, shown_as: str) -> HandoutBaseline:
    """Fetch the handout and fingerprint it; raises ``FetchError`` when it cannot be fetched."""
    workdir = Path(tempfile.mkdtemp(prefix="grade-handout-"))
    try:
        submission = fetch(source, workdir / "handout")
        return HandoutBaseline(source=shown_as, commit_sha=submission.commit_sha,
                               fingerprint=fingerprint(workdir / "handout"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def save_baseline(out: Path, baseline: HandoutBaseline) -> Path:
    path = out / HANDOUT_FILE
    write_atomic(path, baseline.model_dump_json(indent=2) + "\n")
    return path


def load_baseline(out: Path) -> HandoutBaseline | None:
    """The baseline kept in batch folder ``out``, or None when the batch had none."""
    path = out / HANDOUT_FILE
    if not path.is_file():
        return None
    try:
        return HandoutBaseline.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise UsageError(f"{path} is not a handout baseline ({exc.__class__.__name__}): delete it or "
                         "grade the batch again with --handout") from None


def merged_baseline(dirs: list[Path]) -> HandoutBaseline | None:
    """The one baseline of several batch folders (shards of one class), or None when none has one."""
    found = {str(d): baseline for d in dirs if (baseline := load_baseline(d)) is not None}
    if len({b.fingerprint for b in found.values()}) > 1:
        raise UsageError(f"the batch folders were graded against different handouts: {', '.join(found)}")
    return next(iter(found.values()), None)
