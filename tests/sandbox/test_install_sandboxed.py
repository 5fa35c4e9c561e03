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


# A build that writes into uv's cache, where a later submission's install would pick it up.
_POISON = """
import os, pathlib
planted = pathlib.Path(os.environ["UV_CACHE_DIR"], "planted-by-a-student")
planted.write_text("a wheel for the next submission")
raise SystemExit("PLANTED " + str(planted))
"""


def _submission_building(tmp_path: Path, setup_py: str) -> Path:
    """A checkout whose requirements build a local package running ``setup_py``; its requirements file."""
    checkout = tmp_path / "submission"
    package = checkout / "src" / "api" / "probe_pkg"
    package.mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
    """))
    (package / "setup.py").write_text(setup_py)
    requirements = checkout / "src" / "api" / "requirements.txt"
    requirements.write_text("./probe_pkg\n")
    return requirements


def test_a_build_backend_sees_neither_the_grader_nor_secrets(tmp_path, isolation):
    requirements = _submission_building(tmp_path, _SETUP)
    checkout = tmp_path / "submission"
    result = ensure_venv(requirements, tmp_path / "venvs", isolation=isolation, source_root=checkout, timeout_s=300)
    assert not result.ok
    probe = re.search(r"PROBE (\{.*\})", result.log)
    assert probe, result.log[-3000:]
    assert json.loads(probe.group(1)) == {"seen": []}


def test_a_build_cannot_plant_anything_in_the_cache_other_submissions_install_from(tmp_path, isolation, monkeypatch):
    shared = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(shared))
    requirements = _submission_building(tmp_path, _POISON)
    result = ensure_venv(requirements, tmp_path / "venvs", isolation=isolation, source_root=tmp_path / "submission",
                         timeout_s=300)
    assert not result.ok
    assert "PLANTED " in result.log, result.log[-3000:]  # the build ran, and could write its cache
    assert not list(shared.rglob("planted-by-a-student"))
    assert not list((tmp_path / "venvs").rglob("planted-by-a-student")), "the private cache is removed"
