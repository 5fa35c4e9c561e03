"""Text made safe for the learning platforms: no escapes or controls, valid XML, bounded size."""

from __future__ import annotations

import re

from grader.models import REPRODUCE, CheckResult, CriterionScore
from grader.report.sanitize import clean

# Characters XML 1.0 cannot hold at all (clean() already removed the other controls).
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
MAX_OUTPUT = 4000


def safe_text(text: str | None, *, one_line: bool = False, limit: int = MAX_OUTPUT) -> str:
    """``text`` cleaned (see ``sanitize.clean``), XML-valid and at most ``limit`` characters."""
    result = _NOT_XML.sub("", clean(text or "", one_line=one_line))
    return result if len(result) <= limit else result[: limit - 14] + " …(truncated)"


def check_output(check: CheckResult) -> str:
    """A check's verdict, reason and evidence summaries, as plain text, with the commands that
    replay it on the student's own stack."""
    lines = [f"[{check.status.value}] {check.check_id}: {check.reason}"]
    for evidence in check.evidence:
        lines.append(f"  - {evidence.kind}: {evidence.summary}")
        if evidence.kind == REPRODUCE:
            lines += [f"      {line}" for line in evidence.detail.splitlines()]
    return "\n".join(lines)


def criterion_output(criterion: CriterionScore) -> str:
    """Why points were lost, the hint, then each check: what a student reads under a test."""
    parts: list[str] = []
    if criterion.status.value == "ungraded":
        parts.append("NOT GRADED YET: the grader failed on this criterion (not your fault, not a 0); "
                     "an instructor will re-grade it.")
    parts += [f"- {reason}" for reason in criterion.reasons]
    if criterion.hint and criterion.points != criterion.max_points:
        parts.append(f"Hint: {criterion.hint}")
    parts += [check_output(check) for check in criterion.checks
              if not check.status.credited]
    return safe_text("\n".join(parts))
