"""``--backend auto``: compose where an engine answers, else local, and the report says which."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures.build import build_fixture
from grader.pipeline import choose_backend

from .support import require_compose


def test_auto_grades_locally_and_says_why_when_no_engine_answers(tmp_path):
    submission = build_fixture("no-src-api")  # unrunnable: graded in seconds on any backend
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    grade = Path(sys.executable).parent / "grade"  # the installed entry point, as a user runs it
    run = subprocess.run([str(grade), str(submission), "--backend", "auto", "--only", "ex1",
                          "-f", "json", "-o", str(tmp_path / "out")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert report["isolation"][0].startswith("backend: local (auto: no Docker engine answering"), report["isolation"]
    assert "backend: local" in run.stderr


def test_auto_picks_compose_where_an_engine_and_a_compose_cli_answer():
    require_compose()
    backend, why = choose_backend("auto")
    assert backend == "compose" and why.startswith("auto: a Docker engine")


def test_an_explicit_backend_is_taken_as_asked():
    assert choose_backend("local") == ("local", "asked for")
