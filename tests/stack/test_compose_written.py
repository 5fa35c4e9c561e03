"""The grader's scan for files an API wrote (run in the compose backend's scanner container):
new files holding a marker are found; links, fifos, old files and what lies past its bounds
are not read. Runs the module as a program, as the scanner does; no engine needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from grader.checkout import remove_tree
from grader.stack.compose import written

from tests.trees import deep_tree

MARKER = "trace-7f3a"


def _scan(*bases: Path, since: float, markers: tuple[str, ...] = (MARKER,)) -> dict:
    done = subprocess.run([sys.executable, "-m", "grader.stack.compose.written", str(since), json.dumps(markers),
                           *map(str, bases)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _old(path: Path) -> None:
    os.utime(path, (time.time() - 3600, time.time() - 3600))


def test_new_files_holding_a_marker_are_found_and_nothing_else(tmp_path):
    workdir, tmp = tmp_path / "workdir", tmp_path / "tmp"
    (workdir / "logs").mkdir(parents=True)
    tmp.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{MARKER} outside the scanned folders")
    since = time.time() - 5
    (workdir / "traces_fallback.jsonl").write_text(json.dumps({"prompt": MARKER}) + "\n")
    (workdir / "logs" / "other.log").write_text("nothing of interest\n")
    (workdir / "old.jsonl").write_text(MARKER)
    _old(workdir / "old.jsonl")
    (workdir / "__pycache__").mkdir()
    (workdir / "__pycache__" / "x.pyc").write_text(MARKER)
    (tmp / "link.jsonl").symlink_to(outside)
    os.mkfifo(tmp / "fifo")  # opened, it would block the scan forever
    (tmp / "fallback.json").write_text(MARKER)

    answer = _scan(workdir, tmp, since=since)
    assert answer == {"found": ["workdir/traces_fallback.jsonl", "tmp/fallback.json"], "complete": True}


def test_a_marker_across_two_reads_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(written, "_CHUNK", 8)
    (tmp_path / "split.txt").write_text("......" + MARKER + "......")
    found, complete = written.scan([tmp_path], 0.0, [MARKER.encode()], time.monotonic() + 10)
    assert (found, complete) == ([f"{tmp_path.name}/split.txt"], True)


def test_bounds_cut_the_scan_short_and_say_so(tmp_path, monkeypatch):
    for index in range(5):
        (tmp_path / f"file-{index}.txt").write_text(MARKER)
    monkeypatch.setattr(written, "MAX_FOUND", 2)
    found, complete = written.scan([tmp_path], 0.0, [MARKER.encode()], time.monotonic() + 10)
    assert (len(found), complete) == (2, False)

    monkeypatch.setattr(written, "MAX_FOUND", 50)
    found, complete = written.scan([tmp_path], 0.0, [MARKER.encode()], time.monotonic() - 1)
    assert (found, complete) == ([], False)


def test_only_the_first_bytes_of_a_huge_file_are_read(tmp_path, monkeypatch):
    monkeypatch.setattr(written, "FILE_BYTES", 1000)
    (tmp_path / "big.log").write_bytes(b"x" * 5000 + MARKER.encode())
    found, complete = written.scan([tmp_path], 0.0, [MARKER.encode()], time.monotonic() + 10)
    assert (found, complete) == ([], True)


def test_a_tree_deeper_than_pythons_recursion_limit_is_scanned(tmp_path):
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    try:
        (deep_tree(workdir) / "deep.txt").write_text(MARKER)
        answer = _scan(workdir, since=0.0)
        assert answer["complete"] and len(answer["found"]) == 1 and answer["found"][0].endswith("/d/deep.txt")
    finally:
        remove_tree(workdir)


def test_full_folders_are_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.setattr(written, "FULL_BELOW", 1 << 62)  # more than any disk has left
    written.main(["--full", str(tmp_path / "tmp"), str(tmp_path / "home"), str(tmp_path / "missing")])
    monkeypatch.setattr(written, "FULL_BELOW", 0)
    written.main(["--full", str(tmp_path / "tmp")])
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [["tmp", "home"], []]
