"""What a scenario declares about itself: its checks and its typed settings.

Each scenario module (``grader/scenarios/exN_*.py``) declares ``CHECKS``, a tuple of
``CheckSpec``, and ``Settings``, a ``ScenarioSettings`` model whose defaults are the grader's
and whose fields a rubric may override under the exercise's ``settings:``. ``grader.checks``
derives the catalogue from these declarations; the rubric loader validates settings against
them. This module imports nothing of the grader, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class CheckSpec:
    """One named check: ``exN.what_it_proves``.

    ``group``: the checks one API (or one stack) decides, failed together with one reason when
    it never serves. ``depends_on``: checks whose failure leaves this one nothing to judge (it is
    then ``not_gradable``, or failed with them when their API never served).
    """

    check_id: str
    static: bool  # decided by reading the code, without running it
    proves: str
    group: str = ""
    depends_on: tuple[str, ...] = ()

    @property
    def exercise(self) -> str:
        return self.check_id.split(".", 1)[0]


class ScenarioSettings(BaseModel):
    """The numbers a scenario reads, with the grader's defaults; a rubric may override any.

    Strict: a misspelled name or a value of the wrong kind fails the rubric's load.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
