"""JWT bearer tokens (T-25, T-26): pyjwt checks the signature, iss and aud; the rest is here.

In order: size cap (before any parsing); compact JWS shape; unverified header; the unverified
`iss` picks the issuer (exact match, else refused); `alg` in that issuer's allow-list (which
holds asymmetric algorithms only, so never `none` or HS*); the key by `kid` from the issuer's
JwksCache, which must fit `alg` (key type and curve: an HS256 token "signed" with the issuer's
public key finds no HMAC key); pyjwt verifies with the key bound to that one algorithm; then
`exp` (required), `nbf`, `iat` and the maximum lifetime against an injected wall clock with
leeway `clock_skew_s`; then subject, roles, scopes and mapped claims, which must be safe to put
into metadata (visible ASCII without ","; mapped claims printable ASCII) or the token is refused;
roles and scopes also in the shape the issuer declares (a list, or a space-separated string)
and within its caps on count and length.
Each refusal is Unauthenticated with a short message naming the problem, never the token. A key
that cannot be found while the issuer's keys were never fetched (its JWKS down since start, or
for 24 h) is Unavailable with a retry-after instead: the token may well be good (T-27).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import jwt
from jwt import PyJWK

from gateway.auth.common import is_name, is_text, rejected
from gateway.auth.jwks import JwksCache
from gateway.call import Principal
from gateway.config import ClaimFormat, Issuer
from gateway.errors import Unavailable

_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# pyjwt errors -> our message; subclasses before their bases.
_REASONS: Final = (
    (jwt.InvalidSignatureError, "token signature invalid"),
    (jwt.InvalidAudienceError, "token audience not allowed"),
    (jwt.InvalidIssuerError, "token issuer not allowed"),
    (jwt.InvalidAlgorithmError, "token algorithm not allowed"),
    (jwt.InvalidKeyError, "signing key refused"),
    (jwt.DecodeError, "malformed token"),
)


class JwtVerifier:
    """Bearer token -> Principal(via="jwt"), or Unauthenticated."""

    def __init__(self, issuers: Sequence[Issuer], keys: Mapping[str, JwksCache],
                 max_token_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._keys = keys  # issuer -> its key cache
        self._max_token_bytes = max_token_bytes
        self._clock = clock  # wall clock (seconds since the epoch), as exp/nbf/iat are

    async def verify(self, token: str) -> Principal:
        if len(token) > self._max_token_bytes:
            raise rejected(f"token larger than {self._max_token_bytes} bytes")
        if not _COMPACT.fullmatch(token):  # also refuses non-ASCII, so len() counted bytes
            raise rejected("malformed token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise rejected("malformed token") from None
        iss = unverified.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise rejected("token issuer not allowed")
        alg = header.get("alg")
        if alg not in issuer.algorithms:
            raise rejected("token algorithm not allowed")
        cache = self._keys[issuer.issuer]
        candidates = await cache.lookup(header.get("kid"))
        if not candidates:
            if not cache.ready():  # keys never fetched: the issuer is down, not the token bad
                raise Unavailable("the token issuer's signing keys are not available yet",
                                  retry_after_s=cache.retry_after_s())
            raise rejected("unknown signing key")
        keys = [key for c in candidates if (key := c.for_algorithm(alg)) is not None]
        if not keys:
            raise rejected("token algorithm does not fit the signing key")
        payload = _verified(token, keys, alg, issuer)
        _check_times(payload, issuer, self._clock())
        return _principal(payload, issuer)


def _verified(token: str, keys: Sequence[PyJWK], alg: str, issuer: Issuer) -> dict[str, Any]:
    """The payload, once one of `keys` verifies the signature (several only without a kid)."""
    for key in keys:
        try:
            payload: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[alg], audience=list(issuer.audiences),
                issuer=issuer.issuer,
                options={"require": ["exp", "iss", "aud"], "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False,
                         "enforce_minimum_key_length": True},
            )
            return payload
        except jwt.InvalidSignatureError:
            continue
        except jwt.MissingRequiredClaimError as exc:
            raise rejected(f"token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)),
                          "invalid token")
            raise rejected(reason) from None
    raise rejected("token signature invalid")


def _check_times(payload: Mapping[str, Any], issuer: Issuer, now: float) -> None:
    leeway = issuer.clock_skew_s
    exp = _instant(payload, "exp")
    nbf = _instant(payload, "nbf")
    iat = _instant(payload, "iat")
    if exp is None:
        raise rejected("token lacks the exp claim")
    if exp <= now - leeway:
        raise rejected("token expired")
    if nbf is not None and nbf > now + leeway:
        raise rejected("token not yet valid")
    if iat is not None and iat > now + leeway:
        raise rejected("token issued in the future")
    if exp - (now if iat is None else iat) > issuer.max_lifetime_s:
        raise rejected("token lifetime exceeds the allowed maximum")


def _instant(payload: Mapping[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise rejected(f"token {claim} claim is not a number")
    return float(value)


def _principal(payload: Mapping[str, Any], issuer: Issuer) -> Principal:
    subject = _claim(payload, issuer.subject_claim)
    if subject is None:
        raise rejected(f"token lacks the {issuer.subject_claim} claim")
    if not is_name(subject):
        raise rejected("token subject has characters not allowed in metadata")
    claims = []
    for name, key in issuer.claims_to_metadata.items():
        value = _claim(payload, name)
        if value is None:
            continue
        text = _as_text(value)
        if text is None or not is_text(text):
            raise rejected(f"token claim {name} is not printable ASCII text")
        claims.append((key, text))
    return Principal(
        subject=subject,
        roles=_names(payload, issuer.roles_claim, issuer.roles_claim_format, issuer),
        scopes=_names(payload, issuer.scopes_claim, issuer.scopes_claim_format, issuer),
        via="jwt",
        claims=tuple(claims),
    )


def _as_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _names(payload: Mapping[str, Any], claim: str, form: ClaimFormat,
           issuer: Issuer) -> tuple[str, ...]:
    """Roles or scopes, in the shape the issuer declares for the claim (a JSON array of strings,
    or one space-separated string), at most `max_claim_values` of at most
    `max_claim_value_chars` each. A claim in another shape is refused, not guessed at: a
    string "admin" where a list is expected is a token the issuer did not mean to write."""
    value = _claim(payload, claim)
    if value is None:
        return ()
    if form == "space_separated":
        if not isinstance(value, str):
            raise rejected(f"token claim {claim} must be a space-separated string")
        names: list[Any] = [name for name in value.split(" ") if name != ""]
    elif isinstance(value, list) and all(isinstance(name, str) for name in value):
        names = value
    else:
        raise rejected(f"token claim {claim} must be a JSON array of strings")
    if len(names) > issuer.max_claim_values:
        raise rejected(f"token claim {claim} has more than {issuer.max_claim_values} values")
    if any(len(name) > issuer.max_claim_value_chars for name in names):
        raise rejected(f"token claim {claim} has a value longer than "
                       f"{issuer.max_claim_value_chars} characters")
    if not all(is_name(name) for name in names):
        raise rejected(f"token claim {claim} has characters not allowed in metadata")
    return tuple(names)


def _claim(payload: Mapping[str, Any], name: str) -> Any:
    """A claim by name, or by a dotted path into nested objects ("realm_access.roles")."""
    if name in payload:
        return payload[name]
    value: Any = payload
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
