"""Free TCP ports on 127.0.0.1 for private services."""

from __future__ import annotations

import random
import socket

from tests.farm import free_port

__all__ = ["free_port", "free_port_in", "port_open"]


def free_port_in(low: int, high: int, attempts: int = 200) -> int:
    """A port in ``[low, high)`` that nothing listens on now (for services whose port fixes others)."""
    for _ in range(attempts):
        port = random.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in [{low}, {high}) after {attempts} attempts")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0
