"""The Docker images of the compose backend, built on this machine without any registry.

- ``python:3.11-slim``: Debian bookworm's Python 3.11 installed by debootstrap, made to behave
  like the official image for a student's Dockerfile (``python`` and ``pip`` on PATH, ``pip
  install`` allowed system-wide, the host's CA bundle so pip trusts what the host trusts).
- ``llmops-grader/standins:<recipe>`` (and ``:latest``): the grader's stand-in services and
  fault proxies, with the grader package itself.
- ``llmops-grader/mlflow:<version>`` (and ``:latest``): the real MLflow tracking server.

Every image is labelled with a hash of its recipe: an image whose label matches is reused,
any other is rebuilt. Third-party versions are the ones installed in the grader's own
environment, so uv.lock stays their one source of truth. ``python -m
grader.stack.compose.images`` builds them ahead of a grading and prints their tags.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import grader
from grader.cache import default_cache_root
from grader.errors import MachineError
from grader.stack.compose.engine import connect_engine, one_line

RECIPE_LABEL = "org.llmops-grader.recipe"
PYTHON_BASE = "python:3.11-slim"
STANDINS_REPOSITORY = "llmops-grader/standins"
MLFLOW_REPOSITORY = "llmops-grader/mlflow"
# The bare debootstrap tree PYTHON_BASE is built FROM; re-imported whenever PYTHON_BASE is rebuilt.
# A stock Debian 12 with its own Python (pip refuses system installs): what a newcomer has.
DEBIAN_ROOTFS = "llmops-grader/rootfs:bookworm"

_DEBIAN_SUITE = "bookworm"
_DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Besides Python, what the official slim image has: CA certificates, /etc/services, time zones.
_DEBIAN_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "netbase", "tzdata")
# Removed before import, as Debian's slim images do: apt's downloads and indexes, manuals, translations.
_ROOTFS_CLEANUP = ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*",
                   "usr/share/man/*", "usr/share/locale/*")
_HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# The engine's own lines in a build's output, and the colour pip's stderr gets there.
_BUILDER_LINE = re.compile(r"(Step \d+/\d+ :| ---> |Removing intermediate container |Successfully (built|tagged) )")
_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

_BASE_DOCKERFILE = f"""\
FROM {DEBIAN_ROOTFS}
RUN rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \\
 && ln -s /usr/bin/python3 /usr/local/bin/python \\
 && ln -s /usr/bin/pip3 /usr/local/bin/pip
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["python3"]
"""

# The distributions the stand-ins' modules import themselves; what they require comes along.
_STANDINS_DISTRIBUTIONS = ("fastapi", "uvicorn", "h11", "httpx", "pydantic", "pydantic-core", "qdrant-client")
_STANDINS_MODULES = ("grader.stack.services.__main__", "grader.stack.fault_server")


@dataclass(frozen=True)
class OfflineImages:
    """The tags to run: each image exists in the local engine and matches its recipe."""

    python_base: str
    standins: str
    mlflow: str


@dataclass(frozen=True)
class _Recipe:
    name: str
    tags: tuple[str, ...]  # the first is the one handed out, the others follow it
    dockerfile: str
    digest: str
    # Fills the build context (the Dockerfile is written after it), logging to the build log.
    prepare: Callable[[docker.DockerClient, Path, IO[str]], None] = lambda client, context, log: None


def ensure_images(client: docker.DockerClient | None = None, *,
                  on_progress: Callable[[str], object] = print) -> OfflineImages:
    """Build whichever image is missing or stale, then return the tags. Raises ``MachineError``
    (one line, naming the build log) when the engine or debootstrap is missing or a build fails."""
    if client is None:
        with contextlib.closing(connect_engine()) as own:
            return ensure_images(own, on_progress=on_progress)
    workdir = default_cache_root() / "images"
    with _locked(workdir):
        base = _base_recipe()
        if (provided := _provided_base(client)) is not None:
            # An official image pulled by someone with a registry: use it, never overwrite it.
            on_progress(f"{PYTHON_BASE}: found in the engine (not built here), used as it is")
            base = dataclasses.replace(base, digest=provided)
        else:
            _ensure(client, base, workdir, on_progress)
        dependents = (_standins_recipe(base.digest), _mlflow_recipe(base.digest))
        for recipe in dependents:
            _ensure(client, recipe, workdir, on_progress)
    return OfflineImages(base.tags[0], *(recipe.tags[0] for recipe in dependents))


def _provided_base(client: docker.DockerClient) -> str | None:
    """The id of a ``python:3.11-slim`` that this module did not build (no recipe label), or None."""
    try:
        image = client.images.get(PYTHON_BASE)
    except ImageNotFound:
        return None
    return None if RECIPE_LABEL in image.labels else str(image.id)


def missing_requirements() -> str | None:
    """Why ``ensure_images`` cannot work here (no engine answering, no debootstrap, not root), or None."""
    try:
        with contextlib.closing(connect_engine()) as client:
            if _is_current(client, _base_recipe()) or _provided_base(client) is not None:
                return None
    except MachineError as exc:
        return str(exc)
    return _debootstrap_missing()


def _debootstrap_missing() -> str | None:
    if shutil.which("debootstrap") is None:
        return f"debootstrap is not installed (apt-get install debootstrap): it builds the {PYTHON_BASE} image"
    if os.geteuid() != 0:
        return f"building the {PYTHON_BASE} image needs root (debootstrap)"
    return None


@contextlib.contextmanager
def _locked(workdir: Path) -> Iterator[None]:
    """Hold the cache's image-building lock: concurrent gradings build each image once."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _ensure(client: docker.DockerClient, recipe: _Recipe, workdir: Path,
            on_progress: Callable[[str], object]) -> None:
    tag, log_path = recipe.tags[0], workdir / f"{recipe.name}.log"
    try:
        if _is_current(client, recipe):
            on_progress(f"{tag}: up to date")
        else:
            on_progress(f"{tag}: building (log: {log_path})")
            started = time.monotonic()
            _build(client, recipe, workdir, log_path)
            on_progress(f"{tag}: built in {time.monotonic() - started:.0f} s")
        for extra in recipe.tags[1:]:
            repository, _, name = extra.rpartition(":")
            client.images.get(tag).tag(repository, name)
    except (MachineError, DockerException, requests.RequestException, OSError) as exc:
        raise MachineError(f"building {tag} failed: {one_line(exc)} (log: {log_path})") from exc


