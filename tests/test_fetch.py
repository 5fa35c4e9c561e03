"""fetch and snapshot_worktree against real local git repositories (no network)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from grader.errors import FetchError, UsageError
from grader.fetch import fetch, snapshot_worktree, symlinks_escaping

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400


@pytest.fixture(autouse=True)
def _isolated_git_config(tmp_path_factory, monkeypatch):
    """No config of the machine running the tests leaks into them."""
    config = tmp_path_factory.mktemp("home") / "gitconfig"
    config.write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str, when: int = T0) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Student", "GIT_AUTHOR_EMAIL": "s@example.com",
        "GIT_COMMITTER_NAME": "Student", "GIT_COMMITTER_EMAIL": "s@example.com",
        "GIT_AUTHOR_DATE": f"@{when} +0100", "GIT_COMMITTER_DATE": f"@{when} +0100",
    }
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def commit(repo: Path, name: str, content: str, when: int) -> str:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-qm", f"write {name}", when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path) -> Path:
    """main: 3 commits a day apart (tag v1 on the 2nd); ex2: 2 commits never merged."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "src/api/main.py", "app = 1\n", T0)
    commit(repo, "src/api/main.py", "app = 2\n", T0 + DAY)
    git(repo, "tag", "v1")
    commit(repo, ".env.example", "JWT_SECRET_KEY=\n", T0 + 2 * DAY)
    git(repo, "checkout", "-q", "-b", "ex2", "HEAD~1")
    commit(repo, "src/api/middleware/shutdown.py", "x = 1\n", T0 + 3 * DAY)
    commit(repo, "src/api/middleware/shutdown.py", "x = 2\n", T0 + 4 * DAY)
    git(repo, "checkout", "-q", "main")
    return repo


def sha_of(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev)


def one_line(err: pytest.ExceptionInfo[FetchError]) -> str:
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message and "GitCommandError" not in message
    return message


def test_clone_local_path_defaults_to_main_head(origin, tmp_path):
    sub = fetch(str(origin), tmp_path / "out")
    assert sub.commit_sha == sha_of(origin, "main")
    assert sub.ref == "main"
    assert sub.commit_count == 3
    assert sub.author_date == datetime.fromtimestamp(T0 + 2 * DAY, timezone.utc)
    assert sub.author_date.utcoffset() is not None
    assert (tmp_path / "out/.env.example").read_text() == "JWT_SECRET_KEY=\n"


def test_unmerged_branch_is_listed_with_its_count(origin, tmp_path):
    sub = fetch(str(origin), tmp_path / "out")
    assert [(b.name, b.commits_ahead) for b in sub.unmerged_branches] == [("ex2", 2)]


def test_clone_file_url(origin, tmp_path):
    sub = fetch(origin.as_uri(), tmp_path / "out")
    assert sub.commit_sha == sha_of(origin, "main")
    assert sub.source == origin.as_uri()


@pytest.mark.parametrize(
    ("ref", "rev", "count"), [("ex2", "ex2", 4), ("v1", "v1", 2), (None, "main~2", 1)]
)
def test_ref_branch_tag_or_sha(origin, tmp_path, ref, rev, count):
    wanted = sha_of(origin, rev)
    sub = fetch(str(origin), tmp_path / "out", ref=ref or wanted)
    assert (sub.commit_sha, sub.commit_count) == (wanted, count)
    assert git(tmp_path / "out", "rev-parse", "HEAD") == wanted


def test_deadline_picks_last_commit_before_it_and_says_so(origin, tmp_path):
    deadline = datetime.fromtimestamp(T0 + DAY + 3600, timezone.utc)
    sub = fetch(str(origin), tmp_path / "out", deadline=deadline)
    assert sub.commit_sha == sha_of(origin, "main~1")
    assert sub.deadline == deadline
    assert sub.commit_sha[:12] in sub.deadline_note
    assert "1 later commit(s) ignored" in sub.deadline_note
    assert (tmp_path / "out/src/api/main.py").read_text() == "app = 2\n"
    assert not (tmp_path / "out/.env.example").exists()


def test_deadline_ignores_a_branch_merged_after_it(origin, tmp_path):
    on_main = sha_of(origin, "main")
    git(origin, "merge", "-q", "--no-ff", "-m", "merge ex2", "ex2", when=T0 + 6 * DAY)
    deadline = datetime.fromtimestamp(T0 + 5 * DAY, timezone.utc)  # after ex2's own commits
    sub = fetch(str(origin), tmp_path / "out", deadline=deadline)
    assert sub.commit_sha == on_main
    assert "3 later commit(s) ignored" in sub.deadline_note


