"""The only way out of a submission's image build: an HTTP proxy to the package indexes.

``python -m grader.stack.compose.index_proxy --port 3128 --allow pypi.org:443 ...`` runs in a
container on two networks: the build's own network, which has no route anywhere (not even to
the machine: its bridge has no address), and an egress network. The build's steps get it as
``HTTP(S)_PROXY``; pip, uv, curl and apt honour those. It tunnels ``CONNECT host:port`` and
forwards one plain ``GET``/``HEAD http://host/...`` per connection, only for the allowed
``host:port`` pairs, so a build reaches the indexes and nothing else: not the machine's
loopback or its other services, not another grading's containers.

Every refusal and every allowed destination it could not reach is one JSON line on stdout:
the grader reads them to tell "the student's build asked for something else" from "the
machine cannot reach the index". Written with asyncio rather than a proxy library: the
whole job is one allow-list check and a relay with backpressure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from urllib.parse import urlsplit

_HEAD_LIMIT = 16 * 1024  # a request line and headers; pip's and apt's are well under 1 KiB
_HEAD_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 30.0
_IDLE_TIMEOUT_S = 300.0  # a slow mirror may pause; a tunnel idle longer is abandoned
_MAX_CONNECTIONS = 64
_CHUNK = 64 * 1024
# Hop-by-hop headers of the client's request, replaced by the proxy's own.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"}


def report(event: str, **fields: object) -> None:
    """One JSON line on stdout for the grader (see the module docstring)."""
    print(json.dumps({"event": event, **fields}), flush=True)


class IndexProxy:
    """Serves connections; ``allowed`` holds ``(host, port)`` pairs, hosts in lower case."""

    def __init__(self, allowed: set[tuple[str, int]]) -> None:
        self.allowed = allowed
        self._slots = asyncio.Semaphore(_MAX_CONNECTIONS)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._slots.locked():
            await _answer(writer, 503, "too many connections")
            return
        async with self._slots:
            try:
                await self._handle(reader, writer)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                pass  # the client went away or spoke something else: nothing to forward
            finally:
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            destination = (host.strip("[]").lower(), int(port))
        elif method in ("GET", "HEAD"):
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await _answer(writer, 400, "only absolute http:// URLs are forwarded")
                return
            destination = (url.hostname.lower(), url.port or 80)
        else:
            await _answer(writer, 405, f"{method} is not forwarded")
            return
        if destination not in self.allowed:
            report("refused", host=destination[0], port=destination[1])
            await _answer(writer, 403, f"{destination[0]}:{destination[1]} is not a package index")
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*destination), _CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as exc:
            report("unreachable", host=destination[0], port=destination[1], error=str(exc) or type(exc).__name__)
            await _answer(writer, 502, "the package index did not answer")
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_relay(reader, upstream_writer), _relay(upstream_reader, writer))
            else:
                upstream_writer.write(_origin_request(method, url, header_lines))
                await upstream_writer.drain()
                await _relay(upstream_reader, writer)  # one request: nothing more is read from the client
        finally:
            upstream_writer.close()


def _origin_request(method: str, url, header_lines: list[str]) -> bytes:
    """The request as the origin server expects it, on a connection used once."""
    path = url.path or "/"
    if url.query:
        path += f"?{url.query}"
    kept = [line for line in header_lines if line and line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    return "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode("latin-1")


async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of stream or an idle timeout, waiting for the sink to drain (backpressure)."""
    try:
        while chunk := await asyncio.wait_for(source.read(_CHUNK), _IDLE_TIMEOUT_S):
            sink.write(chunk)
            await sink.drain()
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        if sink.can_write_eof():
            try:
                sink.write_eof()
            except OSError:
                pass


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = f"{text}\n".encode()
    writer.write(f"HTTP/1.1 {status} {text}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                 + body)
    try:
        await writer.drain()
    except OSError:
        pass


def _parse_destination(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host.lower(), int(port)


async def _main(port: int, allowed: set[tuple[str, int]]) -> None:
    server = await asyncio.start_server(IndexProxy(allowed).serve, "0.0.0.0", port, limit=_HEAD_LIMIT)
    report("listening", port=port, allowed=sorted(f"{host}:{port}" for host, port in allowed))
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.stack.compose.index_proxy", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--allow", type=_parse_destination, action="append", required=True, help="HOST:PORT")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args.port, set(args.allow)))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
