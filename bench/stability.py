"""The same commit graded N times gives the same result: the reference and the starter.

    uv run python bench/stability.py [--times 5] [--workers 2] [FIXTURE ...]

Prints, per fixture, the points of every grading, how many distinct verdict sets and credit
sets they gave, and every check that ever differed (a flaky check is credited, so it may
change the verdicts but never the credit). Exits 1 when the credit or points differ.
"""

from __future__ import annotations

import argparse
import time

from fixtures.accuracy import credits, grade_fixtures, verdicts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=["reference", "starter"])
    parser.add_argument("--times", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    graded = grade_fixtures([name for name in args.names for _ in range(args.times)], workers=args.workers)
    wall = time.monotonic() - started
    print("| fixture | points per grading | distinct verdict sets | distinct credit sets | checks that differed |")
    print("|---|---|---|---|---|")
    unstable = 0
    for name in args.names:
        runs = [item for item in graded if item.name == name]
        points = [f"{run.report.points:g}" if run.report else "could not grade" for run in runs]
        run_verdicts = [verdicts(run) for run in runs]
        seen = {check_id: {found.get(check_id, "missing") for found in run_verdicts} for check_id in run_verdicts[0]}
        credit_sets = len({tuple(sorted(credits(run).items())) for run in runs})
        verdict_sets = len({tuple(sorted(found.items())) for found in run_verdicts})
        unstable += credit_sets > 1 or len(set(points)) > 1
        shown = ", ".join(f"{check_id} ({'/'.join(sorted(statuses))})"
                          for check_id, statuses in seen.items() if len(statuses) > 1) or "none"
        print(f"| {name} | {' '.join(points)} | {verdict_sets} | {credit_sets} | {shown} |")
    print(f"\n{len(graded)} gradings in {wall:.0f}s, {args.workers} at a time; "
          f"{unstable} fixture(s) whose credit or points differed")
    raise SystemExit(1 if unstable else 0)


if __name__ == "__main__":
    main()
