"""The build context as the engine receives it: .dockerignore honoured, .git never sent, links
sent as links, any depth, a size bound. Pure file-system tests, no engine."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from grader.checkout import remove_tree
from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.buildspec import BuildSpec
from grader.stack.compose.context import OUTSIDE_DOCKERFILE, pack_context

from tests.trees import deep_tree


def _pack(checkout: Path, spec: BuildSpec, max_bytes: int = 10_000_000) -> tuple[str, tarfile.TarFile]:
    archive = io.BytesIO()
    dockerfile = pack_context(checkout, spec, archive, max_bytes)
    archive.seek(0)
    return dockerfile, tarfile.open(fileobj=archive)


def _checkout(root: Path) -> Path:
    (root / "src" / "api").mkdir(parents=True)
    (root / "src" / "api" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (root / "src" / "api" / "main.py").write_text("app = None\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[remote]\n url = https://token@example.com/repo\n")
    (root / "notes.md").write_text("notes\n")
    return root


def test_the_root_context_holds_the_checkout_but_git_and_ignored_files(tmp_path):
    checkout = _checkout(tmp_path)
    (checkout / ".dockerignore").write_text("# comment\n*.md\nsrc/api/Dockerfile\n")
    (checkout / "outside").mkdir()
    (checkout / "src" / "api" / "linked").symlink_to(tmp_path / "outside")
    dockerfile, tar = _pack(checkout, BuildSpec("", "src/api/Dockerfile", "test"))
    members = {member.name: member for member in tar.getmembers()}
    assert dockerfile == "src/api/Dockerfile"
    # The Dockerfile is sent even when ignored (the engine needs it), as docker does.
    assert sorted(members) == [".dockerignore", "outside", "src", "src/api", "src/api/Dockerfile",
                               "src/api/linked", "src/api/main.py"]
    assert members["src/api/linked"].issym() and members["src/api/linked"].linkname == str(tmp_path / "outside")
    assert tar.extractfile("src/api/main.py").read() == b"app = None\n"


def test_a_dockerfile_outside_its_context_is_sent_under_a_name_of_its_own(tmp_path):
    checkout = _checkout(tmp_path)
    (checkout / "docker").mkdir()
    spec = BuildSpec("src/api", "docker/Dockerfile", "test", dockerfile_text="FROM python:3.11-slim\nCOPY . .\n")
    dockerfile, tar = _pack(checkout, spec)
    assert dockerfile == OUTSIDE_DOCKERFILE
    assert sorted(tar.getnames()) == sorted([OUTSIDE_DOCKERFILE, "Dockerfile", "main.py"])
    assert tar.extractfile(OUTSIDE_DOCKERFILE).read() == b"FROM python:3.11-slim\nCOPY . .\n"


def test_a_tree_deeper_than_pythons_recursion_limit_is_packed(tmp_path):
    checkout = _checkout(tmp_path)
    try:
        (deep_tree(checkout / "src" / "api") / "leaf.txt").write_text("leaf")
        _, tar = _pack(checkout, BuildSpec("src/api", "src/api/Dockerfile", "test"))
        assert any(name.endswith("/d/leaf.txt") and name.count("/") == 1100 for name in tar.getnames())
    finally:
        remove_tree(checkout / "src" / "api" / "d")


def test_a_context_over_the_bound_is_the_students_failure(tmp_path):
    checkout = _checkout(tmp_path)
    (checkout / "src" / "api" / "model.bin").write_bytes(b"\0" * 2_000_000)
    with pytest.raises(SubmissionUnrunnable, match=r"^its build context \(src/api\) holds over 1 MB or 100000 "
                                                   r"entries: not sent to the engine$"):
        _pack(checkout, BuildSpec("src/api", "src/api/Dockerfile", "test"), max_bytes=1_000_000)


def test_a_linked_dockerignore_is_refused(tmp_path):
    checkout = _checkout(tmp_path)
    (checkout / ".dockerignore").symlink_to("/etc/passwd")
    with pytest.raises(SubmissionUnrunnable, match=r"^its .dockerignore cannot be used: .dockerignore is a symlink"):
        _pack(checkout, BuildSpec("", "src/api/Dockerfile", "test"))
