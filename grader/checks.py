"""The catalogue of checks the scenarios perform: the one list that rubrics bind to.

Derived from what each scenario module declares (``CHECKS`` and ``Settings``, see
``grader.catalogue``), so a check exists exactly where its probe is written. Each check is
named ``exN.what_it_proves``. A check proves a *fix*: it must fail on the starter (the
handout's library choices: sync OpenAI client with its defaults, plain uvicorn, ``["*"]``
CORS with credentials, pydantic-only validation), so nothing the stack does for free passes it.
"""

from __future__ import annotations

from grader.catalogue import CheckSpec, ScenarioSettings
from grader.scenarios import SCENARIOS

CHECKS: dict[str, CheckSpec] = {spec.check_id: spec for module in SCENARIOS.values() for spec in module.CHECKS}
EXERCISES: tuple[str, ...] = tuple(SCENARIOS)
SETTINGS: dict[str, type[ScenarioSettings]] = {exercise: module.Settings for exercise, module in SCENARIOS.items()}


def checks_of(exercise: str) -> list[CheckSpec]:
    """The checks of one exercise, in catalogue order."""
    return [spec for spec in CHECKS.values() if spec.exercise == exercise]
