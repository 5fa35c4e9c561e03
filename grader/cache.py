"""Where the grader keeps what it reuses between runs (venvs, image build state)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def default_cache_root() -> Path:
    """The grader's cache directory: venvs, image build logs and locks (``GRADER_CACHE_DIR`` overrides)."""
    configured = os.environ.get("GRADER_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "llmops-grader"


def tree_hash(folder: Path) -> str:
    """A short hash of every file's relative path and content under ``folder`` (``.git`` and
    ``__pycache__`` left out); a symlink counts by its target, never followed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if not {"__pycache__", ".git"} & set(p.relative_to(folder).parts)):
        relative = path.relative_to(folder).as_posix().encode()
        if path.is_symlink():
            digest.update(b"L" + relative + b"\0" + str(path.readlink()).encode() + b"\0")
        elif path.is_file():
            digest.update(b"F" + relative + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
