"""Pairwise near-copies from fingerprints: copies found, the shared handout ignored."""

from __future__ import annotations

from pathlib import Path

from grader.batch.fingerprint import fingerprint, near_copies

HANDOUT = "\n".join(f"handout_line_{n} = {n}" for n in range(60))


def _tree(root: Path, own: str) -> Path:
    (root / "src" / "api").mkdir(parents=True)
    (root / "src" / "api" / "main.py").write_text(HANDOUT + "\n" + own, encoding="utf-8")
    return root


def _own(seed: str, lines: int = 40) -> str:
    return "\n".join(f"value_{seed}_{n} = compute({n})  # comment {n}" for n in range(lines))


def _reformatted(code: str) -> str:
    """The same statements with other comments, other indentation and other inner spacing."""
    return "\n".join("\t  " + line.replace("# comment", "#   note").replace(" = ", "   =  ")
                     for line in code.splitlines())


def test_copies_found_handout_ignored(tmp_path):
    copied = _reformatted(_own("x"))
    # No line of the copy is the original's as written: only normalisation can match them.
    assert not set(copied.splitlines()) & set(_own("x").splitlines())
    prints = {
        "a": fingerprint(_tree(tmp_path / "a", _own("x"))),
        "b": fingerprint(_tree(tmp_path / "b", copied)),  # b copied a, reformatted
        "c": fingerprint(_tree(tmp_path / "c", _own("y"))),
        "d": fingerprint(_tree(tmp_path / "d", _own("z"))),
        "e": fingerprint(_tree(tmp_path / "e", "")),  # handed in the handout as it is
        "f": fingerprint(_tree(tmp_path / "f", "")),
    }
    pairs = near_copies(prints)
    assert [(p.first, p.second) for p in pairs] == [("a", "b")]
    assert pairs[0].similarity == 1.0


def test_no_src_api_gives_an_empty_fingerprint(tmp_path):
    assert fingerprint(tmp_path) == ()


def test_symlinks_are_not_read(tmp_path):
    outside = tmp_path / "secret.py"
    outside.write_text(_own("s"), encoding="utf-8")
    tree = _tree(tmp_path / "t", "")
    (tree / "src" / "api" / "link.py").symlink_to(outside)
    assert fingerprint(tree) == fingerprint(_tree(tmp_path / "u", ""))
