"""The grading's wall-time limits as one clock that crosses into the stack-phase child."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from grader.sandbox.limits import Limits


@dataclass(frozen=True)
class GradingClock:
    """The grading's wall-time limits: ``startup_s`` for an API to answer once spawned,
    ``scenario_s`` per scenario run, and the submission's limit passing at ``ends_at``
    (``time.time()``, so it crosses into the stack-phase child)."""

    scenario_s: float
    submission_s: float
    ends_at: float
    startup_s: float = Limits.startup_s

    DEFAULT_STARTUP_S: ClassVar[float] = Limits.startup_s  # for contexts without a clock

    @classmethod
    def starting_now(cls, scenario_s: float, submission_s: float, startup_s: float = DEFAULT_STARTUP_S
                     ) -> "GradingClock":
        return cls(scenario_s=scenario_s, submission_s=submission_s, ends_at=time.time() + submission_s,
                   startup_s=startup_s)

    def run_limit(self) -> tuple[float, str]:
        """Seconds a run starting now may take, and the limit that sets them, as reported."""
        left = self.ends_at - time.time()
        if left < self.scenario_s:
            return max(0.0, left), f"submission time limit hit ({self.submission_s:.0f} s for the whole grading)"
        return self.scenario_s, f"scenario time limit hit ({self.scenario_s:.0f} s per run)"
