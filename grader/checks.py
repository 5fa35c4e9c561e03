"""The catalogue of checks the scenarios perform: the one list that rubrics bind to.

Each check is named ``exN.what_it_proves``. A check proves a *fix*: it must fail on the
starter (the handout's library choices: sync OpenAI client with its defaults, plain uvicorn,
``["*"]`` CORS with credentials, pydantic-only validation), so nothing the stack does for free
passes it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    exercise: str
    static: bool  # decided by reading the code, without running it
    proves: str


_SPECS = [
    # ex1 secure configuration
    CheckSpec("ex1.refuses_missing_secret", "ex1", False,
              "without JWT_SECRET_KEY the API exits non-zero quickly, naming JWT_SECRET_KEY "
              "(and it does serve with a strong one)"),
    CheckSpec("ex1.refuses_placeholder_secret", "ex1", False,
              "with a known placeholder secret the API exits non-zero quickly, naming JWT_SECRET_KEY"),
    CheckSpec("ex1.refuses_short_secret", "ex1", False,
              "with a secret shorter than 32 characters the API exits non-zero quickly, naming it"),
    CheckSpec("ex1.cors_rejects_unlisted_origin", "ex1", False,
              "a CORS preflight from an unlisted origin is not allowed (no '*', no echo)"),
    CheckSpec("ex1.no_hardcoded_secret", "ex1", True,
              "no JWT secret default is written in src/api"),
    CheckSpec("ex1.env_example_secret_refused", "ex1", False,
              "the JWT_SECRET_KEY value .env.example suggests is refused at start-up like a weak one "
              "(the handout's suggestion is a 50-character placeholder)"),
    # ex2 graceful shutdown
    CheckSpec("ex2.drains_inflight", "ex2", False,
              "on SIGTERM a slow in-flight generate completes with 200 and the drain is logged"),
    CheckSpec("ex2.cleanup_logged", "ex2", False,
              "after SIGTERM the cleanup (Qdrant closed, MLflow run ended) is logged and the exit is clean"),
    CheckSpec("ex2.drain_bounded", "ex2", False,
              "with an upstream that never answers, the API still exits cleanly within ~30 s of SIGTERM"),
    # ex3 timeouts and limits
    CheckSpec("ex3.hang_bounded", "ex3", False,
              "with the LLM proxy hanging, generate answers 504/503 within the probe's 45 s"),
    CheckSpec("ex3.body_limit", "ex3", False,
              "a 2 MB body with Content-Length gets 413"),
    CheckSpec("ex3.body_limit_chunked", "ex3", False,
              "a 2 MB chunked body without Content-Length gets 413"),
    CheckSpec("ex3.breaker_opens", "ex3", False,
              "after repeated upstream failures, calls fail fast with 503 and reach no upstream"),
    CheckSpec("ex3.breaker_recovers", "ex3", False,
              "after its recovery window the breaker lets traffic through again"),
    # ex4 errors and retry
    CheckSpec("ex4.retries_transient", "ex4", False,
              "503, 503, 503, 200 upstream ends in 200 after 4 upstream calls with growing gaps"),
    CheckSpec("ex4.retries_logged", "ex4", False,
              "each retry of a transient failure is logged"),
    CheckSpec("ex4.no_retry_on_400", "ex4", False,
              "an upstream 400 answers 400 after exactly one upstream call"),
    CheckSpec("ex4.rate_limit_surfaces", "ex4", False,
              "an upstream that keeps answering 429 surfaces as 429"),
    CheckSpec("ex4.unknown_model_404", "ex4", False,
              "an unknown model answers 404 naming the model"),
    CheckSpec("ex4.error_body_fields", "ex4", False,
              "error bodies are JSON with incident_id, timestamp and a message"),
    CheckSpec("ex4.mlflow_fallback", "ex4", False,
              "with MLflow down generate still succeeds and the trace is kept (fallback file or log)"),
    # ex5 health checks
    CheckSpec("ex5.liveness_independent", "ex5", False,
              "/health answers 200 while every dependency is down and readiness says degraded"),
    CheckSpec("ex5.ready_when_up", "ex5", False,
              "/health/detailed answers 200 with per-dependency checks when all are up"),
    CheckSpec("ex5.names_qdrant_down", "ex5", False,
              "readiness answers 503 naming Qdrant while Qdrant is down"),
    CheckSpec("ex5.names_llm_down", "ex5", False,
              "readiness answers 503 naming the LLM proxy while it is down"),
    CheckSpec("ex5.names_mlflow_down", "ex5", False,
              "readiness answers 503 naming MLflow while it is down"),
    CheckSpec("ex5.recovers", "ex5", False,
              "readiness is back to 200 once every dependency is back"),
    # ex6 structured logging
    CheckSpec("ex6.json_logs", "ex6", False,
              "every line written after start-up is a JSON object with timestamp, level, message"),
    CheckSpec("ex6.request_id_generated", "ex6", False,
              "responses carry X-Request-ID as req_ + 16 hex characters"),
    CheckSpec("ex6.request_id_echoed", "ex6", False,
              "a caller's X-Request-ID is echoed back"),
    CheckSpec("ex6.request_id_in_logs", "ex6", False,
              "the log lines of a request carry its request id"),
    CheckSpec("ex6.no_print_calls", "ex6", True,
              "no print() call in src/api (parsed, not grepped)"),
]

CHECKS: dict[str, CheckSpec] = {spec.check_id: spec for spec in _SPECS}
EXERCISES: tuple[str, ...] = ("ex1", "ex2", "ex3", "ex4", "ex5", "ex6")


def checks_of(exercise: str) -> list[CheckSpec]:
    """The checks of one exercise, in catalogue order."""
    return [spec for spec in _SPECS if spec.exercise == exercise]
