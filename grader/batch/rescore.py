"""Rescore a batch under another rubric from the check results its records keep: nothing runs.

Scoring is a pure function of the check results (``grader.scoring``), and every record keeps
them, evidence included, in its report. A new rubric may move points between criteria, change
credit modes, bands, the pass mark, visibility, hints and the ``min_complete`` gate: the
rescored report is then what a fresh grading under that rubric would give. It may not ask for
what only running decides, and is refused (``UsageError``, one line) when it does:

- a check that a record's grading never ran (bound to an exercise it graded);
- other limits, scenario settings, files or starter than the records were graded with (the
  identity's settings hash): the checks would observe differently.

Records graded before the grader recorded its identity cannot show their settings: they are
rescored, and ``legacy`` counts them so the caller can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.errors import UsageError
from grader.identity import rubric_hash, settings_hash
from grader.models import CheckResult, GradeReport
from grader.records import SubmissionRecord, status_of
from grader.rubric import Rubric
from grader.scoring import score


def stored_checks(report: GradeReport) -> dict[str, CheckResult]:
    """Check id -> the result the grading recorded, for every check it ran."""
    return {check.check_id: check for ex in report.exercises for criterion in ex.criteria
            for check in criterion.checks}


def rescore_report(report: GradeReport, rubric: Rubric) -> GradeReport:
    """``report`` scored again under ``rubric``, from its own check results."""
    graded = {ex.exercise_id for ex in report.exercises}
    checks = stored_checks(report)
    never_ran = [check_id for ex_id in rubric.exercises if ex_id in graded
                 for criterion in rubric.exercises[ex_id].criteria for check_id in criterion.checks
                 if check_id not in checks]
    if never_ran:
        raise UsageError(f"the rubric binds check {never_ran[0]}, which this grading never ran: "
                         "only a regrade can decide it")
    identity = report.identity
    if identity is not None:
        identity = identity.model_copy(update={"rubric": rubric_hash(rubric)})
    return score(rubric, checks, report.submission, grader_version=report.grader_version,
                 graded_at=report.graded_at, identity=identity, diff=report.diff, warnings=report.warnings,
                 isolation=report.isolation, duration_s=report.duration_s,
                 only=graded if len(graded) < len(rubric.exercises) else None)


@dataclass(frozen=True)
class Rescored:
    records: list[SubmissionRecord]
    legacy: int  # records without an identity: their settings could not be compared


def rescore(records: list[SubmissionRecord], rubric: Rubric) -> Rescored:
    """Every record rescored under ``rubric`` (one that could not be graded stays as it is);
    refuses, before returning anything, when one record cannot be rescored."""
    settings = settings_hash(rubric)
    rescored, legacy = [], 0
    for record in records:
        if record.report is None:
            rescored.append(record)
            continue
        if record.identity is None:
            legacy += 1
        elif record.identity.settings != settings:
            raise UsageError(f"{record.student_id}: the rubric changes limits, settings, files or starter "
                             "the checks ran with: only a regrade can decide them")
        try:
            report = rescore_report(record.report, rubric)
        except UsageError as exc:
            raise UsageError(f"{record.student_id}: {exc}") from None
        rescored.append(record.model_copy(update={
            "report": report, "status": status_of(report), "rubric_name": rubric.name, "rubric_version": rubric.version,
            "identity": record.identity and record.identity.model_copy(update={"rubric": rubric_hash(rubric)}),
        }))
    return Rescored(rescored, legacy)
