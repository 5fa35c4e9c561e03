"""Checks declared in the rubric (docs/checks.md): validated at load, graded on a real stack."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from fixtures.build import build_fixture
from grader.errors import RubricError
from grader.models import CheckStatus
from grader.pipeline import DEFAULT_RUBRIC, GradeRequest, grade
from grader.rubric import load_rubric

NEEDS_TOKEN = {
    "proves": "a generate without a token is refused with 401 (or HTTPBearer's 403)",
    "steps": [{"request": {"method": "POST", "path": "/llm/generate", "json": {"prompt": "hi", "model": "gpt-4o-mini"}},
               "expect": {"status": [401, 403]}}],
}
READY_QDRANT_DOWN = {
    "proves": "with Qdrant down, readiness answers 503 within 40 s",
    "steps": [{"fault": {"service": "qdrant", "kind": "down"}},
              {"request": {"method": "GET", "path": "/health/detailed"},
               "expect": {"status": [503], "within_s": 40, "every_s": 2}}],
}


def _rubric(tmp_path: Path, checks: dict, bind: bool = True) -> Path:
    """The course rubric with ``checks`` declared, each bound to a criterion of 1 point in its exercise."""
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["checks"] = checks
    for check_id in checks if bind else ():
        exercise = data["exercises"][check_id.split(".")[0]]
        exercise["points"] += 1
        exercise["criteria"].append({"id": check_id, "title": check_id, "points": 1, "visibility": "public",
                                     "hint": "see docs/checks.md", "checks": [check_id], "credit": "all"})
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_declared_check_loads_and_binds(tmp_path):
    rubric = load_rubric(_rubric(tmp_path, {"ex1.generate_needs_token": NEEDS_TOKEN}))
    assert rubric.checks["ex1.generate_needs_token"].steps[0].request.json_body == {"prompt": "hi",
                                                                                    "model": "gpt-4o-mini"}
    assert rubric.exercises["ex1"].criteria[-1].checks == ("ex1.generate_needs_token",)


@pytest.mark.parametrize("checks, bind, field, message", [
    ({"ex1.x": {"proves": "p", "steps": [{"reqest": {"path": "/"}}]}}, True,
     "checks.ex1.x.steps[0].reqest", "unknown key"),
    ({"ex5.x": {"proves": "p", "steps": [{"fault": {"service": "redis", "kind": "down"}}]}}, True,
     "checks.ex5.x.steps[0].fault.service", "Input should be"),
    ({"ex5.x": {"proves": "p", "steps": [{"fault": {"service": "qdrant", "kind": "down"}, "wait_s": 1}]}}, True,
     "checks.ex5.x.steps[0]", "a step is one of request, fault, llm or wait_s (got fault, wait_s)"),
    ({"ex1.x": {"proves": "p", "steps": [{"request": {"path": "/"}}]}}, True,
     "checks.ex1.x.steps[0]", "a request step needs an expect"),
    ({"ex1.x": {"proves": "p", "steps": [{"request": {"path": "/"}, "expect": {"status": [700]}}]}}, True,
     "checks.ex1.x.steps[0].expect.status", "700 is not an HTTP status"),
    ({"ex1.x": NEEDS_TOKEN}, False, "checks.ex1.x", "declared check 'ex1.x' is bound to no criterion"),
    ({"ex1.cors_rejects_unlisted_origin": NEEDS_TOKEN}, False, "checks.ex1.cors_rejects_unlisted_origin",
     "is a coded check already"),
    ({"ex9.x": NEEDS_TOKEN}, False, "checks.ex9.x", "unknown exercise 'ex9'"),
    ({"Ex1-X": NEEDS_TOKEN}, False, "checks.Ex1-X", "a check id is exN.what_it_proves"),
])
def test_a_wrong_declared_check_is_one_line_naming_file_line_and_field(tmp_path, checks, bind, field, message):
    path = _rubric(tmp_path, checks, bind)
    with pytest.raises(RubricError) as raised:
        load_rubric(path)
    line = str(raised.value)
    assert line.startswith(f"{path}, line ") and f", {field}: " in line and message in line, line
    assert "\n" not in line


@pytest.mark.slow
def test_declared_checks_grade_the_reference_and_the_starter_on_a_real_stack(tmp_path):
    """Both gradings on ex1 and ex5 at once: the reference passes both declared checks; the
    starter's fake health check fails readiness, and its generate already needs a token."""
    rubric = _rubric(tmp_path, {"ex1.generate_needs_token": NEEDS_TOKEN,
                                "ex5.ready_names_qdrant_down": READY_QDRANT_DOWN})
    expected = {"reference": {"ex1.generate_needs_token": CheckStatus.PASSED,
                              "ex5.ready_names_qdrant_down": CheckStatus.PASSED},
                "starter": {"ex1.generate_needs_token": CheckStatus.PASSED,
                            "ex5.ready_names_qdrant_down": CheckStatus.FAILED}}

    def graded(name: str):
        return grade(GradeRequest(source=str(build_fixture(name)), rubric_path=rubric, only=frozenset({"ex1", "ex5"})))

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(expected, pool.map(graded, expected)))
    for name, verdicts in expected.items():
        checks = {check.check_id: check for exercise in reports[name].exercises for criterion in exercise.criteria
                  for check in criterion.checks}
        for check_id, status in verdicts.items():
            check = checks[check_id]
            assert check.status is status, (name, check_id, check.status, check.reason)
            assert any(evidence.kind == "request" for evidence in check.evidence), (name, check_id)
    readiness = {check.check_id: check for exercise in reports["starter"].exercises for criterion in exercise.criteria
                 for check in criterion.checks}["ex5.ready_names_qdrant_down"]
    assert "expected 503, still after 40 s" in readiness.reason and readiness.failure.value == "decisive"
