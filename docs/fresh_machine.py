"""A fresh Debian 12 with only python3 and git follows the README and grades a fixture.

    uv run python docs/fresh_machine.py     # minutes: PyPI downloads and one full grading

The container: the debootstrap Debian 12 of ``grader/stack/compose/images.py`` (its own Python
3.11, which refuses ``pip install`` outside a venv, as on any stock Debian 12), then the README's
prerequisites command (as root, so without ``sudo``). Into it goes a clone of this repository's
HEAD (a git bundle: the commands run on what is committed). It then runs, in one bash and as
they are written, the README's commands marked ``<!-- fresh-machine: install -->`` and
``<!-- fresh-machine: grade -->``. The container has the host's network (for PyPI and Debian's
mirror) and the host's way to reach them (``SSL_CERT_FILE``, proxies), nothing else of the host. Exit 0 when the grading printed its verdict, else 1
with the end of its output.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
IMAGE = "llmops-grader/test-fresh-debian:latest"
_MARKED_BLOCK = re.compile(r"<!-- fresh-machine: (\w+) -->\s*```bash\n(.*?)\n```", re.S)


def readme_commands(text: str | None = None) -> dict[str, str]:
    """The README's marked commands: prerequisites, grade (set-up included), test."""
    return {name: command.strip() for name, command in _MARKED_BLOCK.findall(text or README.read_text("utf-8"))}


def _bundle_of_head() -> bytes:
    """A tar holding ``repo.bundle``: this repository's HEAD, to clone inside the container."""
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch, "repo.bundle")
        subprocess.run(["git", "-C", str(ROOT), "bundle", "create", str(bundle), "HEAD"], check=True,
                       capture_output=True)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(bundle, arcname="repo.bundle")
        return buffer.getvalue()


def run(on_progress=print) -> tuple[int, str]:
    """Build the image, run the README in it; (exit code, the whole output)."""
    from grader.stack.compose.images import ensure_debian_rootfs, ensure_image
    from grader.stack.venv import index_access_env

    commands = readme_commands()
    prerequisites = re.sub(r"^sudo ", "", commands["prerequisites"])
    # An engine busy with other gradings may take minutes to answer a removal.
    with contextlib.closing(docker.from_env(timeout=600)) as client:
        base = ensure_debian_rootfs(client, on_progress=on_progress)
        ensure_image(client, IMAGE, base, f"RUN apt-get update -qq && {prerequisites}\n", {}, on_progress=on_progress)
        script = "\n".join([
            "set -euo pipefail",
            "git clone -q /root/repo.bundle /tmp/llmops-grader && cd /tmp/llmops-grader",
            commands["grade"],
        ])
        container = client.containers.create(IMAGE, ["bash", "-c", script], network_mode="host",
                                             environment=index_access_env(),
                                             # The checkout, its venv and the caches in memory: this
                                             # engine's storage driver (fuse-overlayfs) makes the
                                             # grading's six API processes take minutes to import.
                                             tmpfs={"/tmp": "exec", "/root/.cache": "exec"},
                                             labels={"org.llmops-grader.test": "fresh-machine"})
        try:
            container.put_archive("/root", _bundle_of_head())
            container.start()
            for line in container.logs(stream=True, follow=True):
                on_progress(line.decode(errors="replace").rstrip("\n"))
            code = container.wait()["StatusCode"]
            return code, container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)


def main() -> int:
    code, output = run()
    verdict = [line for line in output.splitlines() if line.startswith("Total ")]
    if code != 0 or not verdict:
        print(f"the README's commands failed in a fresh Debian 12 (exit {code})", file=sys.stderr)
        return 1
    print(f"a fresh Debian 12 followed the README: {verdict[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
