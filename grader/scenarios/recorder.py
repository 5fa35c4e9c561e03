"""Turns what a scenario observed into named CheckResults, never letting a probe raise past it.

Every failure says which kind it is (``marginal``: load could have decided it, so the fairness
rule runs it again; ``decisive``: it stands) and why, in the check's evidence.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Iterable

from grader.catalogue import CheckSpec
from grader.models import CheckResult, CheckStatus, Evidence, Failure
from grader.stack.base import ApiProcess


@dataclass(frozen=True)
class FailureCause:
    """The kind of a failure and why it is that kind, as the evidence will say it."""

    kind: Failure
    why: str

    def note(self) -> Evidence:
        rule = "re-run in a fresh stack" if self.kind is Failure.MARGINAL else "not re-run"
        return Evidence(kind="note", summary=f"{self.kind.value} failure ({rule}): {self.why}")


def marginal(why: str) -> FailureCause:
    """A failure load could have decided: a bound missed by little, a timeout, unsettled output."""
    return FailureCause(Failure.MARGINAL, why)


def decisive(why: str) -> FailureCause:
    """A failure no load explains: a wrong status or count, a missing header, an API that cannot start."""
    return FailureCause(Failure.DECISIVE, why)


# A time bound missed by less than this fraction of itself is a marginal failure: probes wait
# that much longer than the bound, so a miss by little is told apart from a miss by far.
TIME_MARGIN = 0.25


def with_margin(bound_s: float) -> float:
    """How long to wait on a ``bound_s`` time bound to tell a miss by little from a miss by far."""
    return bound_s * (1 + TIME_MARGIN)


def missed_bound(bound_s: float, took_s: float | None) -> FailureCause:
    """The kind of failing a time bound: marginal when it took less than ``with_margin(bound_s)``,
    decisive when it took longer or never ended (``took_s`` None)."""
    if took_s is not None and took_s <= with_margin(bound_s):
        return marginal(f"{took_s:.1f}s against a {bound_s:.0f}s bound: missed by little, which load explains")
    return decisive(f"still not done {with_margin(bound_s):.0f}s into a {bound_s:.0f}s bound: missed by far")


NO_ANSWER = marginal("no answer came before the probe's timeout, which load can delay")
WRONG_ANSWER = decisive("the API answered, and what it answered does not depend on load")


def unanswered(status: int | None) -> FailureCause:
    """``NO_ANSWER`` when no HTTP status came, else ``WRONG_ANSWER``."""
    return NO_ANSWER if status is None else WRONG_ANSWER


class Check:
    """Evidence gathered for one check until its verdict is given."""

    def __init__(self, check_id: str) -> None:
        self.check_id = check_id
        self.evidence: list[Evidence] = []
        self._started = time.monotonic()

    def note(self, kind: str, summary: str, detail: str = "") -> None:
        self.evidence.append(Evidence(kind=kind, summary=summary, detail=detail))

    def extend(self, evidence: Iterable[Evidence]) -> None:
        self.evidence.extend(evidence)

    def verdict(self, status: CheckStatus, reason: str, failure: FailureCause | None = None) -> CheckResult:
        evidence = tuple(self.evidence) + ((failure.note(),) if failure is not None else ())
        return CheckResult(
            check_id=self.check_id,
            status=status,
            reason=reason,
            evidence=evidence,
            duration_s=round(time.monotonic() - self._started, 3),
            failure=failure.kind if failure is not None else None,
        )


def killed_by_limit(api: ApiProcess | None) -> str | None:
    """The limit that ended ``api`` (memory, processes, disk), named; None while it runs or when
    nothing of the sandbox ended it."""
    if api is None or api.exit_code is None:
        return None
    return api.fatal_limit()


class Results:
    """Collects the verdicts of one scenario's ``specs``; what it never reached ends as ``error``."""

    def __init__(self, exercise: str, specs: tuple[CheckSpec, ...]) -> None:
        self.exercise = exercise
        self.specs = specs
        self._known = {spec.check_id for spec in specs}
        self._results: dict[str, CheckResult] = {}
        self._lock = threading.RLock()  # ``stop`` comes from a deadline's timer thread
        self.stopped = False

    def add(self, result: CheckResult) -> CheckResult:
        """Record a verdict; after ``stop`` the verdicts already given stand and this is ignored."""
        if result.check_id not in self._known:
            raise KeyError(f"{result.check_id!r} is not a check of {self.exercise}")
        with self._lock:
            if not self.stopped:
                self._results[result.check_id] = result
        return result

    def stop(self, reason: str) -> None:
        """Fail every undecided check with ``reason`` (a limit hit) and take no verdict after:
        what the run observes once its APIs are killed is not the submission's doing."""
        with self._lock:
            self.fail_all(self.undecided(), reason,
                          failure=decisive("a wall-time limit several times a scenario's normal length"))
            self.stopped = True

    def judge(self, check: Check, ok: bool, passed: str, failed: str, *, failure: FailureCause,
              api: ApiProcess | None = None) -> CheckResult:
        """Record ``passed`` or ``failed`` with the matching one-line reason; a failure is of the
        kind ``failure`` says. When a limit killed ``api``, the failure names that limit first:
        one cause, named the same way by every check the death decided."""
        if ok:
            return self.add(check.verdict(CheckStatus.PASSED, passed))
        if limit := killed_by_limit(api):
            failed = f"{limit} (the API was stopped): {failed}"
            failure = decisive(f"a sandbox limit ended the API ({limit})")
        return self.add(check.verdict(CheckStatus.FAILED, failed, failure))

    def fail_all(self, check_ids: Iterable[str], reason: str, evidence: Iterable[Evidence] = (), *,
                 failure: FailureCause) -> None:
        """Fail every listed check not yet decided with one reason (e.g. the API never served)."""
        evidence = tuple(evidence)
        for check_id in check_ids:
            if check_id not in self._results:
                check = Check(check_id)
                check.extend(evidence)
                self.add(check.verdict(CheckStatus.FAILED, reason, failure))

    def not_gradable(self, check_id: str, reason: str, *, failure: FailureCause) -> CheckResult:
        """A check whose prerequisite failed; ``failure`` is the prerequisite's kind."""
        return self.add(Check(check_id).verdict(CheckStatus.NOT_GRADABLE, reason, failure))

    def passed(self, check_id: str) -> bool:
        result = self._results.get(check_id)
        return result is not None and result.status is CheckStatus.PASSED

    def failure_of(self, check_id: str) -> FailureCause:
        """The kind of a decided check's failure, for the checks that depend on it."""
        result = self._results.get(check_id)
        kind = result.failure if result is not None and result.failure is not None else Failure.DECISIVE
        return FailureCause(kind, f"it depends on {check_id}, whose failure was {kind.value}")

    def undecided(self) -> list[str]:
        return [spec.check_id for spec in self.specs if spec.check_id not in self._results]

    def group(self, name: str) -> list[str]:
        """The checks of group ``name`` and those that depend on them, however indirectly: what an
        API of the group that never serves leaves undecidable."""
        members = {spec.check_id for spec in self.specs if spec.group == name}
        grown = True
        while grown:
            dependents = {spec.check_id for spec in self.specs if set(spec.depends_on) & members}
            grown = not dependents <= members
            members |= dependents
        return [spec.check_id for spec in self.specs if spec.check_id in members]

    def finish(self, crash: BaseException | None = None) -> list[CheckResult]:
        """Every check of the exercise, in catalogue order; undecided ones become ``error``."""
        reason = "the grader stopped before deciding this check"
        detail = ""
        if crash is not None:
            reason = f"grader error: {type(crash).__name__}: {crash}".splitlines()[0]
            detail = "".join(traceback.format_exception(crash))[-4000:]
        out = []
        for spec in self.specs:
            result = self._results.get(spec.check_id)
            if result is None:
                check = Check(spec.check_id)
                if detail:
                    check.note("note", "grader traceback", detail)
                result = check.verdict(CheckStatus.ERROR, reason)
            out.append(result)
        return out
