"""One submission graded on the local backend and on the compose backend, in the same run.

    uv run python bench/backends.py [FIXTURE] [ROUNDS]     (defaults: reference, 1)

Caches are warmed first (the venv, the offline images, the submission's image), so the
figures are grading times, not install or build times. The backends alternate, so a change
in the machine's load falls on both; compare the ratio, not the seconds.
"""

from __future__ import annotations

import statistics
import sys
import time

from fixtures.build import build_fixture
from grader.pipeline import GradeRequest, grade
from grader.stack.compose.engine import engine_problem
from grader.stack.compose.images import missing_requirements

BACKENDS = ("local", "compose")


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "reference"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if problem := engine_problem() or missing_requirements():
        sys.exit(f"compose backend unavailable here: {problem}")
    path = str(build_fixture(name))
    for backend in BACKENDS:  # warm-up: venv, images, the submission's image
        grade(GradeRequest(source=path, backend=backend, only=frozenset({"ex1"})))
    walls: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
    points: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
    for _ in range(rounds):
        for backend in BACKENDS:
            started = time.monotonic()
            report = grade(GradeRequest(source=path, backend=backend))
            walls[backend].append(time.monotonic() - started)
            points[backend].append(report.points)
    print(f"fixture {name}, {rounds} round(s), warm caches")
    print(f"{'backend':<10}{'median s':>10}{'runs':>30}{'points':>20}")
    for backend in BACKENDS:
        runs = ", ".join(f"{wall:.0f}" for wall in walls[backend])
        print(f"{backend:<10}{statistics.median(walls[backend]):>10.1f}{runs:>30}"
              f"{', '.join(f'{p:g}' for p in points[backend]):>20}")
    ratio = statistics.median(walls["compose"]) / statistics.median(walls["local"])
    print(f"compose / local: {ratio:.2f}")


if __name__ == "__main__":
    main()
