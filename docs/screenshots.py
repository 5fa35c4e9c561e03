"""The README's pictures: a student's report and a class summary, rendered by the grader's own
templates and photographed by headless Chromium.

    uv run python docs/screenshots.py                  # re-render and re-photograph both pages
    uv run python docs/screenshots.py --grade only-ex3 # first grade that fixture for real (minutes)
    uv run python docs/screenshots.py --class-from-manifest  # first re-score the class from the manifest

The student report is a real grading's report, kept in ``docs/img/sample-report.json`` (``--grade
NAME`` grades fixture NAME again and replaces it). The class is every gradable fixture of
``fixtures/manifest.yaml`` scored from its expected check outcomes (no grading run), kept in
``docs/img/sample-class.json`` so that a manifest change does not change the picture until
``--class-from-manifest`` asks for it. Both pages are rendered with fixed dates, so the same
templates give the same pages:
``docs/img/pages.sha256`` records their hashes, and ``tests/report/test_screenshots.py`` fails
when the templates changed and the pictures were not taken again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # fixtures/ is not installed: run from a checkout

from fixtures.build import build_fixture  # noqa: E402
from fixtures.manifest import expected_checks, load_manifest  # noqa: E402
from grader import __version__  # noqa: E402
from grader.batch.summary import render_summary  # noqa: E402
from grader.checks import CHECKS  # noqa: E402
from grader.models import CheckResult, CheckStatus, GradeReport, Submission  # noqa: E402
from grader.pipeline import DEFAULT_RUBRIC, GradeRequest, grade  # noqa: E402
from grader.records import SubmissionRecord, status_of  # noqa: E402
from grader.report import Audience, render_html  # noqa: E402
from grader.rubric import load_rubric  # noqa: E402
from grader.scoring import score  # noqa: E402

IMG = ROOT / "docs" / "img"
SAMPLE_REPORT = IMG / "sample-report.json"
SAMPLE_CLASS = IMG / "sample-class.json"
HASHES = IMG / "pages.sha256"
WHEN = datetime(2025, 6, 1, 12, tzinfo=UTC)
# page name -> (window size for the picture)
PAGES = {"student-report": "1000,1500", "class-summary": "1200,1700"}


def sample_report() -> GradeReport:
    return GradeReport.model_validate_json(SAMPLE_REPORT.read_text(encoding="utf-8"))


def class_records() -> list[SubmissionRecord]:
    """The class kept in ``SAMPLE_CLASS``."""
    return [SubmissionRecord.model_validate(item) for item in json.loads(SAMPLE_CLASS.read_text(encoding="utf-8"))]


def class_from_manifest() -> list[SubmissionRecord]:
    """One record per gradable fixture, scored from the manifest's expected outcomes."""
    rubric = load_rubric(DEFAULT_RUBRIC)
    records = []
    for n, (name, expectation) in enumerate(sorted(load_manifest().fixtures.items())):
        if expectation.could_not_grade:
            continue
        outcomes = expected_checks(name)
        results = {cid: CheckResult(check_id=cid, status=CheckStatus(outcomes[cid]),
                                    reason="ok" if outcomes[cid] == "passed" else f"expected: {CHECKS[cid].proves}")
                   for cid in CHECKS}
        submission = Submission(source=f"fixtures/{name}", commit_sha=f"{n:040x}", ref="main", author_date=WHEN,
                                commit_count=len(expectation.commits))
        report = score(rubric, results, submission, grader_version=__version__, graded_at=WHEN)
        records.append(SubmissionRecord(
            student_id=name, source=submission.source, status=status_of(report), commit_sha=submission.commit_sha,
            rubric_name=rubric.name, rubric_version=rubric.version, grader_version=__version__, report=report,
            started_at=WHEN, finished_at=WHEN + timedelta(minutes=4), duration_s=240.0))
    return records


def render_pages() -> dict[str, str]:
    """Page name -> the HTML the pictures show."""
    return {"student-report": render_html(sample_report(), Audience.STUDENT),
            "class-summary": render_summary(class_records(), title="Class summary (fixtures)", generated_at=WHEN)}


def page_hashes(pages: dict[str, str]) -> str:
    return "".join(f"{hashlib.sha256(html.encode()).hexdigest()}  {name}.html\n" for name, html in sorted(pages.items()))


def photograph(pages: dict[str, str]) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as scratch:
        for name, html in pages.items():
            page = Path(scratch, f"{name}.html")
            page.write_text(html, encoding="utf-8")
            png = IMG / f"{name}.png"
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--user-data-dir={scratch}/profile", f"--screenshot={png}",
                            f"--window-size={PAGES[name]}", page.as_uri()],
                           check=True, capture_output=True, timeout=180)
            print(f"wrote {png.relative_to(ROOT)}")


def grade_sample(fixture: str) -> None:
    report = grade(GradeRequest(source=str(build_fixture(fixture)), with_diff=False))
    SAMPLE_REPORT.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    print(f"wrote {SAMPLE_REPORT.relative_to(ROOT)}: {report.points:g}/{report.max_points:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grade", metavar="FIXTURE", help="grade this fixture for real first (minutes)")
    parser.add_argument("--class-from-manifest", action="store_true", help="re-score the class from the manifest first")
    args = parser.parse_args()
    if args.grade:
        grade_sample(args.grade)
    if args.class_from_manifest or not SAMPLE_CLASS.exists():
        records = [record.model_dump(mode="json") for record in class_from_manifest()]
        SAMPLE_CLASS.write_text(json.dumps(records) + "\n", encoding="utf-8")
        print(f"wrote {SAMPLE_CLASS.relative_to(ROOT)}")
    pages = render_pages()
    photograph(pages)
    HASHES.write_text(page_hashes(pages), encoding="utf-8")
    print(f"wrote {HASHES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
