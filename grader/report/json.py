"""The report as JSON (the ``GradeReport`` dump) and the JSON Schema it follows.

The committed schema file is generated from the model; regenerate it with
``uv run python -m grader.report.json`` after changing grader/models.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.models import GradeReport

SCHEMA_PATH = Path(__file__).parent / "schema" / "grade-report.v1.json"


def render_json(report: GradeReport) -> str:
    """The report as indented JSON, ``schema_version`` included."""
    return report.model_dump_json(indent=2) + "\n"


def json_schema() -> str:
    """The JSON Schema of ``GradeReport``, as the committed file must read."""
    return json.dumps(GradeReport.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
