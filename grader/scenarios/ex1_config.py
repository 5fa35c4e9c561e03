"""Exercise 1, secure configuration: refuses weak secrets at start-up, strict CORS, no secret in code."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from pydantic import Field

from grader import contract
from grader.catalogue import CheckSpec, ScenarioSettings
from grader.models import CheckResult, Evidence
from grader.stack.base import ApiProcess, Stack

from . import static
from .context import ScenarioContext, StartFailure, start_serving
from .logs import as_evidence
from .recorder import Check, FailureCause, Results, decisive, marginal, unanswered

EXERCISE = "ex1"
CHECKS = (
    CheckSpec("ex1.refuses_missing_secret", False,
              "without JWT_SECRET_KEY the API exits non-zero quickly, naming JWT_SECRET_KEY "
              "(and it does serve with a strong one)"),
    CheckSpec("ex1.refuses_placeholder_secret", False,
              "with a known placeholder secret the API exits non-zero quickly, naming JWT_SECRET_KEY"),
    CheckSpec("ex1.refuses_short_secret", False,
              "with a secret shorter than 32 characters the API exits non-zero quickly, naming it"),
    CheckSpec("ex1.cors_rejects_unlisted_origin", False,
              "a CORS preflight from an unlisted origin is not allowed (no '*', no echo)"),
    CheckSpec("ex1.no_hardcoded_secret", True, "no JWT secret default is written in src/api"),
    CheckSpec("ex1.env_example_secret_refused", False,
              "the JWT_SECRET_KEY value .env.example suggests is refused at start-up like a weak one "
              "(the handout's suggestion is a 50-character placeholder)"),
)


class Settings(ScenarioSettings):
    # "Exits quickly", timed from each process's own spawn: the handout's imports alone take
    # 15-20 s on two cores.
    exit_within_s: float = Field(30, gt=0)


_BAD_SECRETS = {
    "ex1.refuses_missing_secret": (None, "with JWT_SECRET_KEY unset"),
    "ex1.refuses_placeholder_secret": (contract.PLACEHOLDER_SECRET, "with a placeholder JWT_SECRET_KEY"),
    "ex1.refuses_short_secret": (contract.SHORT_SECRET, "with a 17-character JWT_SECRET_KEY"),
}
_ENV_EXAMPLE_CHECK = "ex1.env_example_secret_refused"


@dataclass(frozen=True)
class _Refusal:
    """How one start with a weak secret ended: ``problem`` is empty when it was refused."""

    problem: str
    evidence: list[Evidence]
    failure: FailureCause
    api: ApiProcess


def run(ctx: ScenarioContext, results: Results) -> None:
    _static_checks(ctx, results)
    cases = dict(_BAD_SECRETS)
    # A student who copies .env.example to .env must not get a service that starts: the value
    # it suggests is refused like any weak one (the handout's is 50 characters of placeholder).
    suggested, seen = static.env_example_value(ctx.checkout, contract.SECRET_VARIABLE)
    if suggested is None:
        check = Check(_ENV_EXAMPLE_CHECK)
        check.note("file", seen)
        results.judge(check, False, "", seen, failure=decisive("the repository's file says so"))
    else:
        cases[_ENV_EXAMPLE_CHECK] = (suggested, f"with the JWT_SECRET_KEY .env.example suggests ({suggested!r})")
    with ctx.open_stack("ex1") as stack:
        exit_within = ctx.settings.exit_within_s
        # One process per case, timed from its own spawn (a later case never waits on another).
        with ThreadPoolExecutor(max_workers=len(cases) + 1) as pool:
            refusals = {check_id: pool.submit(_refusal, stack, secret, exit_within)
                        for check_id, (secret, _) in cases.items()}
            # CORS is judged on the submission's own default: with CORS_ORIGINS set, even the
            # handout's ["*"] default would be overridden. A submission that requires the
            # variable is judged on the configured list instead.
            # An API the grading learned cannot start (a re-run, say) is not waited on once more.
            serving = ctx.starts.learned() or pool.submit(start_serving, ctx, stack, {"CORS_ORIGINS": None}).result()
            cors_configured = isinstance(serving, StartFailure)
            if cors_configured:
                serving = start_serving(ctx, stack)
            try:
                for check_id, (_, wording) in cases.items():
                    check = Check(check_id)
                    if check_id == _ENV_EXAMPLE_CHECK:
                        check.note("file", seen)
                    refusal = refusals[check_id].result()
                    check.extend(refusal.evidence)
                    if isinstance(serving, StartFailure):
                        check.extend([serving.evidence])
                        results.judge(check, False, "", f"it refuses every configuration: with a strong secret "
                                                        f"{serving.reason}", failure=serving.failure)
                        continue
                    results.judge(check, not refusal.problem, f"exits non-zero quickly {wording}, naming JWT_SECRET_KEY",
                                  f"{wording}: {refusal.problem}", failure=refusal.failure, api=refusal.api)
                if isinstance(serving, StartFailure):
                    results.fail_all(["ex1.cors_rejects_unlisted_origin"], serving.reason, [serving.evidence],
                                     failure=serving.failure)
                else:
                    _cors(serving.probe, results, cors_configured)
            finally:
                if not isinstance(serving, StartFailure):
                    serving.close()


def _refusal(stack: Stack, secret: str | None, exit_within: float) -> _Refusal:
    """How the API started with ``secret`` ended: refused (exit non-zero within the limit,
    naming the variable), or why not and whether load could explain it."""
    api: ApiProcess = stack.start_api({contract.SECRET_VARIABLE: secret})
    try:
        code = api.wait_exit(max(0.0, api.started_at + exit_within - time.time()))
        elapsed = time.time() - api.started_at
        serving = code is None and _answers_http(api.url)
        lines = api.output()
        evidence = [as_evidence(lines[-15:], f"output (exit code {code}, {elapsed:.1f}s after spawn)")]
        if code is None and serving:
            return _Refusal(f"serving {exit_within:.0f}s after start instead of refusing to start", evidence,
                            decisive("it answered HTTP: it had started, not refused"), api)
        if code is None:
            return _Refusal(f"still running, not yet serving, {exit_within:.0f}s after start (no refusal seen)",
                            evidence, marginal("still starting when the limit passed: load slows a start"), api)
        if code == 0:
            return _Refusal("exited with status 0: a refusal must be a failure status", evidence,
                            decisive("the exit status does not depend on load"), api)
        if not any(contract.SECRET_VARIABLE in line.text for line in lines):
            return _Refusal(f"exited with status {code} without naming JWT_SECRET_KEY in its output", evidence,
                            decisive("what it printed before exiting does not depend on load"), api)
        return _Refusal("", evidence, decisive("refused"), api)
    finally:
        api.kill()


def _answers_http(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` (a started API, whatever its status)."""
    try:
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            client.get(f"{url}{contract.LIVENESS_PATH}")
        return True
    except httpx.HTTPError:
        return False


