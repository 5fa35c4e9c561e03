"""Throughput of a class batch: submissions graded per minute, on the manifest's mix.

    uv run python bench/batch.py [--jobs 2] [--count N] [--compare-one-job]

Grades every fixture of the manifest once (or the first ``--count`` of them, in manifest
order: reference, starter, near misses, broken and hostile submissions alike) as one batch
with ``--jobs`` workers, into a fresh folder, and prints the wall time and the submissions
graded per minute (target on the 2-core machine with --jobs 2: at least 2), with the slowest
submissions. ``--compare-one-job`` grades the same batch again with one job, for the speed-up.
Hostile fixtures are included only where every protection of the sandbox is available.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fixtures.build import build_fixture
from fixtures.manifest import load_manifest
from grader.batch.runner import BatchOptions, run_batch
from grader.pipeline import GradeRequest, grade
from grader.sandbox import detect


def _batch(roster: Path, out: Path, jobs: int, require_sandbox: bool) -> float:
    started = time.monotonic()
    result = run_batch(BatchOptions(roster=roster, out=out, jobs=jobs, require_sandbox=require_sandbox))
    wall = time.monotonic() - started
    rate = len(result.records) / (wall / 60)
    print(f"--jobs {jobs}: {len(result.records)} submissions in {wall:.0f} s: {rate:.2f} per minute "
          f"({result.errors} could not be graded)", flush=True)
    slowest = sorted(result.records, key=lambda record: -record.duration_s)[:5]
    print("  slowest: " + ", ".join(f"{r.student_id} {r.duration_s:.0f}s" for r in slowest), flush=True)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--count", type=int, default=None, help="grade only the first N fixtures")
    parser.add_argument("--compare-one-job", action="store_true")
    args = parser.parse_args()
    sandboxed = not detect().missing
    names = [name for name, expected in load_manifest().fixtures.items() if sandboxed or not expected.needs_sandbox]
    names = names[:args.count] if args.count else names
    urls = {name: f"file://{build_fixture(name)}" for name in names}
    grade(GradeRequest(source=urls[names[0]], only=frozenset({"ex1"}), with_diff=False))  # warm the venv cache
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        roster = Path(tmp) / "roster.csv"
        roster.write_text("student_id,repo_url\n" + "".join(f"{name},{url}\n" for name, url in urls.items()))
        wall = _batch(roster, Path(tmp) / "jobs", args.jobs, sandboxed)
        if args.compare_one_job:
            alone = _batch(roster, Path(tmp) / "one-job", 1, sandboxed)
            print(f"speed-up of --jobs {args.jobs} over one job: x{alone / wall:.2f}")


if __name__ == "__main__":
    main()
