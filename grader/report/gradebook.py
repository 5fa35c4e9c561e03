"""The batch gradebook: one CSV row per student, safe to open in a spreadsheet.

Columns: student_id, one per exercise (points), total, max, band, status
(graded / incomplete / error), commit_sha, grader_version, reason. A could-not-grade row has
empty points, never 0. Any text cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR gets a
leading ``'`` (OWASP's CSV-injection rule) so no spreadsheet runs it as a formula; numbers
are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from grader.records import SubmissionRecord
from grader.report.sanitize import clean

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FIXED_COLUMNS = ("total", "max", "band", "status", "commit_sha", "grader_version", "reason")


def safe_cell(value: object) -> str | float | int:
    """A cell a spreadsheet shows as text or number, never evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return int(value) if float(value).is_integer() else value
    raw = str(value)
    text = clean(raw, one_line=True)
    if raw.startswith(_FORMULA_START) or text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def exercise_columns(records: Iterable[SubmissionRecord]) -> list[str]:
    """Exercise ids in the order the reports give them (first seen wins)."""
    columns: list[str] = []
    for record in records:
        for exercise in record.report.exercises if record.report else ():
            if exercise.exercise_id not in columns:
                columns.append(exercise.exercise_id)
    return columns


def gradebook_rows(records: list[SubmissionRecord]) -> list[list[str | float | int]]:
    exercises = exercise_columns(records)
    rows: list[list[str | float | int]] = [["student_id", *exercises, *FIXED_COLUMNS]]
    for record in sorted(records, key=lambda r: r.student_id):
        report = record.report
        points = {ex.exercise_id: ex.points for ex in report.exercises} if report else {}
        row = [
            record.student_id,
            *(points.get(ex) for ex in exercises),
            report.points if report else None,
            report.max_points if report else None,
            report.band if report else None,
            record.status.value,
            record.commit_sha,
            record.grader_version,
            record.reason,
        ]
        rows.append([safe_cell(cell) for cell in row])
    return rows


def render_gradebook(records: list[SubmissionRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(gradebook_rows(records))
    return buffer.getvalue()
