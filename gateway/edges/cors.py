"""CORS for the REST edge (Fetch standard): preflight answers and the headers of actual replies.

The edge serves on aiohttp's low-level server (no Application, router or middleware on the hot
path), which aiohttp-cors cannot attach to; what it did is this small, pure module. Refusals are
HttpError 403s, so they get the JSON error body like every other error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.config import Cors
from gateway.errors import HttpError

Headers = list[tuple[str, str]]


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return (method == "OPTIONS" and "Origin" in headers
            and "Access-Control-Request-Method" in headers)


class CorsPolicy:
    def __init__(self, cors: Cors, methods: Iterable[str]) -> None:
        self._any_origin = "*" in cors.allow_origins
        self._origins = frozenset(cors.allow_origins)
        self._methods = frozenset(methods)
        self._any_header = "*" in cors.allow_headers
        self._headers = frozenset(h.lower() for h in cors.allow_headers)
        self._credentials = cors.allow_credentials
        self._expose = ", ".join(cors.expose_headers)
        self._max_age = str(cors.max_age_s)

    def allows(self, origin: str) -> bool:
        return self._any_origin or origin in self._origins

    def preflight(self, headers: Mapping[str, str]) -> Headers:
        """The headers of a 200 preflight answer; HttpError 403 naming what is not allowed."""
        origin = headers["Origin"]
        if not self.allows(origin):
            raise HttpError(403, f"CORS: origin {origin[:100]!r} is not allowed")
        method = headers["Access-Control-Request-Method"]
        if method not in self._methods:
            raise HttpError(403, f"CORS: method {method[:20]!r} is not allowed")
        requested = [h.strip() for h in headers.get("Access-Control-Request-Headers", "").split(",")
                     if h.strip()]
        refused = [h for h in requested if h.lower() not in self._headers]
        if refused and not self._any_header:
            raise HttpError(403, f"CORS: headers not allowed: {', '.join(refused)[:200]}")
        answer = [*self._origin_headers(origin), ("Access-Control-Allow-Methods", method),
                  ("Access-Control-Max-Age", self._max_age)]
        if requested:
            answer.append(("Access-Control-Allow-Headers", ", ".join(requested)))
        return answer

    def reply_headers(self, origin: str) -> Headers:
        """What an actual reply to `origin` carries: nothing for an origin not allowed."""
        if not self.allows(origin):
            return []
        headers = self._origin_headers(origin)
        if self._expose:
            headers.append(("Access-Control-Expose-Headers", self._expose))
        return headers

    def _origin_headers(self, origin: str) -> Headers:
        if self._any_origin and not self._credentials:
            return [("Access-Control-Allow-Origin", "*")]
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if self._credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers
