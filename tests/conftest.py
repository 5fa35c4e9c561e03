"""Which tests belong to the long end-to-end stage (``pytest -m e2e``), by where they live.

The README's test command runs everything else (``-m "not e2e"``, under ten minutes on two
cores); the e2e stage grades the whole manifest and grades on the Docker engine, with image
builds: tens of minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
_LONG_STAGE = {"e2e", "compose"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.path.is_relative_to(_TESTS) and item.path.relative_to(_TESTS).parts[0] in _LONG_STAGE:
            item.add_marker(pytest.mark.e2e)
