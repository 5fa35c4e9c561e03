"""Checks an instructor declares in the rubric, as data (``docs/checks.md``).

A declared check starts the API (with the contract's environment, or ``env`` over it) in a
stack of its own, then runs its steps in order: break a dependency, script the LLM, wait, or
send a request and expect its answer. The first expectation not met fails the check; every
request and what came back is its evidence, as for a coded check. Declared checks run after
their exercise's coded scenario, in the same run, so the fairness rule covers them alike.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grader.catalogue import CheckSpec
from grader.models import CheckStatus
from grader.stack.base import Fault, ScriptedReply, Service, Stack

from .context import ScenarioContext, Serving, serve
from .http import Observed
from .polling import poll_until
from .recorder import NO_ANSWER, WRONG_ANSWER, Check, FailureCause, Results, decisive

CHECK_ID = re.compile(r"^(ex\d+)\.[a-z0-9_]+$")
_STRICT = ConfigDict(frozen=True, extra="forbid")


class Request(BaseModel):
    """One HTTP request to the API; ``token``: log in as the handout's admin first and send
    its bearer token."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] = "GET"
    path: str = Field(pattern=r"^/")
    headers: dict[str, str] = {}
    json_body: Any = Field(None, alias="json")
    token: bool = False
    timeout_s: float = Field(10, gt=0, le=120)


class Expect(BaseModel):
    """What the answer must be: a status among ``status``, and each header of ``headers``
    matching its regular expression (None: the header is absent). With ``within_s`` the request
    is sent again every ``every_s`` until the answer is right or ``within_s`` has passed."""

    model_config = _STRICT

    status: list[int] = Field(min_length=1)
    headers: dict[str, str | None] = {}
    within_s: float | None = Field(None, gt=0, le=300)
    every_s: float = Field(1, gt=0)

    @field_validator("status")
    @classmethod
    def _http_statuses(cls, statuses: list[int]) -> list[int]:
        for status in statuses:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status")
        return statuses

    @field_validator("headers")
    @classmethod
    def _patterns_compile(cls, headers: dict[str, str | None]) -> dict[str, str | None]:
        for name, pattern in headers.items():
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"header {name}: {exc}") from None
        return headers


class FaultStep(BaseModel):
    """Break one dependency of the stack for every new and open connection."""

    model_config = _STRICT

    service: Service
    kind: Fault


class Step(BaseModel):
    """Exactly one of: ``request`` (with its ``expect``), ``fault``, ``llm`` (the statuses the LLM
    answers next, then normal answers), ``wait_s``."""

    model_config = _STRICT

    request: Request | None = None
    expect: Expect | None = None
    fault: FaultStep | None = None
    llm: list[int] | None = None
    wait_s: float | None = Field(None, gt=0, le=120)

    @model_validator(mode="after")
    def _one_kind(self) -> "Step":
        kinds = [name for name in ("request", "fault", "llm", "wait_s") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step is one of request, fault, llm or wait_s (got {', '.join(kinds) or 'none'})")
        if (self.request is None) != (self.expect is None):
            raise ValueError("a request step needs an expect, and only a request step has one")
        return self


class DeclaredCheck(BaseModel):
    """One check stated as data: what it proves, the API's environment, its steps."""

    model_config = _STRICT

    proves: str = Field(min_length=1)
    env: dict[str, str | None] = {}
    steps: list[Step] = Field(min_length=1)

    def spec(self, check_id: str) -> CheckSpec:
        """Its entry beside the coded checks: it is its own group (one API decides it)."""
        return CheckSpec(check_id, False, self.proves, group=check_id)


def exercise_of(check_id: str) -> str | None:
    """``ex3`` for ``ex3.generate_needs_token``; None when the id is not ``exN.words``."""
    match = CHECK_ID.match(check_id)
    return match.group(1) if match else None


def run_declared(ctx: ScenarioContext, results: Results, check_id: str, declared: DeclaredCheck) -> None:
    """Run one declared check in a stack of its own and record its verdict."""
    with ctx.open_stack(check_id.replace(".", "-").replace("_", "-")) as stack:
        serving = serve(ctx, stack, results, check_id, env=declared.env or None)
        if serving is None:
            return
        with serving:
            check = Check(check_id)
            token: str | None = None
            for number, step in enumerate(declared.steps, start=1):
                if step.request is None:
                    check.note("note", f"step {number}: {_arrange(stack, step)}")
                    continue
                if step.request.token and token is None:
                    token, login = serving.probe.login()
                    check.extend([login.evidence()])
                observed, met, why = _request(serving, step.request, step.expect, token)
                check.extend([observed.evidence()])
                if not met:
                    results.judge(check, False, "", f"step {number}: {observed.summary()}: {why}",
                                  failure=_kind(observed, step.expect), api=serving.api)
                    return
            results.add(check.verdict(CheckStatus.PASSED, f"every step answered as expected: {declared.proves}"))


def _arrange(stack: Stack, step: Step) -> str:
    """Do a step that sends nothing and say what it did."""
    if step.fault is not None:
        stack.inject_fault(step.fault.service, step.fault.kind)
        return f"{step.fault.service.value}: {step.fault.kind.value}"
    if step.llm is not None:
        stack.llm.script([ScriptedReply(status=status) for status in step.llm])
        return f"the LLM answers {', '.join(map(str, step.llm))}, then normally"
    assert step.wait_s is not None
    time.sleep(step.wait_s)
    return f"waited {step.wait_s:g} s"


def _request(serving: Serving, request: Request, expect: Expect, token: str | None) -> tuple[Observed, bool, str]:
    """The request's last answer, whether it met ``expect``, and what was wrong with it."""
    headers = {**({"Authorization": f"Bearer {token}"} if request.token and token else {}), **request.headers}

    def send() -> Observed:
        return serving.probe.call(request.method, request.path, json_body=request.json_body, headers=headers,
                                  timeout=request.timeout_s)

    if expect.within_s is None:
        observed = send()
    else:
        observed = poll_until(send, lambda seen: not _mismatch(seen, expect), expect.within_s, expect.every_s).last
    why = _mismatch(observed, expect)
    if why and expect.within_s is not None:
        why += f", still after {expect.within_s:g} s"
    return observed, not why, why


def _mismatch(observed: Observed, expect: Expect) -> str:
    """What is wrong with ``observed`` against ``expect`` (empty: nothing)."""
    if observed.status is None:
        return f"no answer, expected {_statuses(expect)}"
    if observed.status not in expect.status:
        return f"expected {_statuses(expect)}"
    for name, pattern in expect.headers.items():
        value = observed.header(name)
        if pattern is None and value is not None:
            return f"header {name} should be absent, got {value[:120]!r}"
        if pattern is not None and (value is None or not re.search(pattern, value)):
            return f"header {name} should match {pattern!r}, got {'none' if value is None else repr(value[:120])}"
    return ""


def _statuses(expect: Expect) -> str:
    return " or ".join(map(str, expect.status))


def _kind(observed: Observed, expect: Expect) -> FailureCause:
    """No answer is what load could decide; a wrong answer (after a whole poll too) is not."""
    if observed.status is None:
        return NO_ANSWER
    if expect.within_s is not None:
        return decisive(f"it kept answering wrong for the whole {expect.within_s:g} s poll")
    return WRONG_ANSWER
