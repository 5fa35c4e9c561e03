"""One scripted scenario per exercise; each turns probes into the checks of the catalogue."""

from __future__ import annotations

from types import ModuleType
from typing import Mapping

from grader.catalogue import ScenarioSettings

from . import ex1_config, ex2_shutdown, ex3_timeouts, ex4_errors, ex5_health, ex6_logging

SCENARIOS: dict[str, ModuleType] = {
    module.EXERCISE: module
    for module in (ex1_config, ex2_shutdown, ex3_timeouts, ex4_errors, ex5_health, ex6_logging)
}


def scenario_settings(exercise: str, values: Mapping[str, float]) -> ScenarioSettings:
    """The scenario's own ``Settings``: ``values`` (a rubric's, validated when it loaded) over its defaults."""
    return SCENARIOS[exercise].Settings.model_validate(dict(values))
