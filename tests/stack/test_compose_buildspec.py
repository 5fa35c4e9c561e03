"""Where a submission's image is built from: its own compose file, else the handout's layout;
every path inside the checkout, no link followed. Pure file-system tests, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.stack.base import SubmissionUnrunnable
from grader.stack.compose.buildspec import BuildSpec, build_spec

ROOT_DOCKERFILE = "FROM python:3.11-slim\nWORKDIR /app\nCOPY src/api/requirements.txt .\nCOPY test-requirements.txt .\n" \
                  "COPY src/api/ .\nCOPY tests/ ./tests/\n"
API_DOCKERFILE = "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\nCOPY . .\n"


def _repo(root: Path, dockerfile: str = ROOT_DOCKERFILE, compose: str | None = None,
          compose_name: str = "docker-compose.yml") -> Path:
    api = root / "src" / "api"
    api.mkdir(parents=True)
    (api / "main.py").write_text("app = None\n")
    (api / "requirements.txt").write_text("fastapi\n")
    (api / "Dockerfile").write_text(dockerfile)
    (root / "test-requirements.txt").write_text("pytest\n")
    (root / "tests").mkdir()
    if compose is not None:
        (root / compose_name).write_text(compose)
    return root


def _where(spec: BuildSpec) -> tuple[str, str]:
    return spec.context, spec.dockerfile


def test_the_handouts_compose_file_builds_from_the_root(tmp_path):
    repo = _repo(tmp_path, compose="services:\n  api:\n    build:\n      context: .\n"
                                   "      dockerfile: ./src/api/Dockerfile\n    working_dir: /app/src/api\n")
    spec = build_spec(repo)
    assert _where(spec) == ("", "src/api/Dockerfile")
    assert spec.dockerfile_text == ROOT_DOCKERFILE
    assert spec.describe() == "context ., Dockerfile src/api/Dockerfile (services.api.build of its docker-compose.yml)"


def test_a_build_given_as_a_path_is_the_context_with_its_own_dockerfile(tmp_path):
    repo = _repo(tmp_path, API_DOCKERFILE, compose="services:\n  api:\n    build: ./src/api\n")
    assert _where(build_spec(repo)) == ("src/api", "src/api/Dockerfile")


def test_target_args_and_compose_variables_with_defaults_are_taken(tmp_path):
    repo = _repo(tmp_path, compose="services:\n  api:\n    build:\n      context: ${CONTEXT:-.}\n"
                                   "      dockerfile: src/api/${NAME-Dockerfile}\n      target: runtime\n"
                                   "      args: [\"PYTHON=3.11\", \"EMPTY=$UNSET\"]\n")
    spec = build_spec(repo)
    assert (_where(spec), spec.target, spec.args) == (("", "src/api/Dockerfile"), "runtime",
                                                      {"PYTHON": "3.11", "EMPTY": ""})


def test_compose_yaml_is_read_before_docker_compose_yml(tmp_path):
    repo = _repo(tmp_path, API_DOCKERFILE, compose="services:\n  api:\n    build: .\n")
    (repo / "compose.yaml").write_text("services:\n  api:\n    build: src/api\n")
    assert _where(build_spec(repo)) == ("src/api", "src/api/Dockerfile")


@pytest.mark.parametrize(("compose", "reason"), [
    ("services:\n  api:\n    build: ..\n", "the build context of services.api.build of its docker-compose.yml (..) "
                                           "leaves the repository"),
    ("services:\n  api:\n    build: /etc\n", "(/etc) leaves the repository"),
    ("services:\n  api:\n    build:\n      context: .\n      dockerfile: ../../etc/passwd\n",
     "the Dockerfile of services.api.build of its docker-compose.yml (../../etc/passwd) leaves the repository"),
    ("services:\n  api:\n    build: https://example.com/repo.git\n", "is a URL (https://example.com/repo.git)"),
    ("services:\n  api:\n    build: ./nowhere\n", "its build context cannot be used: nowhere is missing"),
])
def test_a_build_path_that_leaves_the_checkout_or_is_missing_is_the_students_failure(tmp_path, compose, reason):
    repo = _repo(tmp_path, compose=compose)
    with pytest.raises(SubmissionUnrunnable) as failure:
        build_spec(repo)
    assert reason in str(failure.value) and "\n" not in str(failure.value)


def test_a_linked_context_dockerfile_or_compose_file_is_refused_without_reading_its_target(tmp_path):
    secret = tmp_path / "outside" / "Dockerfile"
    secret.parent.mkdir()
    secret.write_text("FROM secret-of-the-grader\n")

    linked_context = _repo(tmp_path / "a", compose="services:\n  api:\n    build: ./api-link\n")
    (linked_context / "api-link").symlink_to(secret.parent)
    linked_dockerfile = _repo(tmp_path / "b", compose="services:\n  api:\n    build:\n      context: .\n"
                                                      "      dockerfile: Dockerfile\n")
    (linked_dockerfile / "Dockerfile").symlink_to(secret)
    linked_compose = _repo(tmp_path / "c")
    (linked_compose / "docker-compose.yml").symlink_to(secret)

    reasons = []
    for repo in (linked_context, linked_dockerfile, linked_compose):
        with pytest.raises(SubmissionUnrunnable) as failure:
            build_spec(repo)
        reasons.append(str(failure.value))
    assert reasons == ["its build context cannot be used: api-link is a symlink (not followed)",
                       "its Dockerfile cannot be used: Dockerfile is a symlink (not followed)",
                       "its compose file cannot be used: docker-compose.yml is a symlink (not followed)"]
    assert not any("secret-of-the-grader" in reason for reason in reasons)


def test_without_a_compose_build_the_root_is_the_context_when_it_holds_what_the_dockerfile_copies(tmp_path):
    no_compose = _repo(tmp_path / "a")
    compose_without_api = _repo(tmp_path / "b", compose="services:\n  web:\n    build: .\n")
    broken_compose = _repo(tmp_path / "c", compose="services: [unclosed\n")
    for repo in (no_compose, compose_without_api, broken_compose):
        assert _where(build_spec(repo)) == ("", "src/api/Dockerfile"), repo


def test_without_a_compose_build_src_api_is_the_context_when_the_dockerfile_copies_from_there(tmp_path):
    repo = _repo(tmp_path, API_DOCKERFILE)
    spec = build_spec(repo)
    assert _where(spec) == ("src/api", "src/api/Dockerfile")
    assert spec.origin == "no compose file builds api: src/api holds what its Dockerfile copies"


def test_without_a_compose_build_patterns_count_as_found_when_something_matches(tmp_path):
    repo = _repo(tmp_path, "FROM python:3.11-slim\nCOPY *.txt ./\nCOPY [\"main.py\", \"./\"]\n")
    assert _where(build_spec(repo)) == ("src/api", "src/api/Dockerfile")


def test_without_a_compose_build_or_a_dockerfile_the_reason_says_so(tmp_path):
    repo = _repo(tmp_path)
    (repo / "src" / "api" / "Dockerfile").unlink()
    with pytest.raises(SubmissionUnrunnable, match=r"^no compose file builds api, and src/api/Dockerfile is missing$"):
        build_spec(repo)
