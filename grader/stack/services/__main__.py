"""Run the LLM stand-in, its control API, the TEI stand-in and Qdrant in one process.

``python -m grader.stack.services [--llm-port N ...] [--serve llm,qdrant,tei] --token T`` binds
every port it serves (0, the default, lets the system choose, which avoids races between
stacks), then prints one JSON line ``{"ready": true, "pid", "llm_url", "control_url",
"qdrant_url", "tei_url"}`` (the served ones) on stdout. A compose stack runs one service per
container with ``--serve``; a local grading forks one such set per stack from a fork server
(``grader.stack.services.forkserver``), which calls ``serve`` with its own announcement.
It serves until SIGTERM or SIGINT, or until its parent dies, and then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from grader.stack.base import JournalEntry
from grader.stack.services import tei
from grader.stack.services.bounds import BodyLimit
from grader.stack.services.control import control_app
from grader.stack.services.llm import LLMServer, Script


class _AppServer(uvicorn.Server):
    """A uvicorn server that leaves signals to this process: several share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _app_server(app: FastAPI) -> _AppServer:
    config = uvicorn.Config(
        BodyLimit(app), lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1
    )
    return _AppServer(config)


def _qdrant_app(path: str | None) -> FastAPI:
    # Imported only where Qdrant is served: the engine's import costs a second of CPU that a
    # container serving only the LLM or TEI stand-in should not pay.
    from qdrant_client import QdrantClient

    from grader.stack.services import qdrant

    return qdrant.create_app(QdrantClient(path=path) if path else None)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def _print_ready(ready: dict[str, object]) -> None:
    print(json.dumps(ready), flush=True)


async def serve(args: argparse.Namespace, announce: Callable[[dict[str, object]], None] = _print_ready,
                hang_up: int | None = None) -> None:
    """Serve what ``args`` asks for until a signal, the parent's death, or (when given) the file
    descriptor ``hang_up`` reading end of file; ``announce`` gets the ready line once all listen."""
    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if hang_up is not None:
        loop.add_reader(hang_up, stop.set)  # nothing is ever sent on it: readable means closed

    script, journal = Script(), list[JournalEntry]()
    ports = {"llm": args.llm_port, "control": args.control_port, "qdrant": args.qdrant_port, "tei": args.tei_port}
    served = {"llm", "control"} if "llm" in args.serve else set()
    served |= set(args.serve) - {"llm"}
    sockets = {name: socket.create_server((args.host, port)) for name, port in ports.items() if name in served}
    llm = None
    if "llm" in sockets:
        llm = await asyncio.start_server(LLMServer(script, journal).handle, sock=sockets["llm"])
    factories = {
        "control": lambda: control_app(script, journal, args.token),
        "qdrant": lambda: _qdrant_app(args.qdrant_path),
        "tei": tei.create_app,
    }
    apps = {name: _app_server(factory()) for name, factory in factories.items() if name in sockets}
    tasks = [asyncio.create_task(server.serve(sockets=[sockets[name]])) for name, server in apps.items()]
    while not all(server.started for server in apps.values()):
        if any(task.done() for task in tasks):
            await asyncio.gather(*tasks)  # re-raises the start-up failure
            raise RuntimeError("a service stopped during start-up")
        await asyncio.sleep(0.01)

    watchdog = asyncio.create_task(_stop_when_orphaned(parent, stop))
    announce({"ready": True, "pid": os.getpid()} | {f"{name}_url": _url(s) for name, s in sockets.items()})

    await stop.wait()
    watchdog.cancel()
    if llm is not None:
        llm.close()
    for server in apps.values():
        server.should_exit = True
    await asyncio.gather(*tasks)


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Stop once ``parent`` is gone: a grader killed without ``close()`` leaves nothing behind."""
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of one set of stand-ins, parsed (defaults: every service, any free port)."""
    parser = argparse.ArgumentParser(prog="python -m grader.stack.services", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    for name in ("llm", "control", "qdrant", "tei"):
        parser.add_argument(f"--{name}-port", type=int, default=0)
    parser.add_argument("--qdrant-path", help="keep Qdrant's data in this folder (default: in memory), so a "
                        "stopped and restarted container finds it again, as the real Qdrant does")
    parser.add_argument("--serve", type=lambda text: text.split(","), default=["llm", "qdrant", "tei"],
                        help="comma-separated subset of llm,qdrant,tei (the LLM comes with its control API)")
    parser.add_argument("--token", required=True, help="bearer token of the LLM control API")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(arguments(argv)))


if __name__ == "__main__":
    main()
