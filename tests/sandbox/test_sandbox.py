"""A throwaway app confined as a submission's API: what it can see, and each limit it runs into."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grader.sandbox.bwrap import SANDBOX_UID, SHM_BYTES, SandboxSpec, bwrap_command
from grader.stack.mlflow_server import MAX_STORE_BYTES
from grader.stack_phase import namespace_command

from .conftest import start_app

SECRET = "grader-test-secret-3f9a1c"


def _leftovers(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def _report(api) -> dict:
    assert api.wait_exit(30) is not None, "the app did not finish"
    lines = [line.text for line in api.output() if line.text.startswith("{")]
    assert lines, "\n".join(line.text for line in api.output())
    return json.loads(lines[-1])


def _probed_paths() -> list[str]:
    """The grader's checkout (wherever it is cloned), the caller's secrets and the system's."""
    repo = Path(__file__).resolve().parents[2]
    home = Path.home()
    return [str(path) for path in (
        repo, repo / "reference_solution", repo / "grader", repo / "rubrics", repo.parent,
        home / ".ssh", home / ".cache", home / ".bashrc", Path(sys.base_prefix).resolve().parent,
    )] + ["/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/pip.conf", "/home", "/var", "/sys/fs/cgroup"]


def _bind_point_listings(probed: list[str], app_dirs: Path) -> dict[str, list[str]]:
    """What the app may list: a probed dir above a bind point shows only the way down to it.

    The bind points are the app's own dirs, the venv running it (here the grader's own, in the
    real stack one in the cache) and the base interpreter it links to; nothing else probed may
    be readable.
    """
    bind_points = [app_dirs, Path(sys.executable).parent.parent, Path(sys.base_prefix).resolve()]
    listings = {}
    for path in map(Path, probed):
        below = sorted({point.relative_to(path).parts[0] for point in bind_points if path in point.parents})
        if below:
            listings[str(path)] = below
    return listings


def test_sees_neither_the_grader_nor_secrets_nor_the_callers_environment(tmp_path, isolation, monkeypatch):
    monkeypatch.setenv("GRADER_SANDBOX_SECRET", SECRET)
    probed = _probed_paths()
    api = start_app(tmp_path, isolation, """
        import json, os, glob
        def readable(path):
            try:
                if os.path.isdir(path):
                    return sorted(os.listdir(path))
                with open(path, "rb") as handle:
                    return bool(handle.read(1))
            except OSError:
                return False
        paths = json.loads(os.environ.pop("PROBED_PATHS"))
        environs = []
        for path in glob.glob("/proc/[0-9]*/environ"):
            try:
                environs.append(open(path, "rb").read().decode(errors="replace"))
            except OSError:
                pass
        def writable(path, data):
            try:
                with open(path, "w") as handle:
                    handle.write(data)
                return True
            except OSError:
                return False
        # Writing back the current value: harmless if the protection were missing.
        sysctl = "/proc/sys/kernel/core_pattern"
        sysctl_writable = writable(sysctl, open(sysctl).read())
        sysrq_writable = os.access("/proc/sysrq-trigger", os.W_OK) and writable("/proc/sysrq-trigger", "")
        usr_writable = writable("/usr/grader-probe", "")
        print(json.dumps({"env": dict(os.environ), "readable": {p: readable(p) for p in paths},
                          "environs": environs, "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                          "usr_writable": usr_writable, "sysctl_writable": sysctl_writable,
                          "sysrq_writable": sysrq_writable, "uid": os.getuid(),
                          "cap_eff": [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]}))
    """, env={"PROBED_PATHS": json.dumps(probed)})
    try:
        report = _report(api)
    finally:
        api.kill()
    seen = {path: found for path, found in report["readable"].items() if found}
    assert seen == _bind_point_listings(probed, tmp_path), seen
    assert "GRADER_SANDBOX_SECRET" not in report["env"]
    assert set(report["env"]) <= {"PATH", "HOME", "TMPDIR", "PYTHONUNBUFFERED", "LC_CTYPE", "PWD"}, report["env"]
    assert not any(SECRET in text for text in report["environs"])
    assert SECRET not in "".join(line.text for line in api.output())
    assert report["pids"] == [1, 2], "own PID namespace: only bwrap's init and the app"
    assert report["cap_eff"] == "0000000000000000"
    assert not report["usr_writable"] and not report["sysctl_writable"] and not report["sysrq_writable"]
    assert api.exit_code == 0 and api.limit_hit() is None


