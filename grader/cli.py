"""The ``grade`` command: thin Typer verbs that call library code and map errors to exit codes.

Exit codes: 0 graded (a failing student is still a successful grading), 1 graded but below
``--fail-under``, 2 bad usage, 3 could not grade (the grader's or the machine's failure,
never a student's 0; for ``batch``: some submission could not be graded), 130 interrupted.
``grade diff`` exits 0 when the two gradings agree and 1 when anything changed.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader import __version__
from grader.batch.feedback import FEEDBACK_DIR, write_feedback
from grader.batch.handout import load_baseline, save_baseline
from grader.batch.outputs import OPTIONAL_EXPORTS, merge, write_outputs
from grader.batch.progress import RichBatchProgress
from grader.batch.rescore import rescore
from grader.batch.roster import Shard
from grader.batch.runner import BatchOptions, default_jobs, run_batch
from grader.cli_help import DefaultVerbGroup, Verb
from grader.compare import Movement, StudentChange, compare, counts, load_grading
from grader.errors import (
    EXIT_BELOW_THRESHOLD, EXIT_COULD_NOT_GRADE, EXIT_DIFFERENT, EXIT_GRADED, EXIT_INTERRUPTED, GraderError, UsageError,
)
from grader.models import GradeReport
from grader.pipeline import DEFAULT_RUBRIC, Backend, GradeRequest, SilentProgress, grade
from grader.progress import LiveProgress
from grader.records import SUBMISSIONS_DIR, read_records, write_record
from grader.report import FORMATS, Audience, render_terminal, write_reports
from grader.report.exports.gradescope_autograder import build_bundle, write_results
from grader.report.overview import verdict_line
from grader.report.sanitize import clean
from grader.report.writer import render_report
from grader.rubric import load_rubric

STDOUT = "-"  # ``-o -``: the one report file goes to stdout, every other line to stderr


app = typer.Typer(
    cls=DefaultVerbGroup,
    help="Grade LLMOps exam submissions by running them and breaking their dependencies on purpose.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_err = Console(stderr=True, highlight=False)

# --format's values: the terminal table and every file format of grader.report.
ReportFormat = enum.StrEnum("ReportFormat", {name: name for name in ("terminal", *sorted(FORMATS))})


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"grade {__version__}")
        raise typer.Exit()


@app.callback()
def _grade(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the grader's version and exit.")] = False,
) -> None:
    """Grade LLMOps exam submissions by running them and breaking their dependencies on purpose."""


def _say(line: str) -> None:
    """One line on stderr, never wrapped nor parsed as markup (it may quote hostile text)."""
    _err.print(line, markup=False, soft_wrap=True)


def _deadline(value: Optional[str]) -> Optional[datetime]:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date-time (e.g. 2026-06-01T23:59+02:00)")
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone; add one (e.g. +00:00) so it means one instant")
    return parsed


@dataclass(frozen=True)
class _Output:
    """Where a grading's report goes: the terminal table, report files, or one file on stdout."""

    formats: frozenset[str]
    out: Path
    audience: Audience
    quiet: bool  # -q: errors and the verdict line only
    ignore_folder: bool = False  # put a .gitignore holding `*` in the folder (`grade check`)

    @property
    def to_stdout(self) -> bool:
        return str(self.out) == STDOUT

    @property
    def files(self) -> frozenset[str]:
        return self.formats - {ReportFormat.terminal}

    def check(self) -> None:
        """Refuse, before anything runs, what cannot be written."""
        if self.to_stdout and len(self.files) != 1:
            raise UsageError(f"-o - writes one report file to stdout: give exactly one file format "
                             f"(-f {' or -f '.join(sorted(FORMATS))}), not {len(self.files)}")