def _is_current(client: docker.DockerClient, recipe: _Recipe) -> bool:
    try:
        image = client.images.get(recipe.tags[0])
    except ImageNotFound:
        return False
    return image.labels.get(RECIPE_LABEL) == recipe.digest


def _build(client: docker.DockerClient, recipe: _Recipe, workdir: Path, log_path: Path) -> None:
    with open(log_path, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory(dir=workdir) as context:
        recipe.prepare(client, Path(context), log)
        Path(context, "Dockerfile").write_text(recipe.dockerfile, encoding="utf-8")
        last_line = ""
        # Host network: the engine's bridge may not reach PyPI where the host does.
        for chunk in client.api.build(path=context, tag=recipe.tags[0], labels={RECIPE_LABEL: recipe.digest},
                                      network_mode="host", rm=True, forcerm=True, decode=True):
            text = _ANSI_COLOUR.sub("", chunk.get("stream", ""))
            log.write(text)
            output = [line.strip() for line in text.splitlines() if line.strip() and not _BUILDER_LINE.match(line)]
            last_line = output[-1] if output else last_line
            if "error" in chunk:
                log.write(f"{chunk['error']}\n")
                raise MachineError(_build_failure(chunk, last_line))


def _build_failure(chunk: dict[str, Any], last_line: str) -> str:
    """What went wrong in one line: the failed RUN step's last words, else the engine's error."""
    code = chunk.get("errorDetail", {}).get("code")
    if code is None:
        return one_line(chunk["error"])
    return f"{last_line} (RUN exited with {code})" if last_line else f"a RUN step exited with {code}"


def _base_recipe() -> _Recipe:
    ca_bundle = _HOST_CA_BUNDLE.read_bytes() if _HOST_CA_BUNDLE.is_file() else b""
    digest = _digest(_DEBIAN_SUITE, _DEBIAN_MIRROR, *_DEBIAN_PACKAGES, *_ROOTFS_CLEANUP, _BASE_DOCKERFILE, ca_bundle)
    return _Recipe("python-base", (PYTHON_BASE,), _BASE_DOCKERFILE, digest, _import_rootfs)


def _import_rootfs(client: docker.DockerClient, context: Path, log: IO[str]) -> None:
    """debootstrap Debian, trim it, give it the host's CA bundle and import it as ``DEBIAN_ROOTFS``."""
    missing = _debootstrap_missing()
    if missing:
        raise MachineError(missing)
    # Beside the context, never in it (the context is sent to the engine), on the cache's disk
    # rather than a /tmp that may be mounted nodev.
    scratch = Path(tempfile.mkdtemp(prefix="rootfs-", dir=context.parent))
    root, tarball = scratch / "root", scratch / "rootfs.tar"
    try:
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(_DEBIAN_PACKAGES)}",
              _DEBIAN_SUITE, str(root), _DEBIAN_MIRROR], log)
        for pattern in _ROOTFS_CLEANUP:
            for path in root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        if _HOST_CA_BUNDLE.is_file():
            shutil.copyfile(_HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        # GNU tar keeps owners, modes, hard links and capabilities exactly; /dev is the engine's.
        _run(["tar", "--numeric-owner", "--xattrs", "--exclude=./dev/*", "-C", str(root), "-cf", str(tarball), "."], log)
        repository, _, tag = DEBIAN_ROOTFS.rpartition(":")
        log.write(f"{client.api.import_image(src=str(tarball), repository=repository, tag=tag)}\n")
    finally:
        # rm, not shutil.rmtree: --one-file-system never follows a /proc or /dev that
        # an interrupted debootstrap may have left mounted in the tree.
        subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)


