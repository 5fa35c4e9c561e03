"""Wall time of one full grading (warm caches) against the sum of its scenarios' own times.

    uv run python bench/grading.py [FIXTURE]      (default: reference)

The scenarios run concurrently, so the wall time should be close to the slowest scenario,
not to the sum. Target on the 2-core machine: under 60 s of scenarios.
"""

from __future__ import annotations

import sys
import time

from fixtures.build import build_fixture
from grader.models import CheckResult
from grader.pipeline import GradeRequest, grade


class TimingProgress:
    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.took: dict[str, float] = {}
        self.stages: list[tuple[str, float]] = []

    def stage(self, message: str) -> None:
        self.stages.append((message, time.monotonic()))

    def scenario_started(self, exercise: str) -> None:
        self.started[exercise] = time.monotonic()

    def scenario_finished(self, exercise: str, checks: list[CheckResult]) -> None:
        self.took[exercise] = time.monotonic() - self.started[exercise]


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "reference"
    path = build_fixture(name)
    grade(GradeRequest(source=str(path), only=frozenset({"ex1"})))  # warm the venv cache
    progress = TimingProgress()
    started = time.monotonic()
    report = grade(GradeRequest(source=str(path)), progress)
    wall = time.monotonic() - started
    scenarios_began = progress.stages[-1][1]
    print(f"fixture {name}: {report.points:g}/{report.max_points:g}")
    print(f"{'scenario':<10}{'seconds':>10}")
    for exercise, took in sorted(progress.took.items()):
        print(f"{exercise:<10}{took:>10.1f}")
    print(f"{'sum':<10}{sum(progress.took.values()):>10.1f}   (the scenarios one after another)")
    print(f"{'wall':<10}{wall:>10.1f}   (whole grading, warm venv; {scenarios_began - started:.1f} s"
          f" of it before the scenarios: fetch, diff, MLflow start)")


if __name__ == "__main__":
    main()
