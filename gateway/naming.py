"""Backend address entries in gRPC's naming syntax: `host:port`, or a DNS name to resolve,
`dns:///name:port` (the system's resolver) or `dns://<nameserver>[:<port>]/name:port` (that DNS
server). Pure: parsing only; gateway.upstream.resolver does the lookups."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DNS_PORT = 53
_SCHEME = "dns:"


@dataclass(frozen=True, slots=True)
class DnsName:
    """A name whose A/AAAA records are the backend's instances, each on `port`."""

    host: str
    port: int
    nameserver: str | None = None  # an IP address; None = the system's resolver configuration
    nameserver_port: int = DNS_PORT

    def address(self, ip: str) -> str:
        """The instance address of one resolved IP."""
        return f"[{ip}]:{self.port}" if ":" in ip else f"{ip}:{self.port}"


Address = str | DnsName  # a str is a plain host:port, connected to as it is


def parse_address(entry: str) -> Address:
    """`entry` as a plain host:port or a DnsName; ValueError saying what is wrong."""
    if not entry.startswith(_SCHEME):
        _host_port(entry, entry)
        return entry
    rest = entry[len(_SCHEME):]
    if not rest.startswith("//"):
        raise ValueError(f"{entry!r}: write dns:///name:port or dns://server:port/name:port")
    authority, slash, target = rest[2:].partition("/")
    if not slash:
        raise ValueError(f"{entry!r}: write dns:///name:port or dns://server:port/name:port")
    host, port = _host_port(entry, target)
    if not host.replace("-", "").replace(".", "").replace("_", "").isalnum() or len(host) > 253:
        raise ValueError(f"{entry!r}: {host!r} is not a DNS name")
    if not authority:
        return DnsName(host, port)
    server, server_port = _nameserver(entry, authority)
    return DnsName(host, port, server, server_port)


def _host_port(entry: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not host:port")
    return host, int(port)


def _nameserver(entry: str, authority: str) -> tuple[str, int]:
    """The DNS server of dns://server[:port]/...: an IP literal ([v6] with a port), as gRPC has."""
    if authority.startswith("["):
        inside, close, after = authority[1:].partition("]")
        server, port = inside, (after[1:] if after.startswith(":") else "")
        if not close or (after and not after.startswith(":")):
            server = ""
    elif authority.count(":") == 1:
        server, _, port = authority.partition(":")
    else:
        server, port = authority, ""
    try:
        ipaddress.ip_address(server)
    except ValueError:
        raise ValueError(f"{entry!r}: the DNS server must be an IP address") from None
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{entry!r}: bad DNS server port {port!r}")
    return server, int(port) if port else DNS_PORT
