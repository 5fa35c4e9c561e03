"""Turns what a scenario observed into named CheckResults, never letting a probe raise past it."""

from __future__ import annotations

import threading
import time
import traceback
from typing import Iterable

from grader.checks import CHECKS, checks_of
from grader.models import CheckResult, CheckStatus, Evidence


class Check:
    """Evidence gathered for one check until its verdict is given."""

    def __init__(self, check_id: str) -> None:
        if check_id not in CHECKS:
            raise KeyError(f"unknown check {check_id!r}")
        self.check_id = check_id
        self.evidence: list[Evidence] = []
        self._started = time.monotonic()

    def note(self, kind: str, summary: str, detail: str = "") -> None:
        self.evidence.append(Evidence(kind=kind, summary=summary, detail=detail))

    def extend(self, evidence: Iterable[Evidence]) -> None:
        self.evidence.extend(evidence)

    def verdict(self, status: CheckStatus, reason: str) -> CheckResult:
        return CheckResult(
            check_id=self.check_id,
            status=status,
            reason=reason,
            evidence=tuple(self.evidence),
            duration_s=round(time.monotonic() - self._started, 3),
        )


class Results:
    """Collects the verdicts of one scenario; what it never reached ends as ``error``."""

    def __init__(self, exercise: str) -> None:
        self.exercise = exercise
        self._results: dict[str, CheckResult] = {}
        self._lock = threading.RLock()  # ``stop`` comes from a deadline's timer thread
        self.stopped = False

    def add(self, result: CheckResult) -> CheckResult:
        """Record a verdict; after ``stop`` the verdicts already given stand and this is ignored."""
        with self._lock:
            if not self.stopped:
                self._results[result.check_id] = result
        return result

    def stop(self, reason: str) -> None:
        """Fail every undecided check with ``reason`` (a limit hit) and take no verdict after:
        what the run observes once its APIs are killed is not the submission's doing."""
        with self._lock:
            self.fail_all(self.undecided(), reason)
            self.stopped = True

    def judge(self, check: Check, ok: bool, passed: str, failed: str) -> CheckResult:
        """Record ``passed`` or ``failed`` with the matching one-line reason."""
        if ok:
            return self.add(check.verdict(CheckStatus.PASSED, passed))
        return self.add(check.verdict(CheckStatus.FAILED, failed))

    def fail_all(self, check_ids: Iterable[str], reason: str, evidence: Iterable[Evidence] = ()) -> None:
        """Fail every listed check not yet decided with one reason (e.g. the API never served)."""
        for check_id in check_ids:
            if check_id not in self._results:
                check = Check(check_id)
                check.extend(evidence)
                self.add(check.verdict(CheckStatus.FAILED, reason))

    def not_gradable(self, check_id: str, reason: str) -> CheckResult:
        return self.add(Check(check_id).verdict(CheckStatus.NOT_GRADABLE, reason))

    def passed(self, check_id: str) -> bool:
        result = self._results.get(check_id)
        return result is not None and result.status is CheckStatus.PASSED

    def undecided(self) -> list[str]:
        return [spec.check_id for spec in checks_of(self.exercise) if spec.check_id not in self._results]

    def finish(self, crash: BaseException | None = None) -> list[CheckResult]:
        """Every check of the exercise, in catalogue order; undecided ones become ``error``."""
        reason = "the grader stopped before deciding this check"
        detail = ""
        if crash is not None:
            reason = f"grader error: {type(crash).__name__}: {crash}".splitlines()[0]
            detail = "".join(traceback.format_exception(crash))[-4000:]
        out = []
        for spec in checks_of(self.exercise):
            result = self._results.get(spec.check_id)
            if result is None:
                check = Check(spec.check_id)
                if detail:
                    check.note("note", "grader traceback", detail)
                result = check.verdict(CheckStatus.ERROR, reason)
            out.append(result)
        return out
