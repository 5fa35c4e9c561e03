"""Where the API may write in its container: sized tmpfs volumes, seen by the grader too.

The API's root file system is read-only. As on the local backend, it writes where it runs
(fallback traces), in its HOME and in /tmp: three tmpfs volumes of the stack's project, each
sized by the disk limit, and charged to the API's memory as it fills them. The engine copies
an image's files only into plain volumes, never into tmpfs ones, so the working directory's
volume is filled by the grader with a copy of the image's own working directory, taken once
per grading (``copy_workdir``) and put into each stack's volume (``fill``).

The grader's ``scanner`` container mounts the same volumes under ``/scan``, so that
``written.py`` (the grader's code, never the student's) can tell which files the API wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker.errors
import requests

from grader.errors import StackError
from grader.sandbox.limits import Limits, human_bytes
from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.engine import docker_client, one_line

API_HOME = "/home/api"
_SCAN_ROOT = PurePosixPath("/scan")
_WORKDIR = "workdir"
# The volumes, by the folder under /scan where the scanner mounts each (``written`` names the
# files it finds by it), and where the API mounts them (its working directory: the image's).
_API_PATHS = {_WORKDIR: None, "tmp": "/tmp", "home": API_HOME}


@dataclass(frozen=True)
class WorkdirCopy:
    """The image's working directory (None: the image has none but ``/``, which stays read-only)
    and its files as a tar."""

    path: str | None
    archive: Path | None = None


def copy_workdir(image: str, destination: Path, max_bytes: int) -> WorkdirCopy:
    """The working directory of ``image``, its files written to ``destination`` as a tar;
    SubmissionUnrunnable when they come to more than ``max_bytes``."""
    client = docker_client()
    path = client.images.get(image).attrs["Config"].get("WorkingDir") or "/"
    if PurePosixPath(path) == PurePosixPath("/"):
        return WorkdirCopy(None)
    # A container created, never started: the engine reads the image's files through it.
    container = client.containers.create(image, network_disabled=True)
    try:
        stream, _ = container.get_archive(f"{path.rstrip('/')}/.")
        size = 0
        with open(destination, "wb") as archive:
            for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    raise SubmissionUnrunnable(f"its image's working directory ({path}) holds over "
                                               f"{human_bytes(max_bytes)}, the disk limit")
                archive.write(chunk)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise StackError(f"could not copy the working directory {path} of {image}: {one_line(exc)}") from exc
    finally:
        container.remove(force=True)
    return WorkdirCopy(path, destination)


def fill(scanner, copy: WorkdirCopy) -> None:
    """Put the working directory's files into the stack's volume, through the ``scanner``."""
    if copy.archive is None:
        return
    with open(copy.archive, "rb") as archive:
        if not scanner.put_archive(str(_SCAN_ROOT / _WORKDIR), archive):
            raise StackError(f"could not fill the API's working directory in {scanner.name}")


def volumes(limits: Limits) -> dict[str, dict]:
    """The compose file's ``volumes:``: each a tmpfs of the disk limit, writable by any user."""
    options = {"type": "tmpfs", "device": "tmpfs", "o": f"size={limits.disk_bytes},mode=1777"}
    return {_volume(folder): {"driver_opts": options} for folder in _API_PATHS}


def api_mounts(copy: WorkdirCopy) -> list[str]:
    """The API service's ``volumes:`` (no working directory when the image has none)."""
    paths = {**_API_PATHS, _WORKDIR: copy.path}
    return [f"{_volume(folder)}:{path}" for folder, path in paths.items() if path]


def scanner_mounts() -> list[str]:
    """The scanner service's ``volumes:``: read-only, but the working directory it fills."""
    return [f"{_volume(folder)}:{_SCAN_ROOT / folder}" + ("" if folder == _WORKDIR else ":ro") for folder in _API_PATHS]


def scanned_folders() -> list[str]:
    return [str(_SCAN_ROOT / folder) for folder in _API_PATHS]


def as_the_api_sees_it(found: str, copy: WorkdirCopy) -> str:
    """A path printed by ``written`` (``workdir/x``, ``tmp/x``, ``home/x``) as the API names it."""
    folder, _, rest = found.partition("/")
    where = {**_API_PATHS, _WORKDIR: copy.path}.get(folder) or "/"
    return str(PurePosixPath(where) / rest)


def _volume(folder: str) -> str:
    return f"api-{folder}"

