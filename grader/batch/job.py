"""What the batch tells a worker (``WorkerJob``) and what the worker answers (``WorkerResult``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from grader.models import GradeReport


class WorkerJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    student_id: str
    source: str
    ref: str | None = None
    deadline: datetime | None = None
    rubric_path: str
    only: tuple[str, ...] | None = None
    backend: str = "local"
    require_sandbox: bool = False


class WorkerResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    report: GradeReport | None = None
    reason: str | None = None  # could not grade
    commit_sha: str | None = None
    fingerprint: tuple[str, ...] = ()
