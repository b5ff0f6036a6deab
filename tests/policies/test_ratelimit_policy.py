"""The RateLimit policy over a plain terminal: rule matching, keying (T-23), refusals that never
reach the backend and how they render (T-22), and the builder's stores."""

from __future__ import annotations

import logging
import random
import uuid
from typing import Literal

import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from gateway.call import Call, Principal, Reply
from gateway.config import RateLimitRule, RateLimits, RedisLimits
from gateway.errors import Code, RateLimited
from gateway.policies.client_ip import client_ip, parse_networks
from gateway.policies.ratelimit import (
    RateLimit,
    build_rate_limiter,
    pushback_ms,
    rate_limit_headers,
    retry_info_detail,
)
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter
from tests.redis_server import RedisServer

GET = "/users.v1.Users/GetUser"
LIST = "/users.v1.Users/ListUsers"
ORDER = "/orders.v1.Orders/CreateOrder"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal:
    """A plain backend stand-in that counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> Reply:
        self.calls.append(call)
        return Reply(b"ok")


def policy(*rules: RateLimitRule, clock: Clock | None = None) -> RateLimit:
    return RateLimit(rules, MemoryLimiter(max_keys=1000, clock=clock or Clock()))


def rule(key: Literal["ip", "user", "api_key", "route"] = "ip", match: str = "*",
         rate: float = 1.0, burst: int = 2) -> RateLimitRule:
    return RateLimitRule(match=match, key=key, rate_per_s=rate, burst=burst)


async def admitted(limit: RateLimit, call: Call, attempts: int = 10) -> int:
    terminal = Terminal()
    for _ in range(attempts):
        try:
            assert (await limit(call, terminal)).payload == b"ok"
        except RateLimited:
            pass
    return len(terminal.calls)


def user(subject: str, via: str = "jwt") -> Principal:
    return Principal(subject=subject, via=via)


async def test_refusal_never_calls_the_terminal() -> None:
    limit, terminal = policy(rule(burst=2)), Terminal()
    call = Call(GET, b"", peer="1.2.3.4")
    await limit(call, terminal)
    await limit(call, terminal)
    with pytest.raises(RateLimited) as info:
        await limit(call, terminal)
    assert len(terminal.calls) == 2
    exc = info.value
    assert exc.code is Code.RESOURCE_EXHAUSTED and exc.http_status == 429
    assert (exc.limit, exc.remaining, exc.policy) == (2, 0, "r0-ip")
    assert exc.retry_after_s == pytest.approx(1.0)
    assert exc.reset_s == pytest.approx(2.0)
    assert exc.window_s == pytest.approx(2.0)
    assert "r0-ip" in exc.message and "retry in 1 s" in exc.message
    assert exc.details == (retry_info_detail(exc),)  # both edges render RetryInfo as is


async def test_refill_admits_again() -> None:
    clock = Clock()
    limit = policy(rule(rate=2.0, burst=1), clock=clock)
    call = Call(GET, b"", peer="1.2.3.4")
    assert await admitted(limit, call) == 1
    clock.now += 0.5
    assert await admitted(limit, call) == 1


async def test_no_matching_rule_means_no_limit() -> None:
    limit = policy(rule(match="/orders.v1.Orders/*", burst=1))
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 10
    assert await admitted(limit, Call(ORDER, b"", peer="1.2.3.4")) == 1


async def test_first_matching_rule_wins_and_rules_do_not_share_buckets() -> None:
    limit = policy(rule(match=GET, burst=1), rule(match="/users.v1.Users/*", burst=3))
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 1
    assert await admitted(limit, Call(LIST, b"", peer="1.2.3.4")) == 3


async def test_ip_key_separates_peers() -> None:
    limit = policy(rule("ip", burst=2))
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 2
    assert await admitted(limit, Call(GET, b"", peer="5.6.7.8")) == 2
    assert await admitted(limit, Call(LIST, b"", peer="1.2.3.4")) == 0  # same rule, same peer


async def test_user_key_follows_the_subject_and_falls_back_to_ip() -> None:
    limit = policy(rule("user", burst=2))
    alice_here = Call(GET, b"", peer="1.2.3.4", principal=user("alice"))
    alice_there = Call(GET, b"", peer="5.6.7.8", principal=user("alice"))
    assert await admitted(limit, alice_here) == 2
    assert await admitted(limit, alice_there) == 0  # one user, one bucket, whatever the IP
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4", principal=user("bob"))) == 2
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 2  # anonymous: by IP
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 0
    # a subject that looks like an address does not share that address' bucket
    assert await admitted(limit, Call(GET, b"", peer="9.9.9.9", principal=user("1.2.3.4"))) == 2


async def test_api_key_key_counts_per_key_and_others_by_ip() -> None:
    limit = policy(rule("api_key", burst=2))
    keyed = Call(GET, b"", peer="1.2.3.4", principal=user("key-1", via="api_key"))
    assert await admitted(limit, keyed) == 2
    assert await admitted(limit, Call(GET, b"", peer="5.6.7.8",
                                      principal=user("key-1", via="api_key"))) == 0
    jwt_user = Call(GET, b"", peer="1.2.3.4", principal=user("key-2", via="jwt"))
    assert await admitted(limit, jwt_user) == 2  # not an API key: counted by IP
    assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 0  # the same IP bucket


async def test_route_key_is_one_bucket_per_method() -> None:
    limit = policy(rule("route", burst=3))
    peers = [Call(GET, b"", peer=f"10.0.0.{i}") for i in range(5)]
    assert sum([await admitted(limit, call, attempts=1) for call in peers]) == 3
    assert await admitted(limit, Call(LIST, b"", peer="10.0.0.1")) == 3


async def test_rotating_forwarded_for_from_an_untrusted_peer_is_one_bucket() -> None:
    trusted = parse_networks(["10.0.0.0/8"])
    limit = policy(rule("user", burst=5))
    rng = random.Random(23)
    total = 0
    for _ in range(1000):
        spoofed = f"{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(256)}.1"
        peer = client_ip("198.51.100.7", [spoofed], trusted)
        total += await admitted(limit, Call(GET, b"", peer=peer), attempts=1)
    assert total == 5


async def test_behind_a_trusted_proxy_clients_get_their_own_buckets() -> None:
    trusted = parse_networks(["10.0.0.0/8"])
    limit = policy(rule("ip", burst=1))
    for client in ("1.1.1.1", "2.2.2.2"):
        peer = client_ip("10.0.0.1", [f"{client}, 10.0.0.2"], trusted)
        assert await admitted(limit, Call(GET, b"", peer=peer)) == 1


def refused(retry_after_s: float, reset_s: float = 4.2, remaining: int = 0) -> RateLimited:
    return RateLimited("over", retry_after_s, limit=10, remaining=remaining, reset_s=reset_s,
                       window_s=5.0, policy="r1-user")


@pytest.mark.parametrize(
    ("retry_after_s", "retry_after", "pushback"),
    [
        pytest.param(0.001, "1", "1", id="tiny-rounds-up-to-one-second"),
        pytest.param(0.2, "1", "200", id="fraction"),
        pytest.param(1.0, "1", "1000", id="whole"),
        pytest.param(1.0001, "2", "1001", id="just-over"),
        pytest.param(0.0, "1", "0", id="zero"),
    ],
)
def test_retry_after_and_pushback(retry_after_s: float, retry_after: str, pushback: str) -> None:
    exc = refused(retry_after_s)
    assert dict(rate_limit_headers(exc))["Retry-After"] == retry_after
    assert pushback_ms(exc) == pushback


def test_ratelimit_headers_follow_the_draft() -> None:
    assert rate_limit_headers(refused(0.3)) == [
        ("Retry-After", "1"),
        ("RateLimit-Policy", '"r1-user";q=10;w=5'),
        ("RateLimit", '"r1-user";r=0;t=5'),
    ]


def test_ratelimit_reset_never_points_before_retry_after() -> None:
    headers = dict(rate_limit_headers(refused(7.5, reset_s=3.0, remaining=2)))
    assert headers["Retry-After"] == "8"
    assert headers["RateLimit"] == '"r1-user";r=2;t=8'


def test_retry_info_detail_is_an_any_of_retry_info() -> None:
    packed = any_pb2.Any.FromString(retry_info_detail(refused(1.25)))
    assert packed.type_url == "type.googleapis.com/google.rpc.RetryInfo"
    info = error_details_pb2.RetryInfo()
    assert packed.Unpack(info)
    assert (info.retry_delay.seconds, info.retry_delay.nanos) == (1, 250_000_000)


async def test_memory_store_with_instances_takes_a_share_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = RateLimits(rules=(rule("ip", burst=9, rate=3.0),))
    with caplog.at_level(logging.WARNING, logger="gateway.policies.ratelimit"):
        limit = build_rate_limiter(config, instances=3)
    try:
        assert any("1/3" in record.getMessage() for record in caplog.records)
        assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 3
    finally:
        await limit.close()


async def test_memory_store_single_instance_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        limit = build_rate_limiter(RateLimits(rules=(rule("ip", burst=4),)))
    try:
        assert caplog.records == []
        assert await admitted(limit, Call(GET, b"", peer="1.2.3.4")) == 4
    finally:
        await limit.close()


@pytest.fixture
def redis_limits(redis_server: RedisServer) -> RateLimits:
    return RateLimits(
        store="redis",
        redis=RedisLimits(url=redis_server.url, timeout_s=0.5),
        rules=(rule("route", match="/redis.test/*", rate=0.01, burst=4),),
    )


@pytest.mark.redis
async def test_redis_store_shares_the_limit_between_instances(redis_limits: RateLimits) -> None:
    first = build_rate_limiter(redis_limits, instances=2)
    second = build_rate_limiter(redis_limits, instances=2)
    try:
        assert isinstance(first.limiter, RedisLimiter)
        method = f"/redis.test/{uuid.uuid4().hex}"
        call = Call(method, b"", peer="1.2.3.4")
        assert await admitted(first, call, 3) + await admitted(second, call, 3) == 4  # not 2x2
        assert first.limiter.redis_failures == 0
    finally:
        await first.close()
        await second.close()
