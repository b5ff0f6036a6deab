"""A real DNS server on 127.0.0.1 (UDP, port 0) whose answers a test changes while it runs.

Built on dnspython's message codec (the same library the gateway resolves with, but none of its
resolver code): each query is parsed, answered from `records` (A and AAAA, TTL 0), NXDOMAIN for
a name it does not hold, or SERVFAIL for every query while `failing` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}  # name (no trailing dot) -> IPs
        self.failing = False
        self.queries = 0
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._asked = asyncio.Event()  # set at each query answered

    def address(self, name: str, port: int) -> str:
        """The backend address entry that resolves `name` here."""
        return f"dns://127.0.0.1:{self.port}/{name}:{port}"

    async def wait_queries(self, count: int, timeout_s: float = 5.0) -> None:
        """Until `count` queries have been answered in all (bounded)."""
        async with asyncio.timeout(timeout_s):
            while self.queries < count:
                self._asked.clear()
                await self._asked.wait()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        if self.failing:
            reply.set_rcode(dns.rcode.SERVFAIL)
        for question in query.question:
            if self.failing:
                break
            name = question.name.to_text().rstrip(".").lower()
            if name not in self.records:
                reply.set_rcode(dns.rcode.NXDOMAIN)
                continue
            v6 = question.rdtype == dns.rdatatype.AAAA
            ips = [ip for ip in self.records[name] if (":" in ip) == v6]
            if ips and question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                reply.answer.append(dns.rrset.from_text_list(
                    question.name, 0, dns.rdataclass.IN, question.rdtype, ips))
        assert self._transport is not None
        self._transport.sendto(reply.to_wire(), addr)
        self.queries += 1
        self._asked.set()


@asynccontextmanager
async def dns_server() -> AsyncIterator[DnsServer]:
    server = DnsServer()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=("127.0.0.1", 0))
    server.port = transport.get_extra_info("sockname")[1]
    try:
        yield server
    finally:
        transport.close()
