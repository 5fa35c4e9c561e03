"""Reading a hostile checkout: links never followed, deep trees walked, huge files not read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.cache import tree_hash
from grader.checkout import (
    UnsafePath,
    copy_tree,
    directory_problem,
    read_text,
    remove_tree,
    walk,
)
from grader.hygiene import symlinks_escaping, tree_size

_DEPTH = 1100  # past Python's recursion limit (1000): a recursive walk raises RecursionError


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "src" / "api").mkdir(parents=True)
    (root / "src" / "api" / "main.py").write_text("app = None\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "answer.py").write_text("ANSWER_KEY = 'never read'\n")
    return secret


def test_a_file_inside_is_read(checkout: Path) -> None:
    assert read_text(checkout, "src/api/main.py") == "app = None\n"


@pytest.mark.parametrize("link, read, reason", [
    ("src/api/requirements.txt", "src/api/requirements.txt", "src/api/requirements.txt is a symlink (not followed)"),
    ("src/api/pkg", "src/api/pkg/answer.py", "src/api/pkg/answer.py: src/api/pkg is a symlink (not followed)"),
])
def test_a_link_anywhere_on_the_path_is_named_and_nothing_of_its_target_read(checkout, outside, link, read, reason):
    target = outside / "answer.py" if link.endswith(".txt") else outside
    (checkout / link).symlink_to(target)
    with pytest.raises(UnsafePath) as refused:
        read_text(checkout, read)
    assert str(refused.value) == reason
    assert "never read" not in str(refused.value)


def test_a_linked_src_folder_is_not_a_folder_of_the_checkout(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "linked"
    root.mkdir()
    (root / "src").symlink_to(outside)
    assert directory_problem(root, "src/api") == "src/api: src is a symlink (not followed)"
    assert list(walk(root, "src")) == []


def test_missing_huge_and_escaping_paths_are_refused(checkout: Path) -> None:
    (checkout / "big.txt").write_bytes(b"x" * 2_000)
    for path, reason in (("nope.txt", "nope.txt is missing"),
                         ("big.txt", "big.txt is over 1000 bytes (2000): not read"),
                         ("../etc/passwd", "../etc/passwd is not a path inside the checkout"),
                         ("src", "src is not a regular file")):
        with pytest.raises(UnsafePath, match=None) as refused:
            read_text(checkout, path, max_bytes=1000)
        assert str(refused.value) == reason


def test_a_fifo_is_refused_without_blocking(checkout: Path) -> None:
    os.mkfifo(checkout / "pipe")
    with pytest.raises(UnsafePath, match="pipe is not a regular file"):
        read_text(checkout, "pipe")


def test_a_tree_deeper_than_the_recursion_limit_is_walked_copied_hashed_and_removed(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    root.mkdir()
    folder = str(root)
    for _ in range(_DEPTH):  # mkdir(parents=True) would recurse too
        folder += "/d"
        os.mkdir(folder)
    Path(folder, "leaf.py").write_text("x = 1\n")

    copy = tmp_path / "copy"
    try:
        entries = list(walk(root))
        assert len(entries) == _DEPTH + 1 and entries[-1].relative.endswith("/d/leaf.py")
        copy_tree(root, copy)
        assert tree_hash(copy) == tree_hash(root)
        assert tree_size(root) == 6 and symlinks_escaping(root) == []
        remove_tree(copy)
        assert not copy.exists()
    finally:  # pytest's own removal of old temporary folders recurses: it must never meet these
        remove_tree(copy)
        remove_tree(root)


def test_copies_keep_links_as_links_and_leave_skipped_folders_out(checkout: Path, outside: Path, tmp_path) -> None:
    (checkout / "src" / "api" / "escape").symlink_to(outside)
    (checkout / ".git").mkdir()
    (checkout / ".git" / "config").write_text("[core]\n")
    copy = tmp_path / "copy"
    copy_tree(checkout, copy, skip=frozenset({".git"}))
    assert os.readlink(copy / "src" / "api" / "escape") == str(outside)
    assert not (copy / ".git").exists()
    remove_tree(copy)
    assert (outside / "answer.py").exists()  # removing a link never removes its target
