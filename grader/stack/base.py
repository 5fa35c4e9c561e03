"""The backend-neutral contract between scenarios and a grading stack.

A stack runs one submission's API next to the exam's dependencies (LLM proxy, Qdrant,
MLflow, TEI) and can break those dependencies on purpose. Scenarios only ever talk to
these protocols, so the local-process backend and the docker-compose backend are
interchangeable. Every method does what it says on both backends: nothing here returns
a made-up answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence


class SubmissionUnrunnable(Exception):
    """The submission cannot run at all (no ``src/api/main.py``, requirements that do not
    install): the student's fault, so its dynamic checks fail with this one-line reason."""


class Service(enum.StrEnum):
    """A dependency of the submission, named as in the exam's docker-compose file."""

    LLM = "litellm"
    QDRANT = "qdrant"
    MLFLOW = "mlflow"
    TEI = "tei-embeddings"


class Fault(enum.StrEnum):
    """What a dependency does to the submission's connections while a fault is injected."""

    DOWN = "down"  # connection refused
    HANG = "hang"  # connection accepted, nothing ever answered
    SLOW = "slow"  # every chunk forwarded after an added delay
    RESET = "reset"  # connection accepted then reset by peer (RST)


@dataclass(frozen=True)
class LogLine:
    """One line the API wrote, with its arrival time (``time.time()`` seconds)."""

    at: float
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer of the LLM stand-in to a chat completion.

    ``status`` 200 answers a normal completion; another status answers an OpenAI-style
    error body. ``delay`` waits before answering; ``hang`` never answers; ``reset``
    resets the connection instead of answering.
    """

    status: int = 200
    delay: float = 0.0
    hang: bool = False
    reset: bool = False
    body: Mapping[str, object] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JournalEntry:
    """A request the LLM stand-in received (``at`` is ``time.time()`` of its arrival)."""

    at: float
    method: str
    path: str
    body: str
    reply: str  # what the stand-in did: "200", "503", "hang", "reset", ...


class LLMStandIn(Protocol):
    """The scriptable OpenAI-compatible LLM proxy of one stack."""

    def script(self, replies: Sequence[ScriptedReply], then: ScriptedReply | None = None) -> None:
        """Answer the next chat completions with ``replies`` in order, then ``then`` forever
        (default: a normal 200 completion). Replaces any previous script."""

    def journal(self) -> list[JournalEntry]:
        """Every request received since the stack started, oldest first."""


class ApiProcess(Protocol):
    """The submission's API, started once with one environment."""

    url: str

    def wait_until_serving(self, timeout: float) -> bool:
        """True once the port answers HTTP; False if it exited or the timeout passed."""

    def send_signal(self, signum: int) -> None:
        """Deliver a signal to the API (SIGTERM is what ``docker compose stop`` sends)."""

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the process to end; its exit code (negative for a signal), or None."""

    @property
    def exit_code(self) -> int | None:
        """The exit code if the process has ended, else None."""

    @property
    def started_at(self) -> float:
        """``time.time()`` when the process was spawned."""

    def output(self) -> list[LogLine]:
        """Every line written to stdout and stderr so far, in arrival order."""

    def startup_failure_reason(self) -> str:
        """One line saying why the API is not serving: exit code and its most telling line."""

    def limit_hit(self) -> str | None:
        """Every limit the API ran into, named ("memory limit hit (1 GiB)...; killed",
        "output limit hit: N bytes dropped"), or None."""

    def fatal_limit(self) -> str | None:
        """The limit that stopped the API (memory, processes, disk), named, or None: what every
        check its death decided must name (an output cut is no death)."""

    def kill(self) -> None:
        """Kill the API and everything it started; idempotent."""


def with_overrides(variables: Mapping[str, str], env: Mapping[str, str | None] | None) -> dict[str, str]:
    """``variables`` overridden by ``env`` as ``Stack.start_api`` takes it (None: the variable is removed)."""
    merged = dict(variables)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


class Stack(Protocol):
    """One submission's API beside its own dependencies, owning everything it starts.

    Used as a context manager: ``__exit__`` stops every process it started even when
    start-up failed half way.
    """

    llm: LLMStandIn

    def __enter__(self) -> "Stack": ...

    def __exit__(self, *exc_info: object) -> None: ...

    def service_url(self, service: Service) -> str:
        """The base URL the API is given for ``service`` (faults apply on this path)."""

    def start_api(self, env: Mapping[str, str | None] | None = None) -> ApiProcess:
        """Start the submission's API; ``env`` overrides the contract's variables
        (a value of None removes the variable, e.g. an unset JWT_SECRET_KEY)."""

    def inject_fault(self, service: Service, fault: Fault, delay: float = 0.0) -> None:
        """Break ``service`` as ``fault`` says for every new and open connection."""

    def clear_fault(self, service: Service) -> None:
        """Make ``service`` behave normally again."""

    def files_written_since(self, since: float, containing: Sequence[str]) -> list[str]:
        """Files the API created or changed after ``since`` whose content includes any of
        ``containing`` (paths relative to the stack's own directory)."""
