"""What an API wrote in its writable folders, told by the grader's own Python in the stand-ins
image (the compose backend's ``scanner`` container mounts those folders read-only).

``python -m grader.stack.compose.written SINCE MARKERS_JSON BASE...`` walks each base and
prints one JSON object: ``{"found": [path, ...], "complete": bool}``, the files changed since
SINCE that hold one of the markers, as ``<base name>/<relative path>`` (the compose backend's
``files_written_since``). The student's code never takes part, so its answer cannot be forged.
It is bounded however hostile the folders are: walked without recursion and without following
links, fifos and devices never opened, each file read up to a size, the whole scan up to a
number of entries, bytes read and seconds (``complete`` is false when a bound cut it short).

``python -m grader.stack.compose.written --full BASE...`` prints the names of the bases whose
file system is full (the disk limit hit), as a JSON list.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

from grader.checkout import walk

FILE_BYTES = 10_000_000
TOTAL_BYTES = 100_000_000
MAX_ENTRIES = 100_000
MAX_FOUND = 50
TIME_LIMIT_S = 20.0
# A tmpfs with less room than this left is full: the API's writes meet ENOSPC there.
FULL_BELOW = 1 << 20
_CHUNK = 1 << 20
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def scan(bases: list[Path], since: float, markers: list[bytes], deadline: float) -> tuple[list[str], bool]:
    """The files under ``bases`` changed at or after ``since`` that hold any of ``markers``
    (as ``<base name>/<relative path>``), and whether the scan went through every file."""
    found: list[str] = []
    budget = TOTAL_BYTES
    entries = 0
    for base in bases:
        for entry in walk(base, skip=frozenset({"__pycache__"})):
            entries += 1
            if entries > MAX_ENTRIES or budget <= 0 or time.monotonic() > deadline or len(found) >= MAX_FOUND:
                return found, False
            if entry.kind != "file" or entry.mtime < since:
                continue
            held, read = _holds(base / entry.relative, markers, min(FILE_BYTES, budget), deadline)
            budget -= read
            if held:
                found.append(f"{base.name}/{entry.relative}")
    return found, True


def _holds(path: Path, markers: list[bytes], limit: int, deadline: float) -> tuple[bool, int]:
    """Whether the regular file ``path`` holds a marker in its first ``limit`` bytes, and how
    many bytes were read; a link, a fifo or a file that vanished holds nothing."""
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError:
        return False, 0
    overlap = max(map(len, markers), default=1) - 1
    read, carried = 0, b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False, 0
        while read < limit and time.monotonic() < deadline:
            chunk = os.read(fd, min(_CHUNK, limit - read))
            if not chunk:
                break
            read += len(chunk)
            window = carried + chunk
            if any(marker in window for marker in markers):
                return True, read
            carried = window[-overlap:] if overlap else b""
        return False, read
    except OSError:
        return False, read
    finally:
        os.close(fd)


def full(bases: list[Path]) -> list[str]:
    """The names of the bases whose file system has less than ``FULL_BELOW`` bytes left."""
    found = []
    for base in bases:
        try:
            status = os.statvfs(base)
        except OSError:
            continue
        if status.f_bavail * status.f_frsize < FULL_BELOW:
            found.append(base.name)
    return found


def main(argv: list[str] | None = None) -> None:
    arguments = argv if argv is not None else sys.argv[1:]
    if arguments[:1] == ["--full"]:
        print(json.dumps(full([Path(base) for base in arguments[1:]])))
        return
    since, markers, *bases = arguments
    deadline = time.monotonic() + TIME_LIMIT_S
    # A last resort past the deadline (a read the kernel holds up): the grader sees no answer.
    signal.alarm(int(TIME_LIMIT_S) + 10)
    found, complete = scan([Path(base) for base in bases], float(since),
                           [str(marker).encode() for marker in json.loads(markers) if marker], deadline)
    print(json.dumps({"found": found, "complete": complete}))


if __name__ == "__main__":
    main()
