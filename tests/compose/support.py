"""What the compose tests share: the engine they need, and what of theirs is left on it.

Where the engine, a Compose CLI or the offline images are missing the tests cannot run:
locally they are skipped with the reason, in CI (``CI`` set) they fail, so that a CI without
an engine is never green on compose. The engine is shared with other gradings, so what a test
left is found by the names of the projects it created (``ProjectNames``), not by a difference
of everything on the engine."""

from __future__ import annotations

import pytest

from grader.stack.compose.engine import docker_client, engine_problem
from grader.stack.compose.images import missing_requirements
from grader.stack.compose.project import ComposeProject
from tests.needs import unavailable


def require_compose() -> None:
    """Skip (locally) or fail (in CI) with the reason when the compose backend cannot run here."""
    if problem := engine_problem() or missing_requirements():
        unavailable(f"compose backend unavailable here: {problem}")


def engine_objects(projects: set[str] | None = None) -> dict[str, list[str]]:
    """The containers, networks and volumes of grading projects (``grade-*``, or only those named
    in ``projects``) that exist now."""
    client = docker_client()

    def owned(labels: dict | None) -> bool:
        project = (labels or {}).get("com.docker.compose.project", "")
        return project in projects if projects is not None else project.startswith("grade-")

    return {
        # sparse: the list alone, no inspect of each container (one may vanish between the two)
        "containers": sorted(c.attrs["Names"][0].lstrip("/") for c in client.containers.list(all=True, sparse=True)
                             if owned(c.attrs.get("Labels"))),
        "networks": sorted(n.name for n in client.networks.list() if owned(n.attrs.get("Labels"))),
        "volumes": sorted(v.name for v in client.volumes.list() if owned(v.attrs.get("Labels"))),
    }


class ProjectNames:
    """Records the name of every compose project created while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: set[str] = set()
        original = ComposeProject.__init__

        def recording(project: ComposeProject, name: str, *args: object, **kwargs: object) -> None:
            self.names.add(name)
            original(project, name, *args, **kwargs)

        monkeypatch.setattr(ComposeProject, "__init__", recording)

    def left_behind(self) -> dict[str, list[str]]:
        """What of these projects is still on the engine (empty lists when nothing)."""
        return engine_objects(self.names)

