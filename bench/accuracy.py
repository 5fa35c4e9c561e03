"""Expected (manifest) vs graded, for every fixture: the grader's accuracy table.

    uv run python bench/accuracy.py [FIXTURE ...] [--workers N]

Prints one row per fixture (expected and graded points, mismatching checks) and the wall
time; exits 1 when anything differs from fixtures/manifest.yaml.
"""

from __future__ import annotations

import argparse
import time

from fixtures.accuracy import grade_fixtures, mismatches
from fixtures.manifest import expected_total, fixture, load_manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--only", action="append", help="grade only these exercises (repeatable)")
    args = parser.parse_args()
    names = args.names or sorted(load_manifest().fixtures)
    started = time.monotonic()
    graded = grade_fixtures(names, workers=args.workers, only=frozenset(args.only) if args.only else None)
    wall = time.monotonic() - started
    print("| fixture | expected | graded | mismatches |\n|---|---|---|---|")
    failures = 0
    for item in graded:
        found = mismatches(item)
        failures += bool(found)
        expected = ("could not grade" if fixture(item.name).could_not_grade
                    else f"{expected_total(item.name):g}")
        got = f"{item.report.points:g}" if item.report else f"could not grade ({item.could_not_grade})"
        detail = "; ".join(f"{m.item}: expected {m.expected}, got {m.graded}"
                           + (f" ({m.reason[:160]})" if m.reason else "") for m in found) or "none"
        print(f"| {item.name} | {expected} | {got} | {detail} |")
    print(f"\n{len(graded)} fixtures graded in {wall:.0f}s with {args.workers} at a time; "
          f"{failures} differ from the manifest")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
