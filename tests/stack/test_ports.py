"""free_port: never the same port twice in a process, never one a bind(0) could be given."""

from __future__ import annotations

import socket
from pathlib import Path

from grader.stack.ports import free_port


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < first_ephemeral for port in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))
        sock.listen()
        # bind(0) draws from the ephemeral range only: it can never take a port handed out here.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
            other.bind(("127.0.0.1", 0))
            assert other.getsockname()[1] >= first_ephemeral
