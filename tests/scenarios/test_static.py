"""The static checks read code and files by parsing them, never by grepping (CONTRACT.md pitfalls)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.scenarios import static

HANDOUT_ENV_EXAMPLE = """# JWT secret: MUST be at least 32 characters
# Generate with: openssl rand -hex 32
JWT_SECRET_KEY=your-secure-random-key-at-least-32-characters-long
OPENAI_API_KEY=sk-your-openai-api-key
"""


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("text, value", [
    (HANDOUT_ENV_EXAMPLE, "your-secure-random-key-at-least-32-characters-long"),
    ("JWT_SECRET_KEY=\n", ""),
    ("export JWT_SECRET_KEY='quoted #value'  # a comment\n", "quoted #value"),
    ('JWT_SECRET_KEY="x" \n', "x"),
    ("JWT_SECRET_KEY=abc # generate one\n", "abc"),
    # A set line wins over a commented-out example of it.
    ("# JWT_SECRET_KEY=commented\nJWT_SECRET_KEY=set\n", "set"),
    ("# JWT_SECRET_KEY=only-commented\n", "only-commented"),
])
def test_the_suggested_secret_is_read_as_dotenv_reads_it(tmp_path, text, value):
    found, seen = static.env_example_value(_repo(tmp_path, {".env.example": text}), "JWT_SECRET_KEY")
    assert found == value, seen


def test_a_missing_unlisted_or_linked_env_example_suggests_nothing(tmp_path):
    assert static.env_example_value(tmp_path, "JWT_SECRET_KEY") == (None, ".env.example is missing")
    _repo(tmp_path, {".env.example": "OTHER=1\nJWT_SECRET_KEYS=2\n"})
    assert static.env_example_value(tmp_path, "JWT_SECRET_KEY")[0] is None
    (tmp_path / ".env.example").unlink()
    os.symlink("/etc/passwd", tmp_path / ".env.example")
    assert static.env_example_value(tmp_path, "JWT_SECRET_KEY") == (None, ".env.example is a symlink (not followed)")


def test_print_calls_are_found_by_parsing(tmp_path):
    repo = _repo(tmp_path, {"src/api/main.py": (
        "print('x')\n"
        "# print('a comment')\n"
        "def fingerprint(x):\n    '''print(no)'''\n    return \"print('string')\"\n"
        "obj.print_summary()\n"
        "import builtins\nbuiltins.print(1)\n")})
    findings, unreadable = static.print_calls(repo)
    assert [f.line for f in findings] == [1, 8] and unreadable == []


def test_a_secret_default_is_found_and_a_deny_list_is_not(tmp_path):
    repo = _repo(tmp_path, {"src/api/config/settings.py": (
        'JWT_SECRET_KEY: str = "your-secret-key-change-in-production"\n'
        'INSECURE_SECRETS = {"secret", "changeme"}\n'
        'key = os.getenv("JWT_SECRET_KEY")\n')})
    assert [f.line for f in static.hardcoded_secrets(repo)] == [1]
