"""The compose backend's images, really built offline and run; skipped with the reason where
the machine cannot build them. Containers are removed after each test; images stay (the cache)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx
import pytest
from docker.models.containers import Container

from grader.errors import MachineError
from grader.stack.compose import images
from grader.stack.compose.images import OfflineImages, ensure_images, missing_requirements

from .support import require_compose

TEST_LABEL = "org.llmops-grader.test"
TOKEN = "test-token"


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    require_compose()
    with contextlib.closing(docker.from_env()) as engine:
        yield engine


@pytest.fixture(scope="module")
def built(client: docker.DockerClient) -> OfflineImages:
    return ensure_images(client, on_progress=lambda message: None)


@pytest.fixture()
def start(client: docker.DockerClient) -> Iterator[Callable[..., Container]]:
    """Start a labelled container with the given ports published on 127.0.0.1; all removed after."""
    started: list[Container] = []

    def run(image: str, command: list[str] | None = None, ports: tuple[int, ...] = ()) -> Container:
        container = client.containers.run(
            image, command, detach=True, labels={TEST_LABEL: "images"},
            ports={f"{port}/tcp": ("127.0.0.1", None) for port in ports},
        )  # fmt: skip
        started.append(container)
        container.reload()
        return container

    try:
        yield run
    finally:
        for container in started:
            container.remove(force=True)


def _get_when_up(container: Container, port: int, path: str = "/", timeout: float = 300.0,
                 **options: object) -> httpx.Response:
    """GET ``path`` on the container's published ``port`` once its server answers: seconds on an
    idle machine, minutes on a loaded one. Fails with the logs if the container stops first."""
    url = f"http://127.0.0.1:{container.ports[f'{port}/tcp'][0]['HostPort']}{path}"
    deadline = time.monotonic() + timeout
    # trust_env=False: a proxy from the environment must not carry loopback calls.
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        while True:
            try:
                return http.get(url, **options)  # type: ignore[arg-type]
            except httpx.TransportError:
                container.reload()
                if container.status == "exited":
                    pytest.fail(f"{container.image.tags} stopped: {container.logs().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_student_dockerfile_pip_installs_and_imports(built: OfflineImages, client: docker.DockerClient,
                                                       tmp_path: Path, start: Callable[..., Container]) -> None:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "main.py").write_text("import six\nprint(six.__version__)\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {built.python_base}\nWORKDIR /app\nCOPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\nCMD [\"python\", \"main.py\"]\n"
    )
    tag = "llmops-grader/test-student:six"
    client.images.build(path=str(tmp_path), tag=tag, network_mode="host", rm=True, forcerm=True,
                        labels={TEST_LABEL: "images"})
    try:
        container = start(tag)
        assert container.wait(timeout=60)["StatusCode"] == 0
        assert container.logs().decode().strip() == "1.16.0"
    finally:
        client.images.remove(tag, force=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_standins_serve_the_llm_and_qdrant(built: OfflineImages, start: Callable[..., Container]) -> None:
    container = start(built.standins, [
        "python", "-m", "grader.stack.services", "--host", "0.0.0.0", "--llm-port", "4000",
        "--control-port", "4001", "--qdrant-port", "6333", "--tei-port", "80", "--token", TOKEN,
    ], ports=(4000, 6333))  # fmt: skip

    models = _get_when_up(container, 4000, "/v1/models")
    qdrant = _get_when_up(container, 6333)
    collections = _get_when_up(container, 6333, "/collections")

    assert models.status_code == 200 and models.json()["data"]
    assert qdrant.status_code == 200 and qdrant.json()["title"].startswith("qdrant")
    assert collections.json()["result"] == {"collections": []}
    assert '"ready": true' in container.logs().decode()
    assert container.exec_run(["python", "-c", "import grader.stack.faults, grader.stack.fault_server"]).exit_code == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mlflow_answers_health_under_its_service_name(built: OfflineImages, start: Callable[..., Container]) -> None:
    container = start(built.mlflow, ports=(5000,))

    health = _get_when_up(container, 5000, "/health")
    experiments = _get_when_up(container, 5000, "/api/2.0/mlflow/experiments/search",
                               params={"max_results": 1}, headers={"Host": "mlflow:5000"})

    assert (health.status_code, health.text) == (200, "OK")
    assert experiments.status_code == 200


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_second_call_builds_nothing(built: OfflineImages, client: docker.DockerClient) -> None:
    ids = {tag: client.images.get(tag).id for tag in (built.python_base, built.standins, built.mlflow)}
    messages: list[str] = []

    again = ensure_images(client, on_progress=messages.append)

    assert again == built
    assert messages == [f"{tag}: up to date" for tag in ids]
    assert {tag: client.images.get(tag).id for tag in ids} == ids
    assert client.images.get(f"{images.STANDINS_REPOSITORY}:latest").id == ids[built.standins]
    assert client.images.get(f"{images.MLFLOW_REPOSITORY}:latest").id == ids[built.mlflow]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_failed_build_names_its_last_words_and_log(built: OfflineImages, client: docker.DockerClient,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(images, "_STANDINS_MODULES", (*images._STANDINS_MODULES, "grader.no_such_module"))

    with pytest.raises(MachineError) as failure:
        ensure_images(client, on_progress=lambda message: None)

    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"building {images.STANDINS_REPOSITORY}:")
    assert "No module named 'grader.no_such_module' (RUN exited with 1)" in message
    assert f"(log: {tmp_path / 'images' / 'standins.log'})" in message
    assert "No module named" in (tmp_path / "images" / "standins.log").read_text()


def test_without_an_engine_the_reason_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    reason = missing_requirements()
    with pytest.raises(MachineError) as failure:
        ensure_images(on_progress=lambda message: None)

    assert reason is not None and reason.startswith("no Docker engine answering") and "\n" not in reason
    assert str(failure.value).startswith("no Docker engine answering")
