"""Write a report in several formats to a directory: the one entry point of this package."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path

from rich.console import Console

from grader.errors import UsageError
from grader.models import GradeReport
from grader.report.audience import Audience, for_audience
from grader.report.html import render_html
from grader.report.json import render_json
from grader.report.markdown import render_markdown
from grader.report.terminal import render_terminal


def _render_text(report: GradeReport, audience: Audience) -> str:
    console = Console(file=StringIO(), width=120, color_system=None, force_terminal=False)
    console.print(render_terminal(report, audience))
    return console.file.getvalue()  # type: ignore[attr-defined]


_RENDERERS: dict[str, tuple[str, Callable[[GradeReport, Audience], str]]] = {
    "json": ("json", lambda report, audience: render_json(for_audience(report, audience))),
    "markdown": ("md", render_markdown),
    "html": ("html", render_html),
    "text": ("txt", _render_text),
}
FORMATS = frozenset(_RENDERERS)


def write_reports(report: GradeReport, formats: set[str], out_dir: Path, audience: Audience) -> list[Path]:
    """Write ``grade-report.<audience>.<ext>`` for each format; returns the paths written."""
    unknown = sorted(formats - FORMATS)
    if unknown:
        raise UsageError(f"unknown report format(s) {', '.join(unknown)}; known: {', '.join(sorted(FORMATS))}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(formats):
        extension, render = _RENDERERS[name]
        path = out_dir / f"grade-report.{audience.value}.{extension}"
        path.write_text(render(report, audience), encoding="utf-8")
        written.append(path)
    return written
