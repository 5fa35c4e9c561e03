"""The bounds put on everything a submission runs, with defaults fit for the exam's API."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one API process (and all it starts) may use before it is killed.

    Rubric settings may override any field by name (``Limits.from_settings``).
    """

    memory_bytes: int = 1024 * _MIB
    processes: int = 256  # threads count too: they are tasks for the pids controller
    # CPU time per wall second (cores) for each API and each install: a process that burns CPU
    # is held to it, and the kernel shares the rest fairly between the cgroups that want it, so
    # the light work of the APIs beside it (a timed answer) is still served at once. The exam's
    # API needs a fraction of one core.
    cpus: float = 1.0
    output_bytes: int = 5_000_000  # kept head + tail; the rest is dropped, not fatal
    disk_bytes: int = 512 * _MIB  # written under the writable dirs (and per file)
    install_s: float = 600.0
    startup_s: float = 90.0
    # A scenario run takes one to three minutes on a loaded two-core machine; a re-run (the
    # fairness rule) doubles it. The submission's limit covers the whole grading.
    scenario_s: float = 600.0
    submission_s: float = 1800.0

    @property
    def address_space_bytes(self) -> int:
        """RLIMIT_AS when no memory cgroup is usable: virtual memory runs well ahead of what
        is resident (thread stacks, malloc arenas), so it gets twice the memory limit."""
        return 2 * self.memory_bytes

    @classmethod
    def from_settings(cls, settings: Mapping[str, float]) -> "Limits":
        """Defaults overridden by the settings named like the fields (unknown names ignored)."""
        names = {f.name: f.type for f in fields(cls)}
        chosen = {name: (float(value) if name.endswith("_s") or name == "cpus" else int(value))
                  for name, value in settings.items() if name in names}
        return cls(**chosen)

    def summary(self) -> str:
        """``memory 1 GiB, 256 processes, CPU 1 core, output 5 MB, disk 512 MiB, install 600 s,
        start-up 90 s, scenario 600 s, submission 1800 s``."""
        return (f"memory {human_bytes(self.memory_bytes)}, {self.processes} processes, "
                f"CPU {self.cpus:g} core{'' if self.cpus == 1 else 's'}, "
                f"output {human_bytes(self.output_bytes)}, disk {human_bytes(self.disk_bytes)}, "
                f"install {self.install_s:.0f} s, start-up {self.startup_s:.0f} s, "
                f"scenario {self.scenario_s:.0f} s, submission {self.submission_s:.0f} s")


def human_bytes(size: int) -> str:
    """``1 GiB``, ``512 MiB``, ``5 MB``: binary units when exact, else decimal."""
    for unit, factor in (("GiB", 1024**3), ("MiB", _MIB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"
