"""Fetch a submission: clone it safely and check out exactly the commit that is graded.

``fetch`` clones a URL or path and resolves ``ref``/``deadline`` to one commit;
``snapshot_worktree`` copies a student's working tree as it is (self-check mode).
Every failure is a ``FetchError`` with one line; no GitPython exception escapes.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from git import Git, GitCommandError, InvalidGitRepositoryError, NoSuchPathError, Repo

from grader.checkout import copy_tree, remove_tree
from grader.errors import FetchError, UsageError
from grader.hygiene import (
    clone_config_options,
    format_size,
    safe_git_env,
    symlinks_escaping,
    tree_size,
)
from grader.models import Submission, UnmergedBranch

__all__ = ["fetch", "snapshot_worktree", "symlinks_escaping"]

DEFAULT_MAX_BYTES = 200_000_000
DEFAULT_CLONE_TIMEOUT_S = 300.0

_SCP_LIKE = re.compile(r"^[^/]+:")  # user@host:path, how git spells ssh without a scheme


def fetch(
    source: str,
    dest: Path,
    *,
    ref: str | None = None,
    deadline: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = DEFAULT_CLONE_TIMEOUT_S,
) -> Submission:
    """Clone ``source`` into ``dest`` (absent or empty) and check out the graded commit.

    The graded commit is ``ref`` (branch, tag or SHA; default branch when None), or its last
    commit at or before ``deadline`` by committer date. Raises FetchError (one line).
    """
    if deadline is not None and deadline.utcoffset() is None:
        raise UsageError("the deadline needs a timezone (e.g. 2026-01-31T23:59:00+01:00)")
    if ref is not None and (not ref or ref.startswith("-")):
        raise UsageError(f"invalid ref: {ref!r}")
    created = _prepare_dest(dest)
    shown = _redact(source)
    try:
        repo = _clone(_clone_url(source), dest, shown, timeout_s)
        ref_name, tip = _resolve(repo, ref, shown)
        graded, note = _apply_deadline(repo, ref_name, tip, deadline, shown)
        _check_size(repo, graded, max_bytes)
        repo.git.checkout("--detach", "--force", graded)
        commit = repo.commit(graded)
        return Submission(
            source=shown,
            commit_sha=commit.hexsha,
            ref=ref_name,
            author_date=commit.authored_datetime,
            commit_count=int(repo.git.rev_list("--count", graded)),
            deadline=deadline,
            deadline_note=note,
            unmerged_branches=_unmerged(repo, graded, ref_name),
        )
    except GitCommandError as err:
        _discard(dest, created)
        raise FetchError(f"git failed on {shown}: {_reason(err.stderr)}") from None
    except BaseException:
        _discard(dest, created)
        raise


def snapshot_worktree(path: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Submission:
    """Copy the working tree at ``path`` into ``dest`` as it is: uncommitted work included,
    ``.git`` left out, symlinks copied as links. Records HEAD (if any) and whether it is dirty.
    """
    if not path.is_dir():
        raise FetchError(f"no working tree at {path}")
    if dest.resolve().is_relative_to(path.resolve()):
        raise UsageError(f"the snapshot {dest} cannot go inside the tree it copies ({path})")
    size = tree_size(path)
    if size > max_bytes:
        raise FetchError(
            f"working tree {path} is {format_size(size)}, over the {format_size(max_bytes)} cap"
        )
    created = _prepare_dest(dest)
    try:
        copy_tree(path, dest, skip=frozenset({".git"}))  # fifos and devices are left out
    except OSError as err:
        _discard(dest, created)
        raise FetchError(f"cannot copy the working tree {path}: {err}") from None
    try:
        repo = Repo(path)
    except (InvalidGitRepositoryError, NoSuchPathError):
        # Nothing is committed: the whole tree is uncommitted work.
        return Submission(source=str(path), commit_sha=None, ref=None, author_date=None,
                          commit_count=0, dirty=True)
    repo.git.update_environment(**safe_git_env())
    try:
        dirty = repo.is_dirty(untracked_files=True)
        if not repo.head.is_valid():  # a fresh `git init` without commits
            return Submission(source=str(path), commit_sha=None, ref=None, author_date=None,
                              commit_count=0, dirty=True)
        head = repo.head.commit
        branch = None if repo.head.is_detached else repo.active_branch.name
        return Submission(
            source=str(path),
            commit_sha=head.hexsha,
            ref=branch,
            author_date=head.authored_datetime,
            commit_count=int(repo.git.rev_list("--count", head.hexsha)),
            dirty=dirty,
        )
    except GitCommandError as err:
        raise FetchError(f"cannot read git state of {path}: {_reason(err.stderr)}") from None


# --- cloning -------------------------------------------------------------------------------


def _clone_url(source: str) -> str:
    """What git is given: URLs and scp-like ssh as they are, local paths made absolute."""
    if source.startswith("-"):
        raise FetchError(f"repository not found: {source!r} is not a URL or path")
    if "://" in source or (_SCP_LIKE.match(source) and not os.path.exists(source)):
        return source
    local = Path(source).expanduser().resolve()
    if not local.exists():
        raise FetchError(f"repository not found: {source} does not exist")
    return str(local)


def _clone(url: str, dest: Path, shown: str, timeout_s: float) -> Repo:
    """Full clone without checkout: the commit count and unmerged branches need every branch.

    --no-local: a local path goes through the git protocol too, never hardlinking or copying
    the student's object directory as it is.
    """
    command = [
        "git", "clone", "--no-checkout", "--no-local", "--no-recurse-submodules",
        *clone_config_options(), "--", url, str(dest),
    ]
    try:
        Git().execute(command, env=safe_git_env(), kill_after_timeout=timeout_s)
    except GitCommandError as err:
        raise FetchError(_explain_clone_error(err.stderr, shown, timeout_s)) from None
    repo = Repo(dest)
    repo.git.update_environment(**safe_git_env())
    if not repo.git.for_each_ref("refs/remotes", "refs/tags"):
        raise FetchError(f"repository {shown} is empty (no commits)")
    return repo


def _explain_clone_error(stderr: str, shown: str, timeout_s: float) -> str:
    text = stderr.lower()
    if "timeout: the command" in text:
        return f"cloning {shown} took longer than {timeout_s:g} s (clone time limit)"
    if any(s in text for s in (
        "could not read username", "could not read password", "authentication failed",
        "terminal prompts disabled", "permission denied (publickey", "http basic: access denied",
    )):
        return f"repository {shown} is private or needs credentials the grader lacks"
    if "returned error: 403" in text:
        return f"repository {shown} refuses access (HTTP 403): private or needs credentials"
    if any(s in text for s in (
        "not found", "returned error: 404", "does not appear to be a git repository",
        "does not exist", "not a git repository",
    )):
        return f"repository not found: {shown}"
    if any(s in text for s in (
        "could not resolve host", "failed to connect", "connection refused",
        "connection timed out", "network is unreachable", "unable to access",
    )):
        return f"cannot reach {shown}: {_reason(stderr)}"
    return f"cannot clone {shown}: {_reason(stderr)}"


# --- resolving the graded commit -----------------------------------------------------------


def _resolve(repo: Repo, ref: str | None, shown: str) -> tuple[str, str]:
    """(name of the graded ref, SHA of its tip). Branches win over tags over SHAs."""
    if ref is None:
        name = _default_branch(repo, shown)
        sha = _rev(repo, f"refs/remotes/origin/{name}")
        if not sha:
            raise FetchError(f"the default branch {name!r} of {shown} has no commit")
        return name, sha
    for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}"):
        sha = _rev(repo, candidate)
        if sha:
            return ref, sha
    if re.fullmatch(r"[0-9a-fA-F]{4,40}", ref):
        sha = _rev(repo, ref) or _fetch_commit(repo, ref)
        if sha:
            return ref, sha
    raise FetchError(f"no branch, tag or commit named {ref!r} in {shown}")


def _default_branch(repo: Repo, shown: str) -> str:
    """The remote's HEAD branch; main or master when the remote HEAD points nowhere."""
    head = repo.git.symbolic_ref("-q", "refs/remotes/origin/HEAD", with_exceptions=False)
    if head:
        return head.removeprefix("refs/remotes/origin/")
    branches = _remote_branches(repo)
    for name in ("main", "master"):
        if name in branches:
            return name
    if len(branches) == 1:
        return branches[0]
    raise FetchError(f"{shown} has no default branch; pass a ref (branches: {', '.join(branches)})")


