"""Real bubblewrap, namespaces and cgroups: skipped with the reason when the machine lacks them
(a failure in CI)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from grader.sandbox import Confinement, Isolation, Limits, detect
from grader.stack.process import LocalApiProcess
from tests.needs import unavailable

# Small limits: every runaway is stopped within seconds.
TEST_LIMITS = Limits(memory_bytes=256 * 2**20, processes=64, output_bytes=200_000, disk_bytes=64 * 2**20)


@pytest.fixture(scope="session")
def isolation() -> Isolation:
    found = detect(TEST_LIMITS)
    if found.bwrap is None:
        unavailable(f"no usable bubblewrap: {'; '.join(found.missing)}")
    return found


@pytest.fixture(scope="session")
def full_isolation(isolation: Isolation) -> Isolation:
    if isolation.missing:
        unavailable(f"protections missing on this machine: {'; '.join(isolation.missing)}")
    return isolation


def start_app(tmp_path: Path, isolation: Isolation, source: str, env: dict[str, str] | None = None) -> LocalApiProcess:
    """Run ``source`` (a Python script) confined as an API would be: its dir and a HOME and
    TMPDIR writable, the grader's venv read-only (its python runs the script)."""
    app, home, tmp = tmp_path / "app", tmp_path / "home", tmp_path / "tmp"
    for path in (app, home, tmp):
        path.mkdir()
    (app / "app.py").write_text(textwrap.dedent(source))
    venv = Path(sys.executable).parent.parent  # not resolved: the venv, not the base interpreter
    confinement = Confinement(isolation, read_only=(venv,), read_write=(app, home, tmp))
    variables = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp),
                 "PYTHONUNBUFFERED": "1", **(env or {})}
    return LocalApiProcess(Path(sys.executable), app, variables, 0, output_limit_bytes=isolation.limits.output_bytes,
                           confinement=confinement, argv=[sys.executable, "app.py"])
