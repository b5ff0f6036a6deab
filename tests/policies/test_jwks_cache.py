"""The JWKS cache against a live server (T-27, T-28): rotation, outages, kid floods, discovery."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.auth.jwks import MISSING_KIDS, JwksCache, Sleep, allowed_jwks_uri
from gateway.auth.tokens import JwtVerifier
from gateway.config import Issuer
from gateway.errors import Unauthenticated, Unavailable
from tests.policies.jwks_server import (
    FakeClock,
    JwksServer,
    ManualSleep,
    Mode,
    SigningKey,
    claims,
    issuer_config,
    never,
)


class Auth:
    """One issuer's cache and verifier over the live server, on injected clocks."""

    def __init__(self, issuer: Issuer, clock: FakeClock, wall: FakeClock,
                 sleep: Sleep = never) -> None:
        self.cache = JwksCache(issuer, clock=clock, sleep=sleep)
        self.verifier = JwtVerifier((issuer,), {issuer.issuer: self.cache}, 4096, clock=wall)

    async def accepts(self, token: str) -> bool:
        try:
            await self.verifier.verify(token)
        except Unauthenticated as exc:
            assert exc.message == "unknown signing key", exc.message
            return False
        return True


@pytest.fixture
async def auth(jwks: JwksServer, clock: FakeClock, wall: FakeClock) -> AsyncIterator[Auth]:
    built = Auth(issuer_config(jwks), clock, wall)
    await built.cache.start()
    try:
        yield built
    finally:
        await built.cache.close()


