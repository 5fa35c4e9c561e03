"""The ``grade`` command: thin Typer verbs that call library code and map errors to exit codes.

Exit codes: 0 graded (a failing student is still a successful grading), 1 graded but below
``--fail-under``, 2 bad usage, 3 could not grade (the grader's or the machine's failure,
never a student's 0; for ``batch``: some submission could not be graded), 130 interrupted.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Iterator, Optional

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from grader.batch.outputs import merge, write_outputs
from grader.batch.progress import RichBatchProgress
from grader.batch.record import read_records
from grader.batch.roster import Shard
from grader.batch.runner import BatchOptions, default_jobs, run_batch
from grader.errors import GraderError, RubricError, UsageError
from grader.models import GradeReport
from grader.pipeline import DEFAULT_RUBRIC, GradeRequest, grade
from grader.progress import LiveProgress
from grader.report import Audience, render_terminal, write_reports

EXIT_GRADED, EXIT_BELOW_THRESHOLD, EXIT_USAGE, EXIT_COULD_NOT_GRADE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _DefaultToRepo(TyperGroup):
    """``grade <repo>`` means ``grade repo <repo>``: any first word that is not a verb is a source."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["repo", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultToRepo,
    help="Grade LLMOps exam submissions by running them and breaking their dependencies on purpose.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True, highlight=False)


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


def _finish(report: GradeReport, formats: list[str], out: Path, audience: Audience,
            fail_under: Optional[float]) -> None:
    Console(highlight=False).print(render_terminal(report, audience))
    files = {name for name in formats if name != "terminal"}
    if files:
        for path in write_reports(report, files, out, audience):
            _say(f"wrote {path}")
    if fail_under is not None and report.points < fail_under:
        _say(f"{report.points:g} points is below --fail-under {fail_under:g}")
        raise typer.Exit(EXIT_BELOW_THRESHOLD)


