"""Every student's own report, from a batch's records: what ``grade feedback`` writes.

    DIR/<student_id>/grade-report.student.html
    DIR/<student_id>/grade-report.student.md
    DIR/feedback.csv        student_id,status,html,markdown (paths relative to DIR), one row a record

Reports are in the student audience (``grader.report.audience``): hidden criteria keep their
points but lose their title, checks, reasons and hint, and the reference diff is removed. A
record that could not be graded gets a row with its status and no files (there is no report
to send; the instructor regrades it). Nothing else in DIR is removed: DIR may be any folder.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from grader.records import SubmissionRecord, write_atomic
from grader.report import Audience, write_reports

FEEDBACK_DIR = "feedback"
INDEX = "feedback.csv"
_FORMATS = {"html", "markdown"}


def write_feedback(records: list[SubmissionRecord], out: Path) -> Path:
    """Write each record's student report under ``out``; returns the CSV's path."""
    out.mkdir(parents=True, exist_ok=True)
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["student_id", "status", "html", "markdown"])
    for record in records:
        if record.report is None:
            writer.writerow([record.student_id, record.status.value, "", ""])
            continue
        written = write_reports(record.report, _FORMATS, out / record.student_id, Audience.STUDENT)
        html, markdown = (next(p.relative_to(out).as_posix() for p in written if p.suffix == suffix)
                          for suffix in (".html", ".md"))
        writer.writerow([record.student_id, record.status.value, html, markdown])
    index = out / INDEX
    write_atomic(index, rows.getvalue())
    return index
