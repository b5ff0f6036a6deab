"""dns: backend addresses against a real DNS server on loopback whose answers change while the
test runs, and real backends on distinct loopback addresses (127.0.0.2, .3, ...) sharing a port.
No resolver is mocked; waits are bounded waits on a condition."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.call import Call
from gateway.config import load
from gateway.errors import GatewayError, Unavailable
from gateway.observability.metrics import GatewayMetrics
from gateway.ratelimit.memory import MemoryLimiter
from gateway.upstream.forward import Upstream
from services.faults import Fault
from services.server import RunningBackend, start_backend
from services.users import UsersService
from tests.certs import make_authority
from tests.upstream.dns_server import DnsServer, dns_server
from tests.upstream.helpers import GET, UNAVAILABLE, backend_config, calls
from users.v1 import users_pb2

NAME = "users.test"
INTERVAL = 0.2
Hosts = Callable[..., Awaitable[list[RunningBackend]]]


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with dns_server() as server:
        yield server


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    """start(*last_octets) -> users backends on 127.0.0.<n>, all on one port (DNS gives IPs)."""
    started: list[RunningBackend] = []
    port = 0

    async def start(*octets: int) -> list[RunningBackend]:
        nonlocal port
        fresh = []
        for octet in octets:
            backend = await start_backend("users", f"127.0.0.{octet}", port)
            port = backend.port
            fresh.append(backend)
        started.extend(fresh)
        return fresh

    yield start
    for backend in started:
        await backend.stop(0)


def _upstream(*addresses: str, **options: Any) -> Upstream:
    options.setdefault("resolve_interval_s", INTERVAL)
    options.setdefault("health_check", {"interval_s": INTERVAL})
    config = load(backend_config(addresses, **options))
    return Upstream.from_config(config, {"users.v1.Users": "users"})


def _get(timeout_s: float = 5.0, idempotent: bool = True) -> Call:
    return Call(method=GET, payload=users_pb2.GetUserRequest(id="u-1001").SerializeToString(),
                deadline=time.monotonic() + timeout_s, idempotent=idempotent)


def _addresses(upstream: Upstream) -> set[str]:
    return {i.address for i in upstream.snapshot()["users"].instances}


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """A bounded poll: the pool changes inside the gateway, with no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_dns_entry_is_every_a_record_next_to_plain_entries(dns: DnsServer,
                                                                 hosts: Hosts) -> None:
    a, b, plain = await hosts(2, 3, 1)
    dns.records[NAME] = ["127.0.0.2", "127.0.0.3"]
    upstream = _upstream(dns.address(NAME, a.port), plain.address)
    try:
        await upstream.start()
        assert _addresses(upstream) == {a.address, b.address, plain.address}
        assert upstream.ready()
        for _ in range(6):
            await upstream(_get())
    finally:
        await upstream.close()
    assert (calls(a), calls(b), calls(plain)) == (2, 2, 2)


async def test_added_instance_takes_calls_and_removed_one_drains(dns: DnsServer,
                                                                 hosts: Hosts) -> None:
    a, b = await hosts(2, 3)
    dns.records[NAME] = ["127.0.0.2"]
    upstream = _upstream(dns.address(NAME, a.port))
    try:
        await upstream.start()
        a.faults.set(GET, Fault(delay_s=1.5, times=1))  # one slow call in flight on a
        slow = asyncio.create_task(upstream(_get()))
        await a.faults.wait_call(GET)
        (old,) = upstream.discovery["users"].pool.instances

        dns.records[NAME] = ["127.0.0.3"]  # a goes, b comes
        await _until(lambda: _addresses(upstream) == {b.address})
        pool = upstream.discovery["users"].pool
        assert pool.draining == 1 and not slow.done()  # a takes no new calls, its call runs on
        for _ in range(3):
            await upstream(_get())
        assert calls(b) == 3 and len(b.faults.calls_to("/grpc.health.v1.Health/Check")) >= 1
        await slow  # the call in flight on the removed instance finishes normally
        await _until(lambda: pool.draining == 0)
        await _until(lambda: old.channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN)
    finally:
        await upstream.close()
    assert calls(a) == 1


async def test_state_of_addresses_that_stay_survives_a_re_resolution(dns: DnsServer,
                                                                    hosts: Hosts) -> None:
    a, b, c = await hosts(2, 3, 4)
    dns.records[NAME] = ["127.0.0.2", "127.0.0.3"]
    upstream = _upstream(dns.address(NAME, a.port), outlier={"consecutive_failures": 1},
                         health_check={"enabled": False})
    try:
        await upstream.start()
        kept = {i.address: i for i in upstream.discovery["users"].pool.instances}
        a.faults.set(GET, Fault(code=UNAVAILABLE, times=1))
        with pytest.raises(GatewayError):  # round robin from the first (sorted): a, ejected
            await upstream(_get(idempotent=False))
        ejected = {i.address for i in upstream.snapshot()["users"].instances if i.ejected}
        assert ejected == {a.address}

        asked = dns.queries
        dns.records[NAME] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        await _until(lambda: c.address in _addresses(upstream))
        await dns.wait_queries(asked + 4)  # and one more full lookup of the same set
        now = {i.address: i for i in upstream.discovery["users"].pool.instances}
        assert now[a.address] is kept[a.address] and now[b.address] is kept[b.address]
        status = {i.address: i for i in upstream.snapshot()["users"].instances}
        assert status[a.address].ejected and status[a.address].ejections == 1
    finally:
        await upstream.close()


