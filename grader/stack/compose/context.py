"""A submission's build context, packed on the grader's side as the engine receives it.

docker-py would pack it too, but it walks with recursion (a tree a thousand folders deep
crashes it) and sets no bound. Here the context is walked without recursion and without
following links (they are sent as links: the engine keeps them inside the context), its
``.dockerignore`` is honoured with docker-py's own pattern matcher, ``.git`` folders are
never sent (the grader's clone keeps its remote there), and a context over the size bound is
the student's failure.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from pathlib import Path
from typing import IO

from docker.utils.build import PatternMatcher

from grader.checkout import UnsafePath, read_text, walk
from grader.sandbox.limits import human_bytes
from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.buildspec import BuildSpec

# Where the Dockerfile goes in the archive when it lies outside the context (as the docker CLI does).
OUTSIDE_DOCKERFILE = ".grader-dockerfile"
MAX_ENTRIES = 100_000
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def pack_context(checkout: Path, spec: BuildSpec, archive: IO[bytes], max_bytes: int) -> str:
    """Write the context of ``spec`` as a tar to ``archive``; the Dockerfile's path inside it.
    SubmissionUnrunnable when the context holds over ``max_bytes`` or ``MAX_ENTRIES``."""
    root = checkout / spec.context if spec.context else checkout
    prefix = f"{spec.context}/" if spec.context else ""
    inside = spec.dockerfile.startswith(prefix)
    dockerfile = spec.dockerfile.removeprefix(prefix) if inside else OUTSIDE_DOCKERFILE
    matcher = PatternMatcher([*_ignore_patterns(checkout, spec.context), f"!{dockerfile}"])
    total = entries = 0
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for entry in walk(root, skip=frozenset({".git"})):
            if entry.relative == ".git" or entry.relative.endswith("/.git") or matcher.matches(entry.relative):
                continue
            entries += 1
            total += entry.size if entry.kind == "file" else 0
            if total > max_bytes or entries > MAX_ENTRIES:
                raise SubmissionUnrunnable(
                    f"its build context ({spec.context or 'the repository root'}) holds over "
                    f"{human_bytes(max_bytes)} or {MAX_ENTRIES} entries: not sent to the engine")
            _add(tar, root, entry.relative, entry.kind)
        if not inside:
            data = spec.dockerfile_text.encode("utf-8")
            info = tarfile.TarInfo(OUTSIDE_DOCKERFILE)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dockerfile


def _ignore_patterns(checkout: Path, context: str) -> list[str]:
    """The patterns of the context's ``.dockerignore``, as the docker CLI reads them."""
    relative = posixpath.join(context, ".dockerignore") if context else ".dockerignore"
    if not os.path.lexists(checkout / relative):
        return []
    try:
        text = read_text(checkout, relative)
    except UnsafePath as exc:
        raise SubmissionUnrunnable(f"its .dockerignore cannot be used: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _add(tar: tarfile.TarFile, root: Path, relative: str, kind: str) -> None:
    """One entry, never following a link; an entry that changed kind since the walk is left out."""
    path = root / relative
    info = tarfile.TarInfo(relative)
    if kind in ("link", "dir"):
        try:
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            else:
                info.type, info.mode = tarfile.DIRTYPE, stat.S_IMODE(os.lstat(path).st_mode)
        except OSError:
            return
        tar.addfile(info)
    elif kind == "file":
        try:
            fd = os.open(path, _FILE_FLAGS)
        except OSError:
            return
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                return
            info.size, info.mode, info.mtime = status.st_size, stat.S_IMODE(status.st_mode), int(status.st_mtime)
            tar.addfile(info, handle)

