"""A service probe that answers in seconds: clients that retry an unreachable host can stall for minutes."""

from __future__ import annotations

import socket
from urllib.parse import urlparse


def tcp_reachable(url: str, timeout_s: float = 3.0) -> bool:
    """True when a TCP connection to the URL's host and port opens within `timeout_s`."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False
