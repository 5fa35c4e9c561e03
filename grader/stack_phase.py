"""The stack phase of a grading in a network namespace of its own, with only loopback.

Everything that serves or probes during the scenarios (the stand-ins, MLflow, the API, the
probes) runs in a child process started by ``bwrap --unshare-net --unshare-pid`` over the
whole filesystem: the submission can reach 127.0.0.1 and nothing else, and when the child
ends (or the grader dies) every process of the phase ends with it. Fetch, diff and the
install stay outside: they need the network. Without namespaces the phase runs in-process
and the report says the network was not isolated.

    parent (grader)                      child: python -m grader.stack_phase REQUEST
    prepare_venv (network, sandboxed) -> LocalBackend(venv given) -> run_scenarios
    reads one JSON line per exercise  <- prints RESULT_MARKER {"exercise", "checks"}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from grader import errors
from grader.clock import GradingClock
from grader.errors import GraderError, StackError
from grader.models import CheckResult
from grader.sandbox.bwrap import namespace_argv
from grader.sandbox.cgroup import CgroupLayout
from grader.sandbox.detect import Isolation
from grader.sandbox.limits import Limits
from grader.scenarios.declared import DeclaredCheck
from grader.scenarios.runner import run_on_backend
from grader.stack.local import LocalBackend, prepare_venv, unrunnable_reason
from grader.stack.venv import VenvResult

RESULT_MARKER = "@@grader-stack-phase@@"
# After the submission's time limit, the stacks' teardown still takes seconds; past this
# margin the child is stuck (the grader's failure, not the student's) and is killed.
_TEARDOWN_GRACE_S = 120.0
_KEPT_LINES = 40
OnFinished = Callable[[str, list[CheckResult]], None]


@dataclass(frozen=True)
class StackPhase:
    """Everything the scenarios need, serialisable for the child process."""

    checkout: Path
    workdir: Path
    cache_root: Path
    exercises: tuple[str, ...]
    settings: Mapping[str, Mapping[str, float]]  # exercise -> rubric settings
    clock: GradingClock
    venv: VenvResult | None = None  # prepared outside the namespace; None: unrunnable or not needed
    declared: Mapping[str, DeclaredCheck] = field(default_factory=dict)  # the rubric's checks as data

    def to_json(self, isolation: Isolation) -> str:
        venv = None if self.venv is None else {**asdict(self.venv), "python": _str(self.venv.python)}
        return json.dumps({
            "checkout": str(self.checkout), "workdir": str(self.workdir), "cache_root": str(self.cache_root),
            "exercises": list(self.exercises), "settings": {k: dict(v) for k, v in self.settings.items()},
            "venv": venv, "isolation": _isolation_to_dict(isolation), "clock": asdict(self.clock),
            "declared": {check_id: check.model_dump(mode="json", by_alias=True)
                         for check_id, check in self.declared.items()},
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> tuple["StackPhase", Isolation]:
        data = json.loads(text)
        venv = data["venv"]
        if venv is not None:
            venv = VenvResult(**{**venv, "python": Path(venv["python"]) if venv["python"] else None})
        phase = cls(checkout=Path(data["checkout"]), workdir=Path(data["workdir"]), cache_root=Path(data["cache_root"]),
                    exercises=tuple(data["exercises"]), settings=data["settings"],
                    clock=GradingClock(**data["clock"]), venv=venv,
                    declared={check_id: DeclaredCheck.model_validate(check)
                              for check_id, check in data["declared"].items()})
        return phase, _isolation_from_dict(data["isolation"])


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _isolation_to_dict(isolation: Isolation) -> dict[str, object]:
    layout = isolation.cgroups
    return {
        "bwrap": isolation.bwrap, "netns": isolation.netns, "unprivileged": isolation.unprivileged,
        "limits": asdict(isolation.limits),
        "missing": list(isolation.missing),
        "cgroups": None if layout is None else {"version": layout.version,
                                                "parents": [[c, str(p)] for c, p in layout.parents]},
    }  # fmt: skip


def _isolation_from_dict(data: dict) -> Isolation:
    layout = data["cgroups"]
    cgroups = None if layout is None else CgroupLayout(layout["version"], tuple((c, Path(p)) for c, p in layout["parents"]))
    return Isolation(bwrap=data["bwrap"], netns=data["netns"], unprivileged=data["unprivileged"], cgroups=cgroups,
                     limits=Limits(**data["limits"]),
                     missing=tuple(data["missing"]))


def namespace_command(isolation: Isolation, argv: Sequence[str]) -> list[str]:
    """``argv`` in a new network namespace (only loopback, up) and PID namespace, seeing the
    whole filesystem; it and all it starts die with the caller."""
    assert isolation.bwrap is not None and isolation.netns
    return namespace_argv(isolation.bwrap, argv)


def grade_dynamic(checkout: Path, workdir: Path, cache_root: Path, exercises: Sequence[str],
                  settings: Mapping[str, Mapping[str, float]], clock: GradingClock, isolation: Isolation,
                  on_finished: OnFinished = lambda exercise, checks: None,
                  on_stage: Callable[[str], None] = lambda message: None,
                  declared: Mapping[str, DeclaredCheck] | None = None) -> dict[str, CheckResult]:
    """Install the submission's environment (outside: it needs the index), then run the
    scenarios (and the rubric's ``declared`` checks) in the stack phase's own network
    namespace. What ``pipeline.grade`` calls."""
    venv = None
    if unrunnable_reason(checkout) is None:
        on_stage("installing the submission's requirements" + (" (sandboxed)" if isolation.bwrap else ""))
        venv = prepare_venv(checkout, cache_root, isolation)
    on_stage("running the scenarios" + (" in their own network namespace" if isolation.netns else ""))
    phase = StackPhase(checkout=checkout, workdir=workdir, cache_root=cache_root, exercises=tuple(exercises),
                       settings=settings, clock=clock, venv=venv, declared=declared or {})
    return run_stack_phase(phase, isolation, on_finished)


def run_stack_phase(phase: StackPhase, isolation: Isolation,
                    on_finished: OnFinished = lambda exercise, checks: None) -> dict[str, CheckResult]:
    """The scenarios' checks, run in the phase's own network namespace when the machine allows."""
    if not isolation.netns:
        return run_in_process(phase, isolation, on_finished)
    phase.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=phase.workdir, prefix="stack-phase-", suffix=".json",
                                     delete=False) as request:
        request.write(phase.to_json(isolation))
    argv = namespace_command(isolation, [sys.executable, "-m", "grader.stack_phase", request.name])
    return _run_child(argv, phase.clock.ends_at + _TEARDOWN_GRACE_S, on_finished)


def _run_child(argv: list[str], kill_at: float, on_finished: OnFinished) -> dict[str, CheckResult]:
    """Run the child, taking each exercise's checks as it reports them; killed at ``kill_at``
    (``time.time()``), when the scenarios' own deadlines should long have ended it."""
    checks: dict[str, CheckResult] = {}
    log: deque[str] = deque(maxlen=_KEPT_LINES)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    stuck = threading.Event()

    def kill_stuck() -> None:
        stuck.set()
        proc.kill()

    watchdog = threading.Timer(max(0.0, kill_at - time.time()), kill_stuck)
    watchdog.daemon = True
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(RESULT_MARKER):
                log.append(line.rstrip())
                continue
            finished = json.loads(line[len(RESULT_MARKER):])
            if "error" in finished:  # the grader's own failure in the child: same class, same line
                error_class = getattr(errors, finished["error"], GraderError)
                raise error_class(finished["message"])
            results = [CheckResult.model_validate(check) for check in finished["checks"]]
            on_finished(finished["exercise"], results)
            checks.update({result.check_id: result for result in results})
        code = proc.wait()
    except BaseException:
        proc.kill()  # bwrap's PID namespace takes every process of the phase with it
        proc.wait()
        raise
    finally:
        watchdog.cancel()
    if stuck.is_set():
        raise StackError(f"the stack phase outlived the submission's time limit by {_TEARDOWN_GRACE_S:.0f} s: killed")
    if code != 0:
        tail = " | ".join(line for line in list(log)[-5:] if line.strip()) or "no output"
        raise StackError(f"the stack phase ended with code {code}: {tail}")
    return checks


def run_in_process(phase: StackPhase, isolation: Isolation,
                   on_finished: OnFinished = lambda exercise, checks: None,
                   in_namespace: bool = False) -> dict[str, CheckResult]:
    """The scenarios of ``phase`` in this process (what the child runs, ``in_namespace``, and
    the fallback)."""
    with LocalBackend(phase.checkout, phase.workdir, phase.cache_root, isolation=isolation, venv=phase.venv,
                      own_mount_namespace=in_namespace) as backend:
        return run_on_backend(backend.open_stack, phase.checkout, phase.exercises, phase.settings, phase.clock,
                              on_finished, declared=phase.declared)


def main(argv: list[str]) -> int:
    phase, isolation = StackPhase.from_json(Path(argv[0]).read_text())
    lock = threading.Lock()

    def report(exercise: str, checks: list[CheckResult]) -> None:
        line = json.dumps({"exercise": exercise, "checks": [c.model_dump(mode="json") for c in checks]})
        with lock:
            sys.stdout.write(f"{RESULT_MARKER}{line}\n")
            sys.stdout.flush()

    try:
        run_in_process(phase, isolation, report, in_namespace=True)
    except GraderError as exc:
        print(f"{RESULT_MARKER}{json.dumps({'error': type(exc).__name__, 'message': str(exc)})}", flush=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