async def test_failed_lookup_keeps_the_last_good_set(dns: DnsServer, hosts: Hosts,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    a, b = await hosts(2, 3)
    dns.records[NAME] = ["127.0.0.2", "127.0.0.3"]
    upstream = _upstream(dns.address(NAME, a.port))
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.upstream.discovery"):
            await upstream.start()
            dns.failing = True
            await _until(lambda: upstream.snapshot()["users"].resolve_failures >= 2)
        assert _addresses(upstream) == {a.address, b.address}
        for _ in range(4):
            await upstream(_get())
        assert (calls(a), calls(b)) == (2, 2)
        metrics = GatewayMetrics()
        metrics.watch(upstream, MemoryLimiter(max_keys=1))
        counted = metrics.registry.get_sample_value("gateway_backend_resolve_failures_total",
                                                    {"backend": "users"})
        assert counted is not None and counted >= 2
    finally:
        await upstream.close()
    logged = [r.getMessage() for r in caplog.records]
    assert any("backends.users.addresses.0: DNS lookup failed" in m for m in logged)
    assert all(NAME not in m for m in logged)  # the config entry, never the name


async def test_no_address_is_unavailable_naming_the_backend_until_one_appears(
        dns: DnsServer, hosts: Hosts) -> None:
    (a,) = await hosts(2)
    upstream = _upstream(dns.address(NAME, a.port))  # NXDOMAIN: zero addresses
    try:
        await upstream.start()
        assert not upstream.ready()
        with pytest.raises(Unavailable) as caught:
            await upstream(_get())
        assert str(caught.value) == ("backend 'users' has no instance "
                                     "(its addresses resolve to none)")
        dns.records[NAME] = ["127.0.0.2"]
        await _until(upstream.ready)
        await upstream(_get())
    finally:
        await upstream.close()
    assert calls(a) == 1


async def test_unreachable_instance_is_looked_up_again_at_once(dns: DnsServer,
                                                               hosts: Hosts) -> None:
    """resolve_interval_s 30: only the on-demand lookup can find the instance that moved."""
    a, b = await hosts(2, 3)
    dns.records[NAME] = ["127.0.0.2"]
    upstream = _upstream(dns.address(NAME, a.port), resolve_interval_s=30,
                         health_check={"enabled": False})
    try:
        await upstream.start()
        dns.records[NAME] = ["127.0.0.3"]
        await a.stop(0)
        with pytest.raises(Unavailable):
            await upstream(_get(idempotent=False))  # refused: the instance cannot be reached
        started = time.monotonic()
        await _until(lambda: _addresses(upstream) == {b.address}, timeout_s=3)
        assert time.monotonic() - started < 2  # the 1 s gap between on-demand lookups at most
        await upstream(_get())
    finally:
        await upstream.close()
    assert calls(b) == 1


async def test_calls_served_while_dns_adds_and_removes_an_instance(dns: DnsServer,
                                                                   hosts: Hosts) -> None:
    """Bounded load (8 callers, ~2 s): >= 99.9% served while c is added and a removed; c takes
    calls within resolve_interval_s + 1 s of appearing in DNS."""
    a, b, c = await hosts(2, 3, 4)
    dns.records[NAME] = ["127.0.0.2", "127.0.0.3"]
    upstream = _upstream(dns.address(NAME, a.port))
    served = failed = 0
    stop = asyncio.Event()

    async def caller() -> None:
        nonlocal served, failed
        while not stop.is_set():
            try:
                await upstream(_get())
                served += 1
            except GatewayError:
                failed += 1

    try:
        await upstream.start()
        callers = [asyncio.create_task(caller()) for _ in range(8)]
        await a.faults.wait_call(GET, 50)
        dns.records[NAME] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        added = time.monotonic()
        await c.faults.wait_call(GET)
        taking_calls_after = time.monotonic() - added
        dns.records[NAME] = ["127.0.0.3", "127.0.0.4"]
        await _until(lambda: a.address not in _addresses(upstream))
        await c.faults.wait_call(GET, len(c.faults.calls_to(GET)) + 200)
        stop.set()
        await asyncio.gather(*callers)
    finally:
        await upstream.close()
    total = served + failed
    print(f"served {served} of {total} calls ({served / total:.4%}) while an instance was added "
          f"and one removed; the new one took calls {taking_calls_after * 1000:.0f} ms after "
          f"it appeared in DNS (resolve_interval_s {INTERVAL})")
    assert served / total >= 0.999
    assert taking_calls_after < INTERVAL + 1


async def test_tls_checks_the_resolved_name_not_the_ip(dns: DnsServer, tmp_path: Path) -> None:
    """The certificate holds localhost and 127.0.0.1: a name resolved to 127.0.0.1 must still
    be in it (the channel's authority is the DNS name, as with gRPC's own resolver)."""
    ca = make_authority(tmp_path)
    leaf = ca.issue(tmp_path, "users")
    server = grpc.aio.server()
    UsersService().add_to(server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(leaf.key.read_bytes(), leaf.cert.read_bytes())]))
    await server.start()
    dns.records.update({"localhost": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    tls = {"ca_file": str(ca.cert)}
    try:
        for name, ok in (("localhost", True), ("other.example", False)):
            upstream = _upstream(dns.address(name, port), tls=tls,
                                 health_check={"enabled": False})
            try:
                await upstream.start()
                if ok:
                    await upstream(_get())
                else:
                    with pytest.raises(GatewayError, match="unavailable"):
                        await upstream(_get(idempotent=False))
            finally:
                await upstream.close()
    finally:
        await server.stop(None)


async def test_ip_literal_needs_no_lookup(hosts: Hosts) -> None:
    """dns:///127.0.0.2:port: the system resolver path, answered without a query."""
    (a,) = await hosts(2)
    upstream = _upstream(f"dns:///127.0.0.2:{a.port}", health_check={"enabled": False})
    try:
        await upstream.start()
        assert _addresses(upstream) == {a.address}
        await upstream(_get())
    finally:
        await upstream.close()
    assert calls(a) == 1
