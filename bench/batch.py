"""Wall time of a batch with the default parallelism against the same batch one at a time.

    uv run python bench/batch.py [--count 12] [--only ex1] [--jobs N]

Grades ``--count`` fixture submissions (cycling through the fixtures below, each a separate
row) twice into fresh folders: with ``--jobs`` (default: the batch's default, half the cores;
2 when that is 1, as on a 2-core machine) and with one job. A full grading takes 1-2 minutes per submission, so the default run takes
many minutes; ``--only ex1`` makes it cheap. One warm-up grading fills the venv cache first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fixtures.build import build_fixture
from grader.batch.runner import BatchOptions, default_jobs, run_batch
from grader.pipeline import GradeRequest, grade

FIXTURES = ("reference", "starter", "only-ex1", "only-ex2", "only-ex3", "only-ex4", "only-ex5", "only-ex6",
            "all-but-ex1", "all-but-ex3", "broken-import", "no-src-api")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--only", action="append", help="grade only this exercise (repeatable)")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    args = parser.parse_args()
    if args.jobs == 1:  # the default on 2 cores: compare with 2 at once, or the bench says nothing
        print("default parallelism is 1 on this machine: comparing --jobs 2 with --jobs 1", flush=True)
        args.jobs = 2
    only = frozenset(args.only) if args.only else None
    urls = [f"file://{build_fixture(FIXTURES[n % len(FIXTURES)])}" for n in range(args.count)]
    grade(GradeRequest(source=urls[0], only=frozenset({"ex1"})))  # warm the venv cache
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        roster = Path(tmp) / "roster.csv"
        roster.write_text("student_id,repo_url\n" + "".join(f"s{n:02d},{url}\n" for n, url in enumerate(urls)))
        timings = {}
        for run, jobs in enumerate((args.jobs, 1)):
            started = time.monotonic()
            out = Path(tmp) / f"run{run}-jobs{jobs}"  # a fresh folder: nothing is skipped
            result = run_batch(BatchOptions(roster=roster, out=out, only=only, jobs=jobs))
            timings[jobs] = time.monotonic() - started
            print(f"--jobs {jobs}: {len(result.records)} submissions in {timings[jobs]:.0f} s "
                  f"({result.errors} could not be graded)", flush=True)
            for record in result.records:
                if record.reason:
                    print(f"  {record.student_id}: {record.reason}", flush=True)
    scope = f"--only {' '.join(sorted(only))}" if only else "full gradings"
    print(f"{args.count} submissions, {scope}: --jobs {args.jobs} {timings[args.jobs]:.0f} s, "
          f"--jobs 1 {timings[1]:.0f} s, speed-up x{timings[1] / timings[args.jobs]:.2f}")


if __name__ == "__main__":
    main()
