"""Backend address entries: host:port, dns:///name:port, dns://server[:port]/name:port."""

from __future__ import annotations

import pytest

from gateway.config import load
from gateway.errors import ConfigError
from gateway.naming import DnsName, parse_address
from tests.upstream.helpers import backend_config


@pytest.mark.parametrize(("entry", "parsed"), [
    ("10.0.0.7:50051", "10.0.0.7:50051"),
    ("[::1]:50051", "[::1]:50051"),
    ("users:50051", "users:50051"),
    ("dns:///users-headless.default.svc.cluster.local:50051",
     DnsName("users-headless.default.svc.cluster.local", 50051)),
    ("dns://127.0.0.1:5353/users.test:7", DnsName("users.test", 7, "127.0.0.1", 5353)),
    ("dns://10.96.0.10/users:50051", DnsName("users", 50051, "10.96.0.10", 53)),
    ("dns://[::1]:53/users:1", DnsName("users", 1, "::1", 53)),
])
def test_entries_that_parse(entry: str, parsed: object) -> None:
    assert parse_address(entry) == parsed


@pytest.mark.parametrize(("entry", "problem"), [
    ("users", "is not host:port"),
    ("dns:///users", "is not host:port"),
    ("dns:///users:0", "is not host:port"),
    ("dns:users:50051", "write dns:///name:port"),
    ("dns://10.0.0.1", "write dns:///name:port"),
    ("dns://resolver.local:53/users:1", "the DNS server must be an IP address"),
    ("dns://[::1/users:1", "the DNS server must be an IP address"),
    ("dns://10.0.0.1:99999/users:1", "bad DNS server port"),
    ("dns:///us ers:1", "is not a DNS name"),
])
def test_entries_that_do_not(entry: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_address(entry)


def test_config_names_the_entry_and_bounds_the_interval() -> None:
    with pytest.raises(ConfigError, match=r"backends\.users\.addresses\.1.*not host:port"):
        load(backend_config(["dns:///users:1", "dns:///users"]))
    with pytest.raises(ConfigError, match=r"backends\.users\.resolve_interval_s"):
        load(backend_config(["dns:///users:1"], resolve_interval_s=0.01))
    config = load(backend_config(["dns:///users:1"]))
    assert config.backends["users"].resolve_interval_s == 30