def _standins_recipe(base_digest: str) -> _Recipe:
    package = Path(grader.__file__).resolve().parent
    files = _package_files(package)
    dockerfile = (
        f"FROM {PYTHON_BASE}\n"
        f"RUN pip install --no-cache-dir {_pins(_STANDINS_DISTRIBUTIONS)}\n"
        "COPY grader /opt/grader/grader\n"
        "ENV PYTHONPATH=/opt/grader PYTHONUNBUFFERED=1\n"
        # A module importing something not installed fails the build, not a grading.
        f"RUN python -c 'import {', '.join(_STANDINS_MODULES)}'\n"
    )
    contents = (part for path in files for part in (path.relative_to(package).as_posix(), path.read_bytes()))
    digest = _digest(base_digest, dockerfile, *contents)
    tags = (f"{STANDINS_REPOSITORY}:{digest[:12]}", f"{STANDINS_REPOSITORY}:latest")
    return _Recipe("standins", tags, dockerfile, digest, functools.partial(_copy_package, package, files))


def _package_files(package: Path) -> list[Path]:
    """The grader package's files as shipped: no bytecode."""
    return sorted(
        path for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.relative_to(package).parts and path.suffix != ".pyc"
    )


def _copy_package(package: Path, files: list[Path], client: docker.DockerClient, context: Path, log: IO[str]) -> None:
    for path in files:
        target = context / "grader" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _mlflow_recipe(base_digest: str) -> _Recipe:
    version = _installed("mlflow")
    dockerfile = (
        f"FROM {PYTHON_BASE}\n"
        f"RUN pip install --no-cache-dir {_pins(['mlflow'])}\n"
        # Reached by its service name, not as localhost; no telemetry and no job runner, as
        # grader.stack.mlflow_server runs it.
        "ENV MLFLOW_SERVER_ALLOWED_HOSTS=* MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true"
        " MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false\n"
        "RUN mkdir /mlflow\n"
        "EXPOSE 5000\n"
        # Artifacts go through the server (mlflow-artifacts:/) so clients in other containers can log them.
        'CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--workers", "1",'
        ' "--backend-store-uri", "sqlite:////mlflow/mlflow.db", "--artifacts-destination", "/mlflow/artifacts"]\n'
    )
    digest = _digest(base_digest, dockerfile)
    return _Recipe("mlflow", (f"{MLFLOW_REPOSITORY}:{version}", f"{MLFLOW_REPOSITORY}:latest"), dockerfile, digest)


