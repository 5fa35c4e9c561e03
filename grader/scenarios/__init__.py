"""One scripted scenario per exercise; each turns probes into the checks of the catalogue."""

from __future__ import annotations

from types import ModuleType

from . import ex1_config, ex2_shutdown, ex3_timeouts, ex4_errors, ex5_health, ex6_logging

SCENARIOS: dict[str, ModuleType] = {
    module.EXERCISE: module
    for module in (ex1_config, ex2_shutdown, ex3_timeouts, ex4_errors, ex5_health, ex6_logging)
}
