"""Exercise 1, secure configuration: refuses weak secrets at start-up, strict CORS, no secret in code."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from grader import contract
from grader.models import CheckResult, Evidence
from grader.stack.base import ApiProcess, Stack

from . import static
from .context import ScenarioContext, start_serving
from .logs import as_evidence
from .recorder import Check, Results

EXERCISE = "ex1"
_BAD_SECRETS = {
    "ex1.refuses_missing_secret": (None, "with JWT_SECRET_KEY unset"),
    "ex1.refuses_placeholder_secret": (contract.PLACEHOLDER_SECRET, "with a placeholder JWT_SECRET_KEY"),
    "ex1.refuses_short_secret": (contract.SHORT_SECRET, "with a 17-character JWT_SECRET_KEY"),
}
_ENV_EXAMPLE_CHECK = "ex1.env_example_secret_refused"


def run(ctx: ScenarioContext, results: Results) -> None:
    _static_checks(ctx, results)
    cases = dict(_BAD_SECRETS)
    # A student who copies .env.example to .env must not get a service that starts: the value
    # it suggests is refused like any weak one (the handout's is 50 characters of placeholder).
    suggested, seen = static.env_example_value(ctx.checkout, contract.SECRET_VARIABLE)
    if suggested is None:
        check = Check(_ENV_EXAMPLE_CHECK)
        check.note("file", seen)
        results.judge(check, False, "", seen)
    else:
        cases[_ENV_EXAMPLE_CHECK] = (suggested, f"with the JWT_SECRET_KEY .env.example suggests ({suggested!r})")
    with ctx.open_stack("ex1") as stack:
        exit_within = ctx.setting("exit_within_s", 30)
        # One process per case, timed from its own spawn (a later case never waits on another).
        with ThreadPoolExecutor(max_workers=len(cases) + 1) as pool:
            refusals = {check_id: pool.submit(_refusal, stack, secret, exit_within)
                        for check_id, (secret, _) in cases.items()}
            # CORS is judged on the submission's own default: with CORS_ORIGINS set, even the
            # handout's ["*"] default would be overridden. A submission that requires the
            # variable is judged on the configured list instead.
            serving, failure, start_evidence = pool.submit(start_serving, ctx, stack, {"CORS_ORIGINS": None}).result()
            cors_configured = serving is None
            if cors_configured:
                serving, failure, start_evidence = start_serving(ctx, stack)
            try:
                for check_id, (secret, wording) in cases.items():
                    check = Check(check_id)
                    if check_id == _ENV_EXAMPLE_CHECK:
                        check.note("file", seen)
                    refused, evidence = refusals[check_id].result()
                    check.extend(evidence)
                    if serving is None:
                        check.extend([start_evidence])
                        results.judge(check, False, "", f"it refuses every configuration: with a strong secret {failure}")
                        continue
                    results.judge(check, refused == "", f"exits non-zero quickly {wording}, naming JWT_SECRET_KEY",
                                  f"{wording}: {refused}")
                if serving is None:
                    results.fail_all(["ex1.cors_rejects_unlisted_origin"], failure, [start_evidence])
                else:
                    _cors(serving.probe, results, cors_configured)
            finally:
                if serving is not None:
                    serving.probe.close()
                    serving.api.kill()


def _refusal(stack: Stack, secret: str | None, exit_within: float) -> tuple[str, list[Evidence]]:
    """'' when the API exits non-zero within the limit naming the variable, else why not."""
    api: ApiProcess = stack.start_api({contract.SECRET_VARIABLE: secret})
    try:
        code = api.wait_exit(max(0.0, api.started_at + exit_within - time.time()))
        elapsed = time.time() - api.started_at
        lines = api.output()
        evidence = [as_evidence(lines[-15:], f"output (exit code {code}, {elapsed:.1f}s after spawn)")]
        if code is None:
            return f"still running {exit_within:.0f}s after start instead of refusing to start", evidence
        if code == 0:
            return "exited with status 0: a refusal must be a failure status", evidence
        if not any(contract.SECRET_VARIABLE in line.text for line in lines):
            return f"exited with status {code} without naming JWT_SECRET_KEY in its output", evidence
        return "", evidence
    finally:
        api.kill()


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
        return results.judge(check, False, "", f"the preflight got no answer ({observed.error})")
    ok = allowed not in ("*", contract.UNLISTED_ORIGIN)
    return results.judge(check, ok, f"a preflight from {contract.UNLISTED_ORIGIN} is not allowed",
                         f"a preflight from {contract.UNLISTED_ORIGIN} is allowed "
                         f"(access-control-allow-origin: {allowed})")


def _static_checks(ctx: ScenarioContext, results: Results) -> None:
    check = Check("ex1.no_hardcoded_secret")
    findings = static.hardcoded_secrets(ctx.checkout)
    for finding in findings[:10]:
        check.note("file", str(finding))
    api_present = (ctx.checkout / "src" / "api").is_dir()
    results.judge(check, api_present and not findings, "no JWT secret default in src/api",
                  "src/api is missing" if not api_present else
                  f"a JWT secret default is written in the code ({findings[0]})" if findings else "")
