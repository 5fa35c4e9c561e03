"""Rescoring a class against grading it afresh under the new rubric: the week after grading.

    uv run python bench/rescore.py --rubric NEW.yaml [--jobs 2] [--graded A --fresh B]

Grades a batch of manifest fixtures (whole where the e2e grades them whole, else on the
exercises it grades them on) under the course's rubric (A) and again under ``--rubric`` (B),
then times ``grade rescore A --rubric NEW.yaml`` as a user runs it (a process of its own) and
prints, per student, the rescored total, band and pass beside B's: they must agree for every
record (target: under 10 s for 20+ records); it exits 1 when one does not. ``--graded``/``--fresh`` reuse two batch folders
already graded that way instead of grading them again (about nine minutes each on two cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.batch.runner import BatchOptions, run_batch
from grader.pipeline import DEFAULT_RUBRIC
from grader.records import read_records
from tests.e2e.graded import write_roster

# Twelve whole gradings (passing, failing, broken, odd) and ten near misses, one exercise each.
FIXTURES = ("reference", "second-solution", "starter", "handout", "broken-import", "broken-syntax", "exits-at-once",
            "ignores-sigterm", "odd-files", "no-src-api", "empty-repo", "symlink-escape",
            "near-miss-ex1.cors", "near-miss-ex1.fail_fast", "near-miss-ex2.drain", "near-miss-ex3.timeout",
            "near-miss-ex3.breaker_opens", "near-miss-ex4.retry_transient", "near-miss-ex4.error_body",
            "near-miss-ex5.names_down", "near-miss-ex6.json_logs", "near-miss-ex6.request_id")


def _graded(roster: Path, out: Path, rubric: Path, jobs: int) -> Path:
    started = time.monotonic()
    run_batch(BatchOptions(roster=roster, out=out, rubric_path=rubric, jobs=jobs))
    print(f"graded {out} under {rubric.name} in {time.monotonic() - started:.0f} s", flush=True)
    return out


def _headline(report) -> tuple | None:
    return None if report is None else (report.points, report.band, report.passed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rubric", type=Path, required=True, help="the new rubric")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--graded", type=Path, help="a batch folder graded under the course's rubric")
    parser.add_argument("--fresh", type=Path, help="the same roster graded under --rubric")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-rescore-"))
    if args.graded is None or args.fresh is None:
        roster = write_roster(work / "roster.csv", {name: name for name in FIXTURES})
        graded = _graded(roster, work / "graded", DEFAULT_RUBRIC, args.jobs)
        fresh = _graded(roster, work / "fresh", args.rubric, args.jobs)
    else:
        graded, fresh = args.graded, args.fresh
    rescored = work / "rescored"
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "grade"), "rescore", str(graded), "--rubric", str(args.rubric),
                    "-o", str(rescored)], check=True, stdout=subprocess.DEVNULL)
    took = time.monotonic() - started
    new = {record.student_id: _headline(record.report) for record in read_records([rescored])}
    expected = {record.student_id: _headline(record.report) for record in read_records([fresh])}
    for student in sorted(expected):
        mark = "same" if new.get(student) == expected[student] else "DIFFERENT"
        print(f"{student:32} rescored {new.get(student)}  fresh {expected[student]}  {mark}")
    agree = sum(new.get(student) == headline for student, headline in expected.items())
    print(f"rescore of {len(new)} records: {took:.1f} s (target under 10 s); "
          f"{agree}/{len(expected)} agree with the fresh grading")
    if agree < len(expected):
        raise SystemExit(1)  # a rescore that disagrees with grading afresh is a failed benchmark


if __name__ == "__main__":
    main()
