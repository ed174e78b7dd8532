"""Whether a host name or address stays on this machine."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` (and names under ``.localhost``) and loopback addresses.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
