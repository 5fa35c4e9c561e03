"""What a test needs of the machine: skipped with the reason locally, a failure in CI.

CI (the environment variable ``CI`` set, as ``.ci/run`` does) installs bubblewrap, Chromium,
debootstrap and has a Docker engine: a test that finds one missing there found a broken CI,
not a reason to test less.
"""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str) -> None:
    """End the test: skip saying ``reason``, or fail with it in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"CI needs it: {reason}")
    pytest.skip(reason)