def test_fork_bomb_is_stopped_by_the_process_limit(tmp_path, full_isolation):
    api = start_app(tmp_path, full_isolation, """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """)
    try:
        assert api.wait_exit(30) is not None, "the fork bomb was not stopped"
        assert "process limit hit (64" in (api.limit_hit() or "")
        assert "process limit hit" in api.startup_failure_reason()
    finally:
        api.kill()
    assert not _leftovers(str(tmp_path))
    assert psutil.virtual_memory().available > 256 * 2**20


def test_unbounded_allocation_is_killed_and_the_memory_limit_named(tmp_path, full_isolation):
    api = start_app(tmp_path, full_isolation, """
        hoard = []
        while True:
            hoard.append(bytearray(8 * 2**20))
    """)
    try:
        assert api.wait_exit(30) is not None
        assert "memory limit hit (256 MiB)" in (api.limit_hit() or ""), api.startup_failure_reason()
    finally:
        api.kill()
    assert not _leftovers(str(tmp_path))


@pytest.mark.parametrize("where", ["HOME", "TMPDIR", "/tmp"])
def test_writing_gigabytes_is_stopped_by_the_disk_limit(tmp_path, full_isolation, where):
    target = f"os.environ[{where!r}]" if where != "/tmp" else "'/tmp'"
    api = start_app(tmp_path, full_isolation, f"""
        import os, time
        chunk = b"x" * 2**20
        with open(os.path.join({target}, "huge.bin"), "wb") as handle:
            for _ in range(4096):  # 4 GiB
                try:
                    handle.write(chunk)
                    handle.flush()
                except OSError as exc:
                    print("write refused:", exc)
                    time.sleep(30)
    """)
    try:
        assert api.wait_exit(30) is not None, "the writer was not stopped"
        assert "disk limit hit (64 MiB" in (api.limit_hit() or ""), api.startup_failure_reason()
    finally:
        api.kill()
    assert sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) <= 65 * 2**20


def test_a_writer_that_exits_on_the_per_file_limit_is_still_named(tmp_path, full_isolation):
    # Python ignores SIGXFSZ: the write fails with EFBIG and the app exits by itself, often
    # before the watcher's next disk check.
    api = start_app(tmp_path, full_isolation, """
        import os
        with open(os.path.join(os.environ["TMPDIR"], "huge.bin"), "wb") as handle:
            for _ in range(4096):
                handle.write(b"x" * 2**20)
    """)
    try:
        assert api.wait_exit(30) == 1
        assert api.limit_hit() == "disk limit hit (64 MiB written)", api.startup_failure_reason()
    finally:
        api.kill()


def test_an_app_ignoring_sigterm_and_sigint_is_killed_with_its_children(tmp_path, isolation):
    api = start_app(tmp_path, isolation, """
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        subprocess.Popen([sys.executable, "-c", code])
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """)
    deadline = time.monotonic() + 20
    while not any(line.text == "ready" for line in api.output()) and time.monotonic() < deadline:
        time.sleep(0.1)
    api.send_signal(signal.SIGTERM)
    api.send_signal(signal.SIGINT)
    assert api.wait_exit(1) is None, "the app was meant to ignore SIGTERM and SIGINT"
    started = time.monotonic()
    api.kill()
    assert time.monotonic() - started < 10
    assert api.exit_code == -signal.SIGKILL
    assert not _leftovers(str(tmp_path)) and not _leftovers("time.sleep(600)")


