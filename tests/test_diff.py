"""diff_submission on small trees standing for starter, reference and submission."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.diff import diff_submission
from grader.errors import UsageError

SETTINGS = "src/api/config/settings.py"
VALIDATOR = "src/api/config/env_validator.py"
LLM = "src/api/services/llm.py"
ENV = ".env.example"

# Long enough that one edited line leaves a ratio near 0.95.
REFERENCE_VALIDATOR = "".join(f"def check_{i}(value):\n    return value > {i}\n" for i in range(30))
STARTER_SETTINGS = "SECRET = 'your-secret-key-change-in-production'\nDEBUG = True\n"
STARTER_LLM = "".join(f"line_{i} = {i}\n" for i in range(20))


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.fixture
def starter(tmp_path) -> Path:
    return tree(tmp_path / "starter", {SETTINGS: STARTER_SETTINGS, LLM: STARTER_LLM})


@pytest.fixture
def reference(tmp_path) -> Path:
    return tree(tmp_path / "reference", {
        SETTINGS: "import os\nSECRET = os.environ['JWT_SECRET_KEY']\n",
        VALIDATOR: REFERENCE_VALIDATOR,
        LLM: STARTER_LLM,
        ENV: "JWT_SECRET_KEY=\nCORS_ORIGINS=\n",
    })


EXERCISES = {"ex1": [VALIDATOR, ENV, SETTINGS], "ex3": [LLM]}


def by_path(report):
    return {f.path: f for e in report.exercises for f in e.files}


def test_states_relative_to_the_starter(tmp_path, starter, reference):
    submission = tree(tmp_path / "sub", {
        SETTINGS: "import os\nSECRET = os.environ.get('JWT_SECRET_KEY')\n",
        VALIDATOR: "def validate():\n    pass\n",
        LLM: STARTER_LLM,
    })
    files = by_path(diff_submission(submission, reference, starter, EXERCISES))
    assert {p: f.state for p, f in files.items()} == {
        VALIDATOR: "added", ENV: "missing", SETTINGS: "changed", LLM: "unchanged",
    }
    assert files[ENV].exists is False and files[ENV].similarity_to_reference is None
    assert files[VALIDATOR].lines == 2
    assert files[LLM].similarity_to_reference == 1.0
    assert not any(f.near_copy for f in files.values())  # untouched LLM file is no copy


def test_without_starter_present_files_are_added(tmp_path, reference):
    submission = tree(tmp_path / "sub", {SETTINGS: "x = 1\n"})
    files = by_path(diff_submission(submission, reference, None, {"ex1": [SETTINGS, ENV]}))
    assert (files[SETTINGS].state, files[ENV].state) == ("added", "missing")


def test_near_copy_is_flagged_even_reindented(tmp_path, starter, reference):
    copied = REFERENCE_VALIDATOR.replace("    return value > 7", "        return value >= 7")
    copied = copied.replace("\n", "\n\n")  # blank lines and indentation do not hide a copy
    submission = tree(tmp_path / "sub", {VALIDATOR: copied, LLM: STARTER_LLM})
    report = diff_submission(submission, reference, starter, EXERCISES)
    validator = by_path(report)[VALIDATOR]
    assert 0.95 <= validator.similarity_to_reference < 1.0
    assert validator.near_copy
    assert report.near_copy_files == (VALIDATOR,)
    assert diff_submission(submission, reference, starter, EXERCISES,
                           near_copy_threshold=0.999).near_copy_files == ()


def test_overall_similarity_weighs_src_api_python_files(tmp_path, starter, reference):
    submission = tree(tmp_path / "sub", {
        LLM: STARTER_LLM,  # 20 identical lines
        SETTINGS: "a = 1\nb = 2\n",  # 2 lines sharing nothing with the reference's 2
        "src/api/only_mine.py": "z = 0\n",  # not in the reference: not counted
    })
    report = diff_submission(submission, reference, starter, EXERCISES)
    assert report.overall_similarity == pytest.approx(40 / 44)


def test_binary_and_undecodable_files_do_not_crash(tmp_path, starter, reference):
    submission = tree(tmp_path / "sub", {
        ENV: b"\x00\xff\xfe binary \x89PNG\r\n\x1a\n",
        SETTINGS: b"SECRET = '\xe9t\xe9'\n",  # latin-1, not UTF-8
        "src/api/blob.py": b"\x00\x01\x02",
    })
    report = diff_submission(submission, reference, starter, EXERCISES)
    files = by_path(report)
    assert files[ENV].exists and files[ENV].state == "added"
    assert files[SETTINGS].state == "changed"
    assert 0.0 <= report.overall_similarity <= 1.0


def test_symlinks_are_never_followed(tmp_path, starter, reference):
    secret = tmp_path / "outside.py"
    secret.write_text(REFERENCE_VALIDATOR)
    submission = tree(tmp_path / "sub", {})
    (submission / "src/api/config").mkdir(parents=True)
    (submission / VALIDATOR).symlink_to(secret)
    (submission / ".env.example").symlink_to(reference / ENV)
    report = diff_submission(submission, reference, starter, EXERCISES)
    files = by_path(report)
    assert files[VALIDATOR].state == "missing" and files[ENV].state == "missing"
    assert report.near_copy_files == ()


def test_paths_leaving_the_repository_are_refused(tmp_path, starter, reference):
    with pytest.raises(UsageError):
        diff_submission(tmp_path, reference, starter, {"ex1": ["../etc/passwd"]})
