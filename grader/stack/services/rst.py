"""Ending a TCP connection with a reset (RST) instead of an orderly close."""

from __future__ import annotations

import asyncio
import socket
import struct

# SO_LINGER on with a zero timeout makes close() discard unsent data and send RST.
_LINGER_ZERO = struct.pack("ii", 1, 0)


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection of ``writer`` so that its peer sees "connection reset by peer"."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError:
            pass  # already closed: nothing left to reset
    writer.transport.abort()
