"""RpcEdge: a grpc.aio generic handler that turns every call of the loaded services into a Call.

Bytes in, bytes out: no payload is decoded. GatewayError becomes a gRPC status here and only here.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2

from gateway.call import Call, Handler, Kind, Metadata, Reply
from gateway.config import GrpcEdge
from gateway.edges.errortext import generic_message, hides, log_hidden
from gateway.edges.metadata_filter import MetadataFilter
from gateway.errors import GatewayError, RateLimited, Unavailable
from gateway.observability.explainer import explained_trailers, grpc_requested
from gateway.policies.client_ip import Network, client_ip
from gateway.policies.ratelimit import pushback_ms
from gateway.policies.request_id import HEADER, request_id_from

# Keys grpc itself owns on the wire; a client's copies are never forwarded.
_RESERVED = ("grpc-", ":")
_DROPPED = frozenset({"user-agent", "content-type", "te", "host", "connection"})


@dataclass(frozen=True, slots=True)
class MethodInfo:
    kind: Kind
    idempotent: bool


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class RpcTables:
    """What one config gives the edge. Each call reads `RpcEdge.tables` once and keeps it, so a
    reload (which assigns new tables) never changes a call under way."""

    methods: Mapping[str, MethodInfo]  # "/pkg.Service/Method" -> shape
    pipeline: Handler
    trusted_proxies: tuple[Network, ...]
    relayed: MetadataFilter  # backend metadata passed on (all but grpc_edge.metadata_deny)
    error_messages: str  # "backend" | "generic": what INTERNAL/UNKNOWN/DATA_LOSS say
    backend_metadata: bool  # x-gateway-backend in the initial metadata


class RpcEdge(grpc.GenericRpcHandler):
    def __init__(self, methods: Mapping[str, MethodInfo], pipeline: Handler,
                 trusted_proxies: tuple[Network, ...] = (),
                 config: GrpcEdge | None = None) -> None:
        config = config or GrpcEdge()
        self.tables = RpcTables(methods, pipeline, trusted_proxies,
                                MetadataFilter(config.metadata_deny, allow=False),
                                config.error_messages, config.backend_metadata)
        # grpc asks for a handler on every call: one per (method, shape), made on first use and
        # kept across reloads. A call reads `tables` when it starts and holds them to its end
        # (streams included), which is what keeps a replaced runtime open while it drains.
        self._handlers: dict[tuple[str, Kind], grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = details.method
        info = self.tables.methods.get(method)
        if info is None:
            return None  # grpc answers UNIMPLEMENTED
        handler = self._handlers.get((method, info.kind))
        if handler is None:
            handler = self._handlers[method, info.kind] = self._handler(method, info.kind)
        return handler

    def _handler(self, method: str, kind: Kind) -> grpc.RpcMethodHandler[Any, Any]:
        if kind.streams_replies:
            async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]
                                ) -> AsyncIterator[bytes]:
                tables = self.tables
                ran = await self._run(tables, method, kind, request, context)
                if ran is None:
                    return
                reply, request_id = ran
                assert not isinstance(reply.payload, bytes)
                try:
                    async for message in reply.payload:
                        yield message
                except GatewayError as exc:
                    exc.backend = exc.backend or reply.backend
                    # the request id went out in the initial metadata already
                    await _abort(context, tables, exc, request_id, id_trailer=False)
                    return
                if reply.stream_end is not None and reply.stream_end.trailers:
                    context.set_trailing_metadata(
                        tables.relayed.apply(_without_grpc_keys(reply.stream_end.trailers)))

            factory = (grpc.stream_stream_rpc_method_handler if kind.streams_requests
                       else grpc.unary_stream_rpc_method_handler)
            return factory(streaming)

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            tables = self.tables
            ran = await self._run(tables, method, kind, request, context)
            if ran is None:
                return b""
            reply = ran[0]
            assert isinstance(reply.payload, bytes)
            trailers = tables.relayed.apply(_without_grpc_keys(reply.trailers))
            if reply.attempts > 1:
                trailers = (*trailers, ("x-gateway-attempts", str(reply.attempts)))
            if trailers:
                context.set_trailing_metadata(trailers)
            return reply.payload

        unary_factory = (grpc.stream_unary_rpc_method_handler if kind.streams_requests
                         else grpc.unary_unary_rpc_method_handler)
        return unary_factory(unary)

    async def _run(self, tables: RpcTables, method: str, kind: Kind, request: Any,
                   context: grpc.aio.ServicerContext[Any, Any]) -> tuple[Reply, str] | None:
        info = tables.methods.get(method)
        if info is None or info.kind is not kind:  # a reload since grpc looked the method up
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {method}")
            return None
        remaining = context.time_remaining()
        metadata = _without_grpc_keys(context.invocation_metadata())
        request_id = request_id_from(metadata)
        trusted = tables.trusted_proxies  # X-Forwarded-For counts only behind trusted proxies
        forwarded = [v for k, v in metadata if k == "x-forwarded-for" and isinstance(v, str)] \
            if trusted else []
        call = Call(
            method=method,
            payload=request,
            kind=kind,
            metadata=metadata,
            peer=client_ip(_peer_ip(context.peer()), forwarded, trusted),
            deadline=None if remaining is None else time.monotonic() + remaining,
            idempotent=info.idempotent,
            request_id=request_id,
            edge="grpc",
            explain=grpc_requested(metadata, request_id, method, request),
        )
        try:
            reply = await tables.pipeline(call)
        except GatewayError as exc:
            await _abort(context, tables, exc, request_id,
                         extra=explained_trailers(call.explain, exc))
            return None
        if call.explain is not None:  # the compact explanation as a trailer (unary calls)
            explain = tuple(explained_trailers(call.explain, reply))
            reply = replace(reply, trailers=(*reply.trailers, *explain))
        if reply.metadata:
            initial = [(k, v) for k, v in tables.relayed.apply(_without_grpc_keys(reply.metadata))
                       if k != HEADER]
            initial.append((HEADER, request_id))
        else:
            initial = [(HEADER, request_id)]
        if reply.backend and tables.backend_metadata:
            initial.append(("x-gateway-backend", reply.backend))
        await context.send_initial_metadata(initial)
        return reply, request_id


def _without_grpc_keys(metadata: Any) -> Metadata:
    """Metadata minus the keys grpc owns, in either direction (a client's, a backend's);
    keys are lower-case on the wire already."""
    if not metadata:
        return ()
    return tuple((k, v) for k, v in metadata if not k.startswith(_RESERVED) and k not in _DROPPED)


def _peer_ip(peer: str) -> str:
    # "ipv4:127.0.0.1:5555" / "ipv6:[::1]:5555" -> the address alone
    _, _, rest = peer.partition(":")
    host, _, _ = rest.rpartition(":")
    return host.strip("[]") or peer


async def _abort(context: grpc.aio.ServicerContext[Any, Any], tables: RpcTables,
                 exc: GatewayError, request_id: str, id_trailer: bool = True,
                 extra: Iterable[tuple[str, str]] = ()) -> None:
    """Fail the call with exc's code, message and google.rpc.Status details (never a traceback);
    under `grpc_edge.error_messages: generic` an INTERNAL / UNKNOWN / DATA_LOSS message and its
    details are replaced (the original is logged). `extra`: the gateway's own trailers."""
    code = grpc.StatusCode[exc.code.name]
    trailers: list[tuple[str, str | bytes]] = list(
        tables.relayed.apply(_without_grpc_keys(getattr(exc, "trailers", ()))))
    trailers.extend(extra)
    message, details = exc.message, exc.details
    if hides(exc, tables.error_messages):
        log_hidden(exc, request_id, "grpc")
        message, details = generic_message(exc, request_id), ()
    if request_id and id_trailer:  # failed before any header went out: the id goes in trailers
        trailers.append((HEADER, request_id))
    if isinstance(exc, RateLimited):  # RESOURCE_EXHAUSTED plus when to come back (T-22)
        trailers.append(("grpc-retry-pushback-ms", pushback_ms(exc)))
    elif isinstance(exc, Unavailable) and exc.retry_after_s is not None:
        trailers.append(("grpc-retry-pushback-ms", str(math.ceil(exc.retry_after_s * 1000))))
    if exc.attempts > 1:
        trailers.append(("x-gateway-attempts", str(exc.attempts)))
    if details:
        status = status_pb2.Status(
            code=int(exc.code), message=message,
            details=[any_pb2.Any.FromString(detail) for detail in details],
        )
        trailers.append(("grpc-status-details-bin", status.SerializeToString()))
    await context.abort(code, message, tuple(trailers))