def test_the_stack_phase_namespace_has_only_loopback(tmp_path, full_isolation):
    probe = r"""
import json, socket
interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
routes = open("/proc/net/route").read().splitlines()[1:]
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2)
    outside = "connected"
except OSError as exc:
    outside = exc.errno
print(json.dumps({"interfaces": interfaces, "routes": routes, "outside": outside}))
"""
    done = subprocess.run(namespace_command(full_isolation, [sys.executable, "-c", probe]),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["interfaces"] == ["lo"]
    assert report["routes"] == []
    assert report["outside"] != "connected"


def test_memory_falls_back_to_the_address_space_limit_without_cgroups(tmp_path, isolation):
    api = start_app(tmp_path, dataclasses.replace(isolation, cgroups=None), """
        hoard = []
        while True:
            hoard.append(bytearray(8 * 2**20))
    """)
    try:
        assert api.wait_exit(30) not in (None, 0)
        assert "memory limit probably hit (address space 512 MiB)" in (api.limit_hit() or ""), api.output()[-3:]
    finally:
        api.kill()


def test_killing_the_stack_phase_ends_every_process_in_it(tmp_path, full_isolation):
    marker = f"sleep-{tmp_path.name}"
    # The marker is assembled inside, so only the sleepers' command lines hold it whole.
    code = (f"import subprocess, sys, time; marker = 'sleep-' + '{tmp_path.name}'; "
            f"[subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', marker], "
            f"start_new_session=True) for _ in range(3)]; print('ready', flush=True); time.sleep(600)")
    phase = subprocess.Popen(namespace_command(full_isolation, [sys.executable, "-c", code]),
                             stdout=subprocess.PIPE, text=True)
    assert phase.stdout.readline().strip() == "ready"
    assert len(_leftovers(marker)) == 3
    phase.kill()  # SIGKILL of bwrap: its PID namespace goes with it
    phase.wait()
    deadline = time.monotonic() + 10
    while _leftovers(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _leftovers(marker)


def test_inside_the_stack_phase_an_api_runs_as_nobody_without_user_namespaces_or_writable_kernel_knobs(
        tmp_path, full_isolation):
    """As the stack phase nests it: an API's sandbox in the phase's namespace. Nothing is written:
    each file is only opened for writing, which a read-only mount refuses before any byte."""
    probe = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
seen = {"uid": os.getuid(), "gid": os.getgid()}
seen["user_namespace"] = "created" if libc.unshare(0x10000000) == 0 else os.strerror(ctypes.get_errno())
for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches", "/planted", "/dev/planted"):
    try:
        os.close(os.open(path, os.O_WRONLY | (os.O_CREAT if "planted" in path else 0), 0o600))
        seen[path] = "writable"
    except OSError as exc:
        seen[path] = exc.strerror
shm = os.statvfs("/dev/shm")
seen["shm_bytes"] = shm.f_blocks * shm.f_frsize
print(json.dumps(seen))
"""
    (tmp_path / "probe.py").write_text(probe)
    venv = Path(sys.executable).parent.parent
    spec = SandboxSpec(chdir=tmp_path, env={}, read_only=(tmp_path, venv), unprivileged=full_isolation.unprivileged)
    inner = bwrap_command(full_isolation.bwrap, spec, [sys.executable, str(tmp_path / "probe.py")])
    done = subprocess.run(namespace_command(full_isolation, inner), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"uid": SANDBOX_UID, "gid": SANDBOX_UID,
                    "user_namespace": "No space left on device",  # the count of namespaces allowed is 0
                    "/proc/sys/kernel/core_pattern": "Read-only file system",
                    "/proc/sys/vm/drop_caches": "Read-only file system",
                    "/planted": "Read-only file system", "/dev/planted": "Read-only file system",
                    "shm_bytes": SHM_BYTES}


def test_mlflows_store_is_a_sized_tmpfs_inside_the_stack_phase(tmp_path, full_isolation):
    code = f"""
import json, os
from pathlib import Path
from grader.stack.mlflow_server import MlflowServer
with MlflowServer(Path({str(tmp_path / "mlflow")!r}), own_mount_namespace=True) as server:
    store = os.statvfs(server.workdir)
    print(json.dumps({{"bytes": store.f_blocks * store.f_frsize, "db": (server.workdir / "mlflow.db").exists()}}))
"""
    done = subprocess.run(namespace_command(full_isolation, [sys.executable, "-c", code]), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"bytes": MAX_STORE_BYTES, "db": True}
    assert not any((tmp_path / "mlflow").iterdir())  # the store lived and died in the namespace
