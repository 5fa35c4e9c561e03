"""The "reproduce" recipes a failed check shows a student: attached where they belong, and true.

The replay plays every recipe on the reference solution, on the local stack: each fault is set
up as the stack's own equivalent (``docker compose stop X`` is X refusing connections,
``pause`` is X accepting and never answering, ``run -e`` is an API started with that variable),
and the recipe's own shell lines (its login and its curl line, not a copy) run in a real bash
with real curl against the API. What they print must be what the recipe says a fixed service
answers. The compose commands themselves need the student's images, which this machine cannot
pull.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.build import build_fixture
from grader import checks as catalogue
from grader import contract
from grader.models import REPRODUCE, CheckResult, CheckStatus, Submission
from grader.report.audience import Audience
from grader.report.html import render_html
from grader.report.markdown import render_markdown
from grader.rubric import load_rubric
from grader.scenarios import SCENARIOS
from grader.scenarios.reproduce import BASE_URL, RECIPES, Recipe, Stop, with_reproduction
from grader.stack.base import Fault, Service
from grader.scoring import score
from grader.stack.local import LocalBackend, LocalStack


def _recipe(check_id: str) -> Recipe:
    return RECIPES[check_id](SCENARIOS[check_id.split(".")[0]].Settings())


def test_every_recipe_belongs_to_a_dynamic_check_of_the_catalogue():
    dynamic = {spec.check_id for spec in catalogue.CHECKS.values() if not spec.static}
    assert set(RECIPES) <= dynamic
    # Every recipe renders: its fault, its request or start, and what a fixed service shows.
    for check_id in RECIPES:
        script = _recipe(check_id).script()
        assert "a fixed service:" in script and ("curl" in script or "docker compose run" in script), check_id


def test_only_failed_checks_with_a_recipe_carry_one():
    settings = SCENARIOS["ex5"].Settings()
    checks = [CheckResult(check_id="ex5.names_qdrant_down", status=CheckStatus.FAILED, reason="r"),
              CheckResult(check_id="ex5.names_llm_down", status=CheckStatus.PASSED, reason="r"),
              CheckResult(check_id="ex5.names_mlflow_down", status=CheckStatus.NOT_GRADABLE, reason="r"),
              CheckResult(check_id="ex5.recovers", status=CheckStatus.FAILED, reason="r")]
    kinds = {check.check_id: [ev.kind for ev in check.evidence] for check in with_reproduction(checks, settings)}
    assert kinds == {"ex5.names_qdrant_down": [REPRODUCE], "ex5.names_llm_down": [],
                     "ex5.names_mlflow_down": [], "ex5.recovers": []}


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: str
    seconds: float


def _last_reply(output: str) -> _Reply:
    """The last response of curl ``-i`` output ending each response with ``time: Ns``."""
    blocks = [block for block in re.split(r"\ntime: ([0-9.]+)s\n", output)]
    text, seconds = blocks[-3], float(blocks[-2])
    # A 100 Continue (or any interim answer) comes before the final one.
    head, _, body = text[text.rindex("HTTP/"):].replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.split("\n")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in header_lines)}
    return _Reply(int(status_line.split()[1]), headers, body, seconds)


def _play(recipe: Recipe, base: str, checkout: Path) -> _Reply:
    """The recipe's own shell lines but the compose ones, run by bash against ``base``."""
    lines = [line for line in recipe.script().splitlines() if not line.startswith("docker compose")]
    script = "\n".join(lines).replace(f"BASE={BASE_URL}", f"BASE={base}")
    done = subprocess.run(["bash", "-c", script], cwd=checkout, capture_output=True, text=True, timeout=400)
    assert "time: " in done.stdout, f"no answer: {done.stdout[-500:]} {done.stderr[-500:]}"
    return _last_reply(done.stdout)


def _shows(recipe: Recipe, reply: _Reply, down: tuple[str, ...]) -> list[str]:
    """What in ``reply`` differs from what the recipe says a fixed service answers (empty: all of it)."""
    answer = recipe.answer
    wrong = []
    if answer.statuses and reply.status not in answer.statuses:
        wrong.append(f"status {reply.status}")
    if answer.within_s is not None and reply.seconds > answer.within_s:
        wrong.append(f"{reply.seconds} s")
    wrong += [f"body names no {word}" for word in answer.names if word.lower() not in reply.body.lower()]
    if answer.header and not re.search(answer.header[1], reply.headers.get(answer.header[0].lower(), "")):
        wrong.append(f"header {answer.header[0]}: {reply.headers.get(answer.header[0].lower())}")
    if answer.not_header and re.search(answer.not_header[1], reply.headers.get(answer.not_header[0].lower(), "")):
        wrong.append(f"header {answer.not_header[0]}: {reply.headers[answer.not_header[0].lower()]}")
    if answer.until_s is not None:  # readiness: the body marks exactly the stopped dependencies down
        health = {name: value if isinstance(value, bool) else value["healthy"]
                  for name, value in json.loads(reply.body)["checks"].items()}
        if [name for name in down if health.get(name) is not False]:
            wrong.append(f"readiness {health}")
    return wrong