@contextmanager
def _exit_codes(on_interrupt: str = "everything started was stopped") -> Iterator[None]:
    """Map the library's errors to one line on stderr and the documented exit code.

    SIGTERM (a CI job cancelled, ``timeout``) is taken as Ctrl-C: the grading unwinds and
    stops what it started (containers would otherwise outlive the grader), then exits 130.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except (UsageError, RubricError) as exc:  # the caller's input, not the grader's failure
        _say(f"error: {exc}")
        raise typer.Exit(EXIT_USAGE)
    except GraderError as exc:
        _say(f"could not grade: {exc}")
        raise typer.Exit(EXIT_COULD_NOT_GRADE)
    except KeyboardInterrupt:
        _say(f"interrupted: {on_interrupt}")
        raise typer.Exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(request: GradeRequest, formats: list[str], out: Path, audience: Audience,
         fail_under: Optional[float]) -> None:
    with _exit_codes():
        with LiveProgress(_err) as progress:
            report = grade(request, progress)
        _finish(report, formats, out, audience, fail_under)


FormatOption = Annotated[
    list[str],
    typer.Option("--format", "-f", help="Report formats: terminal, json, markdown, html, text (repeatable)."),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Folder the report files are written to.")]
RubricOption = Annotated[Path, typer.Option("--rubric", help="Rubric YAML file.")]
OnlyOption = Annotated[
    Optional[list[str]], typer.Option("--only", help="Grade only this exercise, e.g. ex3 (repeatable).")
]
BackendOption = Annotated[str, typer.Option(
    "--backend", help="Where the stack runs: local (processes, no Docker), compose (Docker engine), "
                      "auto (compose when an engine answers, else local).")]
RequireSandboxOption = Annotated[
    bool, typer.Option("--require-sandbox", help="Refuse to grade (exit 3) unless every isolation protection works.")
]
FailUnderOption = Annotated[
    Optional[float], typer.Option("--fail-under", help="Exit 1 when the total is below this many points (CI).")
]


@app.command("repo")
def grade_repo(
    source: Annotated[str, typer.Argument(help="Repository URL, file:// URL or local path of a submission.")],
    ref: Annotated[Optional[str], typer.Option("--ref", help="Branch, tag or commit to grade.")] = None,
    deadline: Annotated[
        Optional[str], typer.Option("--deadline", help="Grade the last commit at or before this ISO 8601 time.")
    ] = None,
    rubric: RubricOption = DEFAULT_RUBRIC,
    backend: BackendOption = "local",
    only: OnlyOption = None,
    formats: FormatOption = ["terminal"],
    out: OutOption = Path("grading-output"),
    audience: Annotated[
        Audience, typer.Option("--audience", help="instructor (everything) or student (hidden details removed).")
    ] = Audience.INSTRUCTOR,
    fail_under: FailUnderOption = None,
    require_sandbox: RequireSandboxOption = False,
) -> None:
    """Grade one submission (the default verb: `grade <repo>`)."""
    request = GradeRequest(
        source=source,
        ref=ref,
        deadline=_deadline(deadline),
        rubric_path=rubric,
        backend=backend,
        only=frozenset(only) if only else None,
        with_diff=audience is Audience.INSTRUCTOR,
        require_sandbox=require_sandbox,
    )
    _run(request, formats, out, audience, fail_under)


@app.command("check")
def check_worktree(
    path: Annotated[Path, typer.Argument(help="Your exam repository (default: the current directory).")] = Path("."),
    rubric: RubricOption = DEFAULT_RUBRIC,
    only: OnlyOption = None,
    formats: FormatOption = ["terminal"],
    out: OutOption = Path("grading-output"),
    fail_under: FailUnderOption = None,
) -> None:
    """Check your own working tree as it is, uncommitted changes included (student view)."""
    request = GradeRequest(source=str(path), rubric_path=rubric, only=frozenset(only) if only else None,
                           worktree=True, with_diff=False)
    _run(request, formats, out, Audience.STUDENT, fail_under)


@app.command("batch")
def grade_batch(
    roster: Annotated[Path, typer.Argument(help="CSV with student_id,repo_url[,ref][,deadline][,exercises] per row.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Batch folder: submissions/, gradebook, summary, exports.")]
    = Path("batch-output"),
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Submissions graded at once "
                                                "(default: half the cores).")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", help="Backstop per submission, seconds: past it the grading is stopped and recorded as an "
                          "error (default: the rubric's submission time limit plus 5 minutes).")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="Grade slice i of N of the roster, e.g. 2/3.")]
    = None,
    rubric: RubricOption = DEFAULT_RUBRIC,
    only: OnlyOption = None,
    backend: BackendOption = "local",
    require_sandbox: RequireSandboxOption = False,
) -> None:
    """Grade every submission of a roster; a re-run skips what is already graded at the same commit."""
    with _exit_codes(f"finished submissions are in {out / 'submissions'}; run the same command again "
                     "to grade the rest"):
        options = BatchOptions(roster=roster, out=out, rubric_path=rubric, only=frozenset(only) if only else None,
                               jobs=jobs if jobs is not None else default_jobs(), timeout_s=timeout,
                               shard=Shard.parse(shard) if shard else None, backend=backend,
                               require_sandbox=require_sandbox)
        with RichBatchProgress(_err) as progress:
            result = run_batch(options, progress)
        for path in write_outputs(read_records([out]), out):
            _say(f"wrote {path}")
    _say(f"{len(result.records)} submission(s): {result.graded} run now, {result.skipped} kept from a previous run, "
         f"{result.errors} could not be graded")
    if result.errors:
        raise typer.Exit(EXIT_COULD_NOT_GRADE)


@app.command("merge")
def merge_batches(
    dirs: Annotated[list[Path], typer.Argument(help="Batch folders to combine (e.g. one per shard).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the combined gradebook, summary, exports.")],
) -> None:
    """Combine batch outputs (shards) into one gradebook, summary and exports."""
    with _exit_codes():
        records, written = merge(dirs, out)
    for path in written:
        _say(f"wrote {path}")
    _say(f"{len(records)} submission(s) merged")


def main() -> None:
    app()
