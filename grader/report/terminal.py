"""The report as a rich renderable: pure, only the Console that prints it does I/O.

Every string that comes from the submission is built as a ``Text`` (never parsed as markup)
after ``clean`` removed its escape sequences, so it cannot style, link or move the cursor.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.models import CriterionScore, CriterionStatus, ExerciseScore, GradeReport
from grader.report.audience import HIDDEN_TITLE, Audience, for_audience
from grader.report.overview import exercise_bars, fix_first, verdict_line
from grader.report.sanitize import clean

_STATUS_STYLE = {
    CriterionStatus.PASSED: "green",
    CriterionStatus.PARTIAL: "yellow",
    CriterionStatus.FAILED: "red",
    CriterionStatus.UNGRADED: "magenta",
}


def render_terminal(report: GradeReport, audience: Audience) -> RenderableType:
    """The lead (verdict, a bar per exercise, fix these first), the header, one table per
    exercise, then total, band, pass and notes."""
    report = for_audience(report, audience)
    tables = (_exercise_table(ex, audience) for ex in report.exercises)
    return Group(_lead(report), _header(report), *tables, _footer(report))


def _lead(report: GradeReport) -> RenderableType:
    lines: list[RenderableType] = [Text(verdict_line(report), "bold green" if report.passed else "bold red")]
    bars = Table.grid(padding=(0, 1))
    for bar in exercise_bars(report):
        style = "green" if bar.fraction >= 1 else "yellow" if bar.fraction > 0 else "red"
        bars.add_row(bar.exercise_id, Text(bar.title), Text(bar.text_bar(), style),
                     _points(bar.points, bar.max_points) + ("" if bar.complete else " (incomplete)"))
    lines.append(bars)
    fixes = fix_first(report)
    if fixes:
        lines.append(Text("Fix these first:", "bold"))
        for number, fix in enumerate(fixes, 1):
            lines.append(Text.assemble(f"{number}. ", Text(f"-{fix.lost:g}", "red"), f" {fix.exercise_id} ",
                                       Text(fix.title), ": ", _hostile(fix.reason)))
    return Group(*lines, Text(""))


def _hostile(text: str, style: str = "") -> Text:
    return Text(clean(text, one_line=True), style=style)


def _points(points: float | None, max_points: float) -> str:
    return f"?/{max_points:g}" if points is None else f"{points:g}/{max_points:g}"


def _header(report: GradeReport) -> RenderableType:
    sub = report.submission
    lines: list[Text] = [
        Text.assemble("Submission ", _hostile(sub.source, "bold")),
        Text.assemble("Commit ", _hostile(sub.commit_sha or "working tree (uncommitted)"),
                      " on ", _hostile(sub.ref or "-"),
                      f", authored {sub.author_date:%Y-%m-%d %H:%M %Z}" if sub.author_date else "",
                      f", {sub.commit_count} commit(s)", " [dirty]" if sub.dirty else ""),
        Text(f"Graded {report.graded_at:%Y-%m-%d %H:%M %Z} by grader {report.grader_version}, "
             f"rubric {report.rubric_name}, in {report.duration_s:g} s"),
    ]
    if sub.deadline_note:
        lines.append(Text.assemble("Deadline: ", _hostile(sub.deadline_note)))
    lines += [Text.assemble(Text("Unmerged branch ", "yellow"), _hostile(b.name),
                            f": {b.commits_ahead} commit(s) not graded") for b in sub.unmerged_branches]
    lines += [Text.assemble("Isolation: ", _hostile(item)) for item in report.isolation]
    lines += [Text.assemble(Text("Warning: ", "yellow"), _hostile(w)) for w in report.warnings]
    lines += [Text.assemble(Text("Needs a human look: ", "yellow"), _hostile(item)) for item in report.needs_review]
    if not report.complete:
        lines.append(Text("INCOMPLETE: some criteria could not be graded; the total is a lower bound",
                          "bold magenta"))
    return Panel(Group(*lines), title=escape(report.rubric_name), title_align="left")


def _exercise_table(exercise: ExerciseScore, audience: Audience) -> Table:
    table = Table(title=f"{exercise.exercise_id} {escape(exercise.title)}: "
                        f"{_points(exercise.points, exercise.max_points)}",
                  title_justify="left", expand=True, show_lines=True)
    table.add_column("Criterion", ratio=2)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Why points were lost", ratio=3)
    for criterion in exercise.criteria:
        table.add_row(*_criterion_row(criterion, audience))
    return table


def _criterion_row(criterion: CriterionScore, audience: Audience) -> tuple[Text, Text, Text]:
    points = Text(_points(criterion.points, criterion.max_points), _STATUS_STYLE[criterion.status])
    if criterion.visibility == "hidden" and audience is Audience.STUDENT:
        return Text(f"{HIDDEN_TITLE}: {criterion.max_points:g} points", "dim"), points, Text("")
    name = Text(criterion.title)
    if criterion.visibility == "hidden":
        name.append(" (hidden)", "dim")
    why = Text()
    if criterion.status is CriterionStatus.UNGRADED:
        why.append("not graded (grader error): ", "magenta")
    for reason in criterion.reasons:
        why.append("- ").append_text(_hostile(reason)).append("\n")
    if criterion.reasons and criterion.hint and criterion.status is not CriterionStatus.UNGRADED:
        why.append(f"Hint: {criterion.hint}", "italic cyan")
    why.rstrip()
    return name, points, why


def _footer(report: GradeReport) -> RenderableType:
    verdict = Text("PASS", "bold green") if report.passed else Text("NOT PASSED", "bold red")
    lines = [Text.assemble(Text(f"Total {_points(report.points, report.max_points)}", "bold"),
                           "" if report.complete else " (lower bound, incomplete)",
                           f"  band {report.band}  ", verdict)]
    lines += [Text(f"Note: {note}", "yellow") for note in report.rule_notes]
    if report.diff is not None:  # for_audience already dropped it for students
        lines.append(Text.assemble(f"Reference similarity {report.diff.overall_similarity:.2f}; near copies: ",
                                   _hostile(", ".join(report.diff.near_copy_files) or "none")))
    return Group(*lines)