def with_kid(token: str, kid: str) -> str:
    """The same token under another kid (no signing: cheap, and never verifiable)."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    new = base64.urlsafe_b64encode(json.dumps({**decoded, "kid": kid}).encode())
    return f"{new.rstrip(b'=').decode()}.{payload}.{signature}"


async def test_keys_rotate_by_kid(auth: Auth, jwks: JwksServer, clock: FakeClock,
                                  rsa_a: SigningKey, rsa_b: SigningKey) -> None:
    old, new = rsa_a.sign(claims(jwks.url)), rsa_b.sign(claims(jwks.url))
    assert await auth.accepts(old)
    jwks.keys = [rsa_b]  # the issuer rotates
    assert not await auth.accepts(new)  # within the cooldown: refused, no fetch
    assert jwks.fetches == 1
    clock.advance(30)
    assert await auth.accepts(new)  # the miss fetches once and finds it
    assert jwks.fetches == 2
    assert not await auth.accepts(old)  # the retired key is gone
    assert await auth.accepts(new)
    assert jwks.fetches == 2


@pytest.mark.parametrize("mode", ["error", "hang", "close", "huge", "redirect"])
async def test_an_outage_keeps_the_last_good_keys(auth: Auth, jwks: JwksServer, clock: FakeClock,
                                                  rsa_a: SigningKey, mode: Mode) -> None:
    known = rsa_a.sign(claims(jwks.url))
    jwks.mode = mode
    clock.advance(3600)  # far past the TTL
    assert jwks.seen.get_nowait() == "/jwks"  # the fetch at start
    miss = asyncio.create_task(auth.accepts(with_kid(known, "new-kid")))  # triggers a fetch
    assert await asyncio.wait_for(jwks.seen.get(), timeout=5) == "/jwks"
    for _ in range(100):  # known kids never wait for the fetch in flight
        assert await auth.accepts(known)
    if mode == "hang":
        assert not miss.done()
    assert not await miss
    # One fetch each: no redirect followed, no retry storm (aiohttp itself resends an
    # idempotent GET once when the server drops the connection).
    assert jwks.fetches == (3 if mode == "close" else 2)
    assert auth.cache.ready()
    assert await auth.accepts(known)


async def test_stale_keys_are_dropped_after_24_hours_without_a_fetch(
    auth: Auth, jwks: JwksServer, clock: FakeClock, rsa_a: SigningKey
) -> None:
    jwks.mode = "error"
    clock.advance(24 * 3600 + 1)
    with pytest.raises(Unavailable, match="not available yet"):  # the issuer, not the token
        await auth.accepts(rsa_a.sign(claims(jwks.url)))
    assert not auth.cache.ready()


async def test_startup_with_the_jwks_down_is_not_ready_until_keys_arrive(
    jwks: JwksServer, clock: FakeClock, wall: FakeClock, rsa_a: SigningKey
) -> None:
    jwks.mode = "error"
    down = Auth(issuer_config(jwks), clock, wall)
    await down.cache.start()
    try:
        token = rsa_a.sign(claims(jwks.url))
        assert not down.cache.ready()
        with pytest.raises(Unavailable, match="not available yet") as refused:  # 503, not 401
            await down.accepts(token)
        assert refused.value.retry_after_s is not None and refused.value.retry_after_s >= 1
        jwks.mode = "ok"
        clock.advance(30)
        assert await down.accepts(token)
        assert down.cache.ready()
    finally:
        await down.cache.close()


async def test_a_flood_of_random_kids_fetches_at_most_once_per_interval(
    auth: Auth, jwks: JwksServer, clock: FakeClock, rsa_a: SigningKey
) -> None:
    valid = rsa_a.sign(claims(jwks.url))
    started = clock()
    for _ in range(20):  # 1,000 random kids over 100 s, 50 at a time, with valid calls between
        randoms = [with_kid(valid, uuid.uuid4().hex) for _ in range(50)]
        results = await asyncio.gather(*(auth.accepts(t) for t in [*randoms, valid, valid]))
        assert results == [False] * 50 + [True, True]
        clock.advance(5)
    elapsed = clock() - started
    assert 2 <= jwks.fetches <= 1 + int(elapsed // 30)
    assert auth.cache.remembered_missing <= MISSING_KIDS


async def test_concurrent_misses_share_one_fetch(auth: Auth, jwks: JwksServer, clock: FakeClock,
                                                 rsa_a: SigningKey, rsa_b: SigningKey) -> None:
    jwks.keys = [rsa_a, rsa_b]
    clock.advance(30)
    token = rsa_b.sign(claims(jwks.url))
    assert await asyncio.gather(*(auth.accepts(token) for _ in range(200))) == [True] * 200
    assert jwks.fetches == 2


async def test_a_kid_missing_from_a_fetch_is_remembered(
    auth: Auth, jwks: JwksServer, clock: FakeClock, rsa_a: SigningKey
) -> None:
    token = with_kid(rsa_a.sign(claims(jwks.url)), "ghost")
    clock.advance(30)
    assert not await auth.accepts(token)
    assert (jwks.fetches, auth.cache.remembered_missing) == (2, 1)
    clock.advance(30)
    assert not await auth.accepts(token)  # remembered: asks nobody
    assert jwks.fetches == 2
    assert not await auth.accepts(with_kid(token, "another"))  # a new kid may ask again
    assert jwks.fetches == 3
    clock.advance(301)
    assert not await auth.accepts(token)  # forgotten after 5 min
    assert jwks.fetches == 4


async def test_background_refresh_at_80_percent_of_the_ttl_and_backoff_on_failure(
    jwks: JwksServer, clock: FakeClock, wall: FakeClock, rsa_a: SigningKey, rsa_b: SigningKey
) -> None:
    sleep = ManualSleep(clock)
    refreshing = Auth(issuer_config(jwks, jwks_ttl_s=100.0, jwks_min_refresh_interval_s=10.0),
                      clock, wall, sleep)
    await refreshing.cache.start()
    try:
        assert await sleep.next_delay() == pytest.approx(80.0)
        jwks.keys = [rsa_a, rsa_b]
        sleep.wake()
        assert await sleep.next_delay() == pytest.approx(80.0)  # refreshed; the next is due
        assert jwks.fetches == 2
        assert await refreshing.accepts(rsa_b.sign(claims(jwks.url)))
        assert jwks.fetches == 2  # found without a miss
        jwks.mode = "error"
        delays = []
        for _ in range(6):
            sleep.wake()
            delays.append(await sleep.next_delay())
        assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # doubling, capped at the cooldown
        assert await refreshing.accepts(rsa_b.sign(claims(jwks.url)))  # stale-if-error
        jwks.mode = "ok"
        sleep.wake()
        assert await sleep.next_delay() == pytest.approx(80.0)
    finally:
        await refreshing.cache.close()


async def test_discovery_finds_the_jwks_uri(jwks: JwksServer, clock: FakeClock, wall: FakeClock,
                                            ec_a: SigningKey) -> None:
    issuer = issuer_config(jwks, jwks_url=None, discovery=True)
    discovered = Auth(issuer, clock, wall)
    await discovered.cache.start()
    try:
        assert discovered.cache.ready()
        assert await discovered.accepts(ec_a.sign(claims(jwks.url)))
        clock.advance(30)
        assert not await discovered.accepts(with_kid(ec_a.sign(claims(jwks.url)), "x"))
        assert jwks.requests == {"/.well-known/openid-configuration": 1, "/jwks": 2}
    finally:
        await discovered.cache.close()


@pytest.mark.parametrize("problem", ["other origin", "issuer mismatch"])
async def test_discovery_refuses_a_foreign_jwks_uri_or_issuer(
    jwks: JwksServer, clock: FakeClock, wall: FakeClock, rsa_a: SigningKey, problem: str
) -> None:
    elsewhere = JwksServer(keys=[rsa_a])
    await elsewhere.start()
    if problem == "other origin":
        jwks.jwks_uri = f"{elsewhere.url}/jwks"  # plain http on another port: SSRF bait
    else:
        jwks.discovery_issuer = "https://someone-else.example"
    discovered = Auth(issuer_config(jwks, jwks_url=None, discovery=True), clock, wall)
    await discovered.cache.start()
    try:
        assert not discovered.cache.ready()
        assert elsewhere.fetches == 0
        assert jwks.fetches == 0
    finally:
        await discovered.cache.close()
        await elsewhere.close()


async def test_jku_and_embedded_keys_in_a_token_are_never_used(
    auth: Auth, jwks: JwksServer, clock: FakeClock, rsa_b: SigningKey
) -> None:
    attacker = JwksServer(keys=[rsa_b])
    await attacker.start()
    try:
        clock.advance(30)
        token = rsa_b.sign(claims(jwks.url), jku=f"{attacker.url}/jwks", x5u=f"{attacker.url}/x",
                           jwk=rsa_b.jwk())
        assert not await auth.accepts(token)
        assert attacker.requests.total() == 0
        assert jwks.fetches == 2  # the configured JWKS only, once for the unknown kid
    finally:
        await attacker.close()


@pytest.mark.parametrize(("uri", "allowed"), [
    ("https://keys.example/jwks", True),
    ("http://idp.example:8080/keys", True),  # the issuer's own origin
    ("http://idp.example/keys", False),  # another port
    ("http://169.254.169.254/latest/meta-data", False),
    ("https://", False),
    ("file:///etc/passwd", False),
    ("http://idp.example:99999/keys", False),
])
def test_which_discovered_jwks_uris_are_fetched(uri: str, allowed: bool) -> None:
    assert allowed_jwks_uri(uri, "http://idp.example:8080/realms/main") is allowed
