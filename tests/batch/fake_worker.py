"""A stand-in for ``grader.batch.worker`` (same arguments, same result file), fast and scripted.

The student id decides: ``hang*`` sleeps forever, ``crash*`` exits 1 with a message, ``nograde*``
could not be graded, any other is graded with a report whose ex1 points depend on the id.
Every run appends the id to ``$FAKE_WORKER_LOG`` (to count gradings).
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grader.records import write_atomic  # noqa: E402
from grader.batch.job import WorkerJob, WorkerResult  # noqa: E402
from grader.checks import CHECKS  # noqa: E402
from tests.batch.samples import sample_report  # noqa: E402


def main(job_path: str, result_path: str) -> int:
    job = WorkerJob.model_validate_json(Path(job_path).read_text(encoding="utf-8"))
    if os.environ.get("FAKE_WORKER_LOG"):
        with open(os.environ["FAKE_WORKER_LOG"], "a", encoding="utf-8") as log:
            log.write(job.student_id + "\n")
    print('{"stage": "pretending to grade"}', flush=True)
    sid = job.student_id
    if sid.startswith("hang"):
        time.sleep(3600)
    if sid.startswith("crash"):
        print("Traceback: something broke in the grader", file=sys.stderr)
        return 1
    if sid.startswith("nograde"):
        result = WorkerResult(reason=f"repository not found: {job.source}")
    else:
        ex1 = sorted(c for c, spec in CHECKS.items() if spec.exercise == "ex1")
        failed = tuple(ex1[: zlib.crc32(sid.encode()) % (len(ex1) + 1)])
        report = sample_report(failed=failed, only=set(job.only) if job.only else None, sha="1" * 40)
        result = WorkerResult(report=report, commit_sha="1" * 40,
                              fingerprint=tuple(f"{zlib.crc32((sid + str(i)).encode()):016x}" for i in range(20)))
    write_atomic(Path(result_path), result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