def _pins(roots: Iterable[str]) -> str:
    """``roots`` and all they require, pinned to the versions installed here, as pip arguments.
    Markers are evaluated for this interpreter; pip adds anything else the image's Python needs."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(root, frozenset[str]()) for root in roots]
    while pending:
        name, extras = pending.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        pins[canonicalize_name(name)] = _installed(name)
        for line in importlib.metadata.requires(name) or ():
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or {""}):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return " \\\n    ".join(f"{name}=={version}" for name, version in sorted(pins.items()))


def _installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise MachineError(f"{name} is not installed in the grader's environment (run uv sync)") from exc


def _run(command: list[str], log: IO[str]) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    log.write(done.stdout)
    if done.returncode != 0:
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        raise MachineError(f"{command[0]} exited with {done.returncode}: {lines[-1] if lines else 'no output'}")


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "big") + data)
    return sha.hexdigest()


def ensure_debian_rootfs(client: docker.DockerClient, *, on_progress: Callable[[str], object] = print) -> str:
    """``DEBIAN_ROOTFS``, debootstrapped and imported when the engine lacks it; returns its tag.
    A stock Debian 12 with its own Python, for tests that need what a newcomer's machine has."""
    workdir = default_cache_root() / "images"
    with _locked(workdir):
        try:
            client.images.get(DEBIAN_ROOTFS)
            return DEBIAN_ROOTFS
        except ImageNotFound:
            pass
        log_path = workdir / "rootfs.log"
        on_progress(f"{DEBIAN_ROOTFS}: building (log: {log_path})")
        try:
            with open(log_path, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory(dir=workdir) as context:
                _import_rootfs(client, Path(context), log)
        except (MachineError, DockerException, requests.RequestException, OSError) as exc:
            raise MachineError(f"building {DEBIAN_ROOTFS} failed: {one_line(exc)} (log: {log_path})") from exc
    return DEBIAN_ROOTFS


def ensure_image(client: docker.DockerClient, tag: str, base: str, steps: str, files: dict[str, bytes], *,
                 on_progress: Callable[[str], object] = print) -> str:
    """Build ``FROM base`` then the Dockerfile ``steps``, with ``files`` (name -> content) as the
    context, cached by the hash of all three as the grader's own images are (RUN steps on the
    host network); returns ``tag``. For images derived from these, such as a test's stock
    Debian (``base`` from ``ensure_debian_rootfs``)."""
    try:
        base_id = str(client.images.get(base).id)
    except DockerException as exc:
        raise MachineError(f"base image {base} is not in the engine: {one_line(exc)}") from exc
    dockerfile = f"FROM {base}\n{steps}"
    digest = _digest(base_id, dockerfile, *(part for name in sorted(files) for part in (name, files[name])))
    recipe = _Recipe(tag.replace("/", "-").replace(":", "-"), (tag,), dockerfile, digest,
                     functools.partial(_write_context, files))
    workdir = default_cache_root() / "images"
    with _locked(workdir):
        _ensure(client, recipe, workdir, on_progress)
    return tag


def _write_context(files: dict[str, bytes], client: docker.DockerClient, context: Path, log: IO[str]) -> None:
    for name, data in files.items():
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def main() -> None:
    """Build what is missing and print the three tags on stdout (progress goes to stderr); one
    line on stderr and exit 3 on failure."""
    try:
        images = ensure_images(on_progress=lambda message: print(message, file=sys.stderr))
    except MachineError as exc:
        print(f"could not build the images: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    print("\n".join(dataclasses.astuple(images)))


if __name__ == "__main__":
    main()
