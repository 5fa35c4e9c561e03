"""Scoring: rubric + check results -> ``GradeReport``. Pure: no I/O, no clock.

A check that is ``error`` leaves its criterion ungraded (points None) and the report
incomplete: the total is then a lower bound, never a silent 0. ``not_gradable`` is a failure
of the student's (a prerequisite of theirs broke) and costs the points with its reason.
``flaky`` (failed, then passed in a fresh stack) earns the points and is listed in
``needs_review`` for a human look.
Exercises left out by ``only`` are not graded and not counted: ``max_points`` covers only
the graded exercises, and bands/pass mark apply to the percentage of those points.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from grader.errors import UsageError
from grader.models import (
    CheckResult,
    CheckStatus,
    CriterionScore,
    CriterionStatus,
    DiffReport,
    ExerciseScore,
    GradeReport,
    GraderIdentity,
    Submission,
)
from grader.rubric import Credit, Criterion, Exercise, Rubric


def score(
    rubric: Rubric,
    checks: Mapping[str, CheckResult],
    submission: Submission,
    *,
    grader_version: str,
    graded_at: datetime,
    identity: GraderIdentity | None = None,
    diff: DiffReport | None = None,
    warnings: Iterable[str] = (),
    isolation: Iterable[str] = (),
    duration_s: float = 0.0,
    only: set[str] | None = None,
) -> GradeReport:
    """Score ``checks`` against ``rubric``; ``only`` restricts grading to those exercises."""
    unknown = sorted((only or set()) - set(rubric.exercises))
    if unknown:
        raise UsageError(f"unknown exercise(s) {', '.join(unknown)}: the rubric has {', '.join(rubric.exercises)}")
    graded_ids = [ex_id for ex_id in rubric.exercises if only is None or ex_id in only]
    exercises = tuple(_score_exercise(ex_id, rubric.exercises[ex_id], checks) for ex_id in graded_ids)

    points = _round(sum(ex.points for ex in exercises))
    max_points = _round(sum(ex.max_points for ex in exercises))
    percent = _round(100 * points / max_points) if max_points else 0.0
    complete = all(ex.complete for ex in exercises)
    notes: list[str] = []
    if len(graded_ids) < len(rubric.exercises):
        notes.append(f"only {', '.join(graded_ids)} graded: points, band and pass cover "
                     f"{max_points:g} of {rubric.max_points:g} points")

    band = rubric.band_for(percent)
    passed = percent >= rubric.pass_mark
    rule = _min_complete_verdict(rubric, exercises)
    if rule is not None and passed:
        # The rule only needs explaining when it is what turned a pass into a refusal.
        reason, established = rule
        if established:
            lowest = rubric.bands[-1].name
            notes.append(f"{reason}: pass refused and band capped at '{lowest}' (was '{band}')")
            band = lowest
        else:
            notes.append(f"{reason}: no pass can be confirmed, band kept")
        passed = False

    return GradeReport(
        grader_version=grader_version,
        identity=identity,
        rubric_name=f"{rubric.name} {rubric.version}",
        graded_at=graded_at,
        submission=submission,
        exercises=exercises,
        points=points,
        max_points=max_points,
        complete=complete,
        band=band,
        passed=passed,
        rule_notes=tuple(notes),
        warnings=tuple(warnings),
        needs_review=tuple(f"{check.check_id} is flaky: {check.reason}" for ex in exercises
                           for criterion in ex.criteria for check in criterion.checks
                           if check.status is CheckStatus.FLAKY),
        isolation=tuple(isolation),
        diff=diff,
        duration_s=_round(duration_s),
    )


def _round(value: float) -> float:
    # Rubric points have at most 2 decimals; rounding keeps 8 x 1/3 from printing as 2.6666...
    return round(value, 2)


def _score_exercise(ex_id: str, exercise: Exercise, checks: Mapping[str, CheckResult]) -> ExerciseScore:
    criteria = tuple(_score_criterion(criterion, checks) for criterion in exercise.criteria)
    return ExerciseScore(
        exercise_id=ex_id,
        title=exercise.title,
        max_points=exercise.points,
        points=_round(sum(c.points for c in criteria if c.points is not None)),
        complete=all(c.status is not CriterionStatus.UNGRADED for c in criteria),
        criteria=criteria,
    )


def _score_criterion(criterion: Criterion, checks: Mapping[str, CheckResult]) -> CriterionScore:
    results = tuple(
        checks.get(check_id)
        or CheckResult(check_id=check_id, status=CheckStatus.ERROR,
                       reason=f"no result for {check_id}: the grader did not run it")
        for check_id in criterion.checks
    )
    errors = [r for r in results if r.status is CheckStatus.ERROR]
    if errors:
        points, status, lost = None, CriterionStatus.UNGRADED, errors
    else:
        passed = sum(r.status.credited for r in results)
        if criterion.credit is Credit.PROPORTIONAL:
            points = _round(criterion.points * passed / len(results))
        else:
            points = criterion.points if passed == len(results) else 0.0
        status = (CriterionStatus.PASSED if passed == len(results)
                  else CriterionStatus.FAILED if points == 0 else CriterionStatus.PARTIAL)
        lost = [r for r in results if not r.status.credited]
    return CriterionScore(
        criterion_id=criterion.id,
        title=criterion.title,
        visibility=criterion.visibility,
        max_points=criterion.points,
        points=points,
        status=status,
        # Several checks often share one cause (the service did not start): say it once.
        reasons=tuple(dict.fromkeys(r.reason for r in lost)),
        hint=criterion.hint,
        checks=results,
    )


def _min_complete_verdict(rubric: Rubric, exercises: tuple[ExerciseScore, ...]) -> tuple[str, bool] | None:
    """None when the min_complete rule holds, else why not and whether its failure is established.

    An exercise is complete when it earns all its points. Exercises not graded (``only``) or
    with ungraded criteria might still be complete: if they could make up the count, the
    failure is not established (the pass is refused, the band is not capped).
    """
    rule = rubric.min_complete
    if rule is None:
        return None
    by_id = {ex.exercise_id: ex for ex in exercises}
    done = [ex_id for ex_id in rule.of if ex_id in by_id and by_id[ex_id].points >= by_id[ex_id].max_points]
    if len(done) >= rule.count:
        return None
    unknown = [ex_id for ex_id in rule.of if ex_id not in by_id or not by_id[ex_id].complete]
    reason = (f"at least {rule.count} of {', '.join(rule.of)} must be complete; "
              f"complete: {', '.join(done) or 'none'}")
    if unknown and len(done) + len(unknown) >= rule.count:
        return f"{reason} ({', '.join(unknown)} not graded)", False
    return reason, True
