"""How a student replays a failed check on their own ``docker compose`` stack.

A recipe is data: the fault to set up (compose commands on the student's stack, whose service
names are the contract's), the request to send (a ``curl`` line on ``$BASE``, their API's
address) and what a fixed service answers. It renders as a short shell script with comments,
carried by the failed check as its ``reproduce`` evidence; ``tests/scenarios/test_reproduce.py``
plays every recipe on the reference solution, real curl against a real stack, to prove the
steps show what the check expects.

Only checks whose fault a compose command sets up and whose verdict one answer (or one exit)
shows have a recipe. The others need an LLM that answers on a script (503, 503, 503, 200; a 400;
a 429; a slow reply), which a student's stack does not have, or are judged on a sequence or on
the logs (shutdown, recovery, log lines).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Callable, Union

from grader import contract
from grader.catalogue import ScenarioSettings
from grader.models import REPRODUCE, CheckResult, CheckStatus, Evidence
from grader.stack.base import Service

BASE_URL = "http://localhost:8000"  # the student's stack publishes the API there (the handout's compose file)
_LOGIN = (f"TOKEN=$(curl -s \"$BASE{contract.LOGIN_PATH}\" -H 'Content-Type: application/json' "
          f"-d '{{\"username\": \"{contract.ADMIN_USER}\", \"password\": \"{contract.ADMIN_PASSWORD}\"}}' "
          "| python3 -c 'import json, sys; print(json.load(sys.stdin)[\"access_token\"])')")
# How the student's API starts (CONTRACT.md); `env -u` is the one way to unset a variable that
# the stack's env_file sets.
_UVICORN = "python -m uvicorn main:app --host 0.0.0.0 --port 8000"


@dataclass(frozen=True)
class Stop:
    """Dependencies stopped (connections refused), started again afterwards."""

    services: tuple[Service, ...]

    def commands(self) -> tuple[str, str]:
        names = " ".join(service.value for service in self.services)
        return f"docker compose stop {names}", f"docker compose start {names}"


@dataclass(frozen=True)
class Pause:
    """A dependency frozen: it accepts connections and never answers."""

    service: Service

    def commands(self) -> tuple[str, str]:
        return f"docker compose pause {self.service.value}", f"docker compose unpause {self.service.value}"


Fault = Union[Stop, Pause]


@dataclass(frozen=True)
class Call:
    """One HTTP request as a curl line; ``repeat`` sends it that many times in a row."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    json: str | None = None  # a JSON body, as literal text
    body_bytes: int = 0  # a body of this many bytes, sent without reading it into a variable
    chunked: bool = False  # the body without Content-Length
    auth: bool = False  # with the admin's Bearer token
    repeat: int = 1

    def script(self) -> str:
        # -i: the status line and headers with the body; the time shows a bound was kept.
        words = ["curl", "-sS", "-i", "--max-time", "120", "-X", self.method]
        headers = list(self.headers)
        if self.auth:
            headers.append(("Authorization", "Bearer $TOKEN"))
        if self.json is not None or self.body_bytes:
            headers.append(("Content-Type", "application/json"))
        if self.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        for name, value in headers:
            words += ["-H", f'"{name}: {value}"' if "$" in value else shlex.quote(f"{name}: {value}")]
        if self.json is not None:
            words += ["-d", shlex.quote(self.json)]
        if self.body_bytes:
            words += ["--data-binary", "@-"]
        words += ["-w", shlex.quote("\\ntime: %{time_total}s\\n"), f'"$BASE{self.path}"']
        line = " ".join(words)
        if self.body_bytes:
            line = f"head -c {self.body_bytes} /dev/zero | tr '\\0' a | {line}"
        if self.repeat > 1:
            line = f"for i in $(seq {self.repeat}); do {line}; done"
        return line


