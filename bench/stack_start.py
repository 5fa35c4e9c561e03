"""Start-up times of the local stack: cold, warm, and six stacks at once.

    uv run python bench/stack_start.py

cold  = a new venv cache (uv's download cache may be warm) and MLflow's first start
warm  = cached venv, MLflow already up: one stack until the reference API serves
six   = six stacks started at once (a grading's scenarios), until all six APIs serve
Targets on the 2-core machine: warm under 5 s, six concurrent under 15 s.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fixtures.build import build_fixture
from grader.stack.local import LocalBackend


def _serve_once(backend: LocalBackend, name: str) -> float:
    started = time.monotonic()
    with backend.open_stack(name) as stack:
        api = stack.start_api()
        if not api.wait_until_serving(90):
            raise SystemExit(f"{name}: {api.startup_failure_reason()}")
        took = time.monotonic() - started
    return took


def main() -> None:
    checkout = build_fixture("reference")
    with tempfile.TemporaryDirectory() as tmp:
        work, cache = Path(tmp) / "work", Path(tmp) / "cache"
        work.mkdir()
        started = time.monotonic()
        with LocalBackend(checkout, work, cache) as backend:
            ready = time.monotonic() - started
            cold = ready + _serve_once(backend, "cold")
            warm = _serve_once(backend, "warm")
            six_started = time.monotonic()
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(lambda n: _serve_once(backend, f"six{n}"), range(6)))
            six = time.monotonic() - six_started
    print(f"{'case':<28}{'seconds':>8}  target")
    print(f"{'cold (new venv + MLflow)':<28}{cold:>8.1f}")
    print(f"{'  of which venv + MLflow':<28}{ready:>8.1f}")
    print(f"{'warm, one stack':<28}{warm:>8.1f}  < 5")
    print(f"{'warm, six stacks at once':<28}{six:>8.1f}  < 15")


if __name__ == "__main__":
    main()
