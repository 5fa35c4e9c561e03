"""A CPU burner graded beside a correct submission does not change the correct one's verdicts.

The two are graded at once, as a class batch grades them (``--jobs 2`` on this 2-core machine),
on the exercises with timed checks (ex2's bounded drain, ex3's bounded hang). The burner's two
spinning processes are held to their API's CPU quota, and the kernel shares the rest fairly:
the reference's verdicts must be exactly the manifest's. In the e2e stage for its minutes, with
a batch of its own (it uses none of the stage's shared fixtures).
"""

from __future__ import annotations

import csv

from fixtures.accuracy import Graded, describe, mismatches
from fixtures.build import build_fixture
from grader.batch.runner import BatchOptions, run_batch
from grader.records import read_records
from tests.e2e.graded import SANDBOX_MISSING
from tests.needs import unavailable

TIMED = frozenset({"ex2", "ex3"})


def test_a_cpu_burner_does_not_change_the_verdicts_of_a_correct_submission_beside_it(tmp_path):
    if SANDBOX_MISSING:  # the burner is a hostile fixture: graded only with every protection
        unavailable(f"protections missing: {'; '.join(SANDBOX_MISSING)}")
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student_id", "repo_url", "exercises"])
        for name in ("reference", "burns-cpu"):
            writer.writerow([name, f"file://{build_fixture(name)}", " ".join(sorted(TIMED))])

    run_batch(BatchOptions(roster=roster, out=tmp_path / "out", jobs=2))

    records = {record.student_id: record for record in read_records([tmp_path / "out"])}
    assert records["burns-cpu"].report is not None, records["burns-cpu"].reason  # graded beside it
    reference = records["reference"]
    found = mismatches(Graded("reference", reference.report, reference.reason, TIMED))
    assert not found, describe(found)