def _finish(report: GradeReport, output: _Output, fail_under: Optional[float]) -> None:
    # With -o -, stdout holds the report file alone: the terminal view goes to stderr.
    console = _err if output.to_stdout else Console(highlight=False)
    if output.quiet:
        console.print(verdict_line(report), markup=False, soft_wrap=True)
    elif ReportFormat.terminal in output.formats:
        console.print(render_terminal(report, output.audience))
    if output.to_stdout:
        (name,) = output.files
        sys.stdout.write(render_report(report, name, output.audience))
        sys.stdout.flush()
    elif output.files:
        for path in write_reports(report, set(output.files), output.out, output.audience):
            if not output.quiet:
                _say(f"wrote {path}")
        if output.ignore_folder:
            # The folder sits in the student's own repository: keep it out of their commits.
            ignore = output.out / ".gitignore"
            if not ignore.exists():
                ignore.write_text("*\n", encoding="utf-8")
    if fail_under is not None and report.points < fail_under:
        _say(f"{report.points:g} points is below --fail-under {fail_under:g}")
        raise typer.Exit(EXIT_BELOW_THRESHOLD)


@contextmanager
def _stdout_kept_clean(keep: bool) -> Iterator[None]:
    """While grading with ``-o -``, file descriptor 1 points at stderr, so nothing a child
    process (uv, MLflow, the submission) prints can land in the report on stdout."""
    if not keep:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def _exit_codes(on_interrupt: str = "everything started was stopped") -> Iterator[None]:
    """Map the library's errors to one line on stderr and the documented exit code.

    SIGTERM (a CI job cancelled, ``timeout``) is taken as Ctrl-C: the grading unwinds and
    stops what it started (containers would otherwise outlive the grader), then exits 130.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except GraderError as exc:
        _say(f"{exc.label}: {exc}")
        raise typer.Exit(exc.exit_code)
    except KeyboardInterrupt:
        _say(f"interrupted: {on_interrupt}")
        raise typer.Exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(request: GradeRequest, output: _Output, fail_under: Optional[float]) -> None:
    with _exit_codes():
        output.check()
        with _stdout_kept_clean(output.to_stdout):
            if output.quiet:
                report = grade(request, SilentProgress())
            else:
                with LiveProgress(_err) as progress:
                    report = grade(request, progress)
        _finish(report, output, fail_under)


FormatOption = Annotated[
    list[ReportFormat],
    typer.Option("--format", "-f", metavar=f"<{'|'.join(ReportFormat)}>", help="Report format (repeatable); classroom is GitHub "
                 "Classroom's reporter JSON."),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Folder the report files are "
                                         "written to; '-' writes the one report file to stdout.")]
RubricOption = Annotated[Path, typer.Option("--rubric", metavar="FILE", envvar="GRADE_RUBRIC",
                                            help="Rubric YAML file.")]
OnlyOption = Annotated[Optional[list[str]], typer.Option(
    "--only", metavar="EXERCISE", help="Grade only this exercise, e.g. ex3 (repeatable).")]
BackendOption = Annotated[Backend, typer.Option(
    "--backend", envvar="GRADE_BACKEND",
    help="Where the stack runs: local (processes, no Docker), compose (Docker engine), "
         "auto (compose when an engine answers, else local).")]
BatchExport = enum.StrEnum("BatchExport", {name: name for name in sorted(OPTIONAL_EXPORTS)})
BatchExportOption = Annotated[list[BatchExport], typer.Option(
    "--format", "-f", metavar=f"<{'|'.join(BatchExport)}>",
    help="Also write this export (repeatable): prairielearn-csv is PrairieLearn's manual-grading upload.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the final verdict line.")]
RequireSandboxOption = Annotated[
    bool, typer.Option("--require-sandbox", help="Refuse to grade (exit 3) unless every isolation protection works.")
]
FailUnderOption = Annotated[Optional[float], typer.Option(
    "--fail-under", metavar="POINTS", help="Exit 1 when the total is below this many points (CI).")]


@app.command("repo", cls=Verb)
def grade_repo(
    source: Annotated[str, typer.Argument(metavar="SOURCE",
                                          help="Repository URL, file:// URL or local path of a submission.")],
    ref: Annotated[Optional[str], typer.Option("--ref", metavar="REF", help="Branch, tag or commit to grade.")]
    = None,
    deadline: Annotated[Optional[str], typer.Option(
        "--deadline", metavar="TIME", help="Grade the last commit at or before this ISO 8601 time.")] = None,
    rubric: RubricOption = DEFAULT_RUBRIC,
    backend: BackendOption = Backend.LOCAL,
    only: OnlyOption = None,
    formats: FormatOption = [ReportFormat.terminal],
    out: OutOption = Path("grading-output"),
    audience: Annotated[
        Audience, typer.Option("--audience", help="instructor (everything) or student (hidden details removed).")
    ] = Audience.INSTRUCTOR,
    fail_under: FailUnderOption = None,
    require_sandbox: RequireSandboxOption = False,
    quiet: QuietOption = False,
) -> None:
    """Grade one submission (the default verb: `grade <repo>`)."""
    request = GradeRequest(
        source=source,
        ref=ref,
        deadline=_deadline(deadline),
        rubric_path=rubric,
        backend=backend.value,
        only=frozenset(only) if only else None,
        with_diff=audience is Audience.INSTRUCTOR,
        require_sandbox=require_sandbox,
    )
    _run(request, _Output(frozenset(formats), out, audience, quiet), fail_under)


@app.command("check", cls=Verb)
def check_worktree(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Your exam repository (default: the current "
                                         "directory).")] = Path("."),
    rubric: RubricOption = DEFAULT_RUBRIC,
    only: OnlyOption = None,
    formats: FormatOption = [ReportFormat.terminal],
    out: OutOption = Path("grading-output"),
    fail_under: FailUnderOption = None,
    quiet: QuietOption = False,
) -> None:
    """Check your own working tree as it is, uncommitted changes included (student view)."""
    request = GradeRequest(source=str(path), rubric_path=rubric, only=frozenset(only) if only else None,
                           worktree=True, with_diff=False)
    _run(request, _Output(frozenset(formats), out, Audience.STUDENT, quiet, ignore_folder=True), fail_under)


@app.command("batch", cls=Verb)
def grade_batch(
    roster: Annotated[Path, typer.Argument(metavar="ROSTER", help="CSV with "
                                           "student_id,repo_url[,ref][,deadline][,exercises] per row.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Batch folder: submissions/, gradebook, "
                                      "summary, exports.")] = Path("batch-output"),
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", metavar="N", envvar="GRADE_JOBS",
                                                help="Submissions graded at once (default: half the cores).")]
    = None,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", metavar="SECONDS",
        help="Backstop per submission, seconds: past it the grading is stopped and recorded as an "
             "error (default: the rubric's submission time limit plus 5 minutes).")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N",
                                                 help="Grade slice i of N of the roster, e.g. 2/3.")] = None,
    rubric: RubricOption = DEFAULT_RUBRIC,
    only: OnlyOption = None,
    backend: BackendOption = Backend.LOCAL,
    allow_unsandboxed: Annotated[bool, typer.Option(
        "--allow-unsandboxed", help="Grade even when a protection of the sandbox is missing (by default a batch "
                                    "refuses, exit 3, naming what is missing).")] = False,
    handout: Annotated[Optional[str], typer.Option(
        "--handout", metavar="REPO", help="The handout repository students forked (URL or path): near-copies "
                                          "between students ignore its code (default: the rubric's handout:, "
                                          "else guessed).")] = None,
    exports: BatchExportOption = [],
    feedback: Annotated[bool, typer.Option("--feedback", help="At the end, also write every student's own report "
                                           "(as `grade feedback` does) under OUT/feedback.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Regrade every row, even those graded at the same "
                                        "commit by the same grader and rubric.")] = False,
    students: Annotated[Optional[list[str]], typer.Option(
        "--student", metavar="ID", help="Grade only this roster row, regrading it (repeatable).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Grade every submission of a roster; a re-run skips what is already graded at the same commit
    by the same grader and rubric, and says why it regrades the others."""
    with _exit_codes(f"finished submissions are in {out / 'submissions'}; run the same command again "
                     "to grade the rest"):
        options = BatchOptions(roster=roster, out=out, rubric_path=rubric, only=frozenset(only) if only else None,
                               jobs=jobs if jobs is not None else default_jobs(), timeout_s=timeout,
                               shard=Shard.parse(shard) if shard else None, backend=backend.value,
                               require_sandbox=not allow_unsandboxed, handout=handout, force=force,
                               students=frozenset(students) if students else None)
        if quiet:
            result = run_batch(options)
        else:
            with RichBatchProgress(_err) as progress:
                result = run_batch(options, progress)
        records = read_records([out])
        written = write_outputs(records, out, frozenset(exports))
        if feedback:
            written.append(write_feedback(records, out / FEEDBACK_DIR))
        for path in written:
            if not quiet:
                _say(f"wrote {path}")
    for student_id, why in sorted(result.regraded.items()):
        _say(f"regraded {student_id}: {why}")
    _say(f"{len(result.records)} submission(s): {result.graded} run now, {result.skipped} kept from a previous run, "
         f"{result.errors} could not be graded")
    if result.errors:
        raise typer.Exit(EXIT_COULD_NOT_GRADE)


