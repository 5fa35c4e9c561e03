"""A TCP proxy in front of one dependency that breaks it on demand (the Toxiproxy model).

The submission is given the proxy's address instead of the dependency's, so a fault applies
to every new and open connection without touching the dependency:

- ``None``: forward both ways unchanged.
- ``DOWN``: stop listening (connection refused) and reset open connections. Clearing it
  listens again on the same port, so the URL the submission was given keeps working.
- ``HANG``: accept, never forward; open connections stall (held data flows once cleared).
- ``SLOW``: every chunk coming back from the dependency is forwarded ``delay`` seconds after
  it arrived, so a request/response round trip takes about ``delay`` longer.
- ``RESET``: accept then reset (RST); open connections are reset too.

The proxy runs on a ``BackgroundLoop``; its methods are called from any thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from grader.stack.background import BackgroundLoop
from grader.stack.base import Fault
from grader.stack.services.rst import reset

_READ_SIZE = 65536
# Chunks read but not yet written, per direction: a side that reads slower than the other
# writes (or a HANG) stops the proxy from reading, instead of queueing without end.
_QUEUED_CHUNKS = 16


@dataclass(eq=False)
class _Link:
    """One client connection and, once made, its connection to the dependency."""

    client: asyncio.StreamWriter
    task: asyncio.Task[None]
    upstream: asyncio.StreamWriter | None = None

    def reset(self) -> None:
        reset(self.client)
        if self.upstream is not None:
            self.upstream.transport.abort()
        self.task.cancel()


class FaultProxy:
    """Listens on ``host:port`` (port 0: chosen by the system) and forwards to the target."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        loop: BackgroundLoop | None = None,
    ) -> None:
        self._background = loop or BackgroundLoop.shared()
        self._target = (target_host, target_port)
        self._fault: Fault | None = None
        self._delay = 0.0
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._closed = False
        self.host = host
        self.port = self._background.run(self._start(port))

    @classmethod
    def in_front_of(cls, url: str, loop: BackgroundLoop | None = None) -> FaultProxy:
        """A proxy for the dependency at ``url`` (``http://host:port``)."""
        target = urlsplit(url)
        if target.hostname is None or target.port is None:
            raise ValueError(f"no host and port in {url!r}")
        return cls(target.hostname, target.port, loop=loop)

    @property
    def url(self) -> str:
        """``http://host:port`` of the proxy, the URL to give the submission."""
        return f"http://{self.host}:{self.port}"

    def set_fault(self, fault: Fault | None, delay: float = 0.0) -> None:
        """Apply ``fault`` (None: none) to new and open connections; returns once in force."""
        self._background.run(self._apply(fault, delay))

    def close(self) -> None:
        """Stop listening and drop every connection; idempotent."""
        self._background.run(self._close())

    async def _start(self, port: int) -> int:
        # Created on the loop's thread; set while data may flow, cleared by HANG.
        self._flowing = asyncio.Event()
        self._flowing.set()
        # Fault changes wait on re-listening: the lock keeps them from interleaving.
        self._changing = asyncio.Lock()
        await self._listen(port)
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, port, reuse_address=True)

    async def _apply(self, fault: Fault | None, delay: float) -> None:
        async with self._changing:
            if self._closed:
                raise RuntimeError(f"the fault proxy of {self.url} is closed")
            await self._change(fault, delay)

    async def _change(self, fault: Fault | None, delay: float) -> None:
        self._fault, self._delay = fault, delay
        if fault is Fault.DOWN and self._server is not None:
            self._server.close()
            self._server = None
        elif fault is not Fault.DOWN and self._server is None:
            await self._listen(self.port)
        if fault is Fault.HANG:
            self._flowing.clear()
        else:
            self._flowing.set()
        if fault in (Fault.DOWN, Fault.RESET):
            self._reset_all()

    async def _close(self) -> None:
        async with self._changing:
            self._closed = True
            if self._server is not None:
                self._server.close()
                self._server = None
            self._reset_all()

    def _reset_all(self) -> None:
        for link in list(self._links):
            link.reset()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._fault in (Fault.DOWN, Fault.RESET):
            reset(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        link = _Link(writer, task)
        self._links.add(link)
        try:
            await self._relay(link, reader)
        except asyncio.CancelledError:
            # A reset cancels the link on purpose; ending quietly keeps asyncio's stream
            # callback from logging the cancellation as an error.
            pass
        finally:
            self._links.discard(link)
            writer.close()
            if link.upstream is not None:
                link.upstream.close()

    async def _relay(self, link: _Link, reader: asyncio.StreamReader) -> None:
        await self._flowing.wait()  # HANG holds a new connection before the dependency
        try:
            upstream_reader, link.upstream = await asyncio.open_connection(*self._target)
        except OSError:
            reset(link.client)  # the dependency itself is unreachable: behave like it
            return
        try:
            async with asyncio.TaskGroup() as group:
                self._pump(group, reader, link.upstream, slowed=False)
                self._pump(group, upstream_reader, link.client, slowed=True)
        except* OSError:
            pass  # one side broke the connection: the link ends, as a real one would

    def _pump(
        self, group: asyncio.TaskGroup, src: asyncio.StreamReader, dst: asyncio.StreamWriter, slowed: bool
    ) -> None:
        """Copy ``src`` to ``dst`` through the fault gate until ``src`` ends.

        Reading and writing are separate tasks joined by a queue, so that SLOW delays each
        chunk from its own arrival instead of adding the delays up.
        """
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=_QUEUED_CHUNKS)

        async def read() -> None:
            while True:
                data = await src.read(_READ_SIZE)
                delay = self._delay if slowed and self._fault is Fault.SLOW else 0.0
                await chunks.put((loop.time() + delay, data))  # backpressure: waits while full
                if not data:
                    return

        async def write() -> None:
            while True:
                due, data = await chunks.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self._flowing.wait()
                if not data:
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                dst.write(data)
                await dst.drain()

        group.create_task(read())
        group.create_task(write())
