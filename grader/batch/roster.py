"""The roster of a batch: one submission per row, validated before anything runs.

A roster is a CSV file with the columns ``student_id`` and ``repo_url`` and, optionally,
``ref`` (branch, tag or commit), ``deadline`` (ISO 8601 with a time zone) and ``exercises``
(the ones to grade for that student, space-separated, e.g. ``ex3 ex4`` for a regrade
request; empty: the batch's ``--only``, else all) per row. Every
problem is one ``UsageError`` line naming the file, the row (its line number) and the column.

``--shard i/N`` keeps the rows whose stable hash of ``student_id`` falls in slice ``i`` of
``N``: a student's shard never depends on the other rows, so editing the roster moves no one.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from grader.checks import EXERCISES
from grader.errors import UsageError

REQUIRED = ("student_id", "repo_url")
OPTIONAL = ("ref", "deadline", "exercises")
_EXPECTED = "expected student_id,repo_url[,ref][,deadline][,exercises]"
# A student id names a file (OUT/submissions/<id>.json): no separators, no leading dot.
_STUDENT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,63}$")


@dataclass(frozen=True)
class RosterEntry:
    """One row of the roster: who, where, and which commit to grade."""

    student_id: str
    repo_url: str
    ref: str | None = None
    deadline: datetime | None = None
    exercises: tuple[str, ...] | None = None  # sorted; None: the batch's selection
    line: int = 0  # line number in the roster file, for messages


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise UsageError(f"--shard {text!r}: expected i/N, e.g. 1/3")
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= index <= count:
            raise UsageError(f"--shard {text!r}: i must be between 1 and N (N >= 1)")
        return cls(index, count)

    def holds(self, student_id: str) -> bool:
        return shard_of(student_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(student_id: str, count: int) -> int:
    """The 1-based shard of ``student_id`` among ``count``: a stable hash, not the row order."""
    digest = hashlib.sha256(student_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def load_roster(path: Path) -> list[RosterEntry]:
    """Read and validate the whole roster; raises UsageError on the first problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: roster not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read roster: {exc}") from None
    return parse_roster(text, str(path))


def parse_roster(text: str, name: str = "roster") -> list[RosterEntry]:
    reader = csv.DictReader(text.splitlines(), strict=True)
    try:
        header = [column.strip() for column in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise UsageError(f"{name}, line 1: {exc}") from None
    if not header:
        raise UsageError(f"{name}: empty roster ({_EXPECTED})")
    reader.fieldnames = header
    for column in REQUIRED:
        if column not in header:
            raise UsageError(f"{name}, line 1: missing column {column!r} ({_EXPECTED})")
    for column in header:
        if column not in REQUIRED + OPTIONAL:
            raise UsageError(f"{name}, line 1: unknown column {column!r} "
                             f"(known: {', '.join(REQUIRED + OPTIONAL)})")
    if len(set(header)) != len(header):
        raise UsageError(f"{name}, line 1: a column appears twice")
    entries: list[RosterEntry] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise UsageError(f"{name}, line {line}: more cells than columns")
            if all(not (value or "").strip() for value in row.values()):
                continue  # a blank line
            entry = _entry(row, line, name)
            key = entry.student_id.lower()  # ids name files: Alice and alice collide on some disks
            if key in seen:
                raise UsageError(f"{name}, line {line}, column student_id: {entry.student_id!r} "
                                 f"already appears on line {seen[key]}")
            seen[key] = line
            entries.append(entry)
    except csv.Error as exc:
        raise UsageError(f"{name}, line {reader.line_num}: {exc}") from None
    if not entries:
        raise UsageError(f"{name}: no submission rows")
    return entries


def _entry(row: dict[str, str | None], line: int, name: str) -> RosterEntry:
    def cell(column: str) -> str:
        return (row.get(column) or "").strip()

    def bad(column: str, why: str) -> UsageError:
        return UsageError(f"{name}, line {line}, column {column}: {why}")

    student_id = cell("student_id")
    if not student_id:
        raise bad("student_id", "empty")
    if not _STUDENT_ID.match(student_id):
        raise bad("student_id", f"{student_id!r} is not a usable id (letters, digits, . _ @ + -; "
                                "no leading dot or dash; at most 64 characters)")
    repo_url = cell("repo_url")
    if not repo_url:
        raise bad("repo_url", "empty")
    if repo_url.startswith("-") or any(ch.isspace() for ch in repo_url):
        raise bad("repo_url", f"{repo_url!r} is not a repository URL or path")
    ref = cell("ref") or None
    if ref is not None and (ref.startswith("-") or any(ch.isspace() for ch in ref)):
        raise bad("ref", f"{ref!r} is not a branch, tag or commit")
    deadline = None
    if cell("deadline"):
        try:
            deadline = datetime.fromisoformat(cell("deadline"))
        except ValueError:
            raise bad("deadline", f"{cell('deadline')!r} is not an ISO 8601 date-time "
                                  "(e.g. 2026-06-01T23:59+02:00)") from None
        if deadline.tzinfo is None:
            raise bad("deadline", f"{cell('deadline')!r} has no time zone; add one (e.g. +00:00)")
    exercises = tuple(sorted(set(cell("exercises").split()))) or None
    unknown = [exercise for exercise in exercises or () if exercise not in EXERCISES]
    if unknown:
        raise bad("exercises", f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(EXERCISES)}")
    return RosterEntry(student_id, repo_url, ref, deadline, exercises, line)
