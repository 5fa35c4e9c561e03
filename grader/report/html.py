"""The report as a standalone HTML page, via a Jinja2 template with autoescape on.

``finalize`` strips control characters from every value before autoescape makes it text.
"""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader.models import GradeReport
from grader.report.audience import Audience, for_audience
from grader.report.overview import exercise_bars, fix_first, verdict_line
from grader.report.sanitize import clean


def _finalize(value: object) -> object:
    return clean(value) if isinstance(value, str) else ("" if value is None else value)


def _points(points: float | None, max_points: float) -> str:
    return f"?/{max_points:g}" if points is None else f"{points:g}/{max_points:g}"


def html_environment(finalize: Callable[[object], object]) -> Environment:
    """The Jinja2 environment of every HTML page of the grader: autoescape always on,
    ``finalize`` cleaning each value before it is escaped."""
    return Environment(
        loader=PackageLoader("grader.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = html_environment(_finalize)
_ENV.globals.update(points=_points)


def render_html(report: GradeReport, audience: Audience) -> str:
    """The HTML feedback page of ``report`` as ``audience`` may see it."""
    report = for_audience(report, audience)
    return _ENV.get_template("report.html.j2").render(
        report=report, student=audience is Audience.STUDENT,
        verdict=verdict_line(report), bars=exercise_bars(report), fixes=fix_first(report))
