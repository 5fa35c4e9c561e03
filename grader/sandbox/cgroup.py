"""Memory, process-count and CPU limits through cgroups (v1 controllers or a v2 hierarchy).

One ``Cgroup`` holds one API process (or one install) and everything it starts. A limit it
hits is read back from the kernel's own counters (``oom_kill``, pids ``max`` events), so the
report can name it. The CPU limit is a quota (``cpu.max``, or CFS quota on v1): a process that
burns CPU is slowed to its share, never killed, so the gradings beside it keep their timing.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.limits import Limits, human_bytes

_CONTROLLERS = ("memory", "pids")
_OPTIONAL = ("cpu",)  # without it the limits still hold, and the report says CPU is not limited
_CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupLayout:
    """Where new cgroups go: one parent directory per controller (v1), or one for both (v2)."""

    version: int
    parents: tuple[tuple[str, Path], ...]  # (controller, directory to create children in)

    @property
    def limits_cpu(self) -> bool:
        return any(controller == "cpu" for controller, _ in self.parents)


def find_layout() -> tuple[CgroupLayout | None, str]:
    """The usable layout, or None and a one-line reason why cgroups cannot be used."""
    reasons = []
    for finder in (_layout_v1, _layout_v2):
        layout, reason = finder()
        if layout is None:
            reasons.append(reason)
            continue
        try:  # the only honest test: create one and remove it
            Cgroup.create("probe", Limits(), layout).remove()
        except OSError as exc:
            reasons.append(f"cgroup v{layout.version} not writable ({exc.strerror or exc})")
            continue
        return layout, ""
    return None, "; ".join(reasons)


def _mounts() -> list[tuple[str, str, set[str]]]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 4:
            mounts.append((parts[1], parts[2], set(parts[3].split(","))))
    return mounts


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path (``""`` key: the v2 path)."""
    paths: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    except (OSError, ValueError):
        pass
    return paths


def _layout_v1() -> tuple[CgroupLayout | None, str]:
    own = _own_paths()
    parents = []
    for controller in (*_CONTROLLERS, *_OPTIONAL):
        mount = next((Path(point) for point, kind, options in _mounts() if kind == "cgroup" and controller in options),
                     None)
        if mount is None and controller in _OPTIONAL:
            continue
        if mount is None:
            return None, f"no cgroup v1 {controller} controller mounted"
        # Nest under our own cgroup so limits set on the grader still apply to its children.
        nested = mount / own.get(controller, "/").lstrip("/")
        parents.append((controller, nested if os.access(nested, os.W_OK) else mount))
    return CgroupLayout(1, tuple(parents)), ""


def _layout_v2() -> tuple[CgroupLayout | None, str]:
    mount = next((Path(point) for point, kind, _ in _mounts() if kind == "cgroup2"), None)
    if mount is None:
        return None, "no cgroup2 mounted"
    available = set((mount / "cgroup.controllers").read_text().split()) if (mount / "cgroup.controllers").exists() else set()
    if not set(_CONTROLLERS) <= available:
        return None, f"cgroup2 at {mount} lacks the memory/pids controllers"
    # A v2 cgroup with processes cannot delegate controllers: use a leaf-only parent of our own.
    parent = mount / "grader-sandbox"
    wanted = [*_CONTROLLERS, *(c for c in _OPTIONAL if c in available)]
    enable = " ".join(f"+{controller}" for controller in wanted)
    try:
        _write(mount / "cgroup.subtree_control", enable)
        parent.mkdir(exist_ok=True)
        _write(parent / "cgroup.subtree_control", enable)
    except OSError as exc:
        return None, f"cgroup2 controllers cannot be delegated ({exc.strerror or exc})"
    return CgroupLayout(2, tuple((controller, parent) for controller in wanted)), ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _counter(text: str, name: str) -> int:
    """The value of ``name`` in a flat-keyed file such as ``memory.events`` or ``pids.events``."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def forks_refused(pids_dir: Path) -> bool:
    """Whether the kernel refused a fork in the pids cgroup at ``pids_dir`` (its ``max`` event)."""
    return _counter(_read(pids_dir / "pids.events"), "max") > 0


def process_limit_hit(processes: int) -> str:
    """How a report names a hit of the ``processes`` limit."""
    return f"process limit hit ({processes} processes and threads): a fork was refused"


def _write_cpu_quota(group: Path, version: int, cpus: float) -> None:
    quota = str(max(1000, int(cpus * _CPU_PERIOD_US)))
    if version == 1:
        _write(group / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(group / "cpu.cfs_quota_us", quota)
    else:
        _write(group / "cpu.max", f"{quota} {_CPU_PERIOD_US}")


def _remove_dir(path: Path) -> None:
    for _ in range(50):  # rmdir fails while the last killed task is still exiting
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


class Cgroup:
    """A fresh cgroup with ``limits``' memory and process count; ``procs_files`` admit a pid."""

    def __init__(self, layout: CgroupLayout, dirs: dict[str, Path], limits: Limits) -> None:
        self.layout = layout
        self.dirs = dirs
        self.limits = limits

    @classmethod
    def create(cls, name: str, limits: Limits, layout: CgroupLayout) -> "Cgroup":
        """Raises OSError when the kernel refuses (the caller then runs without it)."""
        leaf = f"grader-{name}-{uuid.uuid4().hex[:8]}"
        dirs: dict[str, Path] = {}
        group = cls(layout, dirs, limits)
        try:
            for controller, parent in layout.parents:
                path = parent / leaf
                if path not in dirs.values():
                    path.mkdir()
                dirs[controller] = path
            memory, pids = dirs["memory"], dirs["pids"]
            if layout.version == 1:
                _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
                try:  # swap would let the limit be dodged; absent when swap accounting is off
                    _write(memory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
                except OSError:
                    pass
            else:
                _write(memory / "memory.max", str(limits.memory_bytes))
                try:
                    _write(memory / "memory.swap.max", "0")
                except OSError:
                    pass
            _write(pids / "pids.max", str(limits.processes))
            if "cpu" in dirs:
                _write_cpu_quota(dirs["cpu"], layout.version, limits.cpus)
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_files(self) -> list[Path]:
        return [path / "cgroup.procs" for path in dict.fromkeys(self.dirs.values())]

    def limit_hit(self) -> str | None:
        """The limit the kernel enforced on this cgroup, named; None while none was hit."""
        memory, pids = self.dirs.get("memory"), self.dirs.get("pids")
        if memory is not None:
            events = _read(memory / ("memory.oom_control" if self.layout.version == 1 else "memory.events"))
            if _counter(events, "oom_kill") > 0:
                return f"memory limit hit ({human_bytes(self.limits.memory_bytes)}): the kernel killed a process"
        if pids is not None and forks_refused(pids):
            return process_limit_hit(self.limits.processes)
        return None

    def members(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            found.update(int(pid) for pid in _read(procs).split())
        return found

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every member until none is left (a fork racing the sweep is caught next round)."""
        deadline = time.monotonic() + timeout
        while (members := self.members()) and time.monotonic() < deadline:
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        """Kill what is left and remove the directories; idempotent."""
        if self.dirs:
            self.kill_all()
        for path in reversed(list(dict.fromkeys(self.dirs.values()))):
            _remove_dir(path)
        self.dirs = {}
