"""The bubblewrap command line every process of a submission runs under.

The sandbox sees a read-only system (``/usr`` and an allow-list of ``/etc``), the grader's
base interpreter, the paths it is given read-only or read-write, a private ``/tmp``, its own
``/proc`` and ``/dev``, and exactly the environment it is given. Nothing else of the machine:
not the grader's repository, not ``/root``, not other submissions, not the caller's env.
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


def interpreter_prefix() -> Path:
    """The base installation of the interpreter the submission's venvs symlink into."""
    return Path(sys.base_prefix).resolve()


def bwrap_command(bwrap: str, spec: SandboxSpec, argv: Sequence[str]) -> list[str]:
    """``bwrap <options> -- argv`` for ``spec``; paths are bound at their own location."""
    args = [
        bwrap,
        "--die-with-parent", "--new-session",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        # We run as root: without every capability, root inside can only touch what the
        # mounts below allow (read-only binds stay read-only, nothing new gets mounted).
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--clearenv",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    if not spec.share_network:
        args.append("--unshare-net")
    for name in _TOP_LEVEL_SYSTEM:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in (*ETC_ALLOWED, *spec.extra_etc):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # Root without capabilities may still write sysctls (core_pattern runs a program as the
    # machine's root) and the SysRq trigger: cover both with read-only binds.
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
    for name, value in spec.env.items():
        args += ["--setenv", name, value]
    args += ["--chdir", str(spec.chdir), "--", *argv]
    return args
