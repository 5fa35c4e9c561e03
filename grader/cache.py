"""Where the grader keeps what it reuses between runs (venvs, image build state)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_root() -> Path:
    """The grader's cache directory: venvs, image build logs and locks (``GRADER_CACHE_DIR`` overrides)."""
    configured = os.environ.get("GRADER_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "llmops-grader"
