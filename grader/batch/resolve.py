"""Name the commit a roster row points at without cloning: ``git ls-remote``.

The skip rule of a re-run: a submission is graded again unless its record says it was
graded (status graded or incomplete) with the same rubric name and version, the same grader
identity (version, code hash and rubric hash: ``grader.identity``), exercises (``--only``),
backend, ref and deadline, *and* ``git ls-remote`` names the same tip now as when it was
graded. ``--force`` regrades every row; ``--student ID`` grades only those rows, regrading them.
With a deadline the graded commit is the last one before it on that tip's history, so the
same tip and deadline give the same commit. When the tip cannot be named cheaply (an
abbreviated SHA, a remote without HEAD, ls-remote failing) the row is re-graded: when
unsure, grade.
"""

from __future__ import annotations

import re
import subprocess

from grader.hygiene import safe_git_env

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
LS_REMOTE_TIMEOUT_S = 60.0


def resolve_tip(source: str, ref: str | None, timeout_s: float = LS_REMOTE_TIMEOUT_S) -> str | None:
    """The SHA ``ref`` (default: the remote HEAD) names at ``source`` now, or None when unsure."""
    if ref is not None and _FULL_SHA.match(ref):
        return ref
    patterns = ["HEAD"] if ref is None else [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"]
    try:
        done = subprocess.run(["git", "ls-remote", "--", source, *patterns], capture_output=True, text=True,
                              timeout=timeout_s, env=safe_git_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        found[name.strip()] = sha.strip()
    if ref is None:
        return found.get("HEAD")
    # fetch.py prefers a branch over a tag; a tag is graded at the commit it peels to.
    return (found.get(f"refs/heads/{ref}") or found.get(f"refs/tags/{ref}^{{}}")
            or found.get(f"refs/tags/{ref}"))