def _rev(repo: Repo, name: str) -> str:
    """SHA of the commit ``name`` names, or "" when it names none."""
    return repo.git.rev_parse("--verify", "--quiet", f"{name}^{{commit}}", with_exceptions=False)


def _fetch_commit(repo: Repo, sha: str) -> str:
    """A SHA reachable from no branch or tag: servers that allow it serve it on request."""
    if len(sha) != 40:
        return ""
    try:
        repo.git.fetch("--no-recurse-submodules", "origin", sha, kill_after_timeout=60)
    except GitCommandError:
        return ""
    return _rev(repo, sha)


def _apply_deadline(
    repo: Repo, ref_name: str, tip: str, deadline: datetime | None, shown: str
) -> tuple[str, str | None]:
    """The graded commit and the note saying why: the ref as it stood at the deadline.

    Walks the first-parent chain from the tip, as ``git rev-list -1 --first-parent --before``
    does: a branch merged after the deadline must not bring in its own earlier-dated commits.
    Committer dates are what the student's machine recorded; they cannot prove a push time.
    """
    if deadline is None:
        return tip, None
    limit = deadline.timestamp()
    chain = repo.git.log("--first-parent", "--format=%H %ct", tip).splitlines()
    graded = next((sha for sha, ts in map(str.split, chain) if int(ts) <= limit), None)
    if graded is None:
        raise FetchError(
            f"{ref_name} of {shown} has no commit at or before the deadline {deadline.isoformat()}"
        )
    ignored = int(repo.git.rev_list("--count", f"{graded}..{tip}"))
    picked = repo.commit(graded).committed_datetime.isoformat()
    note = (f"graded {graded[:12]} (committed {picked}), the last commit of {ref_name} at or "
            f"before the deadline {deadline.isoformat()}; {ignored} later commit(s) ignored")
    return graded, note


