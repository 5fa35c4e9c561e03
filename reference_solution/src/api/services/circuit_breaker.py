"""Circuit breaker for the LLM proxy (exercise 3).

Opens after FAILURE_THRESHOLD (5) consecutive failed upstream attempts; while open, calls
fail fast without touching the upstream; after CIRCUIT_RECOVERY_SECONDS (30) one probe is
let through (half-open): success closes it, failure re-opens it.
"""

from __future__ import annotations

import os
import threading
import time

from config.logging_config import get_logger

logger = get_logger("api.circuit_breaker")


class CircuitOpenError(Exception):
    """The breaker refused the call."""


class CircuitBreaker:
    def __init__(self, name: str, failure_threshold: int, recovery_seconds: float) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_seconds = recovery_seconds
        self.state = "closed"
        self.failures = 0
        self.opened_at: float | None = None
        self._probe_in_flight = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and time.monotonic() - (self.opened_at or 0) >= self.recovery_seconds:
                self.state = "half_open"
                self._probe_in_flight = False
                logger.info(f"Circuit breaker '{self.name}' half-open: letting one probe through")
            if self.state == "half_open" and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self.state != "closed":
                logger.info(f"Circuit breaker '{self.name}' closed: upstream recovered")
            self.state, self.failures, self.opened_at, self._probe_in_flight = "closed", 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            self._probe_in_flight = False
            if self.state == "half_open" or (self.state == "closed" and self.failures >= self.failure_threshold):
                self.state, self.opened_at = "open", time.monotonic()
                logger.warning(f"Circuit breaker '{self.name}' opened after {self.failures} consecutive failures",
                               extra={"failures": self.failures, "recovery_seconds": self.recovery_seconds})

    def snapshot(self) -> dict:
        with self._lock:
            retry_in = None
            if self.state == "open" and self.opened_at is not None:
                retry_in = max(0.0, round(self.recovery_seconds - (time.monotonic() - self.opened_at), 1))
            return {
                "name": self.name,
                "state": self.state,
                "consecutive_failures": self.failures,
                "failure_threshold": self.failure_threshold,
                "recovery_seconds": self.recovery_seconds,
                "retry_in_seconds": retry_in,
            }


llm_breaker = CircuitBreaker(
    "litellm",
    failure_threshold=int(os.getenv("CIRCUIT_FAILURE_THRESHOLD", "5")),
    recovery_seconds=float(os.getenv("CIRCUIT_RECOVERY_SECONDS", "30")),
)


def snapshot() -> dict:
    return llm_breaker.snapshot()