@dataclass(frozen=True)
class Answer:
    """What a fixed service answers to the call (to its last one when repeated)."""

    statuses: tuple[int, ...] = ()  # empty: any status
    within_s: float | None = None
    names: tuple[str, ...] = ()  # words the body mentions, in any case
    header: tuple[str, str] | None = None  # (name, regex) a header must match
    not_header: tuple[str, str] | None = None  # (name, regex) no such header may match
    until_s: float | None = None  # repeat the call until it answers so, at most this long

    def words(self) -> str:
        parts = [" or ".join(map(str, self.statuses))] if self.statuses else ["an answer"]
        if self.within_s is not None:
            parts.append(f"within {self.within_s:g} s")
        if self.names:
            parts.append("naming " + " and ".join(self.names))
        if self.header:
            parts.append(f"with its {self.header[0]} header matching {self.header[1]}")
        if self.not_header:
            parts.append(f"with no {self.not_header[0]} header matching {self.not_header[1]}")
        said = ", ".join(parts)
        if self.until_s is not None:
            said += f" (answers may be cached: repeat for up to {self.until_s:g} s)"
        return said


@dataclass(frozen=True)
class Refusal:
    """The API run with ``secret`` as JWT_SECRET_KEY (None: unset; ``from_env_example``: the
    value ``.env.example`` suggests) exits non-zero within ``within_s``, naming the variable."""

    secret: str | None
    within_s: float
    from_env_example: bool = False

    def script(self) -> str:
        run = "docker compose run --rm --no-deps"
        variable = contract.SECRET_VARIABLE
        if self.from_env_example:
            return (f'{run} -e {variable}="$(sed -n \'s/^{variable}=//p\' .env.example)" api; '
                    "echo \"exit status: $?\"")
        if self.secret is None:
            return f"{run} api env -u {variable} {_UVICORN}; echo \"exit status: $?\""
        return f"{run} -e {shlex.quote(f'{variable}={self.secret}')} api; echo \"exit status: $?\""

    def words(self) -> str:
        return f"a non-zero exit within {self.within_s:g} s, the output naming {contract.SECRET_VARIABLE}"


@dataclass(frozen=True)
class Recipe:
    """Set up ``faults``, send ``call`` (or run ``refusal``), expect ``answer``; undo the faults."""

    faults: tuple[Fault, ...] = ()
    call: Call | None = None
    answer: Answer | None = None
    refusal: Refusal | None = None

    def expected(self) -> str:
        return self.refusal.words() if self.refusal else self.answer.words() if self.answer else ""

    def script(self) -> str:
        """The recipe as commands to paste in the repository's root, the stack up."""
        lines = ["# from your repository's root, with `docker compose up -d` running", f"BASE={BASE_URL}"]
        if self.call and self.call.auth:
            lines.append(_LOGIN)
        lines += [fault.commands()[0] for fault in self.faults]
        lines.append(self.refusal.script() if self.refusal else self.call.script())
        lines.append(f"# a fixed service: {self.expected()}")
        lines += [fault.commands()[1] for fault in reversed(self.faults)]
        return "\n".join(lines)


def _generate(prompt: str, **extra: object) -> Call:
    body = f'{{"prompt": "{prompt}", "model": "{contract.MODEL}", "temperature": 0.2, "max_tokens": 50}}'
    return Call("POST", contract.GENERATE_PATH, json=body, auth=True, **extra)


def _names_down(service: Service) -> Callable[[ScenarioSettings], Recipe]:
    # Readiness may be cached (CONTRACT.md): the recipe waits as long as ex5's probe does.
    return lambda settings: Recipe(
        faults=(Stop((service,)),), call=Call("GET", contract.READINESS_PATHS[0]),
        answer=Answer((503,), names=(service.value,), until_s=settings.cache_wait_s))


def _refusal(secret: str | None, from_env_example: bool = False) -> Callable[[ScenarioSettings], Recipe]:
    return lambda settings: Recipe(refusal=Refusal(secret, settings.exit_within_s, from_env_example))


