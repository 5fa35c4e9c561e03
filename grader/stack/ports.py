"""Free TCP ports on the loopback interface, for processes that bind them a while later.

A port found free is bound by its process only seconds later (an API binds after its
imports). Meanwhile another API of the same grading could be handed the same port, or any
``bind(0)`` (the stand-ins, the fault proxies) could get it from the kernel; the API then
fails to bind while the port answers for someone else, and its probes would reach the wrong
service. So a port is taken below the kernel's ephemeral range, which ``bind(0)`` never
uses, and never handed out twice by this process.
"""

from __future__ import annotations

import random
import socket
import threading

_EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
_LOWEST = 10_000  # clear of the well-known and usual service ports
_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on, not handed out before by this process.

    Another process may still take it before the caller binds it: the caller treats a bind
    failure ("address already in use") as "pick another port".
    """
    low, high = _below_ephemeral()
    with _lock:
        if high > low:
            for _ in range(100):
                port = random.randint(low, high)
                if port not in _handed_out and _bindable(port):
                    _handed_out.add(port)
                    return port
        return _kernel_pick()


def _below_ephemeral() -> tuple[int, int]:
    """The ports under the kernel's ephemeral range (empty when it starts too low to leave any)."""
    try:
        with open(_EPHEMERAL_RANGE, encoding="ascii") as ranges:
            first = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0, -1
    return _LOWEST, first - 1


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_pick() -> int:
    """What the kernel gives a ``bind(0)``: free now, but may be given again (the old way)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
