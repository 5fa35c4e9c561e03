"""Containing a submission: what the machine allows (``detect``), the sandbox every process of a
submission runs in (``Confinement``), and its limits (``Limits``)."""

from grader.sandbox.confine import Confined, Confinement
from grader.sandbox.detect import Isolation, detect
from grader.sandbox.limits import Limits

__all__ = ["Confined", "Confinement", "Isolation", "Limits", "detect"]
