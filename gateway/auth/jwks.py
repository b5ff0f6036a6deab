"""Verification keys per issuer: static keys plus an async JWKS cache (T-27, T-28).

Fetched keys come from the issuer's `jwks_url`, or from the `jwks_uri` its OIDC discovery
document names, and are kept by kid:

* refreshed in the background at 80% of `jwks_ttl_s`; a failed fetch keeps the last good keys
  (stale-if-error, for up to 24 h) and is retried after 1 s, doubling up to
  `jwks_min_refresh_interval_s`;
* an unknown kid triggers a fetch at most once per `jwks_min_refresh_interval_s`, and
  concurrent misses share that one fetch (single flight). A kid still missing from a fetch the
  miss waited for is remembered (at most 1024 kids, 5 min) and triggers no fetch again; a kid
  refused only because of the cooldown, or after a fetch that failed, is not remembered, so a
  key the issuer has just published (or an issuer back from an outage) is found by the first
  fetch the cooldown allows;
* every fetch has a timeout (`jwks_fetch_timeout_s`), reads at most 64 KiB and follows no
  redirect (aiohttp resends a GET once, by itself, when the server drops the connection).

SSRF: the gateway fetches only URLs from its config, or a discovered `jwks_uri` that is https or
on the issuer's own origin (scheme, host and port); the discovery document's `issuer` must equal
the configured one. The token headers `jku`, `x5u`, `x5c` and `jwk` are never read, so a token
cannot point the gateway at a URL or bring its own key. pyjwt's PyJWK parses each key, bound to
one algorithm; PyJWKClient is not used (blocking urllib, a fetch per miss, cache lost on error).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK, PyJWTError
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.config import Issuer, StaticKey, static_key_pem
from gateway.errors import ConfigError

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 64 * 1024
MAX_STALE_S: Final = 24 * 3600.0  # stale-if-error: last good keys serve this long at most
REFRESH_AT: Final = 0.8  # of the TTL
FAILED_REFETCH_S: Final = 1.0  # first retry after a failed fetch; doubles
MISSING_KIDS: Final = 1024
MISSING_TTL_S: Final = 300.0
MAX_KID_CHARS: Final = 256  # a longer kid is unknown without asking the issuer

# Which key each allowed algorithm needs: (kty, the curves it may have; () = any).
_KEY_TYPE: Final = MappingProxyType({
    "RS256": ("RSA", ()), "RS384": ("RSA", ()), "RS512": ("RSA", ()),
    "PS256": ("RSA", ()), "PS384": ("RSA", ()), "PS512": ("RSA", ()),
    "ES256": ("EC", ("P-256",)), "ES384": ("EC", ("P-384",)), "ES512": ("EC", ("P-521",)),
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
})

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class JwksError(Exception):
    """A fetch or a document that cannot be used; the cache keeps its last good keys."""


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """One public key, parsed once for each allowed algorithm its type fits."""

    kid: str | None
    by_algorithm: Mapping[str, PyJWK]

    def for_algorithm(self, alg: str) -> PyJWK | None:
        return self.by_algorithm.get(alg)


def parse_jwk(data: Mapping[str, Any], algorithms: Sequence[str]) -> VerificationKey | None:
    """A JWK as a verification key for those `algorithms` it fits, or None when unusable.

    Refused: encryption keys (`use` other than "sig"), private or symmetric keys, a declared
    `alg` other than the token's, a curve that does not match, RSA keys under 2048 bits.
    """
    kid = data.get("kid")
    if data.get("use", "sig") != "sig" or "d" in data or not isinstance(kid, str | None):
        return None
    declared = data.get("alg")
    fits: dict[str, PyJWK] = {}
    for alg in algorithms:
        kty, curves = _KEY_TYPE[alg]
        if data.get("kty") != kty or (curves and data.get("crv") not in curves):
            continue
        if declared is not None and declared != alg:
            continue
        try:
            key = PyJWK(dict(data), algorithm=alg)
        except PyJWTError:
            continue
        if key.Algorithm.check_key_length(key.key) is None:  # None: long enough
            fits[alg] = key
    return VerificationKey(kid, MappingProxyType(fits)) if fits else None


def parse_jwks(document: object, algorithms: Sequence[str]) -> tuple[VerificationKey, ...]:
    """The usable keys of a JWK Set document (RFC 7517 section 5); others are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("not a JWK Set (want an object with a list of keys)")
    keys = (parse_jwk(jwk, algorithms) for jwk in document["keys"] if isinstance(jwk, dict))
    return tuple(key for key in keys if key is not None)


