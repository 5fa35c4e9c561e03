"""The start gate: an API that cannot start is started once per grading, one that can is not held up."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from grader.models import Evidence, Failure
from grader.scenarios.context import StartFailure, StartGate
from grader.scenarios.recorder import decisive, marginal

FAILURE = StartFailure("the API did not start: exited with code 1: ModuleNotFoundError: No module named 'x'",
                       Evidence(kind="log", summary="start-up output", detail="Traceback ..."),
                       decisive("cannot start"))


class _Attempts:
    """Counts attempts; each takes ``seconds`` and gives ``outcome``."""

    def __init__(self, outcome, seconds: float = 0.2) -> None:
        self.outcome, self.seconds, self.count = outcome, seconds, 0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.count += 1
        time.sleep(self.seconds)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_an_api_that_cannot_start_is_started_once_and_every_caller_learns_why():
    gate, attempts = StartGate(), _Attempts(FAILURE)
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda _: gate.start(attempts), range(6)))
    assert attempts.count == 1
    assert {outcome.reason for outcome in outcomes} == {FAILURE.reason}
    learned = [outcome for outcome in outcomes if outcome is not FAILURE]
    assert len(learned) == 5 and all("not started again" in o.evidence.summary for o in learned)
    assert all(o.evidence.detail == FAILURE.evidence.detail for o in learned)
    assert gate.start(attempts).reason == FAILURE.reason and attempts.count == 1  # a re-run learns it too


def test_an_api_that_serves_lets_every_caller_start_its_own():
    serving = object()
    gate, attempts = StartGate(), _Attempts(serving)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: gate.start(attempts), range(4)))
    assert attempts.count == 4 and all(outcome is serving for outcome in outcomes)


def test_a_prober_that_is_interrupted_teaches_nothing_and_the_next_caller_probes():
    gate = StartGate()
    with pytest.raises(TimeoutError):
        gate.start(_Attempts(TimeoutError("the run's time limit")))
    attempts = _Attempts(FAILURE)
    assert gate.start(attempts).reason == FAILURE.reason and attempts.count == 1


def test_a_waiting_caller_still_honours_its_own_time_limit():
    gate = StartGate()
    slow = threading.Thread(target=gate.start, args=(_Attempts(FAILURE, seconds=3.0),))
    slow.start()
    time.sleep(0.2)

    def out_of_time() -> None:
        raise TimeoutError("this run's limit")

    with pytest.raises(TimeoutError):
        gate.start(_Attempts(FAILURE), out_of_time)
    slow.join()


TIMED_OUT = StartFailure("the API did not answer HTTP within 90s (still running)", FAILURE.evidence,
                         marginal("still starting when the start-up limit passed"), learned=False)


class _Sequence(_Attempts):
    """Gives ``outcomes`` in turn, one per attempt."""

    def __init__(self, *outcomes) -> None:
        super().__init__(None)
        self._outcomes = list(outcomes)

    def __call__(self):
        self.outcome = self._outcomes[min(self.count, len(self._outcomes) - 1)]
        return super().__call__()


def test_a_start_that_timed_out_is_tried_once_more_alone_and_two_are_learned():
    # Load slows a start: one timed-out start proves nothing, two in a row answer for the grading.
    gate, attempts = StartGate(), _Attempts(TIMED_OUT)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: gate.start(attempts), range(4)))
    assert attempts.count == 2
    assert sum(outcome is TIMED_OUT for outcome in outcomes) == 1
    learned = [outcome for outcome in outcomes if outcome is not TIMED_OUT]
    assert len(learned) == 3
    assert all(o.reason == f"{TIMED_OUT.reason}, in two starts one after the other" for o in learned)
    assert all(o.failure.kind is Failure.DECISIVE for o in learned)
    assert gate.learned().reason == learned[0].reason and gate.start(attempts).reason == learned[0].reason
    assert attempts.count == 2


def test_a_start_that_timed_out_then_served_lets_every_caller_start_its_own():
    serving = object()
    gate, attempts = StartGate(), _Sequence(TIMED_OUT, serving)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: gate.start(attempts), range(4)))
    assert attempts.count == 4 and gate.learned() is None
    assert sum(outcome is TIMED_OUT for outcome in outcomes) == 1
    assert sum(outcome is serving for outcome in outcomes) == 3
