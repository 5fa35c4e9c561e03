"""Reports rendered from one ``GradeReport``: terminal, JSON, Markdown, HTML and GitHub
Classroom's JSON; each opens with the same lead (``overview``)."""

from grader.report.audience import Audience, for_audience
from grader.report.html import render_html
from grader.report.json import json_schema, render_json
from grader.report.markdown import render_markdown
from grader.report.terminal import render_terminal
from grader.report.writer import FORMATS, write_reports

__all__ = [
    "FORMATS",
    "Audience",
    "for_audience",
    "json_schema",
    "render_html",
    "render_json",
    "render_markdown",
    "render_terminal",
    "write_reports",
]
