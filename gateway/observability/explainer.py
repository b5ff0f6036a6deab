"""Explain on demand: who may ask, and what an explained request gets back.

The edges start an Explanation when the request carries `x-gateway-explain` (rest_requested,
grpc_requested). Explainer, a step at the chain's head, binds it: it checks the header's value
against the admin token, drops the header from the metadata (it never reaches a backend) and,
with tracing on, hands it the request's span. The roles are checked when authentication notes
the principal. At the end the edge calls `explained` (REST: an `X-Gateway-Explain` header with
the compact form) or `explained_trailers` (gRPC: a trailer with the same); the whole goes to the
ring buffer, read at the admin API's /admin/requests/<request id>.

A caller who may not ask gets exactly the answer it would have got without the header: no
header, no trailer, nothing stored. With explain off (the default) no Explainer is in the chain
and an edge's Explanation is never bound, so the header is ignored the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
from opentelemetry import trace

from gateway.call import Call, Metadata, Principal, Reply, StepPolicy
from gateway.config import Explain
from gateway.errors import GatewayError
from gateway.observability.explain import KEY, Explanation
from gateway.observability.explain_buffer import ExplainBuffer
from gateway.transcode.request import parse_query
from gateway.transcode.route import Route

HEADER = "X-Gateway-Explain"


class _Response(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Any: ...


_R = TypeVar("_R", bound=_Response)


class Explainer(StepPolicy):
    def __init__(self, config: Explain, admin_digest: bytes | None, tracing: bool) -> None:
        self._roles = frozenset(config.roles)
        self._admin = admin_digest if config.admin_token else None
        self._tracing = tracing
        self.buffer = ExplainBuffer(config.buffer_entries, config.buffer_bytes)

    def permits(self, principal: Principal | None) -> bool:
        return principal is not None and not self._roles.isdisjoint(principal.roles)

    def step(self, call: Call) -> Call:
        explain = call.explain
        if explain is None:
            return call
        asked, explain.asked = explain.asked, ""  # it may be the admin token: not kept
        explain.policy = self
        explain.by_admin = self._admin is not None and hmac.compare_digest(
            hashlib.sha256(asked.encode("utf-8", "replace")).digest(), self._admin)
        if self._tracing:
            span = trace.get_current_span()
            explain.span = span if span.is_recording() else None
            explain.send_events()
        return call.evolve(metadata=tuple((k, v) for k, v in call.metadata if k != KEY))

    def finish(self, explain: Explanation, outcome: Reply | GatewayError,
               http_status: int | None) -> str | None:
        """Keep the explanation and return its compact form, if the caller may see it."""
        if not explain.allowed:
            return None
        explain.policy = None  # finished once
        error = outcome if isinstance(outcome, GatewayError) else None
        code = "OK" if error is None else error.code.name
        decided_by = explain.decided_by(error)
        gateway_ms = round((time.monotonic() - explain.started) * 1000, 3)
        backend_ms = round(outcome.backend_s * 1000, 3)
        attempts = sum(1 for step in explain.steps if step["step"] == "attempt")
        document: dict[str, Any] = {
            "request_id": explain.request_id,
            "edge": explain.edge,
            "received_at": datetime.fromtimestamp(explain.wall, UTC).isoformat(),
            "asked_by": "admin token" if explain.by_admin else "role",
            "outcome": {"code": code, "http_status": http_status, "decided_by": decided_by,
                        "message": None if error is None else error.message[:300]},
            "gateway_ms": gateway_ms,
            "backend_ms": backend_ms,
            "attempts": attempts,
            "steps": explain.steps,
            "steps_dropped": explain.dropped,
        }
        self.buffer.put(explain.request_id, orjson.dumps(document))
        return (f"id={explain.request_id}; code={code}; decided_by={decided_by}; "
                f"steps={len(explain.steps)}; attempts={attempts}; "
                f"gateway_ms={gateway_ms:g}; backend_ms={backend_ms:g}")


def rest_requested(headers: Any, request_id: str, route: Route, bindings: Mapping[str, str],
                   raw_query: str, body: bytes) -> Explanation | None:
    """An Explanation (route and body noted) when the request carries the header, else None."""
    asked = headers.get(HEADER)
    if asked is None:
        return None
    explain = Explanation("rest", request_id, asked)
    query = [name for name, _ in parse_query(raw_query)]
    explain.rest_request(route, bindings, query, body, headers.get("Content-Type", ""))
    return explain


def grpc_requested(metadata: Metadata, request_id: str, method: str,
                   payload: object) -> Explanation | None:
    for key, value in metadata:
        if key == KEY:
            explain = Explanation("grpc", request_id, value if isinstance(value, str) else "")
            explain.grpc_request(method, payload)
            return explain
    return None


def explained(explain: Explanation | None, response: _R, outcome: Reply | GatewayError) -> _R:
    """The REST response, with the compact explanation when the caller may see one."""
    if explain is None or explain.policy is None:
        return response
    compact = explain.policy.finish(explain, outcome, response.status)
    if compact is not None:
        response.headers[HEADER] = compact
    return response


def explain_kept(explain: Explanation | None, outcome: Reply | GatewayError) -> None:
    """Finish an explanation whose answer has no room for the header (a REST stream)."""
    if explain is not None and explain.policy is not None:
        explain.policy.finish(explain, outcome, 200)


def explained_trailers(explain: Explanation | None,
                       outcome: Reply | GatewayError) -> Iterable[tuple[str, str]]:
    """The gRPC trailer with the compact explanation (none when the caller may not see one)."""
    if explain is None or explain.policy is None:
        return ()
    compact = explain.policy.finish(explain, outcome, None)
    return () if compact is None else ((KEY, compact),)