def static_key(issuer: Issuer, key: StaticKey) -> VerificationKey:
    """A key given in the config; a key that fits none of the issuer's algorithms is an error."""
    data = dict(key.jwk) if key.jwk is not None else _jwk_from_pem(issuer,
                                                                     static_key_pem(key) or "")
    if key.kid is not None:
        data["kid"] = key.kid
    parsed = parse_jwk(data, issuer.algorithms)
    if parsed is None:
        raise ConfigError(
            f"issuer {issuer.issuer}: key {key.kid or '(no kid)'} fits none of the algorithms "
            f"{', '.join(issuer.algorithms)} (or is private, or RSA under 2048 bits)"
        )
    return parsed


def _jwk_from_pem(issuer: Issuer, pem: str) -> dict[str, Any]:
    try:
        public = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeError):
        raise ConfigError(f"issuer {issuer.issuer}: a key's pem is not a PEM public key") from None
    if isinstance(public, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public, as_dict=True)
    if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return OKPAlgorithm.to_jwk(public, as_dict=True)
    raise ConfigError(f"issuer {issuer.issuer}: a key's pem is not an RSA, EC or EdDSA key")


def allowed_jwks_uri(jwks_uri: str, issuer: str) -> bool:
    """A discovered jwks_uri is fetched only if https, or on the issuer's own origin."""
    try:
        uri, origin = urlsplit(jwks_uri), urlsplit(issuer)
        if uri.scheme == "https" and uri.hostname:
            return True
        return uri.scheme in ("http", "https") and bool(uri.hostname) and (
            (uri.scheme, uri.hostname, uri.port) == (origin.scheme, origin.hostname, origin.port)
        )
    except ValueError:  # e.g. a port out of range
        return False


@dataclass(frozen=True, slots=True)
class _KeySet:
    keys: tuple[VerificationKey, ...] = ()
    by_kid: Mapping[str, VerificationKey] = field(default_factory=dict)

    @staticmethod
    def of(keys: Iterable[VerificationKey]) -> _KeySet:
        listed = tuple(keys)
        by_kid: dict[str, VerificationKey] = {}
        for key in listed:
            if key.kid is not None:
                by_kid.setdefault(key.kid, key)  # the first key with a kid wins
        return _KeySet(listed, MappingProxyType(by_kid))


