"""Limits and the isolation summary: pure, no process started."""

from __future__ import annotations

import pytest

from grader.errors import MachineError
from grader.sandbox import Isolation, Limits


def test_rubric_settings_override_limits_by_name():
    limits = Limits.from_settings({"memory_bytes": 2**31, "startup_s": 30, "startup_timeout_s": 5})
    assert limits.memory_bytes == 2**31 and isinstance(limits.memory_bytes, int)
    assert limits.startup_s == 30.0
    assert limits.processes == Limits().processes


def test_summary_names_every_limit():
    assert Limits().summary() == ("memory 1 GiB, 256 processes, CPU 1 core, output 5 MB, disk 512 MiB, "
                                  "install 600 s, start-up 90 s, scenario 600 s, submission 1800 s")


def test_missing_protections_are_listed_and_required_on_demand():
    bare = Isolation(missing=("network isolation (no network namespace: denied)",))
    lines = bare.lines()
    assert lines[0].startswith("sandbox: NONE") and lines[1] == "network: NOT isolated"
    assert lines[2].endswith("(memory by address space (2 GiB), processes NOT limited; CPU NOT limited)")
    assert lines[3].startswith("install: uv NOT sandboxed")
    assert lines[-1] == "missing: network isolation (no network namespace: denied)"
    with pytest.raises(MachineError, match="sandbox required but missing: network isolation"):
        bare.require()
    Isolation().require()  # nothing listed as missing: nothing to refuse


def test_no_isolation_says_so():
    assert Isolation.none().lines() == ("sandbox: NONE (plain processes with a clean environment, own process group)",
                                        "network: NOT isolated", "limits: NONE except output kept (head and tail)")
