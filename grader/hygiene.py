"""Precautions for handling untrusted student repositories on the grading machine.

Git runs with no hooks, no LFS, no prompts and no submodules; checkouts are measured
before they are written; symlinks are reported, never followed.
"""

from __future__ import annotations

from pathlib import Path

from grader.checkout import walk

# Applied to every git process through GIT_CONFIG_COUNT (git >= 2.31), so even commands that
# GitPython runs for us (status, diff) cannot run a hook, an fsmonitor or an LFS download.
_GIT_CONFIG = {
    "core.hooksPath": "/dev/null",
    "core.fsmonitor": "false",
    "filter.lfs.smudge": "",
    "filter.lfs.process": "",
    "filter.lfs.required": "false",
    "submodule.recurse": "false",
    # ext:: runs an arbitrary command; GitPython refuses it too, this covers any other caller.
    "protocol.ext.allow": "never",
}


def safe_git_env() -> dict[str, str]:
    """Environment for git on untrusted repositories: fail instead of prompting, run nothing."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",  # answers an empty credential: a private repository fails fast
        "SSH_ASKPASS": "true",
        # accept-new: a first contact with a host must not stop an unattended run on a question.
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_CONFIG_COUNT": str(len(_GIT_CONFIG)),
    }
    for i, (key, value) in enumerate(_GIT_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def clone_config_options() -> list[str]:
    """``--config`` options for ``git clone``: they persist in the clone, guarding later git use."""
    return [f"--config={key}={value}" for key, value in _GIT_CONFIG.items()]


def tree_size(root: Path) -> int:
    """Bytes of the files under ``root`` outside ``.git``; symlinks count as links, unfollowed."""
    return sum(entry.size for entry in walk(root, skip=frozenset({".git"})) if entry.kind != "dir")


def format_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"


def symlinks_escaping(root: Path) -> list[str]:
    """Repo-relative paths of the symlinks under ``root`` whose target resolves outside it.

    Only link metadata is read, never a target's content. A link that cannot be resolved
    (a loop) is reported too: it cannot be shown to stay inside.
    """
    root = root.resolve()
    escaping = []
    for entry in walk(root):
        # git writes no symlinks in .git; the checkout is what runs
        if entry.kind != "link" or entry.relative.startswith(".git/"):
            continue
        try:
            target = (root / entry.relative).resolve(strict=False)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            escaping.append(entry.relative)
            continue
        if not target.is_relative_to(root):
            escaping.append(entry.relative)
    return sorted(escaping)
