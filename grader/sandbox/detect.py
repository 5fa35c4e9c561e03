"""What this machine can do to contain a submission, found by trying it, not by guessing."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import MachineError
from grader.sandbox.bwrap import SandboxSpec, bwrap_command, namespace_argv
from grader.sandbox.cgroup import CgroupLayout, find_layout
from grader.sandbox.limits import Limits, human_bytes

_PROBE_TIMEOUT_S = 20


@dataclass(frozen=True)
class Isolation:
    """The protections available to a grading, and the limits it applies.

    ``bwrap`` is the path of a working bubblewrap (None: processes run unsandboxed);
    ``netns``: the stack phase can get a network namespace with only loopback;
    ``cgroups``: where memory/pids(/cpu) cgroups are created (None: RLIMIT fallback only);
    ``unprivileged``: the sandbox runs as ``nobody`` in its own user namespace, with user
    namespaces disabled inside.
    """

    bwrap: str | None = None
    netns: bool = False
    unprivileged: bool = False
    cgroups: CgroupLayout | None = None
    limits: Limits = field(default_factory=Limits)
    missing: tuple[str, ...] = ()  # one line per protection not available, with why
    confine: bool = True  # False: no sandbox, no limits at all (``Isolation.none()``)

    def lines(self) -> tuple[str, ...]:
        """One human line per protection, for the report header."""
        user = ("uid nobody in its own user namespace (root outside), no user namespaces inside" if self.unprivileged
                else "uid 0, user namespaces NOT blocked")
        sandbox = ("sandbox: bubblewrap (read-only system and root, private sized /tmp and /dev/shm, private HOME, "
                   f"own PID namespace, no capabilities, {user}, clean environment)" if self.bwrap
                   else "sandbox: NONE (plain processes with a clean environment, own process group)")
        network = "network: loopback only" if self.netns else "network: NOT isolated"
        if not self.confine:
            return ("sandbox: NONE (plain processes with a clean environment, own process group)",
                    "network: NOT isolated", "limits: NONE except output kept (head and tail)")
        memory = ("memory and process limits by cgroup" if self.cgroups else
                  f"memory by address space ({human_bytes(self.limits.address_space_bytes)}), processes NOT limited")
        cpu = "CPU by cgroup quota" if self.cgroups and self.cgroups.limits_cpu else "CPU NOT limited"
        install = (f"install: uv {'sandboxed as the API is' if self.bwrap else 'NOT sandboxed'}, under the same "
                   "limits, with a private cache, copies instead of links, and the checkout's uv and pip "
                   "configuration ignored (UV_NO_CONFIG, PIP_CONFIG_FILE=/dev/null)")
        return (sandbox, network, f"limits: {self.limits.summary()} ({memory}; {cpu})", install,
                *(f"missing: {m}" for m in self.missing))

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
    unprivileged = False
    if bwrap is not None:
        unprivileged, reason = _usable_userns(bwrap, netns)
        if not unprivileged:
            missing.append(f"unprivileged uid and no user namespaces inside the sandbox ({reason})")
    cgroups, reason = find_layout()
    if cgroups is None:
        missing.append(f"memory/process/CPU limits by cgroup ({reason}); memory falls back to RLIMIT_AS")
    elif not cgroups.limits_cpu:
        missing.append("CPU limit (no cgroup cpu controller)")
    isolation = Isolation(bwrap=bwrap, netns=netns, unprivileged=unprivileged, cgroups=cgroups,
                          limits=limits or Limits(), missing=tuple(missing))
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


def _usable_userns(bwrap: str, netns: bool) -> tuple[bool, str]:
    """Whether a sandbox as the API gets it (nested in the stack phase's namespace when there
    is one) can run unprivileged, with user namespaces disabled inside."""
    inner = bwrap_command(bwrap, SandboxSpec(chdir=Path("/"), env={}, unprivileged=True), ["true"])
    error = _try(namespace_argv(bwrap, inner) if netns else inner)
    return (error is None), (f"bwrap --unshare-user --disable-userns: {error}" if error else "")


def _usable_netns(bwrap: str) -> tuple[bool, str]:
    error = _try([bwrap, "--dev-bind", "/", "/", "--unshare-net", "--", "true"])
    return (error is None), (f"no network namespace: {error}" if error else "")
