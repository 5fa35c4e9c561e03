"""The roster is validated before anything runs: one line naming the row and the column."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from grader.batch.roster import Shard, parse_roster, shard_of
from grader.cli import app
from grader.errors import UsageError

GOOD = """student_id,repo_url,ref,deadline
s1,https://example.org/s1.git,,2026-06-01T23:59+02:00
s2,file:///tmp/s2,ex3-branch,

s3,/tmp/s3,,
"""


def test_parses_rows_with_optional_columns():
    entries = parse_roster(GOOD, "r.csv")
    assert [e.student_id for e in entries] == ["s1", "s2", "s3"]
    assert entries[0].deadline.utcoffset().total_seconds() == 7200 and entries[0].ref is None
    assert entries[1].ref == "ex3-branch" and entries[1].deadline is None
    assert entries[2].line == 5


def test_a_rows_exercises_are_its_own_selection():
    entries = parse_roster("student_id,repo_url,exercises\ns1,u,ex4 ex3 ex3\ns2,v,\n")
    assert entries[0].exercises == ("ex3", "ex4")
    assert entries[1].exercises is None  # the batch's --only, else every exercise


def test_only_required_columns():
    assert parse_roster("student_id,repo_url\na,https://x/a.git\n")[0].repo_url == "https://x/a.git"


@pytest.mark.parametrize("text, expected", [
    ("student_id,repo_url,deadline\ns1,u,2026-06-01\n", "r.csv, line 2, column deadline: '2026-06-01' has no time zone"),
    ("student_id,repo_url,deadline\ns1,u,tomorrow\n", "line 2, column deadline: 'tomorrow' is not an ISO 8601"),
    ("student_id,deadline\ns1,2026-06-01T00:00Z\n", "line 1: missing column 'repo_url'"),
    ("student_id,repo_url,dealine\ns1,u,x\n", "line 1: unknown column 'dealine'"),
    ("student_id,repo_url\ns1,u\ns2,v\ns1,w\n", "line 4, column student_id: 's1' already appears on line 2"),
    ("student_id,repo_url\nAl,u\nal,v\n", "line 3, column student_id: 'al' already appears on line 2"),
    ("student_id,repo_url\n../etc,u\n", "line 2, column student_id: '../etc' is not a usable id"),
    ("student_id,repo_url\ns1,\n", "line 2, column repo_url: empty"),
    ("student_id,repo_url\ns1,--upload-pack=x\n", "line 2, column repo_url:"),
    ("student_id,repo_url,ref\ns1,u,-x\n", "line 2, column ref:"),
    ("student_id,repo_url,exercises\ns1,u,ex3 ex9\n", "line 2, column exercises: unknown exercise(s) ex9; known: ex1,"),
    ("student_id,repo_url\ns1,u,extra\n", "line 2: more cells than columns"),
    ("student_id,repo_url\n", "no submission rows"),
    ("", "empty roster"),
])
def test_errors_name_the_row_and_column(text, expected):
    with pytest.raises(UsageError) as caught:
        parse_roster(text, "r.csv")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_rejects_a_bad_roster_with_exit_2_before_running(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url,deadline\ns1,https://x/s1.git,2026-13-01T00:00Z\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["batch", str(roster), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "line 2, column deadline" in result.output
    assert not (tmp_path / "out" / "submissions").exists()


def test_cli_rejects_a_bad_shard(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url\ns1,https://x/s1.git\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["batch", str(roster), "--shard", "4/3", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--shard '4/3'" in result.output


def test_cli_refuses_a_batch_without_the_sandbox_unless_allowed(tmp_path, monkeypatch):
    """No bubblewrap on the PATH: refused (exit 3) naming what is missing and the way out."""
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,repo_url\ns1,file:///nonexistent/s1\n", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path))
    refused = CliRunner().invoke(app, ["batch", str(roster), "--out", str(tmp_path / "out")])
    assert refused.exit_code == 3, refused.output
    assert "sandbox required but missing: filesystem/PID sandbox (bwrap not found" in refused.output
    assert "pass --allow-unsandboxed" in refused.output
    assert not (tmp_path / "out" / "submissions").exists()


def test_shards_partition_the_roster_stably():
    ids = [f"student{n:03d}" for n in range(60)]
    shards = [Shard.parse(f"{i}/3") for i in (1, 2, 3)]
    slices = [[s for s in ids if shard.holds(s)] for shard in shards]
    assert sorted(sum(slices, [])) == ids  # every row in exactly one shard
    assert all(slices)  # none empty for 60 rows
    assert shard_of("student007", 3) == shard_of("student007", 3)
    assert Shard.parse("1/1").holds("anyone")
