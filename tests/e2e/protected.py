"""What no submission may change: the grader's own code and environment, and the machine's files
a grader runs with. A snapshot before the batch and one after must be equal.

Every regular file is recorded by size, mtime and mode; the Python files and ``.pth`` files
(what a planted line would run as the grader) also by a SHA-256 of their content. Bytecode
caches are left out: the grader's own processes write them as they import.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from grader.checkout import walk

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_SKIPPED = frozenset({"__pycache__", ".git", ".grader-cache", ".pytest_cache", ".ruff_cache"})
# What the test session itself writes in the checkout (git-ignored): not the grader's files.
_TEST_OUTPUT = PROJECT_ROOT / "tests" / "artifacts"
_HASHED = (".py", ".pth")


def protected_roots() -> list[Path]:
    """The grader's checkout, its environment, its interpreter, and the machine's /etc and ~/.ssh."""
    roots = [PROJECT_ROOT, Path(sys.prefix), Path(sys.base_prefix).resolve(), Path("/etc"), Path.home() / ".ssh"]
    return [root for root in dict.fromkeys(roots) if root.is_dir()]


def snapshot() -> dict[str, tuple]:
    """Path -> (size, mtime_ns, mode[, sha256]) of every file under the protected roots."""
    state: dict[str, tuple] = {}
    for root in protected_roots():
        for entry in walk(root, skip=_SKIPPED):
            if entry.kind == "dir":
                continue
            path = root / entry.relative
            if path.is_relative_to(_TEST_OUTPUT):
                continue
            try:
                info = path.lstat()
            except OSError:
                continue
            record: tuple = (info.st_size, info.st_mtime_ns, info.st_mode)
            if entry.kind == "file" and path.suffix in _HASHED:
                record += (_sha256(path),)
            state[str(path)] = record
    return state


def differences(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Each file added, removed or changed between two snapshots, one line each."""
    lines = [f"added {path}" for path in sorted(after.keys() - before.keys())]
    lines += [f"removed {path}" for path in sorted(before.keys() - after.keys())]
    lines += [f"changed {path}" for path in sorted(before.keys() & after.keys()) if before[path] != after[path]]
    return lines


def files_named(name: str, max_depth: int) -> list[Path]:
    """Every file called ``name`` down to ``max_depth`` folders below ``/`` (kernel file systems
    left out): wherever a build script walking the machine as deep could have left it."""
    found = []
    pending = [(Path("/"), 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < max_depth and entry.path not in ("/proc", "/sys", "/dev"):
                            pending.append((Path(entry.path), depth + 1))
                    elif entry.name == name:
                        found.append(Path(entry.path))
        except OSError:
            continue
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW | os.O_NONBLOCK)) as content:
            while chunk := content.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    return digest.hexdigest()