@app.command("merge", cls=Verb)
def merge_batches(
    dirs: Annotated[list[Path], typer.Argument(metavar="DIR", help="Batch folders to combine (e.g. one per "
                                               "shard).")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Folder of the combined gradebook, "
                                      "summary, exports.")],
    exports: BatchExportOption = [],
) -> None:
    """Combine batch outputs (shards) into one gradebook, summary and exports."""
    with _exit_codes():
        records, written = merge(dirs, out, frozenset(exports))
    for path in written:
        _say(f"wrote {path}")
    _say(f"{len(records)} submission(s) merged")


@app.command("rescore", cls=Verb)
def rescore_batch(
    batch: Annotated[Path, typer.Argument(metavar="OUT", help="A batch folder (grade batch -o).")],
    rubric: Annotated[Path, typer.Option("--rubric", metavar="FILE", help="The new rubric YAML file.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="DIR", help="Where the rescored records, "
                                                "gradebook, summary and exports go (default: OUT itself).")] = None,
    exports: BatchExportOption = [],
) -> None:
    """Score a batch again under a new rubric from the check results its records keep: nothing runs."""
    target = out or batch
    with _exit_codes():
        if not (batch / SUBMISSIONS_DIR).is_dir():
            raise UsageError(f"{batch}: not a batch folder (no {SUBMISSIONS_DIR}/ in it)")
        new_rubric = load_rubric(rubric)
        before = read_records([batch])
        result = rescore(before, new_rubric)
        baseline = load_baseline(batch)
        if baseline is not None and target != batch:
            save_baseline(target, baseline)
        for record in result.records:
            write_record(target, record)
        written = write_outputs(result.records, target, frozenset(exports))
    moved = [change for change in compare({r.student_id: r.report for r in before},
                                          {r.student_id: r.report for r in result.records})
             if change.headline_changed]
    if moved:
        Console(highlight=False).print(_changes_table(moved))
    for path in written:
        _say(f"wrote {path}")
    if result.legacy:
        _say(f"{result.legacy} record(s) carry no grader identity: taken as graded with this rubric's limits "
             "and settings")
    _say(f"{len(result.records)} record(s) rescored under {new_rubric.name} {new_rubric.version}: "
         f"{len(moved)} changed total, band or pass")


