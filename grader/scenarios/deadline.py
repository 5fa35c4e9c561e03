"""Wall-time limits on the scenarios: per scenario run and per submission.

A scenario runs in a thread, which cannot be stopped from outside; what it waits on can. When
a run's limit passes, its undecided checks fail naming the limit (the submission was too slow:
every probe has its own timeout, so only a submission that keeps the grader waiting gets here),
every API it started is killed so its pending probes return at once, and opening a stack,
starting an API or sending a probe raises ``TimeLimitHit``, so the run ends soon after. The
submission's limit is one clock for the whole grading: a run (or a re-run) never outlasts it.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Callable, Mapping

from grader.clock import GradingClock
from grader.stack.base import ApiProcess, Stack

from .recorder import Results


class TimeLimitHit(Exception):
    """Raised into a scenario run that outlived its wall-time limit."""


class RunDeadline:
    """One scenario run's limit, armed as a context manager around the run."""

    def __init__(self, clock: GradingClock, results: Results) -> None:
        self._limit_s, self.reason = clock.run_limit()
        self._results = results
        self._apis: list[ApiProcess] = []
        self._lock = threading.Lock()
        self.expired = False
        self._timer = threading.Timer(self._limit_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "RunDeadline":
        if self._limit_s <= 0:
            self._expire()
        else:
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def guard(self, open_stack: Callable[[str], AbstractContextManager[Stack]]
              ) -> Callable[[str], AbstractContextManager[Stack]]:
        """``open_stack`` whose stacks record the APIs they start, for ``_expire`` to kill."""

        def opened(name: str) -> AbstractContextManager[Stack]:
            self.check()
            return _GuardedStack(open_stack(name), self)

        return opened

    def check(self) -> None:
        """Raise TimeLimitHit once the limit has passed (probes call it before each request)."""
        if self.expired:
            raise TimeLimitHit(self.reason)

    def track(self, api: ApiProcess) -> None:
        """Kill ``api`` when the limit passes (at once if it already has)."""
        with self._lock:
            self._apis.append(api)
            expired = self.expired
        if expired:  # started while the limit passed: killed like the others
            api.kill()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            apis = list(self._apis)
        self._results.stop(self.reason)
        for api in apis:
            api.kill()


class _GuardedStack:
    """A stack that reports the APIs it starts to its run's deadline and refuses new ones
    after it; everything else is the stack's own."""

    def __init__(self, stack: AbstractContextManager[Stack], deadline: RunDeadline) -> None:
        self._stack = stack
        self._deadline = deadline
        self._entered: Stack | None = None

    def __enter__(self) -> "_GuardedStack":
        self._entered = self._stack.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> bool | None:
        return self._stack.__exit__(*exc_info)

    def start_api(self, env: Mapping[str, str | None] | None = None) -> ApiProcess:
        self._deadline.check()
        api = self._entered.start_api(env)
        self._deadline.track(api)
        return api

    def __getattr__(self, name: str):
        return getattr(self._entered, name)
