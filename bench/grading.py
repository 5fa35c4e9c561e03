"""How long a grading takes against its floor: the reference and the starter, in one run.

    uv run python bench/grading.py [--rounds 1]

Prints three figures, measured in the same run so the machine's load weighs on all alike:
- the grading's floor, computed from the rubric's own settings: the longest wait the checks
  must sit through (the hang bound, ``ex3.hang_limit_s``) plus one API start, measured here;
- the wall time of a full grading of the reference (every check passes);
- the wall time of a full grading of the starter made to start (every dynamic check fails),
each with its ratio to the floor, and the starter's to the reference's. Targets (issue 13):
reference within 1.5x the floor, starter within 1.3x the reference. Also: each scenario's
own time, and the CPU seconds of every process of the grading by kind.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from fixtures.build import build_fixture
from grader.cache import default_cache_root
from grader.models import CheckResult
from grader.pipeline import DEFAULT_RUBRIC, GradeRequest, grade
from grader.rubric import load_rubric
from grader.scenarios import scenario_settings
from grader.stack.local import LocalBackend


class _Timing:
    """Progress that notes when each scenario ended."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.took: dict[str, float] = {}

    def stage(self, message: str) -> None:
        pass

    def scenario_started(self, exercise: str) -> None:
        pass

    def scenario_finished(self, exercise: str, checks: list[CheckResult]) -> None:
        self.took[exercise] = time.monotonic() - self.started


class _CpuSampler:
    """CPU seconds of this process's descendants, by kind, sampled while a grading runs."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "_CpuSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for process in me.children(recursive=True):
                try:
                    times, command = process.cpu_times(), " ".join(process.cmdline())
                except psutil.Error:
                    continue
                self._seen[process.pid] = (_kind(command), times.user + times.system)
            time.sleep(0.3)

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for kind, seconds in self._seen.values():
            totals[kind] += seconds
        return dict(totals)


def _kind(command: str) -> str:
    for marker, kind in (("main:app", "API"), ("grader.stack.services", "stand-ins"), ("mlflow", "MLflow"),
                         ("stack_phase", "stack phase"), ("uv", "install")):
        if marker in command:
            return kind
    return "other"


def _api_starts_s(path: Path, count: int) -> list[float]:
    """Seconds until the reference's API answers HTTP, ``count`` times, each in a fresh stack
    of one local backend (venv cached, MLflow up), one after another."""
    with tempfile.TemporaryDirectory(prefix="bench-start-") as work:
        with LocalBackend(path, Path(work), default_cache_root()) as backend:
            seconds = []
            for n in range(count):
                with backend.open_stack(f"bench-{n}") as stack:
                    api = stack.start_api()
                    try:
                        if not api.wait_until_serving(120):
                            raise SystemExit(f"the reference did not start: {api.startup_failure_reason()}")
                        seconds.append(time.time() - api.started_at)
                    finally:
                        api.kill()
            return seconds


def _grade(name: str) -> tuple[float, float, dict[str, float], dict[str, float]]:
    timing = _Timing()
    with _CpuSampler() as cpu:
        started = time.monotonic()
        report = grade(GradeRequest(source=str(build_fixture(name)), with_diff=False), timing)
        wall = time.monotonic() - started
    return wall, report.points, timing.took, cpu.by_kind()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="gradings of each fixture (the median is used)")
    args = parser.parse_args()
    reference = build_fixture("reference")
    grade(GradeRequest(source=str(reference), only=frozenset({"ex1"}), with_diff=False))  # warm the venv cache
    hang_bound = scenario_settings("ex3", load_rubric(DEFAULT_RUBRIC).exercises["ex3"].settings).hang_limit_s
    start = statistics.median(_api_starts_s(reference, 3))
    floor = start + hang_bound
    walls: dict[str, list[float]] = {"reference": [], "starter": []}
    for _ in range(args.rounds):
        for name in walls:
            wall, points, took, cpu = _grade(name)
            walls[name].append(wall)
            scenarios = ", ".join(f"{ex} {seconds:.0f}s" for ex, seconds in sorted(took.items()))
            cpus = ", ".join(f"{kind} {seconds:.0f}" for kind, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]))
            print(f"{name}: {points:g} points in {wall:.0f}s (scenarios done at: {scenarios}); "
                  f"CPU-s {sum(cpu.values()):.0f} ({cpus})", flush=True)
    ref, starter = (statistics.median(walls[name]) for name in ("reference", "starter"))
    print()
    print("| what | seconds | ratio |")
    print("|---|---|---|")
    print(f"| floor: one API start ({start:.1f} s) + the hang bound ({hang_bound:.0f} s) | {floor:.0f} | 1.00 |")
    print(f"| reference (every check passes) | {ref:.0f} | {ref / floor:.2f} x floor (target <= 1.5) |")
    print(f"| starter made to start (every dynamic check fails) | {starter:.0f} | {starter / floor:.2f} x floor, "
          f"{starter / ref:.2f} x reference (target <= 1.3) |")


if __name__ == "__main__":
    main()
