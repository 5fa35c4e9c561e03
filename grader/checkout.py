"""Reading a submission's checkout on the grader's side, where every path may be hostile.

Every file the grader opens in a checkout is opened here: one component at a time from the
checkout's own directory (``openat``), never following a link, so a path that would leave the
checkout fails before anything of its target is read. Trees are walked with an explicit stack
(a tree thousands of folders deep must not exhaust Python's recursion), and every error of the
file system ends as ``UnsafePath`` with one line naming the student's path, or is skipped.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# What a grader-side reader takes of one file by default: source files and requirements are
# kilobytes; anything beyond is not read whole.
DEFAULT_MAX_BYTES = 1_000_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a fifo in the checkout must not block the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(Exception):
    """A path of the checkout the grader will not read; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class Entry:
    """One entry met by ``walk``: its path relative to the walked root and what it is."""

    relative: str  # posix, relative to the walked root
    kind: str  # "file", "dir", "link" or "other" (fifo, socket, device)
    size: int
    mtime: float


def read_bytes(root: Path, relative: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The content of the regular file ``root/relative``; ``UnsafePath`` when a component is a
    link, is missing, is not a regular file, or when the file is over ``max_bytes``."""
    parts = _parts(relative)
    with _Opened(root, parts[:-1], relative) as parent:
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=parent.fd)
        except OSError as exc:
            raise UnsafePath(_why(relative, relative, exc, parent.fd)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{relative} is not a regular file")
        if info.st_size > max_bytes:
            raise UnsafePath(f"{relative} is over {max_bytes} bytes ({info.st_size}): not read")
        chunks, size = [], 0
        while size <= max_bytes and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:  # grew while it was read
            raise UnsafePath(f"{relative} is over {max_bytes} bytes: not read")
        return b"".join(chunks)
    except OSError as exc:
        raise UnsafePath(f"{relative} cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(root: Path, relative: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """``read_bytes`` decoded as UTF-8, undecodable bytes replaced."""
    return read_bytes(root, relative, max_bytes).decode("utf-8", errors="replace")


def directory_problem(root: Path, relative: str) -> str | None:
    """Why ``root/relative`` is not a directory reached without links, or None when it is."""
    try:
        with _Opened(root, _parts(relative), relative):
            return None
    except UnsafePath as exc:
        return str(exc)


def walk(root: Path, relative: str = "", *, skip: frozenset[str] = frozenset()) -> Iterator[Entry]:
    """Every entry under ``root/relative`` (a folder before what it holds), walked with an
    explicit stack; links are reported as links and never entered, folders named in ``skip``
    are reported but not entered, and entries that vanish or cannot be read meanwhile are
    left out."""
    if relative and directory_problem(root, relative) is not None:
        return
    start = root / relative if relative else root
    pending = [start]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError:
            continue
        below = []
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            kind = _kind(info.st_mode)
            yield Entry(Path(entry.path).relative_to(start).as_posix(), kind, info.st_size, info.st_mtime)
            if kind == "dir" and entry.name not in skip:
                below.append(Path(entry.path))
        pending.extend(reversed(below))


def copy_tree(source: Path, destination: Path, *, skip: frozenset[str] = frozenset()) -> None:
    """Copy ``source`` to ``destination`` (created): files with their mode, links as links,
    fifos, sockets and devices left out, folders named in ``skip`` not copied."""
    destination.mkdir(parents=True, exist_ok=True)
    for entry in walk(source, skip=skip):
        target, origin = destination / entry.relative, source / entry.relative
        if entry.kind == "dir" and origin.name not in skip:
            target.mkdir()
        elif entry.kind == "link":
            target.symlink_to(os.readlink(origin))
        elif entry.kind == "file":
            _copy_file(origin, target)


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything under it, however deep; never raises (what cannot be
    removed stays). Links are removed, never followed."""
    if path.is_symlink() or path.is_file():
        _unlink(path)
        return
    folders = []
    for entry in walk(path):
        if entry.kind == "dir":
            folders.append(path / entry.relative)
        else:
            _unlink(path / entry.relative)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True) + [path]:
        try:
            folder.rmdir()
        except OSError:
            pass


def _copy_file(origin: Path, target: Path) -> None:
    try:
        fd = os.open(origin, _FILE_FLAGS)
    except OSError:
        return  # vanished or turned into a link since the walk
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        with open(target, "wb") as out, os.fdopen(os.dup(fd), "rb") as source:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        os.chmod(target, mode)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def _parts(relative: str) -> tuple[str, ...]:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafePath(f"{relative} is not a path inside the checkout")
    return path.parts


class _Opened:
    """The directory ``root/parts`` opened component by component without following a link."""

    def __init__(self, root: Path, parts: tuple[str, ...], shown: str) -> None:
        self.root, self.parts, self.shown = root, parts, shown
        self.fd = -1

    def __enter__(self) -> "_Opened":
        try:
            self.fd = os.open(self.root, _DIR_FLAGS)
        except OSError as exc:
            raise UnsafePath(f"the checkout cannot be opened ({exc.strerror or exc})") from None
        for index, part in enumerate(self.parts):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=self.fd)
            except OSError as exc:
                reason = _why(self.shown, "/".join(self.parts[: index + 1]), exc, self.fd)
                os.close(self.fd)
                raise UnsafePath(reason) from None
            os.close(self.fd)
            self.fd = child
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)


def _why(shown: str, component: str, exc: OSError, parent_fd: int) -> str:
    """One line for a failed open of ``component`` (a path under the checkout) on the way to
    ``shown``: a link is named as such, whatever errno the kernel chose for it."""
    try:
        is_link = stat.S_ISLNK(os.lstat(component.rsplit("/", 1)[-1], dir_fd=parent_fd).st_mode)
    except OSError:
        is_link = False
    if is_link:
        return f"{shown}: {component} is a symlink (not followed)" if component != shown \
            else f"{shown} is a symlink (not followed)"
    if exc.errno == errno.ENOENT:
        return f"{shown} is missing"
    if exc.errno == errno.ENOTDIR:
        return f"{shown}: {component} is not a folder"
    return f"{shown} cannot be read ({exc.strerror or exc})"
