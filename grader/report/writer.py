"""Write a report in several formats to a directory: the one entry point of this package."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

from rich.console import Console

from grader.errors import UsageError
from grader.models import GradeReport
from grader.report.audience import Audience, for_audience
from grader.report.exports.classroom import classroom_results
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
    "classroom": ("classroom.json", lambda report, audience: json.dumps(
        classroom_results(for_audience(report, audience)), indent=2, ensure_ascii=False) + "\n"),
}
FORMATS = frozenset(_RENDERERS)


def render_report(report: GradeReport, name: str, audience: Audience) -> str:
    """``report`` in the file format ``name`` (one of ``FORMATS``) as ``audience`` may see it."""
    if name not in _RENDERERS:
        raise UsageError(f"unknown report format {name}; known: {', '.join(sorted(FORMATS))}")
    return _RENDERERS[name][1](report, audience)


def write_reports(report: GradeReport, formats: set[str], out_dir: Path, audience: Audience) -> list[Path]:
    """Write ``grade-report.<audience>.<ext>`` for each format; returns the paths written."""
    unknown = sorted(formats - FORMATS)
    if unknown:
        raise UsageError(f"unknown report format(s) {', '.join(unknown)}; known: {', '.join(sorted(FORMATS))}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(formats):
        path = out_dir / f"grade-report.{audience.value}.{_RENDERERS[name][0]}"
        path.write_text(render_report(report, name, audience), encoding="utf-8")
        written.append(path)
    return written
