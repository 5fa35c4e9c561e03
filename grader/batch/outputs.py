"""Everything a batch writes at its end (and ``grade merge`` writes), from the records only.

    OUT/gradebook.csv
    OUT/handout.json                     the near-copy baseline, when the handout was given
    OUT/summary.html
    OUT/exports/gradescope/<student_id>/results.json
    OUT/exports/prairielearn/<student_id>/results.json
    OUT/exports/junit.xml
    OUT/exports/prairielearn-scores.csv     with -f prairielearn-csv: PrairieLearn's manual-grading upload
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from grader.batch.handout import load_baseline, merged_baseline, save_baseline
from grader.batch.summary import render_summary
from grader.errors import UsageError
from grader.records import SubmissionRecord, read_records, write_atomic, write_record
from grader.report.exports import gradescope_results, prairielearn_results, render_junit, render_prairielearn_csv
from grader.report.gradebook import render_gradebook

# Exports written only when asked for (``-f``), by name: file under OUT/exports and renderer.
OPTIONAL_EXPORTS = {"prairielearn-csv": ("prairielearn-scores.csv", render_prairielearn_csv)}


def write_outputs(records: list[SubmissionRecord], out: Path, optional: frozenset[str] = frozenset()) -> list[Path]:
    """Write the gradebook, summary and exports of ``records`` under ``out``, plus the
    ``optional`` exports (names of ``OPTIONAL_EXPORTS``); returns the top files."""
    gradebook, summary, junit = out / "gradebook.csv", out / "summary.html", out / "exports" / "junit.xml"
    write_atomic(gradebook, render_gradebook(records))
    write_atomic(summary, render_summary(records, baseline=load_baseline(out)))
    write_atomic(junit, render_junit(records))
    for platform, render in (("gradescope", gradescope_results), ("prairielearn", prairielearn_results)):
        folder = out / "exports" / platform
        shutil.rmtree(folder, ignore_errors=True)  # no stale file of a student no longer here
        for record in records:
            write_atomic(folder / record.student_id / "results.json",
                         json.dumps(render(record), indent=2, ensure_ascii=False) + "\n")
    extras = []
    for name in sorted(optional):
        filename, render_extra = OPTIONAL_EXPORTS[name]
        extras.append(out / "exports" / filename)
        write_atomic(extras[-1], render_extra(records))
    return [gradebook, summary, junit, out / "exports" / "gradescope", out / "exports" / "prairielearn", *extras]


def merge(dirs: list[Path], out: Path,
          optional: frozenset[str] = frozenset()) -> tuple[list[SubmissionRecord], list[Path]]:
    """Gather the records of several batch outputs (e.g. shards) into ``out`` and write its outputs."""
    missing = [str(d) for d in dirs if not (d / "submissions").is_dir()]
    if missing:
        raise UsageError(f"not a batch output (no submissions/ folder): {', '.join(missing)}")
    records = read_records(dirs)
    baseline = merged_baseline(dirs)
    if baseline is not None:
        save_baseline(out, baseline)
    for record in records:
        write_record(out, record)  # OUT becomes a batch output itself (a re-run there skips them)
    return records, write_outputs(records, out, optional)
