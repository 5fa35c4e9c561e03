"""``grade merge`` through the CLI on records written by hand."""

from __future__ import annotations

from typer.testing import CliRunner

from grader.batch.record import write_record
from grader.cli import app
from tests.batch.samples import sample_records


def test_merge_combines_folders(tmp_path):
    records = sample_records()
    for n, record in enumerate(records):
        write_record(tmp_path / f"shard{n % 2}", record)
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "shard0"), str(tmp_path / "shard1"),
                                      "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    assert "5 submission(s) merged" in result.output
    assert len((tmp_path / "all" / "gradebook.csv").read_text().splitlines()) == 6
    assert len(list((tmp_path / "all" / "submissions").glob("*.json"))) == 5


def test_merge_refuses_a_folder_without_submissions(tmp_path):
    result = CliRunner().invoke(app, ["merge", str(tmp_path), "--out", str(tmp_path / "all")])
    assert result.exit_code == 2 and "not a batch output" in result.output
