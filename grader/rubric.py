"""The rubric: YAML -> frozen, validated models, before anything runs.

``load_rubric(path)`` returns a ``Rubric`` or raises ``RubricError`` with one line naming the
file, the line and the field. Points, bands and check bindings live here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from grader.checks import CHECKS, EXERCISES, SETTINGS
from grader.errors import RubricError
from grader.sandbox.limits import Limits
from grader.scenarios.declared import DeclaredCheck, exercise_of

# Strict scalars: a quoted "15" or a `true` where points belong is a typo to report, not coerce.
Points = Annotated[float, Field(gt=0, strict=True)]
Percent = Annotated[float, Field(ge=0, le=100, strict=True)]
Setting = Annotated[float, Field(ge=0, strict=True)]
# Checked against the exercise's own Settings model (its scenario's), names and kinds alike.
ScenarioSetting = StrictInt | Annotated[float, Field(strict=True)]
Name = Annotated[StrictStr, Field(min_length=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Credit(enum.StrEnum):
    """How a criterion turns its checks into points."""

    ALL = "all"  # every check must pass for the points, else 0
    PROPORTIONAL = "proportional"  # points x passed / graded checks


class Criterion(_Frozen):
    id: Name
    title: Name
    points: Points
    visibility: Literal["public", "hidden"]
    hint: Name  # shown to the student when the criterion loses points
    checks: tuple[Name, ...] = Field(min_length=1)
    credit: Credit


class Exercise(_Frozen):
    title: Name
    points: Points
    files: tuple[Name, ...] = ()  # repo-relative files the diff stage compares
    # Overrides of the numbers the exercise's scenario reads (its ``Settings`` in grader/scenarios/).
    settings: dict[Name, ScenarioSetting] = {}
    criteria: tuple[Criterion, ...] = Field(min_length=1)


class Band(_Frozen):
    name: Name
    min: Percent  # lowest percentage of the graded points that earns this band


class MinComplete(_Frozen):
    """At least ``count`` of ``of`` must be complete (every point earned).

    When it does not hold, the pass is refused and the band is capped at the lowest band.
    """

    count: StrictInt = Field(ge=1)
    of: tuple[Name, ...] = Field(min_length=1)


class Rubric(_Frozen):
    name: Name
    version: Name
    starter: Name | None = None  # where the handout's starter lives, for the diff stage
    # The handout repository students forked (URL, or path relative to this file): the baseline
    # of near-copies between students in a batch (grade batch --handout overrides it).
    handout: Name | None = None
    pass_mark: Percent
    bands: tuple[Band, ...] = Field(min_length=1)  # highest first; the last one starts at 0
    min_complete: MinComplete | None = None
    # Overrides of grader/sandbox/limits.py's defaults, by field name (memory_bytes, install_s...).
    limits: dict[Name, Setting] = {}
    # Checks stated as data (docs/checks.md), by id ``exN.what_it_proves``; criteria bind them
    # like the coded ones of grader/checks.py.
    checks: dict[Name, DeclaredCheck] = {}
    exercises: dict[Name, Exercise]

    @property
    def max_points(self) -> float:
        return round(sum(ex.points for ex in self.exercises.values()), 2)

    def band_for(self, percent: float) -> str:
        return next(band.name for band in self.bands if percent >= band.min)


def load_rubric(path: Path) -> Rubric:
    """Read and validate a rubric file; every problem is a one-line ``RubricError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"{path}: cannot read rubric: {exc.strerror or exc}") from None
    root, data = _parse(path, text)
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise _located(path, root, first["loc"], message, exc.error_count()) from None
    problems = list(_semantic_problems(rubric))
    if problems:
        loc, message = problems[0]
        raise _located(path, root, loc, message, len(problems))
    return rubric


Loc = tuple[str | int, ...]


