"""A compact fingerprint of a submission's code, to find students who copied each other.

Computed by the worker while the checkout exists, stored in the submission's record, compared
later without any checkout:

- every ``src/api/**/*.py`` file, in path order; each line normalised (comments and
  surrounding whitespace removed, inner whitespace collapsed; blank lines dropped);
- shingles of ``SHINGLE`` consecutive normalised lines within a file, each hashed (SHA-256,
  first 16 hex digits); the fingerprint is the set of these hashes.

``near_copies`` compares fingerprints pairwise by Jaccard similarity (>= 0.9 flags a pair).
Code every student received would make every pair look alike, so the handout's shingles are
removed first. When the handout's own fingerprint is given (``grade batch --handout``), exactly
those are; otherwise the baseline is guessed: a shingle present in at least 3 submissions and
in more than half of them is taken for handout code. The guess goes blind when most of a
class built on one shared solution (their common code is then "handout" too). Pairs with
fewer than ``MIN_SHINGLES`` own shingles on either side are not compared (two untouched
starters are not a copy).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from grader.checkout import UnsafePath, read_text, walk

SHINGLE = 4
MIN_SHINGLES = 10
NEAR_COPY_JACCARD = 0.9
_COMMENT = re.compile(r"\s+#.*$|^#.*$")
_MAX_FILE_BYTES = 1_000_000


def normalise(line: str) -> str:
    return " ".join(_COMMENT.sub("", line).split())


def fingerprint(checkout: Path, subdir: str = "src/api") -> tuple[str, ...]:
    """The sorted hashed shingles of the ``.py`` files under ``checkout/subdir``."""
    hashes: set[str] = set()
    # Links are never followed (they may point outside the repository), however deep the tree.
    for entry in sorted(walk(checkout, subdir), key=lambda entry: entry.relative):
        if entry.kind != "file" or not entry.relative.endswith(".py"):
            continue
        try:
            text = read_text(checkout, f"{subdir}/{entry.relative}", max_bytes=_MAX_FILE_BYTES)
        except UnsafePath:
            continue
        lines = [n for n in map(normalise, text.splitlines()) if n]
        for start in range(max(1, len(lines) - SHINGLE + 1)):
            window = "\n".join(lines[start:start + SHINGLE])
            if window:
                hashes.add(hashlib.sha256(window.encode("utf-8")).hexdigest()[:16])
    return tuple(sorted(hashes))


@dataclass(frozen=True)
class NearCopy:
    first: str
    second: str
    similarity: float


def near_copies(fingerprints: dict[str, tuple[str, ...]], threshold: float = NEAR_COPY_JACCARD,
                handout: tuple[str, ...] | None = None) -> list[NearCopy]:
    """Pairs of students whose own code (handout code removed) has Jaccard >= ``threshold``;
    ``handout`` is the handout's fingerprint, None to guess it."""
    sets = {student: set(shingles) for student, shingles in fingerprints.items() if shingles}
    if handout is not None:
        common = set(handout)
    else:
        counts = Counter(shingle for shingles in sets.values() for shingle in shingles)
        common = {s for s, n in counts.items() if n >= 3 and n > len(sets) / 2}
    own = {student: shingles - common for student, shingles in sets.items()}
    pairs = []
    for first, second in combinations(sorted(own), 2):
        a, b = own[first], own[second]
        if len(a) < MIN_SHINGLES or len(b) < MIN_SHINGLES:
            continue
        similarity = len(a & b) / len(a | b)
        if similarity >= threshold:
            pairs.append(NearCopy(first, second, round(similarity, 3)))
    return pairs
