"""What a submission's Dockerfile names, read before anything of it is built.

The engine that builds the student's image also holds the grader's images (the stand-ins
carry the grader's code) and the other submissions' images. A ``FROM`` or ``COPY --from``
naming one of them, by name or by a prefix of its ID (the classic builder resolves both),
would hand it to the student's build; an ``ADD`` of a URL is fetched by the engine itself,
from the machine's own network. All of these are refused before the build, with one line.
The file is parsed with dockerfile-parse (which also substitutes ``ARG`` values in ``FROM``).
"""

from __future__ import annotations

import io
import json
import re
from typing import Iterator, Mapping

from dockerfile_parse import DockerfileParser

# The repository namespace of every image the grader makes (images.py, the submissions' own).
GRADER_NAMESPACE = "llmops-grader/"
_IMAGE_ID = re.compile(r"^(sha256:)?[0-9a-f]+$")
_REGISTRY_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
_COPYING = ("COPY", "ADD")


def reference_problem(text: str, build_args: Mapping[str, str]) -> str | None:
    """Why the Dockerfile ``text`` may not be built here (one line), or None."""
    parser = _parser(text, build_args)
    stages: list[str] = []  # lower-cased stage names, "" for an unnamed stage
    parents = iter(parser.parent_images)
    for instruction, value in _instructions(parser):
        if instruction == "FROM":
            image = next(parents)
            if image.lower() not in stages and (problem := _image_problem("FROM", image)):
                return problem
            words = value.split()
            stages.append(words[-1].lower() if len(words) >= 3 and words[-2].lower() == "as" else "")
        elif instruction in _COPYING:
            flags, sources = copy_arguments(value)
            origin = flags.get("from")
            if origin is not None and not _names_a_stage(origin, stages) and (
                    problem := _image_problem(f"{instruction} --from", origin)):
                return problem
            if instruction == "ADD" and (url := next((s for s in sources if "://" in s or s.startswith("git@")), None)):
                return (f"its Dockerfile ADDs {url}: the engine would fetch it from the grader's machine, outside "
                        "the build's network (fetch it in a RUN step instead)")
    return None


def context_sources(text: str, build_args: Mapping[str, str]) -> list[str]:
    """The paths of the build context that the Dockerfile's COPY and ADD steps read."""
    found = []
    for instruction, value in _instructions(_parser(text, build_args)):
        if instruction in _COPYING:
            flags, sources = copy_arguments(value)
            if "from" not in flags:
                found += [source for source in sources if "://" not in source]
    return found


def copy_arguments(value: str) -> tuple[dict[str, str], list[str]]:
    """A COPY or ADD step's ``--flag=value`` options and its sources (the destination left out),
    from either its shell form or its JSON form."""
    flags: dict[str, str] = {}
    rest = value.strip()
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, setting = flag[2:].partition("=")
        flags[name.lower()] = setting
        rest = rest.strip()
    words: list[str] = []
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
            words = [str(word) for word in parsed] if isinstance(parsed, list) else []
        except json.JSONDecodeError:
            words = rest.split()
    else:
        words = rest.split()
    return flags, words[:-1]


def _parser(text: str, build_args: Mapping[str, str]) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), build_args=dict(build_args))


def _instructions(parser: DockerfileParser) -> Iterator[tuple[str, str]]:
    """``(INSTRUCTION, value)`` in order; an ``ONBUILD`` step counts as the step it wraps
    (its triggers run in any stage built FROM this one)."""
    for item in parser.structure:
        instruction, value = item["instruction"].upper(), item["value"]
        if instruction == "ONBUILD":
            inner, _, value = value.strip().partition(" ")
            instruction = inner.upper()
        yield instruction, value


def _names_a_stage(origin: str, stages: list[str]) -> bool:
    if origin.isdigit():
        return int(origin) < len(stages)
    return origin.lower() in stages


def _image_problem(where: str, reference: str) -> str | None:
    """Why the image ``reference`` (after ARG substitution) may not be used, or None."""
    if "$" in reference:
        return f"its Dockerfile names an image through a variable the grader cannot resolve ({where} {reference})"
    name = reference.lower()
    if _IMAGE_ID.match(name):
        return f"its Dockerfile names an image by ID ({where} {reference}): name a public image instead"
    for prefix in _REGISTRY_PREFIXES:
        name = name.removeprefix(prefix)
    if name.removeprefix("library/").startswith(GRADER_NAMESPACE):
        return f"its Dockerfile names one of the grader's own images ({where} {reference})"
    return None
