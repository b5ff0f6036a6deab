"""Client IP (T-31): the peer, unless a trusted proxy vouches via X-Forwarded-For (T-23)."""

from __future__ import annotations

import random

import pytest

from gateway.errors import ConfigError
from gateway.policies.client_ip import client_ip, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        pytest.param("203.0.113.7", [], "203.0.113.7", id="untrusted-peer-no-xff"),
        pytest.param("203.0.113.7", ["1.2.3.4"], "203.0.113.7", id="untrusted-peer-xff-ignored"),
        pytest.param("10.0.0.1", [], "10.0.0.1", id="trusted-peer-no-xff"),
        pytest.param("10.0.0.1", ["1.2.3.4"], "1.2.3.4", id="one-proxy"),
        pytest.param("10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.0.0.2"], "1.2.3.4",
                     id="spoofed-left-entry-ignored"),
        pytest.param("10.0.0.1", ["6.6.6.6", "1.2.3.4, 10.0.0.2"], "1.2.3.4",
                     id="several-header-lines"),
        pytest.param("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3", id="all-trusted-leftmost"),
        pytest.param("10.0.0.1", ["garbage"], "10.0.0.1", id="malformed-uses-peer"),
        pytest.param("10.0.0.1", ["1.2.3.4, garbage, 10.0.0.2"], "10.0.0.2",
                     id="malformed-stops-at-last-good"),
        pytest.param("10.0.0.1", ["1.2.3.4,"], "10.0.0.1", id="empty-entry-is-malformed"),
        pytest.param("10.0.0.1", [" 1.2.3.4 "], "1.2.3.4", id="whitespace"),
        pytest.param("10.0.0.1", ["[2001:db8::1]"], "2001:db8::1", id="bracketed-ipv6"),
        pytest.param("fd00::1", ["2001:db8::1"], "2001:db8::1", id="ipv6-proxy"),
        pytest.param("::ffff:10.0.0.1", ["1.2.3.4"], "1.2.3.4", id="v4-mapped-peer-trusted"),
        pytest.param("::ffff:203.0.113.7", ["1.2.3.4"], "203.0.113.7",
                     id="v4-mapped-untrusted-normalised"),
        pytest.param("10.0.0.1", ["1.2.3.4, 10.9.0.1, 10.9.0.2, 10.9.0.3, 10.9.0.4, 10.9.0.5"],
                     "10.9.0.1", id="hops-capped-at-5"),
        pytest.param("unix:/tmp/sock", ["1.2.3.4"], "unix:/tmp/sock", id="peer-not-an-ip"),
        pytest.param("", ["1.2.3.4"], "", id="no-peer"),
    ],
)
def test_client_ip(peer: str, xff: list[str], expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected


def test_nothing_trusted_means_the_peer_always() -> None:
    assert client_ip("10.0.0.1", ["1.2.3.4"], ()) == "10.0.0.1"


def test_rotating_xff_from_an_untrusted_peer_is_one_client() -> None:
    rng = random.Random(7)
    seen = {
        client_ip("198.51.100.9", [f"{rng.randrange(256)}.{rng.randrange(256)}.1.1"], TRUSTED)
        for _ in range(1000)
    }
    assert seen == {"198.51.100.9"}


def test_parse_networks_accepts_cidrs_and_addresses() -> None:
    nets = parse_networks(["10.0.0.0/8", " 192.168.1.7 ", "::1/128", "10.1.2.3/8"])
    assert [str(n) for n in nets] == ["10.0.0.0/8", "192.168.1.7/32", "::1/128", "10.0.0.0/8"]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-a-net", "", "10.0.0.0/8/8"])
def test_parse_networks_names_the_bad_cidr(bad: str) -> None:
    with pytest.raises(ConfigError, match="trusted_proxies") as info:
        parse_networks(["10.0.0.0/8", bad])
    assert repr(bad) in str(info.value)
