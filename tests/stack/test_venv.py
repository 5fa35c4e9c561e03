"""ensure_venv against the real uv and PyPI; the unreachable index is a closed local port."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.errors import MachineError
from grader.stack.venv import _uv_env, ensure_venv, names_package_source, refers_to_local_files, requirements_problem

pytestmark = pytest.mark.slow


def _requirements(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    return path


def test_installs_then_reuses_the_cached_environment(tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "six==1.16.0\n")
    cache = tmp_path / "cache"

    first = ensure_venv(requirements, cache)
    second = ensure_venv(requirements, cache)

    assert first.ok and not first.cached and "six==1.16.0" in first.log
    assert second.ok and second.cached and second.python == first.python
    assert second.seconds < 2
    version = subprocess.run(
        [str(second.python), "-c", "import six; print(six.__version__)"], capture_output=True, text=True, check=True
    ).stdout
    assert version.strip() == "1.16.0"
    key = first.python.parent.parent.name
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [key, f"{key}.log"]
    # Compiled when built, so an API start reads bytecode it may not write.
    assert list((first.python.parent.parent / "lib").glob("python*/site-packages/__pycache__/six.*.pyc"))


def test_concurrent_callers_share_one_build(tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "six==1.16.0\n")
    cache = tmp_path / "cache"

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: ensure_venv(requirements, cache), range(3)))

    assert all(r.ok for r in results)
    assert sorted(r.cached for r in results) == [False, True, True]
    assert len({r.python for r in results}) == 1


def test_unresolvable_requirement_is_the_students_fault(tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "six==1.16.0\nzz-grader-no-such-package-4f1c==1.0\n")

    result = ensure_venv(requirements, tmp_path / "cache")

    assert not result.ok and result.python is None
    assert "zz-grader-no-such-package-4f1c" in (result.reason or "")
    assert "No solution found" in result.log
    assert not any(p.is_dir() for p in (tmp_path / "cache").iterdir())  # nothing half-built is kept


def test_unreachable_index_is_the_machines_fault(tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "six==1.16.0\n")
    env = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_HTTP_RETRIES": "0", "UV_NO_CACHE": "1"}

    with pytest.raises(MachineError, match="unreachable"):
        ensure_venv(requirements, tmp_path / "cache", extra_env=env)


def test_an_unreachable_index_the_requirements_name_is_the_students_fault(tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "--index-url http://127.0.0.1:9/simple\nsix==1.16.0\n")

    result = ensure_venv(requirements, tmp_path / "cache", extra_env={"UV_HTTP_RETRIES": "0"})

    assert not result.ok
    assert (result.reason or "").startswith("a package source the requirements name could not be reached"), result.reason


def test_checkout_configuration_of_uv_is_ignored(tmp_path: Path) -> None:
    """A uv.toml beside the requirements (and a pyproject's [tool.uv]) pointing at a dead index
    would fail the install if uv read it: the install ignores both."""
    (tmp_path / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.uv]\nindex-url = "http://127.0.0.1:9/simple"\n')
    requirements = _requirements(tmp_path, "six==1.16.0\n")

    result = ensure_venv(requirements, tmp_path / "cache")

    assert result.ok, result.log


def test_requirements_behind_a_link_out_of_the_checkout_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "outside"
    secret.write_text("GRADER_SECRET=do-not-quote-me\n")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "requirements.txt").symlink_to(secret)

    result = ensure_venv(checkout / "requirements.txt", tmp_path / "cache", source_root=checkout)

    assert not result.ok and result.reason == "requirements file requirements.txt is a symlink (not followed)"


def test_an_install_that_outlives_its_timeout_is_the_machines_fault(tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "six==1.16.0\n")

    with pytest.raises(MachineError, match="did not finish in time"):
        ensure_venv(requirements, tmp_path / "cache", timeout_s=0.05)

    assert not any(p.is_dir() for p in (tmp_path / "cache").iterdir())


def test_missing_or_unparseable_requirements_are_the_students_fault(tmp_path: Path) -> None:
    missing = ensure_venv(tmp_path / "requirements.txt", tmp_path / "cache")
    garbled = ensure_venv(_requirements(tmp_path, "fastapi>=0.100\nnot a ==== requirement\n"), tmp_path / "cache")

    assert not missing.ok and "missing" in (missing.reason or "")
    assert not garbled.ok and "line 2" in (garbled.reason or "")


def test_requirements_problem_accepts_what_pip_accepts(tmp_path: Path) -> None:
    text = (
        "# pinned\n"
        "--index-url https://pypi.org/simple\n"
        "fastapi[all]>=0.100,<1  # web\n"
        "uvicorn==0.30.0 \\\n    --hash=sha256:abc\n"
        "pywin32; sys_platform == 'win32'\n"
        "mypkg @ https://example.org/mypkg-1.0.tar.gz\n"
        "-e ./local\n"
    )
    _requirements(tmp_path, text)
    assert requirements_problem(tmp_path, "requirements.txt") is None


def test_requirements_naming_local_files_are_not_shared_between_checkouts(tmp_path: Path) -> None:
    """Two students' identical ``-r base.txt`` lines name different files: no shared venv."""
    cache = tmp_path / "cache"
    versions = {}
    for student, six in (("a", "1.16.0"), ("b", "1.15.0")):
        checkout = tmp_path / student
        checkout.mkdir()
        (checkout / "base.txt").write_text(f"six=={six}\n")
        result = ensure_venv(_requirements(checkout, "-r base.txt\n"), cache, source_root=checkout)
        assert result.ok and not result.cached, result.log
        versions[student] = subprocess.run([str(result.python), "-c", "import six; print(six.__version__)"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    assert versions == {"a": "1.16.0", "b": "1.15.0"}


@pytest.mark.parametrize("text, local", [
    ("fastapi==0.115.0\nhttpx>=0.27  # client\n", False),
    ("--index-url https://pypi.org/simple\nsix\n", False),
    ("-r base.txt\n", True), ("./pkg\n", True), ("-e .\n", True), ("mypkg @ file:///tmp/pkg\n", True),
])
def test_which_requirements_name_local_files(text: str, local: bool) -> None:
    assert refers_to_local_files(text.encode()) is local


@pytest.mark.parametrize("text, names", [
    ("fastapi==0.115.0\nhttpx>=0.27  # client\n", False),
    ("./pkg\n", False), ("-r base.txt\n", False),
    ("--index-url https://pypi.org/simple\nsix\n", True), ("-i https://mirror.example/simple\nsix\n", True),
    ("--extra-index-url https://download.pytorch.org/whl/cpu\ntorch\n", True),
    ("--find-links wheels\nsix\n", True), ("git+https://github.com/someone/pkg.git\n", True),
    ("pkg @ https://example.org/pkg-1.0.tar.gz\n", True),
])
def test_which_requirements_name_their_package_sources(text: str, names: bool) -> None:
    assert names_package_source(text.encode()) is names


def test_the_install_environment_holds_no_credential_and_no_configuration_of_the_checkout(monkeypatch) -> None:
    monkeypatch.setenv("UV_INDEX_URL", "https://grader:s3cret-token@mirror.example/simple")
    monkeypatch.setenv("UV_INDEX_PRIVATE_PASSWORD", "s3cret-token")
    monkeypatch.setenv("UV_PUBLISH_TOKEN", "s3cret-token")
    monkeypatch.setenv("GRADER_CANARY_TOKEN", "s3cret-token")

    env = _uv_env(None)

    assert "s3cret-token" not in repr(env)
    assert env["UV_INDEX_URL"] == "https://mirror.example/simple"
    assert (env["UV_NO_CONFIG"], env["PIP_CONFIG_FILE"], env["UV_LINK_MODE"]) == ("1", "/dev/null", "copy")
    assert env["HOME"] == "/tmp"  # never the grader's
