"""Helpers of the tests that build and run their own containers (Gradescope's layout, a fresh
Debian 12): they belong to the e2e stage, and without an engine they skip saying why (fail in CI)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
from docker.models.containers import Container

from grader.stack.compose.images import missing_requirements
from tests.needs import unavailable

TEST_LABEL = "org.llmops-grader.test"
DOCKER_TIMEOUT_S = 600  # an engine busy with other gradings may take minutes to remove a container


def engine_or_skip() -> None:
    """Skip (fail in CI) unless a Docker engine answers and the base images can be had."""
    problem = missing_requirements()
    if problem is not None:
        unavailable(problem)


def tar_of(root: Path, prefix: str = "") -> bytes:
    """``root``'s files as a tar (``.git`` left out), for ``put_archive``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if ".git" in relative.parts:
                continue
            tar.add(path, arcname=str(Path(prefix) / relative), recursive=False)
    return buffer.getvalue()


def file_from(container: Container, path: str) -> bytes:
    """One regular file out of a (stopped) container."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        assert member is not None and member.isfile(), f"{path} is not a file in the container"
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


@contextlib.contextmanager
def labelled_container(client: docker.DockerClient, image: str, command: list[str], **options: object
                       ) -> Iterator[Container]:
    """A created (not started) container, removed afterwards whatever happens."""
    container = client.containers.create(image, command, labels={TEST_LABEL: "containers"}, **options)
    try:
        yield container
    finally:
        container.remove(force=True)
