"""The Gradescope autograder: the bundle an instructor uploads, and the grading it runs.

``build_bundle`` writes the zip (shared/formats/LMS-EXPORTS.md, "autograder bundle"):

    setup.sh          installs git, a Python 3.11+ and the grader in /autograder/grader-venv
    run_autograder    grades /autograder/submission, writes /autograder/results/results.json
    rubric.yaml       the rubric it grades with (validated before the bundle is written)
    requirements.txt  every runtime dependency pinned as in uv.lock (``uv export``)
    llmops_grader-<version>-py3-none-any.whl   the grader, built from this checkout

``write_results`` is what ``run_autograder`` runs (``grade export gradescope-results``): the
local backend on the submission's files as they are, student view, results written atomically.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uv

from grader import __version__
from grader.errors import GraderError, MachineError, UsageError
from grader.models import GradeReport
from grader.pipeline import PROJECT_ROOT, GradeRequest
from grader.records import write_atomic
from grader.report.exports.gradescope import could_not_grade_results, report_results
from grader.rubric import load_rubric

_FILES = Path(__file__).with_name("gradescope_files")
SCRIPTS = ("setup.sh", "run_autograder")
UNFINISHED = ("the grading did not finish: the autograder's time limit was probably reached "
              "(raise it in the assignment's settings)")


def build_bundle(rubric_path: Path, out: Path, project_root: Path = PROJECT_ROOT) -> list[str]:
    """Write the autograder zip at ``out`` for ``rubric_path``; returns the names it holds."""
    load_rubric(rubric_path)  # an invalid rubric fails here, not on Gradescope
    if not (project_root / "pyproject.toml").is_file():
        raise UsageError(f"the bundle is built from the grader's source checkout; {project_root} has no "
                         "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="grade-bundle-") as scratch:
        wheel = _uv("build", "--wheel", "--out-dir", scratch, str(project_root), then=lambda _: _one_wheel(scratch))
        requirements = _uv("export", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev",
                           "--format", "requirements-txt", "--project", str(project_root), then=lambda out: out)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name in SCRIPTS:
                _add(bundle, name, (_FILES / name).read_bytes(), executable=True)
            _add(bundle, "rubric.yaml", rubric_path.read_bytes())
            _add(bundle, "requirements.txt", requirements.encode("utf-8"))
            _add(bundle, wheel.name, wheel.read_bytes())
        partial.replace(out)
    with zipfile.ZipFile(out) as bundle:
        return bundle.namelist()


def _uv(*args: str, then: Callable[[str], Any]) -> Any:
    try:
        done = subprocess.run([uv.find_uv_bin(), *args], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MachineError(f"uv {args[0]} could not run: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MachineError(f"uv {args[0]} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return then(done.stdout)


def _one_wheel(folder: str) -> Path:
    wheels = sorted(Path(folder).glob("*.whl"))
    if len(wheels) != 1:
        raise MachineError(f"uv build made {len(wheels)} wheels, expected one")
    return wheels[0]


def _add(bundle: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: the same input, the same zip
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16  # the mode unzip restores
    bundle.writestr(info, data)


def write_results(submission: Path, rubric_path: Path, results: Path,
                  grade: Callable[[GradeRequest], GradeReport]) -> GradeReport:
    """Grade ``submission`` (a folder of files, uncommitted as Gradescope gives them) and write
    Gradescope's ``results``, a placeholder first. A ``GraderError`` is re-raised once the
    results say why the submission could not be graded (and show no score)."""
    extra: dict[str, Any] = {"grader_version": __version__}
    write_atomic(results, _dump(could_not_grade_results(UNFINISHED, {**extra, "status": "error"})))
    request = GradeRequest(source=str(submission), rubric_path=rubric_path, worktree=True, with_diff=False)
    try:
        report = grade(request)
    except GraderError as exc:
        write_atomic(results, _dump(could_not_grade_results(str(exc), {**extra, "status": "error"})))
        raise
    status = "graded" if report.complete else "incomplete"
    write_atomic(results, _dump(report_results(report, {**extra, "status": status, "rubric": report.rubric_name,
                                                        "commit_sha": report.submission.commit_sha})))
    return report


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
