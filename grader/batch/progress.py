"""Live progress of a batch on the terminal: a bar with the ETA and one line per running submission."""

from __future__ import annotations

import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from grader.records import SubmissionRecord, SubmissionStatus
from grader.report.sanitize import clean


def describe(record: SubmissionRecord) -> str:
    if record.report is None:
        return f"error: {clean(record.reason or '', one_line=True)}"
    report = record.report
    incomplete = "" if record.status is SubmissionStatus.GRADED else " (incomplete)"
    return f"{report.points:g}/{report.max_points:g} {report.band}{incomplete}"


class RichBatchProgress:
    """Implements ``runner.BatchProgress``: a progress bar and a status line per submission."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._running: dict[str, tuple[float, str]] = {}
        self._bar = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self._task = self._bar.add_task("grading", total=None)
        self._live = Live(console=console, transient=True, refresh_per_second=2, get_renderable=self._render)

    def __enter__(self) -> "RichBatchProgress":
        self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.__exit__(*exc_info)

    def _render(self) -> Group:
        table = Table.grid(padding=(0, 2))
        with self._lock:
            for student, (started, status) in sorted(self._running.items()):
                table.add_row(Text(f"  {student}"), Text(f"{time.monotonic() - started:.0f}s"), Text(status))
        return Group(self._bar, table)

    def planned(self, total: int) -> None:
        self._bar.update(self._task, total=total)

    def started(self, student_id: str) -> None:
        with self._lock:
            self._running[student_id] = (time.monotonic(), "starting")

    def status(self, student_id: str, text: str) -> None:
        with self._lock:
            if student_id in self._running:
                self._running[student_id] = (self._running[student_id][0], clean(text, one_line=True)[:80])

    def finished(self, record: SubmissionRecord, skipped: bool) -> None:
        with self._lock:
            self._running.pop(record.student_id, None)
        self._bar.advance(self._task)
        verb = "kept (already graded at this commit)" if skipped else f"in {record.duration_s:.0f}s"
        self._console.print(Text(f"· {record.student_id}: {describe(record)} {verb}"))