def test_deadline_before_every_commit_fails(origin, tmp_path):
    with pytest.raises(FetchError) as err:
        fetch(str(origin), tmp_path / "out", deadline=datetime.fromtimestamp(T0 - 1, timezone.utc))
    assert "no commit at or before the deadline" in one_line(err)
    assert not (tmp_path / "out").exists()  # a failed fetch leaves nothing behind


def test_empty_repository(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(FetchError) as err:
        fetch(str(empty), tmp_path / "out")
    assert "empty" in one_line(err)


def test_missing_branch_is_named(origin, tmp_path):
    with pytest.raises(FetchError) as err:
        fetch(str(origin), tmp_path / "out", ref="ex7")
    assert "'ex7'" in one_line(err)


@pytest.mark.parametrize("source", ["{tmp}/nowhere", "file://{tmp}/nowhere.git", "{tmp}"])
def test_bad_path_or_url_is_not_found(tmp_path, source):
    with pytest.raises(FetchError) as err:
        fetch(source.format(tmp=tmp_path), tmp_path / "out")
    assert "not found" in one_line(err)


def test_unreachable_url_fails_in_one_line(tmp_path):
    with pytest.raises(FetchError) as err:
        fetch("https://127.0.0.1:9/none.git", tmp_path / "out", timeout_s=20)
    assert "127.0.0.1:9" in one_line(err)


def test_clone_that_hangs_is_killed_at_the_time_limit(tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        started = time.monotonic()
        with pytest.raises(FetchError) as err:
            url = f"http://127.0.0.1:{silent.getsockname()[1]}/slow.git"
            fetch(url, tmp_path / "out", timeout_s=1)
    assert time.monotonic() - started < 10
    assert "clone time limit" in one_line(err)


class _NeedsLogin(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_private_repository_fails_without_prompting(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _NeedsLogin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://student:s3cret@127.0.0.1:{server.server_port}/private.git"
        with pytest.raises(FetchError) as err:
            fetch(url, tmp_path / "out", timeout_s=20)
    finally:
        server.shutdown()
    message = one_line(err)
    assert "credentials" in message
    assert "s3cret" not in message


def test_hooks_of_source_and_machine_are_not_run(origin, tmp_path, monkeypatch):
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "machine-hooks"
    for hook_dir in (origin / ".git/hooks", hooks):
        hook_dir.mkdir(exist_ok=True)
        for name in ("post-checkout", "post-clone", "reference-transaction"):
            script = hook_dir / name
            script.write_text(f"#!/bin/sh\ntouch {marker}\n")
            script.chmod(0o755)
    config = Path(os.environ["GIT_CONFIG_GLOBAL"])
    config.write_text(config.read_text() + f"[core]\n\thooksPath = {hooks}\n")
    fetch(str(origin), tmp_path / "out")
    assert not marker.exists()


def test_symlink_escaping_the_checkout_is_reported(origin, tmp_path):
    (origin / "src/api/passwd").symlink_to("/etc/passwd")
    (origin / "src/api/inside").symlink_to("main.py")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "links", when=T0 + 5 * DAY)
    out = tmp_path / "out"
    fetch(str(origin), out)
    assert symlinks_escaping(out) == ["src/api/passwd"]


def test_size_cap(origin, tmp_path):
    commit(origin, "big.bin", "x" * 50_000, T0 + 5 * DAY)
    with pytest.raises(FetchError) as err:
        fetch(str(origin), tmp_path / "out", max_bytes=10_000)
    assert "is 50.0 kB, over the 10.0 kB cap" in one_line(err)
    assert not (tmp_path / "out").exists()


def test_snapshot_keeps_uncommitted_work_and_skips_git(origin, tmp_path):
    (origin / "src/api/main.py").write_text("app = 'uncommitted'\n")
    (origin / "src/api/new.py").write_text("new = 1\n")
    (origin / "link").symlink_to("/etc/passwd")
    out = tmp_path / "snap"
    sub = snapshot_worktree(origin, out)
    assert sub.dirty is True
    assert sub.commit_sha == sha_of(origin, "HEAD")
    assert sub.ref == "main"
    assert (out / "src/api/main.py").read_text() == "app = 'uncommitted'\n"
    assert (out / "src/api/new.py").exists()
    assert not (out / ".git").exists()
    assert (out / "link").is_symlink() and os.readlink(out / "link") == "/etc/passwd"


def test_snapshot_of_clean_tree_is_not_dirty(origin, tmp_path):
    sub = snapshot_worktree(origin, tmp_path / "snap")
    assert (sub.dirty, sub.commit_count) == (False, 3)


def test_snapshot_refuses_to_copy_a_tree_into_itself(origin):
    with pytest.raises(UsageError):
        snapshot_worktree(origin, origin / "snap")
