"""One compose project: the CLI bound to its name, variables and override files, and the
engine's view of its containers."""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from grader.errors import StackError
from grader.stack.compose.engine import compose_files, docker_client, run_compose

CLI_TIMEOUT_S = 120.0
# A loaded machine starting several MLflow containers at once has been seen to need minutes.
UP_TIMEOUT_S = 300.0
# The engine's default address pools hold about thirty networks, which two gradings at once
# (two networks per stack) ran out of. Each network gets a /27 of this range instead, picked
# at random; the engine refuses one that overlaps another network, and another is picked.
_SUBNETS = ipaddress.ip_network("10.213.0.0/16")
_SUBNET_PREFIX = 27
_SUBNET_ATTEMPTS = 20
_DOWN_ATTEMPTS = 3


class ComposeProject:
    """``compose -p name`` with ``env`` as its only variables (plus how to reach the engine), on
    ``files`` (by default the grading stack's compose files)."""

    def __init__(self, name: str, env: Mapping[str, str], workdir: Path, overrides: Sequence[Path] = (),
                 files: Sequence[Path] | None = None) -> None:
        self.name = name
        self._env = dict(env)
        self._files = files
        # An empty env file: a stray `.env` beside the compose file must not fill in variables.
        self._env_file = workdir / f"{name}.env"
        self._subnets_file = workdir / f"{name}.subnets.yml"
        self._given_overrides = tuple(overrides)
        self._overrides = (*overrides, self._subnets_file)
        workdir.mkdir(parents=True, exist_ok=True)
        self._env_file.write_text("")

    def up(self, services: Sequence[str], networks: Sequence[str]) -> None:
        """``up -d --no-deps services``, giving each of ``networks`` a subnet of its own."""
        # Compose replaces a network's whole definition with a later file's, so the subnets
        # file repeats it (``internal`` and the driver's options would be lost otherwise).
        defined = self._network_definitions()
        for _ in range(_SUBNET_ATTEMPTS):
            config = {name: {**defined.get(name, {}), "ipam": {"config": [{"subnet": str(_random_subnet())}]}}
                      for name in networks}
            self._subnets_file.write_text(yaml.safe_dump({"networks": config}))
            try:
                self.compose("up", "-d", "--no-deps", *services, timeout=UP_TIMEOUT_S)
                return
            except StackError as exc:
                if "overlap" not in str(exc).lower():
                    raise
                self.compose("down", "--remove-orphans", "-t", "0")
        raise StackError(f"no free subnet for {self.name} in {_SUBNETS} after {_SUBNET_ATTEMPTS} attempts")

    def _network_definitions(self) -> dict[str, dict]:
        """The top-level ``networks`` of the project's compose files, as Compose merges them."""
        defined: dict[str, dict] = {}
        for path in (*(compose_files() if self._files is None else self._files), *self._given_overrides):
            document = yaml.safe_load(path.read_text()) if path.exists() else None
            defined.update({name: dict(value or {}) for name, value in ((document or {}).get("networks") or {}).items()})
        return defined

    def compose(self, *args: str, timeout: float = CLI_TIMEOUT_S, extra_env: Mapping[str, str] = {}) -> str:
        """Run the CLI; its stdout, or StackError with the last lines it wrote."""
        result = run_compose(self.name, args, {**self._env, **extra_env}, timeout=timeout, env_file=self._env_file,
                             files=self._files, overrides=self._overrides)
        if result.returncode != 0:
            tail = " | ".join(line.strip() for line in result.stderr.splitlines()[-4:] if line.strip())
            raise StackError(f"`compose {' '.join(args[:2])}` failed for {self.name}: {tail or 'no output'}")
        return result.stdout

    def containers(self, service: str) -> list:
        """The containers of ``service`` in this project, running or not."""
        labels = [f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]
        return docker_client().containers.list(all=True, filters={"label": labels})

    def network(self, name: str):
        """The project's network ``name`` (as the compose file calls it)."""
        return docker_client().networks.get(f"{self.name}_{name}")

    def wait_listening(self, service: str, network: str, port: int, timeout: float = UP_TIMEOUT_S) -> str:
        """Return ``service``'s address once its ``port`` accepts connections from the host;
        StackError if its container exits or the time runs out.

        The grader polls from outside instead of waiting on the engine's healthchecks: each
        healthcheck is an exec into the container, and a second of them per container kept a
        third of a core busy per idle stack.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.containers(service)
            if found:
                state = found[0].attrs["State"]
                if state["Status"] in ("exited", "dead"):
                    raise StackError(f"{service} of {self.name} exited with code {state['ExitCode']}")
                address = _address(found[0], f"{self.name}_{network}")
                if address and _accepts(address, port):
                    return str(address)
            time.sleep(0.3)
        raise StackError(f"{service} of {self.name} did not listen on port {port} within {timeout:.0f} s")

    def address(self, service: str, network: str) -> str:
        """The address of ``service``'s (first) container on the project's network ``network``."""
        found = self.containers(service)
        address = _address(found[0], f"{self.name}_{network}") if found else None
        if not address:
            raise StackError(f"{service} of {self.name} has no address on {network}")
        return address

    def down(self) -> None:
        """Remove every container, network and volume of the project that exists now.

        Safe to repeat and to call from another thread: an interrupt's down may run while an
        ``up`` is still creating networks, so the owner downs once more after its ``up`` ends.
        The files it needs stay (they live in the grading's work folder, removed with it).
        """
        if not self._subnets_file.exists():  # never up: nothing to take down
            return
        for attempt in range(_DOWN_ATTEMPTS):
            try:
                self.compose("down", "-v", "--remove-orphans", "-t", "2", timeout=UP_TIMEOUT_S)
                return
            except StackError as exc:
                # compose lists the project's objects, then removes them: an object that a
                # concurrent up or down removed or replaced in between fails the whole command.
                if "no such" not in str(exc).lower() or attempt == _DOWN_ATTEMPTS - 1:
                    raise
                time.sleep(1.0)


def _address(container, network: str) -> str | None:
    return container.attrs["NetworkSettings"]["Networks"].get(network, {}).get("IPAddress") or None


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def _random_subnet() -> ipaddress.IPv4Network:
    size = 2 ** (32 - _SUBNET_PREFIX)
    start = int(_SUBNETS.network_address) + size * random.randrange(_SUBNETS.num_addresses // size)
    return ipaddress.IPv4Network((start, _SUBNET_PREFIX))
