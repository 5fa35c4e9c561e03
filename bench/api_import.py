"""What bytecode compiled into the cached venv saves at every API start.

    uv run python bench/api_import.py [ROUNDS]     (default: 5)

Builds the reference's environment twice with uv, with and without ``--compile-bytecode``,
then times what an API start spends before it serves: importing the reference's ``main``
(FastAPI, the OpenAI SDK, qdrant-client, MLflow...). Each import runs as the sandboxed API does:
``PYTHONDONTWRITEBYTECODE=1``, so an uncompiled venv compiles every library again at every start.
The two venvs alternate, so a change in the machine's load falls on both; medians are printed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uv

from grader.checkout import remove_tree

REFERENCE_API = Path(__file__).resolve().parent.parent / "reference_solution" / "src" / "api"


def build(target: Path, cache: Path, compiled: bool) -> Path:
    uv_bin = uv.find_uv_bin()
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_NO_CONFIG": "1"}
    subprocess.run([uv_bin, "venv", "-q", "--python", sys.executable, str(target)], env=env, check=True)
    subprocess.run([uv_bin, "pip", "install", "-q", *(["--compile-bytecode"] if compiled else []),
                    "-r", str(REFERENCE_API / "requirements.txt"), "--python", str(target / "bin" / "python")],
                   env=env, check=True)
    return target / "bin" / "python"


def import_seconds(python: Path) -> float:
    """Wall time of a fresh interpreter importing the reference's main module."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "JWT_SECRET_KEY": "x" * 48,
           "HOME": tempfile.gettempdir()}
    started = time.monotonic()
    subprocess.run([str(python), "-c", "import main"], cwd=REFERENCE_API, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="bench-api-import-"))
    try:
        pythons = {label: build(work / label, work / "uv-cache", compiled)
                   for label, compiled in (("source only", False), ("bytecode compiled", True))}
        times: dict[str, list[float]] = {label: [] for label in pythons}
        for _ in range(rounds):
            for label, python in pythons.items():
                times[label].append(import_seconds(python))
        print(f"import of the reference's main module, {rounds} round(s), PYTHONDONTWRITEBYTECODE=1")
        for label, seconds in times.items():
            print(f"  {label:18} median {statistics.median(seconds):6.2f} s   "
                  f"(min {min(seconds):.2f}, max {max(seconds):.2f})")
        before, after = (statistics.median(times[label]) for label in pythons)
        print(f"  saved per API start: {before - after:.2f} s ({100 * (before - after) / before:.0f}%)")
    finally:
        remove_tree(work)


if __name__ == "__main__":
    main()
