"""Compare a submission with the reference solution and the starter (instructors only).

For each file an exercise adds or changes: its state relative to the starter, its size and
its similarity to the reference's version; plus an overall similarity over ``src/api``.
Files are read as bytes and decoded leniently; symlinks are never followed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from grader.checkout import UnsafePath, read_text, walk
from grader.errors import UsageError
from grader.models import DiffReport, ExerciseDiff, FileChange

API_DIR = "src/api"
# Beyond this a file is not source code but a blob; comparing it line by line is quadratic.
MAX_COMPARED_BYTES = 1_000_000
# Nor is a file this large read at all.
MAX_READ_BYTES = 10_000_000


def diff_submission(
    submission_dir: Path,
    reference_dir: Path,
    starter_dir: Path | None,
    exercise_files: Mapping[str, Sequence[str]],
    near_copy_threshold: float = 0.95,
) -> DiffReport:
    """Describe each expected file of each exercise and the overall likeness to the reference.

    State relative to the starter: ``missing`` (absent from the submission), ``added`` (the
    starter lacks it), ``unchanged`` (same lines), ``changed``. Without a starter every present
    file is ``added``. A near copy is a file at least ``near_copy_threshold`` similar to the
    reference that differs from the starter: a file nobody touched is no copy.
    """
    exercises = tuple(
        ExerciseDiff(
            exercise_id=exercise_id,
            files=tuple(
                _file_change(path, submission_dir, reference_dir, starter_dir, near_copy_threshold)
                for path in paths
            ),
        )
        for exercise_id, paths in exercise_files.items()
    )
    overall, api_copies = _api_similarity(
        submission_dir, reference_dir, starter_dir, near_copy_threshold
    )
    flagged = {f.path for e in exercises for f in e.files if f.near_copy} | set(api_copies)
    return DiffReport(
        exercises=exercises,
        overall_similarity=overall,
        near_copy_files=tuple(sorted(flagged)),
    )


def _file_change(
    path: str, submission: Path, reference: Path, starter: Path | None, threshold: float
) -> FileChange:
    mine = _read_lines(submission, path)
    if mine is None:
        return FileChange(path=path, exists=False, state="missing", lines=0,
                          similarity_to_reference=None, near_copy=False)
    original = None if starter is None else _read_lines(starter, path)
    state = "added" if original is None else "unchanged" if mine == original else "changed"
    similarity = _similarity(mine, _read_lines(reference, path))
    return FileChange(
        path=path,
        exists=True,
        state=state,
        lines=len(mine),
        similarity_to_reference=similarity,
        near_copy=similarity is not None and similarity >= threshold and state != "unchanged",
    )


def _api_similarity(
    submission: Path, reference: Path, starter: Path | None, threshold: float
) -> tuple[float, list[str]]:
    """Size-weighted similarity over the .py files of src/api present on both sides, and
    those of them that are near copies (differing from the starter)."""
    matched = total = 0
    copies = []
    for path in _python_files(submission):
        rel = f"{API_DIR}/{path}"
        mine, theirs = _read_lines(submission, rel), _read_lines(reference, rel)
        if mine is None or theirs is None or not _comparable(mine, theirs):
            continue
        matcher = _matcher(mine, theirs)
        matched += sum(block.size for block in matcher.get_matching_blocks())
        total += len(matcher.a) + len(matcher.b)
        untouched = starter is not None and mine == _read_lines(starter, rel)
        if matcher.ratio() >= threshold and not untouched:
            copies.append(rel)
    return (2 * matched / total if total else 0.0), copies


def _python_files(checkout: Path) -> list[str]:
    """Paths (relative to ``src/api``) of the regular .py files under it, reached without
    following a link, however deep; hidden folders and ``__pycache__`` left out."""
    found = []
    for entry in walk(checkout, API_DIR):
        parts = entry.relative.split("/")
        if entry.kind == "file" and entry.relative.endswith(".py") and \
                not any(part == "__pycache__" or part.startswith(".") for part in parts[:-1]):
            found.append(entry.relative)
    return sorted(found)


def _similarity(mine: list[str], theirs: list[str] | None) -> float | None:
    if theirs is None or not _comparable(mine, theirs):
        return None
    return round(_matcher(mine, theirs).ratio(), 4)


def _matcher(mine: list[str], theirs: list[str]) -> difflib.SequenceMatcher[str]:
    """Line matcher ignoring indentation and blank lines, so a re-spaced copy stays a copy.

    autojunk off: it would drop frequent lines such as ``)`` and skew the ratio of long files.
    """
    return difflib.SequenceMatcher(None, _significant(mine), _significant(theirs), autojunk=False)


def _significant(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip()]


def _comparable(mine: list[str], theirs: list[str]) -> bool:
    return sum(map(len, mine)) + sum(map(len, theirs)) <= 2 * MAX_COMPARED_BYTES


def _read_lines(root: Path, rel: str) -> list[str] | None:
    """Lines of the regular file ``root/rel``; None when it is absent, a directory, over
    ``MAX_READ_BYTES``, or reached through a symlink anywhere below ``root`` (never followed).
    Undecodable bytes are replaced.
    """
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise UsageError(f"expected file {rel!r} must be a relative path inside the repository")
    try:
        return read_text(root, rel, max_bytes=MAX_READ_BYTES).splitlines()
    except UnsafePath:
        return None
