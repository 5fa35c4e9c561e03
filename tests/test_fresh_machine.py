"""A fresh Debian 12 with only python3 and git follows the README and grades a fixture
(docs/fresh_machine.py, run as a person would run it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.manifest import expected_total
from tests.containers import engine_or_skip
from tests.test_readme_commands import _fresh_machine

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.e2e  # image builds and whole gradings in containers: a release check (README), not in CI's stages
@pytest.mark.release
@pytest.mark.timeout(3000)
def test_a_fresh_debian_follows_the_readme():
    engine_or_skip()
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "fresh_machine.py")], capture_output=True,
                          text=True, timeout=2900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    fixture = re.search(r"fixtures\.build (\S+)", _fresh_machine().readme_commands()["grade"]).group(1)
    verdict = done.stdout.strip().splitlines()[-1]
    assert verdict.startswith(f"a fresh Debian 12 followed the README: Total {expected_total(fixture):g}/100")
