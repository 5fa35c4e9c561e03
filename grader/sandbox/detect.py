"""What this machine can do to contain a submission, found by trying it, not by guessing."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from grader.errors import MachineError
from grader.sandbox.cgroup import CgroupLayout, find_layout
from grader.sandbox.limits import Limits, human_bytes

_PROBE_TIMEOUT_S = 20


@dataclass(frozen=True)
class Isolation:
    """The protections available to a grading, and the limits it applies.

    ``bwrap`` is the path of a working bubblewrap (None: processes run unsandboxed);
    ``netns``: the stack phase can get a network namespace with only loopback;
    ``cgroups``: where memory/pids cgroups are created (None: RLIMIT fallback only).
    """

    bwrap: str | None = None
    netns: bool = False
    cgroups: CgroupLayout | None = None
    limits: Limits = field(default_factory=Limits)
    missing: tuple[str, ...] = ()  # one line per protection not available, with why
    confine: bool = True  # False: no sandbox, no limits at all (``Isolation.none()``)

    def lines(self) -> tuple[str, ...]:
        """One human line per protection, for the report header."""
        sandbox = ("sandbox: bubblewrap (read-only system, private /tmp and HOME, own PID namespace, "
                   "no capabilities, clean environment)" if self.bwrap
                   else "sandbox: NONE (plain processes with a clean environment, own process group)")
        network = "network: loopback only" if self.netns else "network: NOT isolated"
        if not self.confine:
            return ("sandbox: NONE (plain processes with a clean environment, own process group)",
                    "network: NOT isolated", "limits: NONE except output kept (head and tail)")
        memory = ("memory and process limits by cgroup" if self.cgroups else
                  f"memory by address space ({human_bytes(self.limits.address_space_bytes)}), processes NOT limited")
        return (sandbox, network, f"limits: {self.limits.summary()} ({memory})", *(f"missing: {m}" for m in self.missing))

    def require(self) -> None:
        """Raise ``MachineError`` naming every missing protection (``--require-sandbox``)."""
        if self.missing:
            raise MachineError(f"sandbox required but missing: {'; '.join(self.missing)}")

    @classmethod
    def none(cls, limits: Limits | None = None) -> "Isolation":
        """No protection at all: what tests of the plain stack and old callers get."""
        return cls(limits=limits or Limits(), confine=False)


def detect(limits: Limits | None = None, *, require: bool = False) -> Isolation:
    """Try bubblewrap, a network namespace and cgroups on this machine."""
    missing = []
    bwrap, reason = _usable_bwrap()
    if bwrap is None:
        missing.append(f"filesystem/PID sandbox ({reason}; install it with: apt-get install -y bubblewrap)")
    netns = False
    if bwrap is not None:
        netns, reason = _usable_netns(bwrap)
        if not netns:
            missing.append(f"network isolation ({reason})")
    else:
        missing.append("network isolation (needs bubblewrap)")
    cgroups, reason = find_layout()
    if cgroups is None:
        missing.append(f"memory/process limits by cgroup ({reason}); memory falls back to RLIMIT_AS")
    isolation = Isolation(bwrap=bwrap, netns=netns, cgroups=cgroups, limits=limits or Limits(), missing=tuple(missing))
    if require:
        isolation.require()
    return isolation


def _try(argv: list[str]) -> str | None:
    """None if ``argv`` succeeds, else its last line of error."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit code {done.returncode}"


def _usable_bwrap() -> tuple[str | None, str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bwrap not found"
    error = _try([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                  "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", "true"])
    if error is not None:
        return None, f"bwrap does not work here: {error}"
    return bwrap, ""


def _usable_netns(bwrap: str) -> tuple[bool, str]:
    error = _try([bwrap, "--dev-bind", "/", "/", "--unshare-net", "--", "true"])
    return (error is None), (f"no network namespace: {error}" if error else "")
