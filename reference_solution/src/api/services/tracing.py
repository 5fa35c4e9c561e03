"""MLflow tracing of LLM calls, with a local fallback (exercise 4).

One experiment, one long-lived run; each call is logged to it from a single worker
thread, so MLflow I/O never runs on the event loop and never delays a response. When
MLflow fails, the trace is appended to a JSONL file (TRACE_FALLBACK_PATH, default
./traces_fallback.jsonl) and an error line says so: nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

# The MLflow client retries for minutes by default: keep every call short. Set before
# mlflow is imported (it is imported lazily, in the worker thread).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")

from config.logging_config import get_logger  # noqa: E402
from config.settings import settings  # noqa: E402

logger = get_logger("api.tracing")

EXPERIMENT_NAME = os.getenv("MLFLOW_EXPERIMENT_NAME", "llmops-api")
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow")
_lock = threading.Lock()
_state = {"run_id": None, "client": None, "step": 0, "ended": False}


def _fallback_path() -> str:
    return os.getenv("TRACE_FALLBACK_PATH", "./traces_fallback.jsonl")


def _client():
    if _state["client"] is None:
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(settings.MLFLOW_TRACKING_URI)
        _state["client"] = MlflowClient(tracking_uri=settings.MLFLOW_TRACKING_URI)
    return _state["client"]


def _ensure_run() -> str:
    with _lock:
        if _state["run_id"] is None:
            client = _client()
            experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
            experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT_NAME)
            run = client.create_run(experiment_id, run_name=f"api-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}")
            _state["run_id"] = run.info.run_id
            logger.info("MLflow run started", extra={"mlflow_run_id": _state["run_id"], "experiment": EXPERIMENT_NAME})
        return _state["run_id"]


def _start() -> None:
    try:
        _ensure_run()
    except Exception as exc:
        logger.warning(f"MLflow unavailable at start-up, will retry on the next trace: {exc.__class__.__name__}")


def start() -> None:
    """Set the experiment and start the run in the background (start-up never waits)."""
    _executor.submit(_start)


def _log(trace: dict, fallback_path: str) -> None:
    try:
        from mlflow.entities import Metric, Param

        run_id = _ensure_run()
        with _lock:
            _state["step"] += 1
            step = _state["step"]
        now_ms = int(time.time() * 1000)
        metrics = [
            Metric(k, float(trace[k]), now_ms, step)
            for k in ("latency_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost")
            if isinstance(trace.get(k), (int, float))
        ]
        params = [Param(f"call_{step}_model", str(trace.get("model")))]
        _client().log_batch(run_id, metrics=metrics, params=params)
    except Exception as exc:
        _write_fallback(trace, exc, fallback_path)


def _write_fallback(trace: dict, exc: Exception, path: str) -> None:
    record = {"timestamp": datetime.now(timezone.utc).isoformat(), "mlflow_error": repr(exc)[:300], **trace}
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
        logger.error(f"MLflow logging failed; trace written to fallback file {path}",
                     extra={"fallback_path": path, "trace_request_id": trace.get("request_id"), "mlflow_error": exc.__class__.__name__})
    except OSError as io_exc:
        logger.error(f"MLflow logging failed and fallback file {path} is not writable; trace: {json.dumps(trace, default=str)}",
                     extra={"fallback_error": repr(io_exc)})


def record_call(trace: dict) -> None:
    """Queue one LLM call's trace; returns at once."""
    _executor.submit(_log, dict(trace), _fallback_path())


def _end() -> str | None:
    with _lock:
        run_id, _state["run_id"] = _state["run_id"], None
    if run_id is None:
        return "no run was active"
    _client().set_terminated(run_id, status="FINISHED")
    return None


async def end_run() -> str | None:
    """End the run after the queued traces are written (bounded by the caller)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, _end)
