"""Waiting for a submission to do something, written once: poll, keep the last observation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Polled(Generic[T]):
    """The last observation of a poll, whether it satisfied the predicate, and the wait."""

    last: T
    satisfied: bool
    waited_s: float


def poll_until(observe: Callable[[], T], satisfied: Callable[[T], bool], timeout: float,
               interval: float = 0.5) -> Polled[T]:
    """Observe until ``satisfied(observation)`` or ``timeout`` seconds have passed; at least once.

    Each observation may itself take time (an HTTP probe): the next one starts ``interval``
    seconds after the previous one ended, and none starts after the timeout.
    """
    started = time.monotonic()
    while True:
        last = observe()
        waited = time.monotonic() - started
        if satisfied(last):
            return Polled(last, True, waited)
        if waited + interval > timeout:
            return Polled(last, False, waited)
        time.sleep(interval)
