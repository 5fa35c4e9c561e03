"""Grade one roster row in its own process: ``python -m grader.batch.worker JOB RESULT``.

The batch runs every submission in a worker so that a hang or a crash costs one submission,
never the batch: the parent can end a worker's whole process tree on its time limit. The
worker reads the job (JSON), prints progress as JSON lines on stdout, and writes its outcome
to RESULT (atomically): a ``GradeReport`` or the could-not-grade reason, the graded commit and
the code fingerprint. SIGTERM, or its parent dying, stops it cleanly (the pipeline's ExitStack
stops every process it started).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader.batch.fingerprint import fingerprint
from grader.batch.job import WorkerJob, WorkerResult
from grader.checkout import remove_tree
from grader.errors import GraderError
from grader.fetch import fetch
from grader.models import CheckResult
from grader.pipeline import GradeRequest, grade
from grader.records import write_atomic


def _emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


class _LineProgress:
    """``pipeline.Progress`` as JSON lines the parent turns into the submission's status."""

    def stage(self, message: str) -> None:
        _emit(stage=message)

    def scenario_started(self, exercise: str) -> None:
        pass

    def scenario_finished(self, exercise: str, checks: list[CheckResult]) -> None:
        passed = sum(check.status.credited for check in checks)
        _emit(stage=f"{exercise} done: {passed}/{len(checks)} checks passed")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _watch_parent(parent: int) -> None:
    """An orphaned worker (its batch was killed) stops instead of grading for nobody."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _fingerprint_of(job: WorkerJob, ref: str | None, workdir: Path) -> tuple[str | None, tuple[str, ...]]:
    checkout = workdir / "fingerprint"
    remove_tree(checkout)
    submission = fetch(job.source, checkout, ref=ref, deadline=job.deadline if ref == job.ref else None)
    try:
        return submission.commit_sha, fingerprint(checkout)
    finally:
        remove_tree(checkout)


def run_job(job: WorkerJob) -> WorkerResult:
    """Fetch once for the fingerprint, then grade; GraderError becomes the reason."""
    request = GradeRequest(source=job.source, ref=job.ref, deadline=job.deadline,
                           rubric_path=Path(job.rubric_path), backend=job.backend,
                           require_sandbox=job.require_sandbox,
                           only=frozenset(job.only) if job.only is not None else None)
    workdir = Path(tempfile.mkdtemp(prefix="grade-batch-"))
    try:
        _emit(stage="fetching")
        sha, shingles = _fingerprint_of(job, job.ref, workdir)
        report = grade(request, _LineProgress())
        graded = report.submission.commit_sha
        if graded and graded != sha:  # pushed to between the two fetches: fingerprint what was graded
            sha, shingles = _fingerprint_of(job, graded, workdir)
        return WorkerResult(report=report, commit_sha=graded, fingerprint=shingles)
    except GraderError as exc:
        return WorkerResult(reason=str(exc))
    finally:
        remove_tree(workdir)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m grader.batch.worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    job = WorkerJob.model_validate_json(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        result = run_job(job)
    except KeyboardInterrupt:
        print("worker interrupted: everything started was stopped", file=sys.stderr)
        return 130
    write_atomic(Path(argv[1]), result.model_dump_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
