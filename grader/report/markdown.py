"""The report as Markdown feedback for the student (or the instructor), via a Jinja2 template.

Markdown has no autoescape: every ``{{ }}`` output is escaped by default (``finalize``), and
submission text goes through ``code``/``block``, which put it in code spans or fences, where
neither Markdown (links, images, autolinks) nor HTML is interpreted.
"""

from __future__ import annotations

import html
import re

from jinja2 import Environment, PackageLoader, StrictUndefined

from grader.models import GradeReport
from grader.report.audience import Audience, for_audience
from grader.report.overview import exercise_bars, fix_first, verdict_line
from grader.report.sanitize import clean

_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")


class _Verbatim(str):
    """Markdown produced by a filter of this module: already safe, not escaped again."""


def _escape(value: object) -> str:
    if isinstance(value, _Verbatim):
        return value
    text = clean("" if value is None else str(value), one_line=True)
    # HTML first, then a backslash before every Markdown special (':' too, against autolinks).
    return _SPECIALS.sub(r"\\\1", html.escape(text, quote=False))


def _fence_for(text: str, char: str, minimum: int) -> str:
    longest = max((len(run) for run in re.findall(re.escape(char) + "+", text)), default=0)
    return char * max(minimum, longest + 1)


def _code(value: object) -> _Verbatim:
    """One line of hostile text as an inline code span."""
    text = clean(str(value), one_line=True)
    if not text:
        return _Verbatim("")
    fence = _fence_for(text, "`", 1)
    # The spaces let a span start or end with a backtick; CommonMark strips one of each.
    return _Verbatim(f"{fence} {text} {fence}")


def _block(value: object) -> _Verbatim:
    """Multi-line hostile text as a fenced code block."""
    text = clean(str(value)).rstrip("\n")
    fence = _fence_for(text, "`", 3)
    return _Verbatim(f"{fence}text\n{text}\n{fence}")


def _points(points: float | None, max_points: float) -> _Verbatim:
    return _Verbatim(f"?/{max_points:g}" if points is None else f"{points:g}/{max_points:g}")


_ENV = Environment(
    loader=PackageLoader("grader.report", "templates"),
    autoescape=False,
    finalize=_escape,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(code=_code, block=_block, number=lambda value: _Verbatim(f"{value:g}"))
_ENV.globals.update(points=_points)


def render_markdown(report: GradeReport, audience: Audience) -> str:
    """The Markdown feedback of ``report`` as ``audience`` may see it."""
    report = for_audience(report, audience)
    return _ENV.get_template("report.md.j2").render(
        report=report, student=audience is Audience.STUDENT,
        verdict=verdict_line(report), bars=exercise_bars(report), fixes=fix_first(report))
