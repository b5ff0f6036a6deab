"""API keys (auth.api_keys): kept as SHA-256 hex digests, compared in constant time, not logged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from gateway.auth.common import is_name, rejected
from gateway.call import Principal
from gateway.config import ApiKey
from gateway.errors import ConfigError

MAX_KEY_CHARS = 1024


def digest(key: str) -> str:
    """How a key is stored in the config: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyVerifier:
    """Presented key -> Principal(subject=owner, via="api_key"), or Unauthenticated."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        for key in keys:
            if not all(map(is_name, (key.owner, *key.roles, *key.scopes))):
                raise ConfigError(
                    f"auth.api_keys: owner {key.owner[:64]!r}: owner, roles and scopes must be "
                    "visible ASCII without ',' (they become metadata)"
                )
        self._keys = tuple(
            (key.sha256, Principal(key.owner, key.roles, key.scopes, via="api_key"))
            for key in keys
        )

    def verify(self, presented: str) -> Principal:
        if not presented or len(presented) > MAX_KEY_CHARS:
            raise rejected("invalid API key")
        presented_digest = digest(presented)
        found = None
        for stored, principal in self._keys:  # compare with every key: no early exit
            if hmac.compare_digest(presented_digest, stored) and found is None:
                found = principal
        if found is None:
            raise rejected("invalid API key")
        return found
