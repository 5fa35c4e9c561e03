"""``grade merge`` through the CLI on records written by hand."""

from __future__ import annotations

from typer.testing import CliRunner

from grader.cli import app
from grader.records import write_record
from grader.report.exports import render_prairielearn_csv
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


def test_merge_writes_the_prairielearn_upload_when_asked(tmp_path):
    records = sample_records()
    for record in records:
        write_record(tmp_path / "shard", record)
    out = tmp_path / "all"
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "shard"), "-o", str(out), "-f", "prairielearn-csv"])
    assert result.exit_code == 0, result.output
    assert (out / "exports" / "prairielearn-scores.csv").read_text() == render_prairielearn_csv(records)
    plain = CliRunner().invoke(app, ["merge", str(tmp_path / "shard"), "-o", str(tmp_path / "plain")])
    assert plain.exit_code == 0 and not (tmp_path / "plain" / "exports" / "prairielearn-scores.csv").exists()
