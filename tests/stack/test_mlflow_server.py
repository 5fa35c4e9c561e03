"""MlflowServer starts the real server, serves the tracking API and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import mlflow
import psutil
import pytest

from grader.stack.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow


def test_serves_tracking_and_stops_every_process(tmp_path: Path) -> None:
    with MlflowServer(tmp_path / "mlflow") as server:
        spawned = psutil.Process().children(recursive=True)
        health = httpx.get(f"{server.url}/health", trust_env=False)
        client = mlflow.MlflowClient(tracking_uri=server.url)
        experiment_id = client.create_experiment("grader-smoke")
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "latency", 1.5)
        client.set_terminated(run.info.run_id)

        assert health.status_code == 200
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert client.get_experiment_by_name("grader-smoke").experiment_id == experiment_id
        assert server.startup_seconds > 0  # measured and reported (its bound is the start-up limit)
        assert spawned and not any("huey" in " ".join(p.cmdline()) for p in spawned)

    _, alive = psutil.wait_procs(spawned, timeout=5)
    assert not alive
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", trust_env=False)
