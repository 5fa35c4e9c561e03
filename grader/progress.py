"""Live progress of one grading on the terminal: which scenarios run, which are done and how."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from grader.models import CheckResult, CheckStatus


class LiveProgress:
    """Implements ``pipeline.Progress`` with a rich Live table on stderr."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._stage = ""
        self._started: dict[str, float] = {}
        self._done: dict[str, str] = {}
        self._live = Live(self._table(), console=console, transient=True, refresh_per_second=4,
                          get_renderable=self._table)

    def __enter__(self) -> "LiveProgress":
        self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.__exit__(*exc_info)

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_row(self._stage, "")
        for exercise, started in self._started.items():
            state = self._done.get(exercise) or f"running {time.monotonic() - started:.0f}s"
            table.add_row(f"  {exercise}", state)
        return table

    def stage(self, message: str) -> None:
        self._stage = message
        self._console.print(f"· {message}", markup=False, highlight=False)

    def scenario_started(self, exercise: str) -> None:
        self._started[exercise] = time.monotonic()

    def scenario_finished(self, exercise: str, checks: list[CheckResult]) -> None:
        passed = sum(check.status.credited for check in checks)
        flaky = sum(check.status is CheckStatus.FLAKY for check in checks)
        took = time.monotonic() - self._started.get(exercise, time.monotonic())
        self._done[exercise] = (f"done: {passed}/{len(checks)} checks passed"
                                f"{f' ({flaky} flaky)' if flaky else ''} in {took:.0f}s")
        self._console.print(f"· {exercise} {self._done[exercise]}", markup=False, highlight=False)
