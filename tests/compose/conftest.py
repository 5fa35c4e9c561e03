"""Fixtures of the compose tests (helpers in ``support``)."""

from __future__ import annotations

import pytest

from .support import ProjectNames


@pytest.fixture()
def projects(monkeypatch: pytest.MonkeyPatch) -> ProjectNames:
    """The compose projects the test creates, to find what of them it left on the engine."""
    return ProjectNames(monkeypatch)