def _faults(recipe: Recipe) -> list[tuple[Service, Fault]]:
    """The recipe's compose faults as the local stack's: ``stop`` is DOWN, ``pause`` is HANG."""
    return [(service, Fault.DOWN if isinstance(fault, Stop) else Fault.HANG) for fault in recipe.faults
            for service in (fault.services if isinstance(fault, Stop) else (fault.service,))]


def _replay(stack: LocalStack, api_url: str, check_id: str, checkout: Path) -> None:
    recipe = _recipe(check_id)
    faults = _faults(recipe)
    for service, fault in faults:
        stack.inject_fault(service, fault)
    # The reference's readiness names the LLM proxy "litellm" and TEI "tei".
    down = tuple("tei" if service is Service.TEI else service.value for service, _ in faults)
    try:
        deadline = time.monotonic() + (recipe.answer.until_s or 0)
        while (wrong := _shows(recipe, reply := _play(recipe, api_url, checkout), down)) and time.monotonic() < deadline:
            time.sleep(2)
        assert not wrong, f"{check_id}: {wrong} in {reply}"
    finally:
        for service, _ in faults:
            stack.clear_fault(service)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Iterator[tuple[LocalBackend, Path]]:
    checkout = build_fixture("reference")
    with LocalBackend(checkout, tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("cache")) as backend:
        yield backend, checkout


# Played in this order on one API: each undoes its fault, and the breaker (left open) comes last.
_ON_ONE_API = ("ex5.ready_when_up", "ex1.cors_rejects_unlisted_origin", "ex6.request_id_generated",
               "ex6.request_id_echoed", "ex3.body_limit", "ex3.body_limit_chunked", "ex5.liveness_independent",
               "ex5.names_qdrant_down", "ex5.names_llm_down", "ex5.names_mlflow_down", "ex4.error_body_fields",
               "ex3.breaker_opens")


@pytest.mark.e2e  # two API starts, a hang and three cached readiness waits: the long stage
def test_the_recipes_show_on_the_reference_what_their_checks_expect(reference):
    backend, checkout = reference
    with backend.open_stack("reproduce") as stack:
        api = stack.start_api()
        assert api.wait_until_serving(120), api.startup_failure_reason()
        for check_id in _ON_ONE_API:
            _replay(stack, api.url, check_id, checkout)
    with backend.open_stack("reproduce-hang") as stack:  # a breaker that never opened
        api = stack.start_api()
        assert api.wait_until_serving(120), api.startup_failure_reason()
        _replay(stack, api.url, "ex3.hang_bounded", checkout)
    assert {*_ON_ONE_API, "ex3.hang_bounded"} == {c for c in RECIPES if _recipe(c).call}


@pytest.mark.e2e  # an install and four API starts: the long stage
def test_the_refusal_recipes_start_nothing_on_the_reference(reference):
    backend, checkout = reference
    refusals = [c for c in RECIPES if _recipe(c).refusal]
    assert refusals
    with backend.open_stack("reproduce-refusals") as stack:
        for check_id in refusals:
            refusal = _recipe(check_id).refusal
            secret = refusal.secret
            if refusal.from_env_example:  # the recipe's own sed, in the checkout
                secret = subprocess.run(["bash", "-c", refusal.script().split('"$(')[1].split(')"')[0]],
                                        cwd=checkout, capture_output=True, text=True, check=True).stdout.strip()
            api = stack.start_api({contract.SECRET_VARIABLE: secret})
            code = api.wait_exit(refusal.within_s)
            output = "\n".join(line.text for line in api.output())
            assert code not in (None, 0), f"{check_id}: exit {code}"
            assert contract.SECRET_VARIABLE in output, f"{check_id}: {output[-400:]}"


def test_a_student_sees_the_recipe_of_a_public_check_and_none_of_a_hidden_one():
    rubric = load_rubric(Path(__file__).resolve().parents[2] / "rubrics" / "llmops-exam.yaml")
    visibility = {check_id: criterion.visibility for exercise in rubric.exercises.values()
                  for criterion in exercise.criteria for check_id in criterion.checks}
    assert (visibility["ex3.body_limit"], visibility["ex3.body_limit_chunked"]) == ("public", "hidden")
    failed = [CheckResult(check_id=check_id, status=CheckStatus.FAILED, reason="422 after reading it all")
              for check_id in ("ex3.body_limit", "ex3.body_limit_chunked")]
    results = {check_id: CheckResult(check_id=check_id, status=CheckStatus.PASSED, reason="ok")
               for check_id in catalogue.CHECKS}
    results |= {check.check_id: check for check in with_reproduction(failed, SCENARIOS["ex3"].Settings())}
    report = score(rubric, results, Submission(source="s", commit_sha=None, ref=None, author_date=None,
                                               commit_count=0), grader_version="t",
                   graded_at=datetime(2026, 12, 1, tzinfo=UTC))
    chunked = "Transfer-Encoding: chunked"
    for render in (render_html, render_markdown):
        student, instructor = (html.unescape(render(report, audience)) for audience in (Audience.STUDENT, Audience.INSTRUCTOR))
        assert "--data-binary @-" in student and chunked not in student, render.__name__
        assert chunked in instructor, render.__name__
