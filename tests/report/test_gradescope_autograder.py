"""``grade export gradescope-autograder``: the bundle's files, the results it writes, and the
bundle run in a container laid out as Gradescope's (/autograder/source, submission, results)."""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from fixtures.build import build_fixture
from grader.cli import app
from grader.errors import EXIT_COULD_NOT_GRADE
from grader.pipeline import DEFAULT_RUBRIC
from grader.report.exports.gradescope_autograder import UNFINISHED
from grader.stack.compose.images import ensure_debian_rootfs, ensure_image
from grader.stack.venv import index_access_env
from tests.containers import DOCKER_TIMEOUT_S, engine_or_skip, file_from, labelled_container, tar_of
from tests.report.lms_formats import validate_gradescope

runner = CliRunner()
GRADESCOPE_IMAGE = "llmops-grader/test-gradescope:latest"
SCRATCH_IN_MEMORY = {"/tmp": "exec", "/root/.cache": "exec"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    result = runner.invoke(app, ["export", "gradescope-autograder", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_bundle_holds_the_scripts_the_rubric_and_the_grader(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert names[:4] == ["setup.sh", "run_autograder", "rubric.yaml", "requirements.txt"]
        assert len(names) == 5 and names[4].startswith("llmops_grader-") and names[4].endswith(".whl")
        for script in ("setup.sh", "run_autograder"):
            assert archive.getinfo(script).external_attr >> 16 == 0o100755, f"{script} is not executable"
            assert archive.read(script).startswith(b"#!/usr/bin/env bash\n")
        assert archive.read("rubric.yaml") == DEFAULT_RUBRIC.read_bytes()
        pins = [line for line in archive.read("requirements.txt").decode().splitlines()
                if line and not line.startswith((" ", "#"))]
        assert all("==" in pin for pin in pins)
        pinned = {pin.split("==")[0] for pin in pins}
        assert {"typer", "mlflow", "uv", "qdrant-client"} <= pinned
        assert not pinned & {"openai", "pytest", "llmops-grader"}  # test-only, and the wheel itself
        with zipfile.ZipFile(archive.open(names[4])) as wheel:
            files = wheel.namelist()
    assert "grader/cli.py" in files and "grader/report/templates/report.html.j2" in files
    assert not [f for f in files if f.startswith(("reference_solution/", "fixtures/", "tests/"))]


def test_results_are_written_even_when_the_submission_cannot_be_graded(tmp_path):
    results = tmp_path / "results" / "results.json"
    result = runner.invoke(app, ["export", "gradescope-results", str(tmp_path / "missing"), "-o", str(results)])
    assert result.exit_code == EXIT_COULD_NOT_GRADE
    data = json.loads(results.read_text())
    validate_gradescope(data, "could not grade", graded=False)
    assert "no working tree at" in data["output"] and UNFINISHED not in data["output"]


@pytest.fixture(scope="module")
def gradescope_image(bundle) -> str:
    engine_or_skip()
    with contextlib.closing(docker.from_env()) as client:
        base = ensure_debian_rootfs(client, on_progress=lambda message: None)
        # Gradescope unpacks the bundle in /autograder/source and runs setup.sh there, as root,
        # with the network; run_autograder is then run as /autograder/run_autograder.
        steps = (
            "COPY autograder.zip /tmp/autograder.zip\n"
            "RUN mkdir -p /autograder/source /autograder/submission /autograder/results"
            " && python3 -m zipfile -e /tmp/autograder.zip /autograder/source"
            " && chmod +x /autograder/source/setup.sh /autograder/source/run_autograder\n"
            "RUN cd /autograder/source && ./setup.sh"
            " && cp /autograder/source/run_autograder /autograder/run_autograder\n"
            "WORKDIR /autograder\n"
        )
        return ensure_image(client, GRADESCOPE_IMAGE, base, steps, {"autograder.zip": bundle.read_bytes()},
                            on_progress=lambda message: None)


@pytest.mark.slow
@pytest.mark.e2e  # image builds and whole gradings in containers: a release check (README), not in CI's stages
@pytest.mark.release
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("fixture, expected", [("reference", 100), ("starter", 0)])
def test_the_bundle_grades_in_a_gradescope_shaped_container(gradescope_image, fixture, expected):
    submission = build_fixture(fixture)
    with contextlib.closing(docker.from_env(timeout=DOCKER_TIMEOUT_S)) as client, labelled_container(
            client, gradescope_image, ["/autograder/run_autograder"], working_dir="/autograder",
            # The host's network and its way to PyPI (CA bundle, proxies): the submission's
            # requirements come from there, as on Gradescope, which has the internet.
            network_mode="host", environment=index_access_env(),
            # The grading's scratch and caches (the submission's venv) in memory: this engine's
            # storage driver (fuse-overlayfs) makes six API processes importing from it at once
            # take minutes to start, which Gradescope's disks do not.
            tmpfs=SCRATCH_IN_MEMORY) as container:
        container.put_archive("/autograder/submission", tar_of(submission))
        container.start()
        exit_code = container.wait(timeout=3000)["StatusCode"]
        logs = container.logs().decode(errors="replace")
        data = json.loads(file_from(container, "/autograder/results/results.json"))
    assert exit_code == 0, logs[-3000:]
    validate_gradescope(data, fixture, graded=True)
    assert data["score"] == expected, logs[-3000:]
    statuses = {test["status"] for test in data["tests"]}
    assert statuses == ({"passed"} if expected == 100 else {"failed"})
    assert data["extra_data"]["status"] == "graded" and data["visibility"] == "visible"
