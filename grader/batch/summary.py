"""The batch summary page: score histogram, pass rate per criterion, counts per band, and the
submissions that need a human look. Jinja2 with autoescape; inline CSS and inline SVG drawn
here (no script, no external resource), so the file opens offline and cannot run anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from grader.batch.fingerprint import near_copies
from grader.batch.handout import HandoutBaseline
from grader.models import CriterionStatus
from grader.records import SubmissionRecord, SubmissionStatus
from grader.report.exports.text import safe_text
from grader.report.html import html_environment

REFERENCE_SIMILARITY = 0.95
BINS = 10


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # what the bar's length shows
    text: str  # the figure printed next to it
    x: float = 0
    y: float = 0
    width: float = 0
    height: float = 0


@dataclass(frozen=True)
class Flag:
    student_id: str
    kind: str  # "could not grade", "incomplete", "flaky", "near-copy of the reference", "near-copy of ..."
    detail: str


@dataclass
class Summary:
    generated_at: str
    total: int
    statuses: dict[str, int]
    histogram: list[Bar]
    histogram_max: int
    criteria: list[Bar]
    bands: list[Bar]
    flags: list[Flag] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    mean: str = "-"
    median: str = "-"
    baseline: str = ""  # what near-copies between students were measured against


def _histogram(percents: list[float]) -> tuple[list[Bar], int]:
    counts = [0] * BINS
    for percent in percents:
        counts[min(BINS - 1, int(percent // (100 / BINS)))] += 1
    top = max(counts) or 1
    width, height = 60, 200
    bars = []
    for i, count in enumerate(counts):
        h = height * count / top
        label = f"{i * 10}–{i * 10 + 10}" if i < BINS - 1 else "90–100"
        bars.append(Bar(label, count, str(count), x=40 + i * width, y=20 + height - h, width=width - 8, height=h))
    return bars, top


def _horizontal(items: list[tuple[str, float, str]], scale: float) -> list[Bar]:
    return [Bar(label, value, text, x=330, y=10 + i * 26, width=max(0.0, 400 * value / scale), height=18)
            for i, (label, value, text) in enumerate(items)]


def _criteria(records: list[SubmissionRecord]) -> list[Bar]:
    order: list[str] = []
    titles: dict[str, str] = {}
    passed: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    for record in records:
        for exercise in record.report.exercises if record.report else ():
            for criterion in exercise.criteria:
                key = criterion.criterion_id
                if key not in titles:
                    order.append(key)
                    titles[key] = f"{exercise.exercise_id} {criterion.title}"
                if criterion.status is CriterionStatus.UNGRADED:
                    continue
                decided[key] += 1
                passed[key] += criterion.status is CriterionStatus.PASSED
    items = []
    for key in order:
        rate = passed[key] / decided[key] if decided[key] else 0.0
        text = f"{rate:.0%} ({passed[key]}/{decided[key]})" if decided[key] else "ungraded"
        title = safe_text(titles[key], one_line=True, limit=300)
        items.append((title if len(title) <= 46 else title[:45] + "…", rate, f"{text} · {title}"))
    return _horizontal(items, 1.0)


def _flags(records: list[SubmissionRecord], baseline: HandoutBaseline | None) -> list[Flag]:
    flags = []
    for record in records:
        report = record.report
        if report is None:
            flags.append(Flag(record.student_id, "could not grade", record.reason or ""))
            continue
        if record.status is SubmissionStatus.INCOMPLETE:
            ungraded = [c.criterion_id for ex in report.exercises for c in ex.criteria
                        if c.status is CriterionStatus.UNGRADED]
            flags.append(Flag(record.student_id, "incomplete",
                              f"grader failed on {', '.join(ungraded)}: total is a lower bound"))
        if report.needs_review:
            flags.append(Flag(record.student_id, "flaky", "; ".join(report.needs_review)))
        diff = report.diff
        if diff and (diff.overall_similarity >= REFERENCE_SIMILARITY or diff.near_copy_files):
            shown = diff.near_copy_files[:6]
            more = len(diff.near_copy_files) - len(shown)
            files = ", ".join(shown) + (f" and {more} more" if more > 0 else "") or "-"
            flags.append(Flag(record.student_id, "near-copy of the reference",
                              f"overall similarity {diff.overall_similarity:.0%}; near-copied files: {files}"))
    prints = {r.student_id: r.fingerprint for r in records if r.report is not None}
    for pair in near_copies(prints, handout=baseline.fingerprint if baseline else None):
        for student, other in ((pair.first, pair.second), (pair.second, pair.first)):
            flags.append(Flag(student, "near-copy of another submission",
                              f"src/api code {pair.similarity:.0%} alike (Jaccard of line shingles) with {other}"))
    return sorted(flags, key=lambda f: (f.student_id, f.kind))


def _baseline_note(baseline: HandoutBaseline | None) -> str:
    if baseline is None:
        return ("Handout baseline guessed: code shared by most submissions was taken as the handout, which hides "
                "copies of one shared solution; give grade batch --handout REPO (or the rubric's handout:).")
    at = f" at {baseline.commit_sha[:12]}" if baseline.commit_sha else ""
    return f"Handout baseline: {baseline.source}{at}; its code is ignored."


def summarise(records: list[SubmissionRecord], baseline: HandoutBaseline | None = None,
              generated_at: datetime | None = None) -> Summary:
    graded = [r.report for r in records if r.report is not None]
    percents = [100 * r.points / r.max_points if r.max_points else 0.0 for r in graded]
    histogram, top = _histogram(percents)
    band_counts = Counter(r.band for r in graded)
    # bands from the best-scoring to the worst, by their best total
    best = {band: max(r.points for r in graded if r.band == band) for band in band_counts}
    bands = _horizontal([(band, count, str(count)) for band, count in
                         sorted(band_counts.items(), key=lambda item: -best[item[0]])],
                        max(band_counts.values(), default=1))
    statuses = Counter(r.status.value for r in records)
    points = sorted(r.points for r in graded)
    summary = Summary(
        generated_at=(generated_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        total=len(records),
        statuses={s.value: statuses.get(s.value, 0) for s in SubmissionStatus},
        histogram=histogram, histogram_max=top,
        criteria=_criteria(records), bands=bands, flags=_flags(records, baseline),
        versions=sorted({f"rubric {r.rubric_name} {r.rubric_version}, grader {r.grader_version}"
                         for r in records}),
        baseline=_baseline_note(baseline),
    )
    if points:
        middle = len(points) // 2
        median = points[middle] if len(points) % 2 else (points[middle - 1] + points[middle]) / 2
        summary.mean, summary.median = f"{sum(points) / len(points):.1f}", f"{median:.1f}"
    return summary


def _finalize(value: object) -> object:
    return safe_text(value, limit=2000) if isinstance(value, str) else ("" if value is None else value)


_ENV = html_environment(_finalize)


def render_summary(records: list[SubmissionRecord], title: str = "Batch summary",
                   baseline: HandoutBaseline | None = None, generated_at: datetime | None = None) -> str:
    return _ENV.get_template("summary.html.j2").render(summary=summarise(records, baseline, generated_at),
                                                       title=title)
