"""Near-copies measured against the known handout: the blind spot of the guessed baseline,
reproduced on real trees (the reference solution and the built starter), and fixed."""

from __future__ import annotations

import shutil
from itertools import combinations
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.build import build_fixture
from grader.batch.fingerprint import fingerprint, near_copies
from grader.batch.handout import HandoutBaseline, load_baseline, save_baseline
from grader.batch.outputs import merge, write_outputs
from grader.cli import app
from grader.errors import EXIT_COULD_NOT_GRADE, EXIT_USAGE
from grader.records import write_record
from tests.batch.samples import sample_records

REFERENCE = Path(__file__).resolve().parents[2] / "reference_solution"
CLASS_SIZE = 20


def _one_change(solution: Path, dest: Path, n: int) -> Path:
    """The shared solution with one change of student ``n``'s own (a renamed constant in one file)."""
    shutil.copytree(solution / "src", dest / "src")
    main = dest / "src" / "api" / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + f"\nSTUDENT_MARKER_{n} = {n}\n", encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def starter() -> Path:
    return build_fixture("starter")


@pytest.fixture(scope="module")
def shared_solution_class(tmp_path_factory) -> dict[str, tuple[str, ...]]:
    root = tmp_path_factory.mktemp("class")
    return {f"s{n:02d}": fingerprint(_one_change(REFERENCE, root / f"s{n:02d}", n)) for n in range(CLASS_SIZE)}


def test_the_guessed_baseline_is_blind_to_one_shared_solution(shared_solution_class):
    assert near_copies(shared_solution_class) == []


def test_the_handout_as_baseline_flags_every_pair(shared_solution_class, starter):
    pairs = near_copies(shared_solution_class, handout=fingerprint(starter))
    assert [(p.first, p.second) for p in pairs] == list(combinations(sorted(shared_solution_class), 2))
    assert min(p.similarity for p in pairs) >= 0.9


def test_the_handout_as_baseline_does_not_flag_different_fixes(starter):
    # Every fixture is the starter plus its own fixes: different exercises fixed, nothing copied.
    prints = {name: fingerprint(build_fixture(name)) for name in ("only-ex1", "only-ex3", "only-ex4", "only-ex6")}
    prints["untouched"] = fingerprint(starter)
    assert near_copies(prints, handout=fingerprint(starter)) == []


def test_the_summary_says_which_baseline(tmp_path):
    records = sample_records()
    for record in records:
        write_record(tmp_path, record)
    write_outputs(records, tmp_path)
    assert "Handout baseline guessed" in (tmp_path / "summary.html").read_text()
    save_baseline(tmp_path, HandoutBaseline(source="https://example.org/handout.git", commit_sha="ab" * 20,
                                            fingerprint=("00",)))
    write_outputs(records, tmp_path)
    page = (tmp_path / "summary.html").read_text()
    assert "Handout baseline: https://example.org/handout.git at abababababab" in page
    assert "guessed" not in page


def test_batch_fingerprints_the_handout_and_merge_keeps_it(tmp_path, starter):
    roster = tmp_path / "roster.csv"
    roster.write_text(f"student_id,repo_url\nalice,{tmp_path / 'gone'}\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(roster), "-o", str(out), "--handout", str(starter), "-q"])
    assert result.exit_code == EXIT_COULD_NOT_GRADE, result.output  # alice's repository does not exist
    baseline = load_baseline(out)
    assert baseline is not None and baseline.fingerprint == fingerprint(starter)
    merge([out], tmp_path / "merged")
    assert load_baseline(tmp_path / "merged") == baseline


def test_an_unreachable_handout_stops_the_batch_before_grading(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url\nalice,/nonexistent/alice\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["batch", str(roster), "-o", str(tmp_path / "out"),
                                      "--handout", str(tmp_path / "no-such-handout")])
    assert result.exit_code == EXIT_USAGE and "handout" in result.output
    assert not (tmp_path / "out" / "submissions").exists()
