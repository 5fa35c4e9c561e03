"""The bubblewrap command line every process of a submission runs under.

The sandbox sees a read-only system (``/usr`` and an allow-list of ``/etc``), the grader's
base interpreter, the paths it is given read-only or read-write, a private sized ``/tmp`` and
``/dev/shm``, its own ``/proc`` and ``/dev``, and exactly the environment it is given. Nothing
else of the machine: not the grader's repository, not ``/root``, not other submissions, not the
caller's env. Its root and ``/dev`` are read-only, so only the sized mounts and the paths given
read-write can be written. Where the machine allows (``SandboxSpec.unprivileged``), it runs as
``nobody`` in a user namespace of its own that may create no further one: the usual first step
of a kernel exploit (a user namespace, where every capability comes back) is closed.

Outside, that uid is still the grader's (root): bubblewrap started as ``nobody`` could not reach
the grader's interpreter and venv cache, which live under ``/root`` (mode 0700) on the machines
this runs on. So a kernel check that trusts uid 0 without a capability (a root-owned sysctl)
still would: ``/proc/sys`` and the SysRq trigger are bound read-only for that reason.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

# What Python, uvicorn, httpx, DNS and TLS read under /etc. An allow-list, not a deny-list:
# /etc holds secrets of every kind (shadow, ssh host keys, pip/npm tokens, docker config).
ETC_ALLOWED = (
    "alternatives", "ca-certificates", "ca-certificates.conf", "debian_version", "gai.conf", "group",
    "host.conf", "hostname", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
    "mime.types", "nsswitch.conf", "os-release", "passwd", "protocols", "resolv.conf", "services",
    "ssl/certs", "ssl/openssl.cnf", "timezone",
)  # fmt: skip
_PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger")
# Merged-/usr systems make these symlinks into /usr; others have real directories.
_TOP_LEVEL_SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# The uid and gid inside: ``nobody``, which every passwd file names.
SANDBOX_UID = 65534
SHM_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SandboxSpec:
    """What one sandboxed command may see and where it starts."""

    chdir: Path
    env: Mapping[str, str]
    read_only: Sequence[Path] = ()
    read_write: Sequence[Path] = ()
    share_network: bool = True  # the API needs the stack's loopback; only tests unshare it
    tmp_bytes: int | None = None  # size of the private /tmp (a tmpfs)
    extra_etc: Sequence[str] = field(default_factory=tuple)
    # A user namespace of its own, as ``nobody``, with user namespaces disabled inside.
    unprivileged: bool = False


def interpreter_prefix() -> Path:
    """The base installation of the interpreter the submission's venvs symlink into."""
    return Path(sys.base_prefix).resolve()


def namespace_argv(bwrap: str, argv: Sequence[str]) -> list[str]:
    """``argv`` in a new network namespace (only loopback, up) and PID namespace, seeing the
    whole filesystem; it and all it starts die with the caller.

    bwrap's ``--proc`` covers /proc/irq and /proc/bus with read-only mounts; in a user
    namespace those covers would make /proc look "not fully visible", and the kernel would
    refuse every nested sandbox its own /proc. They are lifted before ``argv`` runs (the
    nested sandboxes get a /proc of their own, with /proc/sys bound read-only)."""
    lift = "umount -l /proc/irq /proc/bus 2>/dev/null; exec \"$@\""
    return [bwrap, "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-net", "--unshare-pid", "--die-with-parent",
            "--", "/bin/sh", "-c", lift, "stack-phase", *argv]


def bwrap_command(bwrap: str, spec: SandboxSpec, argv: Sequence[str]) -> list[str]:
    """``bwrap <options> -- argv`` for ``spec``; paths are bound at their own location."""
    args = [
        bwrap,
        "--die-with-parent", "--new-session",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        # Without every capability, even root inside can only touch what the mounts below
        # allow (read-only binds stay read-only, nothing new gets mounted).
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--clearenv",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    if not spec.share_network:
        args.append("--unshare-net")
    if spec.unprivileged:
        args += ["--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    for name in _TOP_LEVEL_SYSTEM:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in (*ETC_ALLOWED, *spec.extra_etc):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    # A process whose uid is the machine's root outside, even without capabilities and as
    # nobody inside, may still write sysctls (core_pattern runs a program as the machine's
    # root) and the SysRq trigger: cover both.
    for name in _PROC_READ_ONLY:
        args += ["--ro-bind-try", name, name]
    if spec.tmp_bytes is not None:
        args += ["--size", str(spec.tmp_bytes)]
    # /tmp before the binds: the stack's own dirs may live under the real /tmp.
    args += ["--tmpfs", "/tmp"]
    prefix = interpreter_prefix()
    args += ["--ro-bind", str(prefix), str(prefix)]
    for path in spec.read_only:
        args += ["--ro-bind", str(path), str(path)]
    for path in spec.read_write:
        args += ["--bind", str(path), str(path)]
    # Last: every mount point above is made; nothing else of the root or /dev is writable.
    args += ["--remount-ro", "/", "--remount-ro", "/dev"]
    for name, value in spec.env.items():
        args += ["--setenv", name, value]
    args += ["--chdir", str(spec.chdir), "--", *argv]
    return args
