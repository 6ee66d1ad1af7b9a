"""The client's address and scheme from `X-Forwarded-For` / `X-Forwarded-Proto`, believed only
when the connection comes from a `trusted_proxies` address; from anyone else those headers are
ignored (a client could otherwise claim a new address per request and escape the login limit).

`imagedex up` turns uvicorn's own handling of these headers off (it trusts loopback), so this is
the one place that decides.
"""

from __future__ import annotations

import ipaddress
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """`trusted_proxies` (validated in config.py) as networks; a bare address is a /32 or /128."""
    return [ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()]


def _trusted(host: str, networks: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in networks)


def forwarded_client(peer: str, forwarded_for: list[str], networks: list[Network]) -> str:
    """The client: walking back from the nearest hop, the first address that is not a trusted
    proxy (the hops to its left were written by the client itself and prove nothing)."""
    if not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop.strip("[]")
    return hops[0].strip("[]") if hops else peer


class TrustedProxies:
    """ASGI middleware: sets the scope's client and scheme from a trusted proxy's headers."""

    def __init__(self, app: Any, trusted_proxies: str) -> None:
        self.app = app
        self.networks = parse_networks(trusted_proxies)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and _trusted(client[0], self.networks):
            headers = scope.get("headers", ())
            hops = [v.decode("latin-1") for n, v in headers if n == b"x-forwarded-for"]
            protos = [v.decode("latin-1") for n, v in headers if n == b"x-forwarded-proto"]
            scope = dict(scope)
            if hops:
                scope["client"] = (forwarded_client(client[0], hops, self.networks), 0)
            proto = protos[-1].split(",")[-1].strip().lower() if protos else ""
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)
