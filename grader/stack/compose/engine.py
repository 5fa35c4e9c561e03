"""Finding the Docker engine and the Compose CLI, and running the CLI on one project.

The Docker SDK drives containers, logs and signals; the project itself (build, up, stop,
start, run, down) goes through the Compose CLI, the v2 plugin ``docker compose`` when
present, else v1 ``docker-compose``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from grader.errors import MachineError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
# Swaps the pinned official images for ones built locally (this machine has no registry).
OFFLINE_OVERRIDE = Path(__file__).with_name("offline.yml")
# What the CLI may see of the grader's environment: how to reach the engine, nothing else.
_PASSED_THROUGH = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                   "DOCKER_CONTEXT")


@functools.cache
def compose_command() -> tuple[str, ...]:
    """``("docker", "compose")`` or ``("docker-compose",)``; MachineError naming both when neither runs."""
    candidates = [("docker", "compose"), ("docker-compose",)]
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return command
    raise MachineError("neither the Compose v2 plugin (`docker compose`) nor Compose v1 (`docker-compose`) "
                       "is installed: install one (Debian: apt-get install docker-compose) or use --backend local")


def engine_problem() -> str | None:
    """Why the compose backend cannot run here (no engine answering, no Compose CLI), or None."""
    try:
        connect_engine().close()  # a fresh client: the answer is about the engine now
        compose_command()
    except MachineError as exc:
        return str(exc)
    return None


def connect_engine():
    """A Docker SDK client of the environment's engine (``DOCKER_HOST`` or the socket) that
    answered a ping; MachineError in one line when no engine answers."""
    import docker  # imported late: the local backend never needs it
    import requests

    try:
        client = docker.from_env(timeout=120)
    except docker.errors.DockerException as exc:
        raise MachineError(f"no Docker engine answering: {one_line(exc)}") from exc
    try:
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        client.close()
        raise MachineError(f"no Docker engine answering: {one_line(exc)}") from exc
    return client


@functools.cache
def docker_client():
    """The engine's client that a grading shares (connected once, on first use)."""
    return connect_engine()


def one_line(error: object) -> str:
    """An exception's text on one line."""
    return " ".join(str(error).split())


@functools.cache
def compose_files() -> tuple[Path, ...]:
    """The compose file, plus the offline override unless the engine already holds the pinned
    official images (pulled by an instructor who has a registry)."""
    import docker.errors

    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    try:
        for name in ("qdrant", "mlflow"):
            docker_client().images.get(services[name]["image"])
    except docker.errors.ImageNotFound:
        return COMPOSE_FILE, OFFLINE_OVERRIDE
    return (COMPOSE_FILE,)


def run_compose(project: str, args: Sequence[str], env: Mapping[str, str], *, timeout: float,
                env_file: Path, files: Sequence[Path] | None = None,
                overrides: Sequence[Path] = ()) -> subprocess.CompletedProcess[str]:
    """``<compose> -p project -f ... --env-file env_file args`` with only ``env`` (plus how to
    reach the engine) in its environment; output captured. ``env_file`` keeps a stray ``.env``
    beside the compose file from setting what ``env`` leaves unset; ``files`` default to the
    grading stack's (``compose_files()``), ``overrides`` come last."""
    command = [*compose_command(), "-p", project, "--env-file", str(env_file)]
    for path in (*(compose_files() if files is None else files), *overrides):
        command += ["-f", str(path)]
    environment = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ} | dict(env)
    try:
        return subprocess.run([*command, *args], env=environment, capture_output=True, text=True, timeout=timeout,
                              cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise MachineError(f"`{' '.join(command[:1])} {' '.join(args[:2])}` of {project} took more than "
                           f"{timeout:.0f} s") from exc
