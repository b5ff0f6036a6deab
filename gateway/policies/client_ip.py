"""The client's IP (T-31): the peer, or, behind trusted proxies, the right-most untrusted
X-Forwarded-For entry (nginx real_ip_recursive). Used for rate-limit keys and logs only."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from gateway.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOPS = 5  # X-Forwarded-For entries examined at most; beyond that the chain is not believed


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """`["10.0.0.0/8", "::1"]` -> networks; a bare address is a one-address network."""
    networks: list[Network] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {cidr!r} is not a CIDR ({exc})") from None
    return tuple(networks)


def client_ip(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The peer unless it is a trusted proxy; then walk X-Forwarded-For right to left past
    trusted addresses. A malformed entry stops the walk at the last good address; a chain made
    only of trusted addresses gives its left-most one.

    `client_ip("10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.0.0.2"], [10.0.0.0/8])` -> "1.2.3.4".
    """
    if not trusted and ":" not in peer:
        return peer  # the common case: no proxies to trust, a plain IPv4 peer as the OS gave it
    current = _parse(peer)
    if current is None:
        return peer  # not an IP (a unix socket, say): nothing to walk from
    if not _is_trusted(current, trusted):
        return str(current)
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries[-MAX_HOPS:]):
        address = _parse(entry)
        if address is None:
            break
        current = address
        if not _is_trusted(address, trusted):
            break
    return str(current)


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):  # "[::1]" as some proxies write IPv6
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # "::ffff:10.0.0.1" is 10.0.0.1 for trust and for keys
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
