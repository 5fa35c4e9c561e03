"""Where the grader keeps what it reuses between runs (venvs, image build state)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from grader.checkout import walk


def default_cache_root() -> Path:
    """The grader's cache directory: venvs, image build logs and locks (``GRADER_CACHE_DIR`` overrides)."""
    configured = os.environ.get("GRADER_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "llmops-grader"


def tree_hash(folder: Path) -> str:
    """A short hash of every file's relative path and content under ``folder`` (``.git`` and
    ``__pycache__`` left out); a symlink counts by its target, never followed. Walked without
    recursion and read in chunks: a submission's tree may be deep, and its files huge."""
    digest = hashlib.sha256()
    for entry in sorted(walk(folder, skip=frozenset({"__pycache__", ".git"})), key=lambda entry: entry.relative):
        relative = entry.relative.encode()
        path = folder / entry.relative
        try:
            if entry.kind == "link":
                digest.update(b"L" + relative + b"\0" + os.readlink(path).encode() + b"\0")
            elif entry.kind == "file":
                digest.update(b"F" + relative + b"\0")
                with open(path, "rb", opener=_no_follow) as content:
                    while chunk := content.read(1 << 20):
                        digest.update(chunk)
                digest.update(b"\0")
        except OSError:
            digest.update(b"E" + relative + b"\0")  # vanished or turned into a link meanwhile
    return digest.hexdigest()[:16]


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