def _changes_table(changes: list[StudentChange]) -> Table:
    table = Table(title="Students whose total, band or pass changed")
    # Only the ids stay on one line: in a narrow terminal (or 80 columns when piped) the other
    # columns wrap rather than squeeze "why" out of sight.
    table.add_column("student", no_wrap=True)
    for column in ("before", "after", "why (criteria)"):
        table.add_column(column, ratio=2 if column.startswith("why") else 1)
    for change in changes:
        before, after = change.headline()
        why = ("\n".join(clean(c.describe(), one_line=True) for c in change.criteria)
               or "the rubric's bands, pass mark or gate")
        table.add_row(Text(change.student_id), Text(before), Text(after), Text(why))
    return table


@app.command("diff", cls=Verb)
def diff_gradings(
    first: Annotated[Path, typer.Argument(metavar="A", help="A report JSON (grade -f json) or a batch folder.")],
    second: Annotated[Path, typer.Argument(metavar="B", help="The same kind as A: the grading to compare with.")],
) -> None:
    """What changed from grading A to grading B, per student and criterion; exit 1 when anything did."""
    with _exit_codes():
        (kind_a, before), (kind_b, after) = load_grading(first), load_grading(second)
        if kind_a != kind_b:
            raise UsageError(f"cannot compare a {kind_a} with a {kind_b}: give two report JSONs or two batch folders")
    changes = compare(before, after)
    for change in changes:
        if change.movement is Movement.UNCHANGED:
            continue
        old, new = change.headline()
        typer.echo(f"{change.student_id}: {old} -> {new} ({change.movement.value})")
        for criterion in change.criteria:
            typer.echo(f"  {clean(criterion.describe(), one_line=True)}")
    tally = counts(changes)
    typer.echo(", ".join(f"{n} {movement.value}" for movement, n in tally.items()))
    raise typer.Exit(EXIT_DIFFERENT if tally[Movement.UNCHANGED] < len(changes) else EXIT_GRADED)