class JwksCache:
    """The keys of one issuer. `start()` fetches once and begins background refresh."""

    def __init__(self, issuer: Issuer, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.issuer = issuer
        self._clock = clock
        self._sleep = sleep
        self._static = tuple(static_key(issuer, key) for key in issuer.keys)
        self._current = _KeySet.of(self._static)
        self._fetched_at: float | None = None
        self._jwks_uri = issuer.jwks_url
        self._last_attempt = -math.inf
        self._failures = 0
        self._inflight: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._missing: OrderedDict[str, float] = OrderedDict()  # kid -> remembered until
        self._session: aiohttp.ClientSession | None = None
        self._owns_session = False

    @property
    def remote(self) -> bool:
        """Whether keys are fetched (a JWKS URL or discovery), not only given in the config."""
        return self.issuer.jwks_url is not None or self.issuer.discovery

    async def start(self, session: aiohttp.ClientSession | None = None) -> None:
        """Fetch once (a failure leaves the cache not ready) and start background refresh.

        `session` is used and left open; without one the cache opens and closes its own.
        """
        if not self.remote or self._refresher is not None:
            return
        if session is None:  # one connection per fetch: fetches are minutes apart
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                            cookie_jar=aiohttp.DummyCookieJar())
            self._owns_session = True
        self._session = session
        await self._fetch_shared()
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def close(self) -> None:
        for task in (self._refresher, self._inflight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._inflight = None
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    @property
    def remembered_missing(self) -> int:
        """How many unknown kids are remembered now (bounded by MISSING_KIDS)."""
        return len(self._missing)

    def ready(self) -> bool:
        """Keys to verify with: always for static-only issuers; else once a fetch succeeded."""
        return not self.remote or self._fetched_at is not None and bool(self._keys().keys)

    def retry_after_s(self) -> float:
        """About when keys may be there: the next background fetch, at most the cooldown."""
        return max(1.0, min(self._next_refresh_in(), self.issuer.jwks_min_refresh_interval_s))

    async def lookup(self, kid: str | None) -> tuple[VerificationKey, ...]:
        """The key with this kid (or every key, for a token without kid); () if none.

        A miss may wait for one shared fetch (at most `jwks_fetch_timeout_s`), never for more.
        """
        keys = self._keys()
        if kid is None:
            if not keys.keys and self.remote and await self._fetch_if_allowed():
                keys = self._keys()
            return keys.keys
        found = keys.by_kid.get(kid)
        if found is not None:
            return (found,)
        if not self.remote or len(kid) > MAX_KID_CHARS or self._remembered_missing(kid):
            return ()
        if not await self._fetch_if_allowed():
            return ()  # cooldown: refused, not remembered
        found = self._keys().by_kid.get(kid)
        if found is None:
            if not self._failures:  # a failed fetch says nothing about the kid
                self._remember_missing(kid)
            return ()
        return (found,)

    def _keys(self) -> _KeySet:
        if self._fetched_at is not None and self._clock() - self._fetched_at > MAX_STALE_S:
            log.error("JWKS of %s: no successful fetch for 24 h; dropping its keys",
                      self.issuer.issuer)
            self._fetched_at = None
            self._current = _KeySet.of(self._static)
        return self._current

    def _remembered_missing(self, kid: str) -> bool:
        until = self._missing.get(kid)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._missing[kid]
        return False

    def _remember_missing(self, kid: str) -> None:
        self._missing[kid] = self._clock() + MISSING_TTL_S
        self._missing.move_to_end(kid)
        while len(self._missing) > MISSING_KIDS:
            self._missing.popitem(last=False)

    async def _fetch_if_allowed(self) -> bool:
        """Join the fetch in flight, or start one unless the cooldown forbids; True if awaited."""
        cooling = self._clock() - self._last_attempt < self.issuer.jwks_min_refresh_interval_s
        if cooling and (self._inflight is None or self._inflight.done()):
            return False
        await asyncio.shield(self._fetch_shared())
        return True

    def _fetch_shared(self) -> asyncio.Task[None]:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch())
        return self._inflight

    async def _refresh_forever(self) -> None:
        while True:
            await self._sleep(self._next_refresh_in())
            if self._failures or self._next_refresh_in() <= 0:  # else a miss refreshed meanwhile
                await self._fetch_shared()

    def _next_refresh_in(self) -> float:
        if self._failures or self._fetched_at is None:
            cap = max(FAILED_REFETCH_S, self.issuer.jwks_min_refresh_interval_s)
            return min(FAILED_REFETCH_S * (1 << min(max(self._failures - 1, 0), 16)), cap)
        due = self._fetched_at + REFRESH_AT * self.issuer.jwks_ttl_s
        return max(0.0, due - self._clock())

    async def _fetch(self) -> None:
        """One fetch; never raises: a failure is logged and the last good keys stay."""
        self._last_attempt = self._clock()
        try:
            keys = await self._download()
        except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError, JwksError) as exc:
            self._failures += 1
            log.warning("JWKS of %s: fetch failed (%s); keeping %d cached keys",
                        self.issuer.issuer, str(exc) or type(exc).__name__,
                        len(self._current.keys))
            return
        except Exception:  # a bug must not end background refresh
            self._failures += 1
            log.exception("JWKS of %s: fetch failed", self.issuer.issuer)
            return
        self._current = _KeySet.of((*self._static, *keys))
        self._fetched_at = self._clock()
        self._failures = 0
        self._missing.clear()

    async def _download(self) -> tuple[VerificationKey, ...]:
        jwks_uri = self._jwks_uri or await self._discover()
        keys = parse_jwks(await self._get_json(jwks_uri), self.issuer.algorithms)
        if not keys:
            raise JwksError("the JWK Set holds no key usable with the allowed algorithms")
        return keys

    async def _discover(self) -> str:
        """The jwks_uri of the issuer's OpenID Connect discovery document (kept once found)."""
        issuer = self.issuer.issuer
        document = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise JwksError("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not allowed_jwks_uri(jwks_uri, issuer):
            raise JwksError("discovered jwks_uri is neither https nor on the issuer's origin")
        self._jwks_uri = jwks_uri
        return jwks_uri

    async def _get_json(self, url: str) -> object:
        if self._session is None:
            raise JwksError("the cache is not started")
        timeout = aiohttp.ClientTimeout(total=self.issuer.jwks_fetch_timeout_s)
        async with self._session.get(url, timeout=timeout, allow_redirects=False,
                                     headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise JwksError(f"{url} answered HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(16 * 1024):
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise JwksError(f"{url} sent more than {MAX_BODY_BYTES} bytes")
        return json.loads(body)
