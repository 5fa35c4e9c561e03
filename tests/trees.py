"""Trees deeper than Python's recursion limit, for the tests of walkers that must not recurse."""

from __future__ import annotations

from pathlib import Path


def deep_tree(root: Path, depth: int = 1100) -> Path:
    """``depth`` folders one in another under ``root`` (deeper than Python's recursion limit);
    the deepest. Remove ``root`` with ``grader.checkout.remove_tree``: pytest's own clean-up of
    its temporary folders recurses, and would fail on it for every later session."""
    folder = root
    for _ in range(depth):  # one level at a time: Path.mkdir(parents=True) itself recurses
        folder = folder / "d"
        folder.mkdir()
    return folder
