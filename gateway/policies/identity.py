"""Identity metadata is gateway-authored only (T-30): strip what clients send, inject auth's.

StripGatewayOwned runs first and drops every key matching `auth.gateway_owned`, in any spelling:
case, "_" for "-", a `-bin` suffix, a `grpc-metadata-` prefix. InjectIdentity runs after
Authorize; it drops every `x-user-*` key and `x-gateway-identity-sig` again, then, for an
authenticated call only, sets `x-user-id`, `x-user-roles` and `x-user-scopes` (comma-joined),
`x-user-auth` (jwt | api_key) and the configured claim keys (all `x-user-*`).

With a secret, it also sets `x-gateway-identity-sig`: the lower-case hex HMAC-SHA256, keyed with
the secret, of this UTF-8 text (lines joined by "\\n", no trailing newline):

    gateway-identity/v1
    x-request-id:<the request id>
    <key>:<value>        one line per x-user-* key sent, sorted by key

e.g. "gateway-identity/v1\\nx-request-id:abc\\nx-user-auth:jwt\\nx-user-id:alice\\n
x-user-roles:admin,ops\\nx-user-scopes:read". Values hold no CR or LF (auth refuses such tokens),
so the text is unambiguous. Backends check it with `verify_identity(metadata, secret)`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Sequence

from gateway.call import Call, Metadata, Principal, StepPolicy
from gateway.policies.request_id import HEADER as REQUEST_ID

USER_PREFIX = "x-user-"
SIGNATURE = "x-gateway-identity-sig"
IDENTITY_KEYS = frozenset({"x-user-id", "x-user-roles", "x-user-scopes", "x-user-auth"})
_VERSION = "gateway-identity/v1"
_FORWARDED_PREFIX = "grpc-metadata-"


def normalise(key: str) -> str:
    """The name a key may stand for downstream: lower case, "-" for "_", no grpc-metadata-."""
    name = key.lower().replace("_", "-")
    while name.startswith(_FORWARDED_PREFIX):
        name = name[len(_FORWARDED_PREFIX):]
    return name


class StripGatewayOwned(StepPolicy):
    """Removes every client-sent key that only the gateway may author, in every spelling."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._owned = re.compile(
            "|".join(f"(?:{fnmatch.translate(normalise(p))})" for p in patterns) or r"(?!)"
        )

    def owned(self, key: str) -> bool:
        name = normalise(key)
        return bool(self._owned.match(name)
                    or name.endswith("-bin") and self._owned.match(name[:-4]))

    def step(self, call: Call) -> Call:
        if not any(self.owned(key) for key, _ in call.metadata):
            return call
        return call.evolve(metadata=tuple((k, v) for k, v in call.metadata if not self.owned(k)))


def identity_metadata(principal: Principal) -> tuple[tuple[str, str], ...]:
    """The x-user-* keys for an authenticated principal, sorted by key."""
    fields = {
        "x-user-id": principal.subject,
        "x-user-roles": ",".join(principal.roles),
        "x-user-scopes": ",".join(principal.scopes),
        "x-user-auth": principal.via,
        **{key: value for key, value in principal.claims
           if key.startswith(USER_PREFIX) and isinstance(value, str)},
    }
    return tuple(sorted(fields.items()))


def sign_identity(fields: Sequence[tuple[str, str]], request_id: str, secret: bytes) -> str:
    """The x-gateway-identity-sig value for these x-user-* fields (see the module docstring)."""
    lines = [_VERSION, f"{REQUEST_ID}:{request_id}", *(f"{k}:{v}" for k, v in sorted(fields))]
    return hmac.new(secret, "\n".join(lines).encode("utf-8"), hashlib.sha256).hexdigest()


def verify_identity(metadata: Metadata, secret: bytes) -> bool:
    """For backends: whether the x-user-* metadata is exactly what the gateway signed."""
    sent: dict[str, list[str | bytes]] = {}
    for key, value in metadata:
        if key.startswith(USER_PREFIX) or key in (SIGNATURE, REQUEST_ID):
            sent.setdefault(key, []).append(value)
    single: dict[str, str] = {}
    for key, values in sent.items():
        if len(values) != 1 or not isinstance(values[0], str):
            return False  # duplicated, or binary: never what the gateway sends
        single[key] = values[0]
    if SIGNATURE not in single or "x-user-id" not in single:
        return False
    fields = [(k, v) for k, v in single.items() if k.startswith(USER_PREFIX)]
    expected = sign_identity(fields, single.get(REQUEST_ID, ""), secret)
    return hmac.compare_digest(expected, single[SIGNATURE])


def _identity_key(key: str) -> bool:
    name = normalise(key).removesuffix("-bin")
    return name.startswith(USER_PREFIX) or name == SIGNATURE


class InjectIdentity(StepPolicy):
    """Replaces any identity metadata with the principal's (none for anonymous calls)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret

    def step(self, call: Call) -> Call:
        if call.principal is None and not any(_identity_key(k) for k, _ in call.metadata):
            return call  # anonymous, nothing to remove: the common fast path
        metadata: Metadata = tuple((k, v) for k, v in call.metadata if not _identity_key(k))
        if call.principal is not None:
            fields = identity_metadata(call.principal)
            metadata = (*metadata, *fields)
            if self._secret is not None:
                signature = sign_identity(fields, call.request_id, self._secret)
                metadata = (*metadata, (SIGNATURE, signature))
        if call.explain is not None:
            call.explain.identity(metadata, self._secret is not None)
        return call.evolve(metadata=metadata)
