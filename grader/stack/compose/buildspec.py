"""Where a submission builds its API image from: what its own compose file says.

The handout builds ``api`` with the repository root as context and ``src/api/Dockerfile``
(CONTRACT.md); a student may move to ``src/api`` as the context. The student's compose file
(``services.api.build``, a path or a mapping with ``context``, ``dockerfile``, ``target`` and
``args``) says which. Without one, the root with ``src/api/Dockerfile`` is used when the files
that Dockerfile copies are found there, else ``src/api``. Every path resolves inside the
checkout without following a link; one that does not is the student's failure, in one line.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from grader.checkout import UnsafePath, directory_problem, read_text
from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.dockerfile import context_sources

# Looked for in this order, as Compose v2 does.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
DEFAULT_DOCKERFILE = "src/api/Dockerfile"
_FALLBACK_CONTEXTS = ("", "src/api")
# ${NAME:-default} / ${NAME-default} / ${NAME} / $NAME, and $$ for a dollar: what Compose expands.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>\w+)(?::?-(?P<default>[^}]*))?\}|\$(?P<bare>\w+)")


@dataclass(frozen=True)
class BuildSpec:
    """One image build: paths are relative to the checkout, in posix form ("" is its root)."""

    context: str
    dockerfile: str
    origin: str  # where the spec came from, for the report
    target: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    dockerfile_text: str = ""

    def describe(self) -> str:
        return f"context {self.context or '.'}, Dockerfile {self.dockerfile} ({self.origin})"


def build_spec(checkout: Path) -> BuildSpec:
    """The submission's build, its Dockerfile read; SubmissionUnrunnable with one line when it
    cannot be built here."""
    spec = _declared(checkout) or _fallback(checkout)
    problem = directory_problem(checkout, spec.context) if spec.context else None
    if problem:
        raise SubmissionUnrunnable(f"its build context cannot be used: {problem}")
    try:
        return dataclasses.replace(spec, dockerfile_text=read_text(checkout, spec.dockerfile))
    except UnsafePath as exc:
        raise SubmissionUnrunnable(f"its Dockerfile cannot be used: {exc}") from None


def _declared(checkout: Path) -> BuildSpec | None:
    """The build of ``services.api`` in the student's compose file, or None when it has none."""
    present = _names_in(checkout, "")
    name = next((candidate for candidate in COMPOSE_FILE_NAMES if candidate in present), None)
    if name is None:
        return None
    try:
        document = yaml.safe_load(read_text(checkout, name))
    except UnsafePath as exc:
        raise SubmissionUnrunnable(f"its compose file cannot be used: {exc}") from None
    except (yaml.YAMLError, RecursionError, ValueError):
        return None  # a compose file that does not parse says nothing about the build
    services = document.get("services") if isinstance(document, dict) else None
    api = services.get("api") if isinstance(services, dict) else None
    build = api.get("build") if isinstance(api, dict) else None
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        return None
    origin = f"services.api.build of its {name}"
    context = _inside(_expand(str(build.get("context", "."))), "", f"the build context of {origin}")
    dockerfile = _inside(_expand(str(build.get("dockerfile", "Dockerfile"))), context, f"the Dockerfile of {origin}")
    target = build.get("target")
    return BuildSpec(context, dockerfile, origin, str(target) if target is not None else None, _build_args(build))


def _fallback(checkout: Path) -> BuildSpec:
    """Root context with src/api/Dockerfile when what it copies is found there, else src/api."""
    try:
        text = read_text(checkout, DEFAULT_DOCKERFILE)
    except UnsafePath as exc:
        raise SubmissionUnrunnable(f"no compose file builds api, and {exc}") from None
    sources = [source for source in context_sources(text, {}) if "$" not in source]
    for context in _FALLBACK_CONTEXTS:
        if all(_found(checkout, context, source) for source in sources):
            return BuildSpec(context, DEFAULT_DOCKERFILE, f"no compose file builds api: {context or 'the root'} "
                                                          "holds what its Dockerfile copies")
    return BuildSpec("", DEFAULT_DOCKERFILE, "no compose file builds api: the handout's layout")


def _found(checkout: Path, context: str, source: str) -> bool:
    """Whether ``source`` of a COPY names something in ``context`` (a pattern: anything matching)."""
    path = posixpath.normpath(posixpath.join(context, source.lstrip("/")))
    if path in (".", context):
        return True
    if path.startswith("../"):
        return False
    folder, name = posixpath.split(path)
    names = _names_in(checkout, folder)
    if any(mark in name for mark in "*?["):
        return bool(fnmatch.filter(names, name))
    return name in names


def _names_in(checkout: Path, folder: str) -> list[str]:
    """What the folder ``checkout/folder`` holds, or nothing when it is not reached without a link."""
    if folder and directory_problem(checkout, folder):
        return []
    try:
        return os.listdir(checkout / folder)
    except OSError:
        return []


def _inside(path: str, base: str, what: str) -> str:
    """``path`` (relative to ``base``, or absolute within the checkout) as a checkout path;
    SubmissionUnrunnable when it leaves the checkout."""
    if "://" in path or path.startswith("git@"):
        raise SubmissionUnrunnable(f"{what} is a URL ({path}): the grader builds only from the repository")
    joined = posixpath.normpath(posixpath.join(base, path))
    if path.startswith("/") or joined == ".." or joined.startswith("../"):
        raise SubmissionUnrunnable(f"{what} ({path}) leaves the repository")
    return "" if joined == "." else joined


def _expand(value: str) -> str:
    """Compose's variable syntax with nothing set: defaults taken, other variables empty."""
    return _VARIABLE.sub(lambda match: "$" if match[0] == "$$" else (match["default"] or ""), value)


def _build_args(build: dict) -> dict[str, str]:
    args = build.get("args")
    if isinstance(args, list):
        pairs = (str(item).partition("=") for item in args)
        return {key: _expand(value) for key, _, value in pairs if key}
    if isinstance(args, dict):
        return {str(key): _expand(str(value)) for key, value in args.items() if value is not None}
    return {}
