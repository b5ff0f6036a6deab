"""Authenticate (bearer JWT or API key -> Principal on the Call) and Authorize (AccessRules).

A credential that is sent is always checked, on public methods too (as Envoy): an invalid token
is 401 even where none is needed. A gateway with no issuers (no API keys) configured does not
treat an Authorization (API-key) header as its credential: it is not checked, only dropped
(or forwarded with `auth.forward_credentials`), so backends that authenticate themselves
keep working behind a gateway without auth. Exactly one credential per call: several `authorization`
values, or a bearer token and an API key together, are 401. Credentials are removed from the
metadata before the call goes on, unless `auth.forward_credentials`. Before a credential is
read, the address's budget of failed authentications is checked (policies/failed_auth.py), and
each 401 spends one.
"""

from __future__ import annotations

import fnmatch
import re

from gateway.auth.apikeys import ApiKeyVerifier
from gateway.auth.common import rejected, required
from gateway.auth.tokens import JwtVerifier
from gateway.call import Call, Handler, Principal, Reply, Step, StepPolicy
from gateway.config import Auth, Authorization
from gateway.errors import PermissionDenied, Unauthenticated
from gateway.policies.failed_auth import FailedAuthLimit

AUTHORIZATION = "authorization"


class Authenticate:
    """Sets call.principal from the one credential sent; anonymous calls go on with None."""

    def __init__(self, auth: Auth, tokens: JwtVerifier, api_keys: ApiKeyVerifier,
                 failures: FailedAuthLimit | None = None) -> None:
        self._tokens = tokens
        self._failures = failures  # the pre-authentication limit per client IP
        self._api_keys = api_keys
        self._api_key_header = auth.api_key_header.lower()
        self._forward = auth.forward_credentials
        self._checks_tokens = bool(auth.issuers)
        self._checks_api_keys = bool(auth.api_keys)

    @property
    def step(self) -> Step | None:
        """With no verifier configured, all that is left to do is dropping credentials."""
        if self._checks_tokens or self._checks_api_keys:
            return None
        return self._without_credentials

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        bearer = [v for k, v in call.metadata if k == AUTHORIZATION and self._checks_tokens]
        api_key = [v for k, v in call.metadata
                   if k == self._api_key_header and self._checks_api_keys]
        if not bearer and not api_key:
            return await call_next(self._without_credentials(call))
        if self._failures is not None:
            await self._failures.check(call.peer)  # before anything of the credential is read
        try:
            principal = await self._verified(bearer, api_key)
        except Unauthenticated:
            if self._failures is not None:
                await self._failures.failed(call.peer)
            raise
        if call.explain is not None:
            call.explain.credential(bearer[0] if bearer else None, principal)
        return await call_next(self._without_credentials(call).evolve(principal=principal))

    async def _verified(self, bearer: list[str | bytes], api_key: list[str | bytes]
                        ) -> Principal:
        """The principal of the one credential sent, or Unauthenticated."""
        if len(bearer) + len(api_key) > 1:
            raise rejected("more than one credential sent")
        if bearer:
            return await self._tokens.verify(_bearer_token(bearer[0]))
        if isinstance(api_key[0], str):
            return self._api_keys.verify(api_key[0])
        raise rejected("invalid API key")

    def _without_credentials(self, call: Call) -> Call:
        if self._forward:
            return call
        credentials = (AUTHORIZATION, self._api_key_header)
        for key, _ in call.metadata:
            if key in credentials:
                break
        else:
            return call  # nothing to drop
        metadata = tuple((k, v) for k, v in call.metadata if k not in credentials)
        return call.evolve(metadata=metadata)


def _bearer_token(value: str | bytes) -> str:
    """`Bearer <token>` (scheme case-insensitive, RFC 7235); anything else is refused."""
    if not isinstance(value, str):
        raise rejected("malformed authorization header")
    scheme, _, token = value.strip(" ").partition(" ")
    if scheme.lower() != "bearer":
        raise rejected("authorization scheme must be Bearer")
    token = token.strip(" ")
    if not token or " " in token:
        raise rejected("malformed authorization header")
    return token


class Authorize(StepPolicy):
    """The first AccessRule whose pattern matches the method decides; else the default access.

    public: anyone. authenticated: a principal. roles / scopes: any one of the listed roles, and
    any one of the listed scopes (both when both are given); missing -> PERMISSION_DENIED.
    """

    def __init__(self, authorization: Authorization) -> None:
        self._rules = tuple(
            (re.compile(fnmatch.translate(rule.match)), rule) for rule in authorization.rules
        )
        self._default = authorization.default

    @property
    def inert(self) -> bool:
        """Everything is public: the chain can leave this policy out."""
        return not self._rules and self._default == "public"

    def step(self, call: Call) -> Call:
        rule = next((rule for pattern, rule in self._rules if pattern.match(call.method)), None)
        if call.explain is not None:
            call.explain.rule(call.method, rule, self._default)
        if (self._default if rule is None else rule.access) == "public":
            return call
        principal = call.principal
        if principal is None:
            raise required()
        if rule is not None and rule.roles and not set(rule.roles) & set(principal.roles):
            raise PermissionDenied(f"{call.method} requires one of the roles: "
                                   + ", ".join(rule.roles))
        if rule is not None and rule.scopes and not set(rule.scopes) & set(principal.scopes):
            raise PermissionDenied(f"{call.method} requires one of the scopes: "
                                   + ", ".join(rule.scopes))
        return call
