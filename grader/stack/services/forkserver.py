"""A fork server of stand-in sets: the imports are paid once per grading, not once per stack.

``python -m grader.stack.services.forkserver SOCKET`` imports everything a set of stand-ins
needs (uvicorn, FastAPI, Qdrant's engine), prints ``{"ready": true}`` and listens on the Unix
socket ``SOCKET``. Each connection sends one JSON line ``{"token": T}``; the server forks a child
in its own session that serves a fresh set (LLM stand-in and its control API, Qdrant, TEI) and
sends its ready line back on that connection. The child stops when the connection closes (the
grader dropped it or died), on SIGTERM, or when the fork server is gone. Each set runs in a
process of its own, as before: one stack's CPU-bound work never delays another's timestamps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import traceback

# Imported before any fork: every child inherits them.
import qdrant_client  # noqa: F401  # Qdrant's engine, the costliest import
from grader.stack.services import qdrant, tei  # noqa: F401
from grader.stack.services.__main__ import arguments, serve

_ORPHAN_POLL_S = 0.5


def main(argv: list[str]) -> int:
    path = argv[0]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    parent = os.getppid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        server.settimeout(_ORPHAN_POLL_S)
        print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
        while os.getppid() == parent:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            _fork_set(server, conn)
    return 0


def _fork_set(server: socket.socket, conn: socket.socket) -> None:
    conn.settimeout(10)
    try:
        request = json.loads(conn.makefile("r", encoding="utf-8").readline())
    except (OSError, ValueError):
        conn.close()
        return
    if os.fork() != 0:
        conn.close()
        return
    # The child: never return into the server's loop, whatever happens.
    code = 0
    try:
        server.close()
        os.setsid()  # its own group: the grader kills the set whole
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        conn.settimeout(None)

        def announce(ready: dict[str, object]) -> None:
            conn.sendall((json.dumps(ready) + "\n").encode())

        asyncio.run(serve(arguments([f"--token={request['token']}"]), announce, hang_up=conn.fileno()))
    except BaseException:  # noqa: BLE001 - reported to the grader, then the child ends
        code = 1
        try:
            conn.sendall((json.dumps({"ready": False, "error": traceback.format_exc()[-2000:]}) + "\n").encode())
        except OSError:
            pass
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
