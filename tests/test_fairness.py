"""The fairness rule: a marginal failure of a dynamic check is re-run in fresh stacks before it
is scored; a decisive one stands as observed.

The scenario here is a scripted stand-in for an exercise's module (the rule lives in the
runner, above any scenario); real scenarios on real stacks exercise it in tests/e2e.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.models import REPRODUCE, CheckResult, CheckStatus
from grader.report.audience import Audience, for_audience
from grader.scenarios import ex1_config, runner
from grader.scenarios.context import ScenarioContext
from grader.scenarios.recorder import Check, FailureCause, decisive, marginal
from grader.stack.base import SubmissionUnrunnable
from tests.test_scoring import _criterion, _results, _score

DYNAMIC, STATIC = "ex1.refuses_short_secret", "ex1.no_hardcoded_secret"
OTHER = "ex1.refuses_missing_secret"
LOAD = marginal("no answer before the timeout")
WRONG = decisive("answered 500")


def _run(monkeypatch, verdicts_per_attempt: list[dict[str, FailureCause] | Exception]
         ) -> tuple[dict[str, CheckResult], int]:
    """Run ex1 with a scenario whose n-th attempt judges checks as ``verdicts_per_attempt[n]``
    says (a check listed fails with that cause; the others pass).

    Returns the verdicts by check id and how many attempts ran.
    """
    attempts = []

    def run(ctx, results):
        script = verdicts_per_attempt[len(attempts)]
        attempts.append(script)
        if isinstance(script, Exception):
            raise script
        for spec_id in [spec.check_id for spec in ex1_config.CHECKS]:
            check = Check(spec_id)
            check.note("note", f"attempt {len(attempts)}")
            results.judge(check, spec_id not in script, "did it", f"did not, attempt {len(attempts)}",
                          failure=script.get(spec_id, WRONG))

    monkeypatch.setitem(runner.SCENARIOS, "ex1", SimpleNamespace(run=run, CHECKS=ex1_config.CHECKS))
    ctx = ScenarioContext(exercise="ex1", checkout=Path("."), open_stack=lambda name: nullcontext(),
                          settings=ex1_config.Settings())
    return {check.check_id: check for check in runner.run_scenario(ctx)}, len(attempts)


def test_a_marginal_failure_that_passes_when_re_run_is_flaky_and_keeps_both_runs_evidence(monkeypatch):
    checks, attempts = _run(monkeypatch, [{DYNAMIC: LOAD}, {}])
    assert attempts == 2
    flaky = checks[DYNAMIC]
    assert flaky.status is CheckStatus.FLAKY and flaky.status.credited
    assert "did not, attempt 1" in flaky.reason
    assert [e.summary for e in flaky.evidence] == [
        "attempt 1", "marginal failure (re-run in a fresh stack): no answer before the timeout",
        "re-run in a fresh stack: passed", "attempt 2"]
    assert all(c.status is CheckStatus.PASSED for cid, c in checks.items() if cid != DYNAMIC)


def test_a_marginal_failure_that_fails_again_stands_and_says_so(monkeypatch):
    checks, attempts = _run(monkeypatch, [{DYNAMIC: LOAD}, {DYNAMIC: LOAD}])
    assert attempts == 2
    failed = checks[DYNAMIC]
    assert failed.status is CheckStatus.FAILED and failed.reason == "did not, attempt 1"
    # The fairness note closes the observations; the recipe to replay it on one's own stack follows.
    assert failed.evidence[-2].summary == "re-run in a fresh stack: failed again: did not, attempt 2"
    assert failed.evidence[-1].kind == REPRODUCE


def test_a_decisive_failure_is_not_re_run_and_says_why(monkeypatch):
    checks, attempts = _run(monkeypatch, [{DYNAMIC: WRONG}])
    assert attempts == 1
    failed = checks[DYNAMIC]
    assert failed.status is CheckStatus.FAILED and failed.failure.value == "decisive"
    assert failed.evidence[-2].summary == "decisive failure (not re-run): answered 500"
    assert failed.evidence[-1].kind == REPRODUCE


def test_a_decisive_failure_stands_even_when_a_marginal_one_re_runs_its_scenario(monkeypatch):
    checks, attempts = _run(monkeypatch, [{DYNAMIC: LOAD, OTHER: WRONG}, {}])
    assert attempts == 2
    assert checks[DYNAMIC].status is CheckStatus.FLAKY
    assert checks[OTHER].status is CheckStatus.FAILED and checks[OTHER].reason == "did not, attempt 1"


def test_a_pass_stands_whatever_the_re_run_says(monkeypatch):
    checks, attempts = _run(monkeypatch, [{DYNAMIC: LOAD}, {OTHER: LOAD}])
    assert attempts == 2
    assert checks[OTHER].status is CheckStatus.PASSED
    assert checks[DYNAMIC].status is CheckStatus.FLAKY


@pytest.mark.parametrize("first", [{}, {STATIC: LOAD}], ids=["all passed", "only a static check failed"])
def test_nothing_dynamic_failed_runs_once(monkeypatch, first):
    checks, attempts = _run(monkeypatch, [first])
    assert attempts == 1
    assert {c.status for c in checks.values()} <= {CheckStatus.PASSED, CheckStatus.FAILED}


def test_a_submission_that_cannot_run_is_not_re_run(monkeypatch):
    checks, attempts = _run(monkeypatch, [SubmissionUnrunnable("requirements.txt: no such package 'fastapy'")])
    assert attempts == 1
    assert {c.status for c in checks.values()} == {CheckStatus.FAILED}


def test_a_grader_error_is_retried_then_the_fairness_rule_applies(monkeypatch):
    checks, attempts = _run(monkeypatch, [RuntimeError("engine went away"), {DYNAMIC: LOAD}, {}])
    assert attempts == 3
    assert checks[DYNAMIC].status is CheckStatus.FLAKY


def test_an_error_gives_way_to_the_re_run():
    error = CheckResult(check_id=DYNAMIC, status=CheckStatus.ERROR, reason="grader error")
    rerun = CheckResult(check_id=DYNAMIC, status=CheckStatus.FAILED, reason="did not", failure="decisive")
    assert runner.rerun_verdict(error, rerun) is rerun


def test_a_flaky_check_earns_its_points_and_is_listed_for_instructors_only():
    report = _score(_results(ex3__body_limit=(CheckStatus.FLAKY, "failed, then passed when re-run")))
    assert _criterion(report, "ex3.body_limit").points == 2 and report.points == 100
    assert report.needs_review == ("ex3.body_limit is flaky: failed, then passed when re-run",)
    assert for_audience(report, Audience.STUDENT).needs_review == ()


def test_not_gradable_costs_the_points_like_a_failure():
    report = _score(_results(ex3__body_limit=(CheckStatus.NOT_GRADABLE, "the API never served")))
    assert _criterion(report, "ex3.body_limit").points == 0 and report.needs_review == ()
