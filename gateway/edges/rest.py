"""RestEdge: the HTTP listener. Match, transcode, run the pipeline, render; errors rendered here.

It runs on aiohttp's low-level server: routing is the gateway's own (gateway.transcode.routes),
the few fixed pages (health, docs) are a dict, CORS is edges/cors.py. An Application with its
router and middleware cost a quarter of aiohttp's per-request CPU (docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web

from gateway.call import Call, Handler, Kind, Reply
from gateway.config import Cors, RestConnections, Transcoding
from gateway.edges import protocols
from gateway.edges.connlimits import CLOSING_STATUSES, GuardedServer
from gateway.edges.cors import CorsPolicy, is_preflight
from gateway.edges.docs import Page, docs_pages
from gateway.edges.errortext import generic_message, hides, log_hidden
from gateway.edges.headers import headers_from_metadata, metadata_from_headers
from gateway.edges.health import health_pages
from gateway.edges.metadata_filter import MetadataFilter
from gateway.edges.rpchttp import RpcHttpTables, read_body
from gateway.errors import (
    GatewayError,
    HttpError,
    MethodNotAllowed,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from gateway.observability.explainer import explain_kept, explained, rest_requested
from gateway.observability.refused import UNMATCHED, Refused
from gateway.observability.timing import server_timing
from gateway.policies.client_ip import Network, client_ip
from gateway.policies.deadline import parse_grpc_timeout, parse_x_timeout
from gateway.policies.ratelimit import rate_limit_headers, retry_after_seconds
from gateway.policies.request_id import request_id_from
from gateway.transcode.request import RequestDecoder, parse_query
from gateway.transcode.response import ReplyEncoder, render_status_details
from gateway.transcode.route import Route
from gateway.transcode.routes import RouteTable
from gateway.transcode.schema import Schema

JSON = "application/json"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
STANDARD_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PAGE_METHODS = ("GET", "HEAD")
TRACE_CONTEXT = ("traceparent", "tracestate")  # W3C: always sent on; tracing continues it
_R = TypeVar("_R", bound=web.StreamResponse)


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """Everything the edge needs for one route, compiled at load."""

    route: Route
    decoder: RequestDecoder
    encoder: ReplyEncoder
    success_status: int  # 200 unless configured (201 for a create, 204 for a delete)


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class RestTables:
    """What one config gives the edge. A request reads `RestEdge.tables` once and keeps it, so a
    reload (which assigns new tables) never changes a request under way."""

    schema: Schema
    table: RouteTable
    endpoints: Mapping[Route, Endpoint]
    pipeline: Handler
    forward: frozenset[str]  # request headers that enter the pipeline as metadata
    max_body: int
    trusted_proxies: tuple[Network, ...]
    pages: Mapping[str, Page]  # fixed GET paths (/openapi.json, /docs) -> their answer
    cors: CorsPolicy | None  # None: CORS off
    exposed: MetadataFilter  # backend metadata keys that go out (transcoding.response_headers)
    error_messages: str  # "generic" | "backend": what INTERNAL/UNKNOWN/DATA_LOSS say
    server: str  # the Server header
    backend_header: bool  # X-Gateway-Backend on replies
    refused: Refused | None = None  # logs and counts a request refused before the chain
    rpc_http: RpcHttpTables | None = None  # Connect and gRPC-Web at /pkg.Service/Method


class RestEdge:
    def __init__(self, schema: Schema, table: RouteTable, endpoints: Mapping[Route, Endpoint],
                 pipeline: Handler, transcoding: Transcoding, cors: Cors | None = None,
                 openapi: Mapping[str, Any] | None = None,
                 credential_headers: tuple[str, ...] = (),
                 trusted_proxies: tuple[Network, ...] = (),
                 refused: Refused | None = None,
                 rpc_http: RpcHttpTables | None = None) -> None:
        # Credentials always enter the pipeline; authentication decides whether they go on.
        forward = frozenset((*transcoding.forward_headers, "authorization", *TRACE_CONTEXT,
                             *credential_headers))
        methods = sorted({*STANDARD_METHODS, *(r.http_method for r in table.routes)})
        self.tables = RestTables(
            schema, table, endpoints, pipeline, forward, transcoding.max_body_bytes,
            trusted_proxies, docs_pages(openapi) if openapi is not None else {},
            CorsPolicy(cors, methods) if cors is not None and cors.allow_origins else None,
            MetadataFilter(transcoding.response_headers, allow=True),
            transcoding.error_messages, transcoding.server_header, transcoding.backend_header,
            refused,
            rpc_http,
        )
        self._health: Mapping[str, Page] = {}

    def server(self, ready: Callable[[], bool] = lambda: True,
               limits: RestConnections | None = None) -> GuardedServer:
        """The aiohttp low-level server answering every request with dispatch(), its
        connections under `limits` (edges/connlimits.py)."""
        self._health = health_pages(ready)
        return GuardedServer(self.dispatch, limits or RestConnections(),
                             lambda: self.tables.server,
                             handler_cancellation=True, access_log=None)

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        """Fixed pages, CORS preflights, else the API; CORS headers on every allowed reply."""
        tables = self.tables
        cors = tables.cors
        try:
            page = (self._health.get(request.path) or tables.pages.get(request.path)
                    if request.method in PAGE_METHODS else None)
            if page is not None:
                response = page()
            elif cors is not None and is_preflight(request.method, request.headers):
                return _with_server(
                    web.Response(status=200, headers=cors.preflight(request.headers)), tables)
            elif tables.rpc_http is not None and request.path in tables.rpc_http.methods:
                return await protocols.handle(tables.rpc_http, request, cors)  # own CORS headers
            else:
                response = await self.handle(request)
        except HttpError as exc:  # a refused preflight: no CORS headers, the JSON body
            return self.error_response(exc, request_id_from(()))
        if cors is not None:
            origin = request.headers.get("Origin")
            if origin is not None:
                response.headers.extend(cors.reply_headers(origin))
        return _with_server(response, tables)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        tables = self.tables
        request_id = ""
        route: Route | None = None
        in_chain = False  # from here on Observe logs and counts the request
        try:
            # First, so that a request refused below still carries the client's id.
            request_id = request_id_from(
                tuple(("x-request-id", v) for v in request.headers.getall("X-Request-ID", ()))
            )
            raw_path, _, raw_query = request.raw_path.partition("?")
            route, bindings = tables.table.match(request.method, raw_path)
            endpoint = tables.endpoints[route]
            metadata = metadata_from_headers(request.headers.items(), tables.forward)
            deadline = _client_deadline(request, started)
            body = (await read_body(request, tables.max_body) if route.body is not None
                    else b"")
            payload = endpoint.decoder.decode(
                bindings, parse_query(raw_query), body, request.headers.get("Content-Type", "")
            )
            explain = rest_requested(request.headers, request_id, route, bindings, raw_query, body)
            call = Call(
                method=route.method,
                payload=payload,
                kind=Kind.SERVER_STREAM if route.server_streaming else Kind.UNARY,
                metadata=metadata,
                peer=client_ip(request.remote or "", request.headers.getall("X-Forwarded-For", ()),
                               tables.trusted_proxies),
                deadline=deadline,
                idempotent=route.idempotent,
                request_id=request_id,
                edge="rest",
                explain=explain,
            )
            in_chain = True
            reply = await tables.pipeline(call)
            if route.server_streaming:
                explain_kept(explain, reply)  # for the admin API: a stream has no header
                return await self._stream(request, tables, endpoint, reply, request_id, started)
            return explained(explain, self._unary(tables, endpoint, reply, request_id, started),
                             reply)
        except GatewayError as exc:
            request_id = request_id or request_id_from(())
            if not in_chain and tables.refused is not None:
                tables.refused(_refused_call(request, route, request_id, tables.trusted_proxies),
                               exc, time.monotonic() - started)
            response = self.error_response(exc, request_id, started)
            return explained(explain, response, exc) if in_chain else response

    def _unary(self, tables: RestTables, endpoint: Endpoint, reply: Reply, request_id: str,
               started: float) -> web.Response:
        assert isinstance(reply.payload, bytes)
        if endpoint.success_status == 204:
            return web.Response(status=204,
                                headers=_reply_headers(tables, reply, request_id, started))
        try:
            content_type, body = endpoint.encoder.encode(reply.payload)
        except GatewayError as exc:  # a reply that is not what it claims: whose it was
            exc.backend, exc.backend_s = reply.backend, reply.backend_s
            exc.attempts = reply.attempts
            raise
        headers = _reply_headers(tables, reply, request_id, started)  # after: Server-Timing
        headers.append(("Content-Type", content_type))
        return web.Response(status=endpoint.success_status, body=body, headers=headers)

    async def _stream(self, request: web.BaseRequest, tables: RestTables, endpoint: Endpoint,
                      reply: Reply, request_id: str, started: float) -> web.StreamResponse:
        """NDJSON (`{"result": ...}` per message, as grpc-gateway) or SSE on request."""
        assert not isinstance(reply.payload, bytes)
        messages: AsyncIterator[bytes] = reply.payload
        sse = SSE in request.headers.get("Accept", "")
        # Pull and render the first message before committing to 200, so an early failure
        # (a reset, a reply that is not the declared type: 502) keeps its status.
        try:
            first: bytes | None = self._frame(endpoint, await anext(messages), sse)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await messages.aclose()  # type: ignore[attr-defined]
            raise
        headers = _reply_headers(tables, reply, request_id, started)
        headers.append(("Server", tables.server))  # prepared here: dispatch cannot add it
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = SSE if sse else NDJSON
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first)
                async for message in messages:
                    await response.write(self._frame(endpoint, message, sse))
        except GatewayError as exc:
            error = orjson.dumps(self._status_json(tables, exc, request_id, reply.backend))
            await response.write(b"event: error\ndata: " + error + b"\n\n" if sse
                                 else b'{"error":' + error + b"}\n")
        finally:
            await messages.aclose()  # type: ignore[attr-defined]
        await response.write_eof()
        return response

    @staticmethod
    def _frame(endpoint: Endpoint, message: bytes, sse: bool) -> bytes:
        _, body = endpoint.encoder.encode(message)
        return b"data: " + body + b"\n\n" if sse else b'{"result":' + body + b"}\n"

    def error_response(self, exc: GatewayError, request_id: str,
                       started: float | None = None) -> web.Response:
        tables = self.tables
        headers = _gateway_headers(request_id, started,
                                   exc.backend if tables.backend_header else "", exc.backend_s,
                                   exc.attempts)
        if isinstance(exc, MethodNotAllowed):
            headers.append(("Allow", ", ".join(exc.allowed)))
        elif isinstance(exc, RateLimited):
            headers.extend(rate_limit_headers(exc))
        elif isinstance(exc, Unauthenticated):
            headers.append(("WWW-Authenticate", exc.www_authenticate or 'Bearer realm="gateway"'))
        elif isinstance(exc, Unavailable) and exc.retry_after_s is not None:
            headers.append(("Retry-After", str(retry_after_seconds(exc.retry_after_s))))
        response = _with_server(web.Response(
            status=exc.http_status,
            body=orjson.dumps(self._status_json(tables, exc, request_id, exc.backend)),
            content_type=JSON, headers=headers,
        ), tables)
        if exc.http_status in CLOSING_STATUSES:  # 413: the body behind it is not read
            response.force_close()
        return response

    @staticmethod
    def _status_json(tables: RestTables, exc: GatewayError, request_id: str,
                     backend: str) -> dict[str, object]:
        """The error body; an INTERNAL / UNKNOWN / DATA_LOSS message replaced (and logged)
        under `transcoding.error_messages: generic`."""
        if not hides(exc, tables.error_messages):
            return status_json(tables.schema, exc)
        exc.backend = exc.backend or backend
        log_hidden(exc, request_id, "rest")
        return {"code": int(exc.code), "message": generic_message(exc, request_id),
                "details": []}


def _refused_call(request: web.BaseRequest, route: Route | None, request_id: str,
                  trusted_proxies: tuple[Network, ...]) -> Call:
    """What the log and the metrics may know of a request refused before the chain: no header
    but the trace context, no path (the route, or UNMATCHED), never a credential."""
    traceparent = request.headers.get("traceparent")
    return Call(
        method=route.method if route is not None else UNMATCHED, payload=b"",
        metadata=(("traceparent", traceparent),) if traceparent is not None else (),
        peer=client_ip(request.remote or "", request.headers.getall("X-Forwarded-For", ()),
                       trusted_proxies),
        request_id=request_id, edge="rest",
    )


def _client_deadline(request: web.BaseRequest, now: float) -> float | None:
    grpc_timeout = request.headers.get("Grpc-Timeout")
    if grpc_timeout is not None:
        return now + parse_grpc_timeout(grpc_timeout)
    x_timeout = request.headers.get("X-Timeout")
    if x_timeout is not None:
        return now + parse_x_timeout(x_timeout)
    return None


def _gateway_headers(request_id: str, started: float | None, backend: str, backend_s: float,
                     attempts: int) -> list[tuple[str, str]]:
    """The headers every answer carries, success or error, when their values are known."""
    headers = [("X-Request-ID", request_id)] if request_id else []
    if started is not None:
        headers.append(("Server-Timing", server_timing(time.monotonic() - started, backend_s)))
    if backend:
        headers.append(("X-Gateway-Backend", backend))
    if attempts > 1:
        headers.append(("X-Gateway-Attempts", str(attempts)))
    return headers


def _reply_headers(tables: RestTables, reply: Reply, request_id: str, started: float
                   ) -> list[tuple[str, str]]:
    headers = _gateway_headers(request_id, started,
                               reply.backend if tables.backend_header else "", reply.backend_s,
                               reply.attempts)
    if not tables.exposed.passes_nothing:
        headers.extend(headers_from_metadata(reply.metadata, "Grpc-Metadata-", tables.exposed))
        headers.extend(headers_from_metadata(reply.trailers, "Grpc-Trailer-", tables.exposed))
    return headers


def _with_server(response: _R, tables: RestTables) -> _R:
    """Our Server header instead of aiohttp's `Python/3.x aiohttp/x.y` (it only sets a default)."""
    if not response.prepared:
        response.headers["Server"] = tables.server
    return response


def status_json(schema: Schema, exc: GatewayError) -> dict[str, object]:
    """The google.rpc.Status-shaped body of every REST error; details always present."""
    return {
        "code": int(exc.code),
        "message": exc.message,
        "details": render_status_details(schema, exc.details),
    }