@app.command("feedback", cls=Verb)
def feedback_reports(
    batch: Annotated[Path, typer.Argument(metavar="OUT", help="A batch folder (grade batch -o).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="DIR", help="Where the students' folders "
                                                "and feedback.csv go (default: OUT/feedback).")] = None,
) -> None:
    """Write every student's own report (HTML and Markdown, student view) and a CSV of who gets which file."""
    with _exit_codes():
        if not (batch / SUBMISSIONS_DIR).is_dir():
            raise UsageError(f"{batch}: not a batch folder (no {SUBMISSIONS_DIR}/ in it)")
        records = read_records([batch])
        index = write_feedback(records, out or batch / FEEDBACK_DIR)
    _say(f"wrote {index}: {sum(r.report is not None for r in records)} student report(s) of {len(records)} record(s)")


export_app = typer.Typer(help="Files for learning platforms.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(export_app, name="export")


@export_app.command("gradescope-autograder", cls=Verb)
def export_gradescope_autograder(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="ZIP", help="The zip to upload as the "
                                      "assignment's autograder.")] = Path("autograder.zip"),
    rubric: RubricOption = DEFAULT_RUBRIC,
) -> None:
    """Write Gradescope's autograder bundle: setup.sh, run_autograder, the rubric and the grader."""
    with _exit_codes():
        names = build_bundle(rubric, out)
    _say(f"wrote {out}: {', '.join(names)}")


@export_app.command("gradescope-results", cls=Verb)
def export_gradescope_results(
    submission: Annotated[Path, typer.Argument(metavar="FOLDER", help="The submission's files "
                                               "(/autograder/submission).")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="Where results.json goes.")]
    = Path("results.json"),
    rubric: RubricOption = DEFAULT_RUBRIC,
) -> None:
    """Grade a folder and write Gradescope's results.json, also when it cannot be graded (what
    run_autograder runs)."""
    with _exit_codes():
        with LiveProgress(_err) as progress:
            report = write_results(submission, rubric, out, lambda request: grade(request, progress))
    _say(f"wrote {out}: {verdict_line(report)}")


def main() -> None:
    app()
