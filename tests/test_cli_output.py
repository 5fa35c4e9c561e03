"""``grade X -f json -o - | python -m json.tool`` on a real grading, in real processes: stdout
holds the report alone, whatever the grading's child processes (uv, MLflow, the submission's
API) print; ``-q`` leaves only the verdict line on stderr. The fixture's API prints and exits
at start-up: a grading of seconds that still runs every kind of child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_fixture
from fixtures.manifest import expected_points

GRADE = str(Path(sys.executable).with_name("grade"))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_json_report_alone_on_stdout_through_a_pipe():
    submission = build_fixture("exits-at-once")
    command = (f"set -o pipefail; {GRADE} {submission} --only ex1 -q -f json -o - "
               f"| {sys.executable} -m json.tool --indent 1")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=1400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["points"], report["max_points"]) == (expected_points("exits-at-once")["ex1"], 15)
    points = f"{report['points']:g}/{report['max_points']:g}"
    assert done.stderr == f"Total {points}, band fail, NOT PASSED\n"
