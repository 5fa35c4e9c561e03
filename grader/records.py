"""What a batch keeps of one submission: ``OUT/submissions/<student_id>.json``.

A record holds the ``GradeReport`` (or the one-line reason it could not be graded), the
commit that was graded, the rubric and grader versions, and a compact fingerprint of the
student's code for the pairwise near-copy check. Every output of a batch (gradebook,
summary, exports) is computed from these files only, which is what makes ``grade merge``
of shard outputs give the same result as one unsharded run.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.models import GradeReport, GraderIdentity

RECORD_VERSION = 1
SUBMISSIONS_DIR = "submissions"


class SubmissionStatus(enum.StrEnum):
    GRADED = "graded"  # every criterion decided
    INCOMPLETE = "incomplete"  # graded, but the grader failed on some criterion: total is a lower bound
    ERROR = "error"  # could not grade (clone failed, grader crashed, time limit): never a 0


class SubmissionRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_version: int = RECORD_VERSION
    student_id: str
    source: str  # the roster's repo_url, any password removed
    ref: str | None = None
    deadline: datetime | None = None
    only: tuple[str, ...] | None = None  # the exercises graded (None: all)
    backend: str = "local"  # as asked for (--backend): the report's header says which one ran
    status: SubmissionStatus
    reason: str | None = None  # why it could not be graded (status error)
    commit_sha: str | None = None
    # What `git ls-remote` named before grading (the ref's tip, or the ref itself when it
    # is a full SHA): with the same ref and deadline, the same tip means the same commit.
    resolved_tip: str | None = None
    rubric_name: str
    rubric_version: str
    grader_version: str
    # What graded it (grader.identity): the skip rule compares it; None in older records.
    identity: GraderIdentity | None = None
    fingerprint: tuple[str, ...] = ()  # hashed shingles of src/api/**/*.py (see fingerprint.py)
    report: GradeReport | None = None
    started_at: datetime
    finished_at: datetime
    duration_s: float

    @property
    def points(self) -> float | None:
        return None if self.report is None else self.report.points


def status_of(report: GradeReport | None) -> SubmissionStatus:
    if report is None:
        return SubmissionStatus.ERROR
    return SubmissionStatus.GRADED if report.complete else SubmissionStatus.INCOMPLETE


def record_path(out_dir: Path, student_id: str) -> Path:
    return out_dir / SUBMISSIONS_DIR / f"{student_id}.json"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_record(out_dir: Path, record: SubmissionRecord) -> Path:
    path = record_path(out_dir, record.student_id)
    write_atomic(path, record.model_dump_json(indent=2) + "\n")
    return path


def read_record(path: Path) -> SubmissionRecord | None:
    """The record at ``path``, or None when it is absent or unreadable (then it is re-graded)."""
    try:
        return SubmissionRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None


def read_records(out_dirs: list[Path]) -> list[SubmissionRecord]:
    """Every record under ``DIR/submissions/`` of each directory, sorted by student id.

    A student present in several directories (overlapping shards, a re-run elsewhere) keeps
    the record that finished last.
    """
    found: dict[str, SubmissionRecord] = {}
    for out_dir in out_dirs:
        for path in sorted((out_dir / SUBMISSIONS_DIR).glob("*.json")):
            record = read_record(path)
            if record is None:
                continue
            kept = found.get(record.student_id)
            if kept is None or record.finished_at > kept.finished_at:
                found[record.student_id] = record
    return [found[key] for key in sorted(found)]


def append_event(log_path: Path, event: str, student_id: str, **fields: object) -> None:
    """Append one JSON line to the batch log (``OUT/batch-log.jsonl``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": datetime.now().astimezone().isoformat(timespec="seconds"),
                       "event": event, "student_id": student_id, **fields}, default=str)
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
