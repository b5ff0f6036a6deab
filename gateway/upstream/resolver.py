"""DNS lookups of a dns: backend entry with dnspython's async resolver: every A and AAAA record
of the name (a Kubernetes headless Service gives one per ready pod), as instance addresses.

The one seam where dnspython's exceptions are translated: an answer that the name has no
records (NXDOMAIN, no A/AAAA) is an empty set; a lookup that did not get an answer (timeout,
SERVFAIL, no nameserver, no resolver configuration) is a ResolveFailed, and the caller keeps
the last good set.
"""

from __future__ import annotations

import asyncio
import ipaddress

import dns.asyncresolver
import dns.exception
import dns.resolver

from gateway.naming import DnsName

LOOKUP_TIMEOUT_S = 2.0  # per lookup (both record types), all retries of the resolver included


class ResolveFailed(Exception):
    """No answer was got; the message says why (never the name looked up)."""


class Resolver:
    """Looks up one DnsName: the system's resolver configuration, or the given nameserver."""

    def __init__(self, name: DnsName, timeout_s: float = LOOKUP_TIMEOUT_S) -> None:
        self.name = name
        self._timeout_s = timeout_s
        self._resolver: dns.asyncresolver.Resolver | None = None

    async def resolve(self) -> tuple[str, ...]:
        """The instance addresses ("ip:port", "[v6]:port"), sorted; () when there are none."""
        if _is_ip(self.name.host):
            return (self.name.address(self.name.host),)
        resolver = self._configured()
        answers = await asyncio.gather(
            *(self._records(resolver, rdtype) for rdtype in ("A", "AAAA")),
            return_exceptions=True,
        )
        ips: set[str] = set()
        for answer in answers:
            if isinstance(answer, BaseException):
                raise ResolveFailed(_why(answer)) from None
            ips.update(answer)
        return tuple(sorted(self.name.address(ip) for ip in ips))

    def _configured(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                if self.name.nameserver is None:
                    resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf: search, ndots
                    resolver.use_search_by_default = True  # "users" finds users.<ns>.svc...
                else:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = [self.name.nameserver]
                    resolver.port = self.name.nameserver_port
            except dns.exception.DNSException as exc:  # no resolv.conf, unreadable
                raise ResolveFailed(_why(exc)) from None
            resolver.lifetime = self._timeout_s
            self._resolver = resolver
        return self._resolver

    async def _records(self, resolver: dns.asyncresolver.Resolver, rdtype: str) -> list[str]:
        try:
            answer = await resolver.resolve(self.name.host, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        return [record.to_text() for record in answer.rrset or ()]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _why(exc: BaseException) -> str:
    """A short reason for the log: the exception's class, not its text (which names hosts)."""
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "no nameserver answered (SERVFAIL or refused)"
    return type(exc).__name__
