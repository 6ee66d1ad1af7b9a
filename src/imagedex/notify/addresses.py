"""Which hosts webhooks and Slack targets may reach: public addresses only, unless the admin lists
an internal host or network in `delivery_allowed_hosts`.

A URL's host is checked twice. On save (`literal_refusal`) only what the text itself says: an IP
address in any form a resolver accepts (`127.1`, `0x7f000001`, `2130706433`, `[::ffff:7f00:1]`)
or a local name (`localhost`); names are not resolved then, because what a name resolves to when
saved says nothing about what it resolves to when sent. On send (`resolve`) the name is resolved
once, every address it gives is checked, and the request goes to one of those addresses, so a name
that answers differently the second time (DNS rebinding) cannot lead anywhere unchecked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from imagedex.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "delivery_allowed_hosts"

#: refused by default, with the word an error uses for each; first match names it
_REFUSED: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "cloud metadata"),
    ("100.100.100.200/32", "cloud metadata"),  # Alibaba Cloud
    ("fd00:ec2::254/128", "cloud metadata"),  # AWS over IPv6
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("169.254.0.0/16", "link-local"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # 255.255.255.255 included
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_REFUSED_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in _REFUSED)
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class AllowList:
    """What `delivery_allowed_hosts` lets through although internal: networks (an address is a
    /32 or /128) and host names (any address such a name resolves to is then accepted)."""

    networks: tuple[Network, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`10.0.0.0/8, 127.0.0.1, [::1], hooks.internal`; ConfigError naming a bad entry."""
        networks: list[Network] = []
        names: list[str] = []
        for raw in (text or "").split(","):
            entry = raw.strip()
            if not entry:
                continue
            bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
            try:
                networks.append(ipaddress.ip_network(bare, strict=False))
                continue
            except ValueError:
                pass
            address = ip_literal(bare)
            if address is not None:
                networks.append(ipaddress.ip_network(address))
            elif "/" not in bare and _is_host_name(bare):
                names.append(_normal_name(bare))
            else:
                raise ConfigError(
                    f"{entry!r} is neither an IP address, a network (10.0.0.0/8) nor a host name"
                )
        return cls(tuple(dict.fromkeys(networks)), tuple(dict.fromkeys(names)))

    def allows_name(self, host: str) -> bool:
        return _normal_name(host) in self.names

    def allows(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.networks if network.version == address.version
        )


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, in any form a resolver reads as one (`127.1`, `0x7f000001`,
    `017700000001`, `::ffff:127.0.0.1`, `fe80::1%eth0`), or None for a name."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0, %25 in URLs)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefxABCDEFX." for c in text):
        try:  # the libc reader: 127.1, 0x7f.1, 2130706433, octal parts
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is internal (`loopback`, `private`, `cloud metadata`, ...), or None. IPv6
    forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64) are judged by it too."""
    for candidate in _forms(address):
        for network, why in _REFUSED_NETWORKS:
            if candidate.version == network.version and candidate in network:
                return why
    return None


def _forms(address: IPAddress) -> list[IPAddress]:
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        carries_ipv4 = address in _NAT64 or address in _IPV4_COMPATIBLE
        if embedded is None and carries_ipv4 and int(address) > 1:  # :: and ::1 are themselves
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.teredo is not None:
            forms.extend(address.teredo)
        if embedded is not None:
            forms.append(embedded)
    return forms


def literal_refusal(host: str, allowed: AllowList) -> str | None:
    """On save: why the host as written is refused, or None (names are checked when sent)."""
    if allowed.allows_name(host):
        return None
    address = ip_literal(host)
    if address is None:
        name = _normal_name(host)
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            return f"{host} is this machine (loopback)"
        return None
    why = refusal(address)
    if why is None or allowed.allows(address):
        return None
    spelled = "" if host.strip("[]") == str(address) else f" ({address})"
    return f"{host} is a {why} address{spelled}"


def resolve(host: str, port: int, allowed: AllowList) -> list[IPAddress]:
    """On send: every address `host` resolves to, each checked; the caller connects to these and
    nothing else. `Refused` when any is internal and not allowed; OSError when it does not
    resolve (a retry may help)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if allowed.allows_name(host):
        return addresses
    for address in addresses:
        why = refusal(address)
        if why is not None and not allowed.allows(address):
            if ip_literal(host) == address:
                spelled = f"is a {why} address"
            else:
                spelled = f"resolves to a {why} address ({address})"
            raise Refused(
                f"{host} {spelled}; internal hosts are refused unless listed in {SETTING}"
            )
    return addresses


class Refused(Exception):
    """The destination is internal and not allowed: no retry changes that."""


def _normal_name(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _is_host_name(text: str) -> bool:
    labels = _normal_name(text).split(".")
    return all(
        0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) for label in labels
    )