def _cors(probe, results: Results, configured: bool) -> CheckResult:
    check = Check("ex1.cors_rejects_unlisted_origin")
    check.note("note", "CORS_ORIGINS set to the listed origin (the API needs it to start)" if configured
               else "CORS_ORIGINS unset: the submission's own default is judged")
    observed = probe.call(
        "OPTIONS",
        contract.GENERATE_PATH,
        headers={"Origin": contract.UNLISTED_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    check.extend([observed.evidence()])
    allowed = observed.header("access-control-allow-origin")
    check.note("request", f"access-control-allow-origin: {allowed!r}")
    if observed.status is None:
        return results.judge(check, False, "", f"the preflight got no answer ({observed.error})",
                             failure=unanswered(None))
    ok = allowed not in ("*", contract.UNLISTED_ORIGIN)
    return results.judge(check, ok, f"a preflight from {contract.UNLISTED_ORIGIN} is not allowed",
                         f"a preflight from {contract.UNLISTED_ORIGIN} is allowed "
                         f"(access-control-allow-origin: {allowed})", failure=unanswered(observed.status))


def _static_checks(ctx: ScenarioContext, results: Results) -> None:
    check = Check("ex1.no_hardcoded_secret")
    findings = static.hardcoded_secrets(ctx.checkout)
    for finding in findings[:10]:
        check.note("file", str(finding))
    api_problem = static.api_dir_problem(ctx.checkout)
    results.judge(check, api_problem is None and not findings, "no JWT secret default in src/api",
                  api_problem if api_problem else
                  f"a JWT secret default is written in the code ({findings[0]})" if findings else "",
                  failure=decisive("the code says so"))
