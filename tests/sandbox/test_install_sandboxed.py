"""The install runs sandboxed too: a build backend (student code) sees no more than the API."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from grader.stack.venv import ensure_venv

pytestmark = pytest.mark.slow

_REPO = Path(__file__).resolve().parents[2]
# Wherever the grader is checked out: its code, its solution, the caller's secrets.
_PROBED = [str(_REPO / "grader"), str(_REPO / "reference_solution"), str(Path.home() / ".ssh"),
           str(Path.home() / ".bashrc"), "/etc/shadow", "/etc/gshadow"]
_SETUP = f"""
import json, os
paths = {_PROBED!r}
seen = [path for path in paths if os.path.exists(path)]
raise SystemExit("PROBE " + json.dumps({{"seen": seen}}))
"""


def test_a_build_backend_sees_neither_the_grader_nor_secrets(tmp_path, isolation):
    checkout = tmp_path / "submission"
    package = checkout / "src" / "api" / "probe_pkg"
    package.mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
    """))
    (package / "setup.py").write_text(_SETUP)
    requirements = checkout / "src" / "api" / "requirements.txt"
    requirements.write_text("./probe_pkg\n")
    result = ensure_venv(requirements, tmp_path / "venvs", isolation=isolation, source_root=checkout, timeout_s=300)
    assert not result.ok
    probe = re.search(r"PROBE (\{.*\})", result.log)
    assert probe, result.log[-3000:]
    assert json.loads(probe.group(1)) == {"seen": []}