def _check_size(repo: Repo, sha: str, max_bytes: int) -> None:
    """Refuse a checkout over the cap before writing it, from the blob sizes of its tree."""
    size = 0
    for entry in repo.git.ls_tree("-r", "-l", "-z", sha).split("\0"):
        if not entry:
            continue
        blob_size = entry.split("\t", 1)[0].split()[3]
        if blob_size.isdigit():  # "-" for submodule entries, which are never checked out
            size += int(blob_size)
    if size > max_bytes:
        raise FetchError(
            f"checkout of {sha[:12]} is {format_size(size)}, over the {format_size(max_bytes)} cap"
        )


def _remote_branches(repo: Repo) -> list[str]:
    refs = repo.git.for_each_ref("--format=%(refname)", "refs/remotes/origin").splitlines()
    names = [r.removeprefix("refs/remotes/origin/") for r in refs]
    return sorted(n for n in names if n != "HEAD")


def _unmerged(repo: Repo, graded: str, ref_name: str) -> tuple[UnmergedBranch, ...]:
    """Branches with commits the graded one lacks; the graded branch's own later commits are
    the deadline note's business, not a forgotten merge.
    """
    found = []
    for name in _remote_branches(repo):
        if name == ref_name:
            continue
        ahead = int(repo.git.rev_list("--count", f"{graded}..refs/remotes/origin/{name}"))
        if ahead:
            found.append(UnmergedBranch(name=name, commits_ahead=ahead))
    return tuple(found)


# --- small helpers -------------------------------------------------------------------------


def _prepare_dest(dest: Path) -> bool:
    """Check ``dest`` can receive a copy; True when this call creates it."""
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise UsageError(f"destination {dest} exists and is not an empty directory")
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    return True


def _discard(dest: Path, created: bool) -> None:
    """Leave ``dest`` as it was found, so a failed fetch can be retried."""
    remove_tree(dest)
    if not created:
        dest.mkdir(exist_ok=True)


def _redact(source: str) -> str:
    """The source without any password, so tokens in URLs never reach reports or logs."""
    parts = urlsplit(source)
    if "://" not in source or parts.password is None:
        return source
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# Lines git adds around the actual reason of a failure.
_NOISE = ("cloning into", "please make sure you have", "and the repository exists",
          "could not read from remote repository")


def _reason(stderr: str | bytes) -> str:
    """The line of git's stderr that says why, without GitPython's quoting or "fatal:"."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    text = text.strip().removeprefix("stderr: '").removesuffix("'")
    lines = [re.sub(r"^(fatal|error): ", "", line.strip()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    telling = [line for line in lines if not line.lower().startswith(_NOISE)] or lines
    return _redact_text(telling[-1]) if telling else "git gave no reason"


def _redact_text(text: str) -> str:
    return re.sub(r"(://[^/:@\s]+):[^@/\s]+@", r"\1:***@", text)
