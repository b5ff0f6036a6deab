"""The OpenAPI document's securitySchemes (from `auth`) and per-operation security (from
`authorization`): what Swagger UI's "Authorize" offers, and which operations need it."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.config import GatewayConfig

BEARER = "bearerAuth"
API_KEY = "apiKey"


def security_schemes(config: GatewayConfig) -> dict[str, dict[str, Any]]:
    schemes: dict[str, dict[str, Any]] = {}
    if config.auth.issuers:
        schemes[BEARER] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A JWT of a configured issuer, as "
                           "`Authorization: Bearer <token>`."}
    if config.auth.api_keys:
        schemes[API_KEY] = {"type": "apiKey", "in": "header", "name": config.auth.api_key_header,
                            "description": "An API key."}
    return schemes


def operation_security(config: GatewayConfig, methods: Iterable[str]
                       ) -> Mapping[str, tuple[str, ...]]:
    """Per "/pkg.Service/Method" the schemes any one of which it needs; public methods (the
    authorization default or a rule, first match wins, as the Authorize policy) are absent."""
    names = tuple(security_schemes(config))
    secured: dict[str, tuple[str, ...]] = {}
    for method in methods:
        rule = next((r for r in config.authorization.rules
                     if fnmatch.fnmatchcase(method, r.match)), None)
        access = config.authorization.default if rule is None else rule.access
        if access != "public" and names:
            secured[method] = names
    return secured