def _body_limit(chunked: bool) -> Callable[[ScenarioSettings], Recipe]:
    return lambda settings: Recipe(
        call=Call("POST", contract.GENERATE_PATH, body_bytes=settings.body_bytes, chunked=chunked, auth=True),
        answer=Answer((413,)))


_REQUEST_ID = contract.REQUEST_ID_HEADER
_CALLER_ID = "my-own-id-42"

# check id -> its recipe under the scenario's settings.
RECIPES: dict[str, Callable[[ScenarioSettings], Recipe]] = {
    "ex1.refuses_missing_secret": _refusal(None),
    "ex1.refuses_placeholder_secret": _refusal(contract.PLACEHOLDER_SECRET),
    "ex1.refuses_short_secret": _refusal(contract.SHORT_SECRET),
    "ex1.env_example_secret_refused": _refusal(None, from_env_example=True),
    "ex1.cors_rejects_unlisted_origin": lambda settings: Recipe(
        call=Call("OPTIONS", contract.GENERATE_PATH, headers=(
            ("Origin", contract.UNLISTED_ORIGIN), ("Access-Control-Request-Method", "POST"))),
        answer=Answer(not_header=("access-control-allow-origin",
                                              rf"^(\*|{contract.UNLISTED_ORIGIN.replace('.', '[.]')})$"))),
    "ex3.hang_bounded": lambda settings: Recipe(
        faults=(Pause(Service.LLM),), call=_generate("Describe a quiet harbour at dawn in one sentence."),
        answer=Answer((504, 503), within_s=settings.hang_limit_s)),
    "ex3.body_limit": _body_limit(chunked=False),
    "ex3.body_limit_chunked": _body_limit(chunked=True),
    "ex3.breaker_opens": lambda settings: Recipe(
        faults=(Stop((Service.LLM,)),),
        call=_generate("Name three rivers of Europe in one sentence.", repeat=settings.breaker_requests),
        answer=Answer((503,), within_s=1)),
    "ex4.error_body_fields": lambda settings: Recipe(
        faults=(Stop((Service.LLM,)),), call=_generate("Summarise the water cycle in one sentence."),
        answer=Answer((502, 503, 504), names=("incident_id", "timestamp"))),
    "ex5.liveness_independent": lambda settings: Recipe(
        faults=(Stop(tuple(Service)),), call=Call("GET", contract.LIVENESS_PATH), answer=Answer((200,))),
    "ex5.ready_when_up": lambda settings: Recipe(
        call=Call("GET", contract.READINESS_PATHS[0]),
        answer=Answer((200,), names=(Service.QDRANT.value, Service.MLFLOW.value))),
    "ex5.names_qdrant_down": _names_down(Service.QDRANT),
    "ex5.names_llm_down": _names_down(Service.LLM),
    "ex5.names_mlflow_down": _names_down(Service.MLFLOW),
    "ex6.request_id_generated": lambda settings: Recipe(
        call=Call("GET", contract.LIVENESS_PATH), answer=Answer((200,), header=(_REQUEST_ID, r"^req_[0-9a-f]{16}$"))),
    "ex6.request_id_echoed": lambda settings: Recipe(
        call=Call("GET", contract.LIVENESS_PATH, headers=((_REQUEST_ID, _CALLER_ID),)),
        answer=Answer((200,), header=(_REQUEST_ID, f"^{_CALLER_ID}$"))),
}


def with_reproduction(checks: list[CheckResult], settings: ScenarioSettings) -> list[CheckResult]:
    """``checks`` with a ``reproduce`` evidence added to each failed one that has a recipe."""
    return [_with_recipe(check, settings) if check.status is CheckStatus.FAILED and check.check_id in RECIPES
            else check for check in checks]


def _with_recipe(check: CheckResult, settings: ScenarioSettings) -> CheckResult:
    recipe = RECIPES[check.check_id](settings)
    evidence = Evidence(kind=REPRODUCE, summary=f"on your own stack, a fixed service shows {recipe.expected()}",
                        detail=recipe.script())
    return check.model_copy(update={"evidence": (*check.evidence, evidence)})
