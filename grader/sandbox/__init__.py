"""Containing a submission: what the machine allows (``detect``), the sandbox every process of a
submission runs in (``Confinement``), its limits (``Limits``) and the stack phase's own network
namespace (``grader.sandbox.stack_phase``)."""

from grader.sandbox.confine import Confined, Confinement
from grader.sandbox.detect import Isolation, detect
from grader.sandbox.limits import Limits

__all__ = ["Confined", "Confinement", "Isolation", "Limits", "detect"]
