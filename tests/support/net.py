"""Network helpers for tests that start real servers and subprocesses.

``free_port`` hands out a port the kernel just considered free; another process may still take it
before the caller binds, so callers that start servers on it retry on a bind failure
(``tests.support.servers`` does).
"""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port`` right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Raises ``TimeoutError`` naming the address when nothing listens there within ``timeout``
    seconds (this bounds a wait; it is not a timing assertion).
    """
    deadline = time.monotonic() + timeout
    while not port_is_open(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted TCP connections on {host}:{port} "
                               f"within {timeout:g}s")
        time.sleep(0.05)
