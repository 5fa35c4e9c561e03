"""The fixture family: built from one source of truth, as real git repositories, deterministic,
and every gradable fixture has an expected outcome for every catalogue check."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fixtures import build
from fixtures import manifest as fx_manifest
from fixtures.hostile import FORGED_EXERCISE
from fixtures.near_misses import NEAR_MISSES
from grader.checkout import remove_tree
from grader.checks import CHECKS
from grader.scenarios import static

HAVE_REFERENCE = (build.DEFAULT_REFERENCE / "src" / "api" / "main.py").is_file()
needs_reference = pytest.mark.skipif(not HAVE_REFERENCE, reason="reference_solution/ is not written yet")


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=repo, env=env,
                          capture_output=True, text=True, check=check)


def log_subjects(repo: Path) -> list[str]:
    out = git(repo, "log", "--reverse", "--format=%s", check=False)
    return out.stdout.splitlines() if out.returncode == 0 else []


def head(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", rev).stdout.strip()


def tracked(repo: Path) -> dict[str, str]:
    """path -> git mode of every tracked file at HEAD."""
    out = git(repo, "ls-tree", "-r", "-z", "HEAD").stdout
    result = {}
    for item in filter(None, out.split("\0")):
        meta, path = item.split("\t", 1)
        result[path] = meta.split()[0]
    return result


MANIFEST = fx_manifest.load_manifest()


def _remove_deep_trees(built: dict[str, Path]) -> None:
    """pytest removes old temporary folders recursively, and fails on a tree deeper than Python's
    recursion limit (in this machine's shared /tmp/pytest-of-<user>): such a fixture is removed
    here, without recursion."""
    for repo in built.values():
        remove_tree(repo / "src" / "api" / "vendored")


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Iterator[dict[str, Path]]:
    if not HAVE_REFERENCE:
        pytest.skip("reference_solution/ is not written yet")
    fixtures = build.build_all(tmp_path_factory.mktemp("fixtures"))
    yield fixtures
    _remove_deep_trees(fixtures)


# --------------------------------------------------------------------------- manifest

def test_manifest_lists_exactly_the_built_family():
    assert list(MANIFEST.fixtures) == build.fixture_names()


@pytest.mark.parametrize("name", build.fixture_names())
def test_manifest_commits_match_the_builder(name):
    assert list(MANIFEST.fixtures[name].commits) == build.commit_messages(name)


@pytest.mark.parametrize("name", build.fixture_names())
def test_every_check_has_an_expected_outcome(name):
    expectation = MANIFEST.fixtures[name]
    if expectation.could_not_grade:
        assert expectation.could_not_grade_reason
        assert fx_manifest.expected_checks(name) == {}
        return
    outcomes = fx_manifest.expected_checks(name)
    assert set(outcomes) == set(CHECKS), set(CHECKS) ^ set(outcomes)
    assert set(outcomes.values()) <= {"passed", "failed", "not_gradable"}


def test_family_baseline():
    checks = fx_manifest.expected_checks
    assert set(checks("reference").values()) == {"passed"}
    # The starter passes nothing: every check fails, or is not gradable for lack of its prerequisite.
    assert set(checks("starter").values()) == {"failed", "not_gradable"}
    assert MANIFEST.fixtures["empty-repo"].could_not_grade


def test_expected_points_follow_the_rubric():
    rubric_path = fx_manifest.DEFAULT_RUBRIC
    if not rubric_path.is_file():
        pytest.skip("no rubric yet")
    rubric = fx_manifest.load_rubric(rubric_path)
    assert fx_manifest.expected_total("reference", rubric) == rubric.max_points == 100
    assert fx_manifest.expected_total("second-solution", rubric) == 100
    assert fx_manifest.expected_total("starter", rubric) == 0
    assert set(fx_manifest.expected_checks("handout").values()) == {"failed"}  # it never starts
    assert fx_manifest.expected_points("empty-repo", rubric) is None
    for ex_id, exercise in rubric.exercises.items():
        points = fx_manifest.expected_points(f"all-but-{ex_id}", rubric)
        assert points[ex_id] < exercise.points  # every all-but fixture loses points on its own exercise


def test_every_criterion_has_exactly_one_near_miss():
    rubric = fx_manifest.load_rubric(fx_manifest.DEFAULT_RUBRIC)
    criteria = [criterion.id for exercise in rubric.exercises.values() for criterion in exercise.criteria]
    assert sorted(miss.criterion for miss in NEAR_MISSES) == sorted(criteria)


@pytest.mark.parametrize("miss", NEAR_MISSES, ids=lambda miss: miss.name)
def test_a_near_miss_loses_its_criterion_and_nothing_else(miss):
    """Its criterion loses points; every other criterion keeps all of them, unless the manifest
    says the grader cannot judge one of its checks without the broken behaviour."""
    rubric = fx_manifest.load_rubric(fx_manifest.DEFAULT_RUBRIC)
    outcomes = fx_manifest.expected_checks(miss.name)
    for exercise in rubric.exercises.values():
        for criterion in exercise.criteria:
            earned = all(outcomes[check] == "passed" for check in criterion.checks)
            if criterion.id == miss.criterion:
                assert not earned, criterion.id
            elif not earned:
                assert {outcomes[check] for check in criterion.checks} - {"passed"} == {"not_gradable"}, criterion.id
                assert criterion.id.split(".")[0] == miss.criterion.split(".")[0], criterion.id


def test_points_function_on_the_documented_format():
    rubric = type("R", (), {"exercises": [
        {"id": "ex1", "criteria": [
            {"points": 6, "checks": ["a", "b", "c"], "partial": "proportional"},
            {"points": 4, "checks": ["a", "d"], "partial": "all"},
        ]},
    ]})()
    outcomes = {"a": "passed", "b": "failed", "c": "not_gradable", "d": "passed"}
    assert fx_manifest.points_from_outcomes(rubric, outcomes) == {"ex1": 6.0}


# --------------------------------------------------------------------------- the built repos

@needs_reference
@pytest.mark.parametrize("name", build.fixture_names())
def test_fixture_builds_with_the_manifest_history(built, name):
    repo = built[name]
    assert (repo / ".git").is_dir()
    assert log_subjects(repo) == list(MANIFEST.fixtures[name].commits)
    if MANIFEST.fixtures[name].commits:
        assert git(repo, "status", "--porcelain").stdout == ""  # a clean, committed work tree
        author = git(repo, "log", "-1", "--format=%an <%ae> %aI").stdout.strip()
        assert author.startswith(f"{build.AUTHOR_NAME} <{build.AUTHOR_EMAIL}>")


@needs_reference
def test_building_twice_gives_the_same_shas(built, tmp_path):
    again = build.build_all(tmp_path / "again")
    try:
        for name, repo in built.items():
            if MANIFEST.fixtures[name].commits:
                assert head(again[name]) == head(repo), name
    finally:
        _remove_deep_trees(again)


@needs_reference
def test_starter_holds_only_exam_files(built):
    files = tracked(built["starter"])
    handout_tests = {rel for rel in build.read_plain_tree(build.DEFAULT_HANDOUT) if rel.startswith("tests/")}
    # the handout's tests/, never the reference's own suite
    assert {p for p in files if p.startswith("tests/")} == handout_tests != set()
    assert "IMPLEMENTATION.md" not in files
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in files)
    assert "src/api/main.py" in files


def _api_service(repo: Path) -> dict:
    import yaml

    return yaml.safe_load((repo / "docker-compose.yml").read_text())["services"]["api"]


@needs_reference
def test_starter_is_the_handout_in_every_file_a_check_or_the_build_reads(built):
    """CONTRACT.md's facts about the handout, read from the starter as the grader reads them."""
    starter = built["starter"]
    value, _ = static.env_example_value(starter, "JWT_SECRET_KEY")
    assert value == "your-secure-random-key-at-least-32-characters-long" and len(value) == 50
    example = (starter / ".env.example").read_text()
    for line in ("OPENAI_API_KEY=sk-your-openai-api-key", "GROQ_API_KEY=gsk-your-groq-api-key",
                 "GEMINI_API_KEY=your-gemini-api-key", "OPENROUTER_API_KEY=sk-or-your-openrouter-api-key",
                 "MUST be at least 32 characters", "Generate with: openssl rand -hex 32"):
        assert line in example, line
    api = _api_service(starter)
    assert api["build"] == {"context": ".", "dockerfile": "./src/api/Dockerfile"}
    assert ".:/app" in api["volumes"] and api["working_dir"] == "/app/src/api"
    dockerfile = (starter / "src/api/Dockerfile").read_text().splitlines()
    for line in ("FROM python:3.11-slim", "WORKDIR /app", "COPY src/api/requirements.txt .",
                 "COPY test-requirements.txt .", "COPY src/api/ .", "COPY tests/ ./tests/",
                 'CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]'):
        assert line in dockerfile, line
    assert (starter / "test-requirements.txt").is_file()
    settings = ast.parse((starter / "src/api/config/settings.py").read_text())
    constants = {node.targets[0].id: node.value.value for node in settings.body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}
    assert constants["JWT_SECRET_KEY"] == "your-secret-key-change-in-production"
    findings, unreadable = static.print_calls(starter)
    assert len(findings) == 10 and not unreadable


@needs_reference
def test_every_fix_keeps_the_handout_layout_and_ex1_fixes_the_suggested_key(built):
    for name in ("reference", "only-ex1", "all-but-ex2"):
        assert _api_service(built[name])["build"]["context"] == ".", name
        assert (built[name] / "test-requirements.txt").is_file() and (built[name] / "tests").is_dir(), name
    # The fix commit changes the key .env.example suggests to one the fixed service refuses.
    assert static.env_example_value(built["only-ex1"], "JWT_SECRET_KEY")[0] == ""
    assert static.env_example_value(built["only-ex2"], "JWT_SECRET_KEY")[0] != ""


@needs_reference
def test_handout_does_not_start_and_names_the_missing_module(built):
    api = built["handout"] / "src/api"
    for module in ("config/logging_config.py", "config/env_validator.py", "middleware/request_id.py",
                   "middleware/request_limits.py", "middleware/shutdown.py", "services/health_checker.py"):
        assert not (api / module).exists(), module
    started = subprocess.run([sys.executable, "-c", "import main"], cwd=api, capture_output=True, text=True,
                             timeout=120)
    assert started.returncode != 0
    assert "No module named 'config.logging_config'" in started.stderr
    system = subprocess.run([sys.executable, "-c", "import routers.system"], cwd=api, capture_output=True,
                            text=True, timeout=120)
    assert "NameError: name 'DependencyCheck' is not defined" in system.stderr
    app = ast.parse((api / "config/app.py").read_text())
    imported = {node.module for node in ast.walk(app) if isinstance(node, ast.ImportFrom)}
    assert {"config.env_validator", "middleware.request_id", "middleware.request_limits", "middleware.shutdown",
            "services.health_checker"} <= imported


@needs_reference
def test_second_solution_rewrites_src_api_in_its_own_layout(built):
    repo = built["second-solution"]
    assert head(repo, "HEAD~2") == head(built["starter"])
    files = tracked(repo)
    assert not any(p.startswith(("src/api/config/", "src/api/routers/", "src/api/services/")) for p in files)
    expected = build.read_plain_tree(build.DEFAULT_SECOND)
    for rel, entry in expected.items():
        assert (repo / rel).read_bytes() == entry.data, rel
    assert _api_service(repo)["build"]["context"] == "./src/api"
    requirements = (repo / "src/api/requirements.txt").read_text()
    assert "openai" not in requirements and "structlog" in requirements and "tenacity" in requirements


@needs_reference
@pytest.mark.parametrize("miss", NEAR_MISSES, ids=lambda miss: miss.name)
def test_a_near_miss_is_the_second_solution_plus_its_edits(built, miss):
    repo = built[miss.name]
    assert head(repo, "HEAD~1") == head(built["second-solution"])
    changed = set(git(repo, "diff", "--name-only", "HEAD~1", "HEAD").stdout.split())
    assert changed == {edit.path for edit in miss.edits}
    for rel in changed:
        text = (repo / rel).read_text()
        assert all(edit.new in text for edit in miss.edits if edit.path == rel)
        if rel.endswith(".py"):
            compile(text, rel, "exec")


@needs_reference
def test_reference_fixture_is_the_reference_solution(built):
    repo = built["reference"]
    expected = build.read_reference() | build.read_plain_tree(build.DEFAULT_HANDOUT)
    files = tracked(repo)
    assert set(files) == set(expected)
    for rel, entry in expected.items():
        assert (repo / rel).read_bytes() == entry.data, rel


@needs_reference
def test_histories_share_their_common_commits(built):
    starter = head(built["starter"])
    for ex in build.EXERCISES:
        assert head(built[f"only-{ex}"], "HEAD~1") == starter
        assert head(built[f"all-but-{ex}"], "HEAD~5") == starter
    reference = head(built["reference"])
    second = head(built["second-solution"])
    for name, spec in build.FIXTURES.items():
        if spec.mutation is not None:  # broken, hostile and near misses = their base fixture + one commit
            base = (second if spec.second else reference if spec.fixes == build.EXERCISES
                    else head(built[f"all-but-{FORGED_EXERCISE}"]))
            assert head(built[name], "HEAD~1") == base, name
    assert log_subjects(built["handout"]) == ["starter"] and head(built["handout"]) != starter


@needs_reference
def test_mutations_change_what_they_say(built):
    def changed(name):
        return set(git(built[name], "diff", "--name-only", "-z", "--no-renames", "HEAD~1", "HEAD")
                   .stdout.split("\0")) - {""}

    assert changed("broken-requirement") == {"src/api/requirements.txt"}
    assert "this-package-does-not-exist-llmops==9.9.9" in (
        built["broken-requirement"] / "src/api/requirements.txt").read_text()
    for name in ("broken-import", "never-binds", "exits-at-once", "ignores-sigterm", "floods-stdout"):
        assert changed(name) == {"src/api/main.py"}, name
        compile((built[name] / "src/api/main.py").read_text(), name, "exec")  # still valid Python
    main = (built["broken-import"] / "src/api/main.py").read_text()
    assert f"from {build.MISSING_MODULE} import" in main
    assert not (built["broken-import"] / "src/api/middleware/request_tracing.py").exists()
    assert "_sys.exit(3)" in (built["exits-at-once"] / "src/api/main.py").read_text()
    assert "SIG_IGN" in (built["ignores-sigterm"] / "src/api/main.py").read_text()

    (router,) = changed("broken-syntax")
    with pytest.raises(SyntaxError):
        compile((built["broken-syntax"] / router).read_text(), router, "exec")

    no_src = built["no-src-api"]
    assert not (no_src / "src" / "api").exists()
    assert not any(p.startswith("src/api/") for p in tracked(no_src))
    assert (no_src / "app" / "main.py").is_file()

    odd = tracked(built["odd-files"])
    assert build.ODD_NAME in odd
    latin1 = (built["odd-files"] / "src/api/notes-latin1.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        latin1.decode("utf-8")
    assert b"\0" in (built["odd-files"] / "src/api/static/favicon.png").read_bytes()
    compile((built["odd-files"] / "src/api/utils/legacy_labels.py").read_bytes(), "legacy", "exec")


@needs_reference
def test_symlink_escape_keeps_links_as_links(built):
    repo = built["symlink-escape"]
    files = tracked(repo)
    for rel, target in build.SYMLINKS.items():
        assert files[rel] == "120000", rel  # committed as a link, not as the target's content
        assert (repo / rel).is_symlink()
        assert os.readlink(repo / rel) == target


@needs_reference
def test_empty_repo_has_no_commit(built):
    repo = built["empty-repo"]
    assert (repo / ".git").is_dir()
    assert git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0
    assert git(repo, "rev-list", "--all").stdout.strip() == ""
    assert [p.name for p in repo.iterdir()] == [".git"]


# --------------------------------------------------------------------------- the builder itself

def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def small_inputs(tmp_path) -> tuple[Path, Path]:
    """A throwaway reference and overlays exercising every overlay rule."""
    ref, defects = tmp_path / "ref", tmp_path / "defects"
    _tree(ref, {
        ".env.example": "JWT_SECRET_KEY=\n",
        "src/api/main.py": '"""Entry."""\n\nfrom config.settings import settings\nfrom fastapi import FastAPI\n\napp = FastAPI()\n',
        "src/api/config/settings.py": "SECRET = None\n",
        "src/api/middleware/request_id.py": "class RequestIDMiddleware: ...\n",
        "src/api/routers/llm.py": "from fastapi import APIRouter\n\nrouter = APIRouter()\n",
        "src/api/requirements.txt": "fastapi\n",
        "tests/test_ref.py": "def test(): pass\n",
        "IMPLEMENTATION.md": "notes\n",
        "src/api/config/__pycache__/settings.cpython-311.pyc": "junk",
    })
    _tree(defects, {
        "ex1/src/api/config/settings.py": 'SECRET = "changeme"\n',
        "ex1/REMOVE": "# the handout has no .env.example\n.env.example\n",
        "ex3/src/api/utils/stub.py": "# only in the handout\n",
        "ex6/REMOVE": "src/api/middleware/request_id.py\n",
    })
    for ex in build.EXERCISES:
        (defects / ex).mkdir(exist_ok=True)
    return ref, defects


def test_overlays_are_applied_and_reverted(small_inputs, tmp_path):
    inputs = build.load_inputs(*small_inputs)
    starter = build.materialize("starter", tmp_path / "s", inputs)
    files = tracked(starter)
    assert ".env.example" not in files and "src/api/middleware/request_id.py" not in files
    assert "src/api/utils/stub.py" in files and "tests/test_ref.py" not in files
    assert (starter / "src/api/config/settings.py").read_text() == 'SECRET = "changeme"\n'

    only1 = build.materialize("only-ex1", tmp_path / "o1", inputs)
    assert (only1 / "src/api/config/settings.py").read_text() == "SECRET = None\n"
    assert ".env.example" in tracked(only1) and "src/api/middleware/request_id.py" not in tracked(only1)

    reference = build.materialize("reference", tmp_path / "r", inputs)
    assert set(tracked(reference)) == set(inputs.reference)  # the stub is gone, removed files back
    assert log_subjects(reference) == build.commit_messages("reference")


def test_cache_reuses_and_rebuilds_on_input_change(small_inputs, tmp_path):
    ref, defects = small_inputs
    cache = tmp_path / "cache"
    first = build.build_fixture("only-ex1", cache, build.load_inputs(ref, defects))
    stamp = first / ".git" / build.STAMP_NAME
    before = (head(first), stamp.stat().st_mtime_ns)
    again = build.build_fixture("only-ex1", cache, build.load_inputs(ref, defects))
    assert again == first and (head(again), stamp.stat().st_mtime_ns) == before

    (defects / "ex1/src/api/config/settings.py").write_text('SECRET = "secret"\n')
    rebuilt = build.build_fixture("only-ex1", cache, build.load_inputs(ref, defects))
    assert head(rebuilt) != before[0]

    (rebuilt / "src/api/main.py").write_text("edited by a test\n")  # a dirty cache is not reused
    fresh = build.build_fixture("only-ex1", cache, build.load_inputs(ref, defects))
    assert git(fresh, "status", "--porcelain").stdout == ""


def test_overlapping_overlays_are_refused(small_inputs):
    ref, defects = small_inputs
    _tree(defects, {"ex2/src/api/config/settings.py": "SECRET = 1\n"})
    with pytest.raises(build.FixtureError, match="settings.py"):
        build.load_inputs(ref, defects)


def test_materialize_refuses_to_replace_a_foreign_directory(small_inputs, tmp_path):
    foreign = tmp_path / "precious"
    _tree(foreign, {"keep.txt": "mine"})
    with pytest.raises(build.FixtureError, match="not a fixture build"):
        build.materialize("starter", foreign, build.load_inputs(*small_inputs))
    assert (foreign / "keep.txt").read_text() == "mine"


def test_cli_builds_one_fixture(tmp_path):
    if not HAVE_REFERENCE:
        pytest.skip("reference_solution/ is not written yet")
    dest = tmp_path / "one"
    assert build.main(["only-ex3", str(dest)]) == 0
    assert log_subjects(dest) == build.commit_messages("only-ex3")
    assert build.main(["no-such-fixture", str(tmp_path / "x")]) == 1


@needs_reference
def test_builders_replacing_one_stale_build_at_once_all_get_it(tmp_path):
    dest = tmp_path / "starter"
    build.materialize("starter", dest)
    stamp = build._stamp_path(dest)
    stamp.write_text(stamp.read_text().replace('"digest": "', '"digest": "stale-'))
    inputs = build.load_inputs()
    with ThreadPoolExecutor(max_workers=4) as pool:
        built = list(pool.map(lambda _: build.materialize("starter", dest, inputs), range(4)))
    assert built == [dest] * 4
    assert build._is_current(dest, "starter", build._fixture_digest(inputs, "starter"))
    assert [p.name for p in tmp_path.iterdir()] == ["starter"]  # no build or stale copy left behind