def _parse(path: Path, text: str) -> tuple[yaml.Node, object]:
    """The node tree (for line numbers) and the plain data built from it."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise RubricError(f"{path}, line 1: the rubric file is empty")
        _reject_duplicate_keys(path, root)
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise RubricError(f"{path}, line {line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _reject_duplicate_keys(path: Path, node: yaml.Node) -> None:
    # PyYAML silently keeps the last of two equal keys: a criterion pasted twice would vanish.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                raise RubricError(f"{path}, line {key.start_mark.line + 1}, {key.value}: duplicate key")
            seen.add(key.value)
            _reject_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(path, item)


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """1-based line of the deepest node ``loc`` reaches (a key's own line for mappings)."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _field(loc: Loc) -> str:
    dotted = ""
    for part in loc:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    return dotted or "(top level)"


def _located(path: Path, root: yaml.Node, loc: Loc, message: str, count: int) -> RubricError:
    more = f" (+{count - 1} more)" if count > 1 else ""
    return RubricError(f"{path}, line {_line_of(root, loc)}, {_field(loc)}: {message}{more}")


def _semantic_problems(rubric: Rubric) -> Iterator[tuple[Loc, str]]:
    """Rules across fields that the model shapes cannot express, with where each one broke."""
    known_limits = {field.name for field in dataclasses.fields(Limits)}
    for name in rubric.limits:
        if name not in known_limits:
            yield ("limits", name), f"unknown limit; known: {', '.join(sorted(known_limits))}"
    if tuple(rubric.exercises) != EXERCISES:
        yield ("exercises",), f"exercises must be exactly {', '.join(EXERCISES)} in that order"
    catalogue = dict(CHECKS)
    for check_id, declared in rubric.checks.items():
        exercise = exercise_of(check_id)
        if exercise is None:
            yield ("checks", check_id), "a check id is exN.what_it_proves (lower case, digits, underscores)"
        elif exercise not in EXERCISES:
            yield ("checks", check_id), f"unknown exercise '{exercise}'; known: {', '.join(EXERCISES)}"
        elif check_id in CHECKS:
            yield ("checks", check_id), f"'{check_id}' is a coded check already (grader/checks.py)"
        else:
            catalogue[check_id] = declared.spec(check_id)
    bound: dict[str, Loc] = {}
    criterion_ids: set[str] = set()
    for ex_id, exercise in rubric.exercises.items():
        ex_loc: Loc = ("exercises", ex_id)
        if ex_id in SETTINGS:
            yield from _settings_problems(ex_loc + ("settings",), SETTINGS[ex_id], exercise.settings)
        total = sum(criterion.points for criterion in exercise.criteria)
        if not math.isclose(total, exercise.points, abs_tol=1e-9):
            yield ex_loc + ("points",), f"criteria sum to {total:g}, not {exercise.points:g}"
        for index, criterion in enumerate(exercise.criteria):
            c_loc = ex_loc + ("criteria", index)
            if criterion.id in criterion_ids:
                yield c_loc + ("id",), f"criterion id '{criterion.id}' is used twice"
            criterion_ids.add(criterion.id)
            for position, check_id in enumerate(criterion.checks):
                k_loc = c_loc + ("checks", position)
                spec = catalogue.get(check_id)
                if spec is None:
                    yield k_loc, f"unknown check id '{check_id}' (not in grader/checks.py nor the rubric's checks)"
                elif spec.exercise != ex_id:
                    yield k_loc, f"check '{check_id}' belongs to {spec.exercise}, not {ex_id}"
                elif check_id in bound:
                    yield k_loc, f"check '{check_id}' is already bound at {_field(bound[check_id])}"
                else:
                    bound[check_id] = k_loc
    for check_id, spec in CHECKS.items():
        if check_id not in bound and spec.exercise in rubric.exercises:
            yield ("exercises", spec.exercise), f"catalogue check '{check_id}' is bound to no criterion"
    for check_id in rubric.checks:
        if check_id in catalogue and check_id not in CHECKS and check_id not in bound:
            yield ("checks", check_id), f"declared check '{check_id}' is bound to no criterion"
    yield from _band_problems(rubric)
    if rubric.min_complete is not None:
        rule = rubric.min_complete
        for position, ex_id in enumerate(rule.of):
            if ex_id not in rubric.exercises:
                yield ("min_complete", "of", position), f"unknown exercise '{ex_id}'"
        if rule.count > len(set(rule.of)):
            yield ("min_complete", "count"), f"{rule.count} exceeds the {len(set(rule.of))} exercises listed"


def _settings_problems(loc: Loc, model: type[BaseModel], settings: dict[str, float]) -> Iterator[tuple[Loc, str]]:
    """A setting the scenario does not read, or a value it cannot take, with where it is."""
    try:
        model.model_validate(settings)
    except ValidationError as exc:
        for error in exc.errors():
            name = error["loc"][0] if error["loc"] else ""
            if error["type"] == "extra_forbidden":
                known = ", ".join(model.model_fields)
                yield loc + (name,), f"unknown setting; {loc[1]} reads: {known}"
            else:
                yield loc + (name,), error["msg"]


def _band_problems(rubric: Rubric) -> Iterator[tuple[Loc, str]]:
    names: set[str] = set()
    for index, band in enumerate(rubric.bands):
        if band.name in names:
            yield ("bands", index, "name"), f"band '{band.name}' is listed twice"
        names.add(band.name)
        if index and band.min >= rubric.bands[index - 1].min:
            yield ("bands", index, "min"), "bands must be listed highest first with strictly decreasing min"
    if rubric.bands[-1].min != 0:
        yield ("bands", len(rubric.bands) - 1, "min"), "the last band must start at 0 so every score has a band"
    if not any(math.isclose(band.min, rubric.pass_mark) for band in rubric.bands):
        yield ("pass_mark",), f"pass mark {rubric.pass_mark:g} is not the min of any band"
